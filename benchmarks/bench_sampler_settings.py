"""Measure nutpie settings on one dynamic-model fit: time, gradient evaluations, every element's R-hat and ESS.

For each setting (a JSON object of ``nutpie.sample`` keyword arguments laid over the project's
``SAMPLER_KWARGS["dynamic"]["nutpie"]``; a ``target_accept`` in it replaces the fit's 0.95) and
each seed, a fresh process fits the data with the dynamic model (``--draws`` x 2 chains after
``--tune``, the compiled log density from the disk cache once warm) and prints one line: sampling
seconds, gradient evaluations per draw, the largest rank-normalised R-hat over every posterior
element and how many exceed 1.01, the smallest bulk and tail ESS and where, and the smallest bulk
ESS per second of sampling.  With ``--out`` the lines are also written as JSON.
Example (the project's diagonal matrix against nutpie's low-rank one; the figures in
``benchmarks/results/sampler_settings/`` were run the other way round, when ``{}`` was low-rank)::

    .venv/bin/python benchmarks/bench_sampler_settings.py --data shipped --seeds 1,2,3,4,5 \\
        --settings '{}' '{"low_rank_modified_mass_matrix": true}' --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

WORKER_ENV = "BENCH_SAMPLER_SETTING"


def worker(data: str, seed: int, draws: int, tune: int) -> dict[str, object]:
    import tempfile

    import numpy as np
    from bench_dynamic import request_for

    import forecast.models.model as model_module
    from forecast.checks.diagnostics import check_convergence
    from forecast.checks.rank_diagnostics import rank_diagnostics
    from forecast.jobs.data import load_data
    from forecast.models.design import ModelOptions
    from forecast.models.model import EscalationModel, SamplerSettings

    setting = json.loads(os.environ[WORKER_ENV])
    target_accept = setting.pop("target_accept", 0.95)  # the fit's own setting, not one of nutpie's keywords
    dynamic = model_module.SAMPLER_KWARGS["dynamic"]
    dynamic["nutpie"] = {**dynamic["nutpie"], **setting}
    with tempfile.TemporaryDirectory() as folder:
        loaded = load_data(request_for(data, Path(folder)))
    model = EscalationModel(loaded.panel, loaded.interventions, options=ModelOptions(family="dynamic", changepoints=0))
    settings = SamplerSettings(draws=draws, tune=tune, target_accept=target_accept, random_seed=seed, progressbar=False)
    result = model.fit(settings)
    diagnostics = check_convergence(result.idata)
    labels, rhat, bulk, tail = [], [], [], []
    for name, array in result.idata.posterior.data_vars.items():
        values = array.to_numpy().reshape(array.shape[0], array.shape[1], -1).astype(float)
        varying = np.flatnonzero(np.std(values, axis=(0, 1)) > 0)
        if not len(varying):
            continue
        r, b, t = rank_diagnostics(values[:, :, varying])
        labels += [f"{name}[{i}]" for i in varying]
        rhat.append(r)
        bulk.append(b)
        tail.append(t)
    r, b, t = (np.concatenate(v) for v in (rhat, bulk, tail))
    sample_s = result.timings["sample_s"]
    return {
        "data": data,
        "setting": setting,
        "target_accept": target_accept,
        "seed": seed,
        "draws": draws,
        "tune": tune,
        "sample_s": round(sample_s, 1),
        "leapfrogs_per_draw": round(float(result.idata.sample_stats["n_steps"].mean()), 1),
        "rhat_max": round(float(np.nanmax(r)), 4),
        "rhat_worst": labels[int(np.nanargmax(r))],
        "elements": len(labels),
        "elements_over_1_01": int(np.sum(r > 1.01)),
        "ess_bulk_min": round(float(np.nanmin(b))),
        "ess_bulk_worst": labels[int(np.nanargmin(b))],
        "ess_tail_min": round(float(np.nanmin(t))),
        "ess_bulk_median": round(float(np.nanmedian(b))),
        "ess_bulk_min_per_s": round(float(np.nanmin(b)) / sample_s, 2),
        "divergences": diagnostics.divergences,
        "headline": diagnostics.headline(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="shipped", help="shipped, acled or acled:FRONT[+FRONT...]")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--settings", nargs="+", default=["{}"], help="JSON objects of nutpie.sample arguments")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # the seed, in the fitting process
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.data, args.worker, args.draws, args.tune)))
        return 0
    rows = []
    for setting in args.settings:
        json.loads(setting)  # a clear error before any fit
        for seed in [int(s) for s in args.seeds.split(",")]:
            command = [sys.executable, __file__, "--data", args.data, "--draws", str(args.draws)]
            command += ["--tune", str(args.tune), "--worker", str(seed)]
            done = subprocess.run(
                command, env={**os.environ, WORKER_ENV: setting}, capture_output=True, text=True, check=False
            )
            if done.returncode:
                raise SystemExit(f"the fit with {setting}, seed {seed} failed:\n{done.stderr[-3000:]}")
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"{setting} seed {seed}: sampling {row['sample_s']} s, {row['leapfrogs_per_draw']} gradients/draw, "
                f"R-hat max {row['rhat_max']} ({row['rhat_worst']}), {row['elements_over_1_01']}/{row['elements']} "
                f"over 1.01, bulk ESS min {row['ess_bulk_min']} ({row['ess_bulk_worst']}), tail ESS min "
                f"{row['ess_tail_min']}, bulk ESS min per s {row['ess_bulk_min_per_s']}",
                flush=True,
            )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"{args.data.replace(':', '-')}.json"
        path.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Measure a dynamic-model fit: compile and sampling time, and every diagnostic.

Prints one line per step and, with ``--out``, writes the figures as JSON.  Data sets:

* ``shipped``: the shipped daily data with its interventions;
* ``acled``: ``../shared/data/acled_monthly_political_violence_15_countries_2021_2024.csv``
  (45 monthly series, window totals), read with ``--freq month``;
* ``acled:FRONT[+FRONT...]``: some fronts of that table (one front: a single monthly series).

Example::

    .venv/bin/python benchmarks/bench_dynamic.py --data acled:ukraine_battles --out benchmarks/results/dynamic
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ACLED = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "acled_monthly_political_violence_15_countries_2021_2024.csv"
)


def request_for(data: str, folder: Path):
    from forecast import names as n
    from forecast.jobs.data import DataRequest

    if data == "shipped":
        return DataRequest()
    if data == "acled":
        return DataRequest(events=(ACLED,), freq=n.FREQ_MONTH)
    if data.startswith("acled:"):
        from bench_dynamic_backtest import acled_subset

        path = acled_subset(data, folder)
        return DataRequest(events=(path,), freq=n.FREQ_MONTH)
    raise SystemExit(f"unknown data {data!r}: shipped, acled or acled:FRONT[+FRONT...]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="shipped")
    parser.add_argument("--draws", type=int, default=None, help="per chain (default: the dynamic model's, 2000)")
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target-accept", type=float, default=0.95)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    started = time.perf_counter()
    from forecast.checks.diagnostics import check_convergence
    from forecast.jobs.data import load_data
    from forecast.models.design import ModelOptions
    from forecast.models.dynamic import layout_of
    from forecast.models.model import DEFAULT_DRAWS, EscalationModel, SamplerSettings

    with tempfile.TemporaryDirectory() as folder:
        loaded = load_data(request_for(args.data, Path(folder)))
    model = EscalationModel(loaded.panel, loaded.interventions, options=ModelOptions(family="dynamic", changepoints=0))
    layout = layout_of(model.design)
    print(
        f"{args.data}: {len(model.design.fronts)} fronts x {len(model.design.periods)} {loaded.panel.freq}s, "
        f"{model.design.n_obs} observations, {int(layout.centred.sum())} fronts centred, "
        f"{int(layout.burst.sum())} with a burst",
        flush=True,
    )
    if args.draws is None:
        args.draws = DEFAULT_DRAWS["dynamic"]
    settings = SamplerSettings(
        draws=args.draws, tune=args.tune, target_accept=args.target_accept, random_seed=args.seed, progressbar=False
    )
    result = model.fit(settings)
    diagnostics = check_convergence(result.idata)
    total = time.perf_counter() - started
    figures = {
        "data": args.data,
        "fronts": len(model.design.fronts),
        "periods": len(model.design.periods),
        "observations": model.design.n_obs,
        "centred_fronts": int(layout.centred.sum()),
        "draws": args.draws,
        "tune": args.tune,
        "seed": args.seed,
        "target_accept": args.target_accept,
        "compile_s": round(result.timings.get("compile_s", 0.0), 1),
        "sample_s": round(result.timings.get("sample_s", 0.0), 1),
        "process_s": round(total, 1),
        "diagnostics": diagnostics.to_dict(),
        "headline": diagnostics.headline(),
    }
    print(f"compile {figures['compile_s']} s, sampling {figures['sample_s']} s, in all {figures['process_s']} s")
    print(figures["headline"])
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        name = args.data.replace(":", "-")
        (args.out / f"{name}-seed{args.seed}.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

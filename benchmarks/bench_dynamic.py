"""Measure a dynamic-model fit as ``forecast fit`` makes it, from process start to saved fit.

Times compile, sampling, the checks after it (diagnostics, replicated data, predictive checks,
summary, forecast draws) and writing ``fit.nc`` and ``summary.json`` (into a temporary folder),
and reports every diagnostic.

Prints one line per step and, with ``--out``, writes the figures as JSON.  Data sets:

* ``shipped``: the shipped daily data with its interventions;
* ``acled``: ``../shared/data/acled_monthly_political_violence_15_countries_2021_2024.csv``
  (45 monthly series, window totals), read with ``--freq month``;
* ``acled:FRONT[+FRONT...]``: some fronts of that table (one front: a single monthly series);
* ``killed``, ``killed:FRONT``: 360info's daily deaths in Lebanon and Gaza from running totals,
  as one-day windows (``bench_dynamic_backtest.killed_windows``), read with ``--freq day``.

Examples::

    .venv/bin/python benchmarks/bench_dynamic.py --data acled:ukraine_battles --out benchmarks/results/dynamic
    .venv/bin/python benchmarks/bench_dynamic.py --data shipped --draws 1000 --cold-and-warm

``--cold-and-warm`` runs the fit twice in fresh processes that share an empty PyTensor compile
directory and Numba cache: first cold (everything compiled), then warm (the compiled log
density loaded from that cache), and prints each process's wall time, start to finish.

``--weekly N`` is what a weekly job pays: N fits in fresh processes that share one compile cache,
of the table cut at ``--as-of`` (default: its last day) and the N - 1 weeks before it, oldest
first (``--cold`` starts from an empty cache; otherwise the machine's own caches are used).
``--constants`` builds the graph as ``forecast fit`` did before 7 December 2026: the data as
constants and no padded periods (``EscalationModel(reusable=False)``), so that every new table is
a new graph.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
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
    if data == "killed" or data.startswith("killed:"):
        from bench_dynamic_backtest import killed_windows

        fronts = data.split(":", 1)[1].split("+") if ":" in data else None
        return DataRequest(events=(killed_windows(folder, fronts),), freq=n.FREQ_DAY)
    raise SystemExit(f"unknown data {data!r}: shipped, acled, acled:FRONT[+FRONT...], killed or killed:FRONT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="shipped")
    parser.add_argument("--draws", type=int, default=None, help="per chain (default: the dynamic model's)")
    parser.add_argument("--tune", type=int, default=None, help="per chain (default: the dynamic model's)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target-accept", type=float, default=0.95)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--cold-and-warm", action="store_true", help="fit twice in fresh processes: empty compile caches, then warm"
    )
    parser.add_argument("--as-of", help="cut the table at this date (default: its last day)")
    parser.add_argument("--constants", action="store_true", help="the data as graph constants, no padding")
    parser.add_argument("--weekly", type=int, metavar="N", help="N weekly tables, oldest first, one process each")
    parser.add_argument("--cold", action="store_true", help="with --weekly: start from an empty compile cache")
    parser.add_argument("--label", default="", help=argparse.SUPPRESS)  # the JSON's name suffix (cold, warm)
    args = parser.parse_args()
    if args.cold_and_warm:
        cold_and_warm()
        return
    if args.weekly:
        weekly(args)
        return

    started = time.perf_counter()
    from dataclasses import replace

    import pandas as pd

    from forecast.jobs.fit import FitRequest, run_fit, write_fit
    from forecast.models.design import ModelOptions
    from forecast.models.dynamic import layout_of
    from forecast.models.model import DEFAULT_DRAWS, DEFAULT_TUNE, SamplerSettings

    if args.draws is None:
        args.draws = DEFAULT_DRAWS["dynamic"]
    if args.tune is None:
        args.tune = DEFAULT_TUNE["dynamic"]
    settings = SamplerSettings(
        draws=args.draws, tune=args.tune, target_accept=args.target_accept, random_seed=args.seed, progressbar=False
    )
    with tempfile.TemporaryDirectory() as folder:
        # What ``forecast fit`` does: load, build, sample, check, summarise and save fit.nc and summary.json.
        data = request_for(args.data, Path(folder))
        request = FitRequest(
            data=data if args.as_of is None else replace(data, as_of=pd.Timestamp(args.as_of)),
            options=ModelOptions(family="dynamic", changepoints=0),
            settings=settings,
        )
        outcome = run_fit(request, reusable=False if args.constants else None)
        sampled = time.perf_counter() - started
        write_fit(outcome, Path(folder) / "fit")
        total = time.perf_counter() - started
    model, result, diagnostics = outcome.model, outcome.result, outcome.diagnostics
    layout = layout_of(model.design)
    print(
        f"{args.data}: {len(model.design.fronts)} fronts x {len(model.design.periods)} {outcome.loaded.panel.freq}s, "
        f"{model.design.n_obs} observations, {int(layout.centred.sum())} fronts centred, "
        f"{int(layout.burst.sum())} with a burst",
        flush=True,
    )
    stats = result.idata.sample_stats
    leapfrogs = float(stats["n_steps"].mean()) if "n_steps" in stats else None
    figures = {
        "data": args.data,
        "fronts": len(model.design.fronts),
        "periods": len(model.design.periods),
        "as_of": str(outcome.loaded.as_of.date()),
        "graph": "constants" if args.constants else "reusable",
        "padded_periods": len(model.pad_days),
        "observations": model.design.n_obs,
        "centred_fronts": int(layout.centred.sum()),
        "draws": args.draws,
        "tune": args.tune,
        "seed": args.seed,
        "target_accept": args.target_accept,
        "label": args.label,
        "compile_s": round(result.timings.get("compile_s", 0.0), 1),
        "sample_s": round(result.timings.get("sample_s", 0.0), 1),
        # after sampling: diagnostics, replicated data, predictive checks, summary and forecast draws
        "checks_s": round(outcome.timings.get("checks_s", 0.0), 1),
        "write_s": round(total - sampled, 1),
        # process start to fit.nc and summary.json written, as the targets count it
        "process_s": round(total, 1),
        # gradient evaluations per kept draw (nutpie's n_steps; the tuning draws are not counted)
        "leapfrogs_per_draw": None if leapfrogs is None else round(leapfrogs, 1),
        "diagnostics": diagnostics.to_dict(),
        "headline": diagnostics.headline(),
    }
    print(
        f"compile {figures['compile_s']} s, sampling {figures['sample_s']} s, checks {figures['checks_s']} s, "
        f"writing {figures['write_s']} s; process start to saved fit {figures['process_s']} s"
    )
    if leapfrogs is not None:
        print(f"{leapfrogs:.1f} gradient evaluations per draw")
    print(figures["headline"])
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        name = args.data.replace(":", "-")
        suffix = f"-{args.label}" if args.label else ""
        path = args.out / f"{name}-seed{args.seed}{suffix}.json"
        path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


def weekly(args) -> None:
    """Fit the table cut at each of ``args.weekly`` weekly dates, oldest first, in fresh processes."""
    import pandas as pd

    from forecast.jobs.data import load_data

    with tempfile.TemporaryDirectory() as folder:
        last = pd.Timestamp(args.as_of) if args.as_of else load_data(request_for(args.data, Path(folder))).as_of
    dates = [(last - pd.Timedelta(weeks=k)).date().isoformat() for k in range(args.weekly - 1, -1, -1)]
    rest = ["--data", args.data, "--seed", str(args.seed), "--target-accept", str(args.target_accept)]
    rest += ["--draws", str(args.draws)] if args.draws is not None else []
    rest += ["--tune", str(args.tune)] if args.tune is not None else []
    rest += ["--constants"] if args.constants else []
    rest += ["--out", str(args.out)] if args.out else []
    walls = []
    with tempfile.TemporaryDirectory() as cache:
        env = fresh_cache_env(cache) if args.cold else dict(os.environ)
        for week, date in enumerate(dates, start=1):
            print(f"--- week {week}: table cut at {date}", flush=True)
            started = time.perf_counter()
            command = [sys.executable, __file__, *rest, "--as-of", date, "--label", f"week{week}-{date}"]
            subprocess.run(command, check=True, env=env)
            walls.append(time.perf_counter() - started)
    for week, (date, wall) in enumerate(zip(dates, walls, strict=True), start=1):
        print(f"week {week} ({date}): process wall, start to finish, {wall:.1f} s")


def cold_and_warm() -> None:
    """Run this script (less ``--cold-and-warm``) twice with one fresh compile cache; print both wall times."""
    command = [sys.executable, __file__, *[a for a in sys.argv[1:] if a != "--cold-and-warm"]]
    walls = {}
    with tempfile.TemporaryDirectory() as cache:
        env = fresh_cache_env(cache)
        for label in ("cold", "warm"):
            print(f"--- {label} process", flush=True)
            started = time.perf_counter()
            subprocess.run([*command, "--label", label], check=True, env=env)
            walls[label] = time.perf_counter() - started
    print(f"process wall, start to finish: cold {walls['cold']:.1f} s, warm {walls['warm']:.1f} s")


def fresh_cache_env(cache: str) -> dict[str, str]:
    """This process's environment with PyTensor's compile directory and Numba's cache in ``cache``."""
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = ",".join(
        f for f in [env.get("PYTENSOR_FLAGS", ""), f"base_compiledir={cache}/pytensor"] if f
    )
    env["NUMBA_CACHE_DIR"] = f"{cache}/numba"
    return env


if __name__ == "__main__":
    main()

"""Benchmark of the alerting path (``forecast alert``): a scheduled run and the detector.

Measures and prints:

1. **One scheduled run**: ``FRONTS`` fronts with ``DAYS`` days of simulated daily history already
   processed (the state file is prepared once and copied before each repetition), plus one
   new day.  Wall time of the whole process, interpreter start included
   (``python -m forecast.jobs.alert``), repeated ``--repeats`` times; median, min and max.
   The target is under 2 s.
2. **Detector throughput** on one core (``forecast.alerts.bocpd.update`` alone), in
   observations per second: one long series, and many fronts at once.  The target is at
   least 100,000 observations per second per core.

It is a script, not a test::

    .venv/bin/python benchmarks/bench_alerts.py                  # defaults below
    .venv/bin/python benchmarks/bench_alerts.py --repeats 3 --long-series 50000 \\
        --many-fronts 100x2000 --out benchmarks/results/alerts

numpy is pinned to one thread through the usual environment variables before it is imported.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import date, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from forecast.alerts.bocpd import KERNEL_MIN_STEPS, DetectorConfig, DetectorState, update  # noqa: E402

START = date(2023, 1, 1)


def simulate_events(path: Path, fronts: int, days: int, seed: int) -> None:
    """Bursty daily counts (negative binomial) with a level shift on some fronts."""
    rng = np.random.default_rng(seed)
    lines = ["date,front,count"]
    means = rng.uniform(1.0, 30.0, fronts)
    shift_day = rng.integers(days // 3, days, fronts)
    factor = rng.choice([0.2, 1.0, 3.0], fronts)
    for t in range(days):
        day = (START + timedelta(days=t)).isoformat()
        mean = np.where(t >= shift_day, means * factor, means)
        counts = rng.negative_binomial(2, 2 / (2 + mean))
        lines += [f"{day},front_{f:02d},{int(c)}" for f, c in enumerate(counts)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def alert_command(events: Path, state: Path, as_of: date, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "forecast.jobs.alert",
        "-q",
        "--events",
        str(events),
        "--state",
        str(state),
        "--as-of",
        as_of.isoformat(),
        "--notify",
        f"file:{out}",
    ]


def bench_scheduled_run(fronts: int, days: int, repeats: int, seed: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench_alerts_") as folder:
        root = Path(folder)
        history = root / "history.csv"
        full = root / "events.csv"
        simulate_events(full, fronts, days + 1, seed)
        text = full.read_text(encoding="utf-8").splitlines()
        history.write_text("\n".join(text[: 1 + fronts * days]) + "\n", encoding="utf-8")
        prepared = root / "prepared.sqlite"
        last_history_day = START + timedelta(days=days - 1)
        new_day = START + timedelta(days=days)
        started = time.perf_counter()
        subprocess.run(alert_command(history, prepared, last_history_day, root / "a.jsonl"), check=True, cwd=REPO)
        first_run = time.perf_counter() - started
        walls = []
        for _ in range(repeats):
            state = root / "state.sqlite"
            shutil.copyfile(prepared, state)
            started = time.perf_counter()
            done = subprocess.run(
                alert_command(full, state, new_day, root / "b.jsonl"), cwd=REPO, capture_output=True, text=True
            )
            walls.append(time.perf_counter() - started)
            if done.returncode != 0:
                raise RuntimeError(f"the scheduled run failed ({done.returncode}): {done.stderr}")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import forecast.jobs.alert"], check=True, cwd=REPO)
        import_only = time.perf_counter() - started
    return {
        "fronts": fronts,
        "history_days": days,
        "new_days": 1,
        "repeats": repeats,
        "wall_s_median": statistics.median(walls),
        "wall_s_min": min(walls),
        "wall_s_max": max(walls),
        "wall_s_all": walls,
        "first_run_over_history_s": first_run,
        "interpreter_and_imports_s": import_only,
    }


def throughput(n_fronts: int, n_steps: int, repeats: int, seed: int, config: DetectorConfig) -> dict[str, object]:
    counts = np.random.default_rng(seed).negative_binomial(2, 2 / 7, (n_fronts, n_steps)).astype(float)
    # Tables, caches and, for one long series, the compiled steps (numba, cached on disk).
    update(config, DetectorState.initial(n_fronts, config), counts[:, : min(2 * KERNEL_MIN_STEPS, n_steps)])
    rates = []
    for _ in range(repeats):
        state = DetectorState.initial(n_fronts, config)
        started = time.process_time()  # CPU time of this (single-threaded) process
        update(config, state, counts, report_above=0.5)
        rates.append(counts.size / (time.process_time() - started))
    return {
        "fronts": n_fronts,
        "steps": n_steps,
        "observations": int(counts.size),
        "likelihood": config.likelihood,
        "max_run_length": config.max_run_length,
        "obs_per_s_median": statistics.median(rates),
        "obs_per_s_all": rates,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fronts", type=int, default=10, help="fronts of the scheduled run (default 10)")
    parser.add_argument("--days", type=int, default=365, help="days of history before the new day (default 365)")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions of each measurement (default 5)")
    parser.add_argument("--long-series", type=int, default=100_000, help="length of the one long series")
    parser.add_argument("--many-fronts", default="100x2000", help="FRONTSxSTEPS of the many-fronts case")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, help="folder for bench_alerts.json")
    args = parser.parse_args(argv)
    many_f, many_t = (int(x) for x in args.many_fronts.lower().split("x"))

    scheduled = bench_scheduled_run(args.fronts, args.days, args.repeats, args.seed)
    results: dict[str, object] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "scheduled_run": scheduled,
        "throughput": [],
    }
    cases = [(1, args.long_series), (many_f, many_t)]
    for likelihood in ("negative_binomial", "poisson"):
        config = DetectorConfig(likelihood=likelihood)
        for n_fronts, n_steps in cases:
            results["throughput"].append(  # type: ignore[union-attr]
                throughput(n_fronts, n_steps, max(1, min(args.repeats, 3)), args.seed, config)
            )

    print(f"# bench_alerts  ({results['command']})")
    print(f"python {results['python']}, numpy {results['numpy']}, {results['cpus']} CPU(s)")
    print()
    print(
        f"scheduled run, {scheduled['fronts']} fronts x {scheduled['history_days']} days + 1 new day "
        f"(process wall time, interpreter start included, {scheduled['repeats']} runs):"
    )
    print(
        f"  median {scheduled['wall_s_median']:.2f} s  (min {scheduled['wall_s_min']:.2f}, max "
        f"{scheduled['wall_s_max']:.2f}; target < 2 s)"
    )
    print(
        f"  for reference: interpreter + imports {scheduled['interpreter_and_imports_s']:.2f} s; first run over "
        f"the whole history {scheduled['first_run_over_history_s']:.2f} s"
    )
    print()
    print("detector throughput, one core (observations per second, median; target >= 100,000):")
    print(f"  {'likelihood':<18} {'fronts':>6} {'steps':>8} {'obs/s':>12}")
    for row in results["throughput"]:  # type: ignore[union-attr]
        print(f"  {row['likelihood']:<18} {row['fronts']:>6} {row['steps']:>8} {row['obs_per_s_median']:>12,.0f}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench_alerts.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.out / 'bench_alerts.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

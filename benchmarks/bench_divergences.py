"""Count divergent draws of ``forecast fit`` over seeds: how often a default fit fails on one.

A single divergence in 8,000 draws fails a fit's checks, and it comes only now and then (3 of
23 default fits of the shipped data in two sessions), so one fit says little about a change to
the model's parameterisation.  This runs ``forecast fit`` once per seed, each in a fresh process
(compiled code from the machine's caches), and prints per seed the divergences, the largest
R-hat, the smallest bulk ESS, the gradients per draw, the step size and the sampling time, then
the totals.  A lower ``--target-accept`` (larger steps) makes divergences commoner where the
geometry is hard, so two versions of the model can be told apart with fewer, shorter fits.

Examples::

    .venv/bin/python benchmarks/bench_divergences.py --seeds 1-6 --target-accept 0.8 --draws 1000
    .venv/bin/python benchmarks/bench_divergences.py --seeds 1-4 --out benchmarks/results/dynamic/window_whitened

Any ``forecast fit`` data option can follow ``--``, e.g. ``-- --events FILE --freq month``.
The code measured is the ``forecast`` package that ``python -m forecast`` finds from the working
directory (a checkout's own, before ``PYTHONPATH``); the first line names it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def seeds_of(text: str) -> list[int]:
    """``1-4,7`` -> ``[1, 2, 3, 4, 7]``."""
    out: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        out.extend(range(int(first), int(last or first) + 1))
    return out


def fit(seed: int, args: argparse.Namespace, extra: list[str], folder: Path) -> dict[str, object]:
    command = [sys.executable, "-m", "forecast", "-q", "fit", "--out", str(folder), "--seed", str(seed)]
    command += ["--target-accept", str(args.target_accept)]
    command += ["--draws", str(args.draws)] if args.draws else []
    completed = subprocess.run([*command, *extra], capture_output=True, text=True, env=os.environ.copy())
    if not (folder / "summary.json").exists():
        message = f"seed {seed}: forecast fit wrote no summary (exit {completed.returncode}):\n{completed.stderr}"
        raise SystemExit(message)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    import arviz as az

    stats = az.from_netcdf(folder / "fit.nc").sample_stats
    diagnostics = summary["diagnostics"]
    return {
        "seed": seed,
        "divergences": int(diagnostics["divergences"]),
        "rhat_max": round(float(diagnostics["rhat_max"]), 4),
        "ess_bulk_min": round(float(diagnostics["ess_bulk_min"])),
        "passed": bool(diagnostics["ok"]),
        "failures": diagnostics["failures"],
        "gradients_per_draw": round(float(stats["n_steps"].mean()), 1),
        "step_size": [round(float(v), 4) for v in stats["step_size"].to_numpy()[:, -1]],
        "sample_s": summary["timings_s"]["sample_s"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1-4", help="e.g. 1-4,7 (default 1-4)")
    parser.add_argument("--target-accept", type=float, default=0.95)
    parser.add_argument("--draws", type=int, default=None, help="per chain (default: the model's)")
    parser.add_argument("--out", type=Path, help="folder for divergences.json")
    parser.add_argument("--label", default="", help="name suffix of the JSON file")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    rows = []
    # ``python -m`` puts the working directory first on the path: name the package actually measured.
    probe = [sys.executable, "-c", "import forecast; print(forecast.__file__)"]
    package = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
    print(f"target_accept {args.target_accept}, draws {args.draws or 'default'}, measuring {package}")
    print("seed  divergences  rhat_max  ess_bulk_min  grad/draw  step_size        sample_s  passed")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds_of(args.seeds):
            row = fit(seed, args, extra, Path(tmp) / f"seed{seed}")
            rows.append(row)
            print(
                f"{seed:>4}  {row['divergences']:>11}  {row['rhat_max']:>8}  {row['ess_bulk_min']:>12}  "
                f"{row['gradients_per_draw']:>9}  {str(row['step_size']):<15}  {row['sample_s']:>8.1f}  "
                f"{row['passed']}",
                flush=True,
            )
    total = sum(int(r["divergences"]) for r in rows)
    with_any = sum(int(r["divergences"]) > 0 for r in rows)
    mean_s = sum(float(r["sample_s"]) for r in rows) / len(rows)
    print(f"total: {total} divergences, {with_any} of {len(rows)} fits with any; mean sampling {mean_s:.1f} s")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        name = f"divergences{'-' + args.label if args.label else ''}.json"
        settings = {"target_accept": args.target_accept, "draws": args.draws, "data": extra, "package": package}
        result = {"settings": settings, "fits": rows, "total": total, "fits_with_any": with_any}
        (args.out / name).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

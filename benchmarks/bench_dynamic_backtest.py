"""Check a model's rolling-origin backtest against the targets of issue #14, per front and pooled.

Runs ``forecast backtest`` for each ``--model`` on the same origins (or re-reads its files with
``--tables-only``) and prints, from ``scores.csv`` and ``summary.json``:

* the one-step model CRPS against the mean absolute error of "next period = last period",
  computed from the data (the ``last_value`` column), pooled and per front (target: at most 0.9);
* the one-step model CRPS against the moving average's on the same targets (target: at most 1);
* the 90% coverage at one step and at the last horizon step (target: 0.85 to 0.95), judged on
  the randomised PIT (the share of targets whose PIT lies in [0.05, 0.95],
  :func:`forecast.evaluation.scores.pit_coverage`: 0.9 under a calibrated forecast), with the
  inclusive interval's coverage beside it for reference (on counts it is at least 0.9 under a
  calibrated forecast and near 1 where zeros are likely, so it cannot judge calibration there);
* the share of fits that passed every diagnostic (target: at least 95%).

Targets are those with a "last value" (period counts, and window totals of whole periods such
as the ACLED months).  Data sets: ``shipped`` (the shipped daily data, horizon 28 days),
``acled`` (the 45 monthly ACLED series of ``../shared/data/``, horizon 3), ``acled:FRONT[+FRONT]``
(some of them) and ``simulated``: a weekly panel drawn by :func:`forecast.testing.simulate.simulate_panel`
(6 fronts, 104 weeks, two changepoints per front with log jumps of sd 0.7, daily negative binomial
dispersion 10, seed 14), written as weekly totals and read with ``--freq week --horizon 4``.  Its
generator is the changepoint family's, not the dynamic model's: flat regimes with abrupt jumps.
``killed``: 360info's daily deaths in Lebanon and in Gaza, October 2023 to September 2024, from
running totals (:func:`killed_windows`), read with ``--freq day --horizon 28``; ``killed-weekly``:
the same on a weekly grid, ``--freq week --horizon 4``.  No model setting was chosen on them.
Examples::

    .venv/bin/python benchmarks/bench_dynamic_backtest.py --data acled --models dynamic,changepoint \\
        --out benchmarks/results/backtest/dynamic
    .venv/bin/python benchmarks/bench_dynamic_backtest.py --data shipped --origins 20 --models dynamic
    .venv/bin/python benchmarks/bench_dynamic_backtest.py --data simulated --models dynamic,changepoint

``--seed`` changes only the backtest's base seed (the chains' starting points and noise, the
forecast draws): run the same model twice with two seeds to see how far a figure moves by chance.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.evaluation.scores import pit_coverage

ACLED = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "acled_monthly_political_violence_15_countries_2021_2024.csv"
)
KILLED = ACLED.parent / "lebanon_israel_gaza_daily_killed_cumulative_360info.csv"
#: The deaths table's fronts: its column of running totals and the front's name.
KILLED_FRONTS = {"killed_in_lebanon": "lebanon_killed", "palestine_total": "gaza_killed"}
DATA = {
    "shipped": [],
    "acled": ["--events", str(ACLED), "--freq", "month", "--horizon", "3"],
}
MODEL_METHOD = "model"
MOVING_AVERAGE = "moving_average"
#: The issue's targets.
CRPS_OVER_NAIVE_MAE = 0.9
COVERAGE = (0.85, 0.95)
PASSING_SHARE = 0.95
FRONT_SHARE = 2.0 / 3.0


def acled_subset(data: str, folder: Path) -> Path:
    """Write the fronts named by ``acled:FRONT[+FRONT...]`` from the ACLED table to a CSV in ``folder``."""
    fronts = data.split(":", 1)[1].split("+")
    lines = ACLED.read_text(encoding="utf-8").splitlines()
    kept = [lines[0]] + [line for line in lines[1:] if line.split(",")[2] in fronts]
    missing = sorted(set(fronts) - {line.split(",")[2] for line in kept[1:]})
    if missing:
        raise SystemExit(f"no front {missing} in {ACLED}")
    path = folder / f"{'+'.join(fronts)}.csv"
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return path


def killed_windows(folder: Path, fronts: list[str] | None = None) -> Path:
    """Write the deaths table's running totals as window totals (``date, end_date, front, count``) to ``folder``.

    360info's cumulative deaths in Lebanon and in Gaza (``../shared/data/SOURCES.md``), one total a
    day, turned into windows by :func:`forecast.data.cumulative.cumulative_to_windows`, counting from
    the day after the first total.  Of a duplicated date the last row is kept (as SOURCES.md says);
    a missing total, or one below the highest so far (a correction downwards), is left out, so its
    days run on into the next window, which ends on a total at least as high: the counts add up to
    the last total and no day is invented.  Most windows are one day long, and read as one-day
    window totals (observed on their day only).
    """
    from forecast.data.cumulative import cumulative_to_windows

    missing = sorted(set(fronts or ()) - set(KILLED_FRONTS.values()))
    if missing:
        raise SystemExit(f"no front {missing} in {KILLED}: {sorted(KILLED_FRONTS.values())}")
    table = pd.read_csv(KILLED, parse_dates=["date"]).drop_duplicates("date", keep="last").sort_values("date")
    parts = []
    for column, front in KILLED_FRONTS.items():
        if fronts is not None and front not in fronts:
            continue
        totals = table[["date", column]].dropna()
        totals = totals[totals[column] >= totals[column].cummax()]
        since_first = totals.iloc[1:].assign(**{column: totals[column].iloc[1:] - totals[column].iloc[0]})
        start = totals["date"].iloc[0] + pd.Timedelta(days=1)
        parts.append(cumulative_to_windows(since_first, date_col="date", total_col=column, front=front, start=start))
    path = folder / f"killed360{'-' + '+'.join(fronts) if fronts else ''}.csv"
    frame = pd.concat(parts, ignore_index=True)[["date", "end_date", "front", "count"]]
    frame.to_csv(path, index=False, date_format="%Y-%m-%d")
    return path


SIMULATED = {"fronts": 6, "weeks": 104, "changepoints": 2, "jump_sd": 0.7, "dispersion": 10.0, "seed": 14}


def simulated_weekly(folder: Path) -> Path:
    """Write the ``simulated`` weekly panel (see the module docstring) as weekly totals to a CSV in ``folder``."""
    from forecast.testing.simulate import simulate_panel

    start = pd.Timestamp("2022-01-03")  # a Monday: the weekly grid's periods start on Mondays
    _, _, events = simulate_panel(
        fronts=SIMULATED["fronts"],
        days=7 * SIMULATED["weeks"],
        start=start,
        n_changepoints=SIMULATED["changepoints"],
        jump_sd=SIMULATED["jump_sd"],
        dispersion=SIMULATED["dispersion"],
        random_seed=SIMULATED["seed"],
    )
    frame = events.frame
    week = (frame["date"] - start).dt.days // 7
    totals = frame.groupby([week.rename("week"), "front"], sort=True)["count"].sum().reset_index()
    totals["date"] = start + pd.to_timedelta(7 * totals["week"], unit="D")
    totals["end_date"] = totals["date"] + pd.Timedelta(days=6)
    path = folder / "simulated_weekly.csv"
    columns = ["date", "end_date", "front", "count"]
    totals[columns].to_csv(path, index=False, date_format="%Y-%m-%d")
    return path


def data_args(data: str, folder: Path) -> list[str]:
    """``shipped``, ``acled`` (45 monthly series), ``acled:FRONT[+FRONT...]`` (some of them), ``simulated``,
    ``killed`` (the daily deaths, horizon 28 days) or ``killed-weekly`` (the same on a weekly grid, horizon 4)."""
    if data in DATA:
        return DATA[data]
    if data == "simulated":
        folder.mkdir(parents=True, exist_ok=True)
        return ["--events", str(simulated_weekly(folder)), "--freq", "week", "--horizon", "4"]
    if data in ("killed", "killed-weekly"):
        folder.mkdir(parents=True, exist_ok=True)
        grid = ["--freq", "day", "--horizon", "28"] if data == "killed" else ["--freq", "week", "--horizon", "4"]
        return ["--events", str(killed_windows(folder)), *grid]
    if data.startswith("acled:"):
        folder.mkdir(parents=True, exist_ok=True)
        return ["--events", str(acled_subset(data, folder)), *DATA["acled"][2:]]
    raise SystemExit(f"unknown data {data!r}: shipped, acled, acled:FRONT, simulated, killed or killed-weekly")


def run(model: str, data: str, origins: int, workers: int, out: Path, seed: int) -> float:
    command = [sys.executable, "-m", "forecast", "-q", "backtest", *data_args(data, out.parent / "inputs")]
    command += ["--origins", str(origins), "--seed", str(seed)]
    command += ["--model", model, "--workers", str(workers), "--out", str(out)]
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def evaluate(folder: Path) -> dict[str, object]:
    scores = pd.read_csv(folder / "scores.csv")
    summary = json.loads((folder / "summary.json").read_text())
    periods = scores[scores["last_value"].notna()]
    last_step = int(periods["horizon"].max())
    one = periods[periods["horizon"] == 1]
    model = one[one["method"] == MODEL_METHOD].set_index(["origin", "front"])
    average = one[one["method"] == MOVING_AVERAGE].set_index(["origin", "front"])
    common = model.index.intersection(average.index)
    model, average = model.loc[common], average.loc[common]
    naive_error = (model["observed"] - model["last_value"]).abs()
    per_front = pd.DataFrame(
        {
            "crps": model["crps"].groupby(level="front").mean(),
            "naive_mae": naive_error.groupby(level="front").mean(),
            "moving_average_crps": average["crps"].groupby(level="front").mean(),
            "coverage_90": model["in_90"].groupby(level="front").mean(),
            "pit_coverage_90": model["pit"].groupby(level="front").agg(lambda p: pit_coverage(p.to_numpy(), 0.9)),
        }
    )
    per_front["crps_over_naive_mae"] = per_front["crps"] / per_front["naive_mae"]
    per_front["crps_over_moving_average"] = per_front["crps"] / per_front["moving_average_crps"]
    last = periods[(periods["horizon"] == last_step) & (periods["method"] == MODEL_METHOD)]
    diagnostics = [str(o.get("diagnostics", "")) for o in summary["origins"] if "diagnostics" in o]
    passed = sum(1 for d in diagnostics if not d.startswith("FIT FAILED"))
    finite = per_front[np.isfinite(per_front["crps_over_naive_mae"])]
    result = {
        "targets": int(len(model)),
        "fronts": int(len(per_front)),
        "pooled_crps_over_naive_mae": float(model["crps"].mean() / naive_error.mean()),
        "pooled_crps_over_moving_average": float(model["crps"].mean() / average["crps"].mean()),
        "fronts_crps_at_most_0_9_naive_mae": int((finite["crps_over_naive_mae"] <= CRPS_OVER_NAIVE_MAE).sum()),
        "fronts_at_least_as_good_as_moving_average": int((per_front["crps_over_moving_average"] <= 1.0).sum()),
        "pit_coverage_90_step_1": pit_coverage(model["pit"].to_numpy(), 0.9),
        f"pit_coverage_90_step_{last_step}": pit_coverage(last["pit"].to_numpy(), 0.9),
        "coverage_90_step_1": float(model["in_90"].mean()),
        f"coverage_90_step_{last_step}": float(last["in_90"].mean()),
        "zero_share_step_1": float((model["observed"] == 0).mean()),
        "fits": len(diagnostics),
        "fits_passing": passed,
        "fit_s_mean": float(np.mean([o.get("fit_s", 0.0) for o in summary["origins"]])),
        "per_front": per_front.round(4).reset_index().to_dict(orient="records"),
    }
    share = lambda k: result[k] / max(1, result["fronts"])  # noqa: E731
    result["meets"] = {
        "crps_vs_naive_pooled": result["pooled_crps_over_naive_mae"] <= CRPS_OVER_NAIVE_MAE,
        "crps_vs_naive_two_thirds_of_fronts": share("fronts_crps_at_most_0_9_naive_mae") >= FRONT_SHARE,
        "vs_moving_average_pooled": result["pooled_crps_over_moving_average"] <= 1.0,
        "vs_moving_average_two_thirds_of_fronts": share("fronts_at_least_as_good_as_moving_average") >= FRONT_SHARE,
        "coverage_step_1": COVERAGE[0] <= result["pit_coverage_90_step_1"] <= COVERAGE[1],
        "coverage_last_step": COVERAGE[0] <= result[f"pit_coverage_90_step_{last_step}"] <= COVERAGE[1],
        "fits_passing": passed >= PASSING_SHARE * max(1, len(diagnostics)),
    }
    return result


def table(label: str, result: dict[str, object]) -> list[str]:
    meets = result["meets"]
    steps = [k.rsplit("_", 1)[1] for k in result if k.startswith("pit_coverage_90_step_")]
    lines = [
        f"### {label}: {result['targets']} one-step targets, {result['fronts']} fronts, "
        f"{result['fits_passing']}/{result['fits']} fits passed every diagnostic, "
        f"mean fit {result['fit_s_mean']:.1f} s",
        "",
        "| figure | value | target | met |",
        "|---|---|---|---|",
        f"| one-step CRPS / naive MAE, pooled | {result['pooled_crps_over_naive_mae']:.3f} | <= 0.9 | "
        f"{meets['crps_vs_naive_pooled']} |",
        f"| fronts with CRPS <= 0.9 x naive MAE | {result['fronts_crps_at_most_0_9_naive_mae']}/{result['fronts']} "
        f"| >= 2/3 | {meets['crps_vs_naive_two_thirds_of_fronts']} |",
        f"| one-step CRPS / moving average's, pooled | {result['pooled_crps_over_moving_average']:.3f} | <= 1 | "
        f"{meets['vs_moving_average_pooled']} |",
        f"| fronts at least as good as the moving average | {result['fronts_at_least_as_good_as_moving_average']}/"
        f"{result['fronts']} | >= 2/3 | {meets['vs_moving_average_two_thirds_of_fronts']} |",
    ]
    for step in steps:
        met = meets["coverage_step_1"] if step == "1" else meets["coverage_last_step"]
        lines.append(
            f"| 90% coverage (randomised PIT), step {step} | {result[f'pit_coverage_90_step_{step}']:.3f} | "
            f"0.85-0.95 | {met} |"
        )
    for step in steps:
        lines.append(
            f"| 90% interval coverage, step {step} (reference: >= 0.9 if calibrated) | "
            f"{result[f'coverage_90_step_{step}']:.3f} | | |"
        )
    lines.append(f"| one-step outcomes that are 0 | {result['zero_share_step_1']:.3f} | | |")
    lines.append(
        f"| fits passing every diagnostic | {result['fits_passing']}/{result['fits']} | >= 95% | "
        f"{meets['fits_passing']} |"
    )
    lines += [
        "",
        "| front | CRPS | naive MAE | ratio | moving average CRPS | 90% PIT coverage | 90% interval coverage |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["per_front"]:
        lines.append(
            f"| {row['front']} | {row['crps']:.3g} | {row['naive_mae']:.3g} | {row['crps_over_naive_mae']:.3f} | "
            f"{row['moving_average_crps']:.3g} | {row['pit_coverage_90']:.2f} | {row['coverage_90']:.2f} |"
        )
    return lines + [""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="acled", help="shipped, acled, acled:FRONT[+FRONT...] or simulated")
    parser.add_argument("--models", default="dynamic", help="comma-separated: dynamic, changepoint")
    parser.add_argument("--origins", type=int, default=12)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--seed", type=int, default=1, help="the backtest's base seed (default 1, as in every earlier run)"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/backtest/dynamic"))
    parser.add_argument("--tables-only", action="store_true", help="re-read the backtests' files only")
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="with --tables-only: read the backtests here, write the tables to --out",
    )
    parser.add_argument("--resume", action="store_true", help="re-read the models whose backtest is there already")
    args = parser.parse_args()
    if args.source and not args.tables_only:
        parser.error("--from reads finished backtests: give it with --tables-only")
    source = args.source or args.out
    results = {}
    lines = []
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        folder = (source if args.tables_only else args.out) / f"{args.data.replace(':', '-')}-{model}"
        done = args.tables_only or (args.resume and (folder / "summary.json").exists())
        wall = None if done else run(model, args.data, args.origins, args.workers, folder, args.seed)
        result = evaluate(folder)
        result["wall_s"] = round(wall, 1) if wall is not None else None
        results[model] = result
        lines += table(f"{args.data}, {model} model", result)
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.data.replace(":", "-")
    (args.out / f"{stem}.md").write_text(text + "\n", encoding="utf-8")
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

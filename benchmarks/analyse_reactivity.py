"""How strongly a backtest's one-step forecasts follow the last observation, against the moving average.

Reads the ``scores.csv`` of one or more backtests (``bench_dynamic_backtest.py``) and prints, per file:

* the slope of ``(model mean - moving average) / moving average`` on
  ``(last value - moving average) / moving average`` over every one-step target: 0 is the
  moving average itself, 1 the last value (the weight on the last value is ``1/k + slope (1 - 1/k)``
  for a ``k``-period average);
* one-step CRPS against the moving average's and the mean log bias of both, split by where the
  last value lay against the moving average (above, near, below: ``|log ratio| <= 0.15``);
* fronts at least as good as the moving average, and fronts whose CRPS is at most the mean
  absolute error of "next period = last period" (computed from the outcomes in the file);
* the same reaction in log terms, separately after a last value above and below the moving
  average (``|log ratio| > 0.05``): the slope on ``log((last + 1) / (average + 1))`` of
  ``log((x + 1) / (average + 1))`` for the model's mean, lower and upper quartiles and their
  midpoint, and for the outcome itself (what a forecaster should follow).

With ``--events TABLE`` (the table the backtest read: ``date``, ``end_date``, ``front``, ``count``)
it also prints what exponential smoothing of the rates with a few fixed weights scores on the same
targets: a forecaster that follows the last value with that weight (point errors only, against the
moving average's and the last value's from the file).  Example::

    .venv/bin/python benchmarks/analyse_reactivity.py \
        benchmarks/results/backtest/period_dispersion/acled-dynamic/scores.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

NEAR = 0.15
ASYMMETRY_NEAR = 0.05


def one_step(path: Path) -> pd.DataFrame:
    scores = pd.read_csv(path)
    scores = scores[scores["horizon"] == 1]

    def method(name: str) -> pd.DataFrame:
        return scores[scores["method"] == name].set_index(["front", "origin"])

    model, average, last = method("model"), method("moving_average"), method("no_change")
    return pd.DataFrame(
        {
            "model_crps": model["crps"],
            "average_crps": average["crps"],
            "model_mean": model["mean"],
            "model_q25": model["q25"],
            "model_q75": model["q75"],
            "average": average["mean"],
            "last": last["mean"],
            "observed": model["observed"],
            "target_start": model["target_start"],
            "target_end": model["target_end"],
        }
    ).dropna()


def report(path: Path) -> None:
    table = one_step(path)
    x = (table["last"] - table["average"]) / table["average"].where(table["average"] > 0)
    y = (table["model_mean"] - table["average"]) / table["average"].where(table["average"] > 0)
    keep = np.isfinite(x) & np.isfinite(y)
    slope, intercept = np.polyfit(x[keep], y[keep], 1)
    print(f"{path}: {len(table)} one-step targets")
    print(f"  slope on the last value's excess {slope:.3f}, intercept {intercept:.3f}")
    position = np.log((table["last"] + 1) / (table["average"] + 1))
    for label, rows in (
        ("last above the average", position > NEAR),
        ("last near the average", position.abs() <= NEAR),
        ("last below the average", position < -NEAR),
    ):
        part = table[rows]
        bias = np.log((part[["model_mean", "average"]] + 1).div(part["observed"] + 1, axis=0)).mean()
        ratio = part["model_crps"].sum() / part["average_crps"].sum()
        print(
            f"  {label:<24} n {len(part):>4}  CRPS / average's {ratio:.3f}  "
            f"log bias model {bias['model_mean']:+.3f} average {bias['average']:+.3f}"
        )
    naive = (table["last"] - table["observed"]).abs()
    fronts = table.assign(naive=naive).groupby(level="front").mean(numeric_only=True)
    beat_average = int((fronts["model_crps"] <= fronts["average_crps"]).sum())
    beat_naive = int((fronts["model_crps"] <= fronts["naive"]).sum())
    print(f"  fronts at least as good as the moving average: {beat_average}/{len(fronts)}")
    print(f"  fronts with CRPS <= the last value's absolute error: {beat_naive}/{len(fronts)}")
    asymmetry(table)


def asymmetry(table: pd.DataFrame) -> None:
    """Slopes, in log terms against the moving average, after a last value above and below it."""

    def log_ratio(values: pd.Series) -> pd.Series:
        return np.log((values + 1) / (table["average"] + 1))

    last = log_ratio(table["last"])
    columns = {
        "mean": table["model_mean"],
        "q25": table["model_q25"],
        "q75": table["model_q75"],
        "quartiles' midpoint": (table["model_q25"] + table["model_q75"]) / 2,
        "outcome": table["observed"],
    }
    for label, rows in (("above", last > ASYMMETRY_NEAR), ("below", last < -ASYMMETRY_NEAR)):
        slopes = ", ".join(
            f"{name} {np.polyfit(last[rows], log_ratio(values)[rows], 1)[0]:+.2f}" for name, values in columns.items()
        )
        print(f"  last {label} the average (n {int(rows.sum())}), slope on the last value in logs: {slopes}")


def smoothing(events: Path, table: pd.DataFrame) -> None:
    """Point errors of exponential smoothing of the training rates on the one-step targets of ``table``."""
    counts = pd.read_csv(events, parse_dates=["date", "end_date"])
    counts["days"] = (counts["end_date"] - counts["date"]).dt.days + 1
    series = {front: rows.sort_values("date") for front, rows in counts.groupby("front")}
    weights = (0.2, 0.3, 0.4, 0.5, 0.6)
    rows = []
    for (front, _), target in table.iterrows():
        history = series[front]
        rates = (history["count"] / history["days"])[history["end_date"] < pd.Timestamp(target["target_start"])]
        days = (pd.Timestamp(target["target_end"]) - pd.Timestamp(target["target_start"])).days + 1
        row = {
            "front": front,
            "average": abs(target["average"] - target["observed"]),
            "last": abs(target["last"] - target["observed"]),
        }
        for w in weights:
            level = rates.iloc[0]
            for rate in rates.iloc[1:]:
                level = w * rate + (1 - w) * level
            row[f"smoothing {w}"] = abs(level * days - target["observed"])
        rows.append(row)
    mean = pd.DataFrame(rows).groupby("front").mean()
    for column in [f"smoothing {w}" for w in weights]:
        print(
            f"  {column}: point error <= the moving average's on {(mean[column] <= mean['average']).sum()}/{len(mean)} "
            f"fronts, <= the last value's on {(mean[column] <= mean['last']).sum()}/{len(mean)}; "
            f"pooled ratio to the moving average's {mean[column].sum() / mean['average'].sum():.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scores", type=Path, nargs="+", help="scores.csv of a backtest")
    parser.add_argument("--events", type=Path, help="the monthly table the backtest read, for the smoothing rows")
    args = parser.parse_args()
    for path in args.scores:
        report(path)
    if args.events is not None:
        print(f"exponential smoothing of {args.events.name}, on the one-step targets of {args.scores[0]}")
        smoothing(args.events, one_step(args.scores[0]))


if __name__ == "__main__":
    main()

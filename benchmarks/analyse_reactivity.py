"""How strongly a backtest's one-step forecasts follow the last observation, against the moving average.

Reads the ``scores.csv`` of one or more backtests (``bench_dynamic_backtest.py``) and prints, per file:

* the slope of ``(model mean - moving average) / moving average`` on
  ``(last value - moving average) / moving average`` over every one-step target: 0 is the
  moving average itself, 1 the last value (the weight on the last value is ``1/k + slope (1 - 1/k)``
  for a ``k``-period average);
* one-step CRPS against the moving average's and the mean log bias of both, split by where the
  last value lay against the moving average (above, near, below: ``|log ratio| <= 0.15``);
* fronts at least as good as the moving average.

With ``--events FILE --freq month`` it also prints the same counts for exponential smoothing of the
rates with a few fixed weights, over the same origins: what a forecaster that follows the last value
with that weight would score (point errors only).  Example::

    .venv/bin/python benchmarks/analyse_reactivity.py benchmarks/results/backtest/period_dispersion/acled-dynamic/scores.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

NEAR = 0.15


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
            "average": average["mean"],
            "last": last["mean"],
            "observed": model["observed"],
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
    fronts = table.groupby(level="front")[["model_crps", "average_crps"]].mean()
    print(f"  fronts at least as good as the moving average: {(fronts.model_crps <= fronts.average_crps).sum()}/{len(fronts)}")


def smoothing(events: Path, origins: list[str], window: int = 3) -> None:
    """Point errors of exponential smoothing of monthly rates against the ``window``-period average."""
    table = pd.read_csv(events, parse_dates=["date", "end_date"])
    table["days"] = (table["end_date"] - table["date"]).dt.days + 1
    weights = (0.2, 0.3, 0.4, 0.5, 0.6)
    errors: dict[str, list[dict[str, float]]] = {}
    for front, rows in table.groupby("front", sort=True):
        rows = rows.sort_values("date")
        counts, days = rows["count"].to_numpy(float), rows["days"].to_numpy(float)
        rates, ends = counts / days, rows["end_date"].to_numpy()
        for origin in origins:
            i = int(np.searchsorted(ends, np.datetime64(origin), side="right"))
            if i >= len(rates) or i < window:
                continue
            out = {"average": abs(rates[i - window : i].mean() * days[i] - counts[i])}
            for w in weights:
                level = rates[0]
                for rate in rates[1:i]:
                    level = w * rate + (1 - w) * level
                out[f"smoothing {w}"] = abs(level * days[i] - counts[i])
            errors.setdefault(str(front), []).append(out)
    mean = pd.DataFrame({front: pd.DataFrame(rows).mean() for front, rows in errors.items()}).T
    for column in mean.columns[1:]:
        better = (mean[column] <= mean["average"]).sum()
        print(
            f"  {column}: point error <= the {window}-period average's on {better}/{len(mean)} fronts, "
            f"pooled ratio {mean[column].sum() / mean['average'].sum():.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scores", type=Path, nargs="+", help="scores.csv of a backtest")
    parser.add_argument("--events", type=Path, help="the monthly table the backtest read, for the smoothing rows")
    args = parser.parse_args()
    for path in args.scores:
        report(path)
    if args.events is not None:
        origins = sorted(pd.read_csv(args.scores[0])["origin"].unique())
        print(f"exponential smoothing of {args.events.name}, origins {origins[0]} .. {origins[-1]}")
        smoothing(args.events, origins)


if __name__ == "__main__":
    main()

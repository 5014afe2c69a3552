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
  midpoint, and for the outcome itself (what a forecaster should follow);
* per front (:func:`where_it_loses`): how the model's ratio to the moving average tracks how much
  the average beats the last value there, and how far the outcome and the model's mean move
  toward the average on the fronts that lose and on those that win.

With ``--events TABLE`` (the table the backtest read: ``date``, ``end_date``, ``front``, ``count``)
it also prints what exponential smoothing of the rates scores on the same targets: a forecaster that
follows the last value with a weight (point errors only, against the moving average's and the last
value's from the file).  First with a few fixed weights, then with weights chosen from each origin's
training data alone, per front and one for all fronts: a fixed weight that scores well was picked
after seeing the outcomes, a fitted one is what a forecaster could have known.  Then
(:func:`predictability`) whether a front's training months, through the autocorrelation of their
changes, predict how far the model and the outcomes move toward the average.  Example::

    .venv/bin/python benchmarks/analyse_reactivity.py \
        benchmarks/results/backtest/rerun_2e95976/acled-dynamic/scores.csv \
        --events ../shared/data/acled_monthly_political_violence_15_countries_2021_2024.csv
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
    where_it_loses(table, fronts)


def where_it_loses(table: pd.DataFrame, fronts: pd.DataFrame) -> None:
    """Which fronts the model loses to the moving average on, and how far their outcomes move.

    Per front: the model's CRPS over the moving average's, against the moving average's CRPS over
    the last value's absolute error (how much better than "next = last" averaging is on that
    front), their correlation across fronts in logs; and, in logs against the last value, the
    slope of the outcome and of the model's mean on the moving average (0: the last value, 1: the
    moving average, above 1: beyond it, back toward an older level).
    """
    ratio = fronts["model_crps"] / fronts["average_crps"]
    averaging = fronts["average_crps"] / fronts["naive"]
    keep = np.isfinite(np.log(ratio)) & np.isfinite(np.log(averaging))
    correlation = np.corrcoef(np.log(ratio[keep]), np.log(averaging[keep]))[0, 1]
    print(
        "  per front, log(model CRPS / average's) against log(average's CRPS / last value's error): "
        f"correlation {correlation:+.2f}"
    )

    outcome, model = toward_average(table, table["observed"]), toward_average(table, table["model_mean"])
    for label, rows in (("losing to", ratio > 1), ("at least as good as", ratio <= 1)):
        print(
            f"  fronts {label} the moving average ({int(rows.sum())}): slope toward the average, median, "
            f"outcome {outcome[rows].median():+.2f}, model's mean {model[rows].median():+.2f}"
        )


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


def toward_average(table: pd.DataFrame, values: pd.Series) -> pd.Series:
    """Per front, the slope of ``values`` on the moving average, in logs against the last value."""
    x = np.log((table["average"] + 1) / (table["last"] + 1))
    y = np.log((values + 1) / (table["last"] + 1))
    return (x * y).groupby(level="front").sum() / (x * x).groupby(level="front").sum()


#: Weights tried when a smoothing weight is chosen from the training data; the first periods are its burn-in.
FITTED_WEIGHTS = np.round(np.arange(0.05, 1.0001, 0.05), 2)
BURN_IN = 3


def smoothed(rates: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exponential smoothing of ``rates`` from its first value: one-step forecasts (weight, period), last level."""
    level = np.full(weights.shape, rates[0])
    forecasts = np.empty((len(weights), len(rates)))
    for t, rate in enumerate(rates):
        forecasts[:, t] = level
        level = weights * rate + (1 - weights) * level
    return forecasts, level


def front_series(events: Path) -> dict[str, pd.DataFrame]:
    """Each front's rows of the table ``events`` in date order, with the ``days`` each row covers."""
    counts = pd.read_csv(events, parse_dates=["date", "end_date"])
    counts["days"] = (counts["end_date"] - counts["date"]).dt.days + 1
    return {front: rows.sort_values("date") for front, rows in counts.groupby("front")}


def change_scale(rates: np.ndarray) -> float:
    """A front's mean absolute change from one period to the next: the unit its errors are pooled in."""
    return max(np.abs(np.diff(rates)).mean(), 1e-9)


def smoothing(events: Path, table: pd.DataFrame) -> None:
    """Point errors of exponential smoothing of the training rates on the one-step targets of ``table``.

    Fixed weights, then weights chosen from the training data alone (the smallest mean absolute
    one-step error inside the training series, after :data:`BURN_IN` periods): per front, and one
    weight for all fronts at each origin (errors scaled by each front's mean absolute change).
    """
    series = front_series(events)
    fixed = (0.2, 0.3, 0.4, 0.5, 0.6)
    weights = np.concatenate([fixed, FITTED_WEIGHTS])
    per_front, scaled_errors = [], {}
    for (front, _), target in table.iterrows():
        history = series[front]
        start = pd.Timestamp(target["target_start"])
        rates = (history["count"] / history["days"])[history["end_date"] < start].to_numpy(float)
        days = (pd.Timestamp(target["target_end"]) - start).days + 1
        forecasts, level = smoothed(rates, weights)
        errors = np.abs(forecasts[:, BURN_IN:] - rates[BURN_IN:]).mean(axis=1)[len(fixed) :]
        scaled_errors.setdefault(start, []).append(errors / change_scale(rates))
        row = {
            "front": front,
            "start": start,
            "average": abs(target["average"] - target["observed"]),
            "last": abs(target["last"] - target["observed"]),
            "fitted_level": level[len(fixed) :] * days,
            "observed": target["observed"],
            "per front": abs(level[len(fixed) + np.argmin(errors)] * days - target["observed"]),
            "per front weight": FITTED_WEIGHTS[np.argmin(errors)],
        }
        for w, value in zip(fixed, level[: len(fixed)], strict=True):
            row[f"smoothing {w}"] = abs(value * days - target["observed"])
        per_front.append(row)
    pooled_choice = {start: int(np.argmin(np.sum(errors, axis=0))) for start, errors in scaled_errors.items()}
    rows = pd.DataFrame(per_front)
    rows["pooled"] = [abs(r.fitted_level[pooled_choice[r.start]] - r.observed) for r in rows.itertuples(index=False)]
    mean = rows.drop(columns=["start", "fitted_level"]).groupby("front").mean()
    labels = {f"smoothing {w}": f"smoothing {w}" for w in fixed}
    labels["per front"] = "smoothing, weight fitted per front on its training data"
    labels["pooled"] = "smoothing, one weight fitted on all fronts' training data"
    for column, label in labels.items():
        print(
            f"  {label}: point error <= the moving average's on {(mean[column] <= mean['average']).sum()}/{len(mean)} "
            f"fronts, <= the last value's on {(mean[column] <= mean['last']).sum()}/{len(mean)}; "
            f"pooled ratio to the moving average's {mean[column].sum() / mean['average'].sum():.3f}"
        )
    predictability(series, table)
    chosen = [float(FITTED_WEIGHTS[i]) for _, i in sorted(pooled_choice.items())]
    print(
        f"  weights fitted per front: median {rows['per front weight'].median():.2f}, "
        f"quartiles {rows['per front weight'].quantile(0.25):.2f}-{rows['per front weight'].quantile(0.75):.2f}; "
        f"fitted on all fronts, origin by origin: {', '.join(f'{w:.2f}' for w in chosen)}"
    )


def predictability(series: dict[str, pd.DataFrame], table: pd.DataFrame) -> None:
    """Whether a front's training months tell how far its outcomes return to the average.

    Per front, averaged over its origins: the lag-1 autocorrelation of the training months'
    changes in log counts (about -0.5 for noise around a steady level, 0 for a random walk).
    Printed: its correlation across fronts with the slope toward the average of the model's
    mean and of the outcome (:func:`toward_average`), and the outcome's with the model's ratio
    to the moving average's CRPS.
    """
    rows = []
    for (front, _), target in table.iterrows():
        history = series[front]
        training = history[history["end_date"] < pd.Timestamp(target["target_start"])]
        changes = np.diff(np.log1p(training["count"].to_numpy(float)))
        rows.append((front, np.corrcoef(changes[:-1], changes[1:])[0, 1]))
    fronts = pd.DataFrame(rows, columns=["front", "autocorrelation"]).groupby("front").mean()
    fronts["model"] = toward_average(table, table["model_mean"])
    fronts["outcome"] = toward_average(table, table["observed"])
    means = table.groupby(level="front").mean(numeric_only=True)
    fronts["ratio"] = means["model_crps"] / means["average_crps"]
    correlations = fronts.corr()
    print(
        "  per front, the training months' lag-1 autocorrelation of changes in log counts: correlation "
        f"{correlations.loc['autocorrelation', 'model']:+.2f} with the model's slope toward the average, "
        f"{correlations.loc['autocorrelation', 'outcome']:+.2f} with the outcome's; the outcome's slope "
        f"{correlations.loc['outcome', 'ratio']:+.2f} with the model's ratio to the average's CRPS"
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

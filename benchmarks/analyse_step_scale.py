"""How far apart fronts' level step scales lie: a local-level fit of each front's log rate.

The dynamic model pools each front's level step scale (``log_sigma_level``) around a population
mean with a fixed between-front spread.  This script asks the data, front by front, how large a
step scale they support, without the model: it fits a Gaussian local-level model to each front's
log rate per period, ``y_t = level_t + noise_t``, ``level_t = level_{t-1} + step_t``, where the
noise has the count's own sampling variance ``1 / (count + 1/2)`` plus an extra variance (the
overdispersion), by maximum likelihood over a grid of the step and extra sds (Kalman filter, a
diffuse first level).  It prints each front's step sd per period, its extra noise sd and the
lag-1 autocorrelation of the log rate's changes (-0.5 for noise around a constant, 0 for a random
walk), then the spread of the log step sds across fronts: the standard deviation, and the
interquartile range over 1.349 (the normal's), which estimates the same thing without the
fronts whose step sd sits at the grid's lower edge (a front with no detectable drift).

This is a Gaussian approximation on the log scale (counts of zero are read as 1/2): a yardstick for
a prior's spread, not a model.  It reads the table as ``analyse_reactivity.py`` does; its filter
differs from ``analyse_level_structures.py``'s, which scores point forecasts with a unit noise,
in giving each period its own sampling variance and returning the likelihood.  Example::

    .venv/bin/python benchmarks/analyse_step_scale.py \
        --events ../shared/data/acled_monthly_political_violence_15_countries_2021_2024.csv --until 2024-06-30
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from analyse_reactivity import front_series

#: The grid of log sds searched for the step and the extra noise (per period).
LOG_SD_GRID = np.linspace(-4.5, 0.0, 46)


def local_level_loglik(y: np.ndarray, sampling_var: np.ndarray, step_var: float, extra_var: float) -> float:
    """Log likelihood of ``y`` under the local-level model, the first level diffuse (Kalman filter)."""
    level, variance, total = y[0], 1e6, 0.0
    for t in range(1, len(y)):
        variance += step_var
        forecast_var = variance + sampling_var[t] + extra_var
        error = y[t] - level
        total -= 0.5 * (np.log(2.0 * np.pi * forecast_var) + error * error / forecast_var)
        gain = variance / forecast_var
        level += gain * error
        variance *= 1.0 - gain
    return total


def fit_front(counts: np.ndarray, days: np.ndarray, period_days: float) -> tuple[float, float]:
    """Maximum-likelihood step sd and extra noise sd (per period of ``period_days``) on the grid."""
    y = np.log((counts + 0.5) / days * period_days)
    sampling_var = 1.0 / (counts + 0.5)
    best = (-np.inf, np.nan, np.nan)
    for log_step in LOG_SD_GRID:
        for log_extra in LOG_SD_GRID:
            value = local_level_loglik(y, sampling_var, np.exp(2 * log_step), np.exp(2 * log_extra))
            if value > best[0]:
                best = (value, log_step, log_extra)
    return float(np.exp(best[1])), float(np.exp(best[2]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=Path, required=True, help="a table with date, end_date, front, count")
    parser.add_argument("--until", help="use the periods that end on or before this date only")
    args = parser.parse_args()
    series = front_series(args.events)
    if args.until:
        series = {front: part[part["end_date"] <= pd.Timestamp(args.until)] for front, part in series.items()}
    period_days = float(pd.concat(series.values())["days"].median())
    print(f"{args.events}: {len(series)} fronts, periods of {period_days:g} days (median)")
    rows = []
    for front, part in sorted(series.items()):
        counts = part["count"].to_numpy(dtype=float)
        days = part["days"].to_numpy(dtype=float)
        step_sd, extra_sd = fit_front(counts, days, period_days)
        changes = np.diff(np.log((counts + 0.5) / days))
        autocorrelation = np.corrcoef(changes[:-1], changes[1:])[0, 1] if len(changes) > 2 else np.nan
        rows.append((front, len(part), step_sd, extra_sd, autocorrelation))
        print(
            f"  {front:<36} {len(part):>3} periods  step sd {step_sd:.3f}  extra noise sd {extra_sd:.3f}  "
            f"lag-1 autocorrelation of changes {autocorrelation:+.2f}"
        )
    log_step = np.log([row[2] for row in rows])
    at_edge = int(np.sum(log_step <= LOG_SD_GRID[0] + 1e-9))
    q25, q75 = np.percentile(log_step, [25, 75])
    print(
        f"log step sd across fronts: median {np.median(log_step):+.2f} (step sd {np.exp(np.median(log_step)):.3f}), "
        f"sd {log_step.std(ddof=1):.2f}, IQR / 1.349 {(q75 - q25) / 1.349:.2f}; "
        f"{at_edge} of {len(rows)} fronts at the grid's lower edge ({np.exp(LOG_SD_GRID[0]):.3f})"
    )


if __name__ == "__main__":
    main()

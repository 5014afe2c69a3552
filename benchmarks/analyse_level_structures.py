"""Would another structure of the level forecast the ACLED months better, front by front? Point forecasts only.

The dynamic model's level is a random walk.  On the 45-series ACLED backtest it is at least as
good as the moving average on 24 of 45 fronts (target 30), and the fronts it loses are those
whose outcomes return toward an older level (``analyse_reactivity.py``).  This script asks,
without MCMC, whether a level of another structure would have done better: each structure is a
linear Gaussian state-space model of a front's log monthly rate, filtered with a Kalman filter,
and its one-step point forecast is scored on the backtest's own one-step targets against the
moving average's point error (from the backtest's ``scores.csv``):

* ``random walk``: level + noise (exponential smoothing in logs), the model's structure;
* ``reverting level``: an AR(1) level that reverts at rate ``1 - phi`` to the mean of the
  front's training months;
* ``random walk + AR(1)``: a random-walk level plus a reverting component (persistence
  ``phi``) plus noise, the structure of the daily fronts' burst, on every front.

Each structure's settings (noise ratios, ``phi``) are chosen at each origin from all fronts'
training months alone, by the one-step errors inside the training series (scaled by each front's
mean absolute change, after :data:`BURN_IN` months): one setting for all fronts, as a pooled
hyperparameter would be.  ``--per-front`` also chooses them front by front; ``--ar-persistence`` sets the AR component's
persistences to choose from (the model's daily burst is capped at a half-life of half a level
step, which on a grid whose level steps every period is 0.25).  Example::

    .venv/bin/python benchmarks/analyse_level_structures.py \\
        benchmarks/results/sampler_settings/after_centres/backtest-diagonal-4000/seed1/acled-dynamic/scores.csv \\
        --events ../shared/data/acled_monthly_political_violence_15_countries_2021_2024.csv
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
from analyse_reactivity import change_scale, front_series, one_step

BURN_IN = 3
#: A rate of 0 enters the logs as half an event a month.
FLOOR_EVENTS = 0.5
RATIOS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)  # a state's variance over the observation noise's

AR_PERSISTENCE = (0.3, 0.5, 0.7)


def structures(ar_persistence: tuple[float, ...] = AR_PERSISTENCE) -> dict[str, list[tuple[float, ...]]]:
    """``(level persistence, level noise, AR persistence, AR noise)`` settings per structure."""
    return {
        "random walk": [(1.0, q, 0.0, 0.0) for q in RATIOS],
        "reverting level": [
            (p, q, 0.0, 0.0) for p, q in itertools.product((0.97, 0.93, 0.9, 0.85, 0.8, 0.7, 0.6), RATIOS)
        ],
        "random walk + AR(1)": [
            (1.0, q, p, r) for q, p, r in itertools.product(RATIOS, ar_persistence, (0.2, 0.5, 1.0, 2.0))
        ],
    }


def kalman(x: np.ndarray, setting: tuple[float, float, float, float]) -> tuple[np.ndarray, float]:
    """One-step forecasts of ``x`` inside the series and the forecast of the next value.

    State ``(level, ar)``: ``level_t = m + a (level_{t-1} - m) + N(0, q)``, ``ar_t = p ar_{t-1} +
    N(0, r)``, ``x_t = level_t + ar_t + N(0, 1)``, ``m`` the mean of ``x``; the level starts at
    ``x_0`` with variance 1, the AR component at its stationary variance.
    """
    a, q, p, r = setting
    m = x.mean()
    transition = np.array([[a, 0.0], [0.0, p]])
    noise = np.diag([q, r])
    loading = np.ones(2)
    state = np.array([x[0], 0.0])
    cov = np.diag([1.0, r / (1 - p**2) if r else 0.0])
    forecasts = np.empty(len(x))
    for t, value in enumerate(x):
        if t:
            state = transition @ (state - [m, 0.0]) + [m, 0.0]
            cov = transition @ cov @ transition.T + noise
        forecasts[t] = loading @ state
        gain = cov @ loading / (loading @ cov @ loading + 1.0)
        state = state + gain * (value - forecasts[t])
        cov = cov - np.outer(gain, loading @ cov)
    following = transition @ (state - [m, 0.0]) + [m, 0.0]
    return forecasts, float(loading @ following)


def scored(events: Path, table: pd.DataFrame, per_front: bool, ar_persistence: tuple[float, ...]) -> None:
    series = front_series(events)
    for name, settings in structures(ar_persistence).items():
        rows, scaled = [], {}
        for (front, _), target in table.iterrows():
            history = series[front]
            start = pd.Timestamp(target["target_start"])
            training = history[history["end_date"] < start]
            rates = (training["count"] / training["days"]).to_numpy(float)
            floor = FLOOR_EVENTS / training["days"].median()
            days = (pd.Timestamp(target["target_end"]) - start).days + 1
            errors, following = np.empty(len(settings)), np.empty(len(settings))
            for i, setting in enumerate(settings):
                forecasts, after = kalman(np.log(rates + floor), setting)
                errors[i] = np.abs(np.exp(forecasts[BURN_IN:]) - floor - rates[BURN_IN:]).mean()
                following[i] = (np.exp(after) - floor) * days
            scaled.setdefault(start, []).append(errors / change_scale(rates))
            rows.append(
                (front, start, target["observed"], abs(target["average"] - target["observed"]), following, errors)
            )
        pooled = {start: int(np.argmin(np.sum(errors, axis=0))) for start, errors in scaled.items()}
        frame = pd.DataFrame(
            {
                "front": [r[0] for r in rows],
                "average": [r[3] for r in rows],
                "pooled": [abs(r[4][pooled[r[1]]] - r[2]) for r in rows],
                "per front": [abs(r[4][np.argmin(r[5])] - r[2]) for r in rows],
            }
        )
        mean = frame.groupby("front").mean()
        for column in ("pooled", "per front") if per_front else ("pooled",):
            print(
                f"  {name}, settings chosen {'on all fronts' if column == 'pooled' else 'per front'}: point error "
                f"<= the moving average's on {(mean[column] <= mean['average']).sum()}/{len(mean)} fronts; "
                f"pooled ratio to the moving average's {mean[column].sum() / mean['average'].sum():.3f}"
            )
        chosen = sorted({settings[i] for i in pooled.values()})
        print(f"    chosen on all fronts (level persistence, level noise, AR persistence, AR noise): {chosen}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scores", type=Path, help="a backtest's scores.csv (its one-step targets and moving average)")
    parser.add_argument("--events", type=Path, required=True, help="the monthly table the backtest read")
    parser.add_argument("--per-front", action="store_true", help="also choose each structure's settings per front")
    parser.add_argument(
        "--ar-persistence",
        default=",".join(map(str, AR_PERSISTENCE)),
        help="the AR component's persistences to choose from (comma-separated, each in [0, 1))",
    )
    args = parser.parse_args()
    ar_persistence = tuple(float(value) for value in args.ar_persistence.split(","))
    if not all(0.0 <= value < 1.0 for value in ar_persistence):
        parser.error(f"--ar-persistence: each value must be in [0, 1), got {args.ar_persistence}")
    table = one_step(args.scores)
    print(f"{args.scores}: {len(table)} one-step targets, point forecasts of three level structures")
    scored(args.events, table, args.per_front, ar_persistence)


if __name__ == "__main__":
    main()

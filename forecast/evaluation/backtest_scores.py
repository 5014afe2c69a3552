r"""Scores of the model's and the baselines' predictives of a backtest's targets.

Every score row carries the target's keys, the method, the observed count, the predictive
mean, the 50% and 90% central intervals, CRPS, log score, a randomized PIT and whether the
intervals hold the observation (:data:`SCORE_COLUMNS`); the target's ``last_value`` is added
by :func:`with_last_values`.

The model's predictive of a target covering days :math:`D` is, per posterior draw
:math:`s`, :math:`\operatorname{NB}(\sum_{d \in D} \lambda_{s,d}, |D|\,\alpha_s)` (the model's
own likelihood of such an observation); its log score is the exact mixture over draws and
its CRPS, PIT and intervals come from one count drawn per posterior draw.  A baseline given
by a negative binomial (or Poisson) is scored in closed form, one given by equally likely
samples (``zero``, ``conflictology``) from those samples.

Every random number comes from a generator seeded with the origin's seed and a fixed tag,
so the scores do not depend on the order the origins run in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast import names as n
from forecast.checks.predictive import central_intervals, randomized_pit
from forecast.data.panel import Panel
from forecast.evaluation.baselines import BASELINES, BaselineForecast, period_baselines, window_baselines
from forecast.evaluation.scores import (
    count_distribution,
    count_interval,
    crps_count,
    crps_draws,
    log_score_count,
    mixture_log_score,
    randomized_pit_count,
)
from forecast.evaluation.targets import PERIOD, WINDOW, front_series, last_values, whole_period_series

MODEL = "model"
METHODS = (MODEL, *BASELINES)

#: Moving-average window and season length of the baselines, in grid periods (the season is
#: used only when the training window holds two full seasons).
MOVING_AVERAGE = {n.FREQ_DAY: 7, n.FREQ_WEEK: 4, n.FREQ_MONTH: 3, n.FREQ_YEAR: 2}
SEASON = {n.FREQ_DAY: 7, n.FREQ_WEEK: 52, n.FREQ_MONTH: 12, n.FREQ_YEAR: None}
#: The baselines' dispersions are fitted on this many latest periods (windows) only: local,
#: so that an old stretch of zeros or a past outlier does not decide today's spread.
RECENT_PERIODS = {n.FREQ_DAY: 56, n.FREQ_WEEK: 26, n.FREQ_MONTH: 24, n.FREQ_YEAR: 10}
#: Days of the total whose exceedance probabilities are scored.
EXCEEDANCE_DAYS = 7
#: Draws of each baseline's predictive used for its exceedance probabilities.
BASELINE_DRAWS = 2000

SCORE_COLUMNS = [
    "origin",
    "front",
    "kind",
    "horizon",
    "target_start",
    "target_end",
    "method",
    "observed",
    "mean",
    "q05",
    "q25",
    "q75",
    "q95",
    "crps",
    "log_score",
    "pit",
    "in_50",
    "in_90",
    "last_value",
]
#: Columns of the exceedance table: P(7-day total >= threshold) of each method, with what happened.
EXCEEDANCE_COLUMNS = ["origin", "front", "method", "threshold", "p_exceed", "observed_total", "exceeded"]


def score_rows(
    origin: pd.Timestamp, method: str, targets: pd.DataFrame, columns: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Score rows of ``method`` at ``origin``: the targets' keys and observations, then ``columns``."""
    frame = targets[["front", "kind", "horizon", "target_start", "target_end", "observed"]].copy()
    frame.insert(0, "origin", origin)
    frame.insert(6, "method", method)
    for name, values in columns.items():
        frame[name] = values
    return frame


def model_scores(origin: pd.Timestamp, targets: pd.DataFrame, predictive: dict, seed: int) -> pd.DataFrame:
    """Scores of the model's predictive of the targets it covers.

    ``predictive`` holds those targets' ``index``, and per posterior draw their total rates
    ``mu`` (sample, target) and dispersions ``alpha`` (None for a Poisson model).
    """
    rows = targets.loc[predictive["index"]]
    y = rows["observed"].to_numpy(dtype=float)
    mu, alpha = predictive["mu"], predictive["alpha"]
    rng = np.random.default_rng([seed, 1])
    if alpha is None:
        draws = rng.poisson(mu)
    else:
        draws = rng.poisson(rng.gamma(shape=alpha, scale=mu / alpha))
    bounds = {prob: central_intervals(draws, prob) for prob in (0.5, 0.9)}
    return score_rows(
        origin,
        MODEL,
        rows,
        {
            "mean": mu.mean(axis=0),
            "q05": bounds[0.9][0],
            "q25": bounds[0.5][0],
            "q75": bounds[0.5][1],
            "q95": bounds[0.9][1],
            "crps": crps_draws(y, draws),
            "log_score": mixture_log_score(y, mu, alpha),
            "pit": randomized_pit(y, draws, np.random.default_rng([seed, 2])),
            "in_50": (y >= bounds[0.5][0]) & (y <= bounds[0.5][1]),
            "in_90": (y >= bounds[0.9][0]) & (y <= bounds[0.9][1]),
        },
    )


def baseline_scores(origin: pd.Timestamp, rows: pd.DataFrame, forecast: BaselineForecast, seed: int) -> pd.DataFrame:
    """Scores of one baseline's forecast of ``rows`` (negative binomial, Poisson or samples)."""
    y = rows["observed"].to_numpy(dtype=float)
    mean, alpha = forecast.mean, forecast.alpha
    rng = np.random.default_rng([seed, 3, BASELINES.index(forecast.method)])
    if forecast.samples is not None:
        return sample_baseline_scores(origin, rows, forecast, rng)
    lower50, upper50 = count_interval(mean, alpha, 0.5)
    lower90, upper90 = count_interval(mean, alpha, 0.9)
    return score_rows(
        origin,
        forecast.method,
        rows,
        {
            "mean": mean,
            "q05": lower90,
            "q25": lower50,
            "q75": upper50,
            "q95": upper90,
            "crps": crps_count(y, mean, alpha),
            "log_score": log_score_count(y, mean, alpha),
            "pit": randomized_pit_count(y, mean, alpha, rng),
            "in_50": (y >= lower50) & (y <= upper50),
            "in_90": (y >= lower90) & (y <= upper90),
        },
    )


def sample_baseline_scores(
    origin: pd.Timestamp, rows: pd.DataFrame, forecast: BaselineForecast, rng: np.random.Generator
) -> pd.DataFrame:
    """Scores of a baseline given by equally likely samples (``zero``, ``conflictology``).

    Its log score is left empty: a point mass or a dozen atoms give most outcomes probability 0.
    """
    y = rows["observed"].to_numpy(dtype=float)
    draws = np.asarray(forecast.samples, dtype=float)
    bounds = {prob: central_intervals(draws, prob) for prob in (0.5, 0.9)}
    return score_rows(
        origin,
        forecast.method,
        rows,
        {
            "mean": forecast.mean,
            "q05": bounds[0.9][0],
            "q25": bounds[0.5][0],
            "q75": bounds[0.5][1],
            "q95": bounds[0.9][1],
            "crps": crps_draws(y, draws),
            "log_score": np.full(y.shape, np.nan),
            "pit": randomized_pit(y, draws, rng),
            "in_50": (y >= bounds[0.5][0]) & (y <= bounds[0.5][1]),
            "in_90": (y >= bounds[0.9][0]) & (y <= bounds[0.9][1]),
        },
    )


def baselines_for_front(train: Panel, front: str, rows: pd.DataFrame, freq: str) -> dict[str, BaselineForecast]:
    """Every baseline's forecast of one front's targets ``rows`` (all periods, or all windows).

    Windows that are each one whole period (a monthly table, a day-by-day table with an end date
    on each day) get the period baselines, whose dispersions are fitted out of sample per step
    (:func:`forecast.evaluation.targets.whole_period_series`): the window baselines' one
    dispersion, fitted around the constant rate, is wider than the moving average's own errors
    on a front whose level moves.  Their targets are then whole periods too, ``horizon`` steps
    ahead.
    """
    series = whole_period_series(train, front) if (rows["kind"] == WINDOW).any() else None
    if (rows["kind"] == WINDOW).any() and series is None:
        counts, days = front_series(train, front, WINDOW)
        return window_baselines(
            counts,
            days,
            target_days=rows["days"].to_numpy(),
            window=MOVING_AVERAGE[freq],
            recent=RECENT_PERIODS[freq],
        )
    counts, exposure = series if series is not None else front_series(train, front, PERIOD)
    season = SEASON[freq]
    if season is not None and int((exposure > 0).sum()) < 2 * season:
        season = None
    return period_baselines(
        counts,
        exposure,
        steps=rows["horizon"].to_numpy(),
        target_days=rows["days"].to_numpy(),
        window=MOVING_AVERAGE[freq],
        season=season,
        recent=RECENT_PERIODS[freq],
    )


def first_week_draws(rows: pd.DataFrame, prediction: BaselineForecast, seed: int, freq: str) -> np.ndarray | None:
    """Draws of the baseline's total over the first 7 days (None when not observable)."""
    steps = 1 if freq == n.FREQ_WEEK else EXCEEDANCE_DAYS if freq == n.FREQ_DAY else 0
    first = rows["horizon"].to_numpy() <= steps
    if steps == 0 or first.sum() != steps:
        return None
    rng = np.random.default_rng([seed, 4, BASELINES.index(prediction.method)])
    if prediction.samples is not None:  # one equally likely sample per day, independently
        samples = prediction.samples[:, first]
        picks = rng.integers(0, samples.shape[0], size=(BASELINE_DRAWS, samples.shape[1]))
        return np.take_along_axis(samples, picks, axis=0).sum(axis=1)
    dist = count_distribution(prediction.mean[first], prediction.alpha[first])
    return dist.rvs(size=(BASELINE_DRAWS, int(first.sum())), random_state=rng).sum(axis=1)


def with_last_values(scores: pd.DataFrame, train: Panel, targets: pd.DataFrame) -> pd.DataFrame:
    """``scores`` with each target's ``last_value`` (the point forecast "next = last observed value")."""
    if not len(scores):
        scores = scores.copy()
        scores["last_value"] = pd.Series(dtype=float)
        return scores
    point = targets[["front", "kind", "horizon", "target_start", "target_end"]].assign(
        last_value=last_values(train, targets)
    )
    return scores.merge(point, on=["front", "kind", "horizon", "target_start", "target_end"], how="left")

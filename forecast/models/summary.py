"""Posterior summaries of a fitted escalation model, ready for JSON.

Every figure is computed from draws (never from point estimates) and every interval is an
equal-tailed credible interval at the stated probability.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

import numpy as np
import pandas as pd
import xarray as xr

from forecast import names as n
from forecast.models.dynamic import layout_of
from forecast.models.escalation import PULSE
from forecast.models.model import EscalationModel, changepoint_dates_posterior

#: Interventions on one front closer than this are reported jointly: the data rarely separate them.
CLOSE_INTERVENTION_DAYS = 7


class Interval(TypedDict):
    """Mean and equal-tailed credible interval of draws."""

    mean: float
    low: float
    high: float


class FrontSummary(TypedDict, total=False):
    """One front of :class:`FitSummary`; which keys are there depends on the model family.

    Both: ``front``, ``changepoints`` (none in the dynamic model), ``interventions``.
    Changepoint model: ``baseline_daily_rate`` and, with a trend, ``trend_rate_ratio_per_30_days``.
    Dynamic model: ``current_daily_rate``, ``level_daily_rate``, ``level_shifts`` and its
    hyperparameters (the burst's only on fronts that have one).
    """

    front: str
    changepoints: list[dict[str, Any]]
    interventions: list[dict[str, Any]]
    baseline_daily_rate: Interval
    trend_rate_ratio_per_30_days: Interval
    current_daily_rate: Interval
    level_daily_rate: Interval
    level_shifts: list[dict[str, Any]]
    sigma_level: Interval
    tail_weight: Interval
    burst_sd: Interval
    burst_persistence: Interval
    dispersion: Interval


class FitSummary(TypedDict):
    """What :func:`summarise` returns: the model part of ``summary.json``."""

    interval_probability: float
    fronts: list[FrontSummary]
    close_interventions: list[dict[str, Any]]
    #: Dynamic model: what a reported level shift is (:func:`level_shift_rule`).
    level_shift_rule: NotRequired[dict[str, float]]


def _draws(posterior: xr.Dataset, name: str) -> xr.DataArray:
    return posterior[name].stack(sample=("chain", "draw"))


def interval(values: np.ndarray, prob: float) -> Interval:
    """Mean and equal-tailed interval of draws."""
    tail = (1.0 - prob) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return {"mean": float(np.mean(values)), "low": float(low), "high": float(high)}


def _date(value: pd.Timestamp) -> str:
    return pd.Timestamp(value).date().isoformat()


def changepoint_summary(
    model: EscalationModel, posterior: xr.Dataset, prob: float, *, probabilities: np.ndarray | None = None
) -> dict[str, list[dict]]:
    """Per front: for each changepoint, the date posterior (mode, interval) and the jump as a rate ratio.

    ``probabilities`` is :func:`~forecast.models.model.changepoint_dates_posterior` of the same
    posterior when the caller already has it (it costs a pass over every draw).
    """
    design = model.design
    k = design.options.changepoints
    if not k:
        return {front: [] for front in design.fronts}
    if probabilities is None:
        probabilities = changepoint_dates_posterior(model, posterior)  # (changepoint, front, position)
    jump = _draws(posterior, "jump")
    tail = (1.0 - prob) / 2.0
    out: dict[str, list[dict]] = {}
    for f, front in enumerate(design.fronts):
        dates = design.obs_date[design.position[f]]
        items = []
        for j in range(k):
            weights = probabilities[j, f] * design.position_mask[f]
            cdf = np.cumsum(weights) / weights.sum()
            low = int(np.searchsorted(cdf, tail))
            high = int(min(np.searchsorted(cdf, 1.0 - tail), len(cdf) - 1))  # type: ignore[call-overload]
            mode = int(np.argmax(weights))
            items.append(
                {
                    "index": j,
                    "mode_date": _date(dates[mode]),
                    "mode_probability": float(weights[mode]),
                    "interval_dates": [_date(dates[low]), _date(dates[high])],
                    "jump_rate_ratio": interval(np.exp(jump.sel({n.FRONT: front, n.CHANGEPOINT: j}).to_numpy()), prob),
                    "p_increase": float(np.mean(jump.sel({n.FRONT: front, n.CHANGEPOINT: j}).to_numpy() > 0)),
                }
            )
        out[front] = items
    return out


def intervention_summary(model: EscalationModel, posterior: xr.Dataset, prob: float) -> dict[str, list[dict]]:
    """Per front: each intervention's rate ratio at its peak, half-life and P(effect < 1)."""
    design = model.design
    out: dict[str, list[dict]] = {front: [] for front in design.fronts}
    if not len(design.interventions):
        return out
    effect = _draws(posterior, "effect")
    half_life = _draws(posterior, "half_life") if len(design.pulse_index) else None
    j: Any  # the row's label, its position (a RangeIndex); pandas-stubs types iterrows labels as Hashable
    for j, row in design.interventions.iterrows():
        if not design.intervention_known[j]:
            continue  # a placeholder has nothing but its prior to report
        for f in np.flatnonzero(design.applies[j]):
            front = design.fronts[f]
            draws = effect.sel({n.FRONT: front, n.INTERVENTION: row[n.LABEL]}).to_numpy()
            item = {
                "label": row[n.LABEL],
                "kind": row[n.KIND],
                "shape": row[n.SHAPE],
                "date": _date(row[n.DATE]),
                "end_date": _date(row[n.END_DATE]) if pd.notna(row[n.END_DATE]) else None,
                "rate_ratio": interval(np.exp(draws), prob),
                "p_effect_below_1": float(np.mean(draws < 0)),
                "half_life_days": None,
            }
            if half_life is not None and row[n.SHAPE] == n.SHAPE_PULSE:
                item["half_life_days"] = interval(half_life.sel({PULSE: row[n.LABEL]}).to_numpy(), prob)
            out[front].append(item)
    return out


def close_intervention_pairs(model: EscalationModel, posterior: xr.Dataset, prob: float) -> list[dict]:
    """Joint posterior of effects of interventions on one front within a few days of each other.

    Two interventions days apart are rarely separable: their effects trade off against each
    other (negative correlation), while their combined effect is well determined.  Reporting
    the joint posterior, rather than crediting either, is the honest answer.
    """
    design = model.design
    if len(design.interventions) < 2:
        return []
    effect = _draws(posterior, "effect")
    frame = design.interventions
    out = []
    for f, front in enumerate(design.fronts):
        rows = [j for j in range(len(frame)) if design.applies[j, f] and design.intervention_known[j]]
        for a_pos, a in enumerate(rows):
            for b in rows[a_pos + 1 :]:
                days = abs((frame[n.DATE].iloc[b] - frame[n.DATE].iloc[a]).days)
                if days > CLOSE_INTERVENTION_DAYS:
                    continue
                ea = effect.sel({n.FRONT: front, n.INTERVENTION: frame[n.LABEL].iloc[a]}).to_numpy()
                eb = effect.sel({n.FRONT: front, n.INTERVENTION: frame[n.LABEL].iloc[b]}).to_numpy()
                correlation = float(np.corrcoef(ea, eb)[0, 1]) if ea.std() > 0 and eb.std() > 0 else float("nan")
                out.append(
                    {
                        "front": front,
                        "first": frame[n.LABEL].iloc[a],
                        "second": frame[n.LABEL].iloc[b],
                        "days_apart": int(days),
                        "correlation": correlation,
                        "combined_rate_ratio": interval(np.exp(ea + eb), prob),
                        "p_both_below_1": float(np.mean((ea < 0) & (eb < 0))),
                        "p_only_first_below_1": float(np.mean((ea < 0) & (eb >= 0))),
                        "p_only_second_below_1": float(np.mean((ea >= 0) & (eb < 0))),
                        "p_combined_below_1": float(np.mean(ea + eb < 0)),
                        "separable": _separable(correlation, ea, eb),
                    }
                )
    return out


def _separable(correlation: float, first: np.ndarray, second: np.ndarray) -> bool:
    """Whether the data tell the two effects apart.

    Both effects must be decisive on their own (P(effect < 1) below 0.1 or above 0.9) and
    only weakly correlated (|r| < 0.3); otherwise neither can be credited with a change.
    """

    def decisive(effect: np.ndarray) -> bool:
        below = float(np.mean(effect < 0))
        return below < 0.1 or below > 0.9

    return bool(abs(correlation) < 0.3 and decisive(first) and decisive(second))


#: A level shift is a change of the log level larger than this (a rate ratio of 1.5 either way).
SHIFT_LOG_RATIO = float(np.log(1.5))
#: Steps with at least this probability of such a change are grouped into one candidate shift ...
SHIFT_STEP_PROBABILITY = 0.05
#: ... which is reported when the level changes by more than 1.5x across it with this probability.
SHIFT_REPORT_PROBABILITY = 0.5
#: A step inside a window of this many days (at least one period) across which the level changes
#: by more than 1.5x with probability :data:`SHIFT_REPORT_PROBABILITY` is a candidate too: a change
#: made of several small steps (a rate that fell threefold over a month) is a shift.
SHIFT_WINDOW_DAYS = 14
#: A candidate run is cut to the periods that hold the central 90% of the movement of the level's
#: posterior mean across it: a window's quiet days are not dates of the shift.
SHIFT_TRIM = 0.05


def dynamic_front_summary(model: EscalationModel, posterior: xr.Dataset, prob: float) -> list[FrontSummary]:
    """Per front of the dynamic model: the rate and level at ``as_of``, hyperparameters and dated shifts.

    A *dated shift* is a run of consecutive level steps, each of which has probability at least
    :data:`SHIFT_STEP_PROBABILITY` of exceeding a rate ratio of 1.5 either way or lies in a window
    of :data:`SHIFT_WINDOW_DAYS` days (at least one period) across which the level changes by more
    than 1.5x with probability at least :data:`SHIFT_REPORT_PROBABILITY`.  The run is cut to the
    periods that hold the central 90% of its mean level's movement (:data:`SHIFT_TRIM`) and
    reported when the level changes across it by more than 1.5x with probability at least
    :data:`SHIFT_REPORT_PROBABILITY` (computed draw by draw).  It gives the run's first and last
    dates as its interval, the most probable single step as its mode, and the rate ratio across it.
    """
    design = model.design
    window = max(1, round(SHIFT_WINDOW_DAYS / float(np.median(design.period_days))))
    level = posterior["level"].stack(sample=("chain", "draw")).transpose(n.FRONT, n.TIME, "sample").to_numpy()
    burst = posterior["burst"].stack(sample=("chain", "draw")).transpose(n.FRONT, n.TIME, "sample").to_numpy()
    has_burst = layout_of(design).burst
    out: list[FrontSummary] = []
    for f, front in enumerate(design.fronts):
        item: FrontSummary = {
            "front": front,
            "current_daily_rate": interval(np.exp(level[f, -1] + burst[f, -1]), prob),
            "level_daily_rate": interval(np.exp(level[f, -1]), prob),
            "level_shifts": _level_shifts(design.periods, level[f], prob, window=window),
        }
        for name in ("sigma_level", "tail_weight", "burst_sd", "burst_persistence", "dispersion"):
            if name not in posterior or (name.startswith("burst_") and not has_burst[f]):
                continue  # no burst on this front (see forecast.models.dynamic.DynamicLayout)
            item[name] = interval(_draws(posterior, name).sel({n.FRONT: front}).to_numpy(), prob)
        out.append(item)
    return out


def level_shift_rule() -> dict[str, float]:
    """What a reported level shift is: a level change beyond ``rate_ratio`` either way, at least ``probability``.

    ``window_days``: small steps that add up to such a change within this many days (at least one
    period) count as well.
    """
    return {
        "rate_ratio": float(np.exp(SHIFT_LOG_RATIO)),
        "probability": SHIFT_REPORT_PROBABILITY,
        "window_days": SHIFT_WINDOW_DAYS,
    }


def _level_shifts(periods: pd.DatetimeIndex, level: np.ndarray, prob: float, *, window: int = 1) -> list[dict]:
    """Dated shifts of one front's level ``(time, sample)``: see :func:`dynamic_front_summary`."""
    steps = np.diff(level, axis=0)
    p_step = np.mean(np.abs(steps) > SHIFT_LOG_RATIO, axis=1)
    candidate = p_step >= SHIFT_STEP_PROBABILITY
    span = max(1, min(window, len(level) - 1))
    moved = np.mean(np.abs(level[span:] - level[:-span]) > SHIFT_LOG_RATIO, axis=1)
    for start in np.flatnonzero(moved >= SHIFT_REPORT_PROBABILITY):
        candidate[start : start + span] = True  # the window's steps
    edges = np.flatnonzero(np.diff(np.concatenate([[False], candidate, [False]]).astype(int)))
    mean = level.mean(axis=1)
    shifts = []
    for run_first, run_stop in zip(edges[::2], edges[1::2], strict=True):  # steps first .. stop - 1
        first, stop = _central_movement(mean, int(run_first), int(run_stop))
        change = level[stop] - level[first]  # level after the run minus level before it
        p_shift = float(np.mean(np.abs(change) > SHIFT_LOG_RATIO))
        if p_shift < SHIFT_REPORT_PROBABILITY:
            continue
        mode = first + int(np.argmax(p_step[first:stop]))
        shifts.append(
            {
                "mode_date": _date(periods[mode + 1]),
                "interval_dates": [_date(periods[first + 1]), _date(periods[stop])],
                "probability": p_shift,
                "rate_ratio": interval(np.exp(change), prob),
                "p_increase": float(np.mean(change > 0)),
            }
        )
    return shifts


def _central_movement(mean: np.ndarray, first: int, stop: int) -> tuple[int, int]:
    """The part ``(first, stop)`` of the run of steps ``first .. stop - 1`` that holds 90% of ``mean``'s movement.

    ``mean`` is the level's posterior mean per period; the part starts at the period before the
    mean first passes :data:`SHIFT_TRIM` of the run's change and ends at the period after it is
    last short of ``1 - SHIFT_TRIM`` of it.
    """
    total = mean[stop] - mean[first]
    if stop - first < 2 or total == 0:
        return first, stop
    share = (mean[first : stop + 1] - mean[first]) / total  # 0 at first, 1 at stop
    start = int(np.flatnonzero(share > SHIFT_TRIM)[0]) - 1
    end = int(np.flatnonzero(share < 1.0 - SHIFT_TRIM)[-1]) + 1
    return first + start, first + end


def summarise(
    model: EscalationModel,
    posterior: xr.Dataset,
    *,
    prob: float = 0.9,
    changepoint_probabilities: np.ndarray | None = None,
) -> FitSummary:
    """Per-front changepoints, intervention effects and baseline rates, plus close pairs."""
    changepoints = changepoint_summary(model, posterior, prob, probabilities=changepoint_probabilities)
    interventions = intervention_summary(model, posterior, prob)
    if model.design.options.family == "dynamic":
        dynamic_fronts = dynamic_front_summary(model, posterior, prob)
        for summary in dynamic_fronts:
            summary["changepoints"] = changepoints[summary["front"]]
            summary["interventions"] = interventions[summary["front"]]
        return {
            "interval_probability": prob,
            "fronts": dynamic_fronts,
            "close_interventions": close_intervention_pairs(model, posterior, prob),
            "level_shift_rule": level_shift_rule(),
        }
    baseline = _draws(posterior, "baseline")
    trend = _draws(posterior, "trend") if model.design.options.trend else None
    fronts: list[FrontSummary] = []
    for front in model.design.fronts:
        item: FrontSummary = {
            "front": front,
            "baseline_daily_rate": interval(np.exp(baseline.sel({n.FRONT: front}).to_numpy()), prob),
            "changepoints": changepoints[front],
            "interventions": interventions[front],
        }
        if trend is not None:  # the rate ratio over 30 days of the log-linear trend
            item["trend_rate_ratio_per_30_days"] = interval(np.exp(trend.sel({n.FRONT: front}).to_numpy()), prob)
        fronts.append(item)
    return {
        "interval_probability": prob,
        "fronts": fronts,
        "close_interventions": close_intervention_pairs(model, posterior, prob),
    }

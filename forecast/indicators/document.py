r"""The indicators document (``indicators.json``): every indicator per front at ``as_of``.

:func:`compute_indicators` is a pure function of a model, its posterior draws, the daily
predictive draws after ``as_of`` and the fit's diagnostics.  The formulas are in
:mod:`forecast.indicators.rates` (rate ratio, recent changepoint, lulls, two or more fronts
rising), :mod:`forecast.indicators.thresholds` (``p_exceed``) and
:mod:`forecast.indicators.steps` (the forecast table).

Levels
------
Per front, with :math:`P_\text{top}` the exceedance probability of the front's highest
threshold, :math:`P_\text{any}` that of its lowest (the largest of them) and
:math:`p_\uparrow` = ``p_rate_increase`` (boundaries are inclusive):

* **red** when :math:`P_\text{top} \ge` ``red_p_exceed`` (0.5) or
  :math:`p_\uparrow \ge` ``red_p_rate_increase`` (0.8);
* **amber**, otherwise, when :math:`P_\text{any} \ge` ``amber_p_exceed`` (0.25) or
  :math:`p_\uparrow \ge` ``amber_p_rate_increase`` (0.5);
* **green** otherwise.

A front without thresholds is judged on :math:`p_\uparrow` alone.  The overall level is the
highest front level (green < amber < red).

Failed diagnostics
------------------
A fit that failed its sampler checks keeps its computed levels, but ``diagnostics.ok`` is
false, every front and the document carry ``unreliable: true`` and ``headline_warning`` is
the diagnostics headline (``"FIT FAILED ITS CHECKS: ..."``).  Missing diagnostics are not a
pass: they are reported the same way, as ``"FIT NOT CHECKED: ..."``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, SupportsFloat

import numpy as np
import pandas as pd
import xarray as xr

from forecast import names as n
from forecast.checks.diagnostics import Diagnostics
from forecast.errors import ForecastError
from forecast.indicators.rates import (
    day_of,
    draws_of,
    intervention_shapes,
    log_rate_components,
    lull_candidates,
    p_two_or_more_above,
    recent_changepoint_probability,
    recent_level_change_probability,
)
from forecast.indicators.schema import SCHEMA_VERSION, validate_indicators
from forecast.indicators.steps import forecast_steps, step_days, whole_steps
from forecast.indicators.thresholds import (
    WEEK_DAYS,
    exceedance_probabilities,
    thresholds_with_notes,
    weekly_totals,
)
from forecast.models.escalation import PULSE
from forecast.models.model import EscalationModel, changepoint_dates_posterior
from forecast.models.summary import interval
from forecast.names import DATE_DIM

log = logging.getLogger(__name__)

GREEN, AMBER, RED = "green", "amber", "red"
#: Levels from lowest to highest.
LEVELS = (GREEN, AMBER, RED)
NOT_CHECKED = "FIT NOT CHECKED: no sampler diagnostics were supplied"


@dataclass(frozen=True)
class IndicatorSettings:
    """Every threshold of the indicators, with its documented default.

    Attributes
    ----------
    thresholds : tuple of float or None
        Explicit ``p_exceed`` thresholds (weekly counts) for every front; None uses each
        front's defaults (:func:`forecast.indicators.thresholds.default_thresholds`).
    threshold_quantile : float
        Quantile of the front's historical 7-day totals (0.9).
    recent_weeks : int
        Weeks of the "recent weekly mean" (4).
    recent_multiplier : float
        The second default threshold is this times the recent weekly mean (2).
    rate_increase_ratio : float
        ``p_rate_increase = P(rate ratio > rate_increase_ratio)`` (1.5); also defines "rising"
        for ``p_two_or_more_rising``.
    recent_changepoint_days : int
        ``p_changepoint_recent`` looks at the last this many days up to ``as_of`` (14).
    lull_ratio : float
        A lull holds in a draw while the intervention's current rate ratio
        ``exp(effect * shape(as_of))`` is below this (0.8).
    lull_recent_days : int
        Interventions that started within this many days of ``as_of`` (60), and windows
        still on at ``as_of``, are reported as lulls.
    prob : float
        Probability of every interval (0.9, equal-tailed).
    red_p_exceed, red_p_rate_increase, amber_p_exceed, amber_p_rate_increase : float
        Level rules (0.5, 0.8, 0.25, 0.5); see the module docstring.
    """

    thresholds: tuple[float, ...] | None = None
    threshold_quantile: float = 0.9
    recent_weeks: int = 4
    recent_multiplier: float = 2.0
    rate_increase_ratio: float = 1.5
    recent_changepoint_days: int = 14
    lull_ratio: float = 0.8
    lull_recent_days: int = 60
    prob: float = 0.9
    red_p_exceed: float = 0.5
    red_p_rate_increase: float = 0.8
    amber_p_exceed: float = 0.25
    amber_p_rate_increase: float = 0.5

    def __post_init__(self) -> None:
        if self.thresholds is not None:
            object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
            if any(not (math.isfinite(t) and t >= 0) for t in self.thresholds):
                raise ValueError(f"thresholds must be finite and >= 0, got {self.thresholds}")
        if not 0.0 <= self.threshold_quantile <= 1.0:
            raise ValueError("threshold_quantile must be in [0, 1]")
        for name in ("recent_weeks", "recent_changepoint_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.lull_recent_days < 0:
            raise ValueError("lull_recent_days must be >= 0")
        for name in ("recent_multiplier", "rate_increase_ratio", "lull_ratio"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        if not 0.0 < self.prob < 1.0:
            raise ValueError("prob must be in (0, 1)")
        for name in ("red_p_exceed", "red_p_rate_increase", "amber_p_exceed", "amber_p_rate_increase"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1]")

    def to_dict(self) -> dict[str, object]:
        values = asdict(self)
        values["thresholds"] = None if self.thresholds is None else list(self.thresholds)
        return values


def front_level(p_exceed: list[float], p_rate_increase: float, settings: IndicatorSettings) -> tuple[str, list[str]]:
    """Level of one front and the reasons for it.

    ``p_exceed`` are the exceedance probabilities in ascending order of threshold (so the
    first is the largest and the last belongs to the highest threshold).
    """
    reasons: list[str] = []
    if p_exceed and p_exceed[-1] >= settings.red_p_exceed:
        reasons.append(f"P(exceed highest threshold) {p_exceed[-1]:.2f} >= {settings.red_p_exceed:g}")
    if p_rate_increase >= settings.red_p_rate_increase:
        reasons.append(f"p_rate_increase {p_rate_increase:.2f} >= {settings.red_p_rate_increase:g}")
    if reasons:
        return RED, reasons
    if p_exceed and max(p_exceed) >= settings.amber_p_exceed:
        reasons.append(f"P(exceed lowest threshold) {max(p_exceed):.2f} >= {settings.amber_p_exceed:g}")
    if p_rate_increase >= settings.amber_p_rate_increase:
        reasons.append(f"p_rate_increase {p_rate_increase:.2f} >= {settings.amber_p_rate_increase:g}")
    return (AMBER, reasons) if reasons else (GREEN, [])


def compute_indicators(
    model: EscalationModel,
    posterior: xr.Dataset,
    forecast: xr.Dataset,
    *,
    diagnostics: Diagnostics | dict | None = None,
    settings: IndicatorSettings = IndicatorSettings(),  # noqa: B008 - frozen, immutable
    changepoint_probabilities: np.ndarray | None = None,
) -> dict:
    """The indicators document, validated against the schema.

    Parameters
    ----------
    model : EscalationModel
        The fitted model; ``as_of`` is ``model.panel.end``.
    posterior : xarray.Dataset
        Posterior draws ``(chain, draw, ...)``.
    forecast : xarray.Dataset
        Daily predictive ``counts`` ``(chain, draw, front, date)`` starting the day after
        ``as_of`` (:func:`forecast.forecasting.counts.forecast_counts`), at least 7 days.
    diagnostics : Diagnostics or dict or None
        The fit's sampler diagnostics (or their ``to_dict()``); None counts as not checked.
    settings : IndicatorSettings
    changepoint_probabilities : numpy.ndarray, optional
        ``(changepoint, front, position)`` position posterior; computed with
        :func:`forecast.models.model.changepoint_dates_posterior` when not given.

    Raises
    ------
    ForecastError
        When the forecast does not start the day after ``as_of``, is shorter than a week, or
        does not cover the model's fronts.
    """
    design = model.design
    panel = model.panel
    as_of = panel.end
    dates = pd.DatetimeIndex(forecast[DATE_DIM].to_numpy())
    _check_forecast(forecast, dates, as_of, design.fronts)

    checked = _diagnostics(diagnostics)
    unreliable = not checked["ok"]

    components = log_rate_components(design, posterior)
    ratio = np.exp(components["log_ratio"])
    baseline_rate = np.exp(components["baseline"])
    current_rate = np.exp(components["baseline"] + components["log_ratio"])
    if changepoint_probabilities is None and design.options.changepoints:
        changepoint_probabilities = changepoint_dates_posterior(model, posterior)
    recent: Sequence[float | None]
    if design.options.family == "dynamic":
        recent = recent_level_change_probability(design, posterior, days=settings.recent_changepoint_days)
    else:
        recent = recent_changepoint_probability(
            design, changepoint_probabilities, days=settings.recent_changepoint_days
        )

    if settings.thresholds is None:
        thresholds, threshold_notes = thresholds_with_notes(
            panel,
            recent_weeks=settings.recent_weeks,
            quantile=settings.threshold_quantile,
            multiplier=settings.recent_multiplier,
        )
        source = "default"
    else:
        configured = sorted(set(settings.thresholds))
        thresholds = {front: configured for front in design.fronts}
        threshold_notes = {front: [] for front in design.fronts}
        source = "configured"

    counts = forecast["counts"].stack(sample=("chain", "draw")).transpose("sample", n.FRONT, DATE_DIM)
    weekly = weekly_totals(counts.sel({n.FRONT: list(design.fronts)}).to_numpy())  # (sample, front)
    steps = forecast_steps(forecast, freq=panel.freq, prob=settings.prob)
    lulls = _lulls(model, posterior, settings)

    fronts = []
    for f, front in enumerate(design.fronts):
        probabilities = exceedance_probabilities(weekly[:, f], thresholds[front]).tolist()
        p_increase = float(np.mean(ratio[:, f] > settings.rate_increase_ratio))
        level, reasons = front_level(probabilities, p_increase, settings)
        notes = list(threshold_notes[front])
        if recent[f] is None:
            notes.append("the model has no changepoints: p_changepoint_recent is undefined")
        if not thresholds[front]:
            notes.append("no exceedance thresholds: the level rests on p_rate_increase alone")
        fronts.append(
            {
                "front": front,
                "p_exceed": [
                    {"threshold": float(t), "horizon_days": WEEK_DAYS, "probability": float(p)}
                    for t, p in zip(thresholds[front], probabilities, strict=True)
                ],
                "thresholds_source": source,
                "rate_ratio": _interval(ratio[:, f], settings.prob),
                "p_rate_increase": p_increase,
                "p_changepoint_recent": recent[f],
                "baseline_daily_rate": _interval(baseline_rate[:, f], settings.prob),
                "current_daily_rate": _interval(current_rate[:, f], settings.prob),
                "lulls": lulls[front],
                "level": level,
                "level_reasons": reasons,
                "unreliable": unreliable,
                "notes": notes,
                "forecast": steps[front],
            }
        )
    overall = max((item["level"] for item in fronts), key=LEVELS.index, default=GREEN)
    horizon = {"steps": len(whole_steps(dates, panel.freq)), "freq": panel.freq, "days": len(dates)}
    if step_days(panel.freq) is not None:
        horizon["step_days"] = step_days(panel.freq)
    document = {
        "schema_version": SCHEMA_VERSION,
        "as_of": _date(as_of),
        "horizon": horizon,
        "exceedance_window": {
            "start": _date(as_of + pd.Timedelta(days=1)),
            "end": _date(as_of + pd.Timedelta(days=WEEK_DAYS)),
            "days": WEEK_DAYS,
        },
        "diagnostics": checked,
        "headline_warning": checked["headline"] if unreliable else None,
        "unreliable": unreliable,
        "level": overall,
        "p_two_or_more_rising": p_two_or_more_above(ratio, settings.rate_increase_ratio),
        "settings": settings.to_dict(),
        "fronts": fronts,
    }
    if unreliable:
        log.warning("indicators at %s are unreliable: %s", document["as_of"], checked["headline"])
    validate_indicators(document)
    return document


def _check_forecast(forecast: xr.Dataset, dates: pd.DatetimeIndex, as_of: pd.Timestamp, fronts: tuple) -> None:
    if "counts" not in forecast:
        raise ForecastError("the forecast has no 'counts' variable of daily predictive draws")
    if len(dates) < WEEK_DAYS:
        raise ForecastError(f"the forecast covers {len(dates)} day(s); p_exceed needs at least {WEEK_DAYS}")
    expected = pd.date_range(as_of + pd.Timedelta(days=1), periods=len(dates), freq="D")
    if not dates.equals(expected):
        raise ForecastError(
            f"the forecast must cover consecutive days from the day after as_of ({expected[0].date()}); "
            f"it covers {dates[0].date()}..{dates[-1].date()}"
        )
    missing = [front for front in fronts if front not in forecast[n.FRONT].to_numpy().tolist()]
    if missing:
        raise ForecastError(f"the forecast has no draws for fronts {missing}")


def _diagnostics(diagnostics: Diagnostics | dict | None) -> dict[str, object]:
    if diagnostics is None:
        return {
            "ok": False,
            "rhat_max": None,
            "ess_bulk_min": None,
            "ess_tail_min": None,
            "divergences": None,
            "failures": ["no sampler diagnostics were supplied"],
            "headline": NOT_CHECKED,
        }
    values: dict[str, Any] = diagnostics.to_dict() if isinstance(diagnostics, Diagnostics) else dict(diagnostics)
    if "ok" not in values:
        raise ForecastError(f"diagnostics need at least 'ok'; got keys {sorted(values)}")
    ok = bool(values["ok"])
    failures = [str(f) for f in values.get("failures", [])]
    headline = values.get("headline")
    if not headline:
        reason = "; ".join(failures) or "reason not given"
        headline = "Sampler diagnostics passed" if ok else f"FIT FAILED ITS CHECKS: {reason}"
    divergences = values.get("divergences")
    return {
        "ok": ok,
        "rhat_max": _number(values.get("rhat_max")),
        "ess_bulk_min": _number(values.get("ess_bulk_min")),
        "ess_tail_min": _number(values.get("ess_tail_min")),
        "divergences": None if divergences is None else int(divergences),
        "failures": failures,
        "headline": str(headline),
    }


def _lulls(model: EscalationModel, posterior: xr.Dataset, settings: IndicatorSettings) -> dict[str, list[dict]]:
    design = model.design
    out: dict[str, list[dict]] = {front: [] for front in design.fronts}
    chosen = lull_candidates(design, recent_days=settings.lull_recent_days)
    if not chosen:
        return out
    as_of = design.days[-1]
    effect = draws_of(posterior, "effect", n.FRONT, n.INTERVENTION)
    shapes = intervention_shapes(design, posterior, day_of(design, as_of))
    half_life = draws_of(posterior, "half_life", PULSE) if len(design.pulse_index) else None
    frame = design.interventions
    for j in chosen:
        row = frame.iloc[j]
        half = None
        if row[n.SHAPE] == n.SHAPE_PULSE:
            assert half_life is not None  # a pulse has a half-life
            half = _interval(half_life[:, int(np.flatnonzero(design.pulse_index == j)[0])], settings.prob)
        for f in np.flatnonzero(design.applies[j]):
            now = np.exp(effect[:, f, j] * shapes[:, j])
            out[design.fronts[f]].append(
                {
                    "label": str(row[n.LABEL]),
                    "kind": str(row[n.KIND]),
                    "shape": str(row[n.SHAPE]),
                    "date": _date(row[n.DATE]),
                    "end_date": _date(row[n.END_DATE]) if pd.notna(row[n.END_DATE]) else None,
                    "days_since": int((as_of - row[n.DATE]).days),
                    "rate_ratio_now": _interval(now, settings.prob),
                    "p_lull_holding": float(np.mean(now < settings.lull_ratio)),
                    "half_life_days": half,
                    "peak_rate_ratio": _interval(np.exp(effect[:, f, j]), settings.prob),
                }
            )
    return out


def _number(value: SupportsFloat | str | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _interval(values: np.ndarray, prob: float) -> dict[str, float | None]:
    finite = np.asarray(values, dtype=float)
    if not np.isfinite(finite).all():
        return {"mean": None, "low": None, "high": None}
    summary = interval(finite, prob)
    return {"mean": _number(summary["mean"]), "low": _number(summary["low"]), "high": _number(summary["high"])}


def _date(value: pd.Timestamp) -> str:
    return pd.Timestamp(value).date().isoformat()

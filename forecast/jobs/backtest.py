"""The rolling-origin backtest behind ``forecast backtest``.

For each origin :math:`o` the model (and every baseline) is fitted on the data known at
:math:`o` only, and its forecasts of the next ``horizon`` grid periods are scored against
what happened.

No leakage
    The training panel is built from the events with ``as_of = o`` (rows after the origin
    and windows ending after it are dropped) and only interventions that started on or
    before ``o`` act in the model; later ones are unknown at the origin.  Those up to the
    backtest's last origin are kept as placeholders whose shapes are zero over the training
    data (their effects stay at the prior and are left out of the forecast): that gives every
    origin with the same fronts one model structure, so each worker compiles the NUTS
    sampler once per structure and refits it on each origin's data.  Scenarios are not
    used.  Thresholds of the exceedance indicator are computed from the training panel too.

What is scored
    * Fronts counted per grid period: each period :math:`h = 1..H` after the origin (days on
      a daily grid, Monday-Sunday weeks on a weekly grid...).  Origins are period ends (any
      day on a daily grid, a Sunday on a weekly one), so a step is a whole period.  Periods
      partly covered by a window or a declared gap (fewer observed days than the period has)
      are not scored, and a period wholly inside a declared gap has no observation at all:
      each gap in a horizon is noted as ``declared_gap``.  The baselines skip gap periods too
      (their rates are NaN), so a gap is never learnt as a lull.
    * Fronts reported through window totals: a window is scored only when it lies entirely
      inside the horizon (``o < start`` and ``end <= o + horizon days``); its step is the
      period holding its last day.  Windows that overlap the horizon without lying inside
      it, and ``at_least`` totals, are skipped.  Every skip is logged and counted in
      ``summary.json``'s ``not_scored``.
    * The exceedance indicator :math:`P(\\sum_{d=1}^{7} Y_{o+d} \\ge c)` per front and
      threshold (``forecast.indicators``), scored by the Brier score against whether the
      7-day total reached :math:`c` (fronts counted day by day or week by week only).

Baselines (:mod:`forecast.evaluation.baselines`, with the VIEWS benchmarks ``zero``, ``last``
and ``conflictology``) are scored on the same targets; every score row carries the target's
``last_value`` (the point forecast "next = last observed value"), and the summary gives, per
method and per front, the CRPS beside the MAE of that last value, and the skill per front
against :data:`SKILL_REFERENCES` with its scale-free pooled form (the mean of per-front CRPS
ratios).

The model's predictive of a target covering days :math:`D` is, per posterior draw
:math:`s`, :math:`\\operatorname{NB}(\\sum_{d \\in D} \\lambda_{s,d}, |D|\\,\\alpha_s)` (the model's
own likelihood of such an observation, ``total_dispersion``; the sum of ``forecast_counts``'
daily counts over :math:`D` has this distribution when the rate is constant).  Its log score
is the exact mixture over draws and its CRPS, PIT and intervals come from one count drawn per
posterior draw.

Origins run through a pluggable executor (:mod:`forecast.jobs.executors`); each task loads
the data itself and gets the seed ``SeedSequence([seed, origin index])``, so the scores are
the same whatever the executor.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from forecast import names as n
from forecast.checks.diagnostics import check_convergence
from forecast.checks.predictive import central_intervals, randomized_pit
from forecast.data.interventions import InterventionTable, read_interventions_csv
from forecast.data.panel import Panel, build_panel
from forecast.data.readers import read_events
from forecast.errors import ForecastError
from forecast.evaluation.baselines import (
    BASELINES,
    BaselineForecast,
    last_value,
    period_baselines,
    window_baselines,
)
from forecast.evaluation.reliability import RELIABILITY_COLUMNS, brier_score, reliability_table
from forecast.evaluation.scores import (
    count_distribution,
    count_interval,
    crps_count,
    crps_draws,
    log_score_count,
    mixture_log_score,
    pooled_front_skill,
    randomized_pit_count,
    skill,
)
from forecast.fits import posterior as posterior_of
from forecast.forecasting.counts import forecast_counts
from forecast.indicators import default_thresholds, exceedance_probabilities, weekly_totals
from forecast.jobs.data import DataRequest
from forecast.jobs.executors import Executor, SerialExecutor
from forecast.models.design import ModelOptions, changepoint_candidates
from forecast.models.escalation import total_dispersion
from forecast.models.fast import DEFAULT_FAST_METHOD, fit_fast
from forecast.models.model import EscalationModel, SamplerSettings
from forecast.models.nutpie_compile import CompiledModels
from forecast.priors import load_priors

log = logging.getLogger(__name__)

MODEL = "model"
METHODS = (MODEL, *BASELINES)
INFERENCE = ("nuts", "fast", "none")
PERIOD = n.OBS_PERIOD
WINDOW = n.OBS_WINDOW

#: Default horizon in grid periods, moving-average window, season length (used only when the
#: training window holds two full seasons) and minimum training periods (8 weeks).
DEFAULT_HORIZON = {n.FREQ_DAY: 28, n.FREQ_WEEK: 4, n.FREQ_MONTH: 3, n.FREQ_YEAR: 1}
MOVING_AVERAGE = {n.FREQ_DAY: 7, n.FREQ_WEEK: 4, n.FREQ_MONTH: 3, n.FREQ_YEAR: 2}
SEASON = {n.FREQ_DAY: 7, n.FREQ_WEEK: 52, n.FREQ_MONTH: 12, n.FREQ_YEAR: None}
DEFAULT_MIN_TRAIN = {n.FREQ_DAY: 56, n.FREQ_WEEK: 8, n.FREQ_MONTH: 3, n.FREQ_YEAR: 2}
#: The baselines' dispersions are fitted on this many latest periods (windows) only: local,
#: so that an old stretch of zeros or a past outlier does not decide today's spread.
RECENT_PERIODS = {n.FREQ_DAY: 56, n.FREQ_WEEK: 26, n.FREQ_MONTH: 24, n.FREQ_YEAR: 10}
#: The command prints per-front skills up to this many fronts (all are in summary.json).
MAX_FRONTS_PRINTED = 12
#: References of the per-front and pooled skills (every method against each of them).
SKILL_REFERENCES = ("no_change", "last", "conflictology")
#: Origins are this many grid periods apart by default (a week on a daily grid).
ORIGIN_SPACING = {n.FREQ_DAY: 7, n.FREQ_WEEK: 1, n.FREQ_MONTH: 1, n.FREQ_YEAR: 1}
DEFAULT_MAX_ORIGINS = 20
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
EXCEEDANCE_COLUMNS = ["origin", "front", "method", "threshold", "p_exceed", "observed_total", "exceeded"]

SCORES_FILE = "scores.csv"
EXCEEDANCE_FILE = "exceedance.csv"
RELIABILITY_FILE = "reliability.csv"
SUMMARY_FILE = "summary.json"
PAGE_FILE = "backtest.html"


@dataclass(frozen=True)
class BacktestRequest:
    """Everything ``forecast backtest`` needs; plain values only (tasks are pickled)."""

    data: DataRequest = field(default_factory=DataRequest)
    priors: Path | None = None
    options: ModelOptions = field(default_factory=ModelOptions)
    settings: SamplerSettings = field(default_factory=SamplerSettings)
    inference: str = "nuts"
    fast_method: str = DEFAULT_FAST_METHOD
    fast_draws: int = 1000
    horizon: int | None = None
    origins: int | None = None
    origin_dates: tuple[pd.Timestamp, ...] = ()
    min_train: int | None = None

    def __post_init__(self) -> None:
        if self.inference not in INFERENCE:
            raise ValueError(f"unknown inference {self.inference!r}; allowed: {list(INFERENCE)}")
        if self.origins is not None and self.origin_dates:
            raise ValueError("give either a number of origins or origin dates, not both")
        for name in ("horizon", "origins", "min_train"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1")

    def horizon_steps(self) -> int:
        return self.horizon or DEFAULT_HORIZON[self.data.freq]


@dataclass(frozen=True)
class OriginTask:
    """One origin of a backtest, as sent to a worker.

    ``last_origin`` is the backtest's last origin: interventions that start after ``origin``
    and on or before ``last_origin`` enter the model as placeholders (see
    :func:`_model_predictive`).
    """

    request: BacktestRequest
    origin: pd.Timestamp
    index: int
    n_origins: int
    seed: int
    last_origin: pd.Timestamp | None = None


@dataclass
class OriginResult:
    """Scores of every method at one origin, and what could not be scored."""

    origin: pd.Timestamp
    scores: pd.DataFrame
    exceedance: pd.DataFrame
    not_scored: list[dict[str, str]]
    info: dict[str, object]


@dataclass
class BacktestOutcome:
    request: BacktestRequest
    origins: list[pd.Timestamp]
    scores: pd.DataFrame
    exceedance: pd.DataFrame
    reliability: pd.DataFrame
    summary: dict[str, object]


# --------------------------------------------------------------------------------------------
# Origins, panels and targets
# --------------------------------------------------------------------------------------------


def task_seed(seed: int, index: int) -> int:
    """The seed of origin ``index``: independent of the executor and of the other origins."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def load_truth(request: BacktestRequest) -> tuple[object, Panel]:
    """The events and the full panel (everything up to ``as_of``) that forecasts are scored against."""
    data = request.data
    events = read_events(data.event_files(), format=data.format, options=data.options)
    truth = build_panel(events, freq=data.freq, as_of=data.as_of, start=data.start, **data.panel_options())
    return events, truth


def choose_origins(request: BacktestRequest, truth: Panel) -> list[pd.Timestamp]:
    """Origins at period ends, ``ORIGIN_SPACING`` apart, the last one leaving a full horizon.

    With ``origin_dates`` those are checked and used; with ``origins`` exactly that many are
    required; by default as many as fit, up to :data:`DEFAULT_MAX_ORIGINS`.
    """
    freq = truth.freq
    ends = truth.period_ends()
    horizon = request.horizon_steps()
    min_train = request.min_train or DEFAULT_MIN_TRAIN[freq]
    complete = np.flatnonzero(ends <= truth.end)
    first_index = min_train - 1
    last_index = int(complete.max()) - horizon if complete.size else -1
    if request.origin_dates:
        out = []
        for date in request.origin_dates:
            date = pd.Timestamp(date).normalize()
            where = np.flatnonzero(ends == date)
            if not where.size:
                raise ForecastError(f"origin {date.date()} is not the last day of a {freq} period of the data")
            if where[0] < first_index:
                raise ForecastError(f"origin {date.date()} leaves fewer than {min_train} {freq}(s) of training data")
            if where[0] >= truth.n_periods - 1:
                raise ForecastError(f"origin {date.date()} leaves nothing to forecast before {truth.end.date()}")
            out.append(date)
        return sorted(set(out))
    spacing = ORIGIN_SPACING[freq]
    available = list(range(last_index, first_index - 1, -spacing))[::-1]
    wanted = request.origins or min(DEFAULT_MAX_ORIGINS, len(available))
    if wanted > len(available) or not available:
        raise ForecastError(
            f"{wanted} origin(s) {spacing} {freq}(s) apart with {min_train} {freq}(s) of training data and a horizon "
            f"of {horizon} do not fit in {truth.start.date()}..{truth.end.date()}: at most {len(available)}"
        )
    return [ends[i] for i in available[-wanted:]]


def restrict_panel(panel: Panel, fronts: tuple[str, ...]) -> Panel:
    """The panel with only ``fronts``."""
    obs = panel.observations
    return replace(panel, fronts=fronts, observations=obs[obs[n.FRONT].isin(fronts)].reset_index(drop=True))


def interventions_known_at(table: InterventionTable | None, origin: pd.Timestamp, fronts: tuple[str, ...]):
    """Interventions started on or before ``origin``, restricted to ``fronts`` (None if none are left)."""
    if table is None:
        return None
    frame = table.before(origin).frame.copy()
    named = [tuple(f for f in targets if f in fronts) if targets else targets for targets in frame[n.FRONT]]
    keep = [not original or bool(kept) for original, kept in zip(frame[n.FRONT], named, strict=True)]
    frame[n.FRONT] = named
    frame = frame[keep].reset_index(drop=True)
    return InterventionTable(frame, table.files) if len(frame) else None


def forecast_targets(
    train: Panel, truth: Panel, origin: pd.Timestamp, horizon: int
) -> tuple[pd.DataFrame, list[dict[str, str]], pd.Timestamp]:
    """What happened after ``origin`` that can be scored, what cannot, and the horizon's last day."""
    ends = truth.period_ends()
    position = int(np.flatnonzero(ends == origin)[0])
    last = min(position + horizon, truth.n_periods - 1)
    horizon_end = min(ends[last], truth.end)
    rows: list[dict[str, object]] = []
    notes: list[dict[str, str]] = []
    obs = truth.observations
    for front in truth.fronts:
        mine = obs[obs[n.FRONT] == front]
        if front not in train.fronts:
            if ((mine[n.DATE] > origin) & (mine[n.DATE] <= horizon_end)).any():
                notes.append({"front": front, "reason": "front_not_in_training", "detail": "no data up to the origin"})
            continue
        periods = mine[(mine[n.OBS_KIND] == PERIOD) & (mine[n.DATE] > origin) & (mine[n.DATE] <= horizon_end)]
        for first, last in truth.gap_ranges(front):  # declared gaps are not targets
            if first <= horizon_end and last > origin:
                label = f"{max(first, origin + pd.Timedelta(days=1)).date()}..{min(last, horizon_end).date()}"
                notes.append({"front": front, "reason": "declared_gap", "detail": label})
        for row in periods.itertuples(index=False):
            row_d = row._asdict()
            index = truth.periods.get_loc(row_d[n.DATE])
            end = min(ends[index], truth.end)
            days = (end - row_d[n.DATE]).days + 1
            if row_d[n.EXPOSURE_DAYS] < days or end < ends[index]:
                notes.append({"front": front, "reason": "partial_period", "detail": f"{row_d[n.DATE].date()}"})
                continue
            rows.append(_target(front, PERIOD, index - position, row_d[n.DATE], end, row_d[n.COUNT]))
        windows = mine[(mine[n.OBS_KIND] == WINDOW) & (mine[n.END_DATE] > origin) & (mine[n.DATE] <= horizon_end)]
        for row in windows.itertuples(index=False):
            row_d = row._asdict()
            label = f"{row_d[n.DATE].date()}..{row_d[n.END_DATE].date()}"
            if row_d[n.DATE] <= origin or row_d[n.END_DATE] > horizon_end:
                notes.append({"front": front, "reason": "window_outside_horizon", "detail": label})
                continue
            if row_d[n.PRECISION] == n.PRECISION_AT_LEAST:
                notes.append({"front": front, "reason": "window_lower_bound", "detail": label})
                continue
            step = int(np.searchsorted(ends.to_numpy(), row_d[n.END_DATE].to_datetime64())) - position
            rows.append(_target(front, WINDOW, step, row_d[n.DATE], row_d[n.END_DATE], row_d[n.COUNT]))
    columns = ["front", "kind", "horizon", "target_start", "target_end", "days", "observed"]
    return pd.DataFrame(rows, columns=columns), notes, horizon_end


def _target(front: str, kind: str, step: int, start: pd.Timestamp, end: pd.Timestamp, count: int) -> dict:
    return {
        "front": front,
        "kind": kind,
        "horizon": int(step),
        "target_start": start,
        "target_end": end,
        "days": int((end - start).days + 1),
        "observed": int(count),
    }


# --------------------------------------------------------------------------------------------
# Fitting the model at an origin
# --------------------------------------------------------------------------------------------


#: Compiled NUTS samplers kept by this worker process, reused across its origins.
COMPILED_MODELS = CompiledModels(max_entries=3)


def _fit_nuts(model: EscalationModel, task: OriginTask) -> tuple[xr.Dataset, dict[str, object]]:
    settings = replace(task.request.settings, random_seed=task.seed, progressbar=False)
    result = model.fit(settings)
    diagnostics = check_convergence(result.idata)
    timings = {key: round(value, 2) for key, value in result.timings.items()}
    reused = bool(result.idata.posterior.attrs.get("compiled_model_reused", 0))
    return posterior_of(result.idata), {
        "inference": settings.to_dict(),
        "diagnostics": diagnostics.headline(),
        "timings_s": timings,
        "compiled_model_reused": reused,
    }


def _fit_fast(model: EscalationModel, task: OriginTask) -> tuple[xr.Dataset, dict[str, object]]:
    request = task.request
    result = fit_fast(model, draws=request.fast_draws, random_seed=task.seed, method=request.fast_method)
    return posterior_of(result.idata), {
        "inference": result.settings.to_dict(),
        "diagnostics": "not applicable: approximate inference (no R-hat, ESS or divergences)",
        "timings_s": {key: round(value, 2) for key, value in result.timings.items()},
        "compiled_model_reused": None,  # no compiled NUTS sampler
    }


#: How the model is fitted at an origin, by ``--inference``; tests substitute a cheap fake.
FITTERS = {"nuts": _fit_nuts, "fast": _fit_fast}


def _model_predictive(
    task: OriginTask, train: Panel, targets: pd.DataFrame, horizon_end: pd.Timestamp, notes: list[dict[str, str]]
) -> tuple[dict[str, object], xr.Dataset | None, dict[str, object]]:
    """Per target: the model's mean draws ``mu`` (sample, target) and dispersion draws."""
    request = task.request
    options = request.options
    candidates = changepoint_candidates(train, options)
    fronts = tuple(f for f in train.fronts if candidates[f] >= options.changepoints)
    for front in train.fronts:
        if front not in fronts:
            n_targets = int((targets["front"] == front).sum())
            notes.append(
                {
                    "front": front,
                    "reason": "front_not_in_model",
                    "detail": f"{candidates[front]} changepoint position(s) at the origin, {n_targets} target(s)",
                }
            )
    if not fronts:
        return {}, None, {"fit_s": 0.0, "fronts": []}
    panel = restrict_panel(train, fronts)
    path = request.data.interventions_file()
    table = read_interventions_csv(path) if path is not None else None
    # Interventions after the origin (up to the last origin) are placeholders: zero over the
    # training data, so their effects stay at the prior, and left out of the forecast.  They
    # give every origin with the same fronts one model structure, so a worker compiles the
    # NUTS sampler once per structure and refits it on each origin's data.
    until = max(task.origin, task.last_origin or task.origin)
    model = EscalationModel(
        panel,
        interventions_known_at(table, until, fronts),
        priors=load_priors(request.priors, model=options.family),
        options=options,
        shared_data=request.inference == "nuts" and request.settings.sampler == "nutpie",
        compiled_models=COMPILED_MODELS,
        placeholders_until=until,
    )
    start = time.perf_counter()
    posterior, info = FITTERS[request.inference](model, task)
    fit_s = time.perf_counter() - start
    horizon_days = int((horizon_end - task.origin).days)
    forecast = forecast_counts(model, posterior, horizon_days=horizon_days, random_seed=task.seed + 1)
    rate = forecast["rate"].stack(sample=("chain", "draw")).transpose("sample", n.FRONT, "date")
    days = pd.DatetimeIndex(forecast["date"].to_numpy())
    mine = targets[targets["front"].isin(fronts)]
    mu = np.zeros((rate.sizes["sample"], len(mine)))
    rate_values = rate.to_numpy()
    for j, row in enumerate(mine.itertuples(index=False)):
        inside = (days >= row.target_start) & (days <= row.target_end)
        mu[:, j] = rate_values[:, fronts.index(row.front), inside].sum(axis=1)
    alpha = None
    if "dispersion" in posterior:
        dispersion = posterior["dispersion"].stack(sample=("chain", "draw")).transpose("sample", n.FRONT).to_numpy()
        daily = dispersion[:, [fronts.index(f) for f in mine["front"]]]
        alpha = total_dispersion(daily, mine["days"].to_numpy(dtype=float))
    predictive = {"index": mine.index.to_numpy(), "mu": mu, "alpha": alpha, "fronts": fronts}
    return predictive, forecast, {"fit_s": round(fit_s, 2), "fronts": list(fronts), **info}


# --------------------------------------------------------------------------------------------
# Scoring one origin
# --------------------------------------------------------------------------------------------


def _score_rows(
    origin: pd.Timestamp, method: str, targets: pd.DataFrame, columns: dict[str, np.ndarray]
) -> pd.DataFrame:
    frame = targets[["front", "kind", "horizon", "target_start", "target_end", "observed"]].copy()
    frame.insert(0, "origin", origin)
    frame.insert(6, "method", method)
    for name, values in columns.items():
        frame[name] = values
    return frame


def _model_scores(origin: pd.Timestamp, targets: pd.DataFrame, predictive: dict, seed: int) -> pd.DataFrame:
    rows = targets.loc[predictive["index"]]
    y = rows["observed"].to_numpy(dtype=float)
    mu, alpha = predictive["mu"], predictive["alpha"]
    rng = np.random.default_rng([seed, 1])
    if alpha is None:
        draws = rng.poisson(mu)
    else:
        draws = rng.poisson(rng.gamma(shape=alpha, scale=mu / alpha))
    bounds = {prob: central_intervals(draws, prob) for prob in (0.5, 0.9)}
    return _score_rows(
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


def _baseline_scores(origin: pd.Timestamp, rows: pd.DataFrame, forecast: BaselineForecast, seed: int) -> pd.DataFrame:
    y = rows["observed"].to_numpy(dtype=float)
    mean, alpha = forecast.mean, forecast.alpha
    rng = np.random.default_rng([seed, 3, BASELINES.index(forecast.method)])
    if forecast.samples is not None:
        return _sample_baseline_scores(origin, rows, forecast, rng)
    lower50, upper50 = count_interval(mean, alpha, 0.5)
    lower90, upper90 = count_interval(mean, alpha, 0.9)
    return _score_rows(
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


def _sample_baseline_scores(
    origin: pd.Timestamp, rows: pd.DataFrame, forecast: BaselineForecast, rng: np.random.Generator
) -> pd.DataFrame:
    """Scores of a baseline given by equally likely samples (``zero``, ``conflictology``).

    Its log score is left empty: a point mass or a dozen atoms give most outcomes probability 0.
    """
    y = rows["observed"].to_numpy(dtype=float)
    draws = np.asarray(forecast.samples, dtype=float)
    bounds = {prob: central_intervals(draws, prob) for prob in (0.5, 0.9)}
    return _score_rows(
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


def _front_series(train: Panel, front: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Training counts and exposures of one front: per grid period, or per window."""
    if kind == WINDOW:
        windows = train.window_obs[train.window_obs[n.FRONT] == front]
        return windows[n.COUNT].to_numpy(dtype=float), windows[n.EXPOSURE_DAYS].to_numpy(dtype=float)
    counts, exposure = train.counts_matrix()
    f = train.fronts.index(front)
    return counts[f], exposure[f].astype(float)


def _baselines_for_front(train: Panel, front: str, rows: pd.DataFrame, freq: str) -> dict[str, BaselineForecast]:
    if (rows["kind"] == WINDOW).any():
        counts, days = _front_series(train, front, WINDOW)
        return window_baselines(
            counts,
            days,
            target_days=rows["days"].to_numpy(),
            window=MOVING_AVERAGE[freq],
            recent=RECENT_PERIODS[freq],
        )
    counts, exposure = _front_series(train, front, PERIOD)
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


def _last_values(train: Panel, targets: pd.DataFrame) -> np.ndarray:
    """The point forecast "next = last observed value" of each target (NaN where the front has none)."""
    out = np.full(len(targets), np.nan)
    for (front, kind), rows in targets.groupby(["front", "kind"], sort=False):
        if front not in train.fronts:
            continue
        counts, exposure = _front_series(train, front, kind)
        out[targets.index.get_indexer(rows.index)] = last_value(counts, exposure, rows["days"].to_numpy())
    return out


def score_origin(task: OriginTask) -> OriginResult:
    """Fit and score every method at one origin (a top-level function: executors pickle it)."""
    start = time.perf_counter()
    request = task.request
    events, truth = load_truth(request)
    train = build_panel(
        events, freq=request.data.freq, as_of=task.origin, start=request.data.start, **request.data.panel_options()
    )
    targets, notes, horizon_end = forecast_targets(train, truth, task.origin, request.horizon_steps())
    frames = []
    forecast = None
    info: dict[str, object] = {"origin": task.origin.date().isoformat(), "fit_s": 0.0}
    if request.inference != "none" and len(targets):
        predictive, forecast, fit_info = _model_predictive(task, train, targets, horizon_end, notes)
        info.update(fit_info)
        if predictive:
            frames.append(_model_scores(task.origin, targets, predictive, task.seed))
    baseline_draws: dict[tuple[str, str], np.ndarray] = {}
    for front in targets["front"].unique():
        for kind in (PERIOD, WINDOW):
            rows = targets[(targets["front"] == front) & (targets["kind"] == kind)]
            if rows.empty:
                continue
            for method, prediction in _baselines_for_front(train, front, rows, request.data.freq).items():
                frames.append(_baseline_scores(task.origin, rows, prediction, task.seed))
                if kind == PERIOD:
                    baseline_draws[(front, method)] = _first_week_draws(rows, prediction, task.seed, request.data.freq)
    scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_COLUMNS)
    if len(scores):
        point = targets[["front", "kind", "horizon", "target_start", "target_end"]].assign(
            last_value=_last_values(train, targets)
        )
        scores = scores.merge(point, on=["front", "kind", "horizon", "target_start", "target_end"], how="left")
    else:
        scores["last_value"] = pd.Series(dtype=float)
    exceedance = _exceedance(task, train, truth, forecast, baseline_draws, notes)
    info["total_s"] = round(time.perf_counter() - start, 2)
    model_crps = scores.loc[scores["method"] == MODEL, "crps"]
    log.info(
        "origin %d/%d %s: fitted in %.0f s, %d targets, CRPS model %s",
        task.index + 1,
        task.n_origins,
        task.origin.date(),
        info["fit_s"],
        len(targets),
        f"{model_crps.mean():.3f}" if len(model_crps) else "n/a",
    )
    for note in notes:
        log.info(
            "origin %s, front %s not scored (%s): %s", task.origin.date(), note["front"], note["reason"], note["detail"]
        )
    return OriginResult(task.origin, scores[SCORE_COLUMNS], exceedance, notes, info)


def _first_week_draws(rows: pd.DataFrame, prediction: BaselineForecast, seed: int, freq: str) -> np.ndarray | None:
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


def _exceedance(
    task: OriginTask,
    train: Panel,
    truth: Panel,
    forecast: xr.Dataset | None,
    baseline_draws: dict[tuple[str, str], np.ndarray | None],
    notes: list[dict[str, str]],
) -> pd.DataFrame:
    """P(7-day total >= threshold) of every method, with what happened."""
    thresholds = default_thresholds(train)
    counts, exposure = truth.counts_matrix()
    first_days = pd.date_range(task.origin + pd.Timedelta(days=1), periods=EXCEEDANCE_DAYS, freq="D")
    # The grid periods making up those 7 days: seven days or one week (other grids cannot).
    period_days = {n.FREQ_DAY: 1, n.FREQ_WEEK: 7}.get(truth.freq)
    index = np.empty(0, dtype=np.intp)
    if period_days:
        index = truth.periods.get_indexer(first_days if period_days == 1 else first_days[:1])
    on_grid = bool(index.size and (index >= 0).all())
    rows = []
    for front, levels in thresholds.items():
        if not levels or front not in truth.fronts:
            continue
        f = truth.fronts.index(front)
        if not (on_grid and np.all(exposure[f, index] == period_days)):
            notes.append({"front": front, "reason": "exceedance_not_observable", "detail": "7-day total unknown"})
            continue
        total = float(counts[f, index].sum())
        methods: dict[str, np.ndarray] = {}
        if forecast is not None and front in list(forecast[n.FRONT].to_numpy()):
            daily = forecast["counts"].sel({n.FRONT: front}).stack(sample=("chain", "draw")).transpose("sample", "date")
            methods[MODEL] = np.asarray(weekly_totals(daily.to_numpy(), days=EXCEEDANCE_DAYS))
        for (draw_front, method), draws in baseline_draws.items():
            if draw_front == front and draws is not None:
                methods[method] = draws
        for method, weekly in methods.items():
            probabilities = np.asarray(exceedance_probabilities(weekly, list(levels)), dtype=float).reshape(-1)
            for level, p in zip(levels, probabilities, strict=True):
                rows.append(
                    {
                        "origin": task.origin,
                        "front": front,
                        "method": method,
                        "threshold": float(level),
                        "p_exceed": float(p),
                        "observed_total": total,
                        "exceeded": int(total >= level),
                    }
                )
    return pd.DataFrame(rows, columns=EXCEEDANCE_COLUMNS)


# --------------------------------------------------------------------------------------------
# The whole backtest
# --------------------------------------------------------------------------------------------


def plan_backtest(request: BacktestRequest) -> list[OriginTask]:
    """The tasks of a backtest, one per origin, each with its own seed."""
    _, truth = load_truth(request)
    origins = choose_origins(request, truth)
    return [
        OriginTask(request, origin, i, len(origins), task_seed(request.settings.random_seed, i), origins[-1])
        for i, origin in enumerate(origins)
    ]


def run_backtest(request: BacktestRequest, executor: Executor | None = None) -> BacktestOutcome:
    """Score every origin through ``executor`` (default: in this process) and summarise."""
    tasks = plan_backtest(request)
    log.info(
        "backtest: %d origin(s) %s..%s, horizon %d %s(s), inference %s",
        len(tasks),
        tasks[0].origin.date(),
        tasks[-1].origin.date(),
        request.horizon_steps(),
        request.data.freq,
        request.inference,
    )
    start = time.perf_counter()
    results = (executor or SerialExecutor()).map(score_origin, tasks)
    wall_s = time.perf_counter() - start
    return summarise_backtest(request, results, wall_s=wall_s)


def _as_frame(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def summarise_backtest(request: BacktestRequest, results: list[OriginResult], *, wall_s: float) -> BacktestOutcome:
    """Scores of every origin, their means per method, skills and the reliability table."""
    scores = _as_frame([r.scores for r in results], SCORE_COLUMNS)
    scores = scores.sort_values(["origin", "front", "kind", "horizon", "target_start", "method"], kind="mergesort")
    scores = scores.reset_index(drop=True)
    exceedance = _as_frame([r.exceedance for r in results], EXCEEDANCE_COLUMNS)
    reliability = _reliability(exceedance)
    not_scored: dict[str, int] = {}
    for result in results:
        for note in result.not_scored:
            not_scored[note["reason"]] = not_scored.get(note["reason"], 0) + 1
    methods = [m for m in METHODS if m in set(scores["method"])]
    summary: dict[str, object] = {
        "inference": request.inference,
        "freq": request.data.freq,
        "horizon": request.horizon_steps(),
        "origins": [r.info for r in results],
        "wall_s": round(wall_s, 1),
    }
    per_method = {
        m: _method_summary(scores[scores["method"] == m], exceedance[exceedance["method"] == m]) for m in methods
    }
    summary["model"] = per_method.get(MODEL)
    summary["baselines"] = {m: per_method[m] for m in methods if m != MODEL}
    summary["skill"] = _skills(scores, methods)
    summary["by_front"] = _by_front(scores, methods)
    summary["skill_by_front"], summary["pooled_skill"] = _front_skills(scores, methods)
    summary["by_horizon"] = {
        m: {
            str(h): round(float(v), 6)
            for h, v in scores[scores["method"] == m].groupby("horizon")["crps"].mean().items()
        }
        for m in methods
    }
    summary["by_horizon_mae_last_value"] = {
        m: {str(h): _clean(_mae_last_value(rows)) for h, rows in scores[scores["method"] == m].groupby("horizon")}
        for m in methods
    }
    summary["first_week"] = _first_week(scores, request.data.freq)
    summary["not_scored"] = not_scored
    return BacktestOutcome(request, [r.origin for r in results], scores, exceedance, reliability, summary)


def _clean(value: float) -> float | None:
    return round(float(value), 6) if value is not None and np.isfinite(value) else None


def _method_summary(rows: pd.DataFrame, exceedance: pd.DataFrame) -> dict[str, object]:
    brier = (
        brier_score(exceedance["p_exceed"].to_numpy(), exceedance["exceeded"].to_numpy()) if len(exceedance) else np.nan
    )
    observed = rows["observed"].to_numpy(dtype=float)
    return {
        "crps": _clean(rows["crps"].mean()),
        "mae": _clean(np.mean(np.abs(observed - rows["mean"].to_numpy(dtype=float))) if len(rows) else np.nan),
        "mae_last_value": _clean(_mae_last_value(rows)),
        "log_score": _clean(rows["log_score"].mean()),
        "coverage_50": _clean(rows["in_50"].astype(float).mean()),
        "coverage_90": _clean(rows["in_90"].astype(float).mean()),
        "brier": _clean(brier),
        "n_targets": int(len(rows)),
        "n_exceedance": int(len(exceedance)),
    }


def _mae_last_value(rows: pd.DataFrame) -> float:
    """Mean absolute error of the point forecast "next = last value" on these rows' targets."""
    error = np.abs(rows["observed"].to_numpy(dtype=float) - rows["last_value"].to_numpy(dtype=float))
    error = error[np.isfinite(error)]
    return float(error.mean()) if error.size else np.nan


def _by_front(scores: pd.DataFrame, methods: list[str]) -> dict[str, dict[str, object]]:
    """CRPS, MAE and the last value's MAE of every method, per front."""
    out: dict[str, dict[str, object]] = {}
    for front, rows in scores.groupby("front", sort=True):
        out[str(front)] = {}
        for method in methods:
            mine = rows[rows["method"] == method]
            if len(mine):
                observed = mine["observed"].to_numpy(dtype=float)
                out[str(front)][method] = {
                    "crps": _clean(mine["crps"].mean()),
                    "mae": _clean(np.mean(np.abs(observed - mine["mean"].to_numpy(dtype=float)))),
                    "mae_last_value": _clean(_mae_last_value(mine)),
                    "coverage_90": _clean(mine["in_90"].astype(float).mean()),
                    "n_targets": int(len(mine)),
                }
    return out


def _front_skills(
    scores: pd.DataFrame, methods: list[str]
) -> tuple[dict[str, dict[str, object]], dict[str, dict[str, object]]]:
    r"""CRPS skill of every method against each of :data:`SKILL_REFERENCES`, per front and pooled.

    Per front: :math:`1 - \sum \text{CRPS} / \sum \text{CRPS}_\text{ref}` on the targets both
    scored.  Pooled, scale-free: :math:`1 - \frac1F \sum_f \text{ratio}_f`, the mean of the
    per-front ratios over the fronts whose reference CRPS is positive, so that every front
    counts once whatever its scale (the CRPS pooled over targets is decided by the largest),
    with a 90% bootstrap interval over origins (:func:`~forecast.evaluation.scores.pooled_front_skill`).
    """
    by_front: dict[str, dict[str, object]] = {}
    pooled: dict[str, dict[str, object]] = {}
    for method in methods:
        by_front[method] = {}
        pooled[method] = {}
        for reference in SKILL_REFERENCES:
            if reference not in methods or reference == method:
                continue
            matched = _matched(scores, method, reference)
            sums = matched.groupby("front", sort=True)[["crps", "crps_ref"]].sum()
            sums = sums[sums["crps_ref"] > 0]
            ratios = sums["crps"] / sums["crps_ref"]
            by_front[method][reference] = {str(f): _clean(1.0 - r) for f, r in ratios.items()}
            estimate = pooled_front_skill(
                matched["crps"].to_numpy(),
                matched["crps_ref"].to_numpy(),
                matched["front"].to_numpy(),
                matched["origin"].to_numpy(),
            )
            pooled[method][reference] = {
                **estimate.to_dict(),
                "fronts_better": int((ratios < 1).sum()),
                "n_fronts": int(len(ratios)),
            }
    return by_front, pooled


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The command's table: CRPS beside the MAE of "last value", and the pooled skills, per method."""
    rows = ([(MODEL, summary["model"])] if summary.get("model") else []) + list(summary["baselines"].items())
    references = [r for r in SKILL_REFERENCES if r in summary["baselines"]]
    head = f"{'method':<16}{'CRPS':>10}{'MAE':>10}{'MAE last':>10}{'cover90':>9}"
    head += "".join(f"{'vs ' + r:>18}" for r in references)
    lines = [head + "   (skill: mean over fronts of 1 - CRPS/CRPS_ref)"]
    for name, row in rows:
        pooled = summary["pooled_skill"].get(name, {})
        text = f"{name:<16}{_fmt(row['crps']):>10}{_fmt(row['mae']):>10}{_fmt(row['mae_last_value']):>10}"
        text += f"{_fmt(row['coverage_90']):>9}"
        for reference in references:
            entry = pooled.get(reference)
            cell = "" if entry is None else f"{_fmt(entry['value'])} {entry['fronts_better']}/{entry['n_fronts']}"
            text += f"{cell:>18}"
        lines.append(text)
    by_front = summary.get("skill_by_front", {})
    fronts = sorted({f for per_method in by_front.values() for f in per_method.get("no_change", {})})
    if fronts and len(fronts) <= MAX_FRONTS_PRINTED:
        lines.append("CRPS skill per front against no_change (1 - CRPS/CRPS_no_change):")
        names = [name for name, _ in rows if name != "no_change"]
        lines.append(f"{'front':<20}" + "".join(f"{name[:14]:>15}" for name in names))
        for front in fronts:
            cells = [_fmt(by_front.get(name, {}).get("no_change", {}).get(front)) for name in names]
            lines.append(f"{front[:19]:<20}" + "".join(f"{cell:>15}" for cell in cells))
    elif fronts:
        lines.append(f"CRPS skill per front ({len(fronts)} fronts): skill_by_front in summary.json and backtest.html")
    return lines


def _fmt(value: object) -> str:
    return "n/a" if value is None else f"{value:.3f}"


KEYS = ["origin", "front", "kind", "horizon", "target_start", "target_end"]


def _matched(scores: pd.DataFrame, method: str, reference: str) -> pd.DataFrame:
    a = scores[scores["method"] == method][[*KEYS, "crps", "log_score"]]
    b = scores[scores["method"] == reference][[*KEYS, "crps", "log_score"]]
    return a.merge(b, on=KEYS, suffixes=("", "_ref"))


def _skills(scores: pd.DataFrame, methods: list[str]) -> dict[str, object]:
    """Skill of the model against each baseline on the targets both scored (see ``scores.skill``)."""
    if MODEL not in methods:
        return {}
    out: dict[str, object] = {}
    for baseline in methods:
        if baseline == MODEL:
            continue
        matched = _matched(scores, MODEL, baseline)
        origins = matched["origin"].to_numpy()
        out[baseline] = {
            score: skill(matched[score].to_numpy(), matched[f"{score}_ref"].to_numpy(), origins).to_dict()
            for score in ("crps", "log_score")
        }
    return out


def _first_week(scores: pd.DataFrame, freq: str) -> dict[str, object]:
    """The issue's targets at the one-week horizon: CRPS skill against no-change and 90% coverage."""
    steps = {n.FREQ_DAY: 7, n.FREQ_WEEK: 1}.get(freq)
    if steps is None or MODEL not in set(scores["method"]):
        return {}
    week = scores[(scores["horizon"] <= steps) & (scores["kind"] == PERIOD)]
    matched = _matched(week, MODEL, "no_change")
    estimate = skill(matched["crps"].to_numpy(), matched["crps_ref"].to_numpy(), matched["origin"].to_numpy())
    coverage = week.loc[week["method"] == MODEL, "in_90"].astype(float).mean()
    return {
        "horizon_steps": steps,
        "crps_skill_vs_no_change": estimate.to_dict(),
        "coverage_90": _clean(coverage),
        "target_skill_met": bool(np.isfinite(estimate.value) and estimate.value >= 0.10),
        "target_coverage_met": bool(np.isfinite(coverage) and 0.85 <= coverage <= 0.95),
    }


def _reliability(exceedance: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for method, rows in exceedance.groupby("method", sort=False):
        table = reliability_table(rows["p_exceed"].to_numpy(), rows["exceeded"].to_numpy())
        table.insert(0, "method", method)
        parts.append(table)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["method", *RELIABILITY_COLUMNS])


def write_backtest(outcome: BacktestOutcome, out: Path) -> dict[str, Path]:
    """Write scores.csv, exceedance.csv, reliability.csv, summary.json, the figures and backtest.html.

    The tables and the summary are written first, so that a failure while drawing the page
    loses none of the scores.
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "scores": out / SCORES_FILE,
        "exceedance": out / EXCEEDANCE_FILE,
        "reliability": out / RELIABILITY_FILE,
        "summary": out / SUMMARY_FILE,
    }
    dated = outcome.scores.copy()
    for column in ("origin", "target_start", "target_end"):
        dated[column] = pd.to_datetime(dated[column]).dt.strftime("%Y-%m-%d")
    dated.to_csv(paths["scores"], index=False, lineterminator="\n", float_format="%.6g")
    exceedance = outcome.exceedance.copy()
    exceedance["origin"] = pd.to_datetime(exceedance["origin"]).dt.strftime("%Y-%m-%d")
    exceedance.to_csv(paths["exceedance"], index=False, lineterminator="\n", float_format="%.6g")
    outcome.reliability.to_csv(paths["reliability"], index=False, lineterminator="\n", float_format="%.6g")
    paths["summary"].write_text(json.dumps(outcome.summary, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    from forecast.jobs.backtest_page import write_page  # matplotlib and jinja2 only here

    paths.update(write_page(outcome, out))
    log.info("wrote the backtest to %s", out)
    return paths

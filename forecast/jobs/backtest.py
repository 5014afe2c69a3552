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
against :data:`~forecast.evaluation.backtest_summary.SKILL_REFERENCES` with its scale-free
pooled form (the mean of per-front CRPS ratios).

The model's predictive of a target covering days :math:`D` is, per posterior draw
:math:`s`, :math:`\\operatorname{NB}(\\sum_{d \\in D} \\lambda_{s,d}, |D|\\,\\alpha_s)` (the model's
own likelihood of such an observation, ``total_dispersion``; the sum of ``forecast_counts``'
daily counts over :math:`D` has this distribution when the rate is constant).  Its log score
is the exact mixture over draws and its CRPS, PIT and intervals come from one count drawn per
posterior draw.

Origins run through a pluggable executor (:mod:`forecast.jobs.executors`); each task loads
the data itself and gets the seed ``SeedSequence([seed, origin index])``, so the scores are
the same whatever the executor.

This module orchestrates: it loads the data, fits the model at each origin, runs the origins
through an executor and writes the files.  The pure parts live in :mod:`forecast.evaluation`:
``origins`` (choosing them, what is known at each), ``targets`` (what is scored),
``backtest_scores`` (scoring the predictives), ``backtest_summary`` (``summary.json`` and the
command's table) and ``pass_marks`` (what counts as good enough).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from forecast import names as n
from forecast.artefacts import EXCEEDANCE_FILE, RELIABILITY_FILE, SCORES_FILE, SUMMARY_FILE
from forecast.checks.diagnostics import check_convergence
from forecast.data.events import EventTable
from forecast.data.interventions import read_interventions_csv
from forecast.data.panel import Panel, build_panel
from forecast.data.readers import read_events
from forecast.errors import OptionError
from forecast.evaluation import origins as origin_choice
from forecast.evaluation.backtest_scores import (
    EXCEEDANCE_COLUMNS,
    EXCEEDANCE_DAYS,
    MODEL,
    SCORE_COLUMNS,
    baseline_scores,
    baselines_for_front,
    first_week_draws,
    model_scores,
    with_last_values,
)
from forecast.evaluation.backtest_summary import BacktestSummary, backtest_summary, reliability_by_method
from forecast.evaluation.origins import DEFAULT_HORIZON, interventions_known_at, restrict_panel
from forecast.evaluation.targets import PERIOD, WINDOW, forecast_targets
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

INFERENCE = ("nuts", "fast", "none")


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
            raise OptionError(f"unknown inference {self.inference!r}; allowed: {list(INFERENCE)}")
        if self.origins is not None and self.origin_dates:
            raise OptionError("give either a number of origins or origin dates, not both")
        for name in ("horizon", "origins", "min_train"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise OptionError(f"{name} must be >= 1")

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
    summary: BacktestSummary


# --------------------------------------------------------------------------------------------
# Origins and the data known at them
# --------------------------------------------------------------------------------------------


def task_seed(seed: int, index: int) -> int:
    """The seed of origin ``index``: independent of the executor and of the other origins."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def load_truth(request: BacktestRequest) -> tuple[EventTable, Panel]:
    """The events and the full panel (everything up to ``as_of``) that forecasts are scored against."""
    data = request.data
    events = read_events(data.event_files(), format=data.format, options=data.options)
    truth = build_panel(events, freq=data.freq, as_of=data.as_of, start=data.start, **data.panel_options())
    return events, truth


def choose_origins(request: BacktestRequest, truth: Panel) -> list[pd.Timestamp]:
    """The request's origins in ``truth`` (see :func:`forecast.evaluation.origins.choose_origins`)."""
    return origin_choice.choose_origins(
        truth,
        horizon=request.horizon_steps(),
        min_train=request.min_train,
        count=request.origins,
        dates=request.origin_dates,
    )


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
    for j, row in enumerate(mine.to_dict("records")):
        inside = (days >= row["target_start"]) & (days <= row["target_end"])
        mu[:, j] = rate_values[:, fronts.index(row["front"]), inside].sum(axis=1)
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
            frames.append(model_scores(task.origin, targets, predictive, task.seed))
    baseline_draws: dict[tuple[str, str], np.ndarray | None] = {}
    for front in targets["front"].unique():
        for kind in (PERIOD, WINDOW):
            rows = targets[(targets["front"] == front) & (targets["kind"] == kind)]
            if rows.empty:
                continue
            for method, prediction in baselines_for_front(train, front, rows, request.data.freq).items():
                frames.append(baseline_scores(task.origin, rows, prediction, task.seed))
                if kind == PERIOD:
                    baseline_draws[(front, method)] = first_week_draws(rows, prediction, task.seed, request.data.freq)
    scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_COLUMNS)
    scores = with_last_values(scores, train, targets)
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
    reliability = reliability_by_method(exceedance)
    not_scored: dict[str, int] = {}
    for result in results:
        for note in result.not_scored:
            not_scored[note["reason"]] = not_scored.get(note["reason"], 0) + 1
    summary = backtest_summary(
        scores,
        exceedance,
        inference=request.inference,
        freq=request.data.freq,
        horizon=request.horizon_steps(),
        origins=[r.info for r in results],
        not_scored=not_scored,
        wall_s=wall_s,
    )
    return BacktestOutcome(request, [r.origin for r in results], scores, exceedance, reliability, summary)


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
    paths["summary"].write_text(
        json.dumps(outcome.summary.to_dict(), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    from forecast.jobs.backtest_page import write_page  # matplotlib and jinja2 only here

    paths.update(write_page(outcome, out))
    log.info("wrote the backtest to %s", out)
    return paths

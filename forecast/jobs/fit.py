"""The fit job behind ``forecast fit``: data in, ``fit.nc`` and ``summary.json`` out."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from forecast import __version__
from forecast.artefacts import FIT_FILE, FORECAST_DRAWS_FILE, SUMMARY_FILE
from forecast.checks.diagnostics import Diagnostics, check_convergence
from forecast.checks.predictive import PredictiveCheckResult, predictive_checks
from forecast.data.panel import whole_periods
from forecast.fits import FitProvenance, posterior, save_fit, with_observations
from forecast.forecasting.counts import forecast_counts
from forecast.jobs.data import DataRequest, LoadedData, load_data
from forecast.models.design import Design, ModelOptions
from forecast.models.escalation import OBS
from forecast.models.model import EscalationModel, FitResult, SamplerSettings, changepoint_dates_posterior
from forecast.models.posterior import draw_level, replicate_counts
from forecast.models.summary import FitSummary, summarise
from forecast.priors import load_priors

log = logging.getLogger(__name__)

OBSERVED_NAME = "y"
FORECAST_DRAWS_DAYS = 28
#: Offsets from the fit's seed for the draws made after sampling, so that every job that redraws
#: the same quantity (the report's forecast at another horizon) uses the same stream.
REPLICATE_SEED_OFFSET = 1
FORECAST_SEED_OFFSET = 2


@dataclass(frozen=True)
class FitRequest:
    """Everything ``forecast fit`` needs."""

    data: DataRequest = field(default_factory=DataRequest)
    priors: Path | None = None
    options: ModelOptions = field(default_factory=ModelOptions)
    settings: SamplerSettings = field(default_factory=SamplerSettings)


@dataclass
class FitOutcome:
    """A finished fit with its checks, ready to save or report."""

    loaded: LoadedData
    model: EscalationModel
    result: FitResult
    diagnostics: Diagnostics
    predictive: PredictiveCheckResult
    summary: FitSummary  # the model part of summary.json
    forecast: xr.Dataset
    provenance: FitProvenance
    timings: dict[str, float]
    #: ``changepoint_dates_posterior`` of the fit, (changepoint, front, position); None without changepoints.
    changepoint_probabilities: np.ndarray | None = None

    @property
    def idata(self) -> az.InferenceData:
        return self.result.idata


def check_predictions(design: Design, replicated: np.ndarray) -> PredictiveCheckResult:
    """Posterior predictive checks per front; lower-bound (``at_least``) totals are left out.

    The autocorrelations pair period observations by their period on the grid, so a pair
    never straddles a gap (a declared gap, a window, a left-out total).  A window total that
    covers exactly one whole period (a month of a monthly table such as ACLED's, a day given with
    its own end date on a daily grid) is that period's count and is paired like one; other
    window totals have no single period and are left out of the autocorrelations only.
    """
    order = np.full(design.n_obs, np.nan)
    order[design.period_obs] = design.period_index
    period = whole_periods(design.window_weights, design.period_days)
    order[design.window_obs[period >= 0]] = period[period >= 0]
    return predictive_checks(
        design.y,
        replicated,
        [design.fronts[f] for f in design.obs_front],
        order=order,
        include=~design.censored,
    )


def data_provenance(request: DataRequest, loaded: LoadedData) -> dict[str, object]:
    """The data request as recorded in a fit, enough to rebuild the same panel."""
    interventions = request.interventions_file()
    return {
        "events": [str(p) for p in request.event_files()],
        "interventions": str(interventions) if interventions else None,
        "format": request.format,
        "options": dict(request.options.__dict__),
        "freq": request.freq,
        "start": loaded.panel.start.date().isoformat(),
        "end": loaded.panel.end.date().isoformat(),
        **request.panel_options(),
    }


def run_fit(request: FitRequest, *, reusable: bool | None = None) -> FitOutcome:
    """Load the data, sample the model, check it and summarise it (nothing is written).

    ``reusable``: build the graph for next week's table (:class:`EscalationModel`); by default
    with nutpie, whose compiled sampler is then found on disk.
    """
    loaded = load_data(request.data)
    priors = load_priors(request.priors, model=request.options.family)
    model = EscalationModel(
        loaded.panel,
        loaded.interventions,
        priors=priors,
        options=request.options,
        reusable=request.settings.sampler == "nutpie" if reusable is None else reusable,
    )
    result = model.fit(request.settings)
    return complete_fit(request, loaded, model, result)


def complete_fit(request: FitRequest, loaded: LoadedData, model: EscalationModel, result: FitResult) -> FitOutcome:
    """Diagnostics, replicated data, predictive checks, summary and provenance of a sampled fit."""
    timings = dict(result.timings)
    start = time.perf_counter()
    diagnostics = check_convergence(result.idata)
    log.info("%s", diagnostics.headline())
    draws = draw_level(model, posterior(result.idata), random_seed=request.settings.random_seed)
    replicated = replicate_counts(draws, random_seed=request.settings.random_seed + REPLICATE_SEED_OFFSET)
    design = model.design
    idata = with_observations(
        result.idata,
        name=OBSERVED_NAME,
        observed=design.y,
        replicated=replicated,
        pointwise_loglik=draws.loglik,
        dim=OBS,
    )
    result.idata = idata
    predictive = check_predictions(design, replicated)
    changepoints = changepoint_dates_posterior(model, posterior(idata)) if design.options.changepoints else None
    summary = summarise(model, posterior(idata), changepoint_probabilities=changepoints)
    forecast = forecast_counts(
        model,
        posterior(idata),
        horizon_days=FORECAST_DRAWS_DAYS,
        random_seed=request.settings.random_seed + FORECAST_SEED_OFFSET,
    )
    timings["checks_s"] = time.perf_counter() - start

    as_of = loaded.as_of.date().isoformat()  # always recorded: the request's, or the data's last day
    provenance = FitProvenance(
        package_version=__version__,
        model_name=model.name,
        model_options={**request.options.to_dict(), "data": data_provenance(request.data, loaded)},
        priors=model.priors.to_dict(),
        priors_hash=model.priors.hash(),
        data_hash=loaded.panel.data_hash(),
        as_of=as_of,
        sampler=request.settings.to_dict(),
        created_from=[str(p) for p in request.data.event_files()],
    )
    return FitOutcome(
        loaded=loaded,
        model=model,
        result=result,
        diagnostics=diagnostics,
        predictive=predictive,
        summary=summary,
        forecast=forecast,
        provenance=provenance,
        timings=timings,
        changepoint_probabilities=changepoints,
    )


def summary_document(outcome: FitOutcome) -> dict[str, object]:
    """The content of ``summary.json``."""
    panel = outcome.loaded.panel
    return {
        "headline": outcome.diagnostics.headline(),
        "diagnostics": outcome.diagnostics.to_dict(),
        "model": outcome.model.name,
        "options": outcome.model.options.to_dict(),
        "sampler": outcome.result.settings.to_dict(),
        "as_of": outcome.provenance.as_of,
        "span": [panel.start.date().isoformat(), panel.end.date().isoformat()],
        "freq": panel.freq,
        "data_hash": outcome.provenance.data_hash,
        "priors_hash": outcome.provenance.priors_hash,
        "package_version": __version__,
        "predictive_checks": outcome.predictive.to_dict(),
        "timings_s": {k: round(v, 2) for k, v in outcome.timings.items()},
        **outcome.summary,
    }


def write_fit(outcome: FitOutcome, out: Path) -> dict[str, Path]:
    """Write ``fit.nc`` and ``summary.json`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    fit_path = save_fit(outcome.idata, out / FIT_FILE, outcome.provenance)
    summary_path = out / SUMMARY_FILE
    summary_path.write_text(json.dumps(summary_document(outcome), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    draws_path = write_forecast_draws(outcome, out / FORECAST_DRAWS_FILE)
    log.info("wrote %s, %s and %s", fit_path, summary_path, draws_path)
    return {"fit": fit_path, "summary": summary_path, "forecast_draws": draws_path}


def write_forecast_draws(outcome: FitOutcome, path: Path) -> Path:
    """Save the daily predictive draws ``(sample, front, day)`` with their fronts, dates and as_of."""
    counts = outcome.forecast["counts"].stack(sample=("chain", "draw")).transpose("sample", "front", "date")
    np.savez_compressed(
        path,
        fronts=np.array(outcome.model.design.fronts, dtype=str),
        dates=np.array(
            [d.date().isoformat() for d in pd.DatetimeIndex(outcome.forecast["date"].to_numpy())], dtype=str
        ),
        draws=counts.to_numpy().astype(np.int64),
        as_of=np.array(outcome.model.panel.end.date().isoformat()),
    )
    return path

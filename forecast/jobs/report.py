"""The report job behind ``forecast report``: data in, a weekly report folder out.

Steps (each logged with its time): load the data; fit the model (``forecast fit``'s own
:func:`~forecast.jobs.fit.complete_fit`: diagnostics, predictive checks, summary); forecast
the horizon (and the scenario, if any); compute and validate the indicators; draw the
figures; render and write ``report.html``, ``report.md`` with ``figures/``,
``indicators.json``, and ``fit.nc`` with ``summary.json`` (:func:`~forecast.jobs.fit.write_fit`).

A plot that fails raises and fails the job: the report never silently loses a figure.  A fit
that fails its diagnostics is still reported, with the failure as the headline's first line.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd

from forecast import __version__
from forecast import names as n
from forecast.artefacts import FIT_FILE, INDICATORS_FILE, REPORT_HTML_FILE, REPORT_MARKDOWN_FILE, SUMMARY_FILE
from forecast.errors import ForecastError
from forecast.fits import posterior
from forecast.forecasting.counts import ScenarioIntervention, forecast_counts
from forecast.indicators import IndicatorSettings, compute_indicators, validate_indicators
from forecast.indicators.steps import DEFAULT_STEPS, step_days, step_ends
from forecast.jobs.data import load_data
from forecast.jobs.fit import (
    FORECAST_DRAWS_DAYS,
    FORECAST_SEED_OFFSET,
    FitOutcome,
    FitRequest,
    complete_fit,
    summary_document,
    write_fit,
)
from forecast.jobs.report_figures import fan_chart, report_figures
from forecast.jobs.scenarios import SCENARIO_SYNTAX, describe_scenario, parse_scenario

# The scenario parser and the figures have their own modules; their public names stay
# importable from here (the command line, the tests and the notebooks import them here).
__all__ = [
    "DEFAULT_ROOT",
    "SCENARIO_SYNTAX",
    "ReportOutcome",
    "ReportRequest",
    "check_scenario",
    "describe_scenario",
    "fan_chart",
    "find_previous",
    "horizon_days",
    "parse_scenario",
    "read_previous",
    "report_figures",
    "report_provenance",
    "run_report",
    "write_report",
]
from forecast.models.model import EscalationModel, FitResult, SamplerSettings
from forecast.priors import load_priors
from forecast.report import ReportContent, markdown_figures, render_html, render_markdown, scenario_rows
from forecast.report.content import headline_lines

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("reports")
STEPS = 6
_DATE_FOLDER = re.compile(r"\d{4}-\d{2}-\d{2}")

#: Samples a built model; the default is :meth:`EscalationModel.fit` (tests inject a fake).
Sampler = Callable[[EscalationModel, SamplerSettings], FitResult]


@dataclass(frozen=True)
class ReportRequest:
    """Everything ``forecast report`` needs.

    ``out`` defaults to ``root/<as_of>``; ``horizon`` is in steps of the panel's grid
    (days, or 7-day blocks for weekly panels, 28-day blocks for monthly and yearly ones) and
    defaults to 28 days; ``previous`` overrides the search for the previous report (a folder
    holding ``indicators.json``, or the file itself).
    """

    fit: FitRequest = field(default_factory=FitRequest)
    out: Path | None = None
    root: Path = DEFAULT_ROOT
    horizon: int | None = None
    scenarios: tuple[ScenarioIntervention, ...] = ()
    previous: Path | None = None
    indicator_settings: IndicatorSettings = field(default_factory=IndicatorSettings)


@dataclass
class ReportOutcome:
    """The written report."""

    out: Path
    paths: dict[str, Path]
    indicators: dict
    headline: list[str]
    fit: FitOutcome
    timings: dict[str, float]


def check_scenario(model: EscalationModel, scenario: tuple[ScenarioIntervention, ...], horizon_days: int) -> None:
    """Refuse, before sampling, a scenario the fit could not draw (unknown kind or front, outside the horizon)."""
    design = model.design
    end = model.panel.end
    last = end + pd.Timedelta(days=horizon_days)
    for item in scenario:
        if item.kind not in design.kinds:
            estimated = ", ".join(design.kinds) or "none (the model has no interventions)"
            raise ForecastError(
                f"scenario kind {item.kind!r} is not an intervention kind estimated by this fit; estimated kinds: "
                f"{estimated}"
            )
        unknown = [front for front in item.fronts if front not in design.fronts]
        if unknown:
            raise ForecastError(f"scenario fronts {unknown} are not in the data; fronts: {', '.join(design.fronts)}")
        if not end < item.start <= last:
            raise ForecastError(
                f"scenario {item.kind}@{item.start.date()} must start inside the forecast horizon, "
                f"{(end + pd.Timedelta(days=1)).date()} to {last.date()}"
            )
        if item.shape == n.SHAPE_PULSE and not len(design.pulse_index):
            raise ForecastError("a pulse scenario needs at least one pulse intervention in the data")


def horizon_days(freq: str, steps: int | None, as_of: pd.Timestamp) -> int:
    """Forecast days for ``steps`` steps of the grid after ``as_of`` (default :data:`DEFAULT_STEPS`).

    Days and 7-day blocks on daily and weekly grids; calendar months or years on monthly and
    yearly ones, the first being the rest of the period that holds ``as_of + 1``
    (:func:`forecast.indicators.steps.step_ends`).
    """
    if steps is None:
        steps = DEFAULT_STEPS[freq]
    if steps < 1:
        raise ForecastError(f"--horizon must be at least 1, got {steps}")
    days = int((step_ends(as_of, freq, steps)[-1] - pd.Timestamp(as_of).normalize()).days)
    if days < 7:
        partial = ""
        if step_days(freq) is None:
            end = pd.Timestamp(as_of).date()
            partial = f" (as_of {end} is not the last day of its {freq}: the first step is the rest of it)"
        raise ForecastError(f"--horizon {steps} {freq}(s) is {days} days{partial}; the indicators need at least 7")
    return days


def find_previous(out: Path, as_of: str) -> Path | None:
    """The latest sibling folder of ``out`` named ``YYYY-MM-DD`` whose ``indicators.json`` is earlier than ``as_of``."""
    root = out.parent
    if not root.is_dir():
        return None
    found: list[tuple[str, Path]] = []
    for child in sorted(root.iterdir()):
        path = child / INDICATORS_FILE
        if not (_DATE_FOLDER.fullmatch(child.name) and path.is_file()) or child.resolve() == out.resolve():
            continue
        try:
            earlier = str(json.loads(path.read_text(encoding="utf-8"))["as_of"])
        except (ValueError, KeyError, TypeError) as error:
            log.warning("ignoring %s as a previous report: it is not a readable indicators file (%s)", path, error)
            continue
        if earlier < as_of:
            found.append((earlier, path))
    return max(found)[1] if found else None


def read_previous(path: Path) -> dict:
    """A previous report's indicators (``path`` is the file or its folder)."""
    file = path / INDICATORS_FILE if path.is_dir() else path
    if not file.is_file():
        raise ForecastError(f"--previous {path}: no {INDICATORS_FILE} there")
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ForecastError(f"{file}: not valid JSON ({error})") from error
    validate_indicators(document)
    return document


@contextmanager
def _step(number: int, what: str, timings: dict[str, float], key: str) -> Iterator[None]:
    log.info("[%d/%d] %s ...", number, STEPS, what)
    start = time.perf_counter()
    yield
    timings[key] = time.perf_counter() - start
    log.info("[%d/%d] %s done in %.1f s", number, STEPS, what, timings[key])


def run_report(request: ReportRequest, *, sample: Sampler | None = None) -> ReportOutcome:
    """Fit, forecast, compute the indicators, draw, render and write the report.

    Parameters
    ----------
    request : ReportRequest
    sample : callable, optional
        ``sample(model, settings) -> FitResult``; defaults to NUTS (:meth:`EscalationModel.fit`).
    """
    matplotlib.use("Agg")
    timings: dict[str, float] = {}
    with _step(1, "loading data", timings, "load_s"):
        loaded = load_data(request.fit.data)
        as_of = loaded.as_of
        fit_request = replace(request.fit, data=replace(request.fit.data, as_of=as_of))
        model = EscalationModel(
            loaded.panel,
            loaded.interventions,
            priors=load_priors(fit_request.priors, model=fit_request.options.family),
            options=fit_request.options,
            reusable=fit_request.settings.sampler == "nutpie",
        )
        days = horizon_days(loaded.panel.freq, request.horizon, as_of)
        check_scenario(model, request.scenarios, days)
        out = request.out if request.out is not None else request.root / as_of.date().isoformat()
        previous_path = request.previous or find_previous(out, as_of.date().isoformat())
        previous = read_previous(previous_path) if previous_path is not None else None
        log.info(
            "as_of %s, %d fronts, %s grid; previous report: %s",
            as_of.date(),
            len(loaded.panel.fronts),
            loaded.panel.freq,
            previous_path or "none (first report)",
        )

    with _step(2, "fitting the model", timings, "fit_s"):
        result = (sample or _nuts)(model, fit_request.settings)
        outcome = complete_fit(fit_request, loaded, model, result)

    seed = fit_request.settings.random_seed
    draws = posterior(outcome.idata)
    with _step(3, f"forecasting {days} days", timings, "forecast_s"):
        forecast = outcome.forecast
        if days != FORECAST_DRAWS_DAYS:
            forecast = forecast_counts(model, draws, horizon_days=days, random_seed=seed + FORECAST_SEED_OFFSET)
        scenario = None
        if request.scenarios:
            scenario = forecast_counts(
                model, draws, horizon_days=days, random_seed=seed + 3, scenario=request.scenarios
            )

    with _step(4, "computing indicators", timings, "indicators_s"):
        changepoints = outcome.changepoint_probabilities
        indicators = compute_indicators(
            model,
            draws,
            forecast,
            diagnostics=outcome.diagnostics,
            settings=request.indicator_settings,
            changepoint_probabilities=changepoints,
        )

    with _step(5, "drawing figures", timings, "figures_s"):
        figures = report_figures(outcome, forecast, scenario, changepoints, request.scenarios)

    with _step(6, f"writing the report to {out}", timings, "write_s"):
        summary = summary_document(outcome)
        scenarios: tuple[Mapping[str, Any], ...] = ()
        if scenario is not None:
            scenarios = (
                {"description": describe_scenario(request.scenarios), "rows": scenario_rows(forecast, scenario)},
            )
        content = ReportContent(
            indicators=indicators,
            summary=summary,
            provenance=report_provenance(outcome, days, request.scenarios),
            figures=figures,
            previous=previous,
            previous_source=str(previous_path.parent if previous_path.name == INDICATORS_FILE else previous_path)
            if previous_path is not None
            else None,
            scenarios=scenarios,
        )
        paths = write_report(content, outcome, out)
    headline = headline_lines(indicators, summary, previous, content.previous_source)
    return ReportOutcome(out=out, paths=paths, indicators=indicators, headline=headline, fit=outcome, timings=timings)


def _nuts(model: EscalationModel, settings: SamplerSettings) -> FitResult:
    return model.fit(settings)


def write_report(content: ReportContent, outcome: FitOutcome, out: Path) -> dict[str, Path]:
    """Write the fit, the indicators, the figures, ``report.md`` and ``report.html`` into ``out``.

    ``content.indicators`` is written as it is: :func:`~forecast.indicators.compute_indicators`
    has already validated it against the schema.
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = dict(write_fit(outcome, out))
    paths["indicators"] = out / INDICATORS_FILE
    paths["indicators"].write_text(json.dumps(content.indicators, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    for relative, png in markdown_figures(content).items():
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(png)
    paths["markdown"] = out / REPORT_MARKDOWN_FILE
    paths["markdown"].write_text(render_markdown(content), encoding="utf-8")
    paths["html"] = out / REPORT_HTML_FILE
    paths["html"].write_text(render_html(content), encoding="utf-8")
    return paths


def report_provenance(outcome: FitOutcome, days: int, scenario: tuple[ScenarioIntervention, ...]) -> dict[str, object]:
    """What the report came from: data, priors, model, sampler and package."""
    recorded = outcome.provenance
    data = recorded.model_options.get("data", {})
    options = {k: v for k, v in recorded.model_options.items() if k != "data"}
    return {
        "as of": recorded.as_of,
        "span": f"{data.get('start')} .. {data.get('end')}",
        "frequency": data.get("freq"),
        "horizon": f"{days} days",
        "event files": data.get("events"),
        "interventions file": data.get("interventions"),
        "data hash": recorded.data_hash,
        "priors hash": recorded.priors_hash,
        "model": recorded.model_name,
        "model options": options,
        "sampler": recorded.sampler,
        "scenario": describe_scenario(scenario) if scenario else None,
        "package version": __version__,
        "fit": f"{FIT_FILE} and {SUMMARY_FILE} in this folder",
    }


# ------------------------------------------------------------------------------ figures

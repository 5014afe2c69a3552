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
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from forecast import __version__
from forecast import names as n
from forecast.artefacts import FIT_FILE, INDICATORS_FILE, REPORT_HTML_FILE, REPORT_MARKDOWN_FILE, SUMMARY_FILE
from forecast.checks.predictive import randomized_pit
from forecast.errors import ForecastError
from forecast.fits import posterior, posterior_predictive
from forecast.forecasting.counts import ScenarioIntervention, forecast_counts
from forecast.indicators import IndicatorSettings, compute_indicators, validate_indicators
from forecast.indicators.steps import step_days
from forecast.jobs.data import load_data
from forecast.jobs.fit import (
    FORECAST_DRAWS_DAYS,
    FORECAST_SEED_OFFSET,
    OBSERVED_NAME,
    FitOutcome,
    FitRequest,
    complete_fit,
    summary_document,
    write_fit,
)
from forecast.models.escalation import OBS
from forecast.models.model import EscalationModel, FitResult, SamplerSettings
from forecast.plots.checks import plot_pit_histogram, plot_predictive_bands, plot_rootogram
from forecast.plots.report import (
    EffectRow,
    InterventionMarker,
    WindowTotal,
    figure_png,
    plot_changepoint_posterior,
    plot_fan_chart,
    plot_intervention_effects,
)
from forecast.priors import load_priors
from forecast.report import ReportContent, ReportFigure, markdown_figures, render_html, render_markdown, scenario_rows
from forecast.report.content import headline_lines

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("reports")
DEFAULT_HORIZON_DAYS = 28
FIGURE_DPI = 90
STEPS = 6
_DATE_FOLDER = re.compile(r"\d{4}-\d{2}-\d{2}")
_SCENARIO = re.compile(
    r"(?P<kind>[^@:]+)@(?P<start>\d{4}-\d{2}-\d{2})(?:\.\.(?P<end>\d{4}-\d{2}-\d{2}))?(?::(?P<fronts>[^:]+))?"
)
SCENARIO_SYNTAX = "KIND@DATE (a pulse) or KIND@START..END (a window), optionally followed by :FRONT1,FRONT2"

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


def parse_scenario(text: str) -> ScenarioIntervention:
    """Parse ``KIND@DATE[..END][:FRONT,FRONT]`` into a :class:`ScenarioIntervention`.

    ``strike@2024-05-20`` is a pulse on that day, ``truce@2024-05-20..2024-05-27`` a window
    over those days (inclusive), ``strike@2024-05-20:iraq,syria`` limits it to two fronts.
    """
    match = _SCENARIO.fullmatch(text.strip())
    if not match:
        raise ForecastError(f"--scenario {text!r} is not {SCENARIO_SYNTAX}")
    try:
        start = pd.Timestamp(pd.to_datetime(match["start"], format="%Y-%m-%d"))
        end = pd.Timestamp(pd.to_datetime(match["end"], format="%Y-%m-%d")) if match["end"] else None
    except ValueError as error:
        raise ForecastError(f"--scenario {text!r}: {error}") from error
    if end is not None and end < start:
        raise ForecastError(f"--scenario {text!r}: the window ends before it starts")
    fronts = tuple(part.strip() for part in (match["fronts"] or "").split(",") if part.strip())
    shape = n.SHAPE_WINDOW if end is not None else n.SHAPE_PULSE
    return ScenarioIntervention(kind=match["kind"].strip(), start=start, shape=shape, end=end, fronts=fronts)


def describe_scenario(scenario: tuple[ScenarioIntervention, ...]) -> str:
    """One line naming every hypothetical intervention of a scenario."""
    parts = []
    for item in scenario:
        when = f"from {item.start.date()} to {item.end.date()}" if item.end is not None else f"on {item.start.date()}"
        where = "every front" if not item.fronts else "fronts " + ", ".join(item.fronts)
        parts.append(f"{item.kind} {when} ({item.shape}, {where})")
    return "Scenario: " + " + ".join(parts)


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


def horizon_days(freq: str, steps: int | None) -> int:
    """Forecast days for ``steps`` steps of the grid (default :data:`DEFAULT_HORIZON_DAYS`)."""
    if steps is None:
        return DEFAULT_HORIZON_DAYS
    if steps < 1:
        raise ForecastError(f"--horizon must be at least 1, got {steps}")
    days = steps * step_days(freq)
    if days < 7:
        raise ForecastError(f"--horizon {steps} {freq}(s) is {days} days; the indicators need at least 7")
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
        as_of = loaded.panel.end
        fit_request = replace(request.fit, data=replace(request.fit.data, as_of=as_of))
        model = EscalationModel(
            loaded.panel,
            loaded.interventions,
            priors=load_priors(fit_request.priors, model=fit_request.options.family),
            options=fit_request.options,
        )
        days = horizon_days(loaded.panel.freq, request.horizon)
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


def report_figures(
    outcome: FitOutcome,
    forecast: xr.Dataset,
    scenario: xr.Dataset | None,
    changepoints: np.ndarray | None,
    scenario_items: tuple[ScenarioIntervention, ...],
) -> tuple[ReportFigure, ...]:
    """Every figure of the report, as PNG; a figure that fails to draw raises."""
    model = outcome.model
    panel = model.panel
    design = model.design
    figures = []
    label = "scenario"
    for front in design.fronts:
        caption = (
            f"{front}: observed counts, interventions and the {len(forecast['date'])}-day forecast "
            "(median, 50% and 90% intervals)"
        )
        if scenario is not None:
            caption += "; orange: " + describe_scenario(scenario_items).removeprefix("Scenario: ")
        figures.append(
            _figure(
                f"fan_{_slug(front)}",
                "forecasts",
                f"Forecast: {front}",
                caption,
                partial(fan_chart, outcome, forecast, scenario, front, scenario_label=label),
            )
        )
    series = {}
    if changepoints is not None:
        for f, front in enumerate(design.fronts):
            mask = design.position_mask[f]
            series[front] = (design.obs_date[design.position[f][mask]], changepoints[:, f, mask])
    figures.append(
        _figure(
            "changepoints",
            "changepoints",
            "Changepoint posterior",
            "Posterior probability of each changepoint's date, per front (exact: the dates are summed out)",
            lambda: plot_changepoint_posterior(series),
        )
    )
    rows = [
        EffectRow(front["front"], item["label"], item["rate_ratio"], item["half_life_days"])
        for front in outcome.summary["fronts"]
        for item in front["interventions"]
    ]
    figures.append(
        _figure(
            "intervention_effects",
            "interventions",
            "Intervention effects",
            "Rate ratio at each intervention's peak (below 1: a lull) and half-life of pulses, with 90% intervals",
            lambda: plot_intervention_effects(rows),
        )
    )
    replicated = posterior_predictive(outcome.idata)[OBSERVED_NAME].transpose("chain", "draw", OBS).to_numpy()
    groups = [design.fronts[f] for f in design.obs_front]
    window = np.zeros(design.n_obs, dtype=bool)
    window[design.window_obs] = True
    seed = outcome.result.settings.random_seed
    figures += [
        _figure(
            "predictive_bands",
            "checks",
            "Posterior predictive bands",
            "Observed counts with their 50% and 90% posterior predictive intervals",
            lambda: plot_predictive_bands(design.obs_date, design.y, replicated, groups, window=window),
        ),
        _figure(
            "pit_histogram",
            "checks",
            "PIT histogram",
            "Randomised PIT of every observation: flat when the predictive distribution is calibrated",
            lambda: plot_pit_histogram(randomized_pit(design.y, replicated, seed)),
        ),
        _figure(
            "rootogram",
            "checks",
            "Hanging rootogram",
            "Observed against expected count frequencies (period counts)",
            lambda: plot_rootogram(design.y[~window], replicated[..., ~window]),
        ),
    ]
    log.debug("drew %d figures for %s", len(figures), panel.end.date())
    return tuple(figures)


def fan_chart(
    outcome: FitOutcome, forecast: xr.Dataset, scenario: xr.Dataset | None, front: str, *, scenario_label: str
) -> Figure:
    """The fan chart of one front, in events per day (period averages on weekly and coarser grids)."""
    model = outcome.model
    panel = model.panel
    design = model.design
    period = panel.period_obs[panel.period_obs[n.FRONT] == front]
    values = period[n.COUNT].to_numpy(dtype=float) / period[n.EXPOSURE_DAYS].to_numpy(dtype=float)
    windows = [
        WindowTotal(row[n.DATE], row[n.END_DATE], float(row[n.COUNT]))
        for _, row in panel.window_obs[panel.window_obs[n.FRONT] == front].iterrows()
    ]
    f = design.fronts.index(front)
    markers = [
        InterventionMarker(
            label=row[n.LABEL],
            kind=row[n.KIND],
            start=row[n.DATE],
            end=None if pd.isna(row[n.END_DATE]) else row[n.END_DATE],
            shape=row[n.SHAPE],
        )
        for j, row in design.intervention_rows()
        if design.applies[j, f]
    ]
    dates, baseline = _per_day(forecast, front, panel.freq)
    scenario_draws = None if scenario is None else _per_day(scenario, front, panel.freq)[1]
    unit = "events per day" if panel.freq == n.FREQ_DAY else f"events per day ({panel.freq}ly average)"
    return plot_fan_chart(
        front,
        observed_dates=period[n.DATE].to_numpy(),
        observed_values=values,
        forecast_dates=dates,
        forecast_draws=baseline,
        windows=windows,
        interventions=markers,
        scenario_draws=scenario_draws,
        scenario_label=scenario_label,
        unit=unit,
        as_of=panel.end,
        gaps=panel.gap_ranges(front),
    )


def _per_day(forecast: xr.Dataset, front: str, freq: str) -> tuple[np.ndarray, np.ndarray]:
    """Daily draws ``(sample, date)``; on coarser grids averaged over each step (labelled by its first day)."""
    counts = forecast["counts"].sel({n.FRONT: front}).stack(sample=("chain", "draw")).transpose("sample", "date")
    values = counts.to_numpy().astype(float)
    dates = pd.DatetimeIndex(counts["date"].to_numpy())
    size = step_days(freq)
    if size == 1:
        return dates.to_numpy(), values
    steps = len(dates) // size
    blocks = values[:, : steps * size].reshape(values.shape[0], steps, size).mean(axis=2)
    return dates[: steps * size : size].to_numpy(), blocks


def _figure(name: str, section: str, title: str, caption: str, draw: Callable[[], Figure]) -> ReportFigure:
    """Draw one figure; a failure fails the report, naming the figure (never a silently missing plot)."""
    try:
        png = figure_png(draw(), dpi=FIGURE_DPI)
    except Exception as error:
        why = f"{type(error).__name__}: {error}"
        raise ForecastError(f"the report figure {name!r} could not be drawn: {why}") from error
    return ReportFigure(name=name, section=section, title=title, caption=caption, png=png)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "front"

"""The figures of the weekly report: one forecast fan per front, changepoints or the level, effects and checks.

Every figure is drawn to PNG here; a figure that fails to draw fails the report, naming it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from forecast import names as n
from forecast.checks.predictive import randomized_pit
from forecast.errors import ForecastError
from forecast.fits import posterior_predictive
from forecast.forecasting.counts import ScenarioIntervention
from forecast.indicators.steps import whole_steps
from forecast.jobs.fit import OBSERVED_NAME, FitOutcome
from forecast.jobs.scenarios import describe_scenario
from forecast.models.design import Design
from forecast.models.escalation import OBS
from forecast.plots.checks import plot_pit_histogram, plot_predictive_bands, plot_rootogram
from forecast.plots.dates import DateLike
from forecast.plots.report import (
    EffectRow,
    InterventionMarker,
    WindowTotal,
    figure_png,
    plot_changepoint_posterior,
    plot_fan_chart,
    plot_intervention_effects,
    plot_level_posterior,
)
from forecast.report import ReportFigure

log = logging.getLogger(__name__)

FIGURE_DPI = 90


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
    if design.options.family == "dynamic":
        figures.append(
            _figure(
                "level",
                "changepoints",
                "Level posterior",
                "The level of each front as a daily rate (without bursts and interventions): median and 90% "
                "interval; dotted lines: the most probable dates of its reported level shifts",
                partial(_level_figure, outcome),
            )
        )
    else:
        figures.append(_changepoint_figure(design, changepoints))
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
    """Daily draws ``(sample, date)``; on coarser grids each step's daily average, drawn over the whole step.

    A step of the forecast table (a 7-day block, a month, a year) gives two points, its first
    and its last day, with the same value: the fan is a staircase that spans each step.
    """
    counts = forecast["counts"].sel({n.FRONT: front}).stack(sample=("chain", "draw")).transpose("sample", "date")
    values = counts.to_numpy().astype(float)
    dates = pd.DatetimeIndex(counts["date"].to_numpy())
    if freq == n.FREQ_DAY:
        return dates.to_numpy(), values
    bounds = whole_steps(dates, freq)
    ends = np.asarray(bounds, dtype=int).reshape(-1)
    blocks = np.asarray([values[:, first : last + 1].mean(axis=1) for first, last in bounds]).T
    return dates[ends].to_numpy(), np.repeat(blocks.reshape(values.shape[0], len(bounds)), 2, axis=1)


def _changepoint_figure(design: Design, changepoints: np.ndarray | None) -> ReportFigure:
    series = {}
    if changepoints is not None:
        for f, front in enumerate(design.fronts):
            mask = design.position_mask[f]
            series[front] = (design.obs_date[design.position[f][mask]], changepoints[:, f, mask])
    return _figure(
        "changepoints",
        "changepoints",
        "Changepoint posterior",
        "Posterior probability of each changepoint's date, per front (exact: the dates are summed out)",
        lambda: plot_changepoint_posterior(series),
    )


#: Posterior draws of the level drawn in the report's level figure (evenly thinned).
LEVEL_FIGURE_DRAWS = 1000


def _level_figure(outcome: FitOutcome) -> Figure:
    """The dynamic model's level per front (:func:`plot_level_posterior`), with its reported shifts."""
    return plot_level_posterior(level_series(outcome), prob=float(outcome.summary.get("interval_probability", 0.9)))


def level_series(outcome: FitOutcome) -> dict[str, tuple[np.ndarray, np.ndarray, list[DateLike]]]:
    """A dynamic fit's level per front as :func:`plot_level_posterior` takes it.

    ``front -> (period starts, daily-rate draws exp(level) (sample, period), dates of its
    reported level shifts)``, at most :data:`LEVEL_FIGURE_DRAWS` draws, evenly thinned.
    """
    design = outcome.model.design
    periods = design.periods
    level = outcome.idata.posterior["level"].stack(sample=("chain", "draw")).transpose("sample", n.FRONT, n.TIME)
    values = level.to_numpy()[:, :, : len(periods)]
    values = values[np.linspace(0, len(values) - 1, min(LEVEL_FIGURE_DRAWS, len(values))).astype(int)]
    shifts: dict[str, list[DateLike]] = {
        f["front"]: [s["mode_date"] for s in f.get("level_shifts", [])] for f in outcome.summary["fronts"]
    }
    dates = periods.to_numpy()
    return {front: (dates, np.exp(values[:, f, :]), shifts.get(front, [])) for f, front in enumerate(design.fronts)}


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

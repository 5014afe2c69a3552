r"""Figures of the weekly report: fan charts, changepoint posteriors, intervention effects.

Like :mod:`forecast.plots.checks`, every function builds a :class:`matplotlib.figure.Figure`
without pyplot, never picks a backend, never writes a file and never catches an exception: a
plot that fails raises, and the report job fails with it.

Fan chart bands are equal-tailed quantiles of the forecast draws at each date,
:math:`[q(0.25), q(0.75)]` (50%) and :math:`[q(0.05), q(0.95)]` (90%), with the median
:math:`q(0.5)` as the line; they are computed here, from draws, at the last step.

A fan chart whose largest value dwarfs the rest (one extreme day in the history) gets a
:math:`\log(1 + y)` axis with ticks at real values, named in its y label; the rule is in
:mod:`forecast.plots.scales`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from forecast.plots.dates import DateLike, date_x
from forecast.plots.scales import set_count_axis

__all__ = [
    "EffectRow",
    "InterventionMarker",
    "WindowTotal",
    "figure_png",
    "plot_changepoint_posterior",
    "plot_fan_chart",
    "plot_intervention_effects",
    "plot_level_posterior",
]

_OBSERVED_COLOUR = "black"
_WINDOW_COLOUR = "tab:purple"
_BASELINE_COLOUR = "tab:blue"
_SCENARIO_COLOUR = "tab:orange"
_INTERVENTION_COLOUR = "tab:red"
_SPAN_COLOUR = "tab:green"
_GAP_COLOUR = "#9a9a9a"


@dataclass(frozen=True)
class InterventionMarker:
    """An intervention drawn on a fan chart: a vertical line (pulse, step) or a shaded span (window)."""

    label: str
    kind: str
    start: pd.Timestamp
    end: pd.Timestamp | None = None
    shape: str = "pulse"


@dataclass(frozen=True)
class WindowTotal:
    """A total reported over ``start..end`` inclusive, drawn at its daily average ``total / days``."""

    start: pd.Timestamp
    end: pd.Timestamp
    total: float

    @property
    def days(self) -> int:
        return int((pd.Timestamp(self.end) - pd.Timestamp(self.start)).days) + 1

    @property
    def daily_average(self) -> float:
        return float(self.total) / self.days


@dataclass(frozen=True)
class EffectRow:
    """One intervention's effect on one front: rate ratio at its peak and, for pulses, half-life.

    ``rate_ratio`` and ``half_life_days`` are ``{"mean", "low", "high"}`` mappings.
    """

    front: str
    label: str
    rate_ratio: Mapping[str, float]
    half_life_days: Mapping[str, float] | None = None


def figure_png(figure: Figure, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (no metadata that changes between runs)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def _quantiles(draws: np.ndarray, n_dates: int, what: str) -> np.ndarray:
    array = np.asarray(draws, dtype=float)
    if array.ndim != 2 or array.shape[1] != n_dates or array.shape[0] == 0:
        raise ValueError(f"{what} must have shape (sample, date) with {n_dates} dates, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains non-finite values")
    return np.quantile(array, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)


def _band(ax: Axes, dates: np.ndarray, q: np.ndarray, colour: str, name: str) -> None:
    ax.fill_between(dates, q[0], q[4], color=colour, alpha=0.18, linewidth=0, label=f"{name}: 90% interval")
    ax.fill_between(dates, q[1], q[3], color=colour, alpha=0.38, linewidth=0, label=f"{name}: 50% interval")
    ax.plot(dates, q[2], color=colour, linewidth=1.6, label=f"{name}: median")


def plot_fan_chart(
    front: str,
    *,
    observed_dates: Sequence[object] | np.ndarray,
    observed_values: np.ndarray,
    forecast_dates: Sequence[object] | np.ndarray,
    forecast_draws: np.ndarray,
    windows: Sequence[WindowTotal] = (),
    interventions: Sequence[InterventionMarker] = (),
    scenario_draws: np.ndarray | None = None,
    scenario_label: str = "scenario",
    unit: str = "events per day",
    as_of: pd.Timestamp | None = None,
    gaps: Sequence[tuple[DateLike, DateLike]] = (),
) -> Figure:
    """Observed counts, interventions and the forecast fan of one front.

    Parameters
    ----------
    front : str
        Title of the chart.
    observed_dates, observed_values : arrays (obs,)
        Start date of each observed period and its value in ``unit`` (may be empty for a front
        observed only through window totals).
    forecast_dates : array (date,)
        Dates of the forecast.
    forecast_draws : array (sample, date)
        Forecast draws in ``unit``: the baseline fan (median, 50% and 90% bands).
    windows : sequence of WindowTotal
        Totals over windows, drawn as horizontal segments at their daily average.
    interventions : sequence of InterventionMarker
        Drawn as vertical lines (pulses, steps) or shaded spans (windows), labelled by kind.
    scenario_draws : array (sample, date), optional
        A second forecast under a hypothetical intervention, drawn over the baseline in
        another colour.
    scenario_label : str
        Legend name of the scenario.
    unit : str
        The y-axis label; `` (log(1 + value) axis)`` is appended when the largest value shown
        dwarfs the rest (:func:`forecast.plots.scales.needs_log1p_axis`).
    as_of : Timestamp, optional
        Drawn as a dashed line (the end of the data).
    gaps : sequence of (first day, last day)
        Declared gaps (not observed), shaded and labelled; the observed line breaks there
        rather than joining across them.

    Returns
    -------
    Figure
    """
    obs_dates = pd.to_datetime(np.asarray(observed_dates)).to_numpy()
    obs_values = np.asarray(observed_values, dtype=float)
    if obs_dates.shape != obs_values.shape:
        raise ValueError(f"observed dates {obs_dates.shape} and values {obs_values.shape} differ in length")
    dates = pd.to_datetime(np.asarray(forecast_dates)).to_numpy()
    baseline = _quantiles(forecast_draws, len(dates), "forecast_draws")
    scenario = None if scenario_draws is None else _quantiles(scenario_draws, len(dates), "scenario_draws")

    figure = Figure(figsize=(10.0, 4.2), layout="constrained")
    ax = figure.subplots()
    tops = [baseline[4].max(initial=0.0)]
    for i, (first, last) in enumerate(gaps):
        ax.axvspan(
            date_x(first),
            date_x(pd.Timestamp(last) + pd.Timedelta(days=1)),
            facecolor="none",
            edgecolor=_GAP_COLOUR,
            hatch="///",
            linewidth=0.0,
            label="not observed (declared gap)" if i == 0 else None,
        )
    if gaps and obs_values.size:  # a NaN at each gap's first day breaks the line there
        breaks = pd.to_datetime([pd.Timestamp(first) for first, _ in gaps]).to_numpy()
        order = np.argsort(np.concatenate([obs_dates, breaks]), kind="mergesort")
        obs_dates = np.concatenate([obs_dates, breaks])[order]
        obs_values = np.concatenate([obs_values, np.full(len(breaks), np.nan)])[order]
    if obs_values.size:
        ax.plot(obs_dates, obs_values, "o-", color=_OBSERVED_COLOUR, markersize=2.5, linewidth=0.6, label="observed")
        tops.append(float(np.nanmax(obs_values, initial=0.0)))
    for i, window in enumerate(windows):
        start = pd.Timestamp(window.start)
        end = pd.Timestamp(window.end) + pd.Timedelta(days=1)
        ax.hlines(
            window.daily_average,
            date_x(start),
            date_x(end),
            color=_WINDOW_COLOUR,
            linewidth=2.0,
            label="reported total, daily average over its window" if i == 0 else "_nolegend_",
        )
        tops.append(window.daily_average)
    _band(ax, dates, baseline, _BASELINE_COLOUR, "forecast")
    if scenario is not None:
        _band(ax, dates, scenario, _SCENARIO_COLOUR, scenario_label)
        tops.append(float(scenario[4].max(initial=0.0)))
    top = max(1.0, max(tops) * 1.12)
    for marker in interventions:
        start = pd.Timestamp(marker.start)
        if marker.shape == "window" and marker.end is not None:
            ax.axvspan(
                date_x(start), date_x(pd.Timestamp(marker.end) + pd.Timedelta(days=1)), color=_SPAN_COLOUR, alpha=0.12
            )
        else:
            ax.axvline(date_x(start), color=_INTERVENTION_COLOUR, linewidth=0.8, alpha=0.7, linestyle=":")
        ax.text(date_x(start), top, marker.kind, rotation=90, fontsize=6, va="top", ha="right", color="dimgray")
    if as_of is not None:
        ax.axvline(date_x(as_of), color="grey", linestyle="--", linewidth=0.8, label="end of data")
    shown = [obs_values, [window.daily_average for window in windows], baseline]
    if scenario is not None:
        shown.append(scenario)
    set_count_axis(ax, shown, label=unit, top=top)
    ax.set_title(front, loc="left")
    ax.set_xlabel("date")
    figure.legend(loc="outside lower center", fontsize="x-small", frameon=False, ncols=4)
    return figure


def _front_panels(names: Sequence[str], empty: str) -> tuple[Figure, np.ndarray]:
    """A figure of one panel per front, stacked and sharing dates; one panel saying ``empty`` without fronts."""
    panels = max(1, len(names))
    figure = Figure(figsize=(10.0, 0.8 + 1.7 * panels), layout="constrained")
    axes = figure.subplots(panels, 1, squeeze=False, sharex=True)[:, 0]
    if not names:
        axes[0].text(0.5, 0.5, empty, ha="center", va="center", transform=axes[0].transAxes)
    return figure, axes


def plot_changepoint_posterior(series: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """Posterior probability of each changepoint's date, one panel per front.

    Parameters
    ----------
    series : mapping front -> (dates, probabilities)
        ``dates`` (position,) the candidate dates (observation start dates) and
        ``probabilities`` (changepoint, position) :math:`p(\\tau_k = t \\mid y)`, each row
        summing to one.

    Returns
    -------
    Figure
        One axes per front (one saying "no changepoints" when ``series`` is empty).
    """
    names = list(series)
    figure, axes = _front_panels(names, "no changepoints in this model")
    if not names:
        return figure
    for ax, name in zip(axes, names, strict=True):
        dates, probabilities = series[name]
        times = pd.to_datetime(np.asarray(dates)).to_numpy()
        probs = np.atleast_2d(np.asarray(probabilities, dtype=float))
        if probs.shape[1] != times.shape[0]:
            raise ValueError(f"{name}: {probs.shape[1]} probabilities for {times.shape[0]} dates")
        if np.any(probs < 0) or not np.all(np.isfinite(probs)):
            raise ValueError(f"{name}: changepoint probabilities must be finite and non-negative")
        for k, row in enumerate(probs):
            ax.fill_between(times, row, step="mid", alpha=0.45, label=f"changepoint {k + 1}")
        ax.set_ylim(0.0, max(0.05, float(probs.max(initial=0.0)) * 1.1))
        ax.set_title(name, loc="left", fontsize="small")
        ax.set_ylabel("P(date)")
    axes[-1].set_xlabel("date")
    if probs.shape[0] > 1:
        axes[0].legend(loc="upper right", fontsize="x-small", frameon=False)
    return figure


def plot_level_posterior(
    series: Mapping[str, tuple[np.ndarray, np.ndarray, Sequence[DateLike]]], *, prob: float = 0.9
) -> Figure:
    """The dynamic model's level as a daily rate, one panel per front, with its dated shifts.

    Parameters
    ----------
    series : mapping front -> (dates, rates, shift_dates)
        ``dates`` (period,) the grid periods' starts; ``rates`` (sample, period) posterior draws of
        the level's daily rate, exp(level) (the rate without bursts and interventions);
        ``shift_dates`` the most probable dates of the front's reported level shifts.
    prob : float
        Probability of the band drawn around the median.

    Returns
    -------
    Figure
        One axes per front (log scale), or one saying there is nothing to show.
    """
    names = list(series)
    figure, axes = _front_panels(names, "no fronts")
    if not names:
        return figure
    tail = (1.0 - prob) / 2.0
    for ax, name in zip(axes, names, strict=True):
        dates, rates, shifts = series[name]
        times = pd.to_datetime(np.asarray(dates)).to_numpy()
        draws = np.atleast_2d(np.asarray(rates, dtype=float))
        if draws.shape[1] != times.shape[0]:
            raise ValueError(f"{name}: {draws.shape[1]} level periods for {times.shape[0]} dates")
        if not np.all(np.isfinite(draws)) or np.any(draws <= 0):
            raise ValueError(f"{name}: level rates must be finite and positive")
        low, median, high = np.quantile(draws, [tail, 0.5, 1.0 - tail], axis=0)
        ax.fill_between(times, low, high, step="post", color=_BASELINE_COLOUR, alpha=0.25, label=f"{prob:.0%} interval")
        ax.step(times, median, where="post", color=_BASELINE_COLOUR, linewidth=1.2, label="median")
        for k, shift in enumerate(shifts):
            ax.axvline(
                date_x(shift),
                color=_INTERVENTION_COLOUR,
                linestyle=":",
                linewidth=1.0,
                label="level shift (most probable date)" if k == 0 else None,
            )
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(name, loc="left", fontsize="small")
        ax.set_ylabel("level, per day")
    axes[-1].set_xlabel("date")
    axes[0].legend(loc="upper right", fontsize="x-small", frameon=False)
    return figure


def plot_intervention_effects(rows: Sequence[EffectRow], *, prob: float = 0.9) -> Figure:
    """Forest plot: each intervention's rate ratio (log scale) and, for pulses, its half-life.

    A rate ratio below 1 is a lull (the rate fell to that fraction at the effect's peak), above
    1 a surge.  Points are posterior means, lines equal-tailed ``prob`` intervals.

    Returns
    -------
    Figure
        Two axes side by side; one saying "no interventions" when ``rows`` is empty.
    """
    if not rows:
        figure = Figure(figsize=(8.0, 2.0), layout="constrained")
        ax = figure.subplots()
        ax.text(0.5, 0.5, "no interventions in this model", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return figure
    figure = Figure(figsize=(11.0, 1.2 + 0.28 * len(rows)), layout="constrained")
    ratio_ax, life_ax = figure.subplots(1, 2, sharey=True, width_ratios=[3, 2])
    positions = np.arange(len(rows))[::-1]
    labels = [f"{row.front}: {_short(row.label)}" for row in rows]
    for y, row in zip(positions, rows, strict=True):
        rr = row.rate_ratio
        if not (rr["low"] > 0 and rr["high"] > 0 and rr["mean"] > 0):
            raise ValueError(f"{row.front}/{row.label}: rate ratios must be positive, got {dict(rr)}")
        colour = _BASELINE_COLOUR if rr["high"] < 1 else _INTERVENTION_COLOUR if rr["low"] > 1 else "dimgray"
        ratio_ax.hlines(y, rr["low"], rr["high"], color=colour, linewidth=2.0)
        ratio_ax.plot(rr["mean"], y, "o", color=colour, markersize=4)
        if row.half_life_days is not None:
            hl = row.half_life_days
            life_ax.hlines(y, hl["low"], hl["high"], color="dimgray", linewidth=2.0)
            life_ax.plot(hl["mean"], y, "o", color="dimgray", markersize=4)
    ratio_ax.axvline(1.0, color="black", linewidth=0.8)
    ratio_ax.set_xscale("log")
    ratio_ax.set_yticks(positions, labels, fontsize=7)
    ratio_ax.set_xlabel(f"rate ratio at peak (mean, {prob:.0%} interval; log scale)")
    life_ax.set_xlabel(f"half-life in days (pulses; {prob:.0%} interval)")
    life_ax.set_xlim(left=0.0)
    return figure


def _short(label: str, width: int = 48) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"

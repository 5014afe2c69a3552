"""Figures for exploring data, priors and posteriors in notebooks (floor 5).

Pure functions from a panel, a model's design and draws to :class:`~matplotlib.figure.Figure`
objects; like the rest of :mod:`forecast.plots` they never choose a backend, never save files
and never catch exceptions.  Dates are on the x axis and every count axis names its unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from forecast import names as n
from forecast.checks.predictive import randomized_pit
from forecast.checks.prior_predictive import period_daily_counts
from forecast.data.interventions import InterventionTable
from forecast.data.panel import Panel
from forecast.models.design import Design
from forecast.plots.checks import plot_pit_histogram, plot_predictive_bands, plot_rootogram
from forecast.plots.dates import date_x
from forecast.plots.report import EffectRow, plot_changepoint_posterior, plot_intervention_effects
from forecast.plots.scales import set_count_axis

__all__ = [
    "effect_rows",
    "plot_changepoint_dates",
    "plot_fronts",
    "plot_intervention_summary",
    "plot_joint_effects",
    "plot_prior_predictive",
    "predictive_figures",
]

_OBSERVED_COLOUR = "black"
_WINDOW_COLOUR = "tab:purple"
_PULSE_COLOUR = "tab:red"
_SPAN_COLOUR = "tab:green"
_STEP_COLOUR = "tab:orange"
_BAND_COLOUR = "tab:blue"
DAILY_UNIT = "events per day"


def _unit(freq: str) -> str:
    return DAILY_UNIT if freq == n.FREQ_DAY else f"{DAILY_UNIT} ({freq}ly average)"


def _mark_interventions(ax: Axes, rows: pd.DataFrame) -> None:
    """Pulses and steps as vertical lines, windows as shaded spans (legend entries once per shape)."""
    seen: set[str] = set()
    for _, row in rows.iterrows():
        shape = row[n.SHAPE]
        label = None if shape in seen else f"intervention ({shape})"
        seen.add(shape)
        if shape == n.SHAPE_WINDOW:
            end = pd.Timestamp(row[n.END_DATE]) + pd.Timedelta(days=1)
            ax.axvspan(date_x(row[n.DATE]), date_x(end), color=_SPAN_COLOUR, alpha=0.15, linewidth=0, label=label)
        else:
            colour = _PULSE_COLOUR if shape == n.SHAPE_PULSE else _STEP_COLOUR
            style = "--" if shape == n.SHAPE_PULSE else "-."
            ax.axvline(row[n.DATE], color=colour, linestyle=style, linewidth=0.9, alpha=0.8, label=label)


def plot_fronts(panel: Panel, interventions: InterventionTable | None = None) -> Figure:
    """Every front's observed counts over time with the interventions that touch it.

    Period counts are drawn as daily rates (``count / exposure_days``); reported window
    totals as horizontal segments at their daily average (``total / days``) over their
    window; pulses as dashed lines, steps as dash-dotted lines, windows as shaded spans.

    Parameters
    ----------
    panel : Panel
    interventions : InterventionTable, optional

    Returns
    -------
    Figure
        One axes per front, sharing the date axis.  A front whose largest value dwarfs the
        rest (Gaza's 7 October 2023) gets a log(1 + y) axis, named in its y label
        (:func:`forecast.plots.scales.needs_log1p_axis`).
    """
    fronts = list(panel.fronts)
    figure = Figure(figsize=(11.0, 0.8 + 1.9 * len(fronts)), layout="constrained")
    axes = figure.subplots(max(1, len(fronts)), 1, squeeze=False, sharex=True)[:, 0]
    frame = interventions.frame if interventions is not None else None
    for ax, front in zip(axes, fronts, strict=False):
        shown: list[np.ndarray | float] = []
        period = panel.period_obs[panel.period_obs[n.FRONT] == front]
        if len(period):
            values = period[n.COUNT].to_numpy(float) / period[n.EXPOSURE_DAYS].to_numpy(float)
            ax.plot(period[n.DATE], values, "-", color=_OBSERVED_COLOUR, linewidth=0.7, label="observed")
            shown.append(values)
        windows = panel.window_obs[panel.window_obs[n.FRONT] == front]
        for i, (_, row) in enumerate(windows.iterrows()):
            end = pd.Timestamp(row[n.END_DATE]) + pd.Timedelta(days=1)
            days = (end - pd.Timestamp(row[n.DATE])).days
            shown.append(float(row[n.COUNT]) / days)
            ax.hlines(
                float(row[n.COUNT]) / days,
                row[n.DATE],
                end,
                color=_WINDOW_COLOUR,
                linewidth=2.0,
                label="reported total / days in its window" if i == 0 else None,
            )
        if frame is not None:
            touches = frame[[not targets or front in targets for targets in frame[n.FRONT]]]
            inside = touches[
                (touches[n.DATE] <= panel.end) & (touches[n.END_DATE].fillna(touches[n.DATE]) >= panel.start)
            ]
            _mark_interventions(ax, inside)
        ax.set_title(front, loc="left", fontsize="small")
        top = max([1.0, *(float(np.max(value)) for value in shown)]) * 1.08
        set_count_axis(ax, shown, label=_unit(panel.freq), top=top)
        ax.yaxis.label.set_fontsize("x-small")
        ax.legend(loc="upper right", fontsize="xx-small", frameon=False)
    axes[-1].set_xlabel("date")
    axes[-1].set_xlim(panel.start, panel.end + pd.Timedelta(days=1))
    return figure


def plot_prior_predictive(design: Design, replicated: np.ndarray, *, prob: float = 0.9) -> Figure:
    """Observed daily counts against the prior predictive interval of each period, per front.

    Parameters
    ----------
    design : Design
    replicated : array (chain, draw, obs)
        Prior (or posterior) predictive counts in the order of ``design.y``.
    prob : float
        Width of the central interval drawn.

    Returns
    -------
    Figure
        One axes per front with period observations; symmetric-log y axis (the prior spans
        orders of magnitude), counts per day.
    """
    flat, observed = period_daily_counts(design, replicated)
    dates = design.obs_date[design.period_obs]
    fronts = design.obs_front[design.period_obs]
    present = [f for f in range(len(design.fronts)) if np.any(fronts == f)]
    figure = Figure(figsize=(11.0, 0.8 + 1.9 * max(1, len(present))), layout="constrained")
    axes = figure.subplots(max(1, len(present)), 1, squeeze=False, sharex=True)[:, 0]
    tail = (1 - prob) / 2
    for ax, f in zip(axes, present, strict=False):
        mask = fronts == f
        low, mid, high = np.quantile(flat[:, mask], [tail, 0.5, 1 - tail], axis=0)
        ax.fill_between(
            dates[mask], low, high, color=_BAND_COLOUR, alpha=0.25, linewidth=0, label=f"{prob:.0%} interval"
        )
        ax.plot(dates[mask], mid, color=_BAND_COLOUR, linewidth=1.0, label="median")
        ax.plot(dates[mask], observed[mask], ".", color=_OBSERVED_COLOUR, markersize=2.5, label="observed")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_title(design.fronts[f], loc="left", fontsize="small")
        ax.set_ylabel(DAILY_UNIT, fontsize="x-small")
        ax.legend(loc="upper right", fontsize="xx-small", frameon=False)
    axes[-1].set_xlabel("date")
    return figure


def plot_changepoint_dates(design: Design, probabilities: np.ndarray) -> Figure:
    """The exact posterior of each changepoint's date, one panel per front.

    Parameters
    ----------
    design : Design
    probabilities : array (changepoint, front, position)
        From :func:`forecast.models.model.changepoint_dates_posterior`.
    """
    probabilities = np.asarray(probabilities)
    series = {}
    for f, front in enumerate(design.fronts):
        mask = design.position_mask[f]
        series[front] = (design.obs_date[design.position[f][mask]], probabilities[:, f, mask])
    return plot_changepoint_posterior(series)


def effect_rows(summary: Mapping[str, Any]) -> list[EffectRow]:
    """One :class:`EffectRow` per (front, intervention) of a fit summary (:func:`forecast.models.summary.summarise`)."""
    return [
        EffectRow(front["front"], item["label"], item["rate_ratio"], item.get("half_life_days"))
        for front in summary["fronts"]
        for item in front["interventions"]
    ]


def plot_intervention_summary(summary: Mapping[str, Any]) -> Figure:
    """Forest plot of every intervention's rate ratio at its peak and pulse half-life."""
    return plot_intervention_effects(effect_rows(summary), prob=float(summary["interval_probability"]))


def plot_joint_effects(posterior: xr.Dataset, front: str, first: str, second: str) -> Figure:
    """Joint posterior of two interventions' peak rate ratios on one front (log-log scatter).

    The quadrants split at 1: bottom left means both lowered the rate.  A diagonal cloud
    (strong negative correlation of the log effects) says the data only determine their
    combination, :math:`\\exp(e_1 + e_2)`, shown in the right panel.

    Parameters
    ----------
    posterior : xarray.Dataset
        With ``effect`` (chain, draw, front, intervention).
    front, first, second : str
        The front and the two intervention labels.
    """
    effect = posterior["effect"].sel({n.FRONT: front})
    a = effect.sel({n.INTERVENTION: first}).to_numpy().ravel()
    b = effect.sel({n.INTERVENTION: second}).to_numpy().ravel()
    correlation = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
    figure = Figure(figsize=(10.0, 4.2), layout="constrained")
    joint_ax, sum_ax = figure.subplots(1, 2, width_ratios=[3, 2])
    joint_ax.scatter(np.exp(a), np.exp(b), s=4, alpha=0.35, color=_BAND_COLOUR)
    joint_ax.axvline(1.0, color="black", linewidth=0.8)
    joint_ax.axhline(1.0, color="black", linewidth=0.8)
    joint_ax.set_xscale("log")
    joint_ax.set_yscale("log")
    joint_ax.set_xlabel(f"rate ratio at peak: {first[:50]}")
    joint_ax.set_ylabel(f"rate ratio at peak: {second[:40]}")
    joint_ax.set_title(f"{front}: correlation of log effects {correlation:.2f}", loc="left", fontsize="small")
    combined = np.exp(a + b)
    bins = np.geomspace(combined.min(), combined.max(), 40) if combined.max() > combined.min() else 10
    sum_ax.hist(combined, bins=bins, color=_BAND_COLOUR, alpha=0.8)
    sum_ax.axvline(1.0, color="black", linewidth=0.8)
    sum_ax.set_xscale("log")
    sum_ax.set_xlabel("combined rate ratio exp(e1 + e2)")
    sum_ax.set_ylabel("posterior draws")
    sum_ax.set_title(f"P(combined < 1) = {np.mean(a + b < 0):.2f}", loc="left", fontsize="small")
    return figure


def predictive_figures(design: Design, replicated: np.ndarray, *, random_seed: int) -> dict[str, Figure]:
    """Predictive bands per front, randomised-PIT histogram and hanging rootogram of a fit.

    The same three figures as ``forecast check`` writes: window totals are drawn apart from
    the period bands and left out of the rootogram (their scale differs).

    Parameters
    ----------
    design : Design
    replicated : array (chain, draw, obs)
        Posterior predictive counts in the order of ``design.y``.
    random_seed : int
        Seeds the randomised PIT.
    """
    groups = [design.fronts[f] for f in design.obs_front]
    window = np.zeros(design.n_obs, dtype=bool)
    window[design.window_obs] = True
    return {
        "predictive_bands": plot_predictive_bands(design.obs_date, design.y, replicated, groups, window=window),
        "pit_histogram": plot_pit_histogram(randomized_pit(design.y, replicated, random_seed)),
        "rootogram": plot_rootogram(design.y[~window], replicated[..., ~window]),
    }

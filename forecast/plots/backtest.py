"""Figures of a backtest: PIT histograms, reliability diagram and CRPS by horizon.

Like :mod:`forecast.plots.checks`, the functions build :class:`~matplotlib.figure.Figure`
objects without pyplot and neither write files nor catch exceptions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from forecast import names as n

__all__ = ["plot_crps_by_horizon", "plot_pit_histograms", "plot_reliability_diagram"]


def plot_pit_histograms(scores: pd.DataFrame, methods: list[str], *, bins: int = 10) -> Figure:
    """One randomised-PIT histogram per method (flat when calibrated; the dashed line is uniform)."""
    fig = Figure(figsize=(3.0 * max(1, len(methods)), 2.8), layout="constrained")
    axes = fig.subplots(1, max(1, len(methods)), squeeze=False)[0]
    for ax, method in zip(axes, methods, strict=False):
        pit = scores.loc[scores["method"] == method, "pit"].to_numpy(dtype=float)
        pit = pit[np.isfinite(pit)]
        if pit.size:
            ax.hist(pit, bins=bins, range=(0, 1), density=True, color="tab:blue", alpha=0.8)
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1)
        ax.set_title(f"{method} (n={pit.size})", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_xlabel("PIT")
    axes[0].set_ylabel("density")
    return fig


def plot_reliability_diagram(reliability: pd.DataFrame) -> Figure:
    """Observed frequency against mean forecast probability per bin, one line per method."""
    fig = Figure(figsize=(4.5, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1, label="perfect")
    for method, rows in reliability.groupby("method", sort=False):
        used = rows[rows["n"] > 0]
        ax.plot(used["mean_forecast"], used["observed_frequency"], marker="o", label=f"{method}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("forecast probability of exceeding the threshold")
    ax.set_ylabel("observed frequency")
    ax.legend(fontsize=8)
    return fig


def plot_crps_by_horizon(scores: pd.DataFrame, methods: list[str]) -> Figure:
    """Mean CRPS of period targets at each horizon step, one line per method."""
    fig = Figure(figsize=(6.0, 3.6), layout="constrained")
    ax = fig.subplots()
    periods = scores[scores["kind"] == n.OBS_PERIOD]
    for method in methods:
        by_step = periods[periods["method"] == method].groupby("horizon")["crps"].mean()
        ax.plot(by_step.index, by_step.to_numpy(), marker=".", label=method)
    ax.set_xlabel("horizon (periods after the origin)")
    ax.set_ylabel("mean CRPS")
    ax.legend(fontsize=8)
    return fig

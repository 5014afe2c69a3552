"""Figures of posterior predictive checks: predictive bands, PIT histogram, hanging rootogram.

The functions build :class:`matplotlib.figure.Figure` objects directly, without pyplot: they
work under whatever backend the caller chose (``Agg`` in jobs and tests), are not registered
with pyplot (so a batch job never accumulates open figures) and are saved with
``fig.savefig(path)``.  In a notebook, show one with ``display(fig)``.  Nothing here picks a
backend, writes a file or catches an exception.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

from forecast.checks.predictive import central_intervals
from forecast.plots.scales import set_count_axis

__all__ = ["COUNT_LABEL", "plot_pit_histogram", "plot_predictive_bands", "plot_rootogram"]

COUNT_LABEL = "count per period"
_BAND_COLOUR = "tab:blue"
_OBSERVED_COLOUR = "black"
_EXPECTED_COLOUR = "tab:red"
#: Predictive bands drawn, widest first: (interval probability, shading alpha).
_BANDS = ((0.9, 0.2), (0.5, 0.45))


def _draws(replicated: np.ndarray, n_obs: int) -> np.ndarray:
    array = np.asarray(replicated)
    if array.ndim < 2 or array.shape[-1] != n_obs:
        raise ValueError(
            f"replicated must have shape (chain, draw, obs) or (sample, obs) with obs = {n_obs}, got {array.shape}"
        )
    draws = array.reshape(int(np.prod(array.shape[:-1])), n_obs)
    if draws.shape[0] == 0 and n_obs > 0:
        raise ValueError("replicated has no draws")
    return draws


def _empty_panel(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)


def _upper_limit(*arrays: np.ndarray) -> float:
    finite = [float(np.max(array)) for array in arrays if np.size(array)]
    top = max(finite, default=0.0)
    return max(1.0, top * 1.08)


def plot_predictive_bands(
    dates: Sequence[object] | np.ndarray | pd.Index,
    observed: np.ndarray,
    replicated: np.ndarray,
    groups: Sequence[str],
    *,
    title: str | None = None,
    window: np.ndarray | None = None,
) -> Figure:
    """Plot observed counts over time with their 50% and 90% posterior predictive bands.

    One panel per group (in order of first appearance).  The bands are the central
    intervals of the replicated draws of each observation,
    :math:`[q_i(0.25), q_i(0.75)]` and :math:`[q_i(0.05), q_i(0.95)]`
    (:func:`forecast.checks.predictive.central_intervals`), shaded; observed counts are points.

    Window totals (counts over a multi-period window) are plotted at their *start* date: pass
    their start dates in ``dates``.  Without ``window`` every observation is treated as a
    count per period and joins the bands; with ``window`` the totals are drawn as separate
    diamonds, each with its 90% predictive interval as a vertical line, kept out of the
    bands (their scale differs from a period's).

    Parameters
    ----------
    dates : sequence of dates (obs,)
        Start date of each observation's period (anything ``pandas.to_datetime`` reads).
    observed : array (obs,)
        Observed counts.
    replicated : array (chain, draw, obs) or (sample, obs)
        Posterior predictive draws of the same observations.
    groups : sequence of str (obs,)
        Group (e.g. front) of each observation; one panel each.
    title : str, optional
        Figure title.
    window : bool array (obs,), optional
        True for window totals.

    Returns
    -------
    Figure
        With one axes per group (one axes saying "no observations" when there are none).  A
        panel whose largest value dwarfs the rest gets a log(1 + y) axis, named in its y label
        (:func:`forecast.plots.scales.needs_log1p_axis`).
    """
    y = np.asarray(observed, dtype=float)
    if y.ndim != 1:
        raise ValueError(f"observed must be one-dimensional (obs,), got shape {y.shape}")
    n_obs = y.shape[0]
    draws = _draws(replicated, n_obs)
    times = pd.to_datetime(np.asarray(dates)).to_numpy()
    if times.shape != (n_obs,):
        raise ValueError(f"dates must have one entry per observation ({n_obs}), got {times.shape}")
    labels = np.asarray([str(group) for group in groups], dtype=object)
    if labels.shape != (n_obs,):
        raise ValueError(f"groups must have one entry per observation ({n_obs}), got {labels.shape}")
    is_window = np.zeros(n_obs, dtype=bool) if window is None else np.asarray(window, dtype=bool)
    if is_window.shape != (n_obs,):
        raise ValueError(f"window must have one entry per observation ({n_obs}), got {is_window.shape}")

    names = list(dict.fromkeys(labels.tolist()))
    panels = max(1, len(names))
    figure = Figure(figsize=(10.0, 1.0 + 2.6 * panels), layout="constrained")
    axes = figure.subplots(panels, 1, squeeze=False, sharex=bool(names))[:, 0]
    if title:
        figure.suptitle(title)
    if not names:
        _empty_panel(axes[0], "no observations")
        axes[0].set_xlabel("date")
        axes[0].set_ylabel(COUNT_LABEL)
        return figure

    intervals = {prob: central_intervals(draws, prob) for prob, _ in _BANDS}
    lower_90, upper_90 = intervals[0.9]
    for ax, name in zip(axes, names, strict=True):
        members = np.flatnonzero(labels == name)
        members = members[np.argsort(times[members], kind="stable")]
        period = members[~is_window[members]]
        totals = members[is_window[members]]
        if period.size:
            for prob, alpha in _BANDS:
                lower, upper = intervals[prob]
                ax.fill_between(
                    times[period],
                    lower[period],
                    upper[period],
                    color=_BAND_COLOUR,
                    alpha=alpha,
                    linewidth=0,
                    label=f"{prob:.0%} predictive interval",
                )
            ax.plot(times[period], y[period], "o", color=_OBSERVED_COLOUR, markersize=3, label="observed")
        if totals.size:
            ax.vlines(
                times[totals],
                lower_90[totals],
                upper_90[totals],
                color=_EXPECTED_COLOUR,
                linewidth=1.5,
                label="90% interval of a window total",
            )
            ax.plot(
                times[totals],
                y[totals],
                "D",
                color=_EXPECTED_COLOUR,
                markersize=4,
                label="window total (at its start date)",
            )
        shown = [y[members], upper_90[members], *(intervals[prob][0][members] for prob, _ in _BANDS)]
        set_count_axis(ax, shown, label=COUNT_LABEL, top=_upper_limit(y[members], upper_90[members]))
        ax.set_title(name, loc="left")
        ax.set_xlabel("date (start of period)")
    handles: dict[str, Artist] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        figure.legend(
            list(handles.values()),
            list(handles.keys()),
            loc="outside lower center",
            ncols=min(3, len(handles)),
            fontsize="small",
            frameon=False,
        )
    return figure


def plot_pit_histogram(pit_values: np.ndarray, *, bins: int = 10) -> Figure:
    """Plot a histogram of (randomised) PIT values against the uniform distribution.

    Under a correct predictive distribution each of the ``bins`` equal bins holds
    :math:`N_b \\sim \\mathrm{Binomial}(n, 1/\\text{bins})` values: the reference line is its
    mean :math:`n/\\text{bins}` and the shaded band its central 95% interval (pointwise, per
    bin: about one bin in twenty falls outside by chance).  A U shape means the predictive
    distribution is too narrow, a hump too wide, a slope biased.

    Parameters
    ----------
    pit_values : array (obs,)
        Values in [0, 1], e.g. from :func:`forecast.checks.predictive.randomized_pit`.
    bins : int, default 10

    Returns
    -------
    Figure
        With one axes.
    """
    values = np.asarray(pit_values, dtype=float).ravel()
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if not np.all(np.isfinite(values)) or np.any((values < 0) | (values > 1)):
        raise ValueError("PIT values must be finite and in [0, 1]")
    n = values.size
    counts, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    figure = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = figure.subplots()
    ax.bar(
        edges[:-1],
        counts,
        width=np.diff(edges),
        align="edge",
        color=_BAND_COLOUR,
        alpha=0.7,
        edgecolor="white",
        label="PIT values",
    )
    expected = n / bins
    low, high = stats.binom.ppf([0.025, 0.975], n, 1.0 / bins)
    ax.axhspan(low, high, color="grey", alpha=0.25, label="95% band under uniformity")
    ax.axhline(expected, color=_EXPECTED_COLOUR, linewidth=1.5, label="uniform")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, max(1.0, float(counts.max(initial=0)), float(high)) * 1.1)
    ax.set_xlabel("PIT value")
    ax.set_ylabel("number of observations")
    ax.set_title(f"PIT histogram ({n} observations)")
    if n == 0:
        _empty_panel(ax, "no PIT values")
    ax.legend(loc="upper right", fontsize="small", frameon=False)
    return figure


def _as_counts(values: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.size and (
        not np.all(np.isfinite(array.astype(float))) or np.any(array < 0) or np.any(array != np.floor(array))
    ):
        raise ValueError(f"{what} must be non-negative whole counts")
    return array.astype(np.int64)


def plot_rootogram(observed: np.ndarray, replicated: np.ndarray, *, max_count: int | None = None) -> Figure:
    """Plot a hanging rootogram of observed against expected count frequencies.

    For each count :math:`k = 0..K`, the expected frequency is
    :math:`E_k = \\sum_i \\hat P(Y_i = k)`, with :math:`\\hat P` the share of replicated draws
    of observation :math:`i` equal to :math:`k`, and the observed frequency
    :math:`O_k = \\#\\{i : y_i = k\\}`.  The curve is :math:`\\sqrt{E_k}`; a bar of height
    :math:`\\sqrt{O_k}` hangs from it, so its bottom :math:`\\sqrt{E_k} - \\sqrt{O_k}` sits at
    0 when the model is right, below 0 where a count is more frequent than expected and
    above 0 where less.  Counts above :math:`K` are lumped into the last bar (":math:`K` or
    more").

    Parameters
    ----------
    observed : array (obs,)
        Observed counts.
    replicated : array (chain, draw, obs) or (sample, obs)
        Replicated counts of the same observations.
    max_count : int, optional
        :math:`K`; by default the larger of the largest observed count and the 99.5%
        quantile of the replicated counts.

    Returns
    -------
    Figure
        With one axes.
    """
    y = _as_counts(np.asarray(observed).ravel(), "observed")
    n_obs = y.shape[0]
    draws = _as_counts(_draws(replicated, n_obs), "replicated")
    if max_count is not None and max_count < 0:
        raise ValueError(f"max_count must be non-negative, got {max_count}")
    figure = Figure(figsize=(7.0, 4.0), layout="constrained")
    ax = figure.subplots()
    ax.set_xlabel(COUNT_LABEL)
    ax.set_ylabel("sqrt(frequency)")
    ax.set_title(f"Hanging rootogram ({n_obs} observations)")
    if n_obs == 0:
        _empty_panel(ax, "no observations")
        return figure

    if max_count is None:
        top = int(np.quantile(draws, 0.995, method="inverted_cdf")) if draws.size else 0
        max_count = max(int(y.max()), top)
    size = max_count + 1
    observed_freq = np.bincount(np.minimum(y, max_count), minlength=size)[:size].astype(float)
    expected_freq = np.bincount(np.minimum(draws, max_count).ravel(), minlength=size)[:size] / draws.shape[0]
    lumped = bool(np.any(y > max_count) or np.any(draws > max_count))

    counts = np.arange(size)
    root_expected = np.sqrt(expected_freq)
    root_observed = np.sqrt(observed_freq)
    ax.bar(
        counts,
        root_observed,
        bottom=root_expected - root_observed,
        width=0.8,
        color=_BAND_COLOUR,
        alpha=0.6,
        edgecolor="white",
        label="observed (hanging)",
    )
    ax.plot(counts, root_expected, "o-", color=_EXPECTED_COLOUR, markersize=3, linewidth=1.2, label="expected")
    ax.axhline(0.0, color="black", linewidth=0.8)
    if lumped:
        ax.set_xlabel(f"{COUNT_LABEL} (last bar: {max_count} or more)")
    ax.legend(loc="upper right", fontsize="small", frameon=False)
    return figure

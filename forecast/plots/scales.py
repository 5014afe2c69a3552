r"""Count axes that stay readable when one value dwarfs the rest.

A front's history can hold one day far above every other (Gaza's 7 October 2023: 1,640
alerts against tens on other days).  On a linear axis that day sets the scale and the rest of
the history, and the forecast fan, are pressed flat against zero.  Such axes switch to a
:math:`\log(1 + y)` scale, which keeps zero plottable (:math:`\log 1 = 0`), with ticks at
real values :math:`0, 1, 3, 10, 30, 100, \dots` and a y label that says so.

The rule
    Pool every finite value the axes shows (observations, window averages, the edges and
    median of predictive or forecast bands) into :math:`v`.  The axes get the
    :math:`\log(1 + y)` scale when

    .. math:: \max v > 10 \cdot \max\bigl(q_{0.95}(v),\, 1\bigr),

    i.e. when the largest value is more than ten times the bulk (the 95th percentile), and
    the bulk is taken to be at least 1 so that a mostly-zero series with a few small counts
    stays linear.  Otherwise the axes stay linear.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

__all__ = ["BULK_QUANTILE", "LOG1P_AXIS_NOTE", "SPIKE_RATIO", "needs_log1p_axis", "set_count_axis"]

#: The largest value must exceed this multiple of the bulk for the log(1 + y) axis.
SPIKE_RATIO = 10.0
#: The bulk of the values: this quantile of them (never below 1).
BULK_QUANTILE = 0.95
#: Appended to the y label of a transformed axis.
LOG1P_AXIS_NOTE = "log(1 + value) axis"


def _pooled(values: Iterable[object]) -> np.ndarray:
    parts = [np.asarray(part, dtype=float).ravel() for part in values]
    pooled = np.concatenate(parts) if parts else np.zeros(0)
    return pooled[np.isfinite(pooled)]


def needs_log1p_axis(values: Iterable[object]) -> bool:
    """Whether axes showing ``values`` (arrays of any shape, pooled) need the log(1 + y) scale.

    True when :math:`\\max v > 10 \\cdot \\max(q_{0.95}(v), 1)` over the finite values
    (see the module docstring); False when there are none.
    """
    pooled = _pooled(values)
    if pooled.size == 0:
        return False
    bulk = max(float(np.quantile(pooled, BULK_QUANTILE)), 1.0)
    return bool(pooled.max() > SPIKE_RATIO * bulk)


def _log1p_ticks(top: float) -> list[float]:
    """0, then 1, 3, 10, 30, ... up to ``top``: roughly even steps on a log(1 + y) axis."""
    ticks = [0.0]
    decade = 1.0
    while decade <= top:
        ticks += [tick for tick in (decade, 3.0 * decade) if tick <= top]
        decade *= 10.0
    return ticks


def _forward(y: np.ndarray) -> np.ndarray:
    # Clipped below 0 (counts are never negative) so that margins below zero stay finite.
    return np.log1p(np.maximum(y, 0.0))


def _inverse(y: np.ndarray) -> np.ndarray:
    return np.expm1(y)


def set_count_axis(ax: Axes, values: Iterable[object], *, label: str, top: float) -> bool:
    """Give ``ax`` a y axis from 0 to ``top`` for non-negative ``values``, log(1 + y) if they need it.

    Parameters
    ----------
    ax : Axes
    values : iterable of arrays
        Everything the axes shows, pooled for :func:`needs_log1p_axis`.
    label : str
        The y label (the unit); on a transformed axis `` (log(1 + value) axis)`` is appended.
    top : float
        Upper limit of the axis, in the values' unit.

    Returns
    -------
    bool
        True when the axis is log(1 + y).
    """
    transformed = needs_log1p_axis(values)
    if transformed:
        ax.set_yscale("function", functions=(_forward, _inverse))
        ax.yaxis.set_major_locator(FixedLocator(_log1p_ticks(top)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_ylabel(f"{label} ({LOG1P_AXIS_NOTE})")
    else:
        ax.set_ylabel(label)
    ax.set_ylim(0.0, top)
    return transformed

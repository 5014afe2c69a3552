r"""Intervention shapes in numpy: the single definition that the simulator uses.

The models mirror these functions in PyTensor and are tested against them.  Time ``t`` is
measured in days (any real numbers; the simulator uses day indices ``0, 1, ...`` from the
first day of the panel), and every shape has value 1 at full strength:

.. math::

    \operatorname{pulse}(t;\, s, h) &= \begin{cases}
        0 & t < s \\
        2^{-(t - s)/h} & t \ge s
    \end{cases}
    \qquad (h > 0 \text{ the half-life in days: value 1 on the start day, } \tfrac12
    \text{ after } h \text{ days}) \\
    \operatorname{window}(t;\, s, e) &= \mathbb{1}[s \le t \le e]
    \qquad (\text{both ends inclusive}) \\
    \operatorname{step}(t;\, s) &= \mathbb{1}[t \ge s]

An intervention with effect :math:`\beta` (a log rate-ratio) multiplies the daily rate by
:math:`\exp(\beta \cdot \operatorname{shape}(t))`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from forecast import names as n


def pulse(t: ArrayLike, start: float, half_life: float) -> np.ndarray:
    """A decaying pulse: 0 before ``start``, then ``2 ** (-(t - start) / half_life)``.

    Parameters
    ----------
    t : array_like of float
        Days.
    start : float
        Day the pulse begins (value 1 on that day).
    half_life : float
        Days for the pulse to halve; must be positive and finite.

    Returns
    -------
    numpy.ndarray of float
        Same shape as ``t``, values in ``[0, 1]``.

    Raises
    ------
    ValueError
        If ``half_life`` is not a positive finite number.
    """
    _check_half_life(half_life)
    days = np.asarray(t, dtype=float)
    elapsed = np.maximum(days - start, 0.0)  # clipped so that days before start cannot overflow
    return np.where(days >= start, np.exp2(-elapsed / half_life), 0.0)


def window(t: ArrayLike, start: float, end: float) -> np.ndarray:
    """An indicator of ``start <= t <= end`` (both ends inclusive).

    Raises
    ------
    ValueError
        If ``end`` is before ``start``.
    """
    if end < start:
        raise ValueError(f"a window shape needs end >= start; got start={start}, end={end}")
    days = np.asarray(t, dtype=float)
    return ((days >= start) & (days <= end)).astype(float)


def step(t: ArrayLike, start: float) -> np.ndarray:
    """An indicator of ``t >= start`` (a lasting change from ``start`` on)."""
    days = np.asarray(t, dtype=float)
    return (days >= start).astype(float)


def shape_values(
    shape: str,
    t: ArrayLike,
    start: float,
    end: float | None = None,
    half_life: float | None = None,
) -> np.ndarray:
    """Values of the named shape at days ``t``.

    Parameters
    ----------
    shape : {"pulse", "window", "step"}
        One of :data:`forecast.names.SHAPES`.
    t : array_like of float
        Days.
    start : float
        First day of the intervention.
    end : float, optional
        Last day (inclusive); required for ``window``, ignored by the other shapes.
    half_life : float, optional
        Days; required (and positive) for ``pulse``, ignored by the other shapes.

    Returns
    -------
    numpy.ndarray of float
        Same shape as ``t``.

    Raises
    ------
    ValueError
        For an unknown shape (the message lists the allowed ones), a pulse without a positive
        ``half_life``, or a window without ``end`` or with ``end`` before ``start``.
    """
    if shape == n.SHAPE_PULSE:
        if half_life is None:
            raise ValueError("a pulse shape needs half_life (days, > 0)")
        return pulse(t, start, half_life)
    if shape == n.SHAPE_WINDOW:
        if end is None:
            raise ValueError("a window shape needs end (the last day, inclusive)")
        return window(t, start, end)
    if shape == n.SHAPE_STEP:
        return step(t, start)
    raise ValueError(f"unknown shape {shape!r}; allowed: {list(n.SHAPES)}")


def _check_half_life(half_life: float) -> None:
    if isinstance(half_life, bool) or not isinstance(half_life, (int, float, np.integer, np.floating)):
        raise ValueError(f"half_life must be a positive number of days; got {half_life!r}")
    if not (math.isfinite(half_life) and half_life > 0):
        raise ValueError(f"half_life must be a positive number of days; got {half_life!r}")

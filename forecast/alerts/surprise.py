"""Surprise of new counts against a fit's posterior predictive draws.

For a count ``y`` and draws ``Y_1..Y_S`` of the posterior predictive of that day's count,

* ``p_up = P(Y >= y)``: small when ``y`` is surprisingly high;
* ``p_down = P(Y <= y)``: small when ``y`` is surprisingly low (a lull).

Both are Monte Carlo proportions over the draws, so their resolution is ``1 / S`` and either
can be 0 (no draw as extreme).  Both include ``Y = y``, so ``p_up + p_down >= 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PredictiveDraws", "tail_probabilities"]


def tail_probabilities(draws: np.ndarray, counts: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """``P(Y >= y)`` and ``P(Y <= y)`` from draws.

    Parameters
    ----------
    draws : array, shape (S, ...)
        Posterior predictive draws; the first axis is the draw.
    counts : array broadcastable to ``draws.shape[1:]``
        The observed counts.

    Returns
    -------
    p_up, p_down : arrays of shape ``draws.shape[1:]``
    """
    sample = np.asarray(draws)
    if sample.ndim == 0 or sample.shape[0] == 0:
        raise ValueError("need at least one draw (the first axis of draws)")
    observed = np.asarray(counts)
    p_up = np.mean(sample >= observed, axis=0)
    p_down = np.mean(sample <= observed, axis=0)
    return p_up, p_down


@dataclass(frozen=True)
class PredictiveDraws:
    """Posterior predictive daily counts saved beside a fit (``forecast_draws.npz``).

    Attributes
    ----------
    fronts : tuple of str
        ``F`` front names.
    dates : tuple of str
        ``H`` ISO dates after the fit's ``as_of``.
    draws : numpy.ndarray of int64, shape (S, F, H)
    as_of : str
        The fit's ``as_of`` date.
    source : str
        Where the draws were read from.
    """

    fronts: tuple[str, ...]
    dates: tuple[str, ...]
    draws: np.ndarray
    as_of: str
    source: str = "<memory>"

    def __post_init__(self) -> None:
        shape = np.shape(self.draws)
        if len(shape) != 3 or shape[1] != len(self.fronts) or shape[2] != len(self.dates) or shape[0] == 0:
            raise ValueError(
                f"{self.source}: draws must have shape (draw, front={len(self.fronts)}, date={len(self.dates)}) "
                f"with at least one draw, got {shape}"
            )

    def tails(self, front: str, date: str, count: float) -> tuple[float, float] | None:
        """``(p_up, p_down)`` for ``count`` on ``front`` and ``date``; None outside the draws."""
        try:
            f = self.fronts.index(front)
            h = self.dates.index(date)
        except ValueError:
            return None
        p_up, p_down = tail_probabilities(self.draws[:, f, h], count)
        return float(p_up), float(p_down)

    def median(self, front: str, date: str) -> float | None:
        """The predictive median for ``front`` on ``date`` (None outside the draws)."""
        try:
            f = self.fronts.index(front)
            h = self.dates.index(date)
        except ValueError:
            return None
        return float(np.median(self.draws[:, f, h]))

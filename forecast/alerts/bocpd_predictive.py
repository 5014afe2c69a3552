"""Log predictive probabilities of the daily changepoint detector (:mod:`forecast.alerts.bocpd`).

The predictive probabilities of a batch of observations depend on the data only, so they are
computed for the whole batch at once; log-gamma values come from a table indexed by whole
numbers, since counts are whole.
"""

from __future__ import annotations

import math

import numpy as np

from forecast.alerts.detector_config import LIKELIHOOD_POISSON, DetectorConfig

__all__ = [
    "LOWEST_RELATIVE_LOG_WEIGHT",
    "Predictive",
    "predictive_for",
    "relative_log_pred",
    "window_sums",
]

# --------------------------------------------------------------------------------------------
# Log-gamma at (offset + whole number), from a table
# --------------------------------------------------------------------------------------------

_TABLE_LIMIT = 1 << 22  # entries (32 MiB); larger arguments use Stirling's series
_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


class _LogGammaTable:
    """``lgamma(offset + m)`` for whole ``m >= 0``, from a lazily grown table."""

    def __init__(self, offset: float):
        self.offset = float(offset)
        self.values = np.empty(0)

    def _grow(self, size: int) -> None:
        size = min(_TABLE_LIMIT, max(1024, 1 << int(size - 1).bit_length()))
        start = len(self.values)
        if size <= start:
            return
        extra = np.fromiter(
            (math.lgamma(self.offset + m) for m in range(start, size)), dtype=np.float64, count=size - start
        )
        self.values = np.concatenate([self.values, extra])

    def __call__(self, m: np.ndarray, top: int) -> np.ndarray:
        """Values at ``m`` (whole numbers in ``0 .. top``)."""
        if top >= len(self.values):
            self._grow(top + 1)
        if top < len(self.values):
            return np.take(self.values, m)
        small = m < len(self.values)
        out = np.empty(m.shape)
        out[small] = self.values[m[small]]
        out[~small] = _stirling_lgamma(self.offset + m[~small].astype(np.float64))
        return out


def _stirling_lgamma(x: np.ndarray) -> np.ndarray:
    """``lgamma(x)`` for large ``x`` (here ``x >= 4e6``, where the series is exact to rounding)."""
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 / 1680.0)))
    return (x - 0.5) * np.log(x) - x + _HALF_LOG_TWO_PI + series


class Predictive:
    """Log predictive probabilities of a configuration, up to terms common to every run length.

    With ``M[t, r]`` the sum of the last ``r`` counts before step ``t`` (and ``M[t + 1, r + 1]``
    that sum plus ``y_t``), both likelihoods need log-gamma only at ``offset + M`` (whole
    numbers), so each cell of ``M`` is looked up once and used for two steps.
    """

    def __init__(self, config: DetectorConfig):
        self.config = config
        size = config.max_run_length + 1
        r = np.arange(size, dtype=np.float64)
        if config.likelihood == LIKELIHOOD_POISSON:
            beta = config.rate_beta + r
            self.log_ratio = np.log(beta / (beta + 1.0))
            self.log_beta1 = np.log(beta + 1.0)
            self.constant = config.rate_alpha * self.log_ratio
            self.alpha_table = _LogGammaTable(config.rate_alpha)
        else:
            phi = config.dispersion
            a0 = config.p_alpha
            self.constant = np.array([math.lgamma(a0 + phi * (k + 1)) - math.lgamma(a0 + phi * k) for k in range(size)])
            self.phi_r = (phi * np.arange(size + 1)).astype(np.int64)
            self.b_table = _LogGammaTable(config.p_beta)
            self.ab_table = _LogGammaTable(config.p_alpha + config.p_beta)

    def log_pred(self, sums: np.ndarray, counts: np.ndarray, top: int) -> np.ndarray:
        """``log pi_r(y_t)`` from ``sums`` (..., T + 1, R + 2) and ``counts`` (..., T).

        ``sums[..., t, r]`` is the sum of the last ``r`` counts before step ``t``; row ``T`` is
        after the last step; ``top`` bounds ``sums``.  Returns (..., T, R + 1).
        """
        before = sums[..., :-1, :-1]
        if self.config.likelihood == LIKELIHOOD_POISSON:
            looked_up = self.alpha_table(sums, top)
            out = looked_up[..., 1:, 1:] - looked_up[..., :-1, :-1]
            out += before * self.log_ratio
            out += self.constant
            out -= counts[..., None] * self.log_beta1
            return out
        looked_up = self.b_table(sums, top)
        mixed = self.ab_table(sums + self.phi_r, top + int(self.phi_r[-1]))
        out = looked_up[..., 1:, 1:] - looked_up[..., :-1, :-1]
        out += mixed[..., :-1, :-1]
        out -= mixed[..., 1:, 1:]
        out += self.constant
        return out


_PREDICTIVES: dict[str, Predictive] = {}


def predictive_for(config: DetectorConfig) -> Predictive:
    """The :class:`Predictive` of ``config``, made once per configuration."""
    key = config.hash()
    if key not in _PREDICTIVES:
        _PREDICTIVES[key] = Predictive(config)
    return _PREDICTIVES[key]


def window_sums(history: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, int]:
    """Sums of the last r counts before each step, for ``r = 0 .. R + 1``.

    Parameters
    ----------
    history : array (..., R + 1)
        Sums of the last ``r`` counts before the batch.
    counts : array of int (..., T)

    Returns
    -------
    sums : array of int64 (..., T + 1, R + 2)
        Row ``t``: the sums before count ``t`` (row ``T``: after the batch).  Column ``R + 1``
        of row 0 is a placeholder (never used: the predictive needs it only from row 1).
    top : int
        An upper bound of ``sums``.
    """
    max_r = history.shape[-1] - 1
    n_steps = counts.shape[-1]
    lead = history.shape[:-1]
    cumulative = np.empty((*lead, max_r + 2 + n_steps), dtype=np.int64)
    cumulative[..., 1 : max_r + 1] = -history[..., :0:-1]  # P[-j] = -history[j], j = R..1
    cumulative[..., 0] = cumulative[..., 1]
    cumulative[..., max_r + 1] = 0
    np.cumsum(counts, axis=-1, out=cumulative[..., max_r + 2 :])
    windows = np.lib.stride_tricks.sliding_window_view(cumulative, max_r + 2, axis=-1)[..., ::-1]
    top = int(cumulative.max() - cumulative.min()) if cumulative.size else 0
    return cumulative[..., max_r + 1 :, None] - windows, top


#: Predictive weights below exp(-600) relative to the best run length are raised to it: they
#: carry less than 1e-250 of the mass, and exp() of smaller numbers is slow (it underflows).
LOWEST_RELATIVE_LOG_WEIGHT = -600.0


def relative_log_pred(
    predictive: Predictive, window: np.ndarray, y: np.ndarray, top: int, log_keep: float
) -> np.ndarray:
    """``log((1 - H) pi_r(y_t))`` less its maximum over ``r`` (so at most ``log(1 - H)``)."""
    log_pred = predictive.log_pred(window, y, top)
    log_pred -= log_pred.max(axis=-1, keepdims=True)
    np.maximum(log_pred, LOWEST_RELATIVE_LOG_WEIGHT, out=log_pred)
    log_pred += log_keep
    return log_pred

r"""The changepoint detector on window totals: observations with an exposure in days.

Fronts observed only through window totals (no daily counts) run through this form of the
daily detector (:mod:`forecast.alerts.bocpd`): each window total is scored with its exposure,
by the exact predictive of the daily model summed over the window, and the hazard of a
window of :math:`w` days is :math:`1 - (1 - H)^w`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forecast.alerts.bocpd_predictive import LOWEST_RELATIVE_LOG_WEIGHT
from forecast.alerts.bocpd_state import DetectorOutput
from forecast.alerts.detector_config import LIKELIHOOD_POISSON, DetectorConfig

__all__ = ["WindowState", "update_windows", "window_hazard", "window_log_predictive"]

_WINDOW_MAGIC = b"BOCPDW"
_WINDOW_HEADER = struct.Struct("<6sqqq")


def window_log_predictive(
    config: DetectorConfig, total: np.ndarray, days: np.ndarray, count: int, window_days: int
) -> np.ndarray:
    r"""Log predictive probability of a window total, given a regime's counts and exposure so far.

    A regime that has seen ``total`` events over ``days`` days of exposure predicts the total
    :math:`y` of a window of :math:`w` days (``count``, ``window_days``):

    * ``poisson``: the daily rate has posterior :math:`\mathrm{Gamma}(a, b)` with
      :math:`a = \alpha_0 + \mathrm{total}`, :math:`b = \beta_0 + \mathrm{days}`; the window total
      is Poisson with mean :math:`\lambda w`, so its predictive is negative binomial with
      :math:`r = a` and :math:`p = b / (b + w)`:
      :math:`p(y) = \frac{\Gamma(a+y)}{\Gamma(a)\,y!} \left(\frac{b}{b+w}\right)^{a}
      \left(\frac{w}{b+w}\right)^{y}`.  Afterwards :math:`a \mathrel{+}= y`,
      :math:`b \mathrel{+}= w`.
    * ``negative_binomial``: the sum of :math:`w` independent :math:`\mathrm{NB}(\phi, p)` counts
      with the same :math:`p` is :math:`\mathrm{NB}(w\phi, p)`, so the window total is exactly
      a negative binomial with :math:`w\phi` in place of :math:`\phi`, and the predictive is
      beta-negative-binomial: :math:`p(y) = \frac{\Gamma(y + w\phi)}{\Gamma(w\phi)\,y!}
      \frac{B(a + w\phi,\, b + y)}{B(a, b)}` with :math:`a = a_0 + \phi\,\mathrm{days}`,
      :math:`b = b_0 + \mathrm{total}`.  Afterwards :math:`a \mathrel{+}= w\phi`,
      :math:`b \mathrel{+}= y`.

    Both are the exact predictives of the daily model summed over the window: a window of
    :math:`w` days updates the posterior exactly as :math:`w` daily counts with the same total
    would (the total is a sufficient statistic), and :math:`w = 1` gives the daily predictive.

    Parameters
    ----------
    config : DetectorConfig
    total, days : array of int
        Events and days of exposure of the regime so far (one entry per run length).
    count, window_days : int
        The window's total and its length in days (>= 1).
    """
    total = np.asarray(total, dtype=np.float64)
    days = np.asarray(days, dtype=np.float64)
    y = float(count)
    w = float(window_days)
    if config.likelihood == LIKELIHOOD_POISSON:
        a = config.rate_alpha + total
        b = config.rate_beta + days
        return _lgamma(a + y) - _lgamma(a) - math.lgamma(y + 1.0) + a * np.log(b / (b + w)) + y * np.log(w / (b + w))
    m = config.dispersion * w
    a = config.p_alpha + config.dispersion * days
    b = config.p_beta + total
    return math.lgamma(y + m) - math.lgamma(m) - math.lgamma(y + 1.0) + _log_beta(a + m, b + y) - _log_beta(a, b)


def _lgamma(x: np.ndarray) -> np.ndarray:
    """``lgamma`` elementwise (window series are short: a Python loop over R + 1 values is enough)."""
    flat = np.asarray(x, dtype=np.float64).ravel()
    return np.fromiter((math.lgamma(v) for v in flat), dtype=np.float64, count=flat.size).reshape(np.shape(x))


def _log_beta(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _lgamma(a) + _lgamma(b) - _lgamma(a + b)


def window_hazard(config: DetectorConfig, window_days: int) -> float:
    r"""Probability that a new regime starts during a window of ``window_days`` days.

    A change can happen on each day with probability :math:`H`, so over :math:`w` days
    :math:`H_w = 1 - (1 - H)^w`.  A regime that starts inside a window is taken to start with
    the window (the window's total is scored as a whole under the new regime): the detector
    cannot place a change inside a window, only between windows.
    """
    return -math.expm1(window_days * math.log1p(-config.hazard))


@dataclass
class WindowState:
    """Run-length distribution of one series of window totals (mutable: advanced in place).

    Attributes
    ----------
    probs : numpy.ndarray, shape (R + 1,)
        ``probs[r]``: probability that the current regime holds the last ``r`` windows (slot
        ``R``: ``R`` or more; slot 0 only before the first window).
    sums, days : numpy.ndarray of int64, shape (R + 1,)
        Events and days of exposure of the last ``r`` windows.
    n_obs : int
        Windows processed.
    n_days : int
        Days covered by the windows processed.
    """

    probs: np.ndarray
    sums: np.ndarray
    days: np.ndarray
    n_obs: int = 0
    n_days: int = 0

    @classmethod
    def initial(cls, config: DetectorConfig) -> WindowState:
        size = config.max_run_length + 1
        probs = np.zeros(size)
        probs[0] = 1.0
        return cls(probs=probs, sums=np.zeros(size, dtype=np.int64), days=np.zeros(size, dtype=np.int64))

    @property
    def max_run_length(self) -> int:
        return int(self.probs.shape[0] - 1)

    def to_bytes(self) -> bytes:
        """The state, exactly (float64 and int64 little-endian)."""
        return (
            _WINDOW_HEADER.pack(_WINDOW_MAGIC, self.max_run_length, int(self.n_obs), int(self.n_days))
            + np.ascontiguousarray(self.probs, dtype="<f8").tobytes()
            + np.ascontiguousarray(self.sums, dtype="<i8").tobytes()
            + np.ascontiguousarray(self.days, dtype="<i8").tobytes()
        )

    @classmethod
    def from_bytes(cls, blob: bytes, config: DetectorConfig) -> WindowState:
        """Read :meth:`to_bytes`.

        Raises
        ------
        ValueError
            When the blob is not a window state of this configuration's size.
        """
        size = config.max_run_length + 1
        if len(blob) != _WINDOW_HEADER.size + 24 * size:
            raise ValueError(f"window state of {len(blob)} bytes does not fit max_run_length {size - 1}")
        magic, stored_r, n_obs, n_days = _WINDOW_HEADER.unpack_from(blob)
        if magic != _WINDOW_MAGIC or stored_r != size - 1:
            raise ValueError("not a window detector state of this configuration")
        body = blob[_WINDOW_HEADER.size :]
        return cls(
            probs=np.frombuffer(body[: 8 * size], dtype="<f8").copy(),
            sums=np.frombuffer(body[8 * size : 16 * size], dtype="<i8").copy(),
            days=np.frombuffer(body[16 * size :], dtype="<i8").copy(),
            n_obs=int(n_obs),
            n_days=int(n_days),
        )


def update_windows(
    config: DetectorConfig,
    state: WindowState,
    counts: Sequence[int] | np.ndarray,
    window_days: Sequence[int] | np.ndarray,
    *,
    within_last: int = 7,
    baseline: int = 28,
    report_above: float = 0.0,
) -> DetectorOutput:
    r"""Advance ``state`` (in place) over window totals of one series, in the order of their end dates.

    The recursion is the daily one (see :mod:`forecast.alerts.bocpd`) with two changes for a window of
    :math:`w_t` days: the predictive is the window predictive of
    :func:`window_log_predictive`, and the hazard is :math:`H_{w_t} = 1 - (1 - H)^{w_t}`
    (:func:`window_hazard`), since a window of :math:`w` days covers :math:`w` days on which a
    regime could have started.  Run lengths count windows; truncation and pruning are as for
    daily counts.  Windows of one day give the daily detector's numbers.

    Parameters
    ----------
    config : DetectorConfig
    state : WindowState
        Advanced in place.
    counts, window_days : arrays of int (step,)
        Window totals (>= 0) and lengths in days (>= 1), ordered by end date.
    within_last : int
        ``k`` in days: the changepoint probability is :math:`P(r_t \le j_t)` where :math:`j_t`
        is the number of latest windows that together cover at most ``k`` days, and at least
        1 (the window just observed).  For daily counts :math:`j_t = k`.
    baseline : int
        Days of exposure before the detected regime whose mean daily rate is ``rate_before``
        (whole windows, at least one).
    report_above : float
        Compute the run length and rates where ``changepoint_prob`` is at least this.

    Returns
    -------
    DetectorOutput
        With one front (shape ``(1, step)``).  ``n_obs`` is the number of **days** covered by
        the windows so far (what the rules' ``warmup`` compares with); ``run_length`` counts
        windows; ``rate_after`` and ``rate_before`` are mean counts **per day**.
    """
    y_all = np.asarray(counts, dtype=np.int64).ravel()
    w_all = np.asarray(window_days, dtype=np.int64).ravel()
    if y_all.shape != w_all.shape:
        raise ValueError(f"counts and window_days differ in length: {y_all.shape} and {w_all.shape}")
    if np.any(y_all < 0):
        raise ValueError("window totals must be whole numbers >= 0")
    if np.any(w_all < 1):
        raise ValueError("window lengths must be at least 1 day")
    if state.max_run_length != config.max_run_length:
        raise ValueError("the state was made with another max_run_length")
    if within_last < 1:
        raise ValueError("within_last must be at least 1")
    n_steps = len(y_all)
    size = config.max_run_length + 1
    cp_prob = np.full((1, n_steps), np.nan)
    run_length = np.zeros((1, n_steps), dtype=np.int64)
    rate_after = np.full((1, n_steps), np.nan)
    rate_before = np.full((1, n_steps), np.nan)
    n_obs_out = np.zeros((1, n_steps), dtype=np.int64)
    prune = config.prune_below
    for t in range(n_steps):
        y, w = int(y_all[t]), int(w_all[t])
        hazard = window_hazard(config, w)
        log_pred = window_log_predictive(config, state.sums, state.days, y, w)
        log_pred -= log_pred.max()
        np.maximum(log_pred, LOWEST_RELATIVE_LOG_WEIGHT, out=log_pred)
        pred = np.exp(log_pred)
        q = state.probs * pred * (1.0 - hazard)
        new = np.zeros(size)
        new[2:] = q[1:-1]  # a run of r windows grows to r + 1 ...
        new[-1] += q[-1]  # ... and the last slot ("R or more") keeps its own mass
        new[1] = q[0] + hazard * pred[0]  # a new regime opens with this window (probs sum to 1)
        new /= new.sum()
        if prune > 0.0:
            new[new < prune] = 0.0
        sums = np.empty_like(state.sums)
        days = np.empty_like(state.days)
        sums[0], days[0] = 0, 0
        sums[1:] = state.sums[:-1] + y
        days[1:] = state.days[:-1] + w
        state.probs, state.sums, state.days = new, sums, days
        state.n_obs += 1
        state.n_days += w
        n_obs_out[0, t] = state.n_days
        recent = max(1, int(np.searchsorted(days[1:], within_last, side="right")))
        recent = min(recent, size - 1)
        cp_prob[0, t] = float(new[1 : recent + 1].sum())
        if cp_prob[0, t] >= report_above:
            r_star = 1 + int(np.argmax(new[1 : recent + 1]))
            run_length[0, t] = r_star
            rate_after[0, t] = sums[r_star] / days[r_star]
            available = min(state.n_obs, size - 1)
            if r_star < available:
                # whole windows before the regime, up to `baseline` days (at least one window)
                span = int(np.searchsorted(days[r_star + 1 : available + 1] - days[r_star], baseline, side="right"))
                end = r_star + max(1, span)
                rate_before[0, t] = (sums[end] - sums[r_star]) / (days[end] - days[r_star])
    return DetectorOutput(
        observed=np.ones((1, n_steps), dtype=bool),
        changepoint_prob=cp_prob,
        run_length=run_length,
        rate_after=rate_after,
        rate_before=rate_before,
        n_obs=n_obs_out,
    )

r"""Bayesian online changepoint detection (Adams and MacKay 2007) on daily counts, over fronts.

The generative model, per front: the counts fall into regimes; at every observation a new
regime starts with probability :math:`H` (the hazard, ``1 / expected_run_length``); within a
regime the counts are independent given the regime's parameter, drawn afresh from the prior:

* ``poisson``: :math:`y_t \sim \mathrm{Poisson}(\lambda)`, :math:`\lambda \sim
  \mathrm{Gamma}(\alpha_0, \beta_0)` (shape, rate).  After a run of :math:`r` counts summing
  to :math:`S` the predictive is negative binomial:
  :math:`p(y) = \frac{\Gamma(\alpha+y)}{\Gamma(\alpha)\,y!}
  \left(\frac{\beta}{\beta+1}\right)^{\alpha}\left(\frac{1}{\beta+1}\right)^{y}` with
  :math:`\alpha = \alpha_0 + S`, :math:`\beta = \beta_0 + r`.
* ``negative_binomial``: :math:`y_t \sim \mathrm{NB}(\phi, p)` (``phi`` failures, mean
  :math:`\phi(1-p)/p`) with a known whole-number dispersion :math:`\phi` and
  :math:`p \sim \mathrm{Beta}(a_0, b_0)`.  The predictive is beta-negative-binomial:
  :math:`p(y) = \frac{\Gamma(y+\phi)}{\Gamma(\phi)\,y!} \frac{B(a+\phi,\, b+y)}{B(a, b)}` with
  :math:`a = a_0 + \phi r`, :math:`b = b_0 + S`.  Use it for bursty counts: the variance is
  :math:`\mu + \mu^2/\phi`.

The run length :math:`r_t` is the number of observations in the current regime, counting
:math:`y_t`.  The recursion (after observing :math:`y_t`) is

.. math::

    P(r_t = r + 1, y_{1:t}) &\propto (1 - H)\, \pi_r(y_t)\, P(r_{t-1} = r \mid y_{1:t-1}) \\
    P(r_t = 1, y_{1:t})     &\propto H\, \pi_0(y_t)

where :math:`\pi_r` is the predictive after the last :math:`r` counts and :math:`\pi_0` the
prior predictive.  (The 2007 paper scores the new regime's first count under the *old* run's
predictive, which makes :math:`P(r_t = 0) \equiv H`; here the count that opens a regime
belongs to it, so short run lengths carry the evidence of the change.)

Truncation, so that each observation costs O(1)
-----------------------------------------------
* **Maximum run length** ``R`` (``max_run_length``): the last slot means "``R`` or more"; its
  predictive uses the last ``R`` counts (a sliding window) and the mass growing out of slot
  ``R - 1`` merges into it.  Exact when no run exceeds ``R`` observations; after that a long
  regime is summarised by its last ``R`` observations.  Every update is ``O(R)`` whatever the
  length of the series, and the state has a fixed size.
* **Pruning**: after each update, run lengths whose probability is below ``prune_below`` are
  set to zero (this keeps denormal numbers out of the arithmetic; the mass dropped is at most
  ``(R + 1) * prune_below`` per step).  ``prune_below = 0`` keeps everything.

Both are exact for the tests that compare with a brute-force, unpruned implementation
(:func:`brute_force_run_length_posterior` in the tests).

The state of a front is its run-length distribution (``R + 1`` probabilities) and the sums of
its last ``r`` counts for every ``r`` (``R + 1`` integers), plus the number of observations
seen: :meth:`DetectorState.front_bytes` serialises it exactly (float64), so a run that resumes
from saved state computes the same numbers as one that never stopped.

Speed: the predictive probabilities of a batch of observations depend on the data only, so
they are computed for the whole batch at once (log-gamma values come from a table indexed by
whole numbers, since counts are whole); the sequential part is a few vector operations per
step, vectorised over fronts.

Where things are: the configuration (prior, hazard, truncation, the file format) is
:mod:`forecast.alerts.detector_config`; the state and outputs :mod:`forecast.alerts.bocpd_state`;
the predictive probabilities :mod:`forecast.alerts.bocpd_predictive`; the form for window totals
:mod:`forecast.alerts.bocpd_windows`.  This module holds the daily update, and its names are
importable from here as before.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from forecast.alerts.bocpd_predictive import Predictive, predictive_for, relative_log_pred, window_sums
from forecast.alerts.bocpd_state import DetectorOutput, DetectorState
from forecast.alerts.bocpd_windows import WindowState, update_windows, window_hazard, window_log_predictive
from forecast.alerts.detector_config import (
    DETECTOR_KEYS,
    LIKELIHOODS,
    DetectorConfig,
    detector_config_from_dict,
    load_detector_config,
)

log = logging.getLogger(__name__)

__all__ = [
    "DETECTOR_KEYS",
    "KERNEL_MIN_STEPS",
    "LIKELIHOODS",
    "DetectorConfig",
    "DetectorOutput",
    "DetectorState",
    "detector_config_from_dict",
    "WindowState",
    "load_detector_config",
    "update",
    "update_windows",
    "window_hazard",
    "window_log_predictive",
]

#: Predictive weights (steps x fronts x run lengths) held at once: 16 MiB.
_CHUNK_CELLS = 1 << 21
#: Fewest and most steps per batch.
_CHUNK_STEPS = (16, 256)
#: Cells of one piece of the predictive computation (small pieces stay in the CPU cache).
_BULK_CELLS = 1 << 17


class _Stepper:
    """The sequential part of the update for steps where every front is observed.

    Holds two buffers for the run-length distribution (swapped at each step) and views into
    them made once, so that a step is a handful of numpy calls whatever the number of fronts.
    """

    def __init__(self, n_fronts: int, size: int, kmax: int, prune: float):
        self.prune = prune
        self.buffers = [np.zeros((n_fronts, size)), np.zeros((n_fronts, size))]
        self.q = np.empty((n_fronts, size))
        self.mask = np.empty((n_fronts, size), dtype=bool)
        self.total = np.empty((n_fronts, 1))
        q = self.q
        self.q_views = (q[:, 1:-1], q[:, -1], q[:, 0])
        self.views = [(b[:, 2:], b[:, -1], b[:, 1], b[:, : kmax + 1]) for b in self.buffers]
        # One front: the same operations on 1-d views (numpy calls on 1-d arrays cost less).
        self.single = n_fronts == 1
        self.q_flat = (q[0], q[0, 1:-1], q[0, -1:], q[0, :1])
        self.flat = [(b[0], b[0, 2:], b[0, -1:], b[0, 1:2], b[0, : kmax + 1]) for b in self.buffers]
        self.mask_flat = self.mask[0]
        self.current = 0
        self.fresh = False

    @property
    def probs(self) -> np.ndarray:
        return self.buffers[self.current]

    def start(self, probs: np.ndarray, fresh: bool) -> None:
        np.copyto(self.buffers[self.current], probs)
        self.fresh = fresh

    def finish(self) -> np.ndarray:
        return self.buffers[self.current].copy()

    def step(self, weights: np.ndarray, cp_weight: np.ndarray, recent: np.ndarray) -> None:
        if self.single and not self.fresh:
            self._step_single(weights[0], cp_weight, recent[0])
            return
        probs = self.buffers[self.current]
        other = 1 - self.current
        new = self.buffers[other]
        shifted, last, first, head = self.views[other]
        q_middle, q_last, q_first = self.q_views
        np.multiply(probs, weights, out=self.q)
        np.copyto(shifted, q_middle)  # a run of r observations grows to r + 1 ...
        np.add(last, q_last, out=last)  # ... and the last slot ("R or more") keeps its own mass
        np.add(q_first, cp_weight, out=first)  # a new regime opens with this observation
        if self.fresh:  # slot 0 (no observation yet) empties after the first step
            new[:, 0] = 0.0
            probs[:, 0] = 0.0
            self.fresh = False
        np.add.reduce(new, axis=1, keepdims=True, out=self.total)
        np.divide(new, self.total, out=new)
        if self.prune > 0.0:
            np.less(new, self.prune, out=self.mask)
            np.putmask(new, self.mask, 0.0)
        np.copyto(recent, head)
        self.current = other

    def _step_single(self, weights: np.ndarray, cp_weight: np.ndarray, recent: np.ndarray) -> None:
        probs = self.flat[self.current][0]
        other = 1 - self.current
        new, shifted, last, first, head = self.flat[other]
        q, q_middle, q_last, q_first = self.q_flat
        np.multiply(probs, weights, out=q)
        np.copyto(shifted, q_middle)
        np.add(last, q_last, out=last)
        np.add(q_first, cp_weight, out=first)
        np.divide(new, np.add.reduce(new), out=new)
        if self.prune > 0.0:
            np.less(new, self.prune, out=self.mask_flat)
            np.putmask(new, self.mask_flat, 0.0)
        np.copyto(recent, head)
        self.current = other


#: Batches of one front at least this long run their sequential part in compiled code
#: (:mod:`forecast.alerts.bocpd_kernel`, numba; bit-identical to the numpy path).  Shorter
#: batches (a scheduled run's new days) stay in numpy and never import numba.
KERNEL_MIN_STEPS = 1024


def _single_front_kernel() -> Any:
    """:mod:`forecast.alerts.bocpd_kernel`, or None without numba (then numpy does the steps)."""
    try:
        from forecast.alerts import bocpd_kernel
    except ImportError:  # pragma: no cover - numba comes with nutpie here
        log.info("numba is not available: the detector runs its numpy path")
        return None
    return bocpd_kernel


def update(
    config: DetectorConfig,
    state: DetectorState,
    counts: np.ndarray,
    *,
    within_last: int | Sequence[int] | np.ndarray = 7,
    baseline: int | Sequence[int] | np.ndarray = 28,
    report_above: float | Sequence[float] | np.ndarray = 0.0,
) -> DetectorOutput:
    """Advance ``state`` (in place) over a batch of observations.

    Parameters
    ----------
    config : DetectorConfig
        Must be the configuration the state was made with.
    state : DetectorState
        Advanced in place (its arrays may be replaced).
    counts : array, shape (front, step)
        Whole counts >= 0; NaN where a front was not observed on a step (a day under a window
        total, or in a declared gap): its state is left as it is (no run-length growth, no
        hazard step), and its run lengths count observations, not days.
    within_last : int or array of int (front,)
        ``k`` in ``P(r_t <= k)``, per front or for all.
    baseline : int or array of int (front,)
        Observations before the detected regime whose mean is ``rate_before``.
    report_above : float or array (front,)
        Compute the run length and rates where ``changepoint_prob`` is at least this
        (0 computes them on every step, at some cost).

    Returns
    -------
    DetectorOutput

    Notes
    -----
    Feeding a series in one batch or in several gives the same numbers, bit for bit.  Each
    batch of steps is three parts: the predictive weights of its observations, all at once
    (:func:`_predictive_weights`); the sequential recursion over its steps (:func:`_run_steps`);
    and the outputs of its steps (:meth:`_Outputs.describe`).
    """
    values = np.asarray(counts, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != state.n_fronts:
        raise ValueError(f"counts must have shape (front={state.n_fronts}, step), got {values.shape}")
    if state.max_run_length != config.max_run_length:
        raise ValueError("the state was made with another max_run_length")
    observed = ~np.isnan(values)
    seen = values[observed]
    if np.any(seen < 0) or np.any(seen != np.floor(seen)):
        raise ValueError("counts must be whole numbers >= 0")
    whole = np.where(observed, values, 0.0).astype(np.int64)
    n_fronts, n_steps = values.shape
    size = config.max_run_length + 1
    k = np.broadcast_to(np.asarray(within_last, dtype=np.int64), (n_fronts,)).copy()
    if np.any(k < 1) or np.any(k >= size - 1):
        raise ValueError(f"within_last must be between 1 and max_run_length - 1 ({size - 2})")
    outputs = _Outputs.empty(
        observed,
        k=k,
        baseline=np.broadcast_to(np.asarray(baseline, dtype=np.int64), (n_fronts,)),
        threshold=np.broadcast_to(np.asarray(report_above, dtype=np.float64), (n_fronts,)),
    )
    if n_fronts == 0 or n_steps == 0:
        return outputs.result()

    predictive = predictive_for(config)
    log_keep = math.log1p(-config.hazard)
    hazard_ratio = config.hazard / (1.0 - config.hazard)
    kmax = int(k.max())
    chunk = int(np.clip(_CHUNK_CELLS // (size * n_fronts), *_CHUNK_STEPS))
    stepper = _Stepper(n_fronts, size, kmax, config.prune_below)
    kernel = _single_front_kernel() if n_fronts == 1 and n_steps >= KERNEL_MIN_STEPS else None

    for lo in range(0, n_steps, chunk):
        hi = min(n_steps, lo + chunk)
        block_obs = observed[:, lo:hi]
        weights, sums, rows_of = _predictive_weights(predictive, state, whole[:, lo:hi], block_obs, log_keep)
        cp_weight = hazard_ratio * weights[:, :, 0]
        counted = state.n_obs[:, None] + np.cumsum(block_obs, axis=1)
        recent = _run_steps(stepper, kernel, state, weights, cp_weight, block_obs, kmax)
        state.n_obs = counted[:, -1].copy()
        outputs.describe(lo, recent, block_obs, counted, sums, rows_of)
    return outputs.result()


def _predictive_weights(
    predictive: Predictive, state: DetectorState, y_block: np.ndarray, block_obs: np.ndarray, log_keep: float
) -> tuple[np.ndarray, list[np.ndarray | None], list[np.ndarray | None]]:
    """Predictive weights of a batch of steps, and the window sums the outputs need.

    Advances ``state.sums`` past the batch.

    Returns
    -------
    weights : array (step, front, R + 1)
        ``(1 - H) pi_r(y_t)``, up to a factor common to the row (0 where not observed).
    sums : list of arrays (observed step + 1, R + 2), one per front
        Sums of the last ``r`` counts before each of the front's observed steps (None: none).
    rows_of : list of arrays (step,), one per front
        For a front not observed on every step, its row in ``sums`` of each step (-1: not
        observed); None for a front observed on every step (the row is the step).
    """
    n_fronts = block_obs.shape[0]
    n_steps = block_obs.shape[1]
    size = state.max_run_length + 1
    # Zeros, not np.empty: the unobserved steps' rows are multiplied through before they are
    # masked, and uninitialised memory there made NaN and a RuntimeWarning now and then.
    weights = np.zeros((n_steps, n_fronts, size))
    sums: list[np.ndarray | None] = [None] * n_fronts
    rows_of: list[np.ndarray | None] = [None] * n_fronts
    full_fronts = block_obs.all(axis=1)
    full_group = np.flatnonzero(full_fronts)
    per_group = max(1, _BULK_CELLS // ((n_steps + 1) * (size + 1)))
    for start in range(0, len(full_group), per_group):
        group = full_group[start : start + per_group]
        y = y_block[group]
        window, top = window_sums(state.sums[group], y)
        log_pred = relative_log_pred(predictive, window, y, top, log_keep)
        if group[-1] - group[0] == len(group) - 1:  # a contiguous block: write in place
            np.exp(log_pred.transpose(1, 0, 2), out=weights[:, group[0] : group[-1] + 1])
        else:
            weights[:, group] = np.exp(log_pred).transpose(1, 0, 2)
        state.sums[group] = window[:, -1, :-1]
        for i, front in enumerate(group):
            sums[front] = window[i]
    for front in np.flatnonzero(~full_fronts):
        steps = np.flatnonzero(block_obs[front])
        if len(steps) == 0:
            continue
        y = y_block[front, steps]
        window, top = window_sums(state.sums[front], y)
        log_pred = relative_log_pred(predictive, window, y, top, log_keep)
        weights[steps, front] = np.exp(log_pred)
        state.sums[front] = window[-1, :-1]
        sums[front] = window
        rows = np.full(n_steps, -1)
        rows[steps] = np.arange(len(steps))
        rows_of[front] = rows
    return weights, sums, rows_of


def _run_steps(
    stepper: _Stepper,
    kernel: Any,
    state: DetectorState,
    weights: np.ndarray,
    cp_weight: np.ndarray,
    block_obs: np.ndarray,
    kmax: int,
) -> np.ndarray:
    """The recursion over a batch of steps; sets ``state.probs`` to the distribution after it.

    Returns the first ``kmax + 1`` run-length probabilities after each step, ``(step, front,
    kmax + 1)`` (zeros where a front was not observed), for the outputs.
    """
    n_fronts, n_steps = block_obs.shape
    prune = stepper.prune
    all_observed: list[bool] = np.asarray(block_obs.all(axis=0)).tolist()
    recent = np.zeros((n_steps, n_fronts, kmax + 1))
    stepper.start(state.probs, bool(np.any(state.n_obs == 0)))
    for j in range(n_steps):
        if kernel is not None and not stepper.fresh:
            # One front, past its first observation: the rest of the block in compiled code.
            stepper.current = kernel.single_front_steps(
                [b[0] for b in stepper.buffers],
                stepper.current,
                stepper.q[0],
                weights[j:, 0],
                cp_weight[j:, 0],
                block_obs[0, j:],
                recent[j:, 0],
                prune,
            )
            break
        if all_observed[j]:
            stepper.step(weights[j], cp_weight[j], recent[j])
            continue
        front_idx = np.flatnonzero(block_obs[:, j])
        if len(front_idx) == 0:
            continue
        probs = stepper.probs
        q = probs[front_idx] * weights[j, front_idx]
        new = np.zeros_like(q)
        new[:, 2:] = q[:, 1:-1]
        new[:, -1] += q[:, -1]
        new[:, 1] = q[:, 0] + cp_weight[j, front_idx]
        new /= new.sum(axis=1, keepdims=True)
        if prune > 0.0:
            new[new < prune] = 0.0
        probs[front_idx] = new
        recent[j, front_idx] = new[:, : kmax + 1]
        stepper.fresh = True
    state.probs = stepper.finish()
    return recent


@dataclass
class _Outputs:
    """The arrays of a :class:`DetectorOutput` being filled, batch by batch, and what fills them."""

    observed: np.ndarray
    k: np.ndarray
    baseline: np.ndarray
    threshold: np.ndarray
    changepoint_prob: np.ndarray
    run_length: np.ndarray
    rate_after: np.ndarray
    rate_before: np.ndarray
    n_obs: np.ndarray

    @classmethod
    def empty(cls, observed: np.ndarray, *, k: np.ndarray, baseline: np.ndarray, threshold: np.ndarray) -> _Outputs:
        shape = observed.shape
        return cls(
            observed=observed,
            k=k,
            baseline=baseline,
            threshold=threshold,
            changepoint_prob=np.full(shape, np.nan),
            run_length=np.zeros(shape, dtype=np.int64),
            rate_after=np.full(shape, np.nan),
            rate_before=np.full(shape, np.nan),
            n_obs=np.zeros(shape, dtype=np.int64),
        )

    def describe(
        self,
        lo: int,
        recent: np.ndarray,
        block_obs: np.ndarray,
        counted: np.ndarray,
        sums: Sequence[np.ndarray | None],
        rows_of: Sequence[np.ndarray | None],
    ) -> None:
        """Outputs of the steps ``lo ..``: ``P(r <= k)``, and where it is high, the most probable
        recent run length and the rates after and before it."""
        n_steps, n_fronts = recent.shape[:2]
        k = self.k
        self.n_obs[:, lo : lo + n_steps] = counted
        cumulative_k = np.cumsum(recent, axis=2)  # (step, front, r)
        cp = np.take_along_axis(cumulative_k, np.broadcast_to(k[None, :, None], (n_steps, n_fronts, 1)), axis=2)[..., 0]
        cp = cp.T  # (front, step)
        cp[~block_obs] = np.nan
        self.changepoint_prob[:, lo : lo + n_steps] = cp
        for front, j in zip(*np.nonzero(cp >= self.threshold[:, None]), strict=True):
            window = sums[front]
            assert window is not None
            rows = rows_of[front]
            row = j if rows is None else int(rows[j])
            _describe_regime(
                recent[j, front],
                window[row + 1, :-1],
                int(counted[front, j]),
                int(k[front]),
                int(self.baseline[front]),
                int(front),
                lo + int(j),
                self.run_length,
                self.rate_after,
                self.rate_before,
            )

    def result(self) -> DetectorOutput:
        return DetectorOutput(
            observed=self.observed,
            changepoint_prob=self.changepoint_prob,
            run_length=self.run_length,
            rate_after=self.rate_after,
            rate_before=self.rate_before,
            n_obs=self.n_obs,
        )


def _describe_regime(
    probs: np.ndarray,
    sums: np.ndarray,
    n_obs: int,
    k: int,
    baseline: int,
    front: int,
    step: int,
    run_length: np.ndarray,
    rate_after: np.ndarray,
    rate_before: np.ndarray,
) -> None:
    """Most probable recent run length and the mean counts after and before its start.

    ``probs`` holds (at least) the first ``k + 1`` run-length probabilities; ``sums`` the
    ``R + 1`` sums of the last ``r`` counts.
    """
    max_r = len(sums) - 1
    r_star = 1 + int(np.argmax(probs[1 : k + 1]))
    run_length[front, step] = r_star
    rate_after[front, step] = sums[r_star] / r_star
    span = min(baseline, n_obs - r_star, max_r - r_star)
    if span > 0:
        rate_before[front, step] = (sums[r_star + span] - sums[r_star]) / span

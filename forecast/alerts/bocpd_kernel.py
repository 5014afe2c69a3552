"""A compiled inner loop for the changepoint detector on one long series (optional, numba).

For one front, :func:`forecast.alerts.bocpd.update` spends most of its time in the sequential
part of the recursion: per step a handful of numpy calls on vectors of ``R + 1`` numbers, each
paying numpy's per-call overhead.  :func:`single_front_steps` does the same steps in one
compiled loop.  It is a drop-in replacement that gives **the same numbers, bit for bit**: the
element-wise operations are the same IEEE operations in the same order, and the one sum (the
normalising constant) reproduces numpy's pairwise summation (:func:`pairwise_sum`, the
algorithm of ``np.add.reduce`` on a contiguous float64 vector: blocks of 128 summed with 8
accumulators, split in halves above that).  The numpy path stays the reference
implementation, and a test holds the two equal.

:mod:`forecast.alerts.bocpd` imports this module lazily, only for long single-series batches
(numba takes ~0.4 s to import, more than a scheduled run's whole detector work); the compiled
code is cached on disk (``cache=True``).  Without numba the numpy path runs.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["pairwise_sum", "single_front_steps"]


@numba.njit(cache=True, nogil=True)
def _block_sum(values: np.ndarray, lo: int, n: int) -> float:  # pragma: no cover - compiled
    """numpy's ``pairwise_sum`` for ``n <= 128``: a plain loop below 8, else 8 accumulators."""
    if n < 8:
        res = -0.0
        for i in range(n):
            res += values[lo + i]
        return res
    r0 = values[lo]
    r1 = values[lo + 1]
    r2 = values[lo + 2]
    r3 = values[lo + 3]
    r4 = values[lo + 4]
    r5 = values[lo + 5]
    r6 = values[lo + 6]
    r7 = values[lo + 7]
    i = 8
    top = n - (n % 8)
    while i < top:
        r0 += values[lo + i]
        r1 += values[lo + i + 1]
        r2 += values[lo + i + 2]
        r3 += values[lo + i + 3]
        r4 += values[lo + i + 4]
        r5 += values[lo + i + 5]
        r6 += values[lo + i + 6]
        r7 += values[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += values[lo + i]
        i += 1
    return res


@numba.njit(cache=True, nogil=True)
def _pairwise(values: np.ndarray, lo: int, n: int) -> float:  # pragma: no cover - compiled
    """numpy's ``pairwise_sum`` (``loops_utils.h``) of ``values[lo : lo + n]``, same order.

    Above 128 values numpy splits ``n`` at ``n // 2`` rounded down to a multiple of 8 and adds
    the two halves' sums; this walks the same tree with an explicit stack (numba's on-disk
    cache does not handle recursive functions).
    """
    if n <= 128:
        return _block_sum(values, lo, n)
    starts = np.empty(64, dtype=np.int64)
    sizes = np.empty(64, dtype=np.int64)
    stages = np.zeros(64, dtype=np.int64)
    partial = np.empty(64)
    depth = 1
    done = 0
    starts[0] = lo
    sizes[0] = n
    stages[0] = 0
    while depth > 0:
        top = depth - 1
        here, count = starts[top], sizes[top]
        if count <= 128:
            partial[done] = _block_sum(values, here, count)
            done += 1
            depth -= 1
            continue
        half = count // 2
        half -= half % 8
        if stages[top] == 0:  # the left half first
            stages[top] = 1
            starts[depth], sizes[depth], stages[depth] = here, half, 0
            depth += 1
        elif stages[top] == 1:  # then the right half
            stages[top] = 2
            starts[depth], sizes[depth], stages[depth] = here + half, count - half, 0
            depth += 1
        else:  # then left + right
            partial[done - 2] = partial[done - 2] + partial[done - 1]
            done -= 1
            depth -= 1
    return partial[0]


@numba.njit(cache=True, nogil=True)
def _steps(
    first: np.ndarray,
    second: np.ndarray,
    current: int,
    q: np.ndarray,
    weights: np.ndarray,
    cp_weight: np.ndarray,
    observed: np.ndarray,
    recent: np.ndarray,
    prune: float,
) -> int:  # pragma: no cover - compiled
    size = first.shape[0]
    head = recent.shape[1]
    for j in range(weights.shape[0]):
        if not observed[j]:
            continue
        if current == 0:
            probs = first
            new = second
        else:
            probs = second
            new = first
        for r in range(size):
            q[r] = probs[r] * weights[j, r]
        for r in range(2, size):  # a run of r observations grows to r + 1 ...
            new[r] = q[r - 1]
        new[size - 1] = new[size - 1] + q[size - 1]  # ... and the last slot keeps its own mass
        new[1] = q[0] + cp_weight[j]  # a new regime opens with this observation
        total = -0.0 + _pairwise(new, 0, size)  # np.add.reduce starts from the identity
        for r in range(size):
            new[r] = new[r] / total
        if prune > 0.0:
            for r in range(size):
                if new[r] < prune:
                    new[r] = 0.0
        for r in range(head):
            recent[j, r] = new[r]
        current = 1 - current
    return current


def pairwise_sum(values: np.ndarray) -> float:
    """numpy's pairwise sum of a contiguous float64 vector, compiled (for the tests)."""
    return float(_pairwise(np.ascontiguousarray(values, dtype=np.float64), 0, len(values)))


def single_front_steps(
    buffers: list[np.ndarray],
    current: int,
    q: np.ndarray,
    weights: np.ndarray,
    cp_weight: np.ndarray,
    observed: np.ndarray,
    recent: np.ndarray,
    prune: float,
) -> int:
    """Advance one front's run-length distribution over a block of steps; returns the buffer in use.

    Parameters
    ----------
    buffers : two float64 vectors (R + 1,)
        The run-length distribution (``buffers[current]``) and scratch space; they swap at each
        observed step, as in ``_Stepper``.  Slot 0 must already be empty (not the first step).
    current : int
        0 or 1.
    q : float64 vector (R + 1,)
        Scratch space.
    weights : float64 (step, R + 1)
        ``(1 - H) pi_r(y_t)`` up to a factor common to the step.
    cp_weight : float64 (step,)
        ``H pi_0(y_t)`` on the same scale.
    observed : bool (step,)
        Steps without an observation leave the distribution as it is.
    recent : float64 (step, k + 1)
        Receives the first ``k + 1`` probabilities after each observed step.
    prune : float
        Probabilities below this are set to zero.
    """
    return int(_steps(buffers[0], buffers[1], current, q, weights, cp_weight, observed, recent, prune))

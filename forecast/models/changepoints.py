r"""Exact marginalisation of changepoint locations, in PyTensor.

Each front has :math:`N` observations in date order and :math:`K` changepoints at positions
:math:`1 \le \tau_1 < \dots < \tau_K \le N - 1` (a changepoint at position :math:`s` means
observations :math:`s, s+1, \dots` are in the next regime), uniform a priori over the
:math:`\binom{N-1}{K}` configurations.  With :math:`\ell_r[i]` the log-likelihood of
observation :math:`i` under regime :math:`r` and :math:`C_r[s] = \sum_{i<s} \ell_r[i]`,

.. math::

    \log p(y \mid \theta) = \log \sum_{\tau_1<\dots<\tau_K}
        \exp\Big(C_0[\tau_1] + \sum_{k=1}^{K-1} (C_k[\tau_{k+1}] - C_k[\tau_k])
                 + C_K[N] - C_K[\tau_K]\Big) - \log\binom{N-1}{K}.

The sum is computed by a forward recursion over changepoints,

.. math::

    B_1[s] = C_0[s] - C_1[s],\qquad
    B_k[s] = \operatorname{LSE}_{t<s} B_{k-1}[t] + C_{k-1}[s] - C_k[s],\qquad
    \log p = \operatorname{LSE}_s B_K[s] + C_K[N] - \log\binom{N-1}{K},

each step a cumulative log-sum-exp over positions: :math:`O(N)` for :math:`K = 1` (a plain
log-sum-exp) and :math:`O(N \log N)` per further changepoint (a numerically stable
parallel-prefix log-sum-exp, with no loop over time in the graph).  The posterior of each
changepoint's position follows exactly from the forward terms and the matching backward terms
:math:`R_K[s] = C_K[N]`, :math:`R_k[s] = \operatorname{LSE}_{t>s}(C_k[t] - C_{k+1}[t] + R_{k+1}[t])`:
:math:`p(\tau_k = s \mid y, \theta) \propto \exp(B_k[s] + R_k[s])`.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad

#: Stands for log(0) in masked positions: finite, so that gradients stay finite.
LOG_ZERO = -1e10


def logaddexp(a: pt.TensorLike, b: pt.TensorLike) -> pt.TensorVariable:
    """Stable ``log(exp(a) + exp(b))`` (PyTensor's own is not stable for large arguments)."""
    high = pt.maximum(a, b)
    return high + pt.log1p(pt.exp(-pt.abs(a - b)))


def logsumexp(x: pt.TensorVariable, axis: int = -1, keepdims: bool = False) -> pt.TensorVariable:
    """Stable log-sum-exp whose gradient survives PyMC's pre-gradient rewrites.

    ``pt.logsumexp`` is rewritten before differentiation into a form whose gradient is NaN once
    the terms exceed ~700 (as log-likelihood sums over hundreds of observations do); holding
    the shift constant keeps the gradient exact (the shift cancels analytically).
    """
    shift = disconnected_grad(pt.max(x, axis=axis, keepdims=True))
    out = pt.log(pt.sum(pt.exp(x - shift), axis=axis, keepdims=True)) + shift
    return out if keepdims else pt.squeeze(out, axis=axis)


def log_cumsum_exp(x: pt.TensorVariable, length: int) -> pt.TensorVariable:
    """Inclusive cumulative log-sum-exp along the last axis (Hillis-Steele prefix scan)."""
    step = 1
    while step < length:
        x = pt.concatenate([x[..., :step], logaddexp(x[..., step:], x[..., :-step])], axis=-1)
        step *= 2
    return x


def exclusive_prefix(x: pt.TensorVariable, length: int) -> pt.TensorVariable:
    """``out[..., s] = LSE(x[..., :s])`` with ``out[..., 0] = LOG_ZERO``."""
    inclusive = log_cumsum_exp(x, length)
    pad = pt.full_like(x[..., :1], LOG_ZERO)
    return pt.concatenate([pad, inclusive[..., :-1]], axis=-1)


def exclusive_suffix(x: pt.TensorVariable, length: int) -> pt.TensorVariable:
    """``out[..., s] = LSE(x[..., s+1:])`` with ``out[..., -1] = LOG_ZERO``."""
    return exclusive_prefix(x[..., ::-1], length)[..., ::-1]


def cumulative_loglik(loglik: pt.TensorVariable) -> pt.TensorVariable:
    """``C[r, f, s] = sum_{i<s} loglik[r, f, i]`` (exclusive), same shape as the input."""
    inclusive = pt.cumsum(loglik, axis=-1)
    return inclusive - loglik


def _length(valid: np.ndarray | pt.TensorVariable, length: int | None) -> int:
    """Number of positions, from a numpy ``valid`` or given (a tensor's length is not known)."""
    if length is not None:
        return int(length)
    if isinstance(valid, np.ndarray):
        return int(valid.shape[-1])
    raise ValueError("give the number of positions (length=) when valid is a tensor")


def forward_terms(
    cumulative: pt.TensorVariable,
    valid: np.ndarray | pt.TensorVariable,
    n_changepoints: int,
    length: int | None = None,
) -> list[pt.TensorVariable]:
    """The forward terms :math:`B_1..B_K`, each ``(front, position)``.

    Parameters
    ----------
    cumulative : tensor (regime, front, position)
        Exclusive cumulative log-likelihoods :math:`C_r[s]`.
    valid : bool array or tensor (front, position)
        Positions where a changepoint may fall (``1 <= s <= N_f - 1``).
    length : int, optional
        Number of positions; needed when ``valid`` is a tensor.  Only the number of doubling
        steps of the prefix scans (``ceil(log2(length))``, for K > 1) depends on it, and steps
        beyond the data's length act on empty slices, so a graph built for ``length`` is exact
        for every series of at most that many positions.
    """
    length = _length(valid, length)
    mask = pt.as_tensor(valid)
    terms = []
    carried = None
    for k in range(1, n_changepoints + 1):
        local = cumulative[k - 1] - cumulative[k]
        term = local if carried is None else carried + local
        term = pt.switch(mask, term, LOG_ZERO)
        terms.append(term)
        if k < n_changepoints:
            carried = exclusive_prefix(term, length)
    return terms


def backward_terms(
    cumulative: pt.TensorVariable,
    total: pt.TensorVariable,
    valid: np.ndarray | pt.TensorVariable,
    n_changepoints: int,
    length: int | None = None,
) -> list[pt.TensorVariable]:
    """The backward terms :math:`R_1..R_K`, each ``(front, position)``; ``total`` is :math:`C_K[N]`."""
    length = _length(valid, length)
    mask = pt.as_tensor(valid)
    terms: list[pt.TensorVariable] = [pt.zeros_like(cumulative[0]) + total[:, None]]
    for k in range(n_changepoints - 1, 0, -1):
        following = cumulative[k] - cumulative[k + 1] + terms[0]
        following = pt.switch(mask, following, LOG_ZERO)
        terms.insert(0, exclusive_suffix(following, length))
    return terms


def marginal_loglik(
    loglik: pt.TensorVariable,
    valid: np.ndarray | pt.TensorVariable,
    n_changepoints: int,
    log_n_configurations: np.ndarray | pt.TensorVariable,
    length: int | None = None,
) -> tuple[pt.TensorVariable, list[pt.TensorVariable]]:
    """Log-likelihood per front with the changepoint positions summed out.

    Parameters
    ----------
    loglik : tensor (regime, front, position)
        Observation log-likelihoods under each of the ``K + 1`` regimes; padding positions
        must hold 0.
    valid : bool array or tensor (front, position)
    n_changepoints : int
        K >= 1.
    log_n_configurations : array or tensor (front,)
        ``log binom(N_f - 1, K)``, the uniform prior's normaliser.
    length : int, optional
        Number of positions; needed when ``valid`` is a tensor (see :func:`forward_terms`).

    Returns
    -------
    per_front : tensor (front,)
    forward : list of K tensors (front, position)
    """
    cumulative = cumulative_loglik(loglik)
    total_last = pt.sum(loglik[n_changepoints], axis=-1)
    forward = forward_terms(cumulative, valid, n_changepoints, length)
    per_front = logsumexp(forward[-1], axis=-1) + total_last - log_n_configurations
    return per_front, forward


def changepoint_posterior(
    loglik: pt.TensorVariable,
    valid: np.ndarray | pt.TensorVariable,
    n_changepoints: int,
    length: int | None = None,
) -> pt.TensorVariable:
    """``p(tau_k = s | y, theta)`` as a tensor (changepoint, front, position)."""
    cumulative = cumulative_loglik(loglik)
    total_last = pt.sum(loglik[n_changepoints], axis=-1)
    forward = forward_terms(cumulative, valid, n_changepoints, length)
    backward = backward_terms(cumulative, total_last, valid, n_changepoints, length)
    joint = pt.stack([f + b for f, b in zip(forward, backward, strict=True)])
    return pt.exp(joint - logsumexp(joint, axis=-1, keepdims=True))

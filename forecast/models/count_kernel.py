r"""The observations' negative binomial log-likelihood as one PyTensor Op, with a Numba kernel.

The dynamic model's likelihood is a sum over observations :math:`i` of

* :math:`\log p(y_i)` for an exact count, the negative binomial of
  :func:`forecast.models.escalation.count_logpmf` (mean :math:`\mu_i = e^{m_i}`, dispersion
  :math:`\alpha_i`);
* :math:`\log\Pr(Y \ge y_i)` for an ``at_least`` total with :math:`y_i > 0`, computed as
  :func:`forecast.models.escalation.log_survival` computes it: :math:`\log(1 - F(y_i - 1))` where
  the CDF is below one half, otherwise the upper tail summed from :math:`y_i`
  (:data:`SURVIVAL_TAIL_TERMS` terms) plus its geometric bound;
* nothing for an ``at_least 0`` total.

:class:`CountLoglik` returns that sum together with its derivatives with respect to every
:math:`m_i` and :math:`\alpha_i`, from one loop over the observations: the definition is the one
in :mod:`forecast.models.escalation` (``tests/test_count_kernel.py`` holds the two equal, value
and gradient), only the arithmetic is arranged differently.

* Successive terms of a tail come from their ratio, :math:`p(k+1)/p(k) = \frac{k+\alpha}{k+1}
  \frac{\mu}{\mu+\alpha}`, and so do their derivatives (:math:`\psi(k+1+\alpha) = \psi(k+\alpha)
  + 1/(k+\alpha)`), not from two log-gamma and two digamma evaluations per term.
* A tail stops once its next terms cannot reach :math:`10^{-16}` of its sum (their ratio below
  0.9 and the term below :math:`e^{-40}` of the sum), where the geometric bound is as small.
* :math:`\log\Gamma(y+\alpha) - \log\Gamma(\alpha)` and :math:`\psi(y+\alpha) - \psi(\alpha)`
  are sums over :math:`j < y` for small counts (a zero costs nothing).
* :math:`\log\alpha`, :math:`\log\Gamma(\alpha)` and :math:`\psi(\alpha)` are kept for the last
  two distinct dispersions: a front's on a daily grid, and months of 31 and 30 days alternate.

Why an Op: written with PyTensor's operations, the likelihood and its gradient were 44% of a
gradient evaluation of the shipped model (0.28 of 0.65 ms, most of it the censored totals' 256
tail terms each, with two log-gamma functions and a digamma per term), and a few hundred of the
graph's nodes.  ``benchmarks/bench_gradient.py --model dynamic`` measures the result.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from forecast.models.numba_digamma import digamma
from forecast.models.numba_ops import register_kernels, source_version

#: Terms of the upper tail summed by :func:`forecast.models.escalation.log_survival` (and here)
#: before its geometric remainder.
SURVIVAL_TAIL_TERMS = 256

#: ``kind`` of an observation: an exact count, an ``at_least`` total above 0, an ``at_least 0`` total.
EXACT, AT_LEAST, UNINFORMATIVE = 0, 1, 2

#: Counts below this get their log-gamma and digamma differences as sums over ``j < y``.
SMALL_COUNT = 8

#: A tail stops when a term is below ``exp(-STOP_LOG)`` of the sum so far and the ratio of the
#: next terms below :data:`STOP_RATIO`: what is left is then under ``10 exp(-STOP_LOG)`` of the sum.
STOP_LOG = 40.0
STOP_RATIO = 0.9

_LOG_HALF = math.log(0.5)
_digamma = numba.njit(cache=True)(digamma)


@numba.njit(cache=True)
def _logaddexp(a, b):
    high = max(a, b)
    return high + math.log1p(math.exp(-abs(a - b)))


@numba.njit(cache=True)
def _gamma_differences(y, alpha, log_gamma_alpha, psi_alpha):
    """``(log Gamma(y + alpha) - log Gamma(alpha), psi(y + alpha) - psi(alpha))`` for a count ``y``.

    ``log_gamma_alpha`` and ``psi_alpha`` are ``log Gamma(alpha)`` and ``psi(alpha)``.
    """
    if y < SMALL_COUNT:
        log_ratio = 0.0
        psi_ratio = 0.0
        for j in range(int(y)):
            log_ratio += math.log(alpha + j)
            psi_ratio += 1.0 / (alpha + j)
        return log_ratio, psi_ratio
    return math.lgamma(y + alpha) - log_gamma_alpha, _digamma(y + alpha) - psi_alpha


@numba.njit(cache=True)
def _add_term(high, weight_sum, mean_bar, alpha_bar, lp, d_mean, d_alpha):
    """A log-sum-exp's running sums (relative to ``high``, its largest term) with one more term ``lp``.

    The sums are of ``exp(lp - high)`` and of it times the term's two derivatives.
    """
    if lp > high:  # rescale the sums to the new largest term
        scale = math.exp(high - lp)
        weight_sum *= scale
        mean_bar *= scale
        alpha_bar *= scale
        high = lp
    weight = math.exp(lp - high)
    return high, weight_sum + weight, mean_bar + weight * d_mean, alpha_bar + weight * d_alpha


@numba.njit(cache=True)
def _log_survival(y, alpha, log_mean, log_alpha, log_total, share, inverse, log_gamma_alpha, psi_alpha):
    """``(log P(Y >= y), d/d log_mean, d/d alpha)`` for ``y > 0``, as :func:`~forecast.models.escalation.log_survival`.

    ``log_total`` is ``log(alpha + mu)``, ``share`` ``mu / (alpha + mu)`` and ``inverse``
    ``1 / (alpha + mu)``.  The log-pmf of ``k`` and its derivatives are
    ``lp_k = lp_{k-1} + log((k - 1 + alpha) / k) + log_mean - log_total``,
    ``k - (k + alpha) share`` and ``S_k + log(alpha) + 1 - log_total - (k + alpha) inverse`` with
    ``S_k = psi(k + alpha) - psi(alpha)``.
    """
    step = log_mean - log_total
    n_below = int(y)
    # The CDF at y - 1: terms k = 0 .. y - 1, k = 0 being alpha (log alpha - log_total).
    terms = np.empty(n_below)
    lp = alpha * (log_alpha - log_total)
    high = lp
    for k in range(n_below):
        if k > 0:
            lp += math.log((k - 1 + alpha) / k) + step
        terms[k] = lp
        high = max(high, lp)
    weight_sum = 0.0
    mean_bar = 0.0
    alpha_bar = 0.0
    psi_ratio = 0.0
    for k in range(n_below):
        weight = math.exp(terms[k] - high)
        weight_sum += weight
        mean_bar += weight * (k - (k + alpha) * share)
        alpha_bar += weight * (psi_ratio + log_alpha + 1.0 - log_total - (k + alpha) * inverse)
        psi_ratio += 1.0 / (k + alpha)
    log_cdf = high + math.log(weight_sum)
    if log_cdf < _LOG_HALF:
        # log(1 - F): its derivative is -F / (1 - F) times the CDF's weighted derivatives.
        survival = -math.expm1(log_cdf)
        factor = -math.exp(log_cdf) / survival / weight_sum
        return math.log(survival), factor * mean_bar, factor * alpha_bar
    # The upper tail from y on, and the geometric bound of what lies beyond its last term.
    log_ratio, psi_ratio = _gamma_differences(y, alpha, log_gamma_alpha, psi_alpha)
    lp = log_ratio - math.lgamma(y + 1.0) + alpha * log_alpha + y * log_mean - (y + alpha) * log_total
    high = lp
    weight_sum = 1.0
    d_mean = y - (y + alpha) * share
    d_alpha = psi_ratio + log_alpha + 1.0 - log_total - (y + alpha) * inverse
    mean_bar = d_mean
    alpha_bar = d_alpha
    stopped = False
    last = y
    for j in range(1, SURVIVAL_TAIL_TERMS):
        k = y + j
        ratio = share * (k - 1.0 + alpha) / k
        if lp - (high + math.log(weight_sum)) < -STOP_LOG and max(ratio, share) < STOP_RATIO:
            stopped = True
            break
        lp += math.log(ratio)
        psi_ratio += 1.0 / (k - 1.0 + alpha)
        d_mean = k - (k + alpha) * share
        d_alpha = psi_ratio + log_alpha + 1.0 - log_total - (k + alpha) * inverse
        high, weight_sum, mean_bar, alpha_bar = _add_term(high, weight_sum, mean_bar, alpha_bar, lp, d_mean, d_alpha)
        last = k
    if not stopped:
        # remainder = lp_last + log(r) - log(1 - r), r = share (last + alpha) / (last + 1), capped at 0.999.
        ratio = share * (last + alpha) / (last + 1.0)
        r_mean = 0.0
        r_alpha = 0.0
        if ratio > 0.999:
            ratio = 0.999
        else:
            slope = 1.0 / (ratio * (1.0 - ratio))
            r_mean = slope * ratio * (1.0 - share)
            r_alpha = slope * (-ratio * inverse + share / (last + 1.0))
        remainder = lp + math.log(ratio) - math.log1p(-ratio)
        high, weight_sum, mean_bar, alpha_bar = _add_term(
            high, weight_sum, mean_bar, alpha_bar, remainder, d_mean + r_mean, d_alpha + r_alpha
        )
    return high + math.log(weight_sum), mean_bar / weight_sum, alpha_bar / weight_sum


@numba.njit(cache=True)
def count_loglik(log_mean, alpha, y, log_y_factorial, kind):
    """``(total (1,), d total / d log_mean, d total / d alpha, each)`` over observations (each ``(obs,)``).

    ``each`` holds every observation's own term (0 for an ``at_least 0`` total); ``total`` is their sum.
    """
    n_obs = y.shape[0]
    total = 0.0
    mean_bar = np.zeros(n_obs)
    alpha_bar = np.zeros(n_obs)
    each = np.zeros(n_obs)
    # log, log-gamma and digamma of the last two distinct dispersions: one per front on a daily grid,
    # and months of 31 and 30 days alternate.
    cached = np.full(2, np.nan)
    cached_log = np.empty(2)
    cached_log_gamma = np.empty(2)
    cached_psi = np.empty(2)
    replace = 0
    for i in range(n_obs):
        if kind[i] == UNINFORMATIVE:
            continue
        a = alpha[i]
        m = log_mean[i]
        count = y[i]
        if a == cached[0]:
            slot = 0
        elif a == cached[1]:
            slot = 1
        else:
            slot = replace
            replace = 1 - replace
            cached[slot] = a
            cached_log[slot] = math.log(a)
            cached_log_gamma[slot] = math.lgamma(a)
            cached_psi[slot] = _digamma(a)
        log_alpha = cached_log[slot]
        if m < 30.0:
            mean = math.exp(m)
            inverse = 1.0 / (a + mean)  # 1 / (alpha + mu)
            share = mean * inverse  # mu / (alpha + mu)
            log_total = math.log(a + mean)  # log(alpha + mu)
        else:  # mu alone would overflow long before alpha + mu did
            log_total = _logaddexp(log_alpha, m)
            share = math.exp(m - log_total)
            inverse = math.exp(-log_total)
        if kind[i] == EXACT:
            log_ratio, psi_ratio = _gamma_differences(count, a, cached_log_gamma[slot], cached_psi[slot])
            value = log_ratio - log_y_factorial[i] + a * log_alpha + count * m - (count + a) * log_total
            mean_bar[i] = count - (count + a) * share
            alpha_bar[i] = psi_ratio + log_alpha + 1.0 - log_total - (count + a) * inverse
        else:
            value, d_mean, d_alpha = _log_survival(
                count, a, m, log_alpha, log_total, share, inverse, cached_log_gamma[slot], cached_psi[slot]
            )
            mean_bar[i] = d_mean
            alpha_bar[i] = d_alpha
        each[i] = value
        total += value
    return np.full(1, total), mean_bar, alpha_bar, each


def observation_kind(censored: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(obs,)`` :data:`EXACT`, :data:`AT_LEAST` or :data:`UNINFORMATIVE` per observation."""
    censored = np.asarray(censored, dtype=bool)
    kind = np.where(censored, AT_LEAST, EXACT)
    kind[censored & (np.asarray(y) == 0)] = UNINFORMATIVE
    return kind.astype(np.int64)


class CountLoglik(Op):
    """``(total, mean_bar, alpha_bar, each) = CountLoglik()(log_mean, alpha, y, log_y_factorial, kind)``.

    ``total`` is ``(1,)``; ``mean_bar`` and ``alpha_bar`` are its derivatives, which :meth:`grad`
    returns (scaled by the output gradient), so a log density and its gradient run the kernel
    once; ``each`` is the observations' own terms (the stored pointwise log-likelihood), whose
    term ``i`` depends on ``log_mean[i]`` and ``alpha[i]`` alone, with the same derivatives.
    """

    __props__ = ()

    def make_node(self, log_mean, alpha, y, log_y_factorial, kind):
        floats = [pt.as_tensor_variable(v).astype("float64") for v in (log_mean, alpha, y, log_y_factorial)]
        kind = pt.as_tensor_variable(kind).astype("int64")
        inputs = [*floats, kind]
        for name, value in zip(("log_mean", "alpha", "y", "log_y_factorial", "kind"), inputs, strict=True):
            if value.type.ndim != 1:
                raise TypeError(f"CountLoglik: {name} must be a vector, not {value.type.ndim}-dimensional")
        return Apply(self, inputs, [pt.vector(dtype="float64") for _ in range(4)])

    def perform(self, node, inputs, output_storage):
        floats = [np.ascontiguousarray(v, dtype=np.float64) for v in inputs[:4]]
        kind = np.ascontiguousarray(inputs[4], dtype=np.int64)
        for storage, value in zip(output_storage, count_loglik(*floats, kind), strict=True):
            storage[0] = value

    def infer_shape(self, fgraph, node, shapes):
        return [(1,), shapes[0], shapes[0], shapes[0]]

    def connection_pattern(self, node):
        return [[True] * 4, [True] * 4, [False] * 4, [False] * 4, [False] * 4]

    def grad(self, inputs, output_grads):
        total_bar, *derivative_bars, each_bar = output_grads
        if any(not isinstance(g.type, DisconnectedType) for g in derivative_bars):
            raise NotImplementedError("CountLoglik has first derivatives only")
        _, mean_bar, alpha_bar, _ = self(*inputs)
        weight = 0.0
        if not isinstance(total_bar.type, DisconnectedType):
            weight = weight + total_bar[0]
        if not isinstance(each_bar.type, DisconnectedType):
            weight = weight + each_bar
        disconnected = [DisconnectedType()() for _ in range(3)]
        return [weight * mean_bar, weight * alpha_bar, *disconnected]


_count_loglik = CountLoglik()


def count_loglik_total(log_mean, alpha, y, log_y_factorial, kind) -> pt.TensorVariable:
    """The scalar sum of the observations' log-likelihoods (see the module docstring)."""
    return _count_loglik(log_mean, alpha, y, log_y_factorial, kind)[0][0]


def count_loglik_each(log_mean, alpha, y, log_y_factorial, kind) -> pt.TensorVariable:
    """``(obs,)`` each observation's log-likelihood, the terms of :func:`count_loglik_total`.

    With the same inputs, the two share one application of the Op (PyTensor merges them).
    """
    return _count_loglik(log_mean, alpha, y, log_y_factorial, kind)[3]


register_kernels({CountLoglik: count_loglik}, source_version(__file__))

r"""Latent paths of data-rich fronts, sampled in coordinates whitened by an approximate posterior.

Two paths are sampled this way: the level of a front observed period by period (its knots
:math:`\ell_1 .. \ell_{K-1}` after the first, :math:`\ell_0`, which is sampled itself; a random
walk, :math:`\rho = 1`) and the burst of a front that has one (an AR(1) from :math:`b_{-1} = 0`).
Either path :math:`x` is written

.. math::

    x = m(\theta) + L(\theta)^{-\top} \varepsilon

where :math:`Q = L L^\top` and :math:`m = Q^{-1} r` are the precision and mean of a Gaussian
approximation of its conditional posterior given the hyperparameters :math:`\theta` (and, for
the burst, the level):

* the innovations :math:`x_k - \rho x_{k-1}` as normal, with the sinh-arcsinh innovations'
  variance :math:`s_k^2\,\operatorname{Var} g_t(Z)` (tridiagonal precision;
  :func:`forecast.models.tails.sinh_arcsinh_variance`);
* each knot's (or day's) counts as a normal pseudo-observation of the log rate,
  :math:`\log((Y_k + 1/2) / E_k)` less the log rate's other terms (interventions and season;
  for the burst, the level too), with the negative binomial's delta-method precision
  :math:`\alpha E_k (Y_k + 1/2) / (\alpha E_k + Y_k + 1/2)` (:math:`Y_k` the counts,
  :math:`E_k` their days);
* on the burst, a day with no event instead as the Laplace approximation of its zero
  likelihood times its step's prior, at their joint mode (four Newton steps).  A 0 where dozens
  are expected bounds the log rate from above only, and ``log(1/2)`` with the delta method's
  precision put the approximation's mean far above where the posterior lies: 360info's Gaza
  deaths fitted alone failed with 120 divergences
  (``benchmarks/results/dynamic/single_burst_front/``).  The burst reverts to 0, so 0 is its
  steps' prior centre; the level's knots, a random walk whose prior centre is its neighbours,
  keep the delta method.

The sampler works on :math:`\varepsilon`.  The model is unchanged: the density of
:math:`\varepsilon` is the exact sinh-arcsinh density of the innovations that
:math:`x(\varepsilon)` implies, times the Jacobian :math:`\prod_k 1 / L_{kk}`; the
approximation only chooses the coordinates.  Why: variation beyond the Poisson's comes from the
path's innovations or from the negative binomial's noise, and with the innovations sampled
themselves (centred) or as standard normals (non-centred) every one had to move with the split
between the two, one leapfrog at a time.  Measured on Ethiopia's monthly battles (ACLED, one
front, 2 chains x 1000 draws): bulk ESS of the hyperparameters 280 centred, 1,235 whitened; in
the six-front backtest 9 of 12 centred fits failed on ``log_dispersion`` or ``log_sigma_level``.

The factorisation and both solves are one PyTensor Op with a Numba kernel
(:mod:`forecast.models.whitened_path`); this module computes its inputs.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from forecast.models import whitened_path as kernel
from forecast.models.numba_ops import static_shape
from forecast.models.tails import _scaled_random, sinh_arcsinh_variance
from forecast.models.tails_kernel import scaled_step_logp

#: Half an event added to each knot's count, so that an empty knot has a finite log rate.
HALF_EVENT = 0.5
#: Newton steps towards the mode of a knot with no event (see pseudo_observations).
ZERO_NEWTON_STEPS = 4


def _is_symbolic(*values) -> bool:
    return any(isinstance(v, pt.Variable) for v in values)


def pseudo_observations(step_scale, tail, dispersion, count, days, offset, zeros_at_mode=False):
    r"""``(precision, weight, target)``, each ``(front, step)``: the approximation's ingredients.

    ``precision`` is each step's (the sinh-arcsinh innovations' variance, inverted), ``weight``
    the negative binomial's delta-method precision of each knot's pseudo-observation and
    ``target`` the pseudo-observation, :math:`\log((Y_k + 1/2) / E_k)` less the other terms.
    Numpy arrays or PyTensor variables alike; ``tail`` and ``dispersion`` are ``(front,)``.
    With ``zeros_at_mode`` (the burst's path, whose steps' prior is centred at 0), a knot with
    no event gets the Laplace approximation of its likelihood times that prior at their mode.
    """
    xp = pt if _is_symbolic(step_scale, tail, dispersion, count, days, offset) else np
    precision = 1.0 / (sinh_arcsinh_variance(tail)[..., None] * step_scale**2)
    seen = days > 0
    safe_days = xp.where(seen, days, 1.0)
    exposure = dispersion[..., None] * safe_days
    weight = xp.where(seen, exposure * (count + HALF_EVENT) / (exposure + count + HALF_EVENT), 0.0)
    target = xp.log((count + HALF_EVENT) / safe_days) - offset
    if not zeros_at_mode:
        return precision, weight, target
    # A knot with no event: the Laplace approximation at the mode of its likelihood times its step's prior.
    log_mean = xp.log(safe_days) + offset
    x = -(pt.softplus(log_mean) if xp is pt else np.logaddexp(0.0, log_mean))  # where the mean is below 1
    for _ in range(ZERO_NEWTON_STEPS):
        mean = xp.exp(log_mean + x)
        gradient = -precision * x - exposure * mean / (exposure + mean)
        curvature = -precision - exposure**2 * mean / (exposure + mean) ** 2
        x = x - gradient / curvature
    mean = xp.exp(log_mean + x)
    zero_weight = exposure**2 * mean / (exposure + mean) ** 2
    zero_target = x - (exposure + mean) / exposure
    zero = seen & xp.equal(count, 0)
    return precision, xp.where(zero, zero_weight, weight), xp.where(zero, zero_target, target)


def _flat_inputs(first, step_scale, tail, dispersion, count, days, offset, rho, shape=None, zeros_at_mode=False):
    """Kernel inputs ``(a, p, r, h, g)`` broadcast to ``shape`` (``(..., front, step)``) and flattened to 2-D."""
    precision, weight, target = pseudo_observations(
        np.asarray(step_scale, dtype=float),
        np.asarray(tail, dtype=float),
        np.asarray(dispersion, dtype=float),
        np.asarray(count, dtype=float),
        np.asarray(days, dtype=float),
        np.asarray(offset, dtype=float),
        zeros_at_mode,
    )
    if shape is None:
        shape = np.broadcast_shapes(precision.shape, weight.shape, target.shape)
    rows = int(np.prod(shape[:-1]))
    vector_shape = shape[:-1]

    def matrix(v):
        return np.ascontiguousarray(np.broadcast_to(v, shape).reshape(rows, shape[-1]))

    def vector(v):
        return np.ascontiguousarray(np.broadcast_to(np.asarray(v, dtype=float), vector_shape).reshape(rows))

    return shape, (vector(first), matrix(precision), vector(rho), matrix(weight), matrix(target))


def conditional(first, step_scale, tail, dispersion, count, days, offset, rho=1.0, zeros_at_mode=False):
    """``(mean, diagonal, below)`` (numpy): the approximate conditional posterior of the path.

    Its precision :math:`Q` is tridiagonal, so its Cholesky factor :math:`L` is lower bidiagonal:
    ``diagonal`` holds :math:`L_{kk}` and ``below`` :math:`L_{k,k-1}` (0 at :math:`k = 0`).

    Parameters
    ----------
    first : (..., front)
        The value before the path: the first knot's level (``x_{-1}``); 0 for the burst.
    step_scale : (..., front, step)
        Scale of each step.
    tail, dispersion : (..., front)
        The steps' tail weight and the daily negative binomial dispersion.
    count, days, offset : (..., front, step)
        Each knot's counts, their days (0: none) and the mean of the log rate's other terms there.
    rho : float or (..., front)
        The path's persistence: ``x_k = rho x_{k-1} + step_k``; 1 for the level's random walk,
        the burst's AR(1) coefficient for the burst.
    """
    shape, (a, p, r, h, g) = _flat_inputs(
        first, step_scale, tail, dispersion, count, days, offset, rho, zeros_at_mode=zeros_at_mode
    )
    diagonal, below, u = kernel.factor(a, p, r, h, g)
    mean = kernel.back_solve(diagonal, below, u)
    return tuple(v.reshape(shape) for v in (mean, diagonal, below))


def path_of(whitened, first, step_scale, tail, dispersion, count, days, offset, rho=1.0, zeros_at_mode=False):
    """``((front, step) path, (front, step) log diagonal of the Cholesky factor)`` (PyTensor).

    ``first``, ``tail``, ``dispersion`` and ``rho`` are ``(front,)`` (``rho`` may be a number).
    """
    precision, weight, target = pseudo_observations(step_scale, tail, dispersion, count, days, offset, zeros_at_mode)
    shape = static_shape(whitened)
    first = pt.as_tensor(first)
    rho = pt.ones_like(first) * rho
    path, diagonal = kernel.whitened_path(
        whitened,
        first,
        pt.broadcast_to(precision, shape),
        rho,
        pt.broadcast_to(weight, shape),
        pt.broadcast_to(target, shape),
    )
    return path, pt.log(diagonal)


def steps_of(whitened, first, step_scale, tail, dispersion, count, days, offset, rho=1.0, zeros_at_mode=False):
    """``((front, step) steps, (front, step) log diagonal of the Cholesky factor)`` from the whitened coordinates.

    The steps are the path's innovations ``x_k - rho x_{k-1}`` (``x_{-1} = first``).
    """
    path, log_diagonal = path_of(whitened, first, step_scale, tail, dispersion, count, days, offset, rho, zeros_at_mode)
    rho = rho[:, None] if getattr(rho, "ndim", 0) == 1 else rho
    steps = path - rho * pt.concatenate([pt.as_tensor(first)[:, None], path[:, :-1]], axis=1)
    return steps, log_diagonal


def steps_and_logp(whitened, first, step_scale, tail, dispersion, count, days, offset, rho=1.0, zeros_at_mode=False):
    """``((front, step) steps, (front, step) log density)`` of the whitened coordinates, from one path.

    The density is elementwise: the steps' sinh-arcsinh density (one Numba-kernel Op,
    :mod:`forecast.models.tails_kernel`) and the Jacobian.
    """
    steps, log_diagonal = steps_of(
        whitened, first, step_scale, tail, dispersion, count, days, offset, rho, zeros_at_mode
    )
    return steps, scaled_step_logp(steps, tail, step_scale) - log_diagonal


def whitened_random(
    first, step_scale, tail, dispersion, count, days, offset, rho=1.0, rng=None, size=None, zeros_at_mode=False
):
    """Steps drawn from their prior, mapped to the whitened coordinates ``L^T (path - mean)``."""
    step_scale = np.broadcast_to(step_scale, size)
    steps = _scaled_random(np.asarray(tail)[..., None], step_scale, rng=rng, size=size)
    persistence = np.broadcast_to(np.asarray(rho, dtype=float), size[:-1])
    innovations = np.array(steps, dtype=float, copy=True)
    innovations[..., 0] += persistence * np.asarray(first, dtype=float)  # x_{-1} = first
    path = kernel.ar1_paths(innovations, persistence)
    return whiten(path, first, step_scale, tail, dispersion, count, days, offset, rho, zeros_at_mode)


def whiten(path, first, step_scale, tail, dispersion, count, days, offset, rho=1.0, zeros_at_mode=False):
    """The whitened coordinates ``L^T path - L^{-1} r`` of a path (numpy), the inverse of :func:`path_of`."""
    path = np.asarray(path, dtype=float)
    shape, (a, p, r, h, g) = _flat_inputs(
        first, step_scale, tail, dispersion, count, days, offset, rho, path.shape, zeros_at_mode
    )
    diagonal, below, u = kernel.factor(a, p, r, h, g)
    x = path.reshape(diagonal.shape)
    # (L^T x)_k = L_kk x_k + L_{k+1,k} x_{k+1}
    transposed = diagonal * x + np.concatenate([below[:, 1:] * x[:, 1:], np.zeros_like(x[:, :1])], axis=1)
    return (transposed - u).reshape(shape)


def knot_sums(values, weights, level_periods: int, n_periods: int):
    """``(front, knot)`` sums of ``values * weights`` over each knot's ``level_periods`` periods (PyTensor).

    ``values`` and ``weights`` are ``(front, n_periods)``; knot ``k`` holds periods
    ``k * level_periods`` to ``(k + 1) * level_periods - 1`` (the last knot may be shorter).
    A reshape and a sum, not a product with a constant 0/1 matrix: PyTensor's gradient stores
    that matrix's transpose as a non-contiguous constant, which Numba compiles in as a pointer
    to this process's memory, and the compiled model could no longer be cached on disk.
    ``n_periods`` is given because shared data (the backtest's) leave the shapes unknown to the graph.
    """
    weighted = pt.as_tensor(values * weights)
    if level_periods == 1:
        return weighted
    n_knots = -(-n_periods // level_periods)
    padding = pt.zeros((weighted.shape[0], n_knots * level_periods - n_periods))
    whole = pt.concatenate([weighted, padding], axis=1)
    return whole.reshape((weighted.shape[0], n_knots, level_periods)).sum(axis=2)

r"""The sinh-arcsinh tail: the heavy tails of the dynamic model's level steps and burst shocks.

:math:`g_t(z) = \sinh\big((1 + t)\,\operatorname{asinh} z\big) / (1 + t)` of a standard normal
:math:`z` (the sinh-arcsinh family of Jones and Pewsey 2009, symmetric, scaled to slope 1 at 0):
normal at :math:`t = 0`; for :math:`t > 0` its tails decay like :math:`e^{-c\,|x|^{2/(1+t)}}`,
heavier than the normal's but lighter than any exponential's while :math:`t < 1`.  That last
property is why this family and not Tukey's *h* or a Student-t: the rate is the exponential of
the level, and with power-tailed steps (Tukey's *h*, Student-t) its forecast mean is infinite
for every tail weight (measured: one monthly backtest forecast of Ethiopia's battles with a mean
of 2.3 million events against 24 observed).  With :math:`t < 1` every moment of
:math:`e^{\sigma g_t(z)}` is finite.

Sampling :math:`z` keeps the innovations non-centred in the tail weight; :func:`sinh_arcsinh_logp`
is the density of the steps of data-rich fronts, whose level is sampled in whitened coordinates
(:mod:`forecast.models.whitened`).  Inverse and density are closed forms.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

#: The tail weight ``t`` lies in ``(0, TAIL_WEIGHT_MAX)``.  At ``t = 1/2`` a step of 5 ordinary step
#: scales costs 5.3 nats of log density more than no step, where the normal's costs 12.5 (a changepoint is cheap),
#: and :math:`E[e^{g_t(z)}] = 3.3` against the normal's 1.65; at ``t = 1`` the tails are exponential
#: and :math:`E[e^{\sigma g_t(z)}]` is infinite for ``sigma >= 1``.
TAIL_WEIGHT_MAX = 0.5
#: ``log Var g_t(Z) = c1 t + c2 t^2`` on ``[0, TAIL_WEIGHT_MAX]``: a least-squares fit to the exact
#: variance :math:`(P_{2(1+t)} - 1) / (2 (1 + t)^2)`, :math:`P_q` Jones and Pewsey's Bessel-function
#: moment; largest error 9e-5 in the log (tests/test_dynamic_model.py).  Only the whitening uses it.
_LOG_VARIANCE_COEFFICIENTS = (0.92355432, 0.47078432)


def _module(*values):
    return pt if any(isinstance(v, pt.Variable) for v in values) else np


def sinh_arcsinh(z, t):
    """``g_t(z) = sinh((1 + t) asinh z) / (1 + t)``: a standard normal ``z`` made heavy-tailed by ``t``.

    Works on PyTensor variables and numpy arrays alike.
    """
    m = _module(z, t)
    a = 1.0 + t
    return m.sinh(a * m.arcsinh(z)) / a


def sinh_arcsinh_inverse(value, t):
    """The ``z`` with ``g_t(z) = value``: ``sinh(asinh((1 + t) value) / (1 + t))``."""
    m = _module(value, t)
    a = 1.0 + t
    return m.sinh(m.arcsinh(a * value) / a)


def sinh_arcsinh_logp(value, t):
    """Log density of ``g_t(Z)``, ``Z ~ N(0, 1)``, at ``value``.

    With ``w = asinh((1 + t) value) / (1 + t)`` and ``z = sinh(w)``,
    ``dz/dvalue = cosh(w) / sqrt(1 + (1 + t)^2 value^2)``, so
    ``log p = log phi(z) + log cosh(w) - log(1 + (1 + t)^2 value^2) / 2``.
    """
    m = _module(value, t)
    a = 1.0 + t
    av = a * value
    w = m.arcsinh(av) / a
    z = m.sinh(w)
    abs_w = m.abs(w)
    log_cosh = abs_w + m.log1p(m.exp(-2.0 * abs_w)) - np.log(2.0)
    return -0.5 * z * z - 0.5 * np.log(2.0 * np.pi) + log_cosh - 0.5 * m.log1p(av * av)


def sinh_arcsinh_variance(t):
    """``Var g_t(Z)`` (approximate, see :data:`_LOG_VARIANCE_COEFFICIENTS`); 1 at ``t = 0``."""
    m = _module(t)
    c1, c2 = _LOG_VARIANCE_COEFFICIENTS
    return m.exp(t * (c1 + c2 * t))


def _scaled_logp(value, t, scale):
    return sinh_arcsinh_logp(value / scale, t) - pt.log(scale)


def _scaled_random(t, scale, rng=None, size=None):
    z = rng.standard_normal(size=size)
    return scale * sinh_arcsinh(z, t)

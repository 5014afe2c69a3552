r"""Tukey's h distribution: the heavy tails of the dynamic model's level steps and burst shocks.

:math:`g_h(z) = z\,e^{h z^2 / 2}` of a standard normal :math:`z`: normal at :math:`h = 0`,
with power tails of index :math:`1/h` (Tukey 1977; Headrick et al. 2008).  Sampling :math:`z`
keeps the innovations non-centred in the tail weight; :func:`tukey_h_logp` is the density of the
steps of data-rich fronts, whose level is sampled in whitened coordinates (:mod:`forecast.models.whitened`).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.compile.builders import OpFromGraph

#: The tail weight ``h`` lies in ``(0, TAIL_WEIGHT_MAX)``.  Below 1/4 the innovations have a finite
#: fourth moment (below 1/2 a finite variance).  With ``h`` up to 1/2, draws near 1/2 made a few
#: monthly forecasts explode: a forecast mean of 2e11 events for Ethiopia's battles (90% interval 39 to
#: 253) at one backtest origin, enough to wreck a mean score; :math:`e^{\sigma g_h(z)}` grows
#: like :math:`e^{c z e^{h z^2/2}}`.  The bound does not cure this: the rate is the exponential of the
#: level, and with power-tailed steps its mean is infinite for every ``h > 0`` (see the README).
TAIL_WEIGHT_MAX = 0.25
#: Halley iterations of the Lambert W function (from an initial guess within 5% for x >= 0).
_LAMBERT_ITERATIONS = 4


def tukey_h(z, h):
    """``g_h(z) = z exp(h z^2 / 2)``: a standard normal ``z`` made heavy-tailed by the tail weight ``h``.

    Works on PyTensor variables and numpy arrays alike (it only multiplies and exponentiates).
    """
    exp = pt.exp if isinstance(z, pt.Variable) or isinstance(h, pt.Variable) else np.exp
    return z * exp(0.5 * h * z * z)


def _lambert_w_iterations(x: pt.TensorVariable) -> pt.TensorVariable:
    log1p_x = pt.log1p(x)
    w = log1p_x * (1.0 - pt.log1p(log1p_x) / (2.0 + log1p_x))
    for _ in range(_LAMBERT_ITERATIONS):
        ew = pt.exp(w)
        f = w * ew - x
        w = w - f / (ew * (w + 1.0) - (w + 2.0) * f / (2.0 * w + 2.0))
    return w


def _lambert_w_gradient(inputs, outputs, output_gradients):
    w = outputs[0]
    return [output_gradients[0] / (pt.exp(w) * (1.0 + w))]


_flat = pt.dvector("x")
#: The iterations as one opaque operation with its exact derivative W' = 1 / (e^W (1 + W)).
#: Inlined, PyTensor's graph rewriter and the derivative through the iterations took minutes
#: (measured: 142 s to compile W and its gradient on a vector; the rewriter hit its limit).
_LAMBERT_W = OpFromGraph([_flat], [_lambert_w_iterations(_flat)], inline=False, lop_overrides=_lambert_w_gradient)


def _lambert_w(x: pt.TensorVariable) -> pt.TensorVariable:
    """Principal branch of the Lambert W function for ``x >= 0`` (Halley's method).

    Starts from Winitzki's approximation (relative error under 5% on ``x >= 0``) and takes
    :data:`_LAMBERT_ITERATIONS` Halley steps, each of which at least triples the correct digits.
    """
    x = pt.as_tensor(x, dtype="float64")
    return _LAMBERT_W(x.ravel()).reshape(x.shape)


def tukey_h_logp(value: pt.TensorVariable, h: pt.TensorVariable) -> pt.TensorVariable:
    """Log density of ``g_h(Z)``, ``Z ~ N(0, 1)``, at ``value``.

    With ``W = W(h value^2)`` (Lambert W), ``h z^2 = W`` at the ``z`` that maps to ``value``, and
    ``log p = log phi(z) - log g_h'(z) = -(1 + h) W / (2 h) - log(1 + W) - log(2 pi) / 2``.
    ``W / h`` tends to ``value^2`` as ``h -> 0`` (the normal density).
    """
    w = _lambert_w(h * value * value)
    return -0.5 * (1.0 + h) * w / h - pt.log1p(w) - 0.5 * np.log(2.0 * np.pi)


def _scaled_tukey_h_logp(value, h, scale):
    return tukey_h_logp(value / scale, h) - pt.log(scale)


def _scaled_tukey_h_random(h, scale, rng=None, size=None):
    z = rng.standard_normal(size=size)
    return scale * tukey_h(z, h)

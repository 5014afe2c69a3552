r"""The whitened paths' step density as one PyTensor Op, with a Numba kernel.

The density of a step :math:`v` with scale :math:`s` and tail weight :math:`t`
(:func:`forecast.models.tails._scaled_logp`, :math:`a = 1 + t`, :math:`u = v / s`):

.. math::

    w = \operatorname{asinh}(a u) / a,\quad z = \sinh w,\quad
    \log p = -\tfrac12 z^2 - \tfrac12\log 2\pi + \tfrac12\log(1 + z^2)
             - \tfrac12\log(1 + a^2 u^2) - \log s

(:math:`\tfrac12\log(1 + z^2)` is :math:`\log\cosh w`).  With :math:`r = a u`,
:math:`q = \sqrt{1 + r^2}` and :math:`\partial f/\partial z = -z + z / (1 + z^2)`:

.. math::

    \frac{\partial \log p}{\partial u} = \frac{\partial f}{\partial z}\,\frac{\cosh w}{q} - \frac{a r}{q^2},\qquad
    \frac{\partial \log p}{\partial a} = \frac{\partial f}{\partial z}\cosh w\,\frac{u / q - w}{a} - \frac{u r}{q^2}

and :math:`\partial/\partial v = (\partial/\partial u) / s`,
:math:`\partial/\partial s = -(u\,\partial/\partial u + 1) / s`.

:class:`StepLogp` returns the density and these three derivatives from one loop, and its
gradient reuses them.  Why an Op: written with PyTensor's operations, the density and its
gradient were a third of a gradient evaluation of the 45-series ACLED panel (0.26 of 0.77 ms,
1,980 level steps), the largest single part.  ``tests/test_tails_kernel.py`` holds the Op equal
to :func:`~forecast.models.tails.sinh_arcsinh_logp` and its gradient to PyTensor's.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from forecast.models.numba_ops import register_kernels, source_version, static_shape

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@numba.njit(cache=True)
def step_logp(steps, tail, scale):
    """``(logp, d/d steps, d/d tail, d/d scale)``, each ``(row, step)``; ``tail`` is ``(row,)``."""
    n_rows, n_steps = steps.shape
    logp = np.empty((n_rows, n_steps))
    steps_bar = np.empty((n_rows, n_steps))
    tail_bar = np.empty((n_rows, n_steps))
    scale_bar = np.empty((n_rows, n_steps))
    for i in range(n_rows):
        a = 1.0 + tail[i]
        for k in range(n_steps):
            s = scale[i, k]
            u = steps[i, k] / s
            r = a * u
            q2 = 1.0 + r * r
            q = math.sqrt(q2)
            # asinh(r) / a, sinh and cosh from one log and one exp (asinh(|r|) = log1p(|r| + r^2 / (1 + q))).
            w = math.log1p(abs(r) + r * r / (1.0 + q)) / a
            if r < 0.0:
                w = -w
            e = math.exp(w)
            z = 0.5 * (e - 1.0 / e)
            cosh = 0.5 * (e + 1.0 / e)
            z2 = z * z
            # log cosh w - log(1 + r^2) / 2 - log s in one log: cosh w = sqrt(1 + z^2), q = sqrt(1 + r^2).
            logp[i, k] = -0.5 * z2 - _HALF_LOG_2PI + math.log(cosh / (q * s))
            f_z = -z + z / (1.0 + z2)
            d_u = f_z * cosh / q - a * r / q2
            steps_bar[i, k] = d_u / s
            tail_bar[i, k] = f_z * cosh * (u / q - w) / a - u * r / q2
            scale_bar[i, k] = -(u * d_u + 1.0) / s
    return logp, steps_bar, tail_bar, scale_bar


class StepLogp(Op):
    """``(logp, steps_bar, tail_bar, scale_bar) = StepLogp()(steps, tail, scale)``: see the module docstring."""

    __props__ = ()

    def make_node(self, steps, tail, scale):
        steps, tail, scale = (pt.as_tensor_variable(v).astype("float64") for v in (steps, tail, scale))
        if steps.type.ndim != 2 or tail.type.ndim != 1:
            raise TypeError("StepLogp: steps must be (row, step) and tail (row,)")
        scale = pt.broadcast_to(scale, static_shape(steps))
        return Apply(self, [steps, tail, scale], [pt.matrix(dtype="float64") for _ in range(4)])

    def perform(self, node, inputs, output_storage):
        steps, tail, scale = (np.ascontiguousarray(v, dtype=np.float64) for v in inputs)
        for storage, value in zip(output_storage, step_logp(steps, tail, scale), strict=True):
            storage[0] = value

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0]] * 4

    def connection_pattern(self, node):
        return [[True, True, True, True]] * 3

    def grad(self, inputs, output_grads):
        logp_bar, *others = output_grads
        if any(not isinstance(g.type, DisconnectedType) for g in others):
            raise NotImplementedError("StepLogp has first derivatives only")
        _, steps_bar, tail_bar, scale_bar = self(*inputs)
        return [logp_bar * steps_bar, (logp_bar * tail_bar).sum(axis=1), logp_bar * scale_bar]


_step_logp = StepLogp()


def scaled_step_logp(steps, tail, scale) -> pt.TensorVariable:
    """``(row, step)`` log density of sinh-arcsinh steps (``tail`` per row, ``scale`` broadcast to ``steps``)."""
    return _step_logp(steps, tail, scale)[0]


register_kernels({StepLogp: step_logp}, source_version(__file__))

r"""The whitened path map as one PyTensor Op, with a Numba kernel and a hand-written gradient.

:mod:`forecast.models.whitened` writes a latent path as :math:`x = L^{-\top}(L^{-1} r + \varepsilon)`,
:math:`Q = L L^\top` a tridiagonal precision.  Per front, with the path's persistence
:math:`\rho`, the step precisions :math:`p_k`, the pseudo-observations' weights :math:`h_k` and
targets :math:`g_k` and the first value :math:`a` (the path starts from :math:`x_{-1} = a`):

.. math::

    Q_{kk} = p_k + \rho^2 p_{k+1} + h_k,\quad Q_{k-1,k} = -\rho p_k,\quad
    r_k = h_k g_k + [k = 0]\,\rho\,p_0\,a

:math:`L` is lower bidiagonal (diagonal :math:`D_k`, below it :math:`B_k`): one pass factors
:math:`Q` and solves :math:`L u = r`, a second solves :math:`L^\top x = u + \varepsilon`.

Why an Op: written with PyTensor's own operations (a scan for the factorisation, parallel
prefix sums for the two solves and for the path's recurrence) the shipped data's graph had
2,814 nodes; PyTensor's rewrites and Numba took 400-630 s to compile it cold, and its gradient
cost 0.27 ms.  Here the map and its reverse-mode derivative are two loops over the path each,
the same code in every backend: :meth:`WhitenedPath.perform` calls the Numba-compiled kernels,
and PyTensor's Numba backend (nutpie's) inlines them, with a cache key so that a compiled
model is still cached on disk.
"""

from __future__ import annotations

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from forecast.models.numba_ops import register_kernels, source_version


@numba.njit(cache=True)
def factor(a, p, r, h, g):
    """``(D, B, u)``, each ``(front, step)``: the factor ``L`` of ``Q`` and ``u = L^{-1} r``."""
    n_fronts, n_steps = p.shape
    diagonal = np.empty((n_fronts, n_steps))
    below = np.zeros((n_fronts, n_steps))
    u = np.empty((n_fronts, n_steps))
    for f in range(n_fronts):
        rho = r[f]
        for k in range(n_steps):
            q = p[f, k] + h[f, k]
            if k + 1 < n_steps:
                q += rho * rho * p[f, k + 1]
            rhs = h[f, k] * g[f, k]
            if k == 0:
                rhs += rho * p[f, 0] * a[f]
                diagonal[f, 0] = np.sqrt(q)
                u[f, 0] = rhs / diagonal[f, 0]
            else:
                b = -rho * p[f, k] / diagonal[f, k - 1]
                below[f, k] = b
                diagonal[f, k] = np.sqrt(q - b * b)
                u[f, k] = (rhs - b * u[f, k - 1]) / diagonal[f, k]
    return diagonal, below, u


@numba.njit(cache=True)
def back_solve(diagonal, below, v):
    """``x = L^{-T} v``: ``x_k = (v_k - B_{k+1} x_{k+1}) / D_k``, from the last step back."""
    n_fronts, n_steps = v.shape
    x = np.empty((n_fronts, n_steps))
    for f in range(n_fronts):
        x[f, n_steps - 1] = v[f, n_steps - 1] / diagonal[f, n_steps - 1]
        for k in range(n_steps - 2, -1, -1):
            x[f, k] = (v[f, k] - below[f, k + 1] * x[f, k + 1]) / diagonal[f, k]
    return x


@numba.njit(cache=True)
def path(w, a, p, r, h, g):
    """``(x, D)``: the path of the whitened coordinates ``w`` and the factor's diagonal."""
    diagonal, below, u = factor(a, p, r, h, g)
    return back_solve(diagonal, below, u + w), diagonal


@numba.njit(cache=True)
def path_gradient(w, a, p, r, h, g, x_bar, d_bar):
    """The gradients of ``sum(x * x_bar) + sum(D * d_bar)`` with respect to ``(w, a, p, r, h, g)``.

    Reverse mode through the three loops of :func:`path`, in the opposite order.
    """
    n_fronts, n_steps = p.shape
    diagonal, below, u = factor(a, p, r, h, g)
    x = back_solve(diagonal, below, u + w)
    w_bar = np.zeros((n_fronts, n_steps))
    a_bar = np.zeros(n_fronts)
    p_bar = np.zeros((n_fronts, n_steps))
    r_bar = np.zeros(n_fronts)
    h_bar = np.zeros((n_fronts, n_steps))
    g_bar = np.zeros((n_fronts, n_steps))
    xb = np.empty(n_steps)
    db = np.empty(n_steps)
    bb = np.zeros(n_steps)
    ub = np.empty(n_steps)
    qd = np.zeros(n_steps)
    qb = np.zeros(n_steps)
    for f in range(n_fronts):
        rho = r[f]
        for k in range(n_steps):
            xb[k] = x_bar[f, k]
            db[k] = d_bar[f, k]
            bb[k] = 0.0
            qd[k] = 0.0
            qb[k] = 0.0
        # x_k = (v_k - B_{k+1} x_{k+1}) / D_k, computed from the last step back.
        for k in range(n_steps):
            d = diagonal[f, k]
            ub[k] = xb[k] / d  # v = u + w
            db[k] -= xb[k] * x[f, k] / d
            if k + 1 < n_steps:
                bb[k + 1] -= xb[k] * x[f, k + 1] / d
                xb[k + 1] -= xb[k] * below[f, k + 1] / d
        for k in range(n_steps):
            w_bar[f, k] = ub[k]
        # u_k = (rhs_k - B_k u_{k-1}) / D_k, computed forwards.
        rhs0_bar = 0.0
        for k in range(n_steps - 1, -1, -1):
            d = diagonal[f, k]
            rhs_bar = ub[k] / d
            db[k] -= ub[k] * u[f, k] / d
            if k > 0:
                bb[k] -= ub[k] * u[f, k - 1] / d
                ub[k - 1] -= ub[k] * below[f, k] / d
            h_bar[f, k] += rhs_bar * g[f, k]
            g_bar[f, k] += rhs_bar * h[f, k]
            if k == 0:
                rhs0_bar = rhs_bar
        # D_k = sqrt(Q_kk - B_k^2), B_k = Q_{k-1,k} / D_{k-1}.
        for k in range(n_steps - 1, 0, -1):
            s = db[k] / (2.0 * diagonal[f, k])
            qd[k] += s
            bb[k] -= 2.0 * below[f, k] * s
            qb[k] += bb[k] / diagonal[f, k - 1]
            db[k - 1] -= bb[k] * below[f, k] / diagonal[f, k - 1]
        qd[0] += db[0] / (2.0 * diagonal[f, 0])
        # Q_kk = p_k + rho^2 p_{k+1} + h_k, Q_{k-1,k} = -rho p_k, rhs_0 += rho p_0 a.
        for k in range(n_steps):
            p_bar[f, k] += qd[k]
            h_bar[f, k] += qd[k]
            if k + 1 < n_steps:
                p_bar[f, k + 1] += qd[k] * rho * rho
                r_bar[f] += qd[k] * 2.0 * rho * p[f, k + 1]
            if k > 0:
                p_bar[f, k] -= rho * qb[k]
                r_bar[f] -= p[f, k] * qb[k]
        p_bar[f, 0] += rhs0_bar * rho * a[f]
        r_bar[f] += rhs0_bar * p[f, 0] * a[f]
        a_bar[f] = rhs0_bar * rho * p[f, 0]
    return w_bar, a_bar, p_bar, r_bar, h_bar, g_bar


def _floats(values):
    return [np.ascontiguousarray(v, dtype=np.float64) for v in values]


class WhitenedPath(Op):
    """``(x, D) = WhitenedPath()(w, a, p, r, h, g)``; ``a`` and ``r`` are ``(front,)``, the rest ``(front, step)``."""

    __props__ = ()

    def make_node(self, w, a, p, r, h, g):
        inputs = [pt.as_tensor_variable(v).astype("float64") for v in (w, a, p, r, h, g)]
        for name, value, ndim in zip("waprhg", inputs, (2, 1, 2, 1, 2, 2), strict=True):
            if value.type.ndim != ndim:
                raise TypeError(f"WhitenedPath: {name} must have {ndim} dimensions, not {value.type.ndim}")
        return Apply(self, inputs, [pt.matrix(dtype="float64"), pt.matrix(dtype="float64")])

    def perform(self, node, inputs, output_storage):
        x, diagonal = path(*_floats(inputs))
        output_storage[0][0] = x
        output_storage[1][0] = diagonal

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0], shapes[0]]

    def grad(self, inputs, output_grads):
        x_bar, d_bar = (pt.zeros_like(inputs[0]) if isinstance(g.type, DisconnectedType) else g for g in output_grads)
        return WhitenedPathGradient()(*inputs, x_bar, d_bar)


class WhitenedPathGradient(Op):
    """The gradients of :class:`WhitenedPath`'s inputs (not differentiable itself: NUTS needs one order)."""

    __props__ = ()

    def make_node(self, w, a, p, r, h, g, x_bar, d_bar):
        inputs = [pt.as_tensor_variable(v).astype("float64") for v in (w, a, p, r, h, g, x_bar, d_bar)]
        return Apply(self, inputs, [v.type() for v in inputs[:6]])

    def perform(self, node, inputs, output_storage):
        for storage, value in zip(output_storage, path_gradient(*_floats(inputs)), strict=True):
            storage[0] = value

    def infer_shape(self, fgraph, node, shapes):
        return list(shapes[:6])


whitened_path = WhitenedPath()


@numba.njit(cache=True)
def ar1(u, a):
    """``x_t = a x_{t-1} + u_t`` (``x_0 = u_0``) along the last axis; ``u`` ``(front, period)``, ``a`` ``(front,)``."""
    n_fronts, n_periods = u.shape
    x = np.empty((n_fronts, n_periods))
    for f in range(n_fronts):
        x[f, 0] = u[f, 0]
        for t in range(1, n_periods):
            x[f, t] = a[f] * x[f, t - 1] + u[f, t]
    return x


def ar1_paths(u, a) -> np.ndarray:
    """:func:`ar1` over leading (draw) axes: ``u`` ``(..., front, period)``, ``a`` broadcast to ``(..., front)``."""
    u = np.asarray(u, dtype=float)
    a = np.ascontiguousarray(np.broadcast_to(np.asarray(a, dtype=float), u.shape[:-1])).reshape(-1)
    return ar1(np.ascontiguousarray(u).reshape(-1, u.shape[-1]), a).reshape(u.shape)


@numba.njit(cache=True)
def ar1_gradient(u, a, x_bar):
    """The gradients of ``sum(ar1(u, a) * x_bar)`` with respect to ``u`` and ``a``."""
    n_fronts, n_periods = u.shape
    x = ar1(u, a)
    u_bar = np.empty((n_fronts, n_periods))
    a_bar = np.zeros(n_fronts)
    for f in range(n_fronts):
        u_bar[f, n_periods - 1] = x_bar[f, n_periods - 1]
        for t in range(n_periods - 2, -1, -1):
            u_bar[f, t] = x_bar[f, t] + a[f] * u_bar[f, t + 1]
        for t in range(1, n_periods):
            a_bar[f] += u_bar[f, t] * x[f, t - 1]
    return u_bar, a_bar


class AR1(Op):
    """``ar1(u, a)`` as an Op: the burst's path from its innovations (one loop, not prefix sums)."""

    __props__ = ()

    def make_node(self, u, a):
        u, a = (pt.as_tensor_variable(v).astype("float64") for v in (u, a))
        if u.type.ndim != 2 or a.type.ndim != 1:
            raise TypeError("AR1: u must be (front, period) and a (front,)")
        return Apply(self, [u, a], [pt.matrix(dtype="float64")])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = ar1(*_floats(inputs))

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0]]

    def grad(self, inputs, output_grads):
        return AR1Gradient()(*inputs, output_grads[0])


class AR1Gradient(Op):
    """The gradients of :class:`AR1`'s inputs."""

    __props__ = ()

    def make_node(self, u, a, x_bar):
        inputs = [pt.as_tensor_variable(v).astype("float64") for v in (u, a, x_bar)]
        return Apply(self, inputs, [inputs[0].type(), inputs[1].type()])

    def perform(self, node, inputs, output_storage):
        for storage, value in zip(output_storage, ar1_gradient(*_floats(inputs)), strict=True):
            storage[0] = value

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0], shapes[1]]


ar1_path = AR1()

register_kernels(
    {WhitenedPath: path, WhitenedPathGradient: path_gradient, AR1: ar1, AR1Gradient: ar1_gradient},
    source_version(__file__),
)

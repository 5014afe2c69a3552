r"""A digamma function that PyTensor's Numba backend can cache on disk.

Why this exists: the negative binomial likelihood's gradient with respect to the dispersion
contains :math:`\psi(y + \alpha) - \psi(\alpha)`.  PyTensor 2.38 turns ``psi`` into a call
through a SciPy Cython function pointer, and "functions that call a function pointer can't
be cached", so the whole log-density graph loses its cache key and nutpie recompiles it
with Numba on every fit (measured on the shipped data: 36 s of compile per fit in a fresh
process; 26 s with this module).  Registering a pure-Numba digamma for the ``Psi`` scalar
op, through PyTensor's own dispatch extension point
(:func:`pytensor.link.numba.dispatch.basic.register_funcify_and_cache_key`), gives the graph
a cache key again.

The implementation is the classical one: reflection for negative arguments,
:math:`\psi(x) = -\pi\cot(\pi x) + \psi(1 - x)`, the recurrence
:math:`\psi(x) = \psi(x + 1) - 1/x` up to :math:`x \ge 10`, then the asymptotic series

.. math::

    \psi(x) \approx \ln x - \frac{1}{2x} - \sum_{k=1}^{7} \frac{B_{2k}}{2k\,x^{2k}},

whose first omitted term is below :math:`10^{-16}` at :math:`x = 10`.  Poles (zero and the
negative integers) give NaN, as SciPy's ``digamma`` does.  It is tested against SciPy.
"""

from __future__ import annotations

import logging
import math

log = logging.getLogger(__name__)

#: Part of the cache key: change it whenever the implementation below changes.
IMPLEMENTATION_VERSION = "forecast-digamma-1"

_registered = False


def digamma(x: float) -> float:
    """The digamma function of a float (pure Python; Numba compiles it unchanged)."""
    if x <= 0.0 and x == math.floor(x):
        return math.nan
    result = 0.0
    if x < 0.0:
        result = -math.pi / math.tan(math.pi * x)
        x = 1.0 - x
    while x < 10.0:
        result -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    # Bernoulli terms B_2k / (2k): 1/12, -1/120, 1/252, -1/240, 1/132, -691/32760, 1/12.
    series = 691.0 / 32760.0 - f / 12.0
    for coefficient in (1.0 / 132.0, 1.0 / 240.0, 1.0 / 252.0, 1.0 / 120.0):
        series = coefficient - f * series
    series = f * (1.0 / 12.0 - f * series)
    return result + math.log(x) - 0.5 / x - series


def register_cacheable_digamma() -> bool:
    """Make PyTensor's Numba backend use :func:`digamma` for ``psi``, with a cache key.

    Idempotent.  Returns False (and logs why) where this PyTensor has no such extension point,
    in which case fits still work and only lose the compile cache.
    """
    global _registered
    if _registered:
        return True
    try:
        from pytensor.link.numba.dispatch import basic as numba_basic
        from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key
        from pytensor.link.numba.dispatch.scalar import scalar_op_cache_key
        from pytensor.scalar.math import Psi
    except ImportError as error:  # pragma: no cover - depends on the installed PyTensor
        log.info("nutpie's compiled model will not be cached on disk: %s", error)
        return False

    compiled = numba_basic.numba_njit(digamma)

    @register_funcify_and_cache_key(Psi)
    def numba_funcify_psi(op, node, **kwargs):  # noqa: ARG001 - PyTensor's dispatch signature
        return compiled, scalar_op_cache_key(op, implementation=IMPLEMENTATION_VERSION)

    _registered = True
    return True

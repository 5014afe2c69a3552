"""The cacheable digamma used by nutpie's Numba compile equals SciPy's, and restores the cache key."""

from __future__ import annotations

import math

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import special

from forecast.models.numba_digamma import digamma, register_cacheable_digamma


@pytest.mark.parametrize(
    "x",
    [1e-8, 1e-3, 0.1, 0.5, 1.0, 1.5, 2.0, 3.7, 9.99, 10.0, 10.01, 55.5, 1e3, 1e6, 1e12, -0.5, -1.5, -7.25, -100.3],
)
def test_digamma_matches_scipy(x):
    expected = special.digamma(x)
    assert digamma(x) == pytest.approx(expected, rel=1e-13, abs=1e-13)


def test_digamma_is_nan_at_the_poles_like_scipy():
    for x in (0.0, -1.0, -2.0, -30.0):
        assert math.isnan(digamma(x))
        assert math.isnan(special.digamma(x)) or math.isinf(special.digamma(x))


def test_digamma_matches_scipy_on_a_dense_grid():
    grid = np.concatenate([np.geomspace(1e-6, 1e8, 2000), -np.linspace(0.01, 20.99, 700) - 1e-3])
    grid = grid[grid != np.floor(grid)]
    ours = np.array([digamma(float(x)) for x in grid])
    positive = grid > 0
    np.testing.assert_allclose(ours[positive], special.digamma(grid[positive]), rtol=2e-13, atol=1e-12)
    # Near the poles the reflection formula loses a few digits (SciPy's does too).
    np.testing.assert_allclose(ours[~positive], special.digamma(grid[~positive]), rtol=1e-11)


def test_registered_psi_runs_in_numba_mode_and_has_a_cache_key():
    from pytensor.link.numba.dispatch.basic import numba_funcify_and_cache_key

    assert register_cacheable_digamma()
    assert register_cacheable_digamma()  # idempotent
    x = pt.dvector("x")
    fn = pytensor.function([x], pt.psi(x), mode="NUMBA")
    values = np.array([0.25, 1.0, 7.5, 123.0])
    np.testing.assert_allclose(fn(values), special.digamma(values), rtol=1e-13)
    node = pt.psi(pt.dscalar()).owner
    _, key = numba_funcify_and_cache_key(node.op.scalar_op, node=node)
    assert key is not None

"""The disk-cached nutpie compile gives exactly what nutpie's own compile gives, per graph."""

from __future__ import annotations

import ctypes

import numpy as np
import pymc as pm
import pytest

from forecast.models.numba_digamma import register_cacheable_digamma
from forecast.models.nutpie_compile import CompiledModels, compile_nutpie_model

nutpie = pytest.importorskip("nutpie")


def _count_model(counts: np.ndarray) -> pm.Model:
    """A small hierarchical negative binomial model with its counts as graph constants."""
    with pm.Model(coords={"front": ["a", "b"]}) as model:
        level = pm.Normal("level", 1.0, 1.0)
        offset = pm.Normal("offset", 0.0, 1.0, dims="front")
        dispersion = pm.Gamma("dispersion", 2.0, 0.5)
        rate = pm.Deterministic("rate", pm.math.exp(level + 0.5 * offset), dims="front")
        pm.NegativeBinomial("y", mu=rate[[0, 0, 1, 1, 1]], alpha=dispersion, observed=counts)
    return model


def _logp_and_gradient(compiled, point: np.ndarray) -> tuple[float, np.ndarray]:
    """Call the compiled C log density as nuts-rs does."""
    function = compiled.compiled_logp_func.ctypes
    x = np.ascontiguousarray(point, dtype=np.float64)
    gradient = np.zeros_like(x)
    logp = np.zeros(())
    status = function(
        ctypes.c_uint64(len(x)),
        x.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
        gradient.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
        logp.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
        ctypes.c_void_p(compiled.user_data.ctypes.data),
    )
    assert status == 0
    return float(logp), gradient


@pytest.fixture(scope="module", autouse=True)
def _digamma():
    register_cacheable_digamma()


def test_log_density_equals_nutpie_and_differs_with_the_data():
    points = np.random.default_rng(0).normal(size=(3, 4))
    first = compile_nutpie_model(_count_model(np.array([1, 3, 0, 7, 2])))
    reference = nutpie.compile_pymc_model(_count_model(np.array([1, 3, 0, 7, 2])))
    other = compile_nutpie_model(_count_model(np.array([9, 3, 0, 7, 2])))
    for point in points:
        logp, gradient = _logp_and_gradient(first, point)
        expected_logp, expected_gradient = _logp_and_gradient(reference, point)
        assert logp == pytest.approx(expected_logp, rel=1e-12)
        np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-12)
        # Only a constant differs, so a cache keyed on anything but the graph's content would
        # have handed this model the first one's compiled density.
        assert _logp_and_gradient(other, point)[0] != pytest.approx(logp, rel=1e-6)


def test_second_compile_of_a_graph_is_loaded_from_the_disk_cache():
    counts = np.array([4, 0, 2, 2, 5])
    compile_nutpie_model(_count_model(counts))
    again = compile_nutpie_model(_count_model(counts))
    assert again.compiled_logp_func.cache_hits == 1
    assert again.compiled_expand_func.cache_hits == 1


def test_draws_are_identical_to_nutpie_for_the_same_seed():
    counts = np.array([2, 5, 1, 0, 3])
    settings = {"draws": 30, "tune": 30, "chains": 2, "seed": 7, "progress_bar": False}
    ours = nutpie.sample(compile_nutpie_model(_count_model(counts), var_names=["level", "rate"]), **settings)
    theirs = nutpie.sample(nutpie.compile_pymc_model(_count_model(counts), var_names=["level", "rate"]), **settings)
    for name in ("level", "rate"):
        np.testing.assert_array_equal(ours.posterior[name].to_numpy(), theirs.posterior[name].to_numpy())


def _data_model(counts: np.ndarray, fronts: tuple[str, ...] = ("a", "b")) -> pm.Model:
    """The count model with its counts and their fronts as shared variables (any length)."""
    import pytensor

    index = np.arange(len(counts)) % len(fronts)
    with pm.Model(coords={"front": list(fronts)}) as model:
        y = pytensor.shared(counts.astype(float), name="design_y")
        rows = pytensor.shared(index, name="design_rows")
        level = pm.Normal("level", 1.0, 1.0)
        offset = pm.Normal("offset", 0.0, 1.0, dims="front")
        dispersion = pm.Gamma("dispersion", 2.0, 0.5)
        rate = pm.Deterministic("rate", pm.math.exp(level + 0.5 * offset), dims="front")
        pm.Potential("loglik", pm.logp(pm.NegativeBinomial.dist(mu=rate[rows], alpha=dispersion), y).sum())
    return model


def test_a_kept_compiled_model_is_reused_for_new_data_and_samples_identically():
    cache = CompiledModels()
    first, reused = cache.compile(_data_model(np.array([1, 3, 0, 7, 2])), ["level", "rate"])
    assert not reused
    longer = np.array([4, 0, 2, 2, 5, 9, 1, 0])
    again, reused = cache.compile(_data_model(longer), ["level", "rate"])
    assert reused and (cache.hits, cache.misses) == (1, 1)
    fresh = compile_nutpie_model(_data_model(longer), var_names=["level", "rate"])
    for point in np.random.default_rng(1).normal(size=(3, 4)):
        logp, gradient = _logp_and_gradient(again, point)
        assert logp == _logp_and_gradient(fresh, point)[0]
        np.testing.assert_array_equal(gradient, _logp_and_gradient(fresh, point)[1])
        assert logp != pytest.approx(_logp_and_gradient(first, point)[0], rel=1e-6)
    settings = {"draws": 30, "tune": 30, "chains": 2, "seed": 3, "progress_bar": False}
    ours, theirs = nutpie.sample(again, **settings), nutpie.sample(fresh, **settings)
    np.testing.assert_array_equal(ours.posterior["rate"].to_numpy(), theirs.posterior["rate"].to_numpy())


def test_a_model_of_another_structure_or_labels_is_not_handed_a_kept_one():
    cache = CompiledModels()
    cache.compile(_data_model(np.array([1, 3, 0, 7, 2])), ["level", "rate"])
    # three fronts: other shapes, so compiled anew
    _, reused = cache.compile(_data_model(np.array([1, 3, 0, 7, 2]), ("a", "b", "c")), ["level", "rate"])
    assert not reused
    # other stored variables: compiled anew
    _, reused = cache.compile(_data_model(np.array([1, 3, 0, 7, 2])), ["level"])
    assert not reused
    # same structure, other front names: reused, with the new model's labels
    compiled, reused = cache.compile(_data_model(np.array([2, 2, 1]), ("x", "y")), ["level", "rate"])
    assert reused and list(compiled.coords["front"]) == ["x", "y"]
    assert len(cache) == 3

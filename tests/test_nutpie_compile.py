"""The disk-cached nutpie compile gives exactly what nutpie's own compile gives, per graph."""

from __future__ import annotations

import ctypes

import numpy as np
import pymc as pm
import pytest

from forecast.models.numba_digamma import register_cacheable_digamma
from forecast.models.nutpie_compile import CompiledModels, compile_nutpie_model, rewrite_cache_key

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
    _assert_computes_as(again, fresh, first, seed=3)


def _assert_computes_as(compiled, fresh, other, *, seed: int) -> None:
    """``compiled`` gives exactly ``fresh``'s log density, gradient and draws, and not ``other``'s density."""
    for point in np.random.default_rng(seed).normal(size=(3, 4)):
        logp, gradient = _logp_and_gradient(compiled, point)
        assert logp == _logp_and_gradient(fresh, point)[0]
        np.testing.assert_array_equal(gradient, _logp_and_gradient(fresh, point)[1])
        assert logp != pytest.approx(_logp_and_gradient(other, point)[0], rel=1e-6)
    settings = {"draws": 30, "tune": 30, "chains": 2, "seed": seed, "progress_bar": False}
    ours, theirs = nutpie.sample(compiled, **settings), nutpie.sample(fresh, **settings)
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


# --------------------------------------------------------------------------------------------
# The rewritten functions kept on disk
# --------------------------------------------------------------------------------------------


def _strided_model(counts: np.ndarray, scale: float = 0.5) -> pm.Model:
    """The count model with a constant whose axis of length 1 has stride 0 (as ``x[None, :]`` has)."""
    import pytensor.tensor as pt

    weights = np.linspace(0.5, 1.5, len(counts))[None, :]
    assert weights.strides[0] == 0
    with pm.Model(coords={"front": ["a", "b"]}) as model:
        level = pm.Normal("level", 1.0, 1.0)
        offset = pm.Normal("offset", 0.0, 1.0, dims="front")
        dispersion = pm.Gamma("dispersion", 2.0, 0.5)
        rate = pm.Deterministic("rate", pm.math.exp(level + scale * offset), dims="front")
        mu = rate[[0, 0, 1, 1, 1]][None, :] * pt.exp(level * pt.as_tensor(weights))
        pm.NegativeBinomial("y", mu=mu, alpha=dispersion, observed=counts[None, :])
    return model


def _has_stride_zero_constant(function) -> bool:
    from pytensor.graph.basic import Constant

    return any(
        isinstance(v, Constant) and isinstance(v.data, np.ndarray) and 0 in v.data.strides
        for v in function.maker.fgraph.variables
    )


def test_a_rewritten_graph_is_loaded_from_disk_and_samples_exactly_as_one_rewritten_afresh(tmp_path, caplog):
    counts = np.array([3, 1, 4, 1, 5])
    settings = {"draws": 30, "tune": 30, "chains": 2, "seed": 11, "progress_bar": False}
    fresh = compile_nutpie_model(_strided_model(counts), var_names=["level", "rate"], rewrite_cache=tmp_path)
    assert len(list(tmp_path.glob("*.pkl"))) == 2  # the log density and the stored variables
    assert _has_stride_zero_constant(fresh.logp_func)  # what NumPy's own pickle would not keep
    with caplog.at_level("INFO", logger="forecast.models.nutpie_compile"):
        loaded = compile_nutpie_model(_strided_model(counts), var_names=["level", "rate"], rewrite_cache=tmp_path)
    assert sum("rewritten graph loaded" in r.getMessage() for r in caplog.records) == 2
    # the loaded graphs are compiled under the same Numba keys as the fresh ones (strides kept)
    assert loaded.compiled_logp_func.cache_hits == 1
    assert loaded.compiled_expand_func.cache_hits == 1
    ours, theirs = nutpie.sample(loaded, **settings), nutpie.sample(fresh, **settings)
    for name in ("level", "rate"):
        np.testing.assert_array_equal(ours.posterior[name].to_numpy(), theirs.posterior[name].to_numpy())


def test_data_read_by_both_functions_is_one_variable_when_both_are_loaded_from_disk(tmp_path):
    """Each function loaded from disk unpickles its own copy of a shared variable both read (the
    dynamic model's knot lengths): they were taken for two variables of one name, and the second
    compile of such a graph failed.  Copies holding a missing value (NaN) are equal too."""

    def model() -> pm.Model:
        import pytensor

        with pm.Model(coords={"front": ["a", "b"]}) as graph:
            y = pytensor.shared(np.array([2.0, 0.0, 5.0, 1.0, 3.0]), name="design_y")
            rows = pytensor.shared(np.array([0, 1, 0, 1, 0]), name="design_rows")
            missing = pytensor.shared(np.array([1.0, np.nan, 2.0, 1.0, np.nan]), name="design_missing")
            level = pm.Normal("level", 1.0, 1.0)
            offset = pm.Normal("offset", 0.0, 1.0, dims="front")
            dispersion = pm.Gamma("dispersion", 2.0, 0.5)
            rate = pm.math.exp(level + 0.5 * offset)
            # stored: the second function reads `rows` and `missing` too
            fitted = pm.Deterministic("fitted", rate[rows] * (1.0 + pytensor.tensor.isnan(missing)))
            pm.Potential("loglik", pm.logp(pm.NegativeBinomial.dist(mu=fitted, alpha=dispersion), y).sum())
        return graph

    names = ["level", "fitted"]
    fresh = compile_nutpie_model(model(), var_names=names, rewrite_cache=tmp_path)
    loaded = compile_nutpie_model(model(), var_names=names, rewrite_cache=tmp_path)
    assert loaded.logp_func is not fresh.logp_func
    assert sorted(loaded.shared_data) == ["design_missing", "design_rows", "design_y"]
    for point in np.random.default_rng(2).normal(size=(3, 4)):
        assert _logp_and_gradient(loaded, point)[0] == _logp_and_gradient(fresh, point)[0]
    settings = {"draws": 30, "tune": 30, "chains": 2, "seed": 5, "progress_bar": False}
    ours, theirs = nutpie.sample(loaded, **settings), nutpie.sample(fresh, **settings)
    np.testing.assert_array_equal(ours.posterior["fitted"].to_numpy(), theirs.posterior["fitted"].to_numpy())


def test_the_rewrite_key_follows_the_graph_and_its_values_not_its_variables_names():
    def key_of(model: pm.Model) -> str | None:
        with model:
            return rewrite_cache_key(model.value_vars, [model.logp()], "NUMBA")

    counts = np.array([3, 1, 4, 1, 5])
    keys = [key_of(_strided_model(counts)) for _ in range(2)]
    assert keys[0] is not None and keys[0] == keys[1]  # built twice: other automatic names, same key
    assert key_of(_strided_model(np.array([3, 1, 4, 1, 6]))) != keys[0]  # one count
    assert key_of(_strided_model(counts, scale=0.6)) != keys[0]  # one parameter
    # a shared variable by its name and type, not its value or length (_rebind_shared gives the
    # loaded function the current values): next week's data find this week's rewritten graph
    assert key_of(_data_model(counts)) == key_of(_data_model(np.array([3, 1, 4, 1, 6, 0, 2])))

    def typed(dtype) -> pm.Model:
        import pytensor

        with pm.Model() as model:
            pm.Potential("term", pm.Normal("level") * pytensor.shared(counts.astype(dtype), name="design_y").sum())
        return model

    assert key_of(typed(np.float64)) != key_of(typed(np.float32))  # but by its type
    assert rewrite_cache_key(_count_model(counts).value_vars, [pm.logp(pm.Normal.dist(), 0.0)], "NUMBA") != (
        rewrite_cache_key(_count_model(counts).value_vars, [pm.logp(pm.Normal.dist(), 0.0)], "JAX")
    )  # the compile's settings


def test_shared_variables_without_a_unique_name_give_no_rewrite_key():
    import pytensor

    for names in [(None, None), ("same", "same")]:
        with pm.Model() as model:
            level = pm.Normal("level")
            first, second = (pytensor.shared(np.ones(3), name=name) for name in names)
            pm.Potential("term", (level * first).sum() + (level * second).sum())
        assert rewrite_cache_key(model.value_vars, [model.logp()], "NUMBA") is None


def test_a_graph_rewritten_for_other_data_is_loaded_with_this_data(tmp_path, caplog):
    """Next week's table: the same graph over new shared values (longer, other counts) loads the
    rewritten functions and the compiled code from disk, and computes exactly what a graph
    rewritten afresh for the new data computes."""
    compile_nutpie_model(_data_model(np.array([1, 3, 0, 7, 2])), var_names=["level", "rate"], rewrite_cache=tmp_path)
    longer = np.array([4, 0, 2, 2, 5, 9, 1, 0])
    with caplog.at_level("INFO", logger="forecast.models.nutpie_compile"):
        loaded = compile_nutpie_model(_data_model(longer), var_names=["level", "rate"], rewrite_cache=tmp_path)
    assert sum("rewritten graph loaded" in r.getMessage() for r in caplog.records) == 2
    assert loaded.compiled_logp_func.cache_hits == 1
    np.testing.assert_array_equal(loaded.shared_data["design_y"], longer)
    fresh = compile_nutpie_model(_data_model(longer), var_names=["level", "rate"], rewrite_cache=False)
    first = compile_nutpie_model(_data_model(np.array([1, 3, 0, 7, 2])), var_names=["level"], rewrite_cache=False)
    _assert_computes_as(loaded, fresh, first, seed=9)


def test_a_damaged_file_is_rewritten_afresh_and_replaced(tmp_path, caplog):
    counts = np.array([2, 7, 1, 8, 2])
    reference = compile_nutpie_model(_count_model(counts), rewrite_cache=False)
    assert not list(tmp_path.glob("*.pkl"))
    compile_nutpie_model(_count_model(counts), rewrite_cache=tmp_path)
    for path in tmp_path.glob("*.pkl"):
        path.write_bytes(b"not a pickle")
    with caplog.at_level("WARNING", logger="forecast.models.nutpie_compile"):
        again = compile_nutpie_model(_count_model(counts), rewrite_cache=tmp_path)
    assert sum("rewriting it afresh" in r.getMessage() for r in caplog.records) == 2
    point = np.random.default_rng(2).normal(size=4)
    assert _logp_and_gradient(again, point)[0] == _logp_and_gradient(reference, point)[0]
    caplog.clear()
    with caplog.at_level("INFO", logger="forecast.models.nutpie_compile"):
        compile_nutpie_model(_count_model(counts), rewrite_cache=tmp_path)
    assert sum("rewritten graph loaded" in r.getMessage() for r in caplog.records) == 2


def test_the_rewritten_graphs_kept_stay_within_their_budget_newest_first(tmp_path, monkeypatch):
    import forecast.models.nutpie_compile as nutpie_compile

    counts = np.array([1, 2, 3, 4, 5])
    for scale in (0.1, 0.2, 0.3):  # two functions each (the scale is in both), all within the default budget
        compile_nutpie_model(_strided_model(counts, scale), rewrite_cache=tmp_path)
    assert len(list(tmp_path.glob("*.pkl"))) == 6
    newest = sorted(tmp_path.glob("*.pkl"), key=lambda p: p.stat().st_mtime)[-2:]
    budget = sum(p.stat().st_size for p in newest)
    smallest = min(p.stat().st_size for p in tmp_path.glob("*.pkl"))
    # room for two pairs like the newest (the next compile writes one of the same sizes), not for a fifth file
    monkeypatch.setattr(nutpie_compile, "REWRITE_CACHE_BYTES", 2 * budget + smallest // 2)
    compile_nutpie_model(_strided_model(counts, 0.4), rewrite_cache=tmp_path)
    assert len(list(tmp_path.glob("*.pkl"))) == 4  # the two written now and the two before them
    assert all(p.exists() for p in newest)
    monkeypatch.setattr(nutpie_compile, "REWRITE_CACHE_BYTES", 1)  # the newest is kept whatever its size
    compile_nutpie_model(_strided_model(counts, 0.5), rewrite_cache=tmp_path)
    assert len(list(tmp_path.glob("*.pkl"))) == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_compiling_a_graph_does_not_change_the_key_of_a_graph_that_shares_its_parts():
    """Compiling caches things on operations and constants that graphs share (on the shipped
    data, the second function's key changed after the first was compiled): the key must not see them."""
    model = _strided_model(np.array([3, 1, 4, 1, 5]))
    with model:
        stored = [model["rate"]]
        before = rewrite_cache_key(model.value_vars, stored, "NUMBA")
    compile_nutpie_model(model, var_names=["level", "rate"], rewrite_cache=False)
    with model:
        assert rewrite_cache_key(model.value_vars, stored, "NUMBA") == before


def test_the_rewrite_key_holds_the_source_of_every_operation_of_the_models_and_what_it_imports():
    """The key hashes KERNEL_SOURCES only: each Op of forecast.models must be defined there, importing only them."""
    import ast
    import importlib
    import inspect
    import pkgutil
    from pathlib import Path

    from pytensor.graph.op import Op

    import forecast.models
    from forecast.models.nutpie_compile import KERNEL_SOURCES

    folder = Path(forecast.models.__file__).parent
    defined = set()
    for info in pkgutil.iter_modules([str(folder)]):
        module = importlib.import_module(f"forecast.models.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Op) and cls.__module__ == module.__name__:
                defined.add(Path(inspect.getfile(cls)).name)
    assert defined and defined <= set(KERNEL_SOURCES), f"operations defined outside KERNEL_SOURCES: {defined}"
    for name in KERNEL_SOURCES:
        tree = ast.parse((folder / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("forecast"):
                assert node.module.startswith("forecast.models."), f"{name} imports {node.module}"
                assert f"{node.module.rsplit('.', 1)[1]}.py" in KERNEL_SOURCES, f"{name} imports {node.module}"

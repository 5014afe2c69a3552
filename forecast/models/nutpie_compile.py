"""Compile a PyMC model for nutpie so that the compiled log density is reused from disk.

``nutpie.compile_pymc_model`` wraps PyTensor's Numba function for the log density and its
gradient in a C-callable ``numba.cfunc``.  Numba optimises the whole inlined graph again for
that wrapper (14-15 s for the escalation model on the shipped data) on every call, and its own
``cache=True`` cannot help: the wrapper is a closure over a freshly made dispatcher, whose
pickled form differs in every process, so the cache key never matches.

Here the wrappers are made exactly as nutpie makes them, then called from a function that has
no closure and whose cache entry is named by PyTensor's own cache key for the graph (a hash of
the graph, its constants included), the nutpie version and the layout of the shared data.  A
second fit of the same graph, in this process or any later one, loads the compiled wrapper
from PyTensor's Numba cache directory (``~/.pytensor/numba``, or ``base_compiledir`` in
``PYTENSOR_FLAGS``) in a fraction of a second.  A graph that PyTensor itself cannot cache
gets nutpie's uncached wrapper, so nothing is ever shared between different graphs.

This follows nutpie's internal layout (``nutpie.compile_pymc``), which is why
``pyproject.toml`` pins nutpie to one minor version; ``tests/test_nutpie_compile.py`` checks
the result against ``nutpie.compile_pymc_model`` on a small model.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable

import numpy as np

log = logging.getLogger(__name__)

#: Part of every cache key; bump it when the wrapper source below changes.
WRAPPER_VERSION = 1


def compile_nutpie_model(model, var_names: Iterable[str] | None = None):
    """``nutpie.compile_pymc_model(model, var_names=...)`` with the Numba wrappers cached on disk.

    Same defaults as nutpie's numba backend: initial points from the support point with a
    uniform jitter on every free variable, model not frozen.

    Returns
    -------
    nutpie.compile_pymc.CompiledPyMCModel
    """
    import numba
    import nutpie
    from nutpie import compile_pymc as nutpie_pymc
    from pymc.initial_point import make_initial_point_fn

    initial_point = nutpie_pymc._wrap_with_lock(
        make_initial_point_fn(
            model=model,
            overrides=None,
            default_strategy="support_point",
            jitter_rvs=set(model.free_RVs),
            return_transformed=True,
        )
    )
    n_dim, n_expanded, logp_pt, expand_pt, initial_point_fn, shape_info = nutpie_pymc._make_functions(
        model,
        mode="NUMBA",
        compute_grad=True,
        join_expanded=True,
        pymc_initial_point_fn=initial_point,
        var_names=var_names,
    )
    shared_vars, shared_data = _shared(logp_pt, expand_pt)
    user_data = nutpie_pymc.make_user_data(shared_vars, shared_data)
    layout = f"{nutpie.__version__}|{WRAPPER_VERSION}|{n_dim}|{n_expanded}|{user_data.dtype.descr}"

    logp_fn = logp_pt.vm.jit_fn
    raw, signature = nutpie_pymc._make_c_logp_func(
        n_dim, logp_fn, user_data, [v.name for v in logp_pt.get_shared()], shared_data
    )
    compiled_logp = _cached_cfunc(numba, raw, signature, "nutpie_logp", _graph_key(logp_fn), layout)
    expand_fn = expand_pt.vm.jit_fn
    raw, signature = nutpie_pymc._make_c_expand_func(
        n_dim, n_expanded, expand_fn, user_data, [v.name for v in expand_pt.get_shared()], shared_data
    )
    compiled_expand = _cached_cfunc(numba, raw, signature, "nutpie_expand", _graph_key(expand_fn), layout)

    dims, coords = nutpie_pymc._prepare_dims_and_coords(model, shape_info)
    return nutpie_pymc.CompiledPyMCModel(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=compiled_logp,
        compiled_expand_func=compiled_expand,
        initial_point_func=initial_point_fn,
        shared_data=shared_data,
        user_data=user_data,
        n_expanded=n_expanded,
        shape_info=shape_info,
        logp_func=logp_pt,
        expand_func=expand_pt,
    )


def _shared(logp_pt, expand_pt) -> tuple[dict, dict[str, np.ndarray]]:
    """Shared variables of both functions by name, and read-only copies of their values."""
    shared_vars: dict = {}
    shared_data: dict[str, np.ndarray] = {}
    for variable in [*logp_pt.get_shared(), *expand_pt.get_shared()]:
        if variable.name in shared_vars and shared_vars[variable.name] is not variable:
            raise ValueError(f"shared variables must have unique names: {variable.name}")
        value = np.array(variable.get_value(), order="C", copy=True)
        value.flags.writeable = False
        shared_vars[variable.name] = variable
        shared_data[variable.name] = value
    return shared_vars, shared_data


def _graph_key(jit_fn) -> str | None:
    """PyTensor's cache key of a compiled function's graph, or None when it has none."""
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    return CACHED_SRC_FUNCTIONS.get(getattr(jit_fn, "py_func", None))


def _cached_cfunc(numba, raw: Callable, signature, name: str, graph_key: str | None, layout: str):
    """``numba.cfunc(signature)(raw)``, cached on disk under ``graph_key`` when there is one."""
    if graph_key is None:
        log.info("%s: PyTensor gave the graph no cache key; compiling without the disk cache", name)
        return numba.cfunc(signature)(raw)
    from pytensor.link.numba.cache import compile_numba_function_src

    body = numba.njit(inline="always")(raw)
    key = hashlib.sha256(f"{graph_key}|{layout}".encode()).hexdigest()
    arguments = ", ".join(f"a{i}" for i in range(len(signature.args)))
    wrapper = compile_numba_function_src(
        f"def {name}({arguments}):\n    return body({arguments})\n",
        name,
        # Numba records the defining module to rebuild a cached function's environment.
        global_env={"__name__": __name__, "body": body},
        cache_key=key,
    )
    return numba.cfunc(signature, cache=True)(wrapper)

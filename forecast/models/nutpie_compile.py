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

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

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


class CompiledModels:
    """Compiled nutpie models kept in this process, reused for models that differ only in data.

    A model built with its data as shared variables (``build_escalation_model(...,
    shared_data=True)``) has a graph that depends only on its structure.  When a later model's
    log density and stored variables are the same graph as a kept one's (PyTensor's
    ``equal_computations``, with value variables and shared variables matched by name) and its
    free and stored variables have the same shapes (nutpie compiles those shapes in), the
    kept compiled functions are reused with the new model's data (``with_data``) and its
    coordinates; otherwise the model is compiled and kept.  Nothing is shared between graphs
    that differ in any operation or constant, so reuse cannot change a result.

    Parameters
    ----------
    max_entries : int
        Compiled models kept; the least recently used is dropped beyond this.
    """

    def __init__(self, max_entries: int = 4) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.max_entries = max_entries
        self._entries: list[_Entry] = []
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def compile(self, model, var_names: Iterable[str]) -> tuple[object, bool]:
        """The compiled model for ``model`` and whether a kept one was reused."""
        from nutpie import compile_pymc as nutpie_pymc

        var_names = list(var_names)
        graph = _Graph.of(model, var_names)
        for position, entry in enumerate(self._entries):
            if entry.graph.matches(graph):
                self._entries.append(self._entries.pop(position))
                data = graph.shared_values()
                compiled = entry.compiled.with_data(**{k: data[k] for k in entry.compiled.shared_data})
                dims, coords = nutpie_pymc._prepare_dims_and_coords(model, compiled.shape_info)
                self.hits += 1
                return dataclasses.replace(compiled, dims=dims, _coords=coords), True
        compiled = compile_nutpie_model(model, var_names)
        # Shared variables the compiled functions do not read (dimension lengths, which the
        # shapes above fix, or data the rewrites made unnecessary) cannot change their result.
        self._entries.append(_Entry(graph, compiled))
        del self._entries[: -self.max_entries]
        self.misses += 1
        return compiled, False


@dataclasses.dataclass
class _Graph:
    """The graphs that decide a compiled model: log density and stored variables, by inputs."""

    outputs: list
    values: dict  # value variable name -> variable
    shared: dict  # shared variable name -> variable
    var_names: list[str]
    shapes: dict  # free (value) and stored variable name -> shape

    @classmethod
    def of(cls, model, var_names: list[str]) -> _Graph:
        from nutpie import compile_pymc as nutpie_pymc
        from pytensor.compile.sharedvalue import SharedVariable
        from pytensor.graph.traversal import graph_inputs

        stored = [model[name] for name in var_names]
        outputs = [model.logp(), *model.replace_rvs_by_values(stored)]
        shared: dict = {}
        for variable in graph_inputs(outputs):
            if isinstance(variable, SharedVariable):
                if variable.name is None or shared.get(variable.name, variable) is not variable:
                    shared = {}  # unnamed or ambiguous shared variables: never matched
                    break
                shared[variable.name] = variable
        values = {v.name: v for v in model.value_vars}
        every_shape = nutpie_pymc._compute_shapes(model)
        shapes = {name: tuple(every_shape[name]) for name in [*values, *var_names]}
        return cls(outputs, values, shared, var_names, shapes)

    def shared_values(self) -> dict[str, np.ndarray]:
        return {name: variable.get_value(borrow=True) for name, variable in self.shared.items()}

    def matches(self, other: _Graph) -> bool:
        from pytensor.graph.basic import equal_computations

        if (
            self.var_names != other.var_names
            or self.shapes != other.shapes
            or list(self.values) != list(other.values)
            or sorted(self.shared) != sorted(other.shared)
            or any(self.values[k].type != other.values[k].type for k in self.values)
            or any(self.shared[k].type.ndim != other.shared[k].type.ndim for k in self.shared)
        ):
            return False
        names = sorted(self.shared)
        return equal_computations(
            self.outputs,
            other.outputs,
            in_xs=[*self.values.values(), *(self.shared[k] for k in names)],
            in_ys=[*(other.values[k] for k in self.values), *(other.shared[k] for k in names)],
        )


@dataclasses.dataclass
class _Entry:
    graph: _Graph
    compiled: Any  # nutpie's CompiledPyMCModel (nutpie is untyped)

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

Before that, PyTensor rewrites the log density's graph (canonicalisation, stabilisation,
fusion), which took 14.5-15 s of every fit of the shipped data even with every cache warm
(``benchmarks/bench_rewrites.py``).  The rewritten functions are kept on disk too
(:func:`rewrite_cache_key`): keyed by the whole graph before rewriting (every operation, with
its parameters, every constant's value, every shared variable's name and type but not its value,
the input and output types), the versions of
PyTensor, PyMC, nutpie, Numba, NumPy and Python, PyTensor's rewrite settings and the source of
the files that define the models' operations (:data:`KERNEL_SOURCES`: their ``perform`` folds
constants).  A graph that differs in
any of them is rewritten afresh; one that cannot be described that way (an operation that
does not pickle, a shared variable without a unique name) is never cached.  A function loaded
for a graph whose shared variables hold other data than when it was kept is given the current
values (:func:`_rebind_shared`), and its compiled code, whose key does not hold them either, is
loaded from Numba's cache: a model with its data as shared variables and the same shapes
(next week's table, :class:`forecast.models.model.EscalationModel` ``reusable``) compiles in
seconds.

This follows nutpie's internal layout (``nutpie.compile_pymc``), which is why
``pyproject.toml`` pins nutpie to one minor version; ``tests/test_nutpie_compile.py`` checks
the result against ``nutpie.compile_pymc_model`` on a small model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import pickle
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Part of every cache key; bump it when the wrapper source below changes.
WRAPPER_VERSION = 1
#: Part of every rewritten function's cache key; bump it when what is cached changes.
REWRITE_CACHE_VERSION = 2
#: The files of ``forecast/models`` whose source is part of every rewritten function's cache key:
#: those that define the models' own operations (constant folding runs their ``perform``, and
#: their Numba kernels are what the compiled code calls), what those import from the package,
#: and this file.  The rest of the package only builds graphs, and the key holds the graph itself:
#: an edit to it (a summary, a report) no longer makes every model compile afresh.
#: ``tests/test_nutpie_compile.py`` checks that every operation is defined in one of these files
#: and that they import nothing else from the package.
KERNEL_SOURCES = (
    "count_kernel.py",
    "numba_digamma.py",
    "numba_ops.py",
    "nutpie_compile.py",
    "tails_kernel.py",
    "whitened_path.py",
)
#: Bytes of rewritten functions kept on disk (3.5 and 8.6 MB for the shipped data's two, under 1 MB
#: for a test's small model): the least recently used go beyond this, the newest is always kept.
REWRITE_CACHE_BYTES = 256 * 2**20


def compile_nutpie_model(model, var_names: Iterable[str] | None = None, *, rewrite_cache: Path | bool = True):
    """``nutpie.compile_pymc_model(model, var_names=...)`` with the Numba wrappers cached on disk.

    Same defaults as nutpie's numba backend: initial points from the support point with a
    uniform jitter on every free variable, model not frozen.

    Parameters
    ----------
    rewrite_cache : Path or bool
        Where the rewritten functions are kept: ``True`` (default) in PyTensor's compile
        directory (:func:`default_rewrite_cache`), a folder, or ``False`` for none.

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
    folder = default_rewrite_cache() if rewrite_cache is True else rewrite_cache or None
    with _rewritten_functions_from(folder):
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


def default_rewrite_cache() -> Path:
    """``forecast_rewritten`` in PyTensor's compile directory (``PYTENSOR_FLAGS=base_compiledir=...``)."""
    import pytensor

    return Path(pytensor.config.compiledir) / "forecast_rewritten"


@contextlib.contextmanager
def _rewritten_functions_from(folder: Path | None) -> Iterator[None]:
    """While nutpie builds its PyTensor functions, load those rewritten before from ``folder``.

    nutpie's ``_make_functions`` compiles its two functions with ``pymc.pytensorf.compile``,
    which it looks up when called: it is replaced here for the duration of that call only.
    """
    if folder is None:
        yield
        return
    import pymc.pytensorf

    original = pymc.pytensorf.compile

    def compile_cached(inputs, outputs, *args, **kwargs):
        return _load_or_compile(folder, original, inputs, outputs, args, kwargs)

    pymc.pytensorf.compile = compile_cached
    try:
        yield
    finally:
        pymc.pytensorf.compile = original


def _load_or_compile(folder: Path, compile_function: Callable, inputs, outputs, args: tuple, kwargs: dict):
    """The rewritten function of this graph from ``folder``, or compiled (and kept there)."""
    key = rewrite_cache_key(inputs, outputs, (args, sorted(kwargs.items()), _check_bounds()))
    if key is None:
        return compile_function(inputs, outputs, *args, **kwargs)
    path = folder / f"{key}.pkl"
    if path.exists():
        try:
            with path.open("rb") as handle:
                function = pickle.load(handle)
            if function is None:  # PyTensor's ``unpickle_function`` flag is off
                raise ValueError("PyTensor did not rebuild the function (config.unpickle_function is off)")
            _rebind_shared(function, outputs)
            os.utime(path)
            log.info("rewritten graph loaded from %s", path)
            return function
        except Exception as error:  # a damaged or foreign file: rewrite afresh and replace it
            log.warning("could not load the rewritten graph %s (%s); rewriting it afresh", path, error)
    function = compile_function(inputs, outputs, *args, **kwargs)
    try:
        _keep(folder, path, function)
    except Exception as error:  # an unpicklable operation or a full disk: the fit goes on uncached
        log.info("rewritten graph not kept on disk (%s)", error)
    return function


def _rebind_shared(function, outputs) -> None:
    """Give a loaded function's shared variables the values of the graph's own, matched by name.

    The cache key names the shared variables and their types but not their values, so that a
    graph built on new data (the backtest's next origin, next week's table) finds the graph
    rewritten for other data; the loaded function must then read this graph's data.
    """
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import graph_inputs

    current = {v.name: v for v in graph_inputs(list(outputs)) if isinstance(v, SharedVariable)}
    loaded = function.get_shared()
    if sorted(v.name for v in loaded) != sorted(current):
        raise ValueError("the loaded function's shared variables are not the graph's")
    for variable in loaded:
        variable.set_value(np.array(current[variable.name].get_value(borrow=True), copy=True), borrow=True)


def _check_bounds() -> bool:
    """The model's ``check_bounds``, which decides one of PyMC's rewrites (True outside a model)."""
    import pymc

    try:
        return bool(pymc.modelcontext(None).check_bounds)
    except TypeError:
        return True


def _keep(folder: Path, path: Path, function) -> None:
    """Write ``function`` to ``path`` atomically, then drop the least recently used beyond the limit."""
    folder.mkdir(parents=True, exist_ok=True)
    function.pickle_aliased_memory_strategy = "raise"  # never a silently different function
    partial = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
    try:
        with partial.open("wb") as handle:
            _StridesPickler(handle, protocol=5).dump(function)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    total = 0
    for number, (_, size, kept) in enumerate(sorted(_listing(folder), reverse=True)):
        total += size
        if number and total > REWRITE_CACHE_BYTES:
            kept.unlink(missing_ok=True)


class _StridesPickler(pickle.Pickler):
    """A pickler that keeps the strides of contiguous arrays whose strides are not NumPy's default.

    A constant such as ``x[None, :]`` has stride 0 on its axis of length 1, which NumPy's pickle
    turns into the default stride.  The array is the same, but PyTensor's key for the compiled
    Numba code hashes the strides (``hash_from_ndarray``), so a function loaded with other
    strides would miss the Numba cache and be compiled again (100 s on the shipped data).
    """

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray) and type(obj) is np.ndarray and obj.flags.c_contiguous:
            default = np.empty(obj.shape, dtype=obj.dtype).strides
            if obj.strides != default:
                return _restrided, (np.array(obj, order="C", copy=True), obj.strides)
        return NotImplemented


def _restrided(array: np.ndarray, strides: tuple[int, ...]) -> np.ndarray:
    """``array`` with ``strides`` (which differ from its own only on axes of length 0 or 1)."""
    return np.lib.stride_tricks.as_strided(array, shape=array.shape, strides=strides)


def _listing(folder: Path) -> list[tuple[float, int, Path]]:
    """``(modified, size, path)`` of each kept function, less any another process removed meanwhile."""
    listing = []
    for path in folder.glob("*.pkl"):
        try:
            status = path.stat()
        except FileNotFoundError:
            continue
        listing.append((status.st_mtime, status.st_size, path))
    return listing


def rewrite_cache_key(inputs, outputs, settings: object = None) -> str | None:
    """A hash of everything that decides what PyTensor's rewrites make of ``outputs``, or None.

    The graph is described node by node in topological order: each operation by its type and
    parameters (:func:`_op_description`), the positions of its inputs and the types of its
    outputs; each root as an explicit input (its position and type), a constant (its type and
    value, by :func:`_value_description`) or a shared variable (its name and type, not its value:
    the rewrites treat it as an input, and a loaded function is given the graph's current values,
    :func:`_rebind_shared`).  Variables' automatic names and creation traces are left out, so the
    same graph built again, in this process or another, has the same key.  Then the library
    versions, PyTensor's rewrite settings, the source of :data:`KERNEL_SOURCES` and ``settings``
    (the compile call's other arguments).  None when part of the graph does not pickle or a
    shared variable has no name of its own.
    """
    import numba
    import nutpie
    import pymc
    import pytensor
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import io_toposort

    config = pytensor.config
    digest = hashlib.sha256()

    def add(value: object) -> None:
        digest.update(pickle.dumps(value, protocol=5))

    try:
        add(
            (
                REWRITE_CACHE_VERSION,
                pytensor.__version__,
                pymc.__version__,
                nutpie.__version__,
                numba.__version__,
                np.__version__,
                sys.version,
                config.floatX,
                config.optimizer,
                config.optimizer_including,
                config.optimizer_excluding,
                config.optimizer_requiring,
                config.numba__fastmath,
                config.mode,
                config.linker,
                _model_sources(),
                repr(settings),
            )
        )
        inputs, outputs = list(inputs), list(outputs)
        explicit = {id(variable): position for position, variable in enumerate(inputs)}
        index: dict[int, int] = {}  # id of a variable -> its position (by identity, never by value)
        shared_names: dict[str, int] = {}  # name of a shared variable -> its id

        def root(variable) -> None:
            if id(variable) in index:
                return
            if id(variable) in explicit:
                add(("input", explicit[id(variable)], variable.type))
            elif isinstance(variable, Constant):
                add(("constant", variable.type, _value_description(variable.data)))
            elif isinstance(variable, SharedVariable):
                # By name and type, not value: the rewrites see a shared variable as an input
                # (its type fixes no length), and a loaded function is given the current values
                # (_rebind_shared), so a graph refitted on new data is not rewritten again.
                if variable.name is None or shared_names.setdefault(variable.name, id(variable)) != id(variable):
                    raise ValueError(f"shared variable {variable.name!r} is unnamed or its name is not unique")
                add(("shared", variable.name, variable.type))
            else:
                add(("free", variable.name, variable.type))
            index[id(variable)] = len(index)

        for node in io_toposort([], outputs):
            for variable in node.inputs:
                if variable.owner is None:
                    root(variable)
            add(
                (
                    "node",
                    _op_description(node.op),
                    tuple(index[id(v)] for v in node.inputs),
                    tuple(o.type for o in node.outputs),
                )
            )
            for variable in node.outputs:
                index[id(variable)] = len(index)
        for variable in [*inputs, *outputs]:
            if variable.owner is None:
                root(variable)
        add(("outputs", tuple(index[id(v)] for v in outputs), tuple(index[id(v)] for v in inputs)))
    except Exception as error:  # an operation or value that does not pickle: no key, no cache
        log.info("graph not described for the rewrite cache (%s)", error)
        return None
    return digest.hexdigest()


def _value_description(value: object) -> object:
    """An array by its dtype, shape and bytes (not its flags, strides or how its dtype was made)."""
    if isinstance(value, np.ndarray | np.generic):
        array = np.ascontiguousarray(value)
        return ("array", array.dtype.str, array.shape, array.tobytes())
    return value


def _op_description(op) -> object:
    """An operation as PyTensor itself tells operations apart: its type and its ``__props__``.

    Pickling the operation whole would also take in what compiling it caches on it (a second
    graph that shares an operation with a compiled one would get another key).  Operations
    without ``__props__`` are pickled whole; parameters that are operations are described the
    same way.
    """
    from pytensor.graph.op import Op

    names = getattr(op, "__props__", None)
    if names is None:
        return op
    values = tuple(_op_description(value) if isinstance(value, Op) else value for value in op._props())
    return (type(op).__module__, type(op).__qualname__, tuple(names), values)


@functools.cache
def _model_sources() -> str:
    """A hash of the source of :data:`KERNEL_SOURCES` (the operations' ``perform`` folds constants), read once."""
    digest = hashlib.sha256()
    for name in KERNEL_SOURCES:
        digest.update(name.encode())
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()


def _shared(logp_pt, expand_pt) -> tuple[dict, dict[str, np.ndarray]]:
    """Shared variables of both functions by name, and read-only copies of their values."""
    shared_vars: dict = {}
    shared_data: dict[str, np.ndarray] = {}
    for variable in [*logp_pt.get_shared(), *expand_pt.get_shared()]:
        known = shared_vars.get(variable.name)
        if known is not None and known is not variable:
            # Two functions loaded from disk each bring their own copy of a variable they both
            # read; nutpie hands data over by name, so equal copies are one variable.
            mine, theirs = known.get_value(borrow=True), variable.get_value(borrow=True)
            nan = np.asarray(mine).dtype.kind in "fc"  # a missing value is equal to itself here
            if known.type != variable.type or not np.array_equal(mine, theirs, equal_nan=nan):
                raise ValueError(f"shared variables must have unique names: {variable.name}")
            continue
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

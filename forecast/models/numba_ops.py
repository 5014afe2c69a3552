"""The models' Numba-kernel Ops, registered with PyTensor's Numba backend under a cache key.

PyTensor caches a compiled log density on disk under a key made of its graph and, for an Op
with a kernel of its own, the version that the Op's registration gives.  A kernel edited
without a new version would be served from that cache in its old form; so the version here is
a hash of the source file that defines the kernels, and any edit to that file is a new version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path

import pytensor.tensor as pt


def source_version(path: str | Path) -> int:
    """A hash of a source file's bytes (60 bits, PyTensor takes an integer): the cache version of its kernels."""
    return int(hashlib.sha256(Path(path).read_bytes()).hexdigest()[:15], 16)


def register_kernels(kernels: Mapping[type, Callable], version: int) -> None:
    """Make PyTensor's Numba backend run ``kernels[type(op)]`` for each Op type, cached under ``version``.

    Each kernel is a Numba function of the Op's inputs that returns its outputs (a tuple where
    there are several).  Registering again replaces the earlier registration.
    """
    from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

    for op_type, kernel in kernels.items():
        register_funcify_default_op_cache_key(op_type)(_funcify(kernel, version))


def _funcify(kernel: Callable, version: int) -> Callable:
    def numba_funcify(op, node, **kwargs):  # noqa: ARG001 - PyTensor's dispatch signature
        return kernel, version

    return numba_funcify


def static_shape(x: pt.TensorVariable) -> tuple[int, ...] | pt.TensorVariable:
    """``x``'s shape as numbers where its type knows them all, else ``x.shape``.

    For ``pt.broadcast_to``: given ``x.shape``, it folds the shape's graph back through every
    operation that made ``x``, 0.1-0.3 s a call while the dynamic model is built.
    """
    known = x.type.shape
    return tuple(int(d) for d in known) if all(d is not None for d in known) else x.shape

"""The Numba-kernel Ops' cache keys follow their source: an edited kernel is never served from the disk cache."""

from __future__ import annotations

import pytensor.tensor as pt
import pytest

from forecast.models import count_kernel, tails_kernel, whitened_path
from forecast.models.numba_ops import source_version


def test_the_version_is_a_hash_of_the_source(tmp_path):
    path = tmp_path / "kernel.py"
    path.write_text("def f(x):\n    return x\n", encoding="utf-8")
    first = source_version(path)
    assert source_version(path) == first
    path.write_text("def f(x):\n    return x + 0.0\n", encoding="utf-8")
    assert source_version(path) != first


@pytest.mark.parametrize(
    ("module", "node"),
    [
        (count_kernel, lambda: count_kernel._count_loglik(*[pt.dvector()] * 4, pt.lvector())[0].owner),
        (tails_kernel, lambda: tails_kernel._step_logp(pt.dmatrix(), pt.dvector(), pt.dmatrix())[0].owner),
        (whitened_path, lambda: whitened_path.ar1_path(pt.dmatrix(), pt.dvector()).owner),
    ],
)
def test_each_op_is_cached_under_its_source_files_version(module, node):
    from pytensor.link.numba.dispatch.basic import default_hash_key_from_props, numba_funcify_and_cache_key

    apply = node()
    _, key = numba_funcify_and_cache_key(apply.op, node=apply)
    assert key == default_hash_key_from_props(apply.op, cache_version=str(source_version(module.__file__)))
    assert key != default_hash_key_from_props(apply.op, cache_version=str(source_version(module.__file__) + 1))

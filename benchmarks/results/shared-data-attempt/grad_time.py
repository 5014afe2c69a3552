"""Compile the shipped model with nutpie's cached compile and time its log density and gradient.

Run from the repository root: ``.venv/bin/python benchmarks/results/shared-data-attempt/grad_time.py``.
"""

from __future__ import annotations

import ctypes
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from forecast.jobs.data import DataRequest, load_data  # noqa: E402
from forecast.models.model import EscalationModel  # noqa: E402
from forecast.models.numba_digamma import register_cacheable_digamma  # noqa: E402
from forecast.models.nutpie_compile import compile_nutpie_model  # noqa: E402

CALLS = 2000


def main() -> None:
    loaded = load_data(DataRequest())
    model = EscalationModel(loaded.panel, loaded.interventions)
    register_cacheable_digamma()
    start = time.perf_counter()
    compiled = compile_nutpie_model(model.model, var_names=model.stored_variables())
    print("compile s", time.perf_counter() - start)

    function = compiled.compiled_logp_func.ctypes
    x = np.ascontiguousarray(np.random.default_rng(0).normal(0, 0.1, compiled.n_dim))
    gradient = np.zeros_like(x)
    logp = np.zeros(())
    pointer = ctypes.POINTER(ctypes.c_double)
    arguments = (
        ctypes.c_uint64(len(x)),
        x.ctypes.data_as(pointer),
        gradient.ctypes.data_as(pointer),
        logp.ctypes.data_as(pointer),
        ctypes.c_void_p(compiled.user_data.ctypes.data),
    )
    for _ in range(50):
        function(*arguments)
    start = time.perf_counter()
    for _ in range(CALLS):
        function(*arguments)
    print("gradient ms", (time.perf_counter() - start) / CALLS * 1e3, "log density", float(logp))


if __name__ == "__main__":
    main()

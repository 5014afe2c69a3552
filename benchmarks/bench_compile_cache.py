"""Compile the shipped data's default model for nutpie, with every warning an error, and print the time.

Run it twice: the first run compiles (cold, or from PyTensor's cache of the inner graph), the
second must load the compiled log density from the disk cache in a few seconds.  A graph that
Numba cannot cache ("Cannot cache compiled function nutpie_logp as it uses dynamic globals")
fails here instead of silently compiling cold on every fit::

    .venv/bin/python benchmarks/bench_compile_cache.py     # twice
"""

from __future__ import annotations

import time
import warnings


def main() -> int:
    warnings.simplefilter("error", category=Warning)
    warnings.filterwarnings("ignore", message="PyTensor could not link")
    warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing")
    from forecast.jobs.data import DataRequest, load_data
    from forecast.models.model import EscalationModel
    from forecast.models.numba_digamma import register_cacheable_digamma
    from forecast.models.nutpie_compile import compile_nutpie_model

    register_cacheable_digamma()
    loaded = load_data(DataRequest())
    model = EscalationModel(loaded.panel, loaded.interventions)
    start = time.perf_counter()
    try:
        compile_nutpie_model(model.model, var_names=model.stored_variables())
    except Warning as warning:
        print(f"FAILED after {time.perf_counter() - start:.1f} s: {type(warning).__name__}: {warning}")
        return 1
    print(f"compiled in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Time the log density and gradient that nutpie's sampler evaluates, for one data set.

Compiles the dynamic model as a fit does (``forecast.models.nutpie_compile.compile_nutpie_model``,
with the compile cache of this machine) and times ``CompiledPyMCModel.logp_func`` at the
initial point: best of 7 loops of 200 evaluations, called from Python (a few microseconds of
each call).  Prints the compile time, the graph's node count and the milliseconds per
evaluation.  ``benchmarks/bench_gradient.py`` instead compiles from empty caches.

    .venv/bin/python benchmarks/bench_sampler_gradient.py --data acled
    .venv/bin/python benchmarks/bench_sampler_gradient.py --data shipped
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_dynamic import request_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="shipped", help="shipped, acled or acled:FRONT[+FRONT...]")
    args = parser.parse_args()

    from forecast.jobs.data import load_data
    from forecast.models.design import ModelOptions
    from forecast.models.model import EscalationModel
    from forecast.models.numba_digamma import register_cacheable_digamma
    from forecast.models.nutpie_compile import compile_nutpie_model

    with tempfile.TemporaryDirectory() as folder:
        loaded = load_data(request_for(args.data, Path(folder)))
    model = EscalationModel(loaded.panel, loaded.interventions, options=ModelOptions(family="dynamic", changepoints=0))
    register_cacheable_digamma()
    started = time.perf_counter()
    compiled = compile_nutpie_model(model.model, var_names=model.stored_variables())
    compile_s = time.perf_counter() - started
    point = np.asarray(compiled.initial_point_func(1), dtype=float)
    function = compiled.logp_func
    function(point)
    best = float("inf")
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(200):
            function(point)
        best = min(best, (time.perf_counter() - started) / 200)
    nodes = len(function.maker.fgraph.apply_nodes)
    print(f"{args.data}: compile {compile_s:.1f} s, {nodes} nodes, log density and gradient {best * 1e3:.3f} ms")


if __name__ == "__main__":
    main()

"""Does PyTensor rewrite the sampler's log density into the same graph in every process?

Builds the dynamic model of ``--data`` (as ``bench_dynamic.py``, reusable as ``forecast fit``
builds it), rewrites its log density and gradient afresh (nutpie's ``_make_functions``, the
project's rewrite cache bypassed) in ``--processes`` fresh processes, and prints PyTensor's cache
key of each rewritten graph: the key under which the compiled code is found in Numba's cache.
Different keys for the same model mean that a fit whose rewritten graph is not on disk
(the first fit after the package's kernels changed, or after the rewrite cache was cleared)
compiles afresh even when an earlier process compiled the same model::

    .venv/bin/python benchmarks/bench_rewrite_determinism.py --data shipped --processes 3
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def graph_key(data: str, constants: bool) -> None:
    """In this process: rewrite the model's log density afresh and print its PyTensor cache key."""
    from bench_dynamic import request_for
    from nutpie import compile_pymc as nutpie_pymc

    from forecast.jobs.data import load_data
    from forecast.models.design import ModelOptions
    from forecast.models.model import EscalationModel
    from forecast.models.numba_digamma import register_cacheable_digamma
    from forecast.models.nutpie_compile import _graph_key, _rewritten_functions_from

    with tempfile.TemporaryDirectory() as folder:
        loaded = load_data(request_for(data, Path(folder)))
    escalation = EscalationModel(
        loaded.panel,
        loaded.interventions,
        options=ModelOptions(family="dynamic", changepoints=0),
        reusable=not constants,
    )
    register_cacheable_digamma()
    started = time.perf_counter()
    with _rewritten_functions_from(None):  # no rewrite cache: rewrite afresh
        functions = nutpie_pymc._make_functions(
            escalation.model,
            mode="NUMBA",
            compute_grad=True,
            join_expanded=True,
            pymc_initial_point_fn=None,
            var_names=escalation.stored_variables(),
        )
    seconds = time.perf_counter() - started
    logp = functions[2]
    nodes = len(logp.maker.fgraph.apply_nodes)
    print(f"{_graph_key(logp.vm.jit_fn)} {nodes} {seconds:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="shipped", help="as bench_dynamic.py's --data")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--constants", action="store_true", help="the data as constants, not shared variables")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        graph_key(args.data, args.constants)
        return
    command = [sys.executable, __file__, "--child", "--data", args.data] + (["--constants"] if args.constants else [])
    keys = []
    graph = "data as constants" if args.constants else "reusable (data as shared variables)"
    print(f"{args.data}, {graph}: the log density rewritten afresh in {args.processes} fresh processes")
    for run in range(1, args.processes + 1):
        done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=Path(__file__).parent)
        key, nodes, seconds = done.stdout.split()[-3:]
        keys.append(key)
        print(f"process {run}: PyTensor cache key {key}, {nodes} nodes, rewritten in {seconds} s")
    print(f"{len(set(keys))} distinct key(s) in {len(keys)} processes")


if __name__ == "__main__":
    main()

"""Time PyTensor's rewriting of the sampler's log density, with and without some rewrites.

Builds the dynamic model of ``--data`` (as ``bench_dynamic.py``) and runs nutpie's own
``_make_functions`` (the step of every fit, warm caches or not, that rewrites the log density and
its gradient before Numba compiles them) once per mode, printing the seconds and the node count
of the rewritten log density and gradient.  ``--modes`` names them: ``NUMBA`` (PyTensor's Numba
mode, nutpie's own and the project's) and ``without:REWRITE[+REWRITE]`` (the Numba mode less
those rewrites)::

    .venv/bin/python benchmarks/bench_rewrites.py --data shipped --modes NUMBA,without:local_greedy_distributor
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_dynamic import request_for


def mode_of(label: str):
    from pytensor.compile.mode import get_mode

    if label == "NUMBA":
        return get_mode("NUMBA")
    if label.startswith("without:"):
        return get_mode("NUMBA").excluding(*label.split(":", 1)[1].split("+"))
    raise SystemExit(f"unknown mode {label!r}: NUMBA or without:REWRITE[+REWRITE]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="shipped", help="as bench_dynamic.py's --data")
    parser.add_argument("--modes", default="NUMBA,without:local_greedy_distributor")
    args = parser.parse_args()

    from nutpie import compile_pymc as nutpie_pymc

    from forecast.jobs.data import load_data
    from forecast.models.design import ModelOptions
    from forecast.models.model import EscalationModel

    with tempfile.TemporaryDirectory() as folder:
        loaded = load_data(request_for(args.data, Path(folder)))
    escalation = EscalationModel(
        loaded.panel, loaded.interventions, options=ModelOptions(family="dynamic", changepoints=0)
    )
    model = escalation.model
    for label in args.modes.split(","):
        started = time.perf_counter()
        functions = nutpie_pymc._make_functions(
            model,
            mode=mode_of(label),
            compute_grad=True,
            join_expanded=True,
            pymc_initial_point_fn=None,
            var_names=escalation.stored_variables(),
        )
        seconds = time.perf_counter() - started
        nodes = len(functions[2].maker.fgraph.apply_nodes)
        print(f"{args.data}, {label}: rewriting {seconds:.1f} s, log density and gradient {nodes} nodes", flush=True)


if __name__ == "__main__":
    main()

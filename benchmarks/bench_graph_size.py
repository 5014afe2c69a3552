"""Count the operations of the shipped data's dynamic-model log density and gradient, after PyTensor's rewrites.

The graph's size drives its compile time and much of a gradient's cost (each operation is a
separate loop).  Example::

    .venv/bin/python benchmarks/bench_graph_size.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def main() -> None:
    import pytensor
    from bench_dynamic import request_for

    from forecast.jobs.data import load_data
    from forecast.models.design import ModelOptions
    from forecast.models.model import EscalationModel

    with tempfile.TemporaryDirectory() as folder:
        loaded = load_data(request_for("shipped", Path(folder)))
    options = ModelOptions(family="dynamic", changepoints=0)
    model = EscalationModel(loaded.panel, loaded.interventions, options=options).model
    logp = model.logp()
    gradients = pytensor.grad(logp, model.value_vars)
    function = pytensor.function(model.value_vars, [logp, *gradients], mode="NUMBA", on_unused_input="ignore")
    print(f"operations after rewriting (Numba mode): {len(function.maker.fgraph.apply_nodes)}")


if __name__ == "__main__":
    main()

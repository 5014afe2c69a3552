"""Count the operations of the shipped data's dynamic-model log density and gradient, after PyTensor's rewrites.

The graph's size drives its compile time and much of a gradient's cost (each operation is a
separate loop).  The graph is rewritten as Numba mode rewrites it and linked by the Python
linker: the count is Numba mode's, without minutes of Numba compilation.  Example::

    .venv/bin/python benchmarks/bench_graph_size.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def main() -> None:
    from collections import Counter

    import pytensor
    from bench_dynamic import request_for
    from pytensor.compile.mode import Mode, get_mode

    from forecast.jobs.data import load_data
    from forecast.models.design import ModelOptions
    from forecast.models.model import EscalationModel

    with tempfile.TemporaryDirectory() as folder:
        loaded = load_data(request_for("shipped", Path(folder)))
    options = ModelOptions(family="dynamic", changepoints=0)
    model = EscalationModel(loaded.panel, loaded.interventions, options=options).model
    logp = model.logp()
    gradients = pytensor.grad(logp, model.value_vars)
    mode = Mode(linker="py", optimizer=get_mode("NUMBA").optimizer)
    function = pytensor.function(model.value_vars, [logp, *gradients], mode=mode, on_unused_input="ignore")
    kinds = Counter(type(node.op).__name__ for node in function.maker.fgraph.apply_nodes)
    print(f"operations after rewriting (Numba mode): {sum(kinds.values())}")
    print(f"whitened path kernels: {kinds['WhitenedPath']}, their gradients: {kinds['WhitenedPathGradient']}")


if __name__ == "__main__":
    main()

"""Cost of Numba's optimisation level for the shipped model's log density and gradient.

``--model`` picks the model: ``changepoint`` (the library's default, and this script's first
subject) or ``dynamic`` (the command line's default).  For each ``NUMBA_OPT`` level, a fresh
process with an empty PyTensor compile directory (so no cached code from another level is
reused) compiles ``logp`` and its gradient in PyTensor's NUMBA mode and times one evaluation
(best of 7 loops of 300). Prints a table and writes ``bench_gradient.json`` into ``--out``.

    .venv/bin/python benchmarks/bench_gradient.py --levels 0,1,3 --out benchmarks/results/gradient
    .venv/bin/python benchmarks/bench_gradient.py --model dynamic --levels 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

WORKER = """
import json, os, time
import numpy as np
import pytensor
import pytensor.tensor as pt
from pymc.pytensorf import join_nonshared_inputs
from forecast.jobs.data import DataRequest, load_data
from forecast.models.design import ModelOptions
from forecast.models.model import EscalationModel
from forecast.models.numba_digamma import register_cacheable_digamma

register_cacheable_digamma()
loaded = load_data(DataRequest())
family = os.environ["BENCH_MODEL"]
options = ModelOptions(family=family, changepoints=0) if family == "dynamic" else ModelOptions()
model = EscalationModel(loaded.panel, loaded.interventions, options=options).model
point = model.initial_point()
logp = model.logp()
# nutpie rewrites the log density before differentiating it (nutpie.compile_pymc._make_functions):
# without that, the gradient's copy of the forward graph is not merged with the log density's.
logp = pytensor.graph.rewrite_graph(logp, include=["canonicalize", "stabilize"])
grad = pt.concatenate([g.ravel() for g in pt.grad(logp, model.value_vars)])
[logp, grad], joined = join_nonshared_inputs(point, [logp, grad], model.value_vars)
start = time.perf_counter()
fn = pytensor.function([joined], [logp, grad], mode="NUMBA")
x = np.concatenate([np.asarray(point[v.name]).ravel() for v in model.value_vars])
fn(x)
compile_s = time.perf_counter() - start
best = float("inf")
for _ in range(7):
    start = time.perf_counter()
    for _ in range(300):
        fn(x)
    best = min(best, (time.perf_counter() - start) / 300)
print(json.dumps({"compile_s": round(compile_s, 1), "gradient_ms": round(best * 1e3, 3)}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="0,1,3", help="NUMBA_OPT levels (comma list)")
    parser.add_argument("--model", choices=("changepoint", "dynamic"), default="changepoint")
    parser.add_argument("--out", type=Path, help="folder for bench_gradient.json")
    args = parser.parse_args()
    rows = []
    for level in [int(part) for part in args.levels.split(",")]:
        with tempfile.TemporaryDirectory() as compiledir:
            env = {
                **os.environ,
                "NUMBA_OPT": str(level),
                "PYTENSOR_FLAGS": f"base_compiledir={compiledir}",
                "BENCH_MODEL": args.model,
            }
            done = subprocess.run(
                [sys.executable, "-W", "ignore", "-c", WORKER], env=env, capture_output=True, text=True, check=True
            )
        row = {"model": args.model, "numba_opt": level, **json.loads(done.stdout.strip().splitlines()[-1])}
        print(
            f"{args.model}, NUMBA_OPT={level}: compile {row['compile_s']} s (empty cache), "
            f"gradient {row['gradient_ms']} ms"
        )
        rows.append(row)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench_gradient.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

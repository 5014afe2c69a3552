"""Time the sampler diagnostics: ArviZ element by element against ``rank_diagnostics``, on the same draws.

Draws ``--chains`` x ``--draws`` AR(1) draws (persistence 0.5) for ``--elements`` scalars (the
default 4,231 is the number the 45-series ACLED fit stores), then computes rank-normalised R-hat,
bulk ESS and tail ESS with ``az.rhat`` / ``az.ess`` (what ``check_convergence`` called before) and
with :func:`forecast.checks.rank_diagnostics.rank_diagnostics`, and prints both times and the largest
relative difference.  Example::

    .venv/bin/python benchmarks/bench_diagnostics.py --elements 4231
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    import arviz as az

    from forecast.checks.rank_diagnostics import rank_diagnostics

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--elements", type=int, default=4231)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = np.zeros((args.chains, args.draws, args.elements))
    x[:, 0] = rng.standard_normal((args.chains, args.elements))
    for t in range(1, args.draws):
        x[:, t] = 0.5 * x[:, t - 1] + np.sqrt(0.75) * rng.standard_normal((args.chains, args.elements))
    dataset = az.convert_to_dataset({"x": x})
    start = time.perf_counter()
    expected = [
        az.rhat(dataset, method="rank")["x"].to_numpy(),
        az.ess(dataset, method="bulk", relative=False)["x"].to_numpy(),
        az.ess(dataset, method="tail", relative=False)["x"].to_numpy(),
    ]
    arviz_s = time.perf_counter() - start
    start = time.perf_counter()
    got = rank_diagnostics(x)
    vectorised_s = time.perf_counter() - start
    difference = max(float(np.max(np.abs(g - e) / np.abs(e))) for g, e in zip(got, expected, strict=True))
    print(f"{args.chains} chains x {args.draws} draws x {args.elements} elements")
    print(f"ArviZ, element by element: {arviz_s:.1f} s; rank_diagnostics: {vectorised_s:.1f} s")
    print(f"largest relative difference: {difference:.1e}")


if __name__ == "__main__":
    main()

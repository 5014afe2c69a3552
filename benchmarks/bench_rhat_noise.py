"""How often a perfectly mixing sampler fails the R-hat limit at 2 chains x 1000 draws.

Simulates pairs of stationary AR(1) chains (independent standard normal innovations, so that
nothing is wrong with them but their autocorrelation) whose bulk ESS spans that of the dynamic
model's slowest quantities, and prints, per autocorrelation, the median bulk ESS and the share of
pairs whose rank-normalised split R-hat (ArviZ's) exceeds the project's limit of 1.01::

    .venv/bin/python benchmarks/bench_rhat_noise.py
"""

from __future__ import annotations

import argparse

import arviz as az
import numpy as np

from forecast.checks.diagnostics import ConvergenceThresholds


def ar1_chains(rng: np.random.Generator, phi: float, replicates: int, chains: int, draws: int) -> np.ndarray:
    """``(replicate, chain, draw)`` stationary AR(1) chains with unit innovations."""
    noise = rng.standard_normal((replicates, chains, draws))
    x = np.empty_like(noise)
    x[..., 0] = noise[..., 0] / np.sqrt(1.0 - phi**2)
    for t in range(1, draws):
        x[..., t] = phi * x[..., t - 1] + noise[..., t]
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicates", type=int, default=2000)
    parser.add_argument("--draws", type=int, default=1000, help="per chain")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    limit = ConvergenceThresholds().rhat_max
    rng = np.random.default_rng(args.seed)
    print(f"{args.chains} chains x {args.draws} draws, {args.replicates} replicates, R-hat limit {limit}")
    print("autocorrelation | median bulk ESS | share over the limit | 99th percentile of R-hat")
    for phi in (0.5, 0.7, 0.8, 0.9):
        x = ar1_chains(rng, phi, args.replicates, args.chains, args.draws)
        rhat = np.array([az.rhat(pair) for pair in x])
        ess = np.median([az.ess(pair, method="bulk") for pair in x[:200]])
        print(f"{phi:.1f} | {ess:.0f} | {np.mean(rhat > limit):.3f} | {np.quantile(rhat, 0.99):.4f}")


if __name__ == "__main__":
    main()

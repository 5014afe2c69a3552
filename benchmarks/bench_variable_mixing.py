"""Fit the dynamic model and print the worst R-hat, bulk and tail ESS of chosen variables.

For each seed, a fit of ``--data`` (as in ``bench_dynamic.py``) with 2 chains x ``--draws``
after ``--tune``, target accept 0.95, then one line per variable: the largest rank-normalised
R-hat and the smallest bulk and tail ESS over its elements (constant elements left out), after
the fit's own headline.  It compares how well given parts of the posterior mix, for example
before and after a change of the sampler's coordinates (run it from a worktree with
``PYTHONPATH`` set to it for the "before")::

    .venv/bin/python benchmarks/bench_variable_mixing.py --data shipped --seeds 1,2,3 \\
        --variables effect_mean,effect_sd,effect,half_life,half_life_log_mean,half_life_log_sd
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

DEFAULT_VARIABLES = "effect_mean,effect_sd,effect,half_life,half_life_log_mean,half_life_log_sd"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="shipped")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--variables", default=DEFAULT_VARIABLES)
    args = parser.parse_args()

    from bench_dynamic import request_for

    from forecast.checks.diagnostics import check_convergence
    from forecast.checks.rank_diagnostics import rank_diagnostics
    from forecast.jobs.data import load_data
    from forecast.models.design import ModelOptions
    from forecast.models.model import EscalationModel, SamplerSettings

    with tempfile.TemporaryDirectory() as folder:
        loaded = load_data(request_for(args.data, Path(folder)))
    for seed in (int(s) for s in args.seeds.split(",")):
        model = EscalationModel(
            loaded.panel, loaded.interventions, options=ModelOptions(family="dynamic", changepoints=0)
        )
        settings = SamplerSettings(
            draws=args.draws, tune=args.tune, target_accept=0.95, random_seed=seed, progressbar=False
        )
        result = model.fit(settings)
        print(f"seed {seed}: sampling {result.timings['sample_s']:.1f} s; {check_convergence(result.idata).headline()}")
        posterior = result.idata.posterior
        for name in args.variables.split(","):
            draws = posterior[name].transpose("chain", "draw", ...).to_numpy()
            rhat, bulk, tail = (np.atleast_1d(v) for v in rank_diagnostics(draws))
            varying = np.isfinite(rhat)
            if not varying.any():  # a variable fixed by the model (burst where no front has one)
                print(f"  {name:20s} constant in every draw", flush=True)
                continue
            print(
                f"  {name:20s} R-hat {rhat[varying].max():.4f}  bulk ESS {bulk[varying].min():6.0f}"
                f"  tail ESS {tail[varying].min():6.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()

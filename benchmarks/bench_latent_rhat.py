"""Why the dynamic model's largest R-hat is noisy: fit one data set with several seeds and print
the largest R-hats and, for the worst element, what drives its R-hat.

For each seed: the diagnostics' headline, the five largest R-hats (rank-normalised, as the checks
compute them) and, for the worst element, its R-hat from the raw draws ("identity"), its bulk and
tail ESS, the ESS of its folded draws ``|x - median|`` and the lag-1 autocorrelation of ``x`` and
of ``|x - median|`` in each chain.  Example (the figures behind ``DEFAULT_DRAWS``)::

    .venv/bin/python benchmarks/bench_latent_rhat.py --data acled:ethiopia_battles --draws 1000 --seeds 1,2,3
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="acled:ethiopia_battles", help="as bench_dynamic.py's --data")
    parser.add_argument("--draws", type=int, default=None, help="per chain (default: the dynamic model's)")
    parser.add_argument("--seeds", default="1,2,3")
    args = parser.parse_args()

    import arviz as az
    from bench_dynamic import request_for

    from forecast.checks.diagnostics import check_convergence
    from forecast.jobs.data import load_data
    from forecast.models.design import ModelOptions
    from forecast.models.model import DEFAULT_DRAWS, EscalationModel, SamplerSettings

    draws = DEFAULT_DRAWS["dynamic"] if args.draws is None else args.draws
    with tempfile.TemporaryDirectory() as folder:
        loaded = load_data(request_for(args.data, Path(folder)))
    model = EscalationModel(loaded.panel, loaded.interventions, options=ModelOptions(family="dynamic", changepoints=0))
    for seed in (int(s) for s in args.seeds.split(",")):
        settings = SamplerSettings(draws=draws, tune=1000, target_accept=0.95, random_seed=seed, progressbar=False)
        result = model.fit(settings)
        diagnostics = check_convergence(result.idata)
        print(f"{args.data}, 2 chains x {draws} draws, seed {seed}: {diagnostics.headline()}", flush=True)
        posterior = result.idata.posterior
        rhats = []
        for name, values in az.rhat(posterior).data_vars.items():
            array = np.asarray(values)
            if array.size and np.isfinite(array).any():
                index = np.unravel_index(int(np.nanargmax(array)), array.shape)
                rhats.append((float(np.nanmax(array)), name, tuple(int(i) for i in index)))
        rhats.sort(reverse=True)
        for value, name, index in rhats[:5]:
            print(f"  R-hat {value:.4f}  {name}{list(index) if index else ''}")
        _, name, index = rhats[0]
        x = posterior[name].to_numpy()[(slice(None), slice(None), *index)]
        folded = np.abs(x - np.median(x))
        lag1 = [float(az.autocorr(chain)[1]) for chain in x]
        lag1_folded = [float(az.autocorr(chain)[1]) for chain in folded]
        print(
            f"  worst element: R-hat identity {float(az.rhat(x, method='identity')):.4f}, "
            f"bulk ESS {float(az.ess(x)):.0f}, tail ESS {float(az.ess(x, method='tail')):.0f}, "
            f"folded ESS {float(az.ess(folded)):.0f} of {x.size}, lag-1 autocorrelation "
            f"x {np.round(lag1, 2).tolist()}, |x - median| {np.round(lag1_folded, 2).tolist()}",
            flush=True,
        )


if __name__ == "__main__":
    main()

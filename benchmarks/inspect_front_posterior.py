"""Fit a panel with the dynamic model and print one front's posterior, chain by chain.

For the front named by ``--front``: the per-chain means and the 5, 25, 50, 75 and 95% quantiles
of its per-period dispersion (``log_dispersion``, the log of one period's negative binomial
alpha), level scale and tail weight; the correlation of ``log_dispersion`` with the log level
scale and with each of the level's steps (the strongest three); the front's first counts; and a
histogram of ``log_dispersion``.  It shows what a failing R-hat on a front's dispersion is made
of: two chains that weight two explanations of the same counts differently.

Example (the front that fails most often on the ACLED panel)::

    .venv/bin/python benchmarks/inspect_front_posterior.py --data acled --front mozambique_remote_violence
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="acled", help="as bench_dynamic.py: shipped, acled or acled:FRONT[+FRONT...]")
    parser.add_argument("--front", required=True)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from bench_dynamic import request_for

    from forecast import names as n
    from forecast.checks.diagnostics import check_convergence
    from forecast.fits import posterior
    from forecast.jobs.data import load_data
    from forecast.models.design import ModelOptions
    from forecast.models.model import DEFAULT_TUNE, EscalationModel, SamplerSettings

    with tempfile.TemporaryDirectory() as folder:
        loaded = load_data(request_for(args.data, Path(folder)))
    model = EscalationModel(loaded.panel, loaded.interventions, options=ModelOptions(family="dynamic", changepoints=0))
    if args.front not in model.design.fronts:
        raise SystemExit(f"no front {args.front!r}; the fronts are {list(model.design.fronts)}")
    settings = SamplerSettings(
        draws=args.draws,
        tune=DEFAULT_TUNE["dynamic"] if args.tune is None else args.tune,
        random_seed=args.seed,
        progressbar=False,
    )
    fit = model.fit(settings)
    print(check_convergence(fit.idata).headline())
    draws = posterior(fit.idata).sel({n.FRONT: args.front})
    design = model.design
    front = list(design.fronts).index(args.front)
    print(f"{args.front}: first counts {design.y[design.obs_front == front][:12].tolist()}")
    log_dispersion = np.log(draws["dispersion"].to_numpy() * np.median(design.period_days))
    columns = {
        "log_dispersion (one period's)": log_dispersion,
        "sigma_level (a day's)": draws["sigma_level"].to_numpy(),
        "tail_weight": draws["tail_weight"].to_numpy(),
    }
    for name, values in columns.items():
        means = ", ".join(f"{m:.3f}" for m in values.mean(axis=1))
        quantiles = ", ".join(f"{q:.3f}" for q in np.quantile(values, QUANTILES))
        print(f"  {name}: chain means {means}; quantiles 5-95% {quantiles}")
    flat = log_dispersion.ravel()
    sigma = np.log(draws["sigma_level"].to_numpy()).ravel()
    print(f"  correlation of log_dispersion with log sigma_level: {np.corrcoef(flat, sigma)[0, 1]:+.2f}")
    level = draws["level"].transpose("chain", "draw", n.TIME).to_numpy()
    steps = np.diff(level[..., : len(design.periods)], axis=-1).reshape(-1, len(design.periods) - 1)
    moving = steps.std(axis=0) > 0
    correlation = np.full(steps.shape[1], np.nan)
    correlation[moving] = [np.corrcoef(flat, steps[:, t])[0, 1] for t in np.flatnonzero(moving)]
    for t in np.argsort(-np.abs(np.nan_to_num(correlation)))[:3]:
        low, mid, high = np.quantile(steps[:, t], (0.05, 0.5, 0.95))
        print(
            f"  level step into period {t + 1} ({design.periods[t + 1].date()}): correlation with log_dispersion "
            f"{correlation[t]:+.2f}, quantiles 5/50/95% {low:.2f} / {mid:.2f} / {high:.2f}"
        )
    counts, edges = np.histogram(flat, bins=12)
    bins = ", ".join(f"{e:.1f}: {c}" for e, c in zip(edges[:-1], counts, strict=True))
    print(f"  histogram of log_dispersion (bin start: draws): {bins}")


if __name__ == "__main__":
    main()

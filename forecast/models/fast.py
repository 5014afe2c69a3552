"""Fast approximate inference for backtests: mean-field ADVI (PyMC) or Pathfinder (pymc-extras).

Backtests fit the model once per origin, so a variational approximation can trade accuracy
for time.  :func:`fit_fast` returns a :class:`~forecast.models.model.FitResult` whose
posterior has the ``(chain, draw)`` shape of a NUTS fit (one chain), so forecasts and
summaries work unchanged.  Its ``settings`` say which method made it; R-hat, ESS,
divergences and BFMI do not apply to independent draws from an approximation and are not
computed for it.

ADVI (mean-field, ``pm.fit``) is the default: Adam with a clipped gradient norm, started
narrow around the initial point (PyMC's default adagrad step diverged to NaN on the shipped
data), stopped when the parameters settle (``CheckParametersConvergence``) or after
``advi_iterations``.  Its group-level spreads are known to be too small
(``PERFORMANCE-NOTES.md``); ``forecast backtest --inference fast`` measures what that costs
in scores.

Pathfinder (Zhang et al. 2022) can be chosen but fails on this model with pymc-extras 0.10:
with importance sampling its weights are NaN, and without it the back-transformation cannot
vectorise one of the model's indexing operations.  It is kept selectable so that a later
pymc-extras can be tried without code changes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import arviz as az
import numpy as np
import pymc as pm

from forecast.errors import OptionError
from forecast.models.model import EscalationModel, FitResult

log = logging.getLogger(__name__)

FAST_METHODS = ("advi", "pathfinder")
DEFAULT_FAST_METHOD = "advi"
#: Adam with a clipped gradient norm: the default adagrad step diverged to NaN on the shipped data.
ADVI_LEARNING_RATE = 0.01
ADVI_GRAD_NORM = 100.0
ADVI_START_SIGMA = 0.05
#: Upper bound on ADVI steps; it usually stops earlier when the parameters settle.
ADVI_MAX_ITERATIONS = 10_000
#: Relative change of the variational parameters (every 100 steps) below which ADVI stops.
ADVI_TOLERANCE = 0.01


@dataclass(frozen=True)
class FastSettings:
    """How a fast (non-NUTS) fit was made; recorded like :class:`SamplerSettings`."""

    method: str = DEFAULT_FAST_METHOD
    draws: int = 1000
    random_seed: int = 1
    num_paths: int = 4
    advi_iterations: int = ADVI_MAX_ITERATIONS

    def __post_init__(self) -> None:
        if self.method not in FAST_METHODS:
            raise OptionError(f"unknown fast inference method {self.method!r}; allowed: {list(FAST_METHODS)}")
        if self.draws < 1:
            raise OptionError("draws must be >= 1")

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.method,
            "nuts": False,
            "draws": self.draws,
            "chains": 1,
            "random_seed": self.random_seed,
            "num_paths": self.num_paths if self.method == "pathfinder" else None,
            "advi_iterations": self.advi_iterations if self.method == "advi" else None,
        }


def fit_fast(
    model: EscalationModel,
    *,
    draws: int = 1000,
    random_seed: int,
    method: str = DEFAULT_FAST_METHOD,
    advi_iterations: int = ADVI_MAX_ITERATIONS,
    num_paths: int = 4,
) -> FitResult:
    """Fit ``model`` by mean-field ADVI (default) or Pathfinder.

    Parameters
    ----------
    model : EscalationModel
    draws : int
        Draws kept from the approximation (one chain).
    random_seed : int
    method : {"advi", "pathfinder"}
    advi_iterations : int
        Most ADVI steps (it stops earlier once converged).
    num_paths : int
        Pathfinder's independent L-BFGS paths.

    Returns
    -------
    FitResult
        ``idata.posterior`` has dims ``(chain=1, draw)`` and the variables a NUTS fit stores;
        ``settings`` is a :class:`FastSettings`.
    """
    settings = FastSettings(
        method=method, draws=draws, random_seed=random_seed, num_paths=num_paths, advi_iterations=advi_iterations
    )
    timings: dict[str, float] = {}
    start = time.perf_counter()
    pymc_model = model.model
    timings["build_s"] = time.perf_counter() - start
    keep = model.stored_variables()
    log.info("fitting %s by %s: %d draws", model.name, method, draws)
    start = time.perf_counter()
    if method == "pathfinder":
        from pymc_extras.inference import fit_pathfinder

        idata = fit_pathfinder(
            model=pymc_model,
            num_paths=num_paths,
            num_draws=draws,
            num_draws_per_path=-(-draws // num_paths),
            importance_sampling=None,
            random_seed=random_seed,
            progressbar=False,
            concurrent=None,
            display_summary=False,
            add_pathfinder_groups=False,
        )
        posterior = idata.posterior
    else:
        with pymc_model:
            # Start narrow around the initial point: random starting draws at the default
            # spread gave NaN densities on the shipped data.
            start_sigma = {
                v.name: np.full(pymc_model.initial_point()[v.name].size, ADVI_START_SIGMA)
                for v in pymc_model.value_vars
            }
            approximation = pm.fit(
                n=settings.advi_iterations,
                method=pm.ADVI(start_sigma=start_sigma, random_seed=random_seed),
                obj_optimizer=pm.adam(learning_rate=ADVI_LEARNING_RATE),
                total_grad_norm_constraint=ADVI_GRAD_NORM,
                callbacks=[pm.callbacks.CheckParametersConvergence(tolerance=ADVI_TOLERANCE, diff="relative")],
                random_seed=random_seed,
                progressbar=False,
            )
        posterior = approximation.sample(draws, random_seed=random_seed + 1, return_inferencedata=True).posterior
    timings["sample_s"] = time.perf_counter() - start
    posterior = posterior[[name for name in keep if name in posterior]]
    if "chain" not in posterior.dims:
        posterior = posterior.expand_dims(chain=[0])
    posterior = posterior.transpose("chain", "draw", ...)
    return FitResult(
        idata=az.InferenceData(posterior=posterior),
        design=model.design,
        model=pymc_model,
        settings=settings,  # type: ignore[arg-type]  # a non-NUTS fit records its own settings
        timings=timings,
    )

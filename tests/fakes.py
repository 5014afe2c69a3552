"""Fake posteriors and fits shared by several test files (no MCMC).

Only fakes that two or more test files build go here; a fake that one file needs stays in it.
"""

from __future__ import annotations

from collections.abc import Mapping

import arviz as az
import numpy as np
import xarray as xr

from forecast.checks.prior_predictive import sample_prior
from forecast.models.model import EscalationModel, FitResult, SamplerSettings

#: Chains of the hand-built posteriors.
CHAINS = 2


def two_chain_posterior(
    values: Mapping[str, tuple[tuple[str, ...], np.ndarray]], coords: Mapping, *, draws: int
) -> xr.Dataset:
    """A 2-chain posterior of ``draws`` draws per chain from known values.

    Parameters
    ----------
    values : mapping of str to (dims, array)
        Per variable its dims (after ``chain`` and ``draw``) and either one value for every
        draw, or per-draw values whose first axis has length ``2 * draws``.
    coords : mapping
        Coordinates of the dims in ``values`` (``chain`` and ``draw`` are added).
    draws : int
        Draws per chain.
    """
    data = {}
    for name, (dims, value) in values.items():
        value = np.asarray(value, dtype=float)
        if value.shape[:1] != (CHAINS * draws,):
            value = np.broadcast_to(value, (CHAINS * draws, *value.shape))
        data[name] = (("chain", "draw", *dims), value.reshape(CHAINS, draws, *value.shape[1:]))
    return xr.Dataset(data, coords={"chain": list(range(CHAINS)), "draw": range(draws), **coords})


def prior_as_posterior(model: EscalationModel, draws: int = 40, seed: int = 3) -> xr.Dataset:
    """Prior draws shaped like a 2-chain posterior: a fake fit with known provenance."""
    data = sample_prior(model, draws=2 * draws, random_seed=seed).isel(chain=0)
    halves = [data.isel(draw=slice(0, draws)), data.isel(draw=slice(draws, 2 * draws)).assign_coords(draw=range(draws))]
    return xr.concat(halves, dim="chain").assign_coords(chain=[0, 1])


def prior_fit_result(model: EscalationModel, settings: SamplerSettings) -> FitResult:
    """Prior draws shaped like a posterior as a :class:`FitResult`: fit jobs run end to end without MCMC.

    It has the signature of the jobs' injectable sampling step (``sample=``).
    """
    return FitResult(
        idata=az.InferenceData(posterior=model.without_padding(prior_as_posterior(model))),
        design=model.design,
        model=model.model,
        settings=settings,
    )

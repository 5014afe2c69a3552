r"""Prior predictive checks: what counts do the priors alone expect for a panel?

Draws :math:`\theta^{(s)} \sim p(\theta)` from the model's priors (the likelihood is a
``Potential`` and is left out, which is exactly what a prior draw means), then, exactly as
the posterior predictive does (:func:`forecast.models.posterior.draw_level`), samples each
front's changepoint positions given :math:`\theta^{(s)}` and the replicated counts

.. math::

    \tilde y^{(s)}_i \sim \operatorname{NegBin}\big(\mu^{(s)}_i, \alpha^{(s)}_{f(i)}\big),
    \qquad \mu^{(s)}_i = \text{exposure}_i \sum_{d \in i} \lambda^{(s)}_{f(i),d}.

The changepoint positions are sampled from their conditional given the observed data and
:math:`\theta^{(s)}` (the only way the marginalised model exposes them); every continuous
parameter comes from the prior alone.  :func:`prior_predictive_summary` reports, per front,
the quantiles of the simulated *daily* counts (period counts divided by their observed days)
against the observed ones.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from forecast.models.design import Design
from forecast.models.model import EscalationModel
from forecast.models.posterior import draw_level, replicate_counts

SUMMARY_COLUMNS = ["front", "observed_median", "observed_max", "prior_median", "prior_q90", "prior_q99", "share_over"]


def sample_prior(model: EscalationModel, *, draws: int, random_seed: int) -> xr.Dataset:
    """Prior draws of the model's stored variables, shaped like a one-chain posterior.

    Parameters
    ----------
    model : EscalationModel
    draws : int
        Number of prior draws (>= 1).
    random_seed : int

    Returns
    -------
    xarray.Dataset
        Every variable the fit stores, with dims ``(chain, draw, ...)`` and one chain.
    """
    if draws < 1:
        raise ValueError("draws must be >= 1")
    with warnings.catch_warnings():
        # The likelihood is a Potential; leaving it out is exactly what a prior draw means.
        warnings.filterwarnings("ignore", message="The effect of Potentials", category=UserWarning)
        prior = pm.sample_prior_predictive(draws=draws, model=model.model, random_seed=random_seed).prior
    stored = [name for name in model.stored_variables() if name in prior]
    return prior[stored]


def prior_predictive_counts(model: EscalationModel, *, draws: int, random_seed: int) -> np.ndarray:
    """Replicated counts ``(chain, draw, obs)`` of every observation under the priors alone.

    Parameters
    ----------
    model : EscalationModel
    draws : int
        Number of prior draws.
    random_seed : int
        Seeds the prior draws, the changepoint positions and the counts (three derived seeds).

    Returns
    -------
    numpy.ndarray
        Integer counts with one chain, in the order of ``model.design.y``.
    """
    seeds = np.random.SeedSequence(random_seed).generate_state(3)
    prior = sample_prior(model, draws=draws, random_seed=int(seeds[0]))
    levels = draw_level(model, prior, random_seed=int(seeds[1]))
    return replicate_counts(levels, random_seed=int(seeds[2]))


def period_daily_counts(design: Design, replicated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Daily counts (count / observed days) of the period observations: replicated and observed.

    Parameters
    ----------
    design : Design
    replicated : array (..., obs)
        Predictive counts in the order of ``design.y``.

    Returns
    -------
    simulated : array (sample, period observation)
    observed : array (period observation,)
    """
    replicated = np.asarray(replicated)
    if replicated.shape[-1] != design.n_obs:
        raise ValueError(f"replicated has {replicated.shape[-1]} observations, the design has {design.n_obs}")
    simulated = replicated.reshape(-1, design.n_obs)[:, design.period_obs] / design.period_exposure
    return simulated, design.y[design.period_obs] / design.period_exposure


def prior_predictive_summary(model: EscalationModel, replicated: np.ndarray, *, over: float = 1e5) -> pd.DataFrame:
    """Per front, observed against prior-predictive daily counts of the period observations.

    Parameters
    ----------
    model : EscalationModel
    replicated : array (chain, draw, obs)
        From :func:`prior_predictive_counts`.
    over : float
        ``share_over`` is the share of simulated daily counts above this value.

    Returns
    -------
    pandas.DataFrame
        :data:`SUMMARY_COLUMNS`, one row per front with period observations; daily counts are
        ``count / observed days`` (fronts observed only through window totals are left out).
    """
    design = model.design
    simulated, observed = period_daily_counts(design, replicated)
    fronts = design.obs_front[design.period_obs]
    rows = []
    for f, front in enumerate(design.fronts):
        mask = fronts == f
        if not mask.any():
            continue
        values = simulated[:, mask]
        rows.append(
            {
                "front": front,
                "observed_median": float(np.median(observed[mask])),
                "observed_max": float(observed[mask].max()),
                "prior_median": float(np.median(values)),
                "prior_q90": float(np.quantile(values, 0.9)),
                "prior_q99": float(np.quantile(values, 0.99)),
                "share_over": float(np.mean(values > over)),
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)

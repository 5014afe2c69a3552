"""Draw-level quantities after a fit: changepoint positions, regimes, replicated counts.

Changepoint positions are not sampled by NUTS (they are summed out); here each posterior
draw gets positions drawn from their exact conditional posterior given that draw's
continuous parameters (backward sampling over the forward terms of
:mod:`forecast.models.changepoints`).  With those, every draw has a regime per observation,
hence a mean, a pointwise log-likelihood (for PSIS-LOO over the joint posterior of the
continuous parameters and the positions) and replicated counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from forecast import names as n
from forecast.models import dynamic
from forecast.models.escalation import OBS, total_dispersion
from forecast.models.model import EscalationModel
from forecast.names import SAMPLE_DIMS


@dataclass(frozen=True)
class DrawLevel:
    """Per-draw regimes, means and log-likelihoods of every observation.

    Attributes
    ----------
    positions : (chain, draw, changepoint, front) int
        Sampled changepoint positions (index into each front's observations).
    regime : (chain, draw, obs) int
    log_mean : (chain, draw, obs) float
        log of the expected count under the sampled regime.
    loglik : (chain, draw, obs) float
        Pointwise log-likelihood under the sampled regime.
    dispersion : (chain, draw, obs) float or None
        Negative binomial alpha of each observation: its front's daily alpha times the days it
        covers (:func:`forecast.models.escalation.total_dispersion`; None for Poisson).
    """

    positions: np.ndarray
    regime: np.ndarray
    log_mean: np.ndarray
    loglik: np.ndarray
    dispersion: np.ndarray | None


def sample_positions(forward: np.ndarray, valid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Backward-sample ordered changepoint positions.

    Parameters
    ----------
    forward : (..., changepoint, front, position)
        Forward terms :math:`B_k[s]` (log scale).
    valid : (front, position) bool

    Returns
    -------
    (..., changepoint, front) int, strictly increasing along ``changepoint``.
    """
    k = forward.shape[-3]
    out = np.zeros(forward.shape[:-1], dtype=np.int64)
    width = forward.shape[-1]
    upper = np.full(forward.shape[:-3] + forward.shape[-2:-1], width)  # (..., front): tau_{k+1}
    index = np.arange(width)
    for j in range(k - 1, -1, -1):
        scores = np.where(valid & (index < upper[..., None]), forward[..., j, :, :], -np.inf)
        gumbel = rng.gumbel(size=scores.shape)
        choice = np.argmax(scores + gumbel, axis=-1)
        out[..., j, :] = choice
        upper = choice
    return out


def draw_level(model: EscalationModel, posterior: xr.Dataset, *, random_seed: int) -> DrawLevel:
    """Sample positions and compute each draw's regimes, means and log-likelihoods."""
    design = model.design
    if design.options.family == "dynamic":
        return _dynamic_draw_level(model, posterior)
    rng = np.random.default_rng(random_seed)
    k = design.options.changepoints
    names = ["base_log_mean", "regime_loglik"] + (["changepoint_forward"] if k else [])
    derived = model.derived(posterior, names)
    base = derived["base_log_mean"].transpose(*SAMPLE_DIMS, OBS).to_numpy()
    regime_loglik = derived["regime_loglik"].transpose(*SAMPLE_DIMS, "regime", OBS).to_numpy()
    shape = base.shape[:2]
    if k:
        forward = derived["changepoint_forward"].transpose(*SAMPLE_DIMS, n.CHANGEPOINT, n.FRONT, "position").to_numpy()
        positions = sample_positions(forward, design.changepoint_valid, rng)
        jump = posterior["jump"].transpose(*SAMPLE_DIMS, n.FRONT, n.CHANGEPOINT).to_numpy()
    else:
        positions = np.zeros(shape + (0, len(design.fronts)), dtype=np.int64)
        jump = np.zeros(shape + (len(design.fronts), 0))
    obs_position = np.zeros(design.n_obs, dtype=np.int64)
    obs_position[design.position[design.position_mask]] = np.nonzero(design.position_mask)[1]
    front_positions = positions[..., design.obs_front]  # (chain, draw, changepoint, obs)
    regime = (front_positions <= obs_position).sum(axis=-2)
    offsets = np.concatenate([np.zeros(shape + (len(design.fronts), 1)), np.cumsum(jump, axis=-1)], axis=-1)
    log_mean = base + np.take_along_axis(offsets[..., design.obs_front, :], regime[..., None], axis=-1)[..., 0]
    loglik = np.take_along_axis(regime_loglik, regime[:, :, None, :], axis=2)[:, :, 0, :]
    dispersion = None
    if "dispersion" in posterior:
        daily = posterior["dispersion"].transpose(*SAMPLE_DIMS, n.FRONT).to_numpy()[..., design.obs_front]
        dispersion = total_dispersion(daily, design.obs_days)
    return DrawLevel(positions=positions, regime=regime, log_mean=log_mean, loglik=loglik, dispersion=dispersion)


def _dynamic_draw_level(model: EscalationModel, posterior: xr.Dataset) -> DrawLevel:
    """The dynamic model has no regimes: each draw's means and log-likelihoods come from its graph."""
    design = model.design
    # Compiled for the backend the sampler used (Numba for nutpie), whose operations are then
    # compiled already: from an empty cache the C backend compiled them all again (shipped data,
    # checks after a cold nutpie fit 55.5 s, 28.7 s in Numba mode).  From the stored level,
    # burst, effects and dispersion, not from the free variables: the whole model's graph took
    # most of the checks' time.
    mode = "NUMBA" if posterior.attrs.get("inference_library") == "nutpie" else None
    given = [name for name in dynamic.POST_HOC_INPUTS if name in posterior and name in model.model.named_vars]
    derived = model.derived(posterior, list(dynamic.POST_HOC_VARIABLES), mode=mode, given=given)
    log_mean = derived["obs_log_mean"].transpose(*SAMPLE_DIMS, OBS).to_numpy()
    loglik = derived["obs_loglik"].transpose(*SAMPLE_DIMS, OBS).to_numpy()
    daily = posterior["dispersion"].transpose(*SAMPLE_DIMS, n.FRONT).to_numpy()[..., design.obs_front]
    shape = log_mean.shape[:2]
    return DrawLevel(
        positions=np.zeros(shape + (0, len(design.fronts)), dtype=np.int64),
        regime=np.zeros(shape + (design.n_obs,), dtype=np.int64),
        log_mean=log_mean,
        loglik=loglik,
        dispersion=total_dispersion(daily, design.obs_days),
    )


def replicate_counts(draws: DrawLevel, *, random_seed: int) -> np.ndarray:
    """Replicated counts ``(chain, draw, obs)`` from each draw's means (gamma-Poisson mixture)."""
    rng = np.random.default_rng(random_seed)
    mean = np.exp(draws.log_mean)
    if draws.dispersion is not None:
        mean = rng.gamma(shape=draws.dispersion, scale=mean / draws.dispersion)
    return rng.poisson(mean)

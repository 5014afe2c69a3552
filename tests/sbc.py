"""Simulation-based calibration (SBC) of the escalation model, used by the slow tests.

SBC (Talts et al. 2018, "Validating Bayesian inference algorithms with simulation-based
calibration") checks a model and its sampler together: draw parameters from the prior,
simulate data from them with the model's own generative process, fit the model to those data
and record the rank of each true value among (nearly independent) posterior draws.  When
inference is correct the rank is uniform over ``0..L`` for ``L`` posterior draws, whatever the
prior; a biased likelihood, a wrong changepoint marginalisation or a sampler that misses part
of the posterior bends the histogram of ranks.

The generative process reproduced here, for a panel of daily fronts without interventions,
seasonality or self-excitation and with one changepoint per front (K = 1):

* the continuous parameters (``baseline``, ``jump``, ``dispersion`` and their hyperpriors) are
  drawn with ``pm.sample_prior_predictive`` from the model itself, so the priors cannot drift
  from the ones the fit uses (the changepoint ``Potential`` is ignored by prior sampling);
* ``base_log_mean`` (log expected count before the changepoint offset) is the model's own
  Deterministic, evaluated at those draws;
* the changepoint position of each front is uniform over the positions the model allows
  (``design.changepoint_valid``), which is the model's prior for K = 1;
* counts are negative binomial with mean ``exp(base_log_mean + jump * [position >= tau])``
  and dispersion ``alpha`` (variance ``mu + mu^2 / alpha``), drawn with numpy.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm
from scipy import stats

from forecast import names as n
from forecast.data.events import EventTable, make_event_frame
from forecast.data.panel import Panel, build_panel
from forecast.fits import posterior, sample_stats
from forecast.models.design import Design
from forecast.models.model import EscalationModel, SamplerSettings
from forecast.models.posterior import draw_level
from forecast.priors import PriorSet

#: Parameters whose prior draws define one replicate's truth.
PRIOR_VARIABLES = ("baseline", "jump", "dispersion", "base_log_mean")


@dataclass(frozen=True)
class PriorTruth:
    """One draw from the model's prior, and the counts generated from it.

    Attributes
    ----------
    baseline : (front,) log daily rate before the changepoint.
    jump : (front, 1) log rate ratio at the changepoint.
    dispersion : (front,) negative binomial alpha.
    position : (front,) changepoint position, an index into each front's observations.
    counts : (obs,) in the design's observation order.
    """

    baseline: np.ndarray
    jump: np.ndarray
    dispersion: np.ndarray
    position: np.ndarray
    counts: np.ndarray


def draw_prior_truths(model: EscalationModel, draws: int, *, random_seed: int) -> list[PriorTruth]:
    """Draw ``draws`` parameter sets from ``model``'s prior and simulate counts from each.

    ``model`` only provides the design (fronts, days, valid changepoint positions) and the
    priors; its observed counts are not used.
    """
    design = model.design
    if design.options.changepoints != 1:
        raise ValueError("this SBC generator handles exactly one changepoint per front")
    if len(design.window_obs) or len(design.interventions) or design.season_index is not None:
        raise ValueError("this SBC generator handles daily fronts without interventions or seasonality")
    if design.options.self_excitation:
        raise ValueError("this SBC generator does not handle self-excitation")
    with warnings.catch_warnings():
        # The changepoint Potential is the marginal likelihood, not part of the prior: ignoring
        # it is exactly what is wanted here, so PyMC's warning about it is expected.
        warnings.filterwarnings(
            "ignore", message="The effect of Potentials on other parameters is ignored", category=UserWarning
        )
        prior = pm.sample_prior_predictive(
            draws=draws, model=model.model, var_names=list(PRIOR_VARIABLES), random_seed=random_seed
        ).prior
    rng = np.random.default_rng(random_seed)
    values = {name: prior[name].isel(chain=0).to_numpy() for name in PRIOR_VARIABLES}
    truths = []
    for d in range(draws):
        position = np.array([rng.choice(np.flatnonzero(valid)) for valid in design.changepoint_valid])
        counts = simulate_counts(
            design,
            base_log_mean=values["base_log_mean"][d],
            jump=values["jump"][d],
            dispersion=values["dispersion"][d],
            position=position,
            rng=rng,
        )
        truths.append(
            PriorTruth(
                baseline=values["baseline"][d],
                jump=values["jump"][d],
                dispersion=values["dispersion"][d],
                position=position,
                counts=counts,
            )
        )
    return truths


def simulate_counts(
    design: Design,
    *,
    base_log_mean: np.ndarray,
    jump: np.ndarray,
    dispersion: np.ndarray,
    position: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Negative binomial counts, one per observation, from the model's generative process (K = 1)."""
    obs_position = np.zeros(design.n_obs, dtype=np.int64)
    obs_position[design.position[design.position_mask]] = np.nonzero(design.position_mask)[1]
    after = obs_position >= position[design.obs_front]
    mean = np.exp(base_log_mean + jump[design.obs_front, 0] * after)
    alpha = dispersion[design.obs_front]
    return rng.negative_binomial(alpha, alpha / (alpha + mean)).astype(np.int64)


def panel_with_counts(template: Panel, design: Design, counts: np.ndarray) -> Panel:
    """A daily panel with ``template``'s fronts and days and the given counts (design order)."""
    days = design.obs_date
    frame = make_event_frame(
        dates=pd.Series(days),
        end_dates=pd.Series(pd.NaT, index=range(len(days)), dtype="datetime64[ns]"),
        fronts=pd.Series([design.fronts[f] for f in design.obs_front], dtype=object),
        counts=pd.Series(counts),
        precision=pd.Series(n.PRECISION_EXACT, index=range(len(days)), dtype=object),
        source=pd.Series("sbc", index=range(len(days)), dtype=object),
        file="<sbc>",
        lines=np.arange(1, len(days) + 1),
    )
    events = EventTable(frame=frame, warnings=(), files=("<sbc>",))
    return build_panel(events, freq=template.freq, start=template.start, as_of=template.end)


def rank_of(true_value: float, draws: np.ndarray, rng: np.random.Generator) -> int:
    """Rank of the true value among draws, ties broken uniformly at random (for discrete values)."""
    below = int(np.sum(draws < true_value))
    ties = int(np.sum(draws == true_value))
    return below + int(rng.integers(0, ties + 1))


def uniformity_p_value(ranks: np.ndarray, n_draws: int, bins: int, rng: np.random.Generator) -> float:
    """Chi-square test that ranks are uniform on ``0..n_draws``.

    Each rank is spread uniformly over its unit cell, ``u = (rank + U(0, 1)) / (n_draws + 1)``,
    which is exactly uniform on (0, 1) under the null whatever ``n_draws`` and ``bins`` are,
    so any number of equal-width bins can be used.
    """
    u = (np.asarray(ranks) + rng.uniform(size=len(ranks))) / (n_draws + 1)
    observed, _ = np.histogram(u, bins=bins, range=(0.0, 1.0))
    return float(stats.chisquare(observed).pvalue)


@dataclass(frozen=True)
class Replicate:
    """Ranks of one SBC replicate (out of ``n_draws`` posterior draws) and its divergences."""

    ranks: dict[str, int]
    n_draws: int
    divergences: int


def replicate_ranks(
    template: EscalationModel,
    truth: PriorTruth,
    settings: SamplerSettings,
    *,
    priors: PriorSet,
    front: int,
    keep: int,
) -> Replicate:
    """Fit one replicate and rank its true ``baseline``, ``jump`` and changepoint position of ``front``.

    The posterior is thinned to ``keep`` draws (every ``chains * draws / keep``-th draw of each
    chain) so that the ranked draws are nearly independent; autocorrelated draws would pile
    ranks up at both ends even for a correct sampler.  Changepoint positions are drawn for each
    kept draw from their exact conditional posterior (:func:`forecast.models.posterior.draw_level`).
    """
    panel = panel_with_counts(template.panel, template.design, truth.counts)
    model = EscalationModel(panel, None, priors=priors, options=template.options)
    np.testing.assert_array_equal(model.design.y, truth.counts)
    fit = model.fit(settings)
    step = settings.chains * settings.draws // keep
    if step < 1 or keep % settings.chains:
        raise ValueError(f"cannot keep {keep} draws of {settings.chains} chains x {settings.draws}")
    kept = posterior(fit.idata).isel(draw=slice(step - 1, None, step))
    kept = kept.isel(draw=slice(0, keep // settings.chains))
    level = draw_level(model, kept, random_seed=settings.random_seed)
    name = template.design.fronts[front]
    draws = {
        "baseline": kept["baseline"].sel({n.FRONT: name}).to_numpy().ravel(),
        "jump": kept["jump"].sel({n.FRONT: name}).isel({n.CHANGEPOINT: 0}).to_numpy().ravel(),
        "position": level.positions[:, :, 0, front].ravel(),
    }
    true_values = {
        "baseline": truth.baseline[front],
        "jump": truth.jump[front, 0],
        "position": truth.position[front],
    }
    rng = np.random.default_rng(settings.random_seed)
    ranks = {key: rank_of(true_values[key], draws[key], rng) for key in draws}
    divergences = int(sample_stats(fit.idata)["diverging"].sum())
    return Replicate(ranks=ranks, n_draws=len(draws["baseline"]), divergences=divergences)

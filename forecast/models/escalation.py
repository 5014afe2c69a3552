r"""The hierarchical escalation model: counts per front with changepoints and interventions.

Generative model, for front :math:`f`, grid period :math:`t` and observation :math:`i`
(a period count or a window total; windows sum the daily rate over their days):

.. math::

    \log\lambda_{f,t} &= \beta_f + J_{f,r(i)} + \sum_j e_{f,j}\, s_j(t)
                        + \gamma_{\mathrm{season}(t)} + g\,x_{f,t} \\
    \mu_i &= \sum_t w_{i,t}\, \lambda_{f_i,t}
            \quad(w_{i,t}\text{: days of observation } i \text{ in period } t) \\
    y_i &\sim \operatorname{NegBin}(\mu_i, \alpha_{f_i})
          \quad(\text{or } \operatorname{Poisson}(\mu_i);\ \text{``at least'' totals are censored: }
          \Pr(Y \ge y_i)) \\
    J_{f,r} &= \sum_{k<r} \delta_{f,k},\quad r(i) = \#\{k : \tau_{f,k} \le \mathrm{pos}(i)\},
          \quad \tau_f \sim \text{uniform over ordered positions (marginalised)} \\
    \beta_f &\sim N(\mu_\beta, \sigma_\beta),\quad \delta_{f,k} \sim N(\mu_\delta, \sigma_\delta) \\
    e_{f,j} &= m_{\mathrm{kind}(j)} + \sigma_e z_{f,j},\quad z \sim N(0, 1) \\
    s_j(t) &= 2^{-(t - t_j)/h_j}\ (t \ge t_j,\ \text{pulse}),\quad
             1[t_j \le t \le t'_j]\ (\text{window}),\quad 1[t \ge t_j]\ (\text{step}) \\
    \log h_j &= \mu_h + \sigma_h \zeta_j,\quad \zeta \sim N(0, 1)

:math:`\lambda` is a daily rate; on weekly and coarser grids the intervention shapes are
averaged over each period's days.  The rate ratio of intervention :math:`j` on front
:math:`f` at full strength is :math:`\exp(e_{f,j})`.  Changepoint positions are summed out
exactly (:mod:`forecast.models.changepoints`), so NUTS samples only continuous parameters.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc_extras.prior import Prior

from forecast import names as n
from forecast.models.changepoints import LOG_ZERO, changepoint_posterior, logaddexp, logsumexp, marginal_loglik
from forecast.models.design import Design
from forecast.priors import KIND_DIM, SEASON_DIM  # declared once, with the priors' dims

MODEL_NAME = "escalation"
OBS = "obs"
REGIME = "regime"
POSITION = "position"
PAIR = "pair"
PULSE = "pulse"

# Variables that are recomputed after sampling rather than stored draw by draw.
POST_HOC_VARIABLES = ("base_log_mean", "regime_loglik", "changepoint_probability", "changepoint_forward")


def coords_of(design: Design) -> dict[str, list]:
    """Coordinates of every dimension of the model."""
    k = design.options.changepoints
    coords: dict[str, list] = {
        n.FRONT: list(design.fronts),
        OBS: list(range(design.n_obs)),
        REGIME: list(range(k + 1)),
        POSITION: list(range(design.position.shape[1])),
    }
    if k:
        coords[n.CHANGEPOINT] = list(range(k))
    if len(design.interventions):
        labels = design.labels
        coords[n.INTERVENTION] = labels
        coords[KIND_DIM] = list(design.kinds)
        coords[PAIR] = [
            f"{design.fronts[f]} | {labels[j]}"
            for f, j in zip(design.pair_front, design.pair_intervention, strict=True)
        ]
        if len(design.pulse_index):
            coords[PULSE] = [labels[j] for j in design.pulse_index]
    if design.season_index is not None:
        coords[SEASON_DIM] = list(design.season_labels)
    return coords


def build_escalation_model(design: Design, priors: Mapping[str, Prior]) -> pm.Model:
    """Build the PyMC model; nothing is sampled here.

    Parameters
    ----------
    design : Design
        From :func:`forecast.models.design.build_design`.
    priors : mapping of name to ``pymc_extras.prior.Prior``
        See ``priors/default.yaml``.
    """
    k = design.options.changepoints
    with pm.Model(coords=coords_of(design)) as model:
        loglik = regime_loglik(design, priors)
        if k:
            valid = design.changepoint_valid
            padded = pt.switch(design.position_mask[None], loglik[:, design.position], 0.0)
            per_front, forward = marginal_loglik(padded, valid, k, design.log_n_configurations)
            pm.Potential("marginal_loglik", per_front.sum())
            pm.Deterministic(
                "changepoint_probability",
                changepoint_posterior(padded, valid, k),
                dims=(n.CHANGEPOINT, n.FRONT, POSITION),
            )
            pm.Deterministic("changepoint_forward", pt.stack(forward), dims=(n.CHANGEPOINT, n.FRONT, POSITION))
        else:
            pm.Potential("marginal_loglik", loglik.sum())
    return model


def regime_loglik(design: Design, priors: Mapping[str, Prior]) -> pt.TensorVariable:
    """Create every parameter except the changepoint positions; return ``(regime, obs)`` log-likelihoods.

    Must be called inside a model context with :func:`coords_of` coordinates.  Shared by the
    marginalised model and the discrete-changepoint variant used for comparison.
    """
    options = design.options
    k = options.changepoints
    baseline = priors["baseline"].create_variable("baseline")
    log_rate = pt.zeros((len(design.fronts), len(design.periods))) + baseline[:, None]
    if len(design.interventions):
        log_rate = log_rate + _intervention_term(design, priors)
    if design.season_index is not None:
        seasonality = priors["seasonality"].create_variable("seasonality")
        log_rate = log_rate + seasonality[design.season_index][None, :]
    if options.self_excitation:
        excitation = priors["self_excitation"].create_variable("self_excitation")
        log_rate = log_rate + excitation * design.excitation

    base_log_mean = pm.Deterministic("base_log_mean", _observation_log_mean(design, log_rate), dims=OBS)
    if k:
        jump = priors["jump"].create_variable("jump")
        regime_offset = pt.concatenate([pt.zeros((len(design.fronts), 1)), pt.cumsum(jump, axis=1)], axis=1)
        regime_log_mean = base_log_mean[None, :] + regime_offset[design.obs_front].T
    else:
        regime_log_mean = base_log_mean[None, :]
    dispersion = None
    if options.likelihood == "negative_binomial":
        dispersion = priors["dispersion"].create_variable("dispersion")[design.obs_front]
    return pm.Deterministic(
        "regime_loglik", observation_loglik(design, regime_log_mean, dispersion), dims=(REGIME, OBS)
    )


def _intervention_term(design: Design, priors: Mapping[str, Prior]) -> pt.TensorVariable:
    """``(front, period)`` log rate contribution of the interventions."""
    effect_mean = priors["effect_mean"].create_variable("effect_mean")
    effect_sd = priors["effect_sd"].create_variable("effect_sd")
    effect_raw = pm.Normal("effect_raw", 0.0, 1.0, dims=PAIR)
    pair_effect = effect_mean[design.intervention_kind[design.pair_intervention]] + effect_sd * effect_raw
    n_interventions = len(design.interventions)
    effect = pt.zeros((len(design.fronts), n_interventions))
    effect = pt.set_subtensor(effect[design.pair_front, design.pair_intervention], pair_effect)
    effect = pm.Deterministic("effect", effect, dims=(n.FRONT, n.INTERVENTION))

    shapes = pt.as_tensor(design.fixed_shapes_day)
    if len(design.pulse_index):
        log_mean = priors["half_life_log_mean"].create_variable("half_life_log_mean")
        log_sd = priors["half_life_log_sd"].create_variable("half_life_log_sd")
        raw = pm.Normal("half_life_raw", 0.0, 1.0, dims=PULSE)
        half_life = pm.Deterministic("half_life", pt.exp(log_mean + log_sd * raw), dims=PULSE)
        shapes = pt.set_subtensor(shapes[design.pulse_index], pulse_shapes(design, half_life))
    if design.day_to_period is not None:
        shapes = pt.dot(shapes, design.day_to_period.T)
    return pt.dot(effect, shapes)


def pulse_shapes(design: Design, half_life: pt.TensorVariable) -> pt.TensorVariable:
    """``(pulse, day)`` decaying pulses: 1 on the start day, halving every ``half_life`` days."""
    elapsed = np.arange(len(design.days))[None, :] - design.intervention_start_day[design.pulse_index][:, None]
    after = elapsed >= 0
    return pt.switch(after, pt.exp(-np.log(2.0) * np.maximum(elapsed, 0) / half_life[:, None]), 0.0)


def _observation_log_mean(design: Design, log_rate: pt.TensorVariable) -> pt.TensorVariable:
    """log of the expected count of every observation, before changepoint offsets."""
    out = pt.zeros(design.n_obs)
    if len(design.period_obs):
        rows = design.obs_front[design.period_obs]
        period_part = np.log(design.period_exposure) + log_rate[rows, design.period_index]
        out = pt.set_subtensor(out[design.period_obs], period_part)
    if len(design.window_obs):
        rows = design.obs_front[design.window_obs]
        window_part = pt.log(pt.sum(design.window_weights * pt.exp(log_rate[rows]), axis=1))
        out = pt.set_subtensor(out[design.window_obs], window_part)
    return out


def observation_loglik(
    design: Design, log_mean: pt.TensorVariable, dispersion: pt.TensorVariable | None
) -> pt.TensorVariable:
    """``(regime, obs)`` log-likelihood of every observation under every regime.

    Negative binomial (mean ``mu``, variance ``mu + mu^2 / alpha``) written on the log-mean
    scale for stability, or Poisson when ``dispersion`` is None.  ``at_least`` totals
    contribute ``log P(Y >= y) = log(1 - sum_{k<y} p(k))``, summed explicitly over the
    ``k < y`` terms: exact, and far cheaper to compile and differentiate than the regularised
    incomplete beta function of the closed-form CDF (lower bounds here are small counts).
    """
    y = design.y.astype(float)
    alpha = None if dispersion is None else dispersion[None, :]
    exact = count_logpmf(y, log_mean, alpha)
    censored = np.flatnonzero(design.censored & (design.y > 0))
    if len(censored) == 0:
        return exact
    below = np.arange(int(design.y[censored].max()), dtype=float)  # k = 0 .. max(y) - 1
    inside = below[None, :] < design.y[censored][:, None]  # (censored, k)
    terms = count_logpmf(
        below[None, None, :],
        log_mean[:, censored][:, :, None],
        None if alpha is None else alpha[:, censored][:, :, None],
    )
    log_cdf = logsumexp(pt.switch(inside[None], terms, LOG_ZERO), axis=-1)
    return pt.set_subtensor(exact[:, censored], pt.log1mexp(pt.minimum(log_cdf, 0.0)))


def count_logpmf(y: np.ndarray, log_mean: pt.TensorVariable, alpha: pt.TensorVariable | None) -> pt.TensorVariable:
    """Negative binomial (or, with ``alpha`` None, Poisson) log-pmf given the log of the mean."""
    if alpha is None:
        return y * log_mean - pt.exp(log_mean) - pt.gammaln(y + 1.0)
    return (
        pt.gammaln(y + alpha)
        - pt.gammaln(alpha)
        - pt.gammaln(y + 1.0)
        + alpha * pt.log(alpha)
        + y * log_mean
        - (y + alpha) * logaddexp(pt.log(alpha), log_mean)
    )

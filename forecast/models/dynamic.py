r"""The dynamic count model: a moving level, reverting bursts and interventions, per front.

Generative model, for front :math:`f` and grid period :math:`t = 0 .. T-1` (days on a daily
grid; weeks, months or years otherwise) with :math:`d_t` observed days in period :math:`t`:

.. math::

    \log\lambda_{f,t} &= \ell_{f,t} + b_{f,t} + \sum_j e_{f,j}\, s_j(t)
                        \ (+ \gamma_{\mathrm{season}(t)}) \\
    \ell_{f,0} &= c_f + \sigma^{0}\,\eta_f, \qquad
    \ell_{f,t} = \ell_{f,t-1} + \sigma_f \sqrt{d_t}\,g_{t_f}(z_{f,t}) \\
    b_{f,t} &= \rho_f\, b_{f,t-1} + \kappa_f \sqrt{1 - \rho_f^2}\,g_{t_f}(u_{f,t}),
        \quad b_{f,0} = \kappa_f\,g_{t_f}(u_{f,0}),\quad \rho_f = r_f^{\bar d} \\
    g_t(z) &= \sinh\big((1 + t)\operatorname{asinh} z\big) / (1 + t), \qquad z, u \sim N(0, 1) \\
    \mu_i &= \sum_t w_{i,t}\,\lambda_{f_i,t},\qquad
    y_i \sim \operatorname{NegBin}(\mu_i,\ \alpha_{f_i}\, D_i)

* :math:`\lambda` is a daily rate.  :math:`\ell` is the **level**: a random walk whose
  innovations are heavy-tailed with an estimated **tail weight** :math:`t_f \in (0, 1/2)`:
  the sinh-arcsinh transformation :math:`g_t(z)` of a standard normal :math:`z` (Jones and
  Pewsey 2009), normal at :math:`t = 0`, slope 1 at 0, with tails that decay like
  :math:`e^{-c|x|^{2/(1+t)}}`: heavier than the normal's, so that a few large steps play the
  part of changepoints and many small ones the part of drift, but lighter than exponential, so
  that the rate (the exponential of the level) has a finite forecast mean
  (:mod:`forecast.models.tails`; with Tukey's *h* it was infinite for every tail weight).  Its
  scale :math:`\sigma_f` (of the ordinary steps) is per day: a period of :math:`d` days moves
  :math:`\sqrt d` as far.
* Why a transformation of a normal and not a Student-t: :math:`g_t` is a fixed function of a
  standard normal, so the innovations can be sampled as :math:`z` whatever the tail weight
  (non-centred in :math:`t` as well as in :math:`\sigma`).  A Student-t innovation's own
  density depends on its degrees of freedom, which ties the tail weight to every innovation of
  a front that the data barely inform (a front reported only in multi-day windows): measured on
  the shipped data, the Student-t form left the tail weight with bulk ESS 24 and R-hat 1.07.
* :math:`b` is the **burst** (fronts observed day by day on a daily grid, see
  :class:`DynamicLayout`): a stationary AR(1) with scale :math:`\kappa_f` and persistence
  :math:`r_f` per day (per period :math:`\rho_f = r_f^{\bar d}`, :math:`\bar d` the median
  period length), so that a spike reverts instead of becoming a new level; :math:`r_f < 0.82`
  (:data:`~forecast.models.dynamic_layout.BURST_PERSISTENCE_MAX`: a half-life of at most half a
  level step), so that the burst and the level do not take turns explaining the same weeks.  Its innovations
  carry the level's tail weight: with lighter-tailed bursts a one-day spike (7 October 2023 in
  the Gaza alerts: 1,640 against 115 the next day) is cheaper to explain as two large level
  steps, up and back down, than as one burst, and the posterior splits between the two.
* :math:`c_f` is the log of the front's own mean daily rate over its first observed four
  weeks (:func:`level_centre`), so the initial level is **not pooled across unlike fronts**;
  :math:`\eta_f \sim N(0, 1)` and :math:`\sigma^0` is the prior's scale.
* Observation :math:`i` (a period count or a window total; :math:`w_{i,t}` its days in period
  :math:`t`, :math:`D_i = \sum_t w_{i,t}`) is negative binomial with mean :math:`\mu_i` and
  dispersion :math:`\alpha_f D_i`: the distribution of a sum of :math:`D_i` independent daily
  NB(:math:`\lambda`, :math:`\alpha_f`) counts when the rate is constant, and the one
  definition used by the likelihood, the forecasts (daily draws), ``p_exceed`` and backtest
  scoring alike (:func:`forecast.models.escalation.total_dispersion`).  ``at_least`` totals
  contribute :math:`\log\Pr(Y \ge y_i)`, computed stably.  The sampler reads the sum of these
  terms and its gradient from one Numba kernel (:mod:`forecast.models.count_kernel`), which
  ``tests/test_count_kernel.py`` holds equal, term by term, to the PyTensor definition
  (:func:`forecast.models.escalation.observation_loglik`); the terms are stored as ``obs_loglik``.
* Interventions are those of the changepoint model (pulse with pooled half-life, window, step;
  effects pooled per kind, sign free).

Hyperparameters (:math:`\log\sigma_f`, :math:`\operatorname{logit}(2 t_f)`, :math:`\log\kappa_f`,
:math:`\operatorname{logit}(r_f / 0.82)`, :math:`\log(\alpha_f \bar d)`) are partially pooled across fronts on
their unconstrained scale, non-centred.  The dispersion's prior is on :math:`\alpha_f \bar d`, the
dispersion of one period's count (:math:`\bar d` the median period's days; a day's on a daily
grid), not on the daily :math:`\alpha_f`: its median of 5 a day put a month's count at 150,
near-Poisson, far from what monthly tables show.  Measured on the 45-series ACLED backtest (12
origins): fits passing every check 7 of 12 before, 11 of 12 after; the forecasts' scores barely
moved (one-step CRPS 0.762 and 0.760 of the naive error).

For a front with a burst, the pair :math:`(\log\alpha_f, \log\kappa_f)` is sampled as the split
of the front's excess variation, :math:`u = \log(\kappa^2 + 1/\alpha)` and
:math:`w = \log(\kappa^2\alpha)` (``burst_noise_split``, :func:`_noise_split`), with the model's own
prior and the map's Jacobian: the counts pin down the sum far better than the split, and in the
per-front offsets that made an L-shaped ridge.

A front reported mostly in windows longer than a period (:func:`window_fronts`) steps once per
window rather than every level step (:func:`level_knot_start`): a window's total then depends on
one level, where before the data could not see the path inside it.

Every front's level knots after the first are sampled in coordinates whitened by a Gaussian
approximation of their conditional posterior (:mod:`forecast.models.whitened`), and the steps
they imply are scored with the sinh-arcsinh transformation's exact density
(:func:`forecast.models.tails.sinh_arcsinh_logp`) and the map's Jacobian.  The fronts observed
period by period ("centred", :func:`centred_fronts`) step once per level step (``level_whitened``,
``level_step``), their knots observed through their periods' counts; the fronts reported mostly
in windows longer than a period step once per window (``level_window_whitened``,
``level_window_step``), each knot observed through the windows that lie in it.  Until
7 December 2026 the windowed fronts' knots were sampled as standard normals (non-centred): a
window's total pins its knot's level down, so the standard normals rode against the level's
scale and against the interventions' effects on those fronts, and one default fit of the
shipped data in about eight had a divergent draw.  For a front with a burst, the approximation
counts the burst's variance over a knot as part of the noise (:func:`_level_dispersion`).

One definition of the rate
--------------------------
:func:`latent_paths` is the numpy twin of the graph's level and burst (a test holds them equal
draw by draw), and :func:`simulate_future` continues those same recursions past ``as_of``
with fresh innovations per draw (future jumps and bursts included): forecasts, indicators and
the simulator use these two functions only.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc_extras.prior import Prior
from pytensor.compile.mode import Mode
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import graph_inputs

from forecast import names as n
from forecast.models.count_kernel import count_loglik_each, count_loglik_total
from forecast.models.design import Design
from forecast.models.dynamic_layout import (
    BURST_PERSISTENCE_MAX,
    CENTRE_DAYS,
    DAILY_LEVEL_PERIODS,
    DynamicLayout,
    burst_fronts,
    centred_fronts,
    first_observed_period,
    layout_of,
    level_centre,
    level_knot_start,
    level_periods_of,
    window_fronts,
)
from forecast.models.escalation import (
    OBS,
    DesignData,
    _fixed_normal,
    _intervention_term,
    _number,
    _observation_log_mean,
    coords_of,
)
from forecast.models.tails import TAIL_WEIGHT_MAX, sinh_arcsinh
from forecast.models.whitened import knot_sums, steps_and_logp, whitened_random
from forecast.models.whitened_path import ar1_path, ar1_paths

MODEL_NAME = "dynamic"

#: The public names, the layout's included (``dynamic.layout_of`` and the like keep working).
__all__ = [
    "CENTRE_DAYS",
    "DAILY_LEVEL_PERIODS",
    "MODEL_NAME",
    "POST_HOC_INPUTS",
    "POST_HOC_VARIABLES",
    "DynamicLayout",
    "build_dynamic_model",
    "burst_fronts",
    "centred_fronts",
    "dynamic_coords",
    "first_observed_period",
    "latent_paths",
    "layout_of",
    "level_centre",
    "level_knot_start",
    "level_periods_of",
    "simulate_future",
    "window_fronts",
]

#: Variables recomputed after sampling, not stored draw by draw.
POST_HOC_VARIABLES = ("obs_log_mean", "obs_loglik")
#: The stored variables they are computed from (those the model has): the graph is cut there,
#: so the function compiled after sampling is the observations' part of the graph only, not the
#: whole model from its free variables (shipped data, 2 x 1000 draws: the checks after sampling
#: 28.8 -> 13.9 s cold, benchmarks/results/dynamic/saved_fit_4d907b6/).
POST_HOC_INPUTS = ("level", "burst", "effect", "half_life", "seasonality", "dispersion")


#: The fronts that have a burst: the first dimension of the burst's coordinates and steps,
#: whose second is the time, so that a padded fit drops their padded periods as it drops the
#: level's (:meth:`forecast.models.model.EscalationModel.without_padding`).
BURST_FRONT = "burst_front"


def dynamic_coords(design: Design, layout: DynamicLayout | None = None) -> dict[str, list]:
    coords = coords_of(design)
    coords[n.TIME] = list(range(layout.n_latent if layout is not None else len(design.periods)))
    if layout is not None and layout.any_burst:
        coords[BURST_FRONT] = [design.fronts[f] for f in np.flatnonzero(layout.burst)]
    return coords


def build_dynamic_model(
    design: Design, priors: Mapping[str, Prior], *, shared_data: bool = False, pad_days: np.ndarray | None = None
) -> pm.Model:
    """Build the PyMC graph of the dynamic model; nothing is sampled here.

    Parameters
    ----------
    design : Design
        From :func:`forecast.models.design.build_design` (its changepoint options are ignored).
    priors : mapping of name to ``pymc_extras.prior.Prior``
        See ``priors/dynamic.yaml``.
    shared_data : bool
        Data as shared variables (see :class:`forecast.models.escalation.DesignData`).
    pad_days : array, optional
        Days of latent periods after the data (:attr:`DynamicLayout.pad_days`).
    """
    data = DesignData(design, shared=shared_data)
    layout = layout_of(design, pad_days)
    n_fronts = len(design.fronts)
    with pm.Model(coords=dynamic_coords(design, layout)) as model:
        split = _noise_split(priors, layout, n_fronts) if layout.any_burst else None
        centres = _level_noise_centres(priors, layout, n_fronts) if split is None else {}

        def per_front(name: str, transform, prior_name: str) -> pt.TensorVariable:
            pooled = _pooled(priors[prior_name], prior_name, n_fronts, centres.get(prior_name))
            return pm.Deterministic(name, transform(pooled), dims=n.FRONT)

        sigma = per_front("sigma_level", pt.exp, "log_sigma_level")
        tail = per_front("tail_weight", lambda x: TAIL_WEIGHT_MAX * pm.math.sigmoid(x), "logit_tail_weight")
        if layout.any_burst:
            if split is None:
                burst_sd = per_front("burst_sd", pt.exp, "log_burst_sd")
            else:
                burst_sd = pm.Deterministic("burst_sd", pt.exp(split[1]), dims=n.FRONT)
            persistence = per_front(
                "burst_persistence", lambda x: BURST_PERSISTENCE_MAX * pm.math.sigmoid(x), "logit_burst_persistence"
            )
        # log_dispersion is the alpha of one period's count; the model's alpha is a day's.
        if split is None:
            dispersion = per_front("dispersion", lambda x: pt.exp(x) / layout.persistence_days, "log_dispersion")
        else:
            dispersion = pm.Deterministic("dispersion", pt.exp(split[0]) / layout.persistence_days, dims=n.FRONT)
        initial = priors["initial_level"].create_variable("initial_level")  # (front,) standardised

        other = pt.zeros((n_fronts, layout.n_latent))  # the log rate's terms besides the level and the burst
        if len(design.interventions):
            other = other + _padded(_intervention_term(design, priors, data, split_by_centre=True), layout.n_latent)
        if design.season_index is not None:
            seasonality = priors["seasonality"].create_variable("seasonality")
            other = other + _padded(seasonality[data["season_index"]][None, :], layout.n_latent)
        burst_parameters = (burst_sd, persistence) if layout.any_burst else None
        level = _level(design, layout, data, (sigma, tail, dispersion, initial), other, burst_parameters)
        level = pm.Deterministic("level", level, dims=(n.FRONT, n.TIME))
        if layout.any_burst:
            burst = _burst(design, layout, data, (burst_sd, persistence, tail, dispersion), level + other)
        else:
            burst = pt.zeros((n_fronts, layout.n_latent))
        burst = pm.Deterministic("burst", burst, dims=(n.FRONT, n.TIME))
        log_rate = level + burst + other
        log_mean = pm.Deterministic("obs_log_mean", _observation_log_mean(design, data, log_rate), dims=OBS)
        alpha = dispersion[data["obs_front"]] * data["obs_days"]
        # The sampler reads the observations' log-likelihoods and their gradient from one kernel
        # (count_kernel.py), which tests hold equal to the PyTensor definition
        # (escalation.observation_loglik); the per-observation terms are recomputed from the same
        # kernel after sampling (POST_HOC_VARIABLES).
        counts = (log_mean, alpha, data["y"], data["log_y_factorial"], data["obs_kind"])
        pm.Deterministic("obs_loglik", count_loglik_each(*counts), dims=OBS)
        pm.Potential("likelihood", count_loglik_total(*counts))
    return model


def _padded(term: pt.TensorVariable, length: int) -> pt.TensorVariable:
    """``term`` (rows, data periods) with zero columns up to ``length`` latent periods.

    The number of zero columns is symbolic (from the term's own shape), so a backtest's origins,
    whose data differ in length, share one graph.
    """
    term = pt.as_tensor(term)
    return pt.concatenate([term, pt.zeros((term.shape[0], length - term.shape[1]))], axis=1)


def _pooled(prior: Prior, name: str, n_fronts: int, centre: pt.TensorVariable | None = None) -> pt.TensorVariable:
    """``(front,)`` a hyperparameter pooled across fronts; with one front, its population mean alone.

    Pooling one front has nothing to pool: the between-front spread and the front's offset are
    then identified by their priors only, and they slowed the sampler (measured on a single
    monthly ACLED front: bulk ESS 187 < 200 on ``log_dispersion``).  A single front gets the
    population mean's prior (``<name>_mu``) as its own.
    """
    mean = prior.parameters.get("mu")
    if n_fronts == 1 and isinstance(mean, Prior):
        return pm.Deterministic(name, mean.create_variable(f"{name}_mu")[None], dims=n.FRONT)
    if _splits_by_centre(prior):
        return _centre_and_spread(prior, name, n_fronts, centre)
    return prior.create_variable(name)


def _splits_by_centre(prior: Prior) -> bool:
    """A non-centred Normal per front, fixed between-front sd, around a Normal mean with fixed parameters."""
    return _is_pooled_normal(prior) and _number(prior.parameters["sigma"]) and _fixed_normal(prior.parameters["mu"])


def _centre_and_spread(
    prior: Prior, name: str, n_fronts: int, centre: pt.TensorVariable | None = None
) -> pt.TensorVariable:
    r"""``(front,)`` the pooled hyperparameter ``name``, sampled as the fronts' centre and their spread around it.

    The prior is the non-centred one, :math:`x_f = \mu + s z_f`, :math:`\mu \sim N(a, b^2)`,
    :math:`z_f \sim N(0, 1)`.  Where every front's data pin down its :math:`x_f`, the mean of the
    offsets moves exactly against :math:`\mu`, a ridge that a diagonal mass matrix crosses slowly.
    Split :math:`z` into its mean :math:`\bar z \sim N(0, 1/F)` and the zero-sum rest
    (``ZeroSumNormal``, independent of it); then :math:`x_f = m + s (z_f - \bar z)` with
    :math:`m = \mu + s \bar z \sim N(a, b^2 + s^2 / F)` (``<name>_centre``), and given
    :math:`m`, :math:`\bar z` is normal with a mean linear in :math:`m`, sampled non-centred
    (``<name>_mean_split``): the data see :math:`m` and the spread only.  The same joint prior in
    other coordinates; ``<name>_mu`` and ``<name>_offset`` are kept as deterministics.
    Measured on the 45-series ACLED panel (``benchmarks/bench_sampler_settings.py``, seeds 1-3,
    2 x (500 + 1000) draws): sampling 52.8-55.2 s against 53.4-65.2 s, smallest bulk ESS 346-392
    against 275-371; no change on the shipped data's 7 fronts.  ``centre``, where given, is the
    centre sampled in other coordinates with this prior (:func:`_level_noise_centres`).
    """
    a, centre_sd = _centre_prior(prior, n_fronts)
    b = float(prior.parameters["mu"].parameters["sigma"])
    s = float(prior.parameters["sigma"])
    centre_var = centre_sd**2
    if centre is None:
        centre = pm.Normal(f"{name}_centre", a, centre_sd)
    else:
        centre = pm.Deterministic(f"{name}_centre", centre)
    spread = pm.ZeroSumNormal(f"{name}_spread", sigma=1.0, dims=n.FRONT)
    mean_split = pm.Normal(f"{name}_mean_split", 0.0, 1.0)
    z_bar = (s / n_fronts) / centre_var * (centre - a) + np.sqrt(b**2 / (n_fronts * centre_var)) * mean_split
    pm.Deterministic(f"{name}_mu", centre - s * z_bar)
    pm.Deterministic(f"{name}_offset", z_bar + spread, dims=n.FRONT)
    return pm.Deterministic(name, centre + s * spread, dims=n.FRONT)


def _centre_prior(prior: Prior, n_fronts: int) -> tuple[float, float]:
    """Mean and sd of the normal prior of ``<name>_centre`` (:func:`_centre_and_spread`)."""
    mean = prior.parameters["mu"]
    a, b = float(mean.parameters["mu"]), float(mean.parameters["sigma"])
    s = float(prior.parameters["sigma"])
    return a, float(np.sqrt(b**2 + s**2 / n_fronts))


#: The free variable of the level fronts' centres of dispersion and level scale (see :func:`_level_noise_centres`).
LEVEL_NOISE_CENTRES = "level_noise_centre_split"


def _level_noise_centres(priors: Mapping[str, Prior], layout: DynamicLayout, n_fronts: int) -> dict:
    r"""``{"log_dispersion": centre, "log_sigma_level": centre}``, the two centres sampled as a split; or ``{}``.

    Without a burst, a front's excess variation beyond the Poisson comes from the level's steps
    (variance :math:`\sigma^2 K` over a level step of :math:`K` days) or from the negative
    binomial's noise (relative variance :math:`1/\alpha` a period), and the counts pin down their
    sum better than their split.  Across a panel the fronts' common part of that split is the two
    centres (:func:`_centre_and_spread`), and they moved together and slowest of all: on the
    45-series ACLED panel, correlation 0.68 (a scratch fit) and bulk ESS 267-286 and 296-339 (2 x 1000 draws,
    seeds 1-3), and both failing fits of its backtest failed on ``log_dispersion_centre``
    (R-hat 1.0101-1.0104).  Here they are sampled as :math:`u = \log(\sigma_c^2 + e^{-d_c}/K)` and
    :math:`w = \log(\sigma_c^2 K e^{d_c})` (the burst's split, :func:`_noise_split`, with
    :math:`-\log K` for its log days), with their own normal priors and the map's Jacobian: only
    the sampler's coordinates change.  Their bulk ESS rose to 305-359 and 342-474 on the same seeds
    (``benchmarks/results/backtest/level_noise_centres/``).  Only where both priors split by
    centre, the panel has several fronts and its level steps.
    """
    d_prior, s_prior = priors["log_dispersion"], priors["log_sigma_level"]
    if n_fronts == 1 or layout.n_knots < 2 or not (_splits_by_centre(d_prior) and _splits_by_centre(s_prior)):
        return {}
    (mu_d, sd_d), (mu_s, sd_s) = _centre_prior(d_prior, n_fronts), _centre_prior(s_prior, n_fronts)
    log_days = pt.constant(-np.log(float(np.median(layout.knot_days[1:]))))
    split = pm.CustomDist(
        LEVEL_NOISE_CENTRES,
        *(pt.constant(np.float64(v)) for v in (mu_d, sd_d, mu_s, sd_s)),
        log_days,
        logp=_noise_split_logp,
        random=_noise_split_random,
        support_point=_noise_split_support,
        shape=(2,),
    )
    d, s = _noise_split_inverse(split[0], split[1], log_days)
    return {"log_dispersion": d, "log_sigma_level": s}


#: The free variable of the burst fronts' split of their excess variation (see :func:`_noise_split`).
NOISE_SPLIT = "burst_noise_split"


def _is_pooled_normal(prior: Prior) -> bool:
    """A non-centred Normal per front around a population mean that has a prior of its own."""
    mean, scale = prior.parameters.get("mu"), prior.parameters.get("sigma")
    return (
        prior.distribution == "Normal"
        and not prior.centered
        and isinstance(mean, Prior)
        and not mean.dims
        and (isinstance(scale, int | float) or (isinstance(scale, Prior) and not scale.dims))
    )


def _scale_of(prior: Prior, name: str):
    scale = prior.parameters["sigma"]
    return scale.create_variable(f"{name}_sigma") if isinstance(scale, Prior) else pt.constant(np.float64(scale))


def _noise_split(priors: Mapping[str, Prior], layout: DynamicLayout, n_fronts: int):
    r"""``(log_dispersion, log_burst_sd)``, each ``(front,)``, with the burst fronts' pair sampled as a split.

    A front with a burst has two sources of day-to-day excess variation: the negative binomial's,
    relative variance :math:`1/\alpha` a day, and the burst's, :math:`\kappa^2` on the log scale.
    The counts pin down their sum far better than their split, so the posterior of
    :math:`(\log\alpha, \log\kappa)` lies along an L-shaped ridge (one arm near-Poisson with all
    the excess in the burst, the other with no burst), which NUTS crosses slowly: the shipped
    backtest's last failing fits were R-hat 1.010-1.014 on the Lebanon rockets' dispersion
    (correlation 0.65 with its burst scale).  Here a burst front's pair is sampled as
    :math:`u = \log(\kappa^2 + 1/\alpha)` and :math:`w = \log(\kappa^2 \alpha)` (``burst_noise_split``),
    which straightens the ridge, and the density is the model's own prior of the two non-centred
    offsets with the map's Jacobian (:math:`|\partial(\log\alpha, \log\kappa)/\partial(u, w)| = 1/2`):
    only the sampler's coordinates change, not the model.  Fronts without a burst keep their
    offsets.  A single front has the population means' priors as its own (:func:`_pooled`), so
    its split's density is theirs, with their fixed mean and sd: 360info's Gaza deaths fitted
    alone failed their checks without it, and without the burst's empty days whitened at their
    mode (``benchmarks/results/dynamic/single_burst_front/``).  None (the usual per-front
    variables) for priors of another form.
    """
    which = np.flatnonzero(layout.burst)
    d_prior, b_prior = priors["log_dispersion"], priors["log_burst_sd"]
    if not len(which) or not (_is_pooled_normal(d_prior) and _is_pooled_normal(b_prior)):
        return None
    if n_fronts == 1:
        means = d_prior.parameters["mu"], b_prior.parameters["mu"]
        if not all(_fixed_normal(mean) for mean in means):
            return None
        (mu_d, s_d), (mu_b, s_b) = (
            (pt.constant(np.float64(mean.parameters["mu"])), pt.constant(np.float64(mean.parameters["sigma"])))
            for mean in means
        )
    else:
        mu_d = d_prior.parameters["mu"].create_variable("log_dispersion_mu")
        mu_b = b_prior.parameters["mu"].create_variable("log_burst_sd_mu")
        s_d, s_b = _scale_of(d_prior, "log_dispersion"), _scale_of(b_prior, "log_burst_sd")
    others = np.flatnonzero(~layout.burst)
    log_days = pt.constant(np.float64(np.log(layout.persistence_days)))
    split = pm.CustomDist(
        NOISE_SPLIT,
        mu_d,
        s_d,
        mu_b,
        s_b,
        log_days,
        logp=_noise_split_logp,
        random=_noise_split_random,
        support_point=_noise_split_support,
        shape=(len(which), 2),
    )
    a, b = _noise_split_inverse(split[:, 0], split[:, 1], log_days)
    log_dispersion = pt.zeros(n_fronts)
    log_burst_sd = pt.zeros(n_fronts)
    if len(others):
        offset_d = pm.Normal("log_dispersion_offset", 0.0, 1.0, shape=len(others))
        offset_b = pm.Normal("log_burst_sd_offset", 0.0, 1.0, shape=len(others))
        log_dispersion = pt.set_subtensor(log_dispersion[others], mu_d + s_d * offset_d)
        log_burst_sd = pt.set_subtensor(log_burst_sd[others], mu_b + s_b * offset_b)
    log_dispersion = pt.set_subtensor(log_dispersion[which], a)
    log_burst_sd = pt.set_subtensor(log_burst_sd[which], b)
    return (
        pm.Deterministic("log_dispersion", log_dispersion, dims=n.FRONT),
        pm.Deterministic("log_burst_sd", log_burst_sd, dims=n.FRONT),
    )


def _noise_split_inverse(u, w, log_days):
    """``(log_dispersion, log_burst_sd)`` of a split ``(u, w)``."""
    return log_days - u + pt.softplus(w), (u - pt.softplus(-w)) / 2.0


def _noise_split_logp(value, mu_d, s_d, mu_b, s_b, log_days):
    a, b = _noise_split_inverse(value[..., 0], value[..., 1], log_days)
    z_d, z_b = (a - mu_d) / s_d, (b - mu_b) / s_b
    total = -0.5 * (z_d**2 + z_b**2) - np.log(2.0 * np.pi) - pt.log(s_d) - pt.log(s_b) - np.log(2.0)
    return pt.stack([total, pt.zeros_like(total)], axis=-1)


def _noise_split_forward(a, b, log_days):
    """``(u, w)`` of ``(log_dispersion, log_burst_sd)``; numpy."""
    return np.logaddexp(2.0 * b, log_days - a), 2.0 * b - log_days + a


def _noise_split_random(mu_d, s_d, mu_b, s_b, log_days, rng=None, size=None):
    # The inputs arrive broadcast against the value's (..., front, 2) shape; each pair shares its own.
    mu_d, s_d, mu_b, s_b, log_days = (np.broadcast_to(x, size)[..., 0] for x in (mu_d, s_d, mu_b, s_b, log_days))
    offsets = rng.standard_normal(size)
    a = mu_d + s_d * offsets[..., 0]
    b = mu_b + s_b * offsets[..., 1]
    return np.stack(_noise_split_forward(a, b, log_days), axis=-1)


def _noise_split_support(rv, size, mu_d, s_d, mu_b, s_b, log_days):
    # The population means are scalars (however the inputs arrive broadcast): the split of their point.
    u = pt.logaddexp(2.0 * mu_b, log_days - mu_d).flatten()[0]
    w = (2.0 * mu_b - log_days + mu_d).flatten()[0]
    return pt.zeros(size) + pt.stack([u, w])


def _level(
    design: Design,
    layout: DynamicLayout,
    data: DesignData,
    parameters: tuple[pt.TensorVariable, ...],
    other: pt.TensorVariable,
    burst: tuple[pt.TensorVariable, pt.TensorVariable] | None = None,
) -> pt.TensorVariable:
    """``(front, period)`` level, its knots sampled in whitened coordinates (per level step or per window).

    ``parameters`` are ``(sigma_level, tail_weight, dispersion, initial_level)``, each ``(front,)``;
    ``other`` the ``(front, period)`` rest of the log rate but the burst.  The level steps once per knot
    (:attr:`DynamicLayout.knot_of_period` for centred fronts; a windowed front's own knots, :func:`_windowed_level`)
    and is constant within it.
    """
    sigma, tail, dispersion, initial = parameters
    n_fronts = len(design.fronts)
    first = pt.as_tensor(data["level_centre"]) + initial  # (front,)
    step_scale = sigma[:, None] * np.sqrt(layout.knot_days[1:])[None, :]  # (front, step)
    parts = []
    centred = np.flatnonzero(layout.centred)
    windowed = np.flatnonzero(layout.windowed)  # every front not centred
    if len(centred):
        seen = _level_dispersion(layout, dispersion, burst)
        parts.append(_centred_level(layout, data, (first, step_scale, tail, seen), other, centred))
    if len(windowed):
        parts.append(_windowed_level(layout, data, (first, sigma, tail, dispersion), other, windowed))
    order = np.concatenate([centred, windowed])
    inverse = np.empty(n_fronts, dtype=np.int64)
    inverse[order] = np.arange(n_fronts)
    return pt.concatenate(parts, axis=0)[inverse]


def _level_dispersion(layout: DynamicLayout, dispersion, burst) -> pt.TensorVariable:
    """``(front,)`` the dispersion a centred level's approximation sees: the burst's variance added to the noise.

    The whitened level's pseudo-observations (:mod:`forecast.models.whitened`) leave the burst
    out: to them, a knot's counts vary around its level by the negative binomial's noise alone.
    Where a front has a burst its knot-average adds the variance ``c kappa^2`` to the log rate
    (``c = sum_ij rho^|i-j| / n^2`` over a knot's ``n`` periods), so that noise is the negative
    binomial's with ``1 / alpha' = 1 / alpha + n c kappa^2`` per period.  This only chooses the
    sampler's coordinates: the model and its density are unchanged.
    """
    if burst is None or not layout.any_burst:
        return dispersion
    burst_sd, persistence = burst
    rho = persistence**layout.persistence_days
    n_periods = layout.level_periods
    lags = np.arange(1, n_periods)
    pairs = pt.sum((n_periods - lags)[None, :] * rho[:, None] ** lags[None, :], axis=1)
    share = (n_periods + 2.0 * pairs) / n_periods**2
    extra = pt.where(layout.burst, n_periods * share * burst_sd**2, 0.0)
    return 1.0 / (1.0 / dispersion + extra)


def _windowed_level(
    layout: DynamicLayout, data: DesignData, parameters, other: pt.TensorVariable, rows: np.ndarray
) -> pt.TensorVariable:
    """``(windowed front, period)`` level of the fronts that step once per window (:func:`window_fronts`).

    One knot per knot the front can have (:attr:`DynamicLayout.window_knot_capacity`); where the
    knots start is data (the design's ``level_knot_start``), so that a backtest's origins share
    the graph.  The steps after the first knot are sampled in whitened coordinates
    (``level_window_whitened``, :mod:`forecast.models.whitened`), as the centred fronts' are: a
    knot's pseudo-observation is the total of the windows (and periods) that lie in it, less the
    mean of the log rate's other terms over their days.  The knots a front does not use have no
    observation and touch nothing.
    """
    first, sigma, tail, dispersion = parameters
    capacity = layout.window_knot_capacity
    if capacity == 1:
        return pt.repeat(first[rows][:, None], layout.n_latent, axis=1)
    start = pt.as_tensor(data["level_knot_start"])[rows]
    pad = pt.arange(start.shape[1], layout.n_latent) % layout.level_periods
    start = pt.concatenate([start, pt.eq(pad, 0)[None, :] * pt.ones((len(rows), 1))], axis=1)
    knot = pt.cast(pt.cumsum(start, axis=1) - 1, "int64")  # (row, period)
    row = np.arange(len(rows))[:, None]
    days = pt.zeros((len(rows), capacity))
    days = pt.inc_subtensor(days[row, knot], pt.as_tensor(layout.latent_step_days)[None, :] * pt.ones((len(rows), 1)))
    days = pt.inc_subtensor(days[np.arange(len(rows)), knot[:, -1]], float(-layout.n_latent % layout.level_periods))
    # A knot the front does not use has no days; any scale will do for a step that touches nothing.
    step_scale = sigma[rows][:, None] * pt.sqrt(pt.switch(days[:, 1:] > 0, days[:, 1:], float(layout.level_periods)))

    def per_knot(values: pt.TensorVariable) -> pt.TensorVariable:
        return pt.inc_subtensor(pt.zeros((len(rows), capacity))[row, knot], values)[:, 1:]

    seen_days = _padded(data["knot_count_days"], layout.n_latent)[rows]
    knot_count = per_knot(_padded(data["knot_count"], layout.n_latent)[rows])
    knot_days = per_knot(seen_days)
    knot_offset = per_knot(other[rows] * seen_days) / pt.maximum(knot_days, 1e-9)
    inputs = (step_scale, tail[rows], dispersion[rows], knot_count, knot_days, knot_offset)
    knots = _whitened_knots(
        ("level_window_whitened", "level_window_step"), first[rows], inputs, (len(rows), capacity - 1)
    )
    return knots[row, knot]


def _centred_level(layout: DynamicLayout, data: DesignData, parameters, other, rows: np.ndarray) -> pt.TensorVariable:
    """``(centred front, period)`` level of the fronts whose data pin every knot down.

    The knots after the first are sampled in coordinates whitened by a Gaussian approximation of
    their posterior (whitened.py).  Sampling the steps themselves (the centred form) left every
    step to move with the split of the variation between steps and dispersion: 9 of 12
    six-front backtest fits failed.
    """
    first, step_scale, tail, dispersion = parameters
    n_knots = layout.n_knots
    start = first[rows][:, None]
    if n_knots == 1:
        return pt.repeat(start, layout.n_latent, axis=1)
    grid = (layout.level_periods, layout.n_latent)
    days = _padded(data["knot_count_days"], layout.n_latent)[rows]
    knot_days = _contiguous_constant(knot_sums(days, 1.0, *grid)[:, 1:])
    knot_count = _contiguous_constant(knot_sums(_padded(data["knot_count"], layout.n_latent)[rows], 1.0, *grid)[:, 1:])
    knot_offset = _contiguous_constant(knot_sums(other[rows], days, *grid)[:, 1:] / pt.maximum(knot_days, 1e-9))
    inputs = (step_scale[rows], tail[rows], dispersion[rows], knot_count, knot_days, knot_offset)
    knots = _whitened_knots(("level_whitened", "level_step"), first[rows], inputs, (len(rows), n_knots - 1))
    return knots[:, layout.knot_of_period]


def _whitened_knots(
    names: tuple[str, str], first: pt.TensorVariable, inputs: tuple, shape: tuple[int, int]
) -> pt.TensorVariable:
    """``(row, knot)`` knots: ``first``, then the steps of the whitened coordinates ``names[0]``.

    ``inputs`` are ``(step_scale, tail, dispersion, count, days, offset)`` (:mod:`forecast.models.whitened`),
    ``tail`` and ``dispersion`` per row.  The steps are kept as ``names[1]`` and the path is rebuilt
    from them, so that an intervention on them (``pm.do``, as the simulator's scenarios use) moves
    the level.
    """
    step_scale, tail, dispersion, count, days, offset = inputs
    start = first[:, None]
    path_inputs = (start, step_scale, tail[:, None], dispersion[:, None], count, days, offset)
    whitened = _whitened_variable(names[0], path_inputs, shape=shape)
    steps = pm.Deterministic(names[1], _whitened_steps(whitened, path_inputs))
    return pt.concatenate([start, start + pt.cumsum(steps, axis=1)], axis=1)


def _contiguous_constant(term: pt.TensorVariable) -> pt.TensorVariable:
    """``term``, or, where it depends on constants only (the data of a fit), its value as one C-contiguous constant.

    PyTensor folds a slice of a constant into a strided view of it, and Numba compiles a
    non-contiguous constant in as a pointer to this process's memory, after which the compiled
    log density cannot be cached on disk: every fit of a table whose fronts are all centred (the
    45-series ACLED panel) compiled its sampler again, 20 s warm.  Shared data (the backtest's)
    pass through unchanged.
    """
    term = pt.as_tensor(term)
    if not all(isinstance(v, Constant) for v in graph_inputs([term])):
        return term
    value = pytensor.function([], term, mode=Mode(linker="py", optimizer="fast_compile"))()
    return pt.constant(np.ascontiguousarray(value, dtype=term.dtype))


# The whitened paths' inputs enter the CustomDist as (front, 1) or (front, step) so that they broadcast;
# the level's have no persistence (a random walk), the burst's end with it.
def _whitened_variable(
    name: str, inputs: tuple, shape: tuple[int, int] | None = None, dims: tuple[str, str] | None = None
) -> pt.TensorVariable:
    """The whitened coordinates ``name``: drawn from their prior, their density added by :func:`_whitened_steps`.

    The density (the steps' and the map's Jacobian, :func:`forecast.models.whitened.steps_and_logp`)
    is a ``Potential`` on the same path that the level or the burst is built from, not the
    CustomDist's own ``logp``: PyMC hands a CustomDist's ``logp`` its inputs re-broadcast, so the
    density and the path were two copies of the same computation that PyTensor could not merge,
    and a gradient factorised each path two or three times (five paths on the shipped data, where
    two are needed).  The model and its density are unchanged.
    """
    return pm.CustomDist(name, *inputs, logp=_density_elsewhere, random=_whitened_random, shape=shape, dims=dims)


def _density_elsewhere(value, *inputs):  # noqa: ARG001 - the CustomDist's signature
    return pt.zeros_like(value)


def _whitened_steps(whitened, inputs: tuple) -> pt.TensorVariable:
    """``(front, step)`` the steps of the whitened coordinates, their density added to the model as a Potential."""
    first, step_scale, tail, dispersion, count, days, offset = inputs[:7]
    burst = len(inputs) > 7  # the burst reverts to 0, so its knots' prior is centred there
    rho = inputs[7][:, 0] if burst else 1.0
    steps, logp = steps_and_logp(
        whitened, first[:, 0], step_scale, tail[:, 0], dispersion[:, 0], count, days, offset, rho, burst
    )
    pm.Potential(f"{whitened.name}_density", logp.sum())
    return steps


def _whitened_random(*inputs, rng=None, size=None):
    first, step_scale, tail, dispersion, count, days, offset = inputs[:7]
    burst = len(inputs) > 7
    rho = np.asarray(inputs[7])[..., 0] if burst else 1.0
    first, tail, dispersion = (np.asarray(v)[..., 0] for v in (first, tail, dispersion))
    return whitened_random(
        first, step_scale, tail, dispersion, count, days, offset, rho, rng=rng, size=size, zeros_at_mode=burst
    )


def _burst(
    design: Design,
    layout: DynamicLayout,
    data: DesignData,
    parameters: tuple[pt.TensorVariable, ...],
    base: pt.TensorVariable,
) -> pt.TensorVariable:
    """``(front, period)`` stationary AR(1) burst of the fronts that have one (zero elsewhere).

    ``b_t = rho b_{t-1} + v_t`` with ``v_0 = kappa g_t(u_0)`` and ``v_t = kappa sqrt(1 - rho^2) g_t(u_t)``.
    ``parameters`` are ``(burst_sd, burst_persistence, tail_weight, dispersion)``, each ``(front,)``;
    ``base`` is the ``(front, period)`` rest of the log rate (the level included).

    The path is sampled in coordinates whitened by a Gaussian approximation of its conditional
    posterior given ``base`` (:mod:`forecast.models.whitened`, with the AR(1)'s tridiagonal
    precision): a front counted day by day pins some days' bursts down (7 October 2023 in the
    Gaza alerts) and leaves most to the prior, and the whitened coordinates are centred on the
    first and non-centred on the second.  With the standard normals ``u`` sampled instead, the
    shipped fit failed on Gaza's dispersion (bulk ESS 97, R-hat 1.02): the burst and the negative
    binomial both explain day-to-day excess variation, and every ``u`` had to move with their split.
    The innovations ``v`` are stored as ``burst_step``.
    """
    burst_sd, persistence, tail, dispersion = parameters
    n_fronts, n_periods = len(design.fronts), layout.n_latent
    which = np.flatnonzero(layout.burst)
    kappa = burst_sd[which]
    rho = persistence[which] ** layout.persistence_days  # (burst front,)
    scale = pt.concatenate(
        [kappa[:, None], (kappa * pt.sqrt(1.0 - rho**2))[:, None] * pt.ones((1, n_periods - 1))], axis=1
    )
    inputs = (
        pt.zeros((len(which), 1)),
        scale,
        tail[which][:, None],
        dispersion[which][:, None],
        _padded(data["period_count"], n_periods)[which],
        _padded(data["period_count_days"], n_periods)[which],
        base[which],
        rho[:, None],
    )
    whitened = _whitened_variable("burst_whitened", inputs, dims=(BURST_FRONT, n.TIME))
    # The path is rebuilt from the stored innovations, as the level's is (see _level).
    steps = pm.Deterministic("burst_step", _whitened_steps(whitened, inputs), dims=(BURST_FRONT, n.TIME))
    paths = ar1_path(steps, rho)
    if len(which) == n_fronts:
        return paths
    return pt.set_subtensor(pt.zeros((n_fronts, n_periods))[which], paths)


# --------------------------------------------------------------------------------------------
# The numpy twin: the same recursions, per draw
# --------------------------------------------------------------------------------------------


def latent_paths(
    design: Design,
    *,
    initial_level: np.ndarray,
    burst_persistence: np.ndarray | None = None,
    burst_step: np.ndarray | None = None,
    level_step: np.ndarray | None = None,
    level_window_step: np.ndarray | None = None,
    pad_days: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(level, burst)``, each ``(..., front, period)``, from the model's free variables.

    The numpy twin of the graph (:func:`build_dynamic_model`): leading axes are draws.
    ``level_step`` holds the centred fronts' steps, ``level_window_step`` the other
    (windowed) fronts' steps into each of their knots
    and ``burst_step`` the burst fronts' innovations, as the graph names them.
    """
    layout = layout_of(design, pad_days)
    n_fronts, n_periods = len(design.fronts), layout.n_latent
    lead = np.shape(initial_level)[:-1]
    first = level_centre(design) + np.asarray(initial_level)
    level = np.zeros(lead + (n_fronts, n_periods))
    n_knots = layout.n_knots
    steps = np.zeros(lead + (n_fronts, n_knots - 1))
    centred = np.flatnonzero(layout.centred)
    if len(centred) and n_knots > 1:
        steps[..., centred, :] = level_step
    knots = np.concatenate([first[..., None], first[..., None] + np.cumsum(steps, axis=-1)], axis=-1)
    level[...] = knots[..., layout.knot_of_period]
    windowed = np.flatnonzero(layout.windowed)
    if len(windowed):
        start = first[..., windowed, None]
        if layout.window_knot_capacity > 1 and level_window_step is None:
            raise ValueError("the windowed fronts' level steps (level_window_step) are needed for this design")
        window_steps = np.zeros(np.shape(start)[:-1] + (0,)) if level_window_step is None else level_window_step
        window_knots = np.concatenate([start, start + np.cumsum(window_steps, axis=-1)], axis=-1)
        level[..., windowed, :] = np.take_along_axis(
            window_knots, np.broadcast_to(layout.window_knot_of_period, lead + (len(windowed), n_periods)), axis=-1
        )
    burst = np.zeros(lead + (n_fronts, n_periods))
    which = np.flatnonzero(layout.burst)
    if not len(which):
        return level, burst
    rho = np.asarray(burst_persistence)[..., which] ** layout.persistence_days
    burst[..., which, :] = ar1_paths(np.broadcast_to(np.asarray(burst_step), lead + (len(which), n_periods)), rho)
    return level, burst


def simulate_future(
    *,
    level: np.ndarray,
    burst: np.ndarray,
    sigma_level: np.ndarray,
    tail_weight: np.ndarray,
    burst_sd: np.ndarray | None,
    burst_persistence: np.ndarray | None,
    has_burst: np.ndarray,
    step_days: np.ndarray,
    persistence_days: float,
    rng: np.random.Generator,
    level_step_days: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Continue the level and burst past the data, with fresh innovations per draw.

    Parameters
    ----------
    level, burst : (..., front)
        Each draw's values in the last period of the data.
    sigma_level, tail_weight, burst_sd, burst_persistence : (..., front)
        ``burst_sd`` and ``burst_persistence`` are None for a model without a burst.
    has_burst : (front,) bool
        Which fronts have a burst (:attr:`DynamicLayout.burst`); the others' stays zero.
    step_days : (horizon,)
        Days of each future period (the step into it).
    persistence_days : float
        As in the fit (:class:`DynamicLayout`).
    level_step_days : (horizon,), optional
        Days of the level's step into each future period, 0 where the level does not step
        (:meth:`DynamicLayout.future_level_step_days`); ``step_days`` by default.

    Returns
    -------
    level, burst : (..., front, horizon)
        The same recursions as the graph: level steps ``sigma sqrt(days) g_t(z)``, the AR(1)
        burst with per-period persistence ``r ** persistence_days`` and shocks ``g_t(u)``.
    """
    shape = np.shape(level) + (len(step_days),)
    tail = np.asarray(tail_weight)[..., None]
    level_days = np.asarray(step_days if level_step_days is None else level_step_days, dtype=float)
    steps = sinh_arcsinh(rng.standard_normal(shape), tail) * (np.asarray(sigma_level)[..., None] * np.sqrt(level_days))
    future_level = np.asarray(level)[..., None] + np.cumsum(steps, axis=-1)
    future_burst = np.zeros(shape)
    if burst_sd is None or not np.any(has_burst):  # a model without a burst
        return future_level, future_burst
    rho = np.asarray(burst_persistence) ** persistence_days
    innovation_sd = np.where(has_burst, np.asarray(burst_sd) * np.sqrt(1.0 - rho**2), 0.0)
    previous = np.where(has_burst, np.asarray(burst, dtype=float), 0.0)
    shocks = sinh_arcsinh(rng.standard_normal(shape), tail)
    for h in range(len(step_days)):
        previous = rho * previous + innovation_sd * shocks[..., h]
        future_burst[..., h] = previous
    return future_level, future_burst

r"""The hierarchical escalation model: counts per front with changepoints and interventions.

Generative model, for front :math:`f`, grid period :math:`t` and observation :math:`i`
(a period count or a window total; windows sum the daily rate over their days):

.. math::

    \log\lambda_{f,t} &= \beta_f + J_{f,r(i)} + \sum_j e_{f,j}\, s_j(t)
                        + \gamma_{\mathrm{season}(t)} + g\,x_{f,t} + b_f\,u_t \\
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

Seasonality (:math:`\gamma`), self-excitation (:math:`g\,x`, ``x`` the log of decayed recent
counts) and the trend (:math:`b_f\,u_t`, ``u`` days from the data's middle day / 30) are
optional.  :math:`\lambda` is a daily rate; on weekly and coarser grids the intervention shapes are
averaged over each period's days.  The rate ratio of intervention :math:`j` on front
:math:`f` at full strength is :math:`\exp(e_{f,j})`.  Changepoint positions are summed out
exactly (:mod:`forecast.models.changepoints`), so NUTS samples only continuous parameters.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc_extras.prior import Prior
from scipy.special import gammaln

from forecast import names as n
from forecast.models.changepoints import LOG_ZERO, changepoint_posterior, logaddexp, logsumexp, marginal_loglik
from forecast.models.count_kernel import SURVIVAL_TAIL_TERMS, observation_kind
from forecast.models.design import Design
from forecast.priors import KIND_DIM, SEASON_DIM  # declared once, with the priors' dims

MODEL_NAME = "escalation"
OBS = "obs"
REGIME = "regime"
POSITION = "position"
PAIR = "pair"
PULSE = "pulse"

#: Positions a graph with shared data handles without changing (see build_escalation_model).
SHARED_MAX_POSITIONS = 2**16

# Variables that are recomputed after sampling rather than stored draw by draw.
POST_HOC_VARIABLES = ("base_log_mean", "regime_loglik", "changepoint_probability", "changepoint_forward")


class DesignData:
    """The design's data arrays as the graph reads them: constants, or named shared variables.

    By default the data are constants of the graph, so PyTensor's cache key for the compiled
    graph covers the data and a refit on the same data loads the compiled sampler from disk
    (:mod:`forecast.models.nutpie_compile`).

    With ``shared=True`` they enter as PyTensor shared variables of unfixed shape, so that the
    graph depends only on the model's structure (fronts, changepoints, interventions, options)
    and its latent length (nutpie compiles the variables' shapes in).  Within one process, a
    model compiled once is refitted on other data of that structure by swapping the shared
    values (:class:`forecast.models.nutpie_compile.CompiledModels`): the backtest does this
    across its origins, padded to the last origin's length.  Across processes, the rewritten
    graph and the compiled sampler are found on disk by structure, not by value
    (:func:`forecast.models.nutpie_compile.rewrite_cache_key`): the command line's fits build
    reusable models (:class:`forecast.models.model.EscalationModel`, padded to a block of
    periods), so that next week's table compiles in about 5 s instead of 100.
    """

    PREFIX = "design_"

    def __init__(self, design: Design, *, shared: bool = False) -> None:
        self.design = design
        self.shared = shared
        self._variables: dict[str, object] = {}

    def __getitem__(self, name: str) -> pt.TensorVariable | np.ndarray:
        if name not in self._variables:
            value = np.ascontiguousarray(_design_array(self.design, name))
            self._variables[name] = pytensor.shared(value, name=self.PREFIX + name) if self.shared else value
        return self._variables[name]


def _knot_grid(design: Design, name: str, *, windows: bool = True) -> np.ndarray:
    """``(front, period)`` counts (``name == "count"``) or days of the observations that lie within one level knot.

    The dynamic model's pseudo-observations (:mod:`forecast.models.whitened`): uncensored period
    observations and windows whose days all fall in one knot (a monthly window on a monthly grid,
    a week of days on a daily grid).  A window's count sits at its first period, its days at
    theirs; the model sums both over each knot.  ``windows=False``: the burst's pseudo-observations,
    one per period: the period observations and the windows inside one period (a table that gives
    each day's count with its own ``end_date`` is read as one-day windows).  Without those windows
    such a front got a burst (:func:`forecast.models.dynamic_layout.burst_fronts` counts one-day
    windows) whose approximation saw no data, and the whitened coordinates were left to the data:
    360info's daily deaths fitted with BFMI 0.21 and 95 gradients a draw, and pass with 0.89 and
    31 with them (``benchmarks/results/dynamic/one_day_windows/``).  The knots are each front's
    own (:func:`forecast.models.dynamic_layout.level_knot_start`): a level step's periods, or for a
    front that steps once per window, its windows, so that each of its long windows lies in one knot.
    """
    from forecast.models.dynamic_layout import level_knot_start

    counts = np.zeros((len(design.fronts), len(design.periods)))
    days = np.zeros_like(counts)
    exact = ~design.censored[design.period_obs]
    rows, periods = design.obs_front[design.period_obs][exact], design.period_index[exact]
    np.add.at(counts, (rows, periods), design.y[design.period_obs][exact].astype(float))
    np.add.at(days, (rows, periods), design.obs_days[design.period_obs][exact].astype(float))
    if windows:
        knot_of = np.cumsum(level_knot_start(design), axis=1)
    else:
        knot_of = np.broadcast_to(np.arange(len(design.periods)), counts.shape)
    for row, obs in enumerate(design.window_obs):
        covered = np.flatnonzero(design.window_weights[row])
        front = design.obs_front[obs]
        if design.censored[obs] or not len(covered) or len(np.unique(knot_of[front, covered])) > 1:
            continue
        counts[front, covered[0]] += float(design.y[obs])
        days[front, covered] += design.window_weights[row, covered]
    return counts if name == "count" else days


def _design_array(design: Design, name: str) -> np.ndarray:
    """The numeric array behind :class:`DesignData` ``name``."""
    from forecast.models.dynamic_layout import level_centre, level_knot_start

    censored = np.flatnonzero(design.censored & (design.y > 0))
    below = np.arange(int(design.y[censored].max()) if len(censored) else 0, dtype=float)
    arrays = {
        "y": lambda: design.y.astype(float),
        "log_y_factorial": lambda: gammaln(design.y + 1.0),
        "obs_front": lambda: design.obs_front,
        "obs_days": lambda: design.obs_days.astype(float),
        "obs_order": lambda: _obs_order(design),
        "censored_pick": lambda: _censored_pick(design.n_obs, censored),
        # front, period and log exposure of each period observation in one array, so that the
        # graph knows the three have one length: as three shared vectors of unknown length, the
        # rewritten graph checked them against each other, and which length it kept differed
        # from process to process (benchmarks/bench_rewrite_determinism.py)
        "period_cells": lambda: np.stack(
            [design.obs_front[design.period_obs], design.period_index, np.log(design.period_exposure)]
        ).astype(float),
        "knot_count": lambda: _knot_grid(design, "count"),
        "knot_count_days": lambda: _knot_grid(design, "days"),
        "period_count": lambda: _knot_grid(design, "count", windows=False),
        "period_count_days": lambda: _knot_grid(design, "days", windows=False),
        "level_knot_start": lambda: level_knot_start(design),
        # data, not structure: two fronts (or tables) of one structure are one graph
        "level_centre": lambda: level_centre(design),
        "window_obs": lambda: design.window_obs.astype(float),
        "window_entry": lambda: np.nonzero(design.window_weights)[0],
        "window_entry_front": lambda: design.obs_front[design.window_obs][np.nonzero(design.window_weights)[0]],
        "window_entry_period": lambda: np.nonzero(design.window_weights)[1],
        "window_entry_days": lambda: design.window_weights[np.nonzero(design.window_weights)],
        "excitation": lambda: design.excitation,
        "trend_time": lambda: design.trend_time,
        "season_index": lambda: design.season_index,
        "fixed_shapes_day": lambda: design.fixed_shapes_day,
        "pulse_elapsed": lambda: pulse_elapsed(design),
        "day_to_period": lambda: design.day_to_period,
        "censored_obs": lambda: censored,
        "uninformative": lambda: design.censored & (design.y == 0),
        "obs_kind": lambda: observation_kind(design.censored, design.y),
        "censored_below": lambda: below,
        "censored_inside": lambda: below[None, :] < design.y[censored][:, None],
        "position": lambda: design.position,
        "position_mask": lambda: design.position_mask,
        "changepoint_valid": lambda: design.changepoint_valid,
        "log_n_configurations": lambda: design.log_n_configurations,
    }
    return arrays[name]()


def _obs_order(design: Design) -> np.ndarray:
    """Where each observation sits in ``concatenate([period observations, window observations])``."""
    order = np.empty(design.n_obs, dtype=np.int64)
    order[np.concatenate([design.period_obs, design.window_obs])] = np.arange(design.n_obs)
    return order


def _censored_pick(n_obs: int, censored: np.ndarray) -> np.ndarray:
    """Index into ``concatenate([exact, censored])`` giving each observation its log-likelihood."""
    pick = np.arange(n_obs)
    pick[censored] = n_obs + np.arange(len(censored))
    return pick


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


def build_escalation_model(design: Design, priors: Mapping[str, Prior], *, shared_data: bool = False) -> pm.Model:
    """Build the PyMC model; nothing is sampled here.

    Parameters
    ----------
    design : Design
        From :func:`forecast.models.design.build_design`.
    priors : mapping of name to ``pymc_extras.prior.Prior``
        See ``priors/default.yaml``.
    shared_data : bool
        Data as shared variables rather than constants (see :class:`DesignData`).
    """
    k = design.options.changepoints
    data = DesignData(design, shared=shared_data)
    with pm.Model(coords=coords_of(design)) as model:
        loglik = regime_loglik(design, priors, data)
        if k:
            valid = data["changepoint_valid"]
            length = design.changepoint_valid.shape[-1]
            if shared_data:
                # The prefix scans (K > 1) take ceil(log2(length)) doubling steps; steps past the
                # data's length act on empty slices and change nothing.  A fixed ceiling keeps
                # the graph of a longer series (a later backtest origin) the same.
                length = max(length, SHARED_MAX_POSITIONS)
            # The regime count is fixed statically so that the gather below has constant shapes:
            # JAX (NumPyro through PyMC) cannot trace a reshape whose shape is computed at run time.
            loglik = pt.specify_shape(loglik, (k + 1, None))
            padded = pt.switch(data["position_mask"][None], loglik[:, data["position"]], 0.0)
            per_front, forward = marginal_loglik(padded, valid, k, data["log_n_configurations"], length=length)
            pm.Potential("marginal_loglik", per_front.sum())
            pm.Deterministic(
                "changepoint_probability",
                changepoint_posterior(padded, valid, k, length=length),
                dims=(n.CHANGEPOINT, n.FRONT, POSITION),
            )
            pm.Deterministic("changepoint_forward", pt.stack(forward), dims=(n.CHANGEPOINT, n.FRONT, POSITION))
        else:
            pm.Potential("marginal_loglik", loglik.sum())
    return model


def regime_loglik(design: Design, priors: Mapping[str, Prior], data: DesignData | None = None) -> pt.TensorVariable:
    """Create every parameter except the changepoint positions; return ``(regime, obs)`` log-likelihoods.

    Must be called inside a model context with :func:`coords_of` coordinates.  Shared by the
    marginalised model and the discrete-changepoint variant used for comparison
    (``tools/discrete_changepoint.py``, for benchmarks only).
    """
    data = data or DesignData(design)
    options = design.options
    k = options.changepoints
    baseline = priors["baseline"].create_variable("baseline")
    log_rate = pt.zeros_like(data["excitation"]) + baseline[:, None]  # (front, period)
    if len(design.interventions):
        log_rate = log_rate + _intervention_term(design, priors, data)
    if design.season_index is not None:
        seasonality = priors["seasonality"].create_variable("seasonality")
        log_rate = log_rate + seasonality[data["season_index"]][None, :]
    if options.self_excitation:
        excitation = priors["self_excitation"].create_variable("self_excitation")
        log_rate = log_rate + excitation * data["excitation"]
    if options.trend:
        trend = priors["trend"].create_variable("trend")
        log_rate = log_rate + trend[:, None] * data["trend_time"][None, :]

    base_log_mean = pm.Deterministic("base_log_mean", _observation_log_mean(design, data, log_rate), dims=OBS)
    obs_front = data["obs_front"]
    if k:
        jump = priors["jump"].create_variable("jump")
        regime_offset = pt.concatenate([pt.zeros((len(design.fronts), 1)), pt.cumsum(jump, axis=1)], axis=1)
        regime_log_mean = base_log_mean[None, :] + regime_offset[obs_front].T
    else:
        regime_log_mean = base_log_mean[None, :]
    dispersion = None
    if options.likelihood == "negative_binomial":
        dispersion = total_dispersion(priors["dispersion"].create_variable("dispersion")[obs_front], data["obs_days"])
    return pm.Deterministic(
        "regime_loglik", observation_loglik(design, data, regime_log_mean, dispersion), dims=(REGIME, OBS)
    )


def _intervention_term(
    design: Design, priors: Mapping[str, Prior], data: DesignData, *, split_by_centre: bool = False
) -> pt.TensorVariable:
    """``(front, period)`` log rate contribution of the interventions.

    With ``split_by_centre`` (the dynamic model) the pooled effects of each kind are sampled as
    their centre and spread (:func:`_effects_by_centre`) where the prior allows it.
    """
    effect_sd = priors["effect_sd"].create_variable("effect_sd")
    kind_of_pair = design.intervention_kind[design.pair_intervention]
    if split_by_centre and _fixed_normal(priors["effect_mean"]):
        pair_effect = _effects_by_centre(priors["effect_mean"], effect_sd, kind_of_pair, len(design.kinds))
    else:
        effect_mean = priors["effect_mean"].create_variable("effect_mean")
        effect_raw = pm.Normal("effect_raw", 0.0, 1.0, dims=PAIR)
        pair_effect = effect_mean[kind_of_pair] + effect_sd * effect_raw
    n_interventions = len(design.interventions)
    effect = pt.zeros((len(design.fronts), n_interventions))
    effect = pt.set_subtensor(effect[design.pair_front, design.pair_intervention], pair_effect)
    effect = pm.Deterministic("effect", effect, dims=(n.FRONT, n.INTERVENTION))

    shapes = data["fixed_shapes_day"]
    if len(design.pulse_index):
        log_mean = priors["half_life_log_mean"].create_variable("half_life_log_mean")
        log_sd = priors["half_life_log_sd"].create_variable("half_life_log_sd")
        raw = pm.Normal("half_life_raw", 0.0, 1.0, dims=PULSE)
        half_life = pm.Deterministic("half_life", pt.exp(log_mean + log_sd * raw), dims=PULSE)
        # Rows gathered rather than set in place: an in-place set of one row into a tensor of
        # unfixed shape fails PyTensor's runtime broadcasting check.
        order = np.arange(len(design.interventions))
        order[design.pulse_index] = len(design.interventions) + np.arange(len(design.pulse_index))
        shapes = pt.concatenate([shapes, pulse_shapes(data["pulse_elapsed"], half_life)], axis=0)[order]
    if design.day_to_period is not None:
        shapes = pt.dot(shapes, data["day_to_period"].T)
    return pt.dot(effect, shapes)


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fixed_normal(prior: Prior) -> bool:
    """A Normal whose mean and sd are numbers."""
    return (
        prior.distribution == "Normal"
        and _number(prior.parameters.get("mu"))
        and _number(prior.parameters.get("sigma"))
    )


def _effects_by_centre(
    mean_prior: Prior, effect_sd: pt.TensorVariable, kind_of_pair: np.ndarray, n_kinds: int
) -> pt.TensorVariable:
    r"""``(pair,)`` the effects of each kind sampled as their centre, their spread and the mean's share.

    The prior is :math:`e_i = m_k + s r_i`, :math:`m_k \sim N(a, b^2)`, :math:`r_i \sim N(0, 1)`
    for the :math:`n_k` pairs :math:`i` of kind :math:`k`.  Where the data inform the pairs'
    effects but not how they split into :math:`m_k` and the offsets, the mean of the offsets moves
    against :math:`m_k`.  As in :func:`forecast.models.dynamic._centre_and_spread`, but with the
    spread :math:`s` itself a parameter: the kind's centre :math:`c_k = m_k + s \bar r_k \sim
    N(a, b^2 + s^2 / n_k)` (``effect_centre``), the pairs' deviations :math:`s (r_i - \bar r_k)`
    from ``effect_raw`` (its mean per kind touches nothing else, a standard normal direction the
    sampler moves freely) and, given :math:`c_k`, :math:`m_k \sim N(a + w (c_k - a), w s^2 / n_k)`,
    :math:`w = b^2 / (b^2 + s^2 / n_k)`, sampled non-centred (``effect_mean_split``).  The same
    joint prior of :math:`(m, e)`; ``effect_mean`` is a deterministic.  A kind with no pair keeps
    :math:`m_k \sim N(a, b^2)`.
    """
    a, b = float(mean_prior.parameters["mu"]), float(mean_prior.parameters["sigma"])
    counts = np.bincount(kind_of_pair, minlength=n_kinds).astype(float)
    has_pairs = counts > 0
    # (kind, pair) averaging matrix: the mean of each kind's raw offsets.
    average = np.zeros((n_kinds, len(kind_of_pair)))
    average[kind_of_pair, np.arange(len(kind_of_pair))] = 1.0
    average[has_pairs] /= counts[has_pairs, None]
    share = np.where(has_pairs, 1.0 / np.maximum(counts, 1.0), 0.0)  # 1 / n_k, 0 without pairs
    centre_var = b**2 + effect_sd**2 * share
    centre = pm.Normal("effect_centre", a, pt.sqrt(centre_var), dims=KIND_DIM)
    raw = pm.Normal("effect_raw", 0.0, 1.0, dims=PAIR)
    weight = b**2 / centre_var
    mean_split = pm.Normal("effect_mean_split", 0.0, 1.0, dims=KIND_DIM)
    effect_mean = a + weight * (centre - a) + pt.sqrt(weight * effect_sd**2 * share) * mean_split
    pm.Deterministic("effect_mean", effect_mean, dims=KIND_DIM)
    deviation = raw - pt.dot(pt.constant(average), raw)[kind_of_pair]
    return centre[kind_of_pair] + effect_sd * deviation


def pulse_elapsed(design: Design) -> np.ndarray:
    """``(pulse, day)`` days since each pulse started (negative before it)."""
    start = design.intervention_start_day[design.pulse_index]
    return (np.arange(len(design.days))[None, :] - start[:, None]).astype(float)


def pulse_shapes(elapsed: pt.TensorLike, half_life: pt.TensorVariable) -> pt.TensorVariable:
    """``(pulse, day)`` decaying pulses: 1 on the start day, halving every ``half_life`` days.

    ``elapsed`` is :func:`pulse_elapsed`.
    """
    elapsed = pt.as_tensor(elapsed)
    after = pt.ge(elapsed, 0.0)
    return pt.switch(after, pt.exp(-np.log(2.0) * pt.maximum(elapsed, 0.0) / half_life[:, None]), 0.0)


def _observation_log_mean(design: Design, data: DesignData, log_rate: pt.TensorVariable) -> pt.TensorVariable:
    """log of the expected count of every observation, before changepoint offsets."""
    parts = []
    if len(design.period_obs):
        cells = data["period_cells"]  # (front, period, log exposure) per period observation
        front, period = pt.cast(cells[0], "int64"), pt.cast(cells[1], "int64")
        parts.append(cells[2] + log_rate[front, period])
    if len(design.window_obs):
        # Sparse: a window adds up only the periods it overlaps (usually one or two), so the
        # cost grows with the windows' length, not with windows x periods.
        daily = pt.exp(log_rate[data["window_entry_front"], data["window_entry_period"]])
        totals = pt.zeros_like(data["window_obs"], dtype="float64")  # its length follows shared data
        totals = pt.inc_subtensor(totals[data["window_entry"]], data["window_entry_days"] * daily)
        parts.append(pt.log(totals))
    # Period and window parts are gathered back into observation order (see _intervention_term).
    return pt.concatenate(parts)[data["obs_order"]]


def total_dispersion(alpha: pt.TensorLike, days: pt.TensorLike) -> pt.TensorLike:
    """Negative binomial dispersion of a total over ``days`` days of daily dispersion ``alpha``.

    ``days`` independent daily NB(mean ``lambda``, ``alpha``) counts sum to NB(``days x lambda``,
    ``days x alpha``) when the rate is constant (the sum of NB(r, p) with one p is NB(sum r, p)).
    This is the one definition of a multi-day total used by the likelihood, the forecasts (whose
    daily draws sum to it), ``p_exceed`` and backtest scoring.  At 5 a day and ``alpha`` 1, a
    week's total has sd 14.5 under it, as seven independent days do; NB(35, 1) would give 35.5.
    """
    return alpha * days


def observation_loglik(
    design: Design, data: DesignData, log_mean: pt.TensorVariable, dispersion: pt.TensorVariable | None
) -> pt.TensorVariable:
    """``(regime, obs)`` log-likelihood of every observation under every regime.

    Negative binomial (mean ``mu``, variance ``mu + mu^2 / alpha``) written on the log-mean
    scale for stability, or Poisson when ``dispersion`` is None; ``dispersion`` is per
    observation (:func:`total_dispersion`).  ``at_least`` totals contribute
    ``log P(Y >= y)`` (:func:`log_survival`); an ``at_least 0`` total carries no information
    and contributes 0.
    """
    alpha = None if dispersion is None else dispersion[None, :]
    exact = count_logpmf(data["y"], log_mean, alpha, log_y_factorial=data["log_y_factorial"])
    if np.any(design.censored & (design.y == 0)):
        exact = pt.switch(data["uninformative"][None, :], 0.0, exact)
    if not np.any(design.censored & (design.y > 0)):
        return exact
    censored = data["censored_obs"]
    log_sf = log_survival(
        data["y"][censored],
        log_mean[:, censored],
        None if alpha is None else alpha[:, censored],
        below=data["censored_below"],
        inside=data["censored_inside"],
    )
    return pt.concatenate([exact, log_sf], axis=1)[:, data["censored_pick"]]


def log_survival(
    y: pt.TensorLike,
    log_mean: pt.TensorVariable,
    alpha: pt.TensorVariable | None,
    *,
    below: pt.TensorLike,
    inside: pt.TensorLike,
) -> pt.TensorVariable:
    """``log P(Y >= y)`` for each censored observation, stable in both tails.

    Where ``P(Y < y)`` is below one half, ``log(1 - P(Y < y))`` is exact (the CDF is the sum of
    the ``k < y`` terms; ``below`` is ``0 .. max(y) - 1`` and ``inside[i, k]`` is ``k < y_i``).
    Where it is above, that difference cancels catastrophically (it gave -33 for a true -134,
    and -inf with a NaN gradient further out), so the upper tail is summed directly instead:
    :data:`SURVIVAL_TAIL_TERMS` terms from ``y`` on, plus a geometric bound of the rest (the
    ratio of successive NB terms falls towards ``mu / (mu + alpha)``).  Both branches are kept
    finite so that the unused one cannot poison the gradient.
    """
    y = pt.as_tensor(y)
    below = pt.as_tensor(below)
    terms = count_logpmf(below[None, None, :], log_mean[:, :, None], None if alpha is None else alpha[:, :, None])
    log_cdf = logsumexp(pt.switch(pt.as_tensor(inside)[None], terms, LOG_ZERO), axis=-1)
    from_cdf = pt.log1mexp(pt.minimum(log_cdf, np.log(0.5)))
    upper = y[None, :, None] + np.arange(SURVIVAL_TAIL_TERMS, dtype=float)[None, None, :]
    tail_terms = count_logpmf(upper, log_mean[:, :, None], None if alpha is None else alpha[:, :, None])
    # The last count summed, computed directly: a slice of ``upper`` is constant-folded into a
    # strided view, which Numba treats as a dynamic global and then cannot cache the compiled
    # log density on disk (every later fit compiled cold).
    last = y[None, :] + float(SURVIVAL_TAIL_TERMS - 1)
    mean = pt.exp(log_mean)
    if alpha is None:
        ratio = mean / (last + 1.0)
    else:
        # The ratio of successive terms at the last one summed: later ratios fall towards
        # mean / (mean + alpha) when alpha > 1 (an upper bound) and rise slowly towards it when
        # alpha < 1 (relative error 1e-4 in the log at alpha 0.5, mean 30, y 200).
        ratio = mean / (mean + alpha) * (last + alpha) / (last + 1.0)
    ratio = pt.minimum(ratio, 0.999)
    remainder = tail_terms[..., -1] + pt.log(ratio) - pt.log1p(-ratio)
    from_tail = logaddexp(logsumexp(tail_terms, axis=-1), remainder)
    return pt.switch(log_cdf < np.log(0.5), from_cdf, from_tail)


def count_logpmf(
    y: pt.TensorLike,
    log_mean: pt.TensorVariable,
    alpha: pt.TensorVariable | None,
    log_y_factorial: pt.TensorLike | None = None,
) -> pt.TensorVariable:
    """Negative binomial (or, with ``alpha`` None, Poisson) log-pmf given the log of the mean.

    ``log_y_factorial`` is ``gammaln(y + 1)`` when it is known in advance.
    """
    if log_y_factorial is None:
        log_y_factorial = pt.gammaln(y + 1.0)
    if alpha is None:
        return y * log_mean - pt.exp(log_mean) - log_y_factorial
    return (
        pt.gammaln(y + alpha)
        - pt.gammaln(alpha)
        - log_y_factorial
        + alpha * pt.log(alpha)
        + y * log_mean
        - (y + alpha) * logaddexp(pt.log(alpha), log_mean)
    )

r"""Posterior predictive forecasts of daily counts after the end of the data.

For each posterior draw :math:`s` and future day :math:`d > \text{as\_of}`, every front is in
its last regime (all :math:`K` changepoints fall inside the data), so

.. math::

    \log\lambda^{(s)}_{f,d} = \beta^{(s)}_f + \sum_{k} \delta^{(s)}_{f,k}
        + \sum_j e^{(s)}_{f,j}\, s_j(d) + \gamma^{(s)}_{\mathrm{season}(d)} + g^{(s)} x_{f,d}
        + b^{(s)}_f u_d,
    \qquad y^{(s)}_{f,d} \sim \operatorname{NegBin}(\lambda^{(s)}_{f,d}, \alpha^{(s)}_f).

The trend :math:`b_f u_d` continues on the fit's time axis (:func:`forecast.models.design.trend_time`).
Intervention terms are carried forward exactly: a pulse keeps decaying with its own
half-life, a window ends on its end date, a step holds.  Placeholder interventions (starting
after the data, kept only to fix a backtest model's structure) are left out.  A *scenario* adds hypothetical
interventions whose effects are drawn per draw from the posterior population of their kind,
:math:`e \sim N(m_{\mathrm{kind}}, \sigma_e)`, with half-lives from
:math:`\log h \sim N(\mu_h, \sigma_h)`.  With self-excitation the forecast is simulated day by
day, feeding each draw's own simulated counts back into :math:`x`.

The dynamic model (:mod:`forecast.models.dynamic`) replaces :math:`\beta + \sum_k \delta` by
its level plus burst, continued past the data per draw with fresh innovations
(:func:`dynamic_log_rate`); interventions, scenarios and the season are added as above.  Daily
counts are NB(:math:`\lambda`, :math:`\alpha`) for both families, so a total over :math:`D` days
has the likelihood's distribution NB(:math:`\sum\lambda`, :math:`D\alpha`) when the rate is constant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from forecast import names as n
from forecast.data.panel import PERIOD_OFFSET, period_start
from forecast.data.shapes import shape_values
from forecast.errors import ForecastError
from forecast.models.design import Design, trend_time
from forecast.models.dynamic import layout_of, simulate_future
from forecast.models.escalation import PULSE
from forecast.models.model import EscalationModel
from forecast.names import DATE_DIM

Draws = Callable[..., np.ndarray]


@dataclass(frozen=True)
class ScenarioIntervention:
    """A hypothetical future intervention ("a strike on D", "a truce from D1 to D2").

    Its effect on each front is drawn from the posterior population of interventions of the
    same ``kind`` (which must have been estimated in the fit).
    """

    kind: str
    start: pd.Timestamp
    shape: str = n.SHAPE_PULSE
    end: pd.Timestamp | None = None
    fronts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.shape not in n.SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; allowed: {list(n.SHAPES)}")
        if (self.shape == n.SHAPE_WINDOW) != (self.end is not None):
            raise ValueError("a window scenario needs an end date, and only a window has one")


def forecast_days(as_of: pd.Timestamp, horizon_days: int) -> pd.DatetimeIndex:
    """The ``horizon_days`` days after ``as_of``."""
    if horizon_days < 1:
        raise ValueError("the horizon must be at least one day")
    return pd.date_range(as_of + pd.Timedelta(days=1), periods=horizon_days, freq="D")


def forecast_counts(
    model: EscalationModel,
    posterior: xr.Dataset,
    *,
    horizon_days: int,
    random_seed: int,
    scenario: tuple[ScenarioIntervention, ...] = (),
) -> xr.Dataset:
    """Draw-level forecasts of daily counts per front after the panel's last day.

    Returns
    -------
    xarray.Dataset
        ``counts`` (chain, draw, front, date) simulated counts and ``rate`` (same dims)
        the expected daily counts of each draw.
    """
    design = model.design
    rng = np.random.default_rng(random_seed)
    days = forecast_days(model.panel.end, horizon_days)
    start = model.panel.start
    day_index = ((days - start) / pd.Timedelta(days=1)).to_numpy().astype(float)

    def draws(name: str, *dims: str) -> np.ndarray:
        return posterior[name].transpose("chain", "draw", *dims).to_numpy()

    if design.options.family == "dynamic":
        log_rate = dynamic_log_rate(model, posterior, days, rng)
    else:
        log_rate = draws("baseline", n.FRONT)[..., None] + np.zeros(len(days))
    if design.options.changepoints:
        log_rate = log_rate + draws("jump", n.FRONT, n.CHANGEPOINT).sum(axis=-1)[..., None]
    if len(design.interventions):
        log_rate = log_rate + _known_interventions(design, posterior, draws, day_index)
    if scenario:
        log_rate = log_rate + _scenario_term(model, posterior, draws, scenario, days, rng)
    if design.options.trend:
        time = trend_time(day_index, len(design.days))
        log_rate = log_rate + draws("trend", n.FRONT)[..., None] * time
    if design.season_index is not None:
        season = days.dayofweek.to_numpy() if model.panel.freq == n.FREQ_DAY else days.month.to_numpy() - 1
        log_rate = log_rate + draws("seasonality", "season")[..., season][:, :, None, :]
    dispersion = draws("dispersion", n.FRONT)[..., None] if "dispersion" in posterior else None

    if design.options.self_excitation:
        counts, rate = _simulate_with_excitation(model, posterior, log_rate, dispersion, rng)
    else:
        rate = np.exp(log_rate)
        counts = _draw_counts(rate, dispersion, rng)
    coords = {
        "chain": posterior["chain"].to_numpy(),
        "draw": posterior["draw"].to_numpy(),
        n.FRONT: list(design.fronts),
        DATE_DIM: days,
    }
    dims = ("chain", "draw", n.FRONT, DATE_DIM)
    return xr.Dataset({"counts": (dims, counts), "rate": (dims, rate)}, coords=coords)


def dynamic_log_rate(
    model: EscalationModel, posterior: xr.Dataset, days: pd.DatetimeIndex, rng: np.random.Generator
) -> np.ndarray:
    """``(chain, draw, front, day)`` level plus burst of the dynamic model on future days.

    Days in the data's last period share its level and burst; every later period takes one
    step of the model's own recursions (:func:`forecast.models.dynamic.simulate_future`): the
    burst steps every period, the level at each new knot (every week on a daily grid), with
    fresh heavy-tailed level steps and burst innovations per draw, so a forecast that reaches
    further (or starts from a front whose data stopped early) is wider.
    """
    design = model.design
    freq = model.panel.freq

    def draws(name: str, *dims: str) -> np.ndarray:
        return posterior[name].transpose("chain", "draw", *dims).to_numpy()

    layout = layout_of(design)
    level = draws("level", n.FRONT, n.TIME)[..., -1]
    burst = draws("burst", n.FRONT, n.TIME)[..., -1]
    starts = period_start(days, freq)
    new = pd.DatetimeIndex(sorted(set(starts[starts > design.periods[-1]])))
    step_days = np.array([((start + PERIOD_OFFSET[freq]) - start).days for start in new], dtype=float)
    future_level, future_burst = simulate_future(
        level=level,
        burst=burst,
        sigma_level=draws("sigma_level", n.FRONT),
        tail_weight=draws("tail_weight", n.FRONT),
        burst_sd=draws("burst_sd", n.FRONT) if "burst_sd" in posterior else None,
        burst_persistence=draws("burst_persistence", n.FRONT) if "burst_persistence" in posterior else None,
        has_burst=layout.burst,
        step_days=step_days,
        level_step_days=layout.future_level_step_days(step_days),
        persistence_days=layout.persistence_days,
        rng=rng,
    )
    paths = np.concatenate([(level + burst)[..., None], future_level + future_burst], axis=-1)
    which = np.where(starts > design.periods[-1], new.get_indexer(starts) + 1, 0)
    return paths[..., which]


def _known_interventions(design: Design, posterior: xr.Dataset, draws: Draws, day_index: np.ndarray) -> np.ndarray:
    effect = draws("effect", n.FRONT, n.INTERVENTION)  # (chain, draw, front, intervention)
    shapes = np.zeros(effect.shape[:2] + (len(design.interventions), len(day_index)))
    half_life = draws("half_life", PULSE) if len(design.pulse_index) else None
    j: Any  # the row's label, its position (a RangeIndex); pandas-stubs types iterrows labels as Hashable
    for j, row in design.interventions.iterrows():
        if not design.intervention_known[j]:
            continue  # a placeholder: unknown at the end of the data, so no part of the forecast
        start_day = float(design.intervention_start_day[j])
        if row[n.SHAPE] == n.SHAPE_PULSE:
            pulse_row = int(np.flatnonzero(design.pulse_index == j)[0])
            hl = half_life[..., pulse_row][..., None]  # type: ignore[index]  # set whenever a pulse exists
            elapsed = day_index[None, None, :] - start_day
            shapes[:, :, j] = np.where(elapsed >= 0, np.exp(-np.log(2.0) * np.maximum(elapsed, 0) / hl), 0.0)
        else:
            end_day = None if pd.isna(row[n.END_DATE]) else float((row[n.END_DATE] - design.days[0]).days)
            shapes[:, :, j] = shape_values(row[n.SHAPE], day_index, start_day, end=end_day)
    return np.einsum("cdfj,cdjt->cdft", effect, shapes)


def _scenario_term(
    model: EscalationModel,
    posterior: xr.Dataset,
    draws: Draws,
    scenario: tuple[ScenarioIntervention, ...],
    days: pd.DatetimeIndex,
    rng: np.random.Generator,
) -> np.ndarray:
    design = model.design
    kinds = list(design.kinds)
    effect_mean = draws("effect_mean", "kind")
    effect_sd = draws("effect_sd")
    shape = effect_mean.shape[:2]
    out = np.zeros(shape + (len(design.fronts), len(days)))
    day_offsets = ((days - days[0]) / pd.Timedelta(days=1)).to_numpy().astype(float)
    for item in scenario:
        if item.kind not in kinds:
            raise ForecastError(f"scenario kind {item.kind!r} was not estimated in this fit; estimated kinds: {kinds}")
        unknown = [f for f in item.fronts if f not in design.fronts]
        if unknown:
            raise ForecastError(f"scenario fronts {unknown} are not in the fit; fronts: {list(design.fronts)}")
        start = float((item.start - days[0]).days)
        k = kinds.index(item.kind)
        effect = effect_mean[..., k][..., None] + effect_sd[..., None] * rng.standard_normal(
            shape + (len(design.fronts),)
        )
        if item.shape == n.SHAPE_PULSE:
            if "half_life_log_mean" not in posterior:
                raise ForecastError("a pulse scenario needs a fit with at least one pulse intervention")
            log_hl = draws("half_life_log_mean") + draws("half_life_log_sd") * rng.standard_normal(shape)
            elapsed = day_offsets[None, None, :] - start
            values = np.where(
                elapsed >= 0, np.exp(-np.log(2.0) * np.maximum(elapsed, 0) / np.exp(log_hl)[..., None]), 0.0
            )
        else:
            end = None if item.end is None else float((item.end - days[0]).days)
            values = np.broadcast_to(shape_values(item.shape, day_offsets, start, end=end), shape + (len(days),))
        mask = np.array([not item.fronts or f in item.fronts for f in design.fronts], dtype=float)
        out += effect[..., None] * values[:, :, None, :] * mask[None, None, :, None]
    return out


def _draw_counts(rate: np.ndarray, dispersion: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    if dispersion is None:
        return rng.poisson(rate)
    alpha = np.broadcast_to(dispersion, rate.shape)
    return rng.poisson(rng.gamma(shape=alpha, scale=rate / alpha))


def _simulate_with_excitation(
    model: EscalationModel,
    posterior: xr.Dataset,
    log_rate: np.ndarray,
    dispersion: np.ndarray | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    if model.panel.freq != n.FREQ_DAY:
        raise ForecastError("forecasts with self-excitation are simulated day by day and need a daily grid")
    design = model.design
    gain = posterior["self_excitation"].transpose("chain", "draw").to_numpy()[..., None]
    counts_matrix, _ = model.panel.counts_matrix()
    known = np.nan_to_num(counts_matrix, nan=0.0)
    # Fronts seen only through window totals have no excitation term in the model.
    daily = ~np.isnan(counts_matrix).all(axis=1)
    decay = 2.0 ** (-1.0 / design.options.excitation_half_life)
    running = np.zeros(known.shape[0])
    for t in range(known.shape[1]):
        running = decay * (running + known[:, t])
    running = np.broadcast_to(running, log_rate.shape[:3]).copy()
    counts = np.zeros(log_rate.shape, dtype=np.int64)
    rate = np.zeros(log_rate.shape)
    for t in range(log_rate.shape[-1]):
        rate[..., t] = np.exp(log_rate[..., t] + gain * np.log1p(running))
        counts[..., t] = _draw_counts(rate[..., t], None if dispersion is None else dispersion[..., 0], rng)
        running = decay * (running + counts[..., t] * daily)
    return counts, rate

r"""Posterior rate indicators at ``as_of``: rate ratios, recent changepoints and lulls.

Every quantity is computed per posterior draw :math:`s` and only then summarised.  With
:math:`t_0` = ``as_of`` (the panel's last day) and the model of
:mod:`forecast.models.escalation`:

Current rate and rate ratio
---------------------------
All :math:`K` changepoints of a front fall inside the data, so at :math:`t_0` every front is
in its last regime and carries every jump:

.. math::

    \log\lambda^{(s)}_f(t_0) = \beta^{(s)}_f + \sum_{k=1}^{K}\delta^{(s)}_{f,k}
        + \sum_j e^{(s)}_{f,j}\, s^{(s)}_j(t_0) + \bar\gamma^{(s)} + g^{(s)} x_f(t_0),

where :math:`s_j` is the intervention's shape (pulse: :math:`2^{-(t_0-t_j)/h_j}`; window:
:math:`\mathbb 1[t_j \le t_0 \le t'_j]`; step: :math:`\mathbb 1[t_0 \ge t_j]`),
:math:`\bar\gamma` is the seasonal effect *averaged over the season cycle* (so that the rate
is not a weekday or month artefact; with the zero-sum prior it is 0), and :math:`g\,x_f(t_0)`
is the self-excitation term exactly as the fit used it for the last period (the log1p of the
decayed counts before it; 0 for fronts seen only through windows).  With the optional trend,
:math:`b_f u(t_0)` is added to the log rate and so to :math:`\log R_f` (the baseline is then
the first regime's level at the data's middle day).  The *baseline rate* is
the first regime's rate without interventions, :math:`\exp(\beta_f + \bar\gamma)`, so

.. math::

    R^{(s)}_f = \frac{\lambda^{(s)}_f(t_0)}{\exp(\beta^{(s)}_f + \bar\gamma^{(s)})}
              = \exp\Big(\sum_k \delta^{(s)}_{f,k} + \sum_j e^{(s)}_{f,j}\, s^{(s)}_j(t_0)
                + g^{(s)} x_f(t_0)\Big),
    \qquad p_\text{rate increase} = \Pr(R_f > r^*) \approx \frac1S\sum_s \mathbb 1[R^{(s)}_f > r^*]

with :math:`r^*` = ``rate_increase_ratio`` (1.5).  Across fronts, per draw (never from the
marginals, which would ignore how fronts move together):

.. math::

    p_\text{two or more rising} = \frac1S \sum_s \mathbb 1\Big[\sum_f \mathbb 1[R^{(s)}_f > r^*] \ge 2\Big].

Recent changepoint
------------------
Changepoint positions are ordered, :math:`\tau_1 < \dots < \tau_K`, and positions follow the
dates of a front's observations.  The last ``days`` (14) days up to :math:`t_0` are a *suffix*
of positions (observations whose first day is on or after :math:`t_0 - (\text{days} - 1)`), so
at least one changepoint falls in them exactly when the last one does:

.. math::

    p_\text{changepoint recent} = \Pr(\exists k: \tau_k \in \text{suffix})
      = \Pr(\tau_K \in \text{suffix}) = \sum_{i \in \text{suffix}} \bar p(\tau_K = i),

exact for every :math:`K` (:math:`\bar p` is the draw-averaged position posterior of
:func:`forecast.models.model.changepoint_dates_posterior`).  A changepoint at position
:math:`i` means the new regime starts with observation :math:`i`, dated by its first day.
With :math:`K = 0` the quantity is undefined (null).

Lulls after an intervention
---------------------------
For an intervention :math:`j` on front :math:`f`, the rate ratio against the rate the front
would have without it (its pre-intervention rate, all else equal) is

.. math::

    L^{(s)}_{f,j} = \exp\big(e^{(s)}_{f,j}\, s^{(s)}_j(t_0)\big),\qquad
    \text{peak} = \exp(e^{(s)}_{f,j}),\qquad
    p_\text{lull holding} = \Pr(L_{f,j} < \ell^*)

with :math:`\ell^*` = ``lull_ratio`` (0.8): a lull *holds* in a draw while the intervention
still keeps the rate at least 20 % below what it would be without it.  The expected half-life
is the posterior of :math:`h_j` (pulses only; windows and steps have none).

The dynamic model
-----------------
:mod:`forecast.models.dynamic` has no regimes.  Its rate ratio compares the rate at
:math:`t_0` (level + burst + interventions) with the rate :data:`COMPARE_DAYS` days earlier
(:data:`COMPARE_PERIODS` periods on coarser grids), so a front that started quiet is not
"rising" for ever; its recent change is
:math:`\Pr(|\ell(t_0) - \ell(t_0 - 14\text{ days})| > \log 1.5)` over at least one period
(:func:`recent_level_change_probability`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from forecast import names as n
from forecast.data.shapes import shape_values
from forecast.models.design import Design, trend_time
from forecast.models.escalation import PULSE, SEASON_DIM

SAMPLE = "sample"


def draws_of(posterior: xr.Dataset, name: str, *dims: str) -> np.ndarray:
    """``(sample, *dims)`` draws of a posterior variable, chains and draws stacked."""
    return posterior[name].stack({SAMPLE: ("chain", "draw")}).transpose(SAMPLE, *dims).to_numpy()


def day_of(design: Design, date: pd.Timestamp) -> float:
    """Day index of ``date`` on the model's day grid (0 on the panel's first day)."""
    return float((pd.Timestamp(date) - design.days[0]) / pd.Timedelta(days=1))


def intervention_shapes(design: Design, posterior: xr.Dataset, day: float) -> np.ndarray:
    """``(sample, intervention)`` shape values :math:`s_j(t)` of every intervention at day ``t``."""
    n_samples = posterior.sizes["chain"] * posterior.sizes["draw"]
    frame = design.interventions
    out = np.zeros((n_samples, len(frame)))
    half_life = draws_of(posterior, "half_life", PULSE) if len(design.pulse_index) else None
    for j, row in design.intervention_rows():
        start = float(design.intervention_start_day[j])
        if row[n.SHAPE] == n.SHAPE_PULSE:
            assert half_life is not None  # a pulse has a half-life
            h = half_life[:, int(np.flatnonzero(design.pulse_index == j)[0])]
            # shapes.pulse takes one half-life; this is its formula for a vector of draws.
            out[:, j] = np.exp2(-max(day - start, 0.0) / h) if day >= start else 0.0
        else:
            end = None if pd.isna(row[n.END_DATE]) else day_of(design, row[n.END_DATE])
            out[:, j] = shape_values(row[n.SHAPE], day, start, end=end)
    return out


def log_rate_components(design: Design, posterior: xr.Dataset) -> dict[str, np.ndarray]:
    """Per draw and front at ``as_of``: ``baseline`` (with the season average) and ``log_ratio``.

    Returns ``(sample, front)`` arrays; ``baseline + log_ratio`` is the current log daily rate.
    """
    if design.options.family == "dynamic":
        return _dynamic_log_rate_components(design, posterior)
    baseline = draws_of(posterior, "baseline", n.FRONT)
    log_ratio = np.zeros_like(baseline)
    if design.options.changepoints:
        log_ratio += draws_of(posterior, "jump", n.FRONT, n.CHANGEPOINT).sum(axis=-1)
    if len(design.interventions):
        effect = draws_of(posterior, "effect", n.FRONT, n.INTERVENTION)
        shapes = intervention_shapes(design, posterior, day_of(design, design.days[-1]))
        log_ratio += np.einsum("sfj,sj->sf", effect, shapes)
    if design.season_index is not None:
        baseline = baseline + draws_of(posterior, "seasonality", SEASON_DIM).mean(axis=-1)[:, None]
    if design.options.self_excitation:
        gain = draws_of(posterior, "self_excitation")
        log_ratio += gain[:, None] * design.excitation[:, -1][None, :]
    if design.options.trend:
        last_day = trend_time(np.array([len(design.days) - 1]), len(design.days))[0]
        log_ratio += draws_of(posterior, "trend", n.FRONT) * last_day
    return {"baseline": baseline, "log_ratio": log_ratio}


#: The dynamic model compares the rate at ``as_of`` with the rate this many days earlier on a
#: daily grid, and this many periods earlier on coarser grids.
COMPARE_DAYS = 28
COMPARE_PERIODS = 4


def comparison_lag(design: Design) -> int:
    """Periods between ``as_of`` and the rate it is compared with (at most the data's length)."""
    daily = len(design.periods) == len(design.days)
    return max(1, min(COMPARE_DAYS if daily else COMPARE_PERIODS, len(design.periods) - 1))


def _dynamic_log_rate_components(design: Design, posterior: xr.Dataset) -> dict[str, np.ndarray]:
    """The dynamic model's rate at ``as_of`` against its rate :func:`comparison_lag` periods earlier.

    Both are ``level + burst + interventions`` of their period (the season averages out); a
    front that started quiet is compared with its recent past, never with its start.
    """
    lag = comparison_lag(design)
    path = draws_of(posterior, "level", n.FRONT, n.TIME) + draws_of(posterior, "burst", n.FRONT, n.TIME)
    baseline = path[..., -1 - lag]
    log_ratio = path[..., -1] - baseline
    if len(design.interventions):
        effect = draws_of(posterior, "effect", n.FRONT, n.INTERVENTION)
        earlier_day = day_of(design, max(design.periods[-1 - lag], design.days[0]))
        now = intervention_shapes(design, posterior, day_of(design, design.days[-1]))
        before = intervention_shapes(design, posterior, earlier_day)
        baseline = baseline + np.einsum("sfj,sj->sf", effect, before)
        log_ratio = log_ratio + np.einsum("sfj,sj->sf", effect, now - before)
    if design.season_index is not None:
        baseline = baseline + draws_of(posterior, "seasonality", SEASON_DIM).mean(axis=-1)[:, None]
    return {"baseline": baseline, "log_ratio": log_ratio}


#: "Recent change" in the dynamic model: the level moved by more than this log ratio (1.5x) ...
RECENT_CHANGE_LOG_RATIO = float(np.log(1.5))


def recent_level_change_probability(design: Design, posterior: xr.Dataset, *, days: int) -> list[float]:
    """Per front, P(|level(as_of) - level(as_of - days)| > log 1.5), over at least one period.

    On a monthly grid "the last 14 days" is the last period's step; at the very end of the data
    it is the last steps themselves, so a change in the final period counts.
    """
    level = draws_of(posterior, "level", n.FRONT, n.TIME)
    daily = len(design.periods) == len(design.days)
    lag = max(1, min(days if daily else 1, len(design.periods) - 1))
    change = level[..., -1] - level[..., -1 - lag]
    return [float(p) for p in np.mean(np.abs(change) > RECENT_CHANGE_LOG_RATIO, axis=0)]


def p_two_or_more_above(ratio: np.ndarray, threshold: float) -> float | None:
    """Per-draw probability that at least two fronts have ``ratio > threshold``; None with < 2 fronts.

    ``ratio`` is ``(sample, front)``.
    """
    if ratio.shape[1] < 2:
        return None
    return float(np.mean((ratio > threshold).sum(axis=1) >= 2))


def recent_changepoint_probability(
    design: Design, probabilities: np.ndarray | None, *, days: int
) -> list[float | None]:
    """Per front, ``P(a changepoint within the last days)``; see the module docstring.

    ``probabilities`` is ``(changepoint, front, position)``; None (or ``K = 0``) gives None.
    """
    if probabilities is None or not design.options.changepoints:
        return [None] * len(design.fronts)
    first_day = design.days[-1] - pd.Timedelta(days=days - 1)
    last = np.asarray(probabilities)[-1]
    out: list[float | None] = []
    for f in range(len(design.fronts)):
        dates = design.obs_date[design.position[f]]
        inside = design.position_mask[f] & (dates >= first_day)
        out.append(float(min(1.0, np.sum(last[f] * inside))))
    return out


def lull_candidates(design: Design, *, recent_days: int) -> list[int]:
    """Interventions reported as lulls: started within ``recent_days`` days, or a window still on."""
    as_of = design.days[-1]
    recent = as_of - pd.Timedelta(days=recent_days)
    out = []
    for j, row in design.intervention_rows():
        ongoing = row[n.SHAPE] == n.SHAPE_WINDOW and row[n.END_DATE] >= as_of
        if row[n.DATE] >= recent or ongoing:
            out.append(int(j))
    return out

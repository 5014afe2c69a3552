r"""Baseline forecasts of counts, fitted on the same training window as the model.

Every baseline predicts a daily *rate* from the training series of one front and turns it
into a negative binomial forecast of each target (a grid period or a reported window):

.. math:: Y \sim \operatorname{NB}(\mu = \max(\hat r\, L,\ \mu_\text{min}),\ \alpha_h),

with :math:`L` the target's days, :math:`\mu_\text{min}` = :data:`MIN_MEAN` (a zero rate
would make every later count impossible) and :math:`\alpha_h` a dispersion per horizon step
(variance :math:`\mu + \mu^2/\alpha`; :data:`MAX_DISPERSION` is effectively Poisson).

Period series (fronts counted per grid period)
    Training rates :math:`r_t = y_t / e_t` over the periods with exposure :math:`e_t > 0`.

    * ``no_change``: the last observed rate.
    * ``moving_average``: the mean of the last :math:`k` observed rates.
    * ``seasonal_naive``: the rate of the most recent observed period of the same season
      (day of week for daily panels, period :math:`s`), when the panel has a season.
    * ``constant_rate``: :math:`\sum_t y_t / \sum_t e_t` over the whole training window.

    Dispersion: for ``constant_rate``, maximum likelihood over the training periods with
    means :math:`\hat r e_t`.  For the others, honestly out of sample: for each horizon step
    :math:`h`, maximum likelihood over the training pairs
    :math:`(y_t,\ \hat r_{t-h} e_t)` where :math:`\hat r_{t-h}` is the baseline's rate
    computed from the data up to :math:`t - h` only.  With fewer than
    :data:`MIN_PAIRS` pairs the previous step's dispersion is kept (the constant-rate one
    for :math:`h = 1`).  So the spread grows with the horizon as the baseline's own errors do.

Window series (fronts reported only through totals over windows)
    Rates :math:`y_w / L_w`: ``no_change`` (the last window's rate), ``moving_average``
    (pooled rate :math:`\sum y / \sum L` of the last :math:`k` windows) and
    ``constant_rate`` (pooled over all windows), sharing one dispersion fitted by maximum
    likelihood with the constant-rate means (Poisson-like with fewer than
    :data:`MIN_WINDOWS` windows).  ``at_least`` totals are used as if exact.  There is no
    seasonal naive for windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

__all__ = [
    "BASELINES",
    "MAX_DISPERSION",
    "MIN_MEAN",
    "BaselineForecast",
    "fit_dispersion",
    "period_baselines",
    "window_baselines",
]

BASELINES = ("no_change", "moving_average", "seasonal_naive", "constant_rate")
MIN_MEAN = 0.1
MIN_DISPERSION = 1e-3
MAX_DISPERSION = 1e6
MIN_PAIRS = 10
MIN_WINDOWS = 3


@dataclass(frozen=True)
class BaselineForecast:
    """A negative binomial forecast of each target: ``mean`` and ``alpha`` (target,)."""

    method: str
    mean: np.ndarray
    alpha: np.ndarray


def fit_dispersion(y: np.ndarray, mu: np.ndarray) -> float:
    """Maximum-likelihood :math:`\\alpha` of NB(``mu``, alpha) for counts ``y`` with known means.

    Bounded to [:data:`MIN_DISPERSION`, :data:`MAX_DISPERSION`]; the upper bound is the
    answer for data no more variable than Poisson.
    """
    y = np.asarray(y, dtype=float)
    mu = np.maximum(np.asarray(mu, dtype=float), MIN_MEAN)
    if y.size == 0:
        return MAX_DISPERSION

    def negative_loglik(log_alpha: float) -> float:
        alpha = np.exp(log_alpha)
        return -float(np.sum(stats.nbinom.logpmf(y, alpha, alpha / (alpha + mu))))

    bounds = (np.log(MIN_DISPERSION), np.log(MAX_DISPERSION))
    result = optimize.minimize_scalar(negative_loglik, bounds=bounds, method="bounded", options={"xatol": 1e-4})
    return float(np.exp(result.x))


def _last_k_mean(rates: np.ndarray, last: np.ndarray, k: int) -> np.ndarray:
    """Mean of the last ``k`` observed (non-NaN) rates at or before each index in ``last``."""
    observed = ~np.isnan(rates)
    values = np.concatenate([[0.0], np.cumsum(np.where(observed, rates, 0.0))[observed]])
    count = np.cumsum(observed)
    safe_last = np.clip(last, 0, len(rates) - 1)
    c = np.where(last >= 0, count[safe_last], 0)
    lo = np.maximum(c - k, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, (values[c] - values[lo]) / (c - lo), np.nan)


def _seasonal_last(rates: np.ndarray, last: np.ndarray, target: np.ndarray, season: int) -> np.ndarray:
    """Rate of the latest observed period ``j <= last`` with ``j = target (mod season)``."""
    filled = rates.copy()
    for i in range(season, len(rates)):
        if np.isnan(filled[i]):
            filled[i] = filled[i - season]
    j = last - np.mod(last - target, season)
    return np.where(j >= 0, filled[np.clip(j, 0, len(rates) - 1)], np.nan)


def _predict(
    method: str,
    rates: np.ndarray,
    counts: np.ndarray,
    exposure: np.ndarray,
    last: np.ndarray,
    target: np.ndarray,
    window: int,
    season: int | None,
) -> np.ndarray:
    if method == "no_change":
        return _last_k_mean(rates, last, 1)
    if method == "moving_average":
        return _last_k_mean(rates, last, window)
    if method == "seasonal_naive":
        assert season is not None
        return _seasonal_last(rates, last, target, season)
    cum_y = np.cumsum(np.nan_to_num(counts))
    cum_e = np.cumsum(exposure)
    safe = np.clip(last, 0, len(rates) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((last >= 0) & (cum_e[safe] > 0), cum_y[safe] / cum_e[safe], np.nan)


def period_baselines(
    counts: np.ndarray,
    exposure: np.ndarray,
    *,
    steps: np.ndarray,
    target_days: np.ndarray,
    window: int,
    season: int | None,
) -> dict[str, BaselineForecast]:
    """Baseline forecasts of future periods of one front.

    Parameters
    ----------
    counts, exposure : array (period,)
        Training counts (NaN where unobserved) and observed days of each period.
    steps : int array (target,)
        Periods ahead of the last training period (1 = the next one).
    target_days : array (target,)
        Days of each target period.
    window : int
        :math:`k` of the moving average.
    season : int, optional
        Season length in periods; None leaves ``seasonal_naive`` out.
    """
    counts = np.asarray(counts, dtype=float)
    exposure = np.asarray(exposure, dtype=float)
    steps = np.asarray(steps, dtype=np.int64)
    rates = np.where(exposure > 0, counts / np.where(exposure > 0, exposure, 1.0), np.nan)
    n_periods = len(rates)
    observed = np.flatnonzero(~np.isnan(rates))
    if observed.size == 0:
        return {}
    last_index = np.full(steps.shape, n_periods - 1)
    methods = [m for m in BASELINES if m != "seasonal_naive" or season is not None]
    out: dict[str, BaselineForecast] = {}

    constant_mu = _predict(
        "constant_rate", rates, counts, exposure, np.array([n_periods - 1]), np.array([0]), window, season
    )
    constant_alpha = fit_dispersion(counts[observed], constant_mu[0] * exposure[observed])
    for method in methods:
        rate = _predict(method, rates, counts, exposure, last_index, n_periods - 1 + steps, window, season)
        mean = np.maximum(np.nan_to_num(rate, nan=constant_mu[0]) * target_days, MIN_MEAN)
        if method == "constant_rate":
            alpha = np.full(steps.shape, constant_alpha)
        else:
            by_step = _dispersion_by_step(
                method, rates, counts, exposure, int(steps.max()), window, season, constant_alpha
            )
            alpha = by_step[steps - 1]
        out[method] = BaselineForecast(method, mean, alpha)
    return out


def _dispersion_by_step(
    method: str,
    rates: np.ndarray,
    counts: np.ndarray,
    exposure: np.ndarray,
    max_step: int,
    window: int,
    season: int | None,
    fallback: float,
) -> np.ndarray:
    """Out-of-sample ML dispersion of ``method`` for each step 1..max_step (see the module docstring)."""
    out = np.empty(max_step)
    previous = fallback
    targets = np.flatnonzero(~np.isnan(rates))
    for h in range(1, max_step + 1):
        t = targets[targets - h >= 0]
        rate = _predict(method, rates, counts, exposure, t - h, t, window, season)
        usable = ~np.isnan(rate)
        if usable.sum() >= MIN_PAIRS:
            previous = fit_dispersion(counts[t[usable]], rate[usable] * exposure[t[usable]])
        out[h - 1] = previous
    return out


def window_baselines(
    counts: np.ndarray, days: np.ndarray, *, target_days: np.ndarray, window: int
) -> dict[str, BaselineForecast]:
    """Baseline forecasts of future window totals of a front reported only through windows.

    Parameters
    ----------
    counts, days : array (window,)
        Training window totals and their lengths in days, in date order.
    target_days : array (target,)
        Days of each target window.
    window : int
        :math:`k` windows pooled by ``moving_average``.
    """
    counts = np.asarray(counts, dtype=float)
    days = np.asarray(days, dtype=float)
    target_days = np.asarray(target_days, dtype=float)
    if counts.size == 0:
        return {}
    constant = counts.sum() / days.sum()
    rates = {
        "no_change": counts[-1] / days[-1],
        "moving_average": counts[-window:].sum() / days[-window:].sum(),
        "constant_rate": constant,
    }
    alpha = fit_dispersion(counts, constant * days) if counts.size >= MIN_WINDOWS else MAX_DISPERSION
    return {
        method: BaselineForecast(method, np.maximum(rate * target_days, MIN_MEAN), np.full(target_days.shape, alpha))
        for method, rate in rates.items()
    }

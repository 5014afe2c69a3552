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

    Dispersion: for ``constant_rate``, fitted over the training periods with means
    :math:`\hat r e_t`.  For the others, honestly out of sample: for each horizon step
    :math:`h`, fitted over the training pairs :math:`(y_t,\ \hat r_{t-h} e_t)` where
    :math:`\hat r_{t-h}` is the baseline's rate computed from the data up to :math:`t - h`
    only.  With fewer than :data:`MIN_PAIRS` pairs the previous step's dispersion is kept
    (the constant-rate one for :math:`h = 1`).  So the spread grows with the horizon as the
    baseline's own errors do.

Robust, local dispersion (:func:`fit_dispersion_robust`)
    Every dispersion is fitted on the ``recent`` latest pairs only (the last 8 weeks of a
    daily panel, see the backtest), and after trimming the pairs whose log ratio
    :math:`r = \log\frac{y + 1}{\mu + 1}` lies more than :data:`TRIM_SCALES` robust
    scales from the median of :math:`r`, the robust scale being
    :math:`\max(1.4826\,\operatorname{MAD}(r),\ ` :data:`MIN_LOG_SCALE` :math:`)`; then
    maximum likelihood on the pairs kept.  A stretch of zeros inside a series of hundreds
    (a source gone dark, read as zeros) makes a few pairs with :math:`|r|` of 5 or more; plain
    maximum likelihood over them collapses :math:`\alpha` towards 0 and the 90% interval
    becomes [0, several times the mean]; trimmed, they are left out.  On clean negative
    binomial or Poisson series the trim keeps practically every pair (the floor of the scale
    keeps the Poisson noise of small counts), so the fit is the maximum-likelihood one.

Published benchmarks (the VIEWS prediction challenge, Hegre et al. 2022)
    * ``zero``: a point mass at 0.
    * ``last``: Poisson draws around the last observed value (its rate times the target's
      days), i.e. Poisson(:math:`\max(\text{last}, \mu_\text{min})`).
    * ``conflictology``: the empirical distribution of the front's last
      :data:`CONFLICTOLOGY_PERIODS` observed rates times the target's days (a bootstrap of
      the last 12 periods).
    ``zero`` and ``conflictology`` are given by ``samples`` (sample, target) rather than a
    negative binomial; their log score is not defined (a point mass or 12 atoms give most
    outcomes probability 0) and is left empty.

Window series (fronts reported only through totals over windows)
    Rates :math:`y_w / L_w`: ``no_change`` (the last window's rate), ``moving_average``
    (pooled rate :math:`\sum y / \sum L` of the last :math:`k` windows) and
    ``constant_rate`` (pooled over all windows), sharing one dispersion fitted by maximum
    likelihood with the constant-rate means (robust as above; Poisson-like with fewer than
    :data:`MIN_WINDOWS` windows), and the benchmarks ``zero``, ``last`` (the last window's
    rate) and ``conflictology`` (the last 12 windows' rates).  ``at_least`` totals are used
    as if exact.  There is no seasonal naive for windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

__all__ = [
    "BASELINES",
    "BENCHMARKS",
    "CONFLICTOLOGY_PERIODS",
    "MAX_DISPERSION",
    "MIN_MEAN",
    "BaselineForecast",
    "fit_dispersion",
    "fit_dispersion_robust",
    "last_value",
    "period_baselines",
    "window_baselines",
]

#: The VIEWS prediction challenge's benchmarks, scored beside ours.
BENCHMARKS = ("zero", "last", "conflictology")
BASELINES = ("no_change", "moving_average", "seasonal_naive", "constant_rate", *BENCHMARKS)
CONFLICTOLOGY_PERIODS = 12
#: Trimming of :func:`fit_dispersion_robust`: pairs farther than this many robust scales ...
TRIM_SCALES = 3.0
#: ... with the robust scale of the log ratios never below this (Poisson noise of small counts).
MIN_LOG_SCALE = 0.5
MIN_MEAN = 0.1
MIN_DISPERSION = 1e-3
MAX_DISPERSION = 1e6
MIN_PAIRS = 10
MIN_WINDOWS = 3


@dataclass(frozen=True)
class BaselineForecast:
    """A forecast of each target: NB(``mean``, ``alpha``) (target,), or equally likely ``samples``.

    ``samples`` (sample, target), when given, is the predictive itself (``zero``,
    ``conflictology``); ``mean`` is then its mean and ``alpha`` is NaN.
    """

    method: str
    mean: np.ndarray
    alpha: np.ndarray
    samples: np.ndarray | None = None

    @classmethod
    def from_samples(cls, method: str, samples: np.ndarray) -> BaselineForecast:
        samples = np.asarray(samples, dtype=float)
        return cls(method, samples.mean(axis=0), np.full(samples.shape[1], np.nan), samples)


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


def fit_dispersion_robust(y: np.ndarray, mu: np.ndarray) -> float:
    """:func:`fit_dispersion` after trimming outlying pairs (see the module docstring)."""
    y = np.asarray(y, dtype=float)
    mu = np.maximum(np.asarray(mu, dtype=float), MIN_MEAN)
    if y.size == 0:
        return MAX_DISPERSION
    r = np.log((y + 1.0) / (mu + 1.0))
    centre = np.median(r)
    scale = max(1.4826 * float(np.median(np.abs(r - centre))), MIN_LOG_SCALE)
    keep = np.abs(r - centre) <= TRIM_SCALES * scale
    return fit_dispersion(y[keep], mu[keep])


def last_value(counts: np.ndarray, exposure: np.ndarray, target_days: np.ndarray) -> np.ndarray:
    """The point forecast "next = last": the last observed rate times each target's days (NaN if none)."""
    counts = np.asarray(counts, dtype=float)
    exposure = np.asarray(exposure, dtype=float)
    observed = np.flatnonzero((exposure > 0) & ~np.isnan(counts))
    target_days = np.asarray(target_days, dtype=float)
    if observed.size == 0:
        return np.full(target_days.shape, np.nan)
    i = observed[-1]
    return counts[i] / exposure[i] * target_days


def _benchmarks(rates: np.ndarray, target_days: np.ndarray) -> dict[str, BaselineForecast]:
    """``zero``, ``last`` and ``conflictology`` from the observed rates in date order."""
    rates = rates[~np.isnan(rates)]
    target_days = np.asarray(target_days, dtype=float)
    recent = rates[-CONFLICTOLOGY_PERIODS:]
    return {
        "zero": BaselineForecast.from_samples("zero", np.zeros((1, target_days.size))),
        "last": BaselineForecast(
            "last", np.maximum(rates[-1] * target_days, MIN_MEAN), np.full(target_days.shape, MAX_DISPERSION)
        ),
        "conflictology": BaselineForecast.from_samples("conflictology", recent[:, None] * target_days[None, :]),
    }


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
    recent: int | None = None,
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
    recent : int, optional
        Dispersions are fitted on the latest ``recent`` periods (pairs) only; None uses all.
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
    methods = [m for m in BASELINES if m not in BENCHMARKS and (m != "seasonal_naive" or season is not None)]
    out: dict[str, BaselineForecast] = {}

    constant_mu = _predict(
        "constant_rate", rates, counts, exposure, np.array([n_periods - 1]), np.array([0]), window, season
    )
    local = observed[-recent:] if recent else observed
    constant_alpha = fit_dispersion_robust(counts[local], constant_mu[0] * exposure[local])
    for method in methods:
        rate = _predict(method, rates, counts, exposure, last_index, n_periods - 1 + steps, window, season)
        mean = np.maximum(np.nan_to_num(rate, nan=constant_mu[0]) * target_days, MIN_MEAN)
        if method == "constant_rate":
            alpha = np.full(steps.shape, constant_alpha)
        else:
            by_step = _dispersion_by_step(
                method, rates, counts, exposure, int(steps.max()), window, season, constant_alpha, recent
            )
            alpha = by_step[steps - 1]
        out[method] = BaselineForecast(method, mean, alpha)
    out.update(_benchmarks(rates, np.asarray(target_days, dtype=float)))
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
    recent: int | None = None,
) -> np.ndarray:
    """Out-of-sample ML dispersion of ``method`` for each step 1..max_step (see the module docstring)."""
    out = np.empty(max_step)
    previous = fallback
    targets = np.flatnonzero(~np.isnan(rates))
    for h in range(1, max_step + 1):
        t = targets[targets - h >= 0]
        rate = _predict(method, rates, counts, exposure, t - h, t, window, season)
        usable = np.flatnonzero(~np.isnan(rate))
        if recent:
            usable = usable[-recent:]
        if usable.size >= MIN_PAIRS:
            previous = fit_dispersion_robust(counts[t[usable]], rate[usable] * exposure[t[usable]])
        out[h - 1] = previous
    return out


def window_baselines(
    counts: np.ndarray, days: np.ndarray, *, target_days: np.ndarray, window: int, recent: int | None = None
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
    recent : int, optional
        The dispersion is fitted on the latest ``recent`` windows only; None uses all.
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
    local = slice(-recent, None) if recent else slice(None)
    alpha = (
        fit_dispersion_robust(counts[local], constant * days[local]) if counts.size >= MIN_WINDOWS else MAX_DISPERSION
    )
    out = {
        method: BaselineForecast(method, np.maximum(rate * target_days, MIN_MEAN), np.full(target_days.shape, alpha))
        for method, rate in rates.items()
    }
    out.update(_benchmarks(counts / days, target_days))
    return out

r"""Proper scores of count forecasts: CRPS, log score, PIT, interval coverage and skill.

All scores are negatively oriented (lower is better) so that the skill of a method against a
reference is :math:`1 - S_\text{method} / S_\text{reference}` for both of them.

Negative binomial
    :math:`\operatorname{NB}(\mu, \alpha)` has mean :math:`\mu` and variance
    :math:`\mu + \mu^2/\alpha` (the model's parametrisation); in scipy's and scoringrules'
    terms :math:`n = \alpha`, :math:`p = \alpha / (\alpha + \mu)`.  ``alpha=None`` means
    Poisson(:math:`\mu`).

CRPS of a count distribution with CDF :math:`F`
    .. math:: \operatorname{CRPS}(F, y) = \sum_{k=0}^{\infty} \big(F(k) - 1[y \le k]\big)^2 .

    For parametric negative binomial and Poisson forecasts (:func:`crps_count`) the sum is
    computed exactly over the support up to the quantile :math:`1 - 10^{-12}` (and past
    :math:`y`); the neglected tail adds less than :math:`10^{-12}` per term.  scoringrules'
    closed forms (``crps_negbinom`` with a hypergeometric function, ``crps_poisson``) give the
    same values where they are stable, which a test checks, but in scoringrules 0.10 they lose
    accuracy for small dispersions and large means (``crps_negbinom`` 433.65 instead of
    432.94 at :math:`\mu = 800, \alpha = 0.3`; ``crps_poisson`` NaN at :math:`\mu = 1640`), the
    regime of the shipped data, so the sum is used.

    For a predictive given by draws :math:`x_1..x_S` (:func:`crps_draws`) the CRPS is
    scoringrules' ``crps_ensemble`` (the empirical-CDF estimator
    :math:`\frac1S\sum_s |x_s - y| - \frac1{2S^2}\sum_{s,t}|x_s - x_t|`); a point mass
    at :math:`x` scores :math:`|x - y|`.

Log score
    :math:`-\log p(y)`.  For a parametric forecast :math:`p` is the NB or Poisson pmf
    (scipy; scoringrules 0.10's ``logs_negbinom`` returns ``inf`` for :math:`\alpha < 1`).
    For the model (:func:`mixture_log_score`) :math:`p` is the posterior predictive itself,
    a mixture over posterior draws :math:`s = 1..S`:

    .. math:: -\log \frac1S \sum_s \operatorname{NB}(y \mid \mu_s, \alpha_s),

    computed with log-sum-exp.  This is exact for the model's predictive (up to the Monte
    Carlo error of the posterior draws) and needs no smoothing of sampled counts.

PIT
    Randomised PIT :math:`u = F(y - 1) + V\,p(y)`, :math:`V \sim U(0, 1)`, uniform when the
    forecast is calibrated (:func:`randomized_pit_count`; for draws, reuse
    :func:`forecast.checks.predictive.randomized_pit`).

Interval coverage
    The central :math:`100q\%` interval :math:`[F^{-1}((1-q)/2), F^{-1}((1+q)/2)]`
    (inclusive; for draws the empirical quantiles with ``method="inverted_cdf"``, as in
    :func:`forecast.checks.predictive.central_intervals`).  A row is covered when the
    observation lies inside.  For counts this interval holds *at least* :math:`q` of the
    forecast's own probability, and much more where small counts are likely: under a
    calibrated Poisson(0.5) forecast the 90% interval is [0, 2] and covers 98.6% of outcomes.
    So its coverage cannot judge calibration on series with many zeros.

PIT coverage
    :func:`pit_coverage`: the share of randomised PIT values inside
    :math:`[(1-q)/2, (1+q)/2]`, the coverage of the randomised central interval (Czado,
    Gneiting and Held 2009).  It is exactly :math:`q` in expectation when the forecast is
    calibrated, whatever the counts; on continuous data it equals the interval coverage.

Skill with an interval
    :func:`skill` takes per-origin mean scores :math:`m_o` (method) and :math:`r_o`
    (reference) over the same targets and returns
    :math:`1 - \sum_o m_o / \sum_o r_o` with a percentile bootstrap interval that resamples
    origins with replacement (origins are the independent units of a backtest).

Pooled skill over fronts, without scale
    :func:`pooled_front_skill`: :math:`1 - \frac1F \sum_f \sum m_f / \sum r_f`, the mean
    of the per-front score ratios over the fronts whose reference score is positive, so that
    every front counts once whatever its scale; bootstrapped over origins the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scoringrules as sr
from scipy import stats
from scipy.special import logsumexp

__all__ = [
    "SkillEstimate",
    "count_distribution",
    "count_interval",
    "crps_count",
    "crps_draws",
    "log_score_count",
    "mixture_log_score",
    "pit_coverage",
    "pooled_front_skill",
    "randomized_pit_count",
    "skill",
]

#: The sum over the support stops at this upper-tail probability.
TAIL_PROBABILITY = 1e-12


def count_distribution(mu: np.ndarray, alpha: np.ndarray | None):  # noqa: ANN201 (a frozen scipy distribution)
    """The frozen scipy distribution of NB(``mu``, ``alpha``), or Poisson(``mu``) when ``alpha`` is None."""
    mu = np.asarray(mu, dtype=float)
    if alpha is None:
        return stats.poisson(mu)
    alpha = np.broadcast_to(np.asarray(alpha, dtype=float), mu.shape)
    return stats.nbinom(alpha, alpha / (alpha + mu))


def _check_parameters(y: np.ndarray, mu: np.ndarray, alpha: np.ndarray | None) -> None:
    if np.any(y < 0) or np.any(~np.isfinite(y)):
        raise ValueError("observed counts must be finite and >= 0")
    if np.any(~(mu >= 0)) or np.any(~np.isfinite(mu)):
        raise ValueError("means must be finite and >= 0")
    if alpha is not None and np.any(~(np.asarray(alpha) > 0)):
        raise ValueError("dispersions must be > 0")


def crps_count(y: np.ndarray, mu: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    """CRPS of NB(``mu``, ``alpha``) (Poisson when ``alpha`` is None) at ``y``, element-wise.

    Exact sum over the support (see the module docstring).
    """
    y = np.atleast_1d(np.asarray(y, dtype=float))
    mu = np.broadcast_to(np.asarray(mu, dtype=float), y.shape)
    alpha_b = None if alpha is None else np.broadcast_to(np.asarray(alpha, dtype=float), y.shape)
    _check_parameters(y, mu, alpha_b)
    dist = count_distribution(mu, alpha_b)
    top = np.maximum(dist.isf(TAIL_PROBABILITY), y) + 1
    out = np.empty(y.shape)
    for i in range(y.size):
        k = np.arange(int(top.flat[i]) + 1)
        cdf = count_distribution(mu.flat[i], None if alpha_b is None else alpha_b.flat[i]).cdf(k)
        out.flat[i] = float(np.sum((cdf - (k >= y.flat[i])) ** 2))
    return out


def log_score_count(y: np.ndarray, mu: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    """:math:`-\\log p(y)` under NB(``mu``, ``alpha``) (Poisson when ``alpha`` is None)."""
    y = np.atleast_1d(np.asarray(y, dtype=float))
    mu = np.broadcast_to(np.asarray(mu, dtype=float), y.shape)
    alpha_b = None if alpha is None else np.broadcast_to(np.asarray(alpha, dtype=float), y.shape)
    _check_parameters(y, mu, alpha_b)
    return -count_distribution(mu, alpha_b).logpmf(y)


def randomized_pit_count(
    y: np.ndarray, mu: np.ndarray, alpha: np.ndarray | None, rng: np.random.Generator
) -> np.ndarray:
    """Randomised PIT :math:`F(y-1) + V p(y)` of a parametric count forecast."""
    y = np.atleast_1d(np.asarray(y, dtype=float))
    dist = count_distribution(np.broadcast_to(np.asarray(mu, dtype=float), y.shape), alpha)
    below = np.where(y > 0, dist.cdf(y - 1), 0.0)
    return below + rng.uniform(size=y.shape) * dist.pmf(y)


def pit_coverage(pit: np.ndarray, prob: float) -> float:
    """Share of randomised PIT values in ``[(1 - prob) / 2, (1 + prob) / 2]``; NaN when there are none.

    The coverage of the randomised central ``prob`` interval: ``prob`` in expectation under a
    calibrated forecast, for counts too (see the module docstring).  NaN PIT values (a target
    that could not be scored) are left out.
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    values = np.asarray(pit, dtype=float)
    values = values[np.isfinite(values)]
    if not values.size:
        return float("nan")
    return float(np.mean((values >= (1 - prob) / 2) & (values <= (1 + prob) / 2)))


def count_interval(mu: np.ndarray, alpha: np.ndarray | None, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Central ``prob`` interval of a parametric count forecast: quantiles (1-p)/2 and (1+p)/2."""
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    dist = count_distribution(np.atleast_1d(np.asarray(mu, dtype=float)), alpha)
    return dist.ppf((1 - prob) / 2), dist.ppf((1 + prob) / 2)


def crps_draws(y: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Sample CRPS of each observation from its predictive draws.

    Parameters
    ----------
    y : array (obs,)
    draws : array (sample, obs)
    """
    y = np.atleast_1d(np.asarray(y, dtype=float))
    draws = np.asarray(draws, dtype=float)
    if draws.ndim != 2 or draws.shape[1] != y.shape[0]:
        raise ValueError(f"draws must have shape (sample, {y.shape[0]}), got {draws.shape}")
    return np.asarray(sr.crps_ensemble(y, draws, m_axis=0), dtype=float)


def mixture_log_score(y: np.ndarray, mu_draws: np.ndarray, alpha_draws: np.ndarray | None) -> np.ndarray:
    """:math:`-\\log \\frac1S\\sum_s p(y \\mid \\mu_s, \\alpha_s)`, the log score of a posterior predictive.

    Parameters
    ----------
    y : array (obs,)
    mu_draws : array (sample, obs)
        Predictive mean of each observation under each posterior draw.
    alpha_draws : array (sample,) or (sample, obs), optional
        Dispersion of each draw; None for a Poisson likelihood.
    """
    y = np.atleast_1d(np.asarray(y, dtype=float))
    mu = np.asarray(mu_draws, dtype=float)
    if mu.ndim != 2 or mu.shape[1] != y.shape[0]:
        raise ValueError(f"mu_draws must have shape (sample, {y.shape[0]}), got {mu.shape}")
    alpha = None
    if alpha_draws is not None:
        alpha = np.asarray(alpha_draws, dtype=float)
        alpha = np.broadcast_to(alpha[:, None] if alpha.ndim == 1 else alpha, mu.shape)
    _check_parameters(y, mu, alpha)
    logpmf = count_distribution(mu, alpha).logpmf(np.broadcast_to(y, mu.shape))
    return -(logsumexp(logpmf, axis=0) - np.log(mu.shape[0]))


@dataclass(frozen=True)
class SkillEstimate:
    """Skill :math:`1 - S/S_\\text{ref}` with a bootstrap interval over origins."""

    value: float
    lower: float
    upper: float
    n_origins: int
    n_targets: int
    prob: float

    def to_dict(self) -> dict[str, object]:
        def clean(x: float) -> float | None:
            return round(float(x), 6) if np.isfinite(x) else None

        return {
            "value": clean(self.value),
            "interval": [clean(self.lower), clean(self.upper)],
            "interval_prob": self.prob,
            "n_origins": self.n_origins,
            "n_targets": self.n_targets,
        }


def skill(
    method: np.ndarray,
    reference: np.ndarray,
    origins: np.ndarray,
    *,
    prob: float = 0.9,
    n_boot: int = 2000,
    random_seed: int = 0,
) -> SkillEstimate:
    """Skill of ``method`` against ``reference`` on matched targets, bootstrapped over origins.

    Parameters
    ----------
    method, reference : array (target,)
        Scores (lower is better) of the same targets.
    origins : array (target,)
        The origin of each target; the bootstrap resamples whole origins.
    """
    method = np.asarray(method, dtype=float)
    reference = np.asarray(reference, dtype=float)
    origins = np.asarray(origins)
    if not method.shape == reference.shape == origins.shape:
        raise ValueError("method, reference and origins must have the same shape")
    if method.size == 0:
        return SkillEstimate(np.nan, np.nan, np.nan, 0, 0, prob)
    labels, index = np.unique(origins, return_inverse=True)
    m_sum = np.bincount(index, weights=method, minlength=len(labels))
    r_sum = np.bincount(index, weights=reference, minlength=len(labels))
    value = 1.0 - m_sum.sum() / r_sum.sum() if r_sum.sum() > 0 else np.nan
    rng = np.random.default_rng(random_seed)
    picks = rng.integers(0, len(labels), size=(n_boot, len(labels)))
    r_boot = r_sum[picks].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = 1.0 - m_sum[picks].sum(axis=1) / r_boot
    boot = boot[np.isfinite(boot)]
    lower, upper = np.quantile(boot, [(1 - prob) / 2, (1 + prob) / 2]) if boot.size else (np.nan, np.nan)
    return SkillEstimate(float(value), float(lower), float(upper), len(labels), int(method.size), prob)


def pooled_front_skill(
    method: np.ndarray,
    reference: np.ndarray,
    fronts: np.ndarray,
    origins: np.ndarray,
    *,
    prob: float = 0.9,
    n_boot: int = 2000,
    random_seed: int = 0,
) -> SkillEstimate:
    """Scale-free skill: one minus the mean over fronts of each front's score ratio.

    Parameters
    ----------
    method, reference : array (target,)
        Scores (lower is better) of the same targets.
    fronts, origins : array (target,)
        The front and the origin of each target; the bootstrap resamples whole origins and
        recomputes every front's ratio (fronts whose reference sum is 0 are left out).
    """
    method = np.asarray(method, dtype=float)
    reference = np.asarray(reference, dtype=float)
    if not method.shape == reference.shape == np.shape(fronts) == np.shape(origins):
        raise ValueError("method, reference, fronts and origins must have the same shape")
    if method.size == 0:
        return SkillEstimate(np.nan, np.nan, np.nan, 0, 0, prob)
    origin_labels, o = np.unique(np.asarray(origins), return_inverse=True)
    _, f = np.unique(np.asarray(fronts), return_inverse=True)
    shape = (len(origin_labels), int(f.max()) + 1)
    m_sum = np.zeros(shape)
    r_sum = np.zeros(shape)
    np.add.at(m_sum, (o, f), method)
    np.add.at(r_sum, (o, f), reference)

    def value_of(m: np.ndarray, r: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(r > 0, m / np.where(r > 0, r, 1.0), np.nan)
        counted = np.sum(r > 0, axis=-1)
        return np.where(counted > 0, 1.0 - np.nansum(ratio, axis=-1) / np.maximum(counted, 1), np.nan)

    value = float(value_of(m_sum.sum(axis=0), r_sum.sum(axis=0)))
    rng = np.random.default_rng(random_seed)
    picks = rng.integers(0, len(origin_labels), size=(n_boot, len(origin_labels)))
    boot = value_of(m_sum[picks].sum(axis=1), r_sum[picks].sum(axis=1))
    boot = boot[np.isfinite(boot)]
    lower, upper = np.quantile(boot, [(1 - prob) / 2, (1 + prob) / 2]) if boot.size else (np.nan, np.nan)
    return SkillEstimate(value, float(lower), float(upper), len(origin_labels), int(method.size), prob)

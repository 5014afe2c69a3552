"""Posterior predictive checks from arrays of draws: interval coverage and Bayesian p-values.

No model is needed: the checks compare observed counts :math:`y_i` with replicated counts
:math:`y^{rep}_{s,i}` (one row per posterior draw :math:`s = 1..S`, flattened over chains),
for each group of observations (e.g. the front) and for all of them together (``"all"``).

Coverage
    The central :math:`100p\\%` predictive interval of observation :math:`i` is
    :math:`[q_i((1-p)/2),\\; q_i((1+p)/2)]`, with :math:`q_i` the empirical quantiles of
    :math:`y^{rep}_{\\cdot,i}` (``method="inverted_cdf"``: the bounds are values actually
    drawn).  The interval is inclusive, so for discrete counts the expected coverage is at
    least :math:`p` (a little above it when the counts are small).  Reported for
    :math:`p = 0.5` and :math:`p = 0.9`: the share of observations inside.

Bayesian p-values (mid-p)
    For a test statistic :math:`T`,

    .. math:: p = P(T(y^{rep}) > T(y)) + \\tfrac12 P(T(y^{rep}) = T(y)),

    estimated over the draws.  Counts make statistics such as the maximum or the share of
    zeros discrete, and ties frequent; the mid-p convention splits ties evenly, so that a
    perfectly replicated statistic gets 0.5 rather than 1.  Values within
    :math:`10^{-12}\\max(1, |T(y)|)` count as ties (floating-point noise).  Draws for which
    :math:`T(y^{rep})` is undefined (NaN) are left out.  A p-value below 0.025 or above 0.975
    is flagged.

Statistics
    * ``mean``: :math:`\\bar y`.
    * ``share_zeros``: :math:`\\frac1n \\sum_i [y_i = 0]`.
    * ``dispersion``: :math:`s^2/\\bar y` with :math:`s^2` the sample variance (ddof 1);
      defined as 1 when :math:`\\bar y = 0` (all counts are zero), the value a single count
      of 1 among zeros gets, so the statistic is continuous there; NaN with fewer than 2
      observations.
    * ``max``: :math:`\\max_i y_i`.
    * ``lag1_autocorrelation`` .. ``lag7_autocorrelation``: the autocorrelation at lag
      :math:`k = 1..7` time steps within one group.  ``order`` gives each observation's time
      step (an integer on the panel's grid); a lag-:math:`k` pair is two included
      observations of the group exactly :math:`k` steps apart, so pairs that straddle a gap
      (a step with no observation: a declared gap, an excluded or a window observation) are
      skipped, never joined.  With :math:`\\bar y` the mean and the sum in the denominator
      over the group's observations that have a step,

      .. math:: r_k = \\sum_{(s, t):\\, t - s = k} (y_s-\\bar y)(y_t-\\bar y)
                      \\Big/ \\sum_t (y_t-\\bar y)^2

      (the usual sample autocorrelation; with no gaps it has :math:`n - k` pairs).  Defined
      as 0 for a constant series (no variation, no measurable dependence); *not computable*
      (NaN: no p-value, never flagged, ``None`` in JSON, ``n/a`` in text) with fewer than
      :data:`MIN_LAG_PAIRS` pairs at that lag.  For ``"all"`` the sums run within each group
      (each about its own mean, never across groups) and are pooled:
      :math:`r_k = \\sum_g N_g / \\sum_g D_g` over the groups where :math:`r_k` is computable.
      Seven lags are seven more chances of a flag: under a correct model some lag of some
      group is flagged more often than one statistic alone would be (the lags are
      correlated, so much less often than seven times).

Also here: :func:`randomized_pit`, randomised probability integral transform values of
counts, uniform on (0, 1) when the predictive distribution is right.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from forecast.checks.predictive_results import (
    AUTOCORRELATION_STATISTICS,
    MAX_LAG,
    P_VALUE_HIGH,
    P_VALUE_LOW,
    STATISTICS,
    IntervalCoverage,
    PredictiveCheckResult,
    StatisticCheck,
)

__all__ = [
    "ALL_GROUPS",
    "AUTOCORRELATION_STATISTICS",
    "MAX_LAG",
    "MIN_LAG_PAIRS",
    "P_VALUE_HIGH",
    "P_VALUE_LOW",
    "STATISTICS",
    "IntervalCoverage",
    "PredictiveCheckResult",
    "StatisticCheck",
    "central_intervals",
    "predictive_checks",
    "randomized_pit",
]

logger = logging.getLogger(__name__)

ALL_GROUPS = "all"
INTERVAL_PROBS = (0.5, 0.9)
#: A lag with fewer pairs of observations than this in a group is not computable there.
MIN_LAG_PAIRS = 3
_TIE_TOLERANCE = 1e-12


# --------------------------------------------------------------------------------------------
# Statistics, vectorised over replicated data sets (rows)
# --------------------------------------------------------------------------------------------


def _mean(y: np.ndarray) -> np.ndarray:
    if y.shape[-1] == 0:
        return np.full(y.shape[0], np.nan)
    return y.mean(axis=-1)


def _share_zeros(y: np.ndarray) -> np.ndarray:
    if y.shape[-1] == 0:
        return np.full(y.shape[0], np.nan)
    return (y == 0).mean(axis=-1)


def _dispersion(y: np.ndarray) -> np.ndarray:
    if y.shape[-1] < 2:
        return np.full(y.shape[0], np.nan)
    mean = y.mean(axis=-1)
    variance = y.var(axis=-1, ddof=1)
    positive = mean > 0
    return np.where(positive, variance / np.where(positive, mean, 1.0), 1.0)


def _maximum(y: np.ndarray) -> np.ndarray:
    if y.shape[-1] == 0:
        return np.full(y.shape[0], np.nan)
    return y.max(axis=-1).astype(float)


def _lag_pairs(steps: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(first, second)`` into sorted, distinct ``steps`` of the pairs exactly ``lag`` apart."""
    second = np.searchsorted(steps, steps + lag)
    found = second < steps.size
    found[found] = steps[second[found]] == steps[found] + lag
    return np.flatnonzero(found), second[found]


def _lag_sums(y: np.ndarray, steps: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Numerator and denominator of :math:`r_k` of one group, per computable lag ``k``.

    ``y`` (rows, n) holds the group's observations that have a time step, sorted by
    ``steps`` (n,) (distinct integers); lags with fewer than :data:`MIN_LAG_PAIRS` pairs are
    left out.  Vectorised over rows (replicated data sets).
    """
    if y.shape[-1] <= MIN_LAG_PAIRS:  # n observations give at most n - 1 pairs
        return {}
    centred = y - y.mean(axis=-1, keepdims=True)
    denominator = (centred**2).sum(axis=-1)
    sums = {}
    for lag in range(1, MAX_LAG + 1):
        first, second = _lag_pairs(steps, lag)
        if first.size >= MIN_LAG_PAIRS:
            sums[lag] = ((centred[:, first] * centred[:, second]).sum(axis=-1), denominator)
    return sums


def _autocorrelation_from_sums(parts: Sequence[tuple[np.ndarray, np.ndarray]], rows: int) -> np.ndarray:
    if not parts:
        return np.full(rows, np.nan)
    numerator = np.sum([part[0] for part in parts], axis=0)
    denominator = np.sum([part[1] for part in parts], axis=0)
    positive = denominator > 0
    return np.where(positive, numerator / np.where(positive, denominator, 1.0), 0.0)


_SIMPLE_STATISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": _mean,
    "share_zeros": _share_zeros,
    "dispersion": _dispersion,
    "max": _maximum,
}


def _mid_p(observed: float, replicated: np.ndarray) -> tuple[float, float]:
    """Return (mid-p value, mean of the defined replicated values)."""
    defined = replicated[np.isfinite(replicated)]
    if not np.isfinite(observed) or defined.size == 0:
        mean = float(defined.mean()) if defined.size else float("nan")
        return float("nan"), mean
    tolerance = _TIE_TOLERANCE * max(1.0, abs(observed))
    ties = np.abs(defined - observed) <= tolerance
    above = (defined > observed) & ~ties
    return float(above.mean() + 0.5 * ties.mean()), float(defined.mean())


def _make_check(group: str, statistic: str, observed: float, replicated: np.ndarray) -> StatisticCheck:
    p_value, replicated_mean = _mid_p(observed, replicated)
    flagged = bool(np.isfinite(p_value) and (p_value < P_VALUE_LOW or p_value > P_VALUE_HIGH))
    return StatisticCheck(group, statistic, float(observed), replicated_mean, p_value, flagged)


# --------------------------------------------------------------------------------------------
# Intervals and coverage
# --------------------------------------------------------------------------------------------


def _flatten_draws(replicated: np.ndarray, n_obs: int) -> np.ndarray:
    array = np.asarray(replicated)
    if array.ndim < 2 or array.shape[-1] != n_obs:
        raise ValueError(
            f"replicated must have shape (chain, draw, obs) or (sample, obs) with obs = {n_obs}, got {array.shape}"
        )
    return array.reshape(int(np.prod(array.shape[:-1])), n_obs)


def central_intervals(replicated: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the central predictive interval of each observation from replicated draws.

    Parameters
    ----------
    replicated : array (..., obs)
        Replicated counts; every leading axis is a draw axis (e.g. chain, draw).
    prob : float
        Interval probability :math:`p` in (0, 1).

    Returns
    -------
    lower, upper : arrays (obs,)
        Empirical quantiles :math:`(1-p)/2` and :math:`(1+p)/2` (``method="inverted_cdf"``,
        so the bounds are drawn values).  Observations are inside when
        ``lower <= y <= upper``.
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    array = np.asarray(replicated)
    draws = array.reshape(int(np.prod(array.shape[:-1])), array.shape[-1])
    if draws.shape[0] == 0:
        raise ValueError("replicated has no draws")
    quantiles = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=0, method="inverted_cdf")
    return quantiles[0], quantiles[1]


def _inside(observed: np.ndarray, draws: np.ndarray, prob: float) -> np.ndarray:
    if observed.size == 0:
        return np.zeros(0, dtype=bool)
    lower, upper = central_intervals(draws, prob)
    return (observed >= lower) & (observed <= upper)


def _share(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else float("nan")


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------


def _validate(
    observed: np.ndarray,
    replicated: np.ndarray,
    groups: Sequence[str],
    order: np.ndarray | None,
    include: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(observed)
    if y.ndim != 1:
        raise ValueError(f"observed must be one-dimensional (obs,), got shape {y.shape}")
    n_obs = y.shape[0]
    rep = np.asarray(replicated)
    if rep.ndim != 3 or rep.shape[-1] != n_obs:
        raise ValueError(f"replicated must have shape (chain, draw, obs) with obs = {n_obs}, got {rep.shape}")
    if rep.shape[0] * rep.shape[1] == 0:
        raise ValueError(f"replicated has no draws: shape {rep.shape}")
    group_array = np.asarray([str(group) for group in groups], dtype=object)
    if group_array.shape != (n_obs,):
        raise ValueError(f"groups must have one entry per observation ({n_obs}), got {len(group_array)}")
    if ALL_GROUPS in set(group_array.tolist()):
        raise ValueError(f"{ALL_GROUPS!r} is reserved for the pooled check; rename that group")
    if include is None:
        mask = np.ones(n_obs, dtype=bool)
    else:
        mask = np.asarray(include)
        if mask.shape != (n_obs,) or mask.dtype != bool:
            raise ValueError(f"include must be a boolean array of shape ({n_obs},), got {mask.dtype} {mask.shape}")
    if order is None:  # the array order: consecutive steps within each group
        position = np.zeros(n_obs)
        for name in set(group_array.tolist()):
            members = group_array == name
            position[members] = np.arange(int(members.sum()))
    else:
        raw = np.asarray(order)
        if raw.shape != (n_obs,):
            raise ValueError(f"order must have shape ({n_obs},), got {raw.shape}")
        if raw.dtype.kind not in "iuf":
            raise ValueError(f"order must be integer time steps (NaN for none), got dtype {raw.dtype}")
        position = raw.astype(float)
        stepped = np.isfinite(position)
        if np.any(np.isinf(position)) or np.any(position[stepped] != np.round(position[stepped])):
            raise ValueError("order must be whole numbers (time steps on the grid) or NaN (no step)")
    if not np.all(np.isfinite(y[mask].astype(float))):
        raise ValueError("observed has non-finite values among the included observations")
    if not np.all(np.isfinite(rep[..., mask].astype(float))):
        raise ValueError("replicated has non-finite values among the included observations")
    return y, rep.reshape(rep.shape[0] * rep.shape[1], n_obs), group_array, position, mask


def predictive_checks(
    observed: np.ndarray,
    replicated: np.ndarray,
    groups: Sequence[str],
    *,
    order: np.ndarray | None = None,
    include: np.ndarray | None = None,
) -> PredictiveCheckResult:
    """Check observed counts against replicated counts, per group and for all observations.

    See the module docstring for the definitions of coverage, the statistics and the
    mid-p convention.

    Parameters
    ----------
    observed : array (obs,)
        Observed counts.
    replicated : array (chain, draw, obs)
        Posterior predictive draws of the same observations.
    groups : sequence of str (obs,)
        Group of each observation (e.g. its front).  ``"all"`` is reserved.
    order : array (obs,), optional
        Time step of each observation within its group, for the autocorrelations: integers
        on the panel's grid (e.g. the period index), distinct within a group; a missing step
        is a gap that lag pairs do not straddle.  NaN leaves an observation out of the
        autocorrelations only (e.g. a window total, which has no single step).  By default
        the array order: consecutive steps within each group.  An observation left out by
        ``include`` keeps its step, so it is a gap too.
    include : bool array (obs,), optional
        Observations to check (e.g. False for censored ``at_least`` totals); all by default.

    Returns
    -------
    PredictiveCheckResult

    Raises
    ------
    ValueError
        On shapes that do not match, non-finite values, a group named ``"all"``, or ties in
        ``order`` within a group, or an ``order`` that is not whole numbers or NaN.
    """
    y, draws, group_array, position, mask = _validate(observed, replicated, groups, order, include)
    n_draws = draws.shape[0]
    names = list(dict.fromkeys(group_array.tolist()))

    inside = {prob: np.zeros(y.shape[0], dtype=bool) for prob in INTERVAL_PROBS}
    for prob in INTERVAL_PROBS:
        inside[prob][mask] = _inside(y[mask].astype(float), draws[:, mask], prob)

    statistics: list[StatisticCheck] = []
    coverage: list[IntervalCoverage] = []
    observed_parts: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {lag: [] for lag in range(1, MAX_LAG + 1)}
    replicated_parts: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {lag: [] for lag in range(1, MAX_LAG + 1)}
    for name in names:
        members = np.flatnonzero((group_array == name) & mask)
        times = position[members]
        sorted_times = np.sort(times[np.isfinite(times)])
        if sorted_times.size > 1 and np.any(sorted_times[1:] == sorted_times[:-1]):
            raise ValueError(f"order has ties within group {name!r}: positions in time must be distinct")
        members = members[np.argsort(times, kind="stable")]  # steps ascending, NaN (no step) last
        y_group = y[members].astype(float)[None, :]
        rep_group = draws[:, members].astype(float)
        coverage.append(
            IntervalCoverage(name, int(members.size), _share(inside[0.5][members]), _share(inside[0.9][members]))
        )
        for statistic, function in _SIMPLE_STATISTICS.items():
            statistics.append(_make_check(name, statistic, function(y_group)[0], function(rep_group)))
        stepped = np.isfinite(position[members])
        steps = position[members][stepped]
        observed_sums = _lag_sums(y_group[:, stepped], steps)
        replicated_sums = _lag_sums(rep_group[:, stepped], steps)
        for lag, statistic in enumerate(AUTOCORRELATION_STATISTICS, start=1):
            if lag in observed_sums:  # the same pairs in observed and replicated data
                observed_parts[lag].append(observed_sums[lag])
                replicated_parts[lag].append(replicated_sums[lag])
            observed_r = _autocorrelation_from_sums([observed_sums[lag]] if lag in observed_sums else [], 1)[0]
            replicated_r = _autocorrelation_from_sums([replicated_sums[lag]] if lag in replicated_sums else [], n_draws)
            statistics.append(_make_check(name, statistic, observed_r, replicated_r))

    members = np.flatnonzero(mask)
    y_all = y[members].astype(float)[None, :]
    rep_all = draws[:, members].astype(float)
    coverage.append(
        IntervalCoverage(ALL_GROUPS, int(members.size), _share(inside[0.5][members]), _share(inside[0.9][members]))
    )
    for statistic, function in _SIMPLE_STATISTICS.items():
        statistics.append(_make_check(ALL_GROUPS, statistic, function(y_all)[0], function(rep_all)))
    for lag, statistic in enumerate(AUTOCORRELATION_STATISTICS, start=1):
        statistics.append(
            _make_check(
                ALL_GROUPS,
                statistic,
                _autocorrelation_from_sums(observed_parts[lag], 1)[0],
                _autocorrelation_from_sums(replicated_parts[lag], n_draws),
            )
        )

    result = PredictiveCheckResult(statistics=tuple(statistics), coverage=tuple(coverage), n_draws=n_draws)
    for line in result.flagged():
        logger.warning("posterior predictive check flagged: %s", line)
    return result


def randomized_pit(observed: np.ndarray, replicated: np.ndarray, rng: np.random.Generator | int) -> np.ndarray:
    """Return randomised PIT values of counts, for a PIT histogram.

    For observation :math:`i` with replicated draws :math:`y^{rep}_{\\cdot,i}`,

    .. math:: u_i = \\hat P(Y_i < y_i) + V_i \\, \\hat P(Y_i = y_i), \\qquad V_i \\sim U(0, 1),

    with :math:`\\hat P` the share of draws.  When the predictive distribution is right the
    :math:`u_i` are uniform on (0, 1) (up to the Monte Carlo error of the draws), which the
    plain PIT of a discrete variable is not.

    Parameters
    ----------
    observed : array (obs,)
        Observed counts.
    replicated : array (..., obs)
        Replicated counts; every leading axis is a draw axis (e.g. chain, draw).
    rng : numpy Generator or int seed
        Source of the uniforms :math:`V_i`; pass a seed for reproducible values.

    Returns
    -------
    array (obs,) of float in [0, 1]
    """
    y = np.asarray(observed)
    if y.ndim != 1:
        raise ValueError(f"observed must be one-dimensional (obs,), got shape {y.shape}")
    draws = _flatten_draws(replicated, y.shape[0])
    if draws.shape[0] == 0:
        raise ValueError("replicated has no draws")
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    below = (draws < y[None, :]).mean(axis=0)
    equal = (draws == y[None, :]).mean(axis=0)
    return below + generator.uniform(size=y.shape[0]) * equal

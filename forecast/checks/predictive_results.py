"""What the posterior predictive checks return: per-group coverage and Bayesian p-values.

The checks themselves, and what each statistic means, are in :mod:`forecast.checks.predictive`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Bayesian p-values outside [P_VALUE_LOW, P_VALUE_HIGH] are flagged.
P_VALUE_LOW = 0.025
P_VALUE_HIGH = 0.975
#: Autocorrelation is checked at lags 1..MAX_LAG time steps (a week of days).
MAX_LAG = 7
#: ``lag1_autocorrelation`` .. ``lag7_autocorrelation`` (lag 1 keeps its original name).
AUTOCORRELATION_STATISTICS = tuple(f"lag{lag}_autocorrelation" for lag in range(1, MAX_LAG + 1))
STATISTICS = ("mean", "share_zeros", "dispersion", "max", *AUTOCORRELATION_STATISTICS)
STATISTIC_LABELS = {
    "mean": "mean",
    "share_zeros": "share of zeros",
    "dispersion": "dispersion (var/mean)",
    "max": "maximum",
    **{f"lag{lag}_autocorrelation": f"lag-{lag} autocorrelation" for lag in range(1, MAX_LAG + 1)},
}


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


@dataclass(frozen=True)
class StatisticCheck:
    """The Bayesian p-value of one statistic in one group.

    Attributes
    ----------
    group : str
        The group, or ``"all"``.
    statistic : str
        One of :data:`STATISTICS`.
    observed : float
        :math:`T(y)` (NaN when undefined).
    replicated_mean : float
        Mean of :math:`T(y^{rep})` over the draws where it is defined.
    p_value : float
        Mid-p :math:`P(T(y^{rep}) > T(y)) + \\frac12 P(T(y^{rep}) = T(y))` (NaN when undefined).
    flagged : bool
        True when ``p_value < 0.025`` or ``p_value > 0.975``.
    """

    group: str
    statistic: str
    observed: float
    replicated_mean: float
    p_value: float
    flagged: bool

    def describe(self) -> str:
        """Return one line, e.g. ``"south: share of zeros p = 0.003 (observed 0.62, replicated mean 0.31)"``."""
        return (
            f"{self.group}: {STATISTIC_LABELS[self.statistic]} p = {self.p_value:.3f} "
            f"(observed {self.observed:.3g}, replicated mean {self.replicated_mean:.3g})"
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "group": self.group,
            "statistic": self.statistic,
            "observed": _json_float(self.observed),
            "replicated_mean": _json_float(self.replicated_mean),
            "p_value": _json_float(self.p_value),
            "flagged": bool(self.flagged),
        }


@dataclass(frozen=True)
class IntervalCoverage:
    """Share of observations of one group inside their central predictive intervals.

    Attributes
    ----------
    group : str
    n_obs : int
        Observations checked (after ``include``).
    coverage_50, coverage_90 : float
        Share inside the central 50% and 90% intervals (NaN when ``n_obs`` is 0).
    """

    group: str
    n_obs: int
    coverage_50: float
    coverage_90: float

    def to_dict(self) -> dict[str, object]:
        return {
            "group": self.group,
            "n_obs": int(self.n_obs),
            "coverage_50": _json_float(self.coverage_50),
            "coverage_90": _json_float(self.coverage_90),
        }


@dataclass(frozen=True)
class PredictiveCheckResult:
    """Posterior predictive checks of every group and of ``"all"``.

    Attributes
    ----------
    statistics : tuple of StatisticCheck
        One per group and statistic, groups in order of first appearance then ``"all"``.
    coverage : tuple of IntervalCoverage
        One per group, same order.
    n_draws : int
        Replicated data sets used (chains x draws).
    """

    statistics: tuple[StatisticCheck, ...]
    coverage: tuple[IntervalCoverage, ...]
    n_draws: int

    @property
    def groups(self) -> tuple[str, ...]:
        """The groups, in order, ending with ``"all"``."""
        return tuple(row.group for row in self.coverage)

    @property
    def ok(self) -> bool:
        """True when no p-value is flagged."""
        return not any(row.flagged for row in self.statistics)

    def check(self, group: str, statistic: str) -> StatisticCheck:
        """Return the check of ``statistic`` in ``group``."""
        for row in self.statistics:
            if row.group == group and row.statistic == statistic:
                return row
        raise KeyError(
            f"no check of {statistic!r} in group {group!r}; groups are {list(self.groups)}, "
            f"statistics {list(STATISTICS)}"
        )

    def coverage_of(self, group: str) -> IntervalCoverage:
        """Return the interval coverage of ``group``."""
        for row in self.coverage:
            if row.group == group:
                return row
        raise KeyError(f"no group {group!r}; groups are {list(self.groups)}")

    def to_frame(self) -> pd.DataFrame:
        """Return one row per group and statistic, with the group's coverage columns.

        Columns: ``group, statistic, observed, replicated_mean, p_value, flagged, n_obs,
        coverage_50, coverage_90``.
        """
        coverage = {row.group: row for row in self.coverage}
        records = [
            {
                "group": row.group,
                "statistic": row.statistic,
                "observed": row.observed,
                "replicated_mean": row.replicated_mean,
                "p_value": row.p_value,
                "flagged": row.flagged,
                "n_obs": coverage[row.group].n_obs,
                "coverage_50": coverage[row.group].coverage_50,
                "coverage_90": coverage[row.group].coverage_90,
            }
            for row in self.statistics
        ]
        columns = [
            "group",
            "statistic",
            "observed",
            "replicated_mean",
            "p_value",
            "flagged",
            "n_obs",
            "coverage_50",
            "coverage_90",
        ]
        return pd.DataFrame.from_records(records, columns=columns)

    def flagged(self) -> list[str]:
        """Return one line per flagged p-value (empty when none is flagged)."""
        return [row.describe() for row in self.statistics if row.flagged]

    def to_dict(self) -> dict[str, object]:
        """Return the checks as JSON-safe values (NaN becomes None)."""
        return {
            "n_draws": int(self.n_draws),
            "p_value_bounds": [P_VALUE_LOW, P_VALUE_HIGH],
            "statistics": [row.to_dict() for row in self.statistics],
            "coverage": [row.to_dict() for row in self.coverage],
            "flagged": self.flagged(),
        }

    def format(self) -> str:
        """Return a fixed-width text table of coverage and p-values; ``*`` marks flagged rows."""
        width = max([len("group")] + [len(group) for group in self.groups])
        lines = [
            f"Posterior predictive checks ({self.n_draws} replicated data sets; "
            f"p-values outside [{P_VALUE_LOW}, {P_VALUE_HIGH}] flagged *)",
            "",
            f"{'group':<{width}}  {'n_obs':>6}  {'in 50%':>7}  {'in 90%':>7}",
        ]
        for row in self.coverage:
            lines.append(
                f"{row.group:<{width}}  {row.n_obs:>6d}  {_fmt(row.coverage_50, '.3f'):>7}  "
                f"{_fmt(row.coverage_90, '.3f'):>7}"
            )
        label_width = max(len(label) for label in STATISTIC_LABELS.values())
        lines += [
            "",
            f"{'group':<{width}}  {'statistic':<{label_width}}  {'observed':>10}  {'replicated':>10}  {'p-value':>7}",
        ]
        for stat in self.statistics:
            mark = " *" if stat.flagged else ""
            lines.append(
                f"{stat.group:<{width}}  {STATISTIC_LABELS[stat.statistic]:<{label_width}}  "
                f"{_fmt(stat.observed, '.4g'):>10}  {_fmt(stat.replicated_mean, '.4g'):>10}  "
                f"{_fmt(stat.p_value, '.3f'):>7}{mark}"
            )
        return "\n".join(lines)


def _fmt(value: float, spec: str) -> str:
    return "n/a" if not np.isfinite(value) else format(value, spec)

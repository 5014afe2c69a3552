"""The detector and the rules over spans of days, for a set of fronts (no I/O).

:class:`AlertEngine` turns the detector's outputs (:mod:`forecast.alerts.bocpd`, and
:mod:`forecast.alerts.bocpd_windows` for fronts observed only through window totals) and the
fit's predictive draws (:mod:`forecast.alerts.surprise`) into signals, and the signals into
alerts by the rules (:mod:`forecast.alerts.rules`).  The scheduled job
(:mod:`forecast.jobs.alert`) and the replay (:mod:`forecast.alerts.replay`) both drive it.

A day of a declared gap is no observation: its count is NaN, so the detector leaves the
front's state as it is (no run-length step, no hazard), the rules get no signal for it (no
alert is dated on it, the surprise rule skips it), and ``warmup`` and ``within_last``, which
count observations, do not count it.
"""

from __future__ import annotations

import bisect
import calendar
import hashlib
import logging
from collections.abc import Sequence
from datetime import date as Date

import numpy as np

from forecast.alerts.bocpd import update
from forecast.alerts.bocpd_state import DetectorState
from forecast.alerts.bocpd_windows import WindowState, update_windows
from forecast.alerts.detector_config import DetectorConfig
from forecast.alerts.rules import Alert, AlertRules, FrontRuleState, Signal, evaluate_front
from forecast.alerts.series import DailySeries, WindowSeries
from forecast.alerts.surprise import PredictiveDraws
from forecast.errors import ForecastError

log = logging.getLogger(__name__)

__all__ = ["AlertEngine", "config_hash", "first_day_after", "month_end_cuts", "stack_states"]


def config_hash(config: DetectorConfig, rules: AlertRules) -> str:
    """sha256 of the detector configuration and the rules together (a change resets the state)."""
    return hashlib.sha256(f"{config.hash()}|{rules.hash()}".encode()).hexdigest()


class AlertEngine:
    """Runs the detector and the rules for a set of fronts over spans of days (no I/O).

    A day of a declared gap is no observation (see the module docstring).  :attr:`gap_days`
    counts the gap days each front skipped in the spans processed.
    """

    def __init__(self, config: DetectorConfig, rules: AlertRules, series: DailySeries, draws: PredictiveDraws | None):
        self.config = config
        self.rules = rules
        self.series = series
        self.draws = draws
        self.outside_horizon = 0
        self.gap_days: dict[str, int] = {}
        observed = ~np.isnan(series.counts)
        self.observed_days = [np.flatnonzero(row) for row in observed]
        self.rank = np.cumsum(observed, axis=1) - 1  # position of a day among the front's observed days

    def advance(
        self,
        fronts: Sequence[int],
        state: DetectorState,
        rule_states: Sequence[FrontRuleState],
        lo: int,
        hi: int,
        first: Sequence[int],
    ) -> list[list[Alert]]:
        """Process days ``lo .. hi - 1``; front ``i`` only from day ``first[i]`` on.

        ``state`` and ``rule_states`` (one per front, in ``fronts`` order) are advanced.
        Returns the alerts of each front, in date order.
        """
        series = self.series
        counts = series.counts[list(fronts), lo:hi].copy()
        for i, start in enumerate(first):
            if start > lo:
                counts[i, : max(0, min(hi, start) - lo)] = np.nan
        gaps = series.gaps
        assert gaps is not None
        for f, start in zip(fronts, first, strict=True):
            skipped = int(gaps[f, max(lo, start) : hi].sum())
            if skipped:
                self.gap_days[series.fronts[f]] = self.gap_days.get(series.fronts[f], 0) + skipped
        per_front = [self.rules.for_front(series.fronts[f]) for f in fronts]
        output = update(
            self.config,
            state,
            counts,
            within_last=[r.changepoint.within_last for r in per_front],
            baseline=[r.changepoint.baseline for r in per_front],
            report_above=[r.changepoint.threshold if r.changepoint.enabled else np.inf for r in per_front],
        )
        alerts: list[list[Alert]] = []
        for i, f in enumerate(fronts):
            front = series.fronts[f]
            signals = []
            for j in np.flatnonzero(output.observed[i]):
                day = lo + int(j)
                date = series.dates[day]
                count = series.count(f, day)
                run = int(output.run_length[i, j])
                regime_start = None
                if run > 0:
                    position = int(self.rank[f, day]) - run + 1
                    regime_start = series.dates[int(self.observed_days[f][max(0, position)])]
                tails = None
                median = None
                if self.draws is not None and front in self.draws.fronts:
                    tails = self.draws.tails(front, date, count)
                    if tails is None:
                        self.outside_horizon += 1
                    else:
                        median = self.draws.median(front, date)
                rate_before = float(output.rate_before[i, j])
                signals.append(
                    Signal(
                        date=date,
                        count=count,
                        n_obs=int(output.n_obs[i, j]),
                        changepoint_prob=float(output.changepoint_prob[i, j]),
                        regime_start=regime_start,
                        rate_after=float(output.rate_after[i, j]) if run > 0 else None,
                        rate_before=rate_before if run > 0 and np.isfinite(rate_before) else None,
                        p_up=None if tails is None else tails[0],
                        p_down=None if tails is None else tails[1],
                        predictive_median=median,
                        fit_as_of=None if tails is None or self.draws is None else self.draws.as_of,
                    )
                )
            alerts.append(evaluate_front(front, per_front[i], rule_states[i], signals))
        return alerts

    def window_alerts(self, windows: WindowSeries) -> tuple[list[Alert], WindowState, FrontRuleState]:
        """Run the window detector and the rules over a window series from its first window.

        Returns the alerts (dated on window end dates, in order), the detector state and the
        rule state after the last window.  The surprise rule does not apply (the fit's draws
        are daily).
        """
        rules = self.rules.for_front(windows.front)
        state = WindowState.initial(self.config)
        output = update_windows(
            self.config,
            state,
            windows.counts,
            windows.days,
            within_last=rules.changepoint.within_last,
            baseline=rules.changepoint.baseline,
            report_above=rules.changepoint.threshold if rules.changepoint.enabled else np.inf,
        )
        signals = []
        for j, end in enumerate(windows.ends):
            run = int(output.run_length[0, j])
            rate_before = float(output.rate_before[0, j])
            signals.append(
                Signal(
                    date=end,
                    count=int(windows.counts[j]),
                    n_obs=int(output.n_obs[0, j]),
                    changepoint_prob=float(output.changepoint_prob[0, j]),
                    regime_start=windows.starts[j - run + 1] if run > 0 else None,
                    rate_after=float(output.rate_after[0, j]) if run > 0 else None,
                    rate_before=rate_before if run > 0 and np.isfinite(rate_before) else None,
                    window_start=windows.starts[j],
                )
            )
        rule_state = FrontRuleState()
        alerts = evaluate_front(windows.front, rules, rule_state, signals)
        return alerts, state, rule_state

    def log_gaps(self) -> None:
        """One INFO line per front that had declared gap days in the spans processed."""
        for front, skipped in sorted(self.gap_days.items()):
            log.info(
                "front %r: %d declared gap day(s) (not_observed) skipped: no detector step, no alert, not counted "
                "in warmup or within_last",
                front,
                skipped,
            )

    def log_horizon(self) -> None:
        if self.draws is not None and self.outside_horizon:
            log.info(
                "surprise rule skipped for %d observation(s) outside the fit's horizon %s .. %s",
                self.outside_horizon,
                self.draws.dates[0] if self.draws.dates else "-",
                self.draws.dates[-1] if self.draws.dates else "-",
            )


def month_end_cuts(dates: Sequence[str], lo: int, hi: int) -> list[int]:
    """Cut points in ``lo .. hi`` after each last day of a month (and ``hi``)."""
    cuts = []
    for t in range(lo, hi):
        day = Date.fromisoformat(dates[t])
        if day.day == calendar.monthrange(day.year, day.month)[1] and t + 1 < hi:
            cuts.append(t + 1)
    return [*cuts, hi]


def first_day_after(dates: Sequence[str], day: str) -> int:
    """Index of the first date after ``day`` (dates are ISO strings in order)."""
    return bisect.bisect_right(dates, day)


def stack_states(config: DetectorConfig, saved: Sequence[bytes | None]) -> DetectorState:
    """One detector state for several fronts from their saved bytes (None: a fresh front).

    Raises
    ------
    ForecastError
        When a saved state does not fit ``config``.
    """
    fresh = DetectorState.initial(len(saved), config)
    blobs = [s for s in saved if s is not None]
    if not blobs:
        return fresh
    try:
        restored = DetectorState.from_front_bytes(blobs, config)
    except ValueError as error:
        raise ForecastError(f"the saved detector state does not fit the detector configuration: {error}") from error
    position = 0
    for i, s in enumerate(saved):
        if s is not None:
            fresh.probs[i] = restored.probs[position]
            fresh.sums[i] = restored.sums[position]
            fresh.n_obs[i] = restored.n_obs[position]
            position += 1
    return fresh

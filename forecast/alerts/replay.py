"""Replay: the alerts a daily schedule would have issued over history, in memory (no I/O).

:func:`forecast.jobs.alert.replay_alerts` reads the inputs and calls :func:`replay_series`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date as Date
from typing import Any

from forecast.alerts.bocpd_state import DetectorState
from forecast.alerts.detector_config import DetectorConfig
from forecast.alerts.engine import AlertEngine, first_day_after
from forecast.alerts.evaluation import KnownChange, ReplayEvaluation, evaluate_replay
from forecast.alerts.rules import AlertRules, FrontRuleState
from forecast.alerts.series import DailySeries
from forecast.alerts.surprise import PredictiveDraws
from forecast.errors import ForecastError

__all__ = ["ReplayResult", "replay_series"]


@dataclass
class ReplayResult:
    """Alerts a daily schedule would have issued from ``start`` to ``end``."""

    start: str
    end: str
    alerts: list[dict[str, Any]]
    fronts: tuple[str, ...]
    skipped_fronts: tuple[str, ...]
    evaluation: ReplayEvaluation | None = None
    gap_days: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "fronts": list(self.fronts),
            "skipped_fronts": list(self.skipped_fronts),
            "gap_days_skipped": dict(self.gap_days),
            "alerts": len(self.alerts),
            "evaluation": None if self.evaluation is None else self.evaluation.to_dict(),
        }


def replay_series(
    config: DetectorConfig,
    rules: AlertRules,
    series: DailySeries,
    draws: PredictiveDraws | None,
    start: Date,
    end: Date,
    *,
    known_changes: Sequence[KnownChange] | None = None,
    match_days: int = 14,
) -> ReplayResult:
    """Run the detector and rules over ``series`` as if scheduled on every day ``start .. end``.

    The days before ``start`` are processed first (their alerts are history, as in a first
    scheduled run with ``--since START``), then each day is processed as a run with ``as_of``
    that day would process it, so the alert objects equal those of daily scheduled runs on the
    same data.  ``series`` ends on ``end`` at the latest.

    Raises
    ------
    ForecastError
        When the series end before ``start``.
    """
    first_day = first_day_after(series.dates, Date.fromordinal(start.toordinal() - 1).isoformat())
    if first_day >= len(series.dates):
        raise ForecastError(f"--replay: the data end on {series.end}, before START {start.isoformat()}")
    engine = AlertEngine(config, rules, series, draws)
    fronts = list(range(len(series.fronts)))
    detector = DetectorState.initial(len(fronts), config)
    rule_states = [FrontRuleState() for _ in fronts]
    first = [0] * len(fronts)
    # Window series: an alert on a window depends only on the windows ending on or before it, so
    # running each series once gives the alerts of the daily schedule; they are printed on the
    # day of their window's end, after the daily fronts' alerts (as a scheduled run prints them).
    from_windows: dict[str, list[dict[str, Any]]] = {}
    for windows in series.windows:
        for alert in engine.window_alerts(windows)[0]:
            from_windows.setdefault(alert.date, []).append(alert.to_json(alert.date))
    alerts: list[dict[str, Any]] = []
    if fronts and first_day > 0:
        engine.advance(fronts, detector, rule_states, 0, first_day, first)
    for day in range(first_day, len(series.dates)):
        if fronts:
            for found in engine.advance(fronts, detector, rule_states, day, day + 1, first):
                alerts.extend(alert.to_json(series.dates[day]) for alert in found)
        alerts.extend(from_windows.get(series.dates[day], []))
    engine.log_gaps()
    engine.log_horizon()
    last = min(end.isoformat(), series.end)
    evaluation = None
    if known_changes is not None:
        evaluation = evaluate_replay(
            alerts,
            known_changes,
            evaluable_fronts=(*series.fronts, *series.window_fronts),
            start=series.dates[first_day],
            end=last,
            match_days=match_days,
        )
    return ReplayResult(
        start=series.dates[first_day],
        end=last,
        alerts=alerts,
        fronts=(*series.fronts, *series.window_fronts),
        skipped_fronts=series.skipped,
        evaluation=evaluation,
        gap_days=dict(sorted(engine.gap_days.items())),
    )

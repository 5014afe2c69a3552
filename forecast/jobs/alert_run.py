"""One scheduled ``forecast alert`` run inside its transaction on the state file.

:func:`update_state` compares the counts with the ones already processed; a changed, added or
dropped day is a **revision**: the detector restarts from the newest checkpoint before the
first changed day, alerts that no longer hold are withdrawn, new ones are issued, and the run
says so.  It runs the detector and the rules (:class:`forecast.alerts.engine.AlertEngine`) over
the new days only, resuming from the saved state, saves the states (month-end checkpoints and
the end of the run), and records each alert under its stable id, with one outbox row per
destination.  Delivery is the job's (:mod:`forecast.jobs.alert`), after the commit.

The first run on a front processes its whole history but notifies only alerts dated on or
after ``since``; earlier ones are recorded with status ``history``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date as Date
from typing import Any

import numpy as np

from forecast.alerts.detector_config import DetectorConfig
from forecast.alerts.engine import AlertEngine, config_hash, first_day_after, month_end_cuts, stack_states
from forecast.alerts.rules import Alert, AlertRules, FrontRuleState
from forecast.alerts.series import DailySeries
from forecast.alerts.surprise import PredictiveDraws
from forecast.jobs.alert_state import (
    KIND_MONTH,
    KIND_RUN,
    STATUS_HISTORY,
    STATUS_ISSUED,
    STATUS_WITHDRAWN,
    AlertStore,
    SavedFrontState,
)
from forecast.jobs.notify import Notifier

log = logging.getLogger(__name__)

__all__ = ["EXIT_ALERT", "EXIT_ERROR", "EXIT_NOT_DELIVERED", "EXIT_OK", "AlertRunResult", "update_state"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_ALERT = 3
EXIT_NOT_DELIVERED = 4

MODE_SCHEDULED = "scheduled"


@dataclass
class AlertRunResult:
    """What a scheduled run did."""

    run_id: int
    as_of: str
    new_observations: int = 0
    issued: list[dict[str, Any]] = field(default_factory=list)
    revisions: list[dict[str, Any]] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)
    skipped_fronts: tuple[str, ...] = ()
    gap_days: dict[str, int] = field(default_factory=dict)  # declared gap days skipped, per front
    delivered: int = 0
    failed_destinations: list[str] = field(default_factory=list)
    pending: dict[str, int] = field(default_factory=dict)

    def exit_code(self, *, fail_on_alert: bool = False) -> int:
        if self.failed_destinations:
            return EXIT_NOT_DELIVERED
        if fail_on_alert and self.issued:
            return EXIT_ALERT
        return EXIT_OK


@dataclass
class _FrontPlan:
    index: int
    front: str
    restore: SavedFrontState | None
    changed: list[str]
    first_run: bool
    history_until: str | None  # alerts dated on or before this are recorded as history (after a reset)
    last_done: str | None
    previous: dict[str, int] = field(default_factory=dict)  # the stored counts of the changed days
    now_gaps: int = 0  # changed days that the data now declare not observed

    @property
    def resume_date(self) -> str | None:
        return None if self.restore is None else self.restore.date


def update_state(
    store: AlertStore,
    config: DetectorConfig,
    rules: AlertRules,
    series: DailySeries,
    draws: PredictiveDraws | None,
    as_of: str,
    notifiers: Sequence[Notifier],
    *,
    requested_as_of: Date | None,
    since: Date | None,
) -> AlertRunResult:
    """Process the new days of every front, revisions included, in the caller's transaction.

    Parameters
    ----------
    store : AlertStore
        Inside a write transaction.
    as_of : str
        The run's date (ISO): ``requested_as_of``, or the last day of the data.
    requested_as_of, since : date or None
        ``--as-of`` and ``--since`` as given (None: not given).
    """
    run_id = store.start_run(as_of, MODE_SCHEDULED, series.data_hash)
    result = AlertRunResult(run_id=run_id, as_of=as_of, skipped_fronts=series.skipped)
    current_hash = config_hash(config, rules)
    stored_hash = store.get_meta("config_hash")
    reset = stored_hash is not None and stored_hash != current_hash
    if reset:
        log.warning(
            "the detector or rules changed since the last run: recomputing every front from the start of its data; "
            "alerts this finds for days already processed are recorded as history, not notified"
        )
    store.set_meta("config_hash", current_hash)
    since_day = since.isoformat() if since else series.end

    in_data = set(series.fronts) | set(series.window_fronts)
    for front in store.fronts_with_state():
        if front not in in_data:
            log.warning("front %r has saved state but no observations in this input: left as it is", front)

    plans: list[_FrontPlan] = []
    observed_now: list[_Observed] = []
    all_stored = store.all_observations()
    latest_states = store.latest_states()
    dates_array = np.asarray(series.dates)
    behind: list[str] = []
    contradicted: list[str] = []
    n_daily = len(series.fronts)
    for f, front in enumerate((*series.fronts, *series.window_fronts)):
        latest = latest_states.get(front)
        last_done = latest.date if latest is not None else None
        if last_done is not None and last_done > series.end and not reset:
            if requested_as_of is not None and requested_as_of.isoformat() < last_done:
                behind.append(f"{front} (state at {last_done})")
                continue
            # The data end before the state although the run is not for an earlier date: the
            # days processed after series.end are gone from the input (a mistyped date that
            # extended the front was fixed).  A revision, never a frozen front.
            contradicted.append(f"{front} (state at {last_done})")
        if f < n_daily:
            days = np.flatnonzero(~np.isnan(series.counts[f]))
            observed = _Observed(dates_array[days], series.exact_counts[f][days])
        else:
            window_totals = series.windows[f - n_daily].observed()
            observed = _Observed(np.asarray(list(window_totals), dtype=str), np.asarray(list(window_totals.values())))
        observed_now.append(observed)
        stored = all_stored.get(front, _Observed.empty())
        changed: list[str] = []
        previous: dict[str, int] = {}
        if last_done is not None:
            changed, previous = observed.changes_from(stored, last_done)
        now_gaps = 0
        if changed and f < n_daily:
            # A gap declared over days processed as counts is a revision like any other.
            gap_dates = set(dates_array[series.gap_days[f]].tolist())
            now_gaps = sum(1 for d in changed if d in gap_dates)
        if reset:
            if changed:
                log.warning(
                    "front %r: %d processed day(s) also changed (first %s); the recomputation uses the new data",
                    front,
                    len(changed),
                    changed[0],
                )
            store.delete_states_from(front, None)
            plans.append(_FrontPlan(f, front, None, changed, False, last_done, last_done, previous, now_gaps))
        elif changed:
            restore = store.state_before(front, changed[0])
            store.delete_states_from(front, changed[0])
            plans.append(_FrontPlan(f, front, restore, changed, False, None, last_done, previous, now_gaps))
        else:
            plans.append(_FrontPlan(f, front, latest, [], latest is None, None, last_done))

    if behind:
        log.warning(
            "the data of this run end on %s, before the saved state of: %s; those fronts are left as they are "
            "(a run never goes back in time; to recompute, use a new --state)",
            series.end,
            ", ".join(behind),
        )
    if contradicted:
        log.warning(
            "the data of this run end on %s, before the saved state of: %s, although the run is as of %s; the "
            "processed days after %s are no longer in the data and are handled as a revision",
            series.end,
            ", ".join(contradicted),
            as_of,
            series.end,
        )
    engine = AlertEngine(config, rules, series, draws)
    dates = series.dates
    first = [0 if p.resume_date is None else first_day_after(dates, p.resume_date) for p in plans]
    window_plans = [i for i, p in enumerate(plans) if p.index >= n_daily]
    active = [i for i, p in enumerate(plans) if first[i] < len(dates) and p.index < n_daily]
    alerts_by_front: dict[int, list[Alert]] = {i: [] for i in active}
    if active:
        fronts = [plans[i].index for i in active]
        states = [plans[i].restore for i in active]
        detector = stack_states(config, [None if s is None else s.detector for s in states])
        rule_states = [FrontRuleState.from_json(s.rules) if s is not None else FrontRuleState() for s in states]
        lo = min(first[i] for i in active)
        start = lo
        for cut in month_end_cuts(dates, lo, len(dates)):
            found = engine.advance(fronts, detector, rule_states, start, cut, [first[i] for i in active])
            for i, alerts in zip(active, found, strict=True):
                alerts_by_front[i].extend(alerts)
            kind = KIND_RUN if cut == len(dates) else KIND_MONTH
            for position, i in enumerate(active):
                if first[i] < cut:
                    store.save_state(
                        SavedFrontState(
                            front=plans[i].front,
                            date=dates[cut - 1],
                            kind=kind,
                            n_obs=int(detector.n_obs[position]),
                            detector=detector.front_bytes(position),
                            rules=rule_states[position].to_json(),
                        )
                    )
            start = cut
        engine.log_gaps()
        engine.log_horizon()
        result.gap_days = dict(sorted(engine.gap_days.items()))
    for i in window_plans:
        # Window series are recomputed from their first window; what lies after the resume date is new.
        plan = plans[i]
        windows = series.windows[plan.index - n_daily]
        resume = plan.resume_date
        if not plan.changed and resume is not None and windows.ends[-1] <= resume:
            continue  # nothing new
        window_found, window_state, rule_state = engine.window_alerts(windows)
        alerts_by_front[i] = [a for a in window_found if resume is None or a.date > resume]
        store.save_state(
            SavedFrontState(
                front=plan.front,
                date=windows.ends[-1],
                kind=KIND_RUN,
                n_obs=window_state.n_obs,
                detector=window_state.to_bytes(),
                rules=rule_state.to_json(),
            )
        )

    for i, plan in enumerate(plans):
        if i not in alerts_by_front:
            continue
        _record_front(store, plan, observed_now[i], alerts_by_front[i], since_day, as_of, notifiers, result)
    store.prune_all_states()
    store.finish_run(
        run_id,
        new_observations=result.new_observations,
        alerts_issued=len(result.issued),
        revisions=len(result.revisions),
    )
    return result


class _Observed:
    """A front's observations, ISO dates in order with their exact counts (numpy arrays)."""

    def __init__(self, dates: np.ndarray, counts: np.ndarray):
        self.dates = np.asarray(dates, dtype="U10")
        self.counts = np.asarray(counts, dtype=np.int64)
        self._lookup: dict[str, int] | None = None

    @classmethod
    def empty(cls) -> _Observed:
        return cls(np.zeros(0, dtype="U10"), np.zeros(0, dtype=np.int64))

    def get(self, day: str) -> int | None:
        if self._lookup is None:
            self._lookup = dict(zip(self.dates.tolist(), self.counts.tolist(), strict=True))
        return self._lookup.get(day)

    def after(self, day: str | None) -> list[tuple[str, int]]:
        """``(date, count)`` of the days after ``day`` (all when None), in order."""
        start = 0 if day is None else int(np.searchsorted(self.dates, day, side="right"))
        return list(zip(self.dates[start:].tolist(), self.counts[start:].tolist(), strict=True))

    def changes_from(self, stored: Any, last_done: str) -> tuple[list[str], dict[str, int]]:
        """Days up to ``last_done`` whose count differs from ``stored`` (added, dropped or changed).

        Returns the changed days in order and the stored counts of those that were stored.  The
        usual case, nothing changed, is two array comparisons.
        """
        upto = int(np.searchsorted(self.dates, last_done, side="right"))
        dates, counts = self.dates[:upto], self.counts[:upto]
        if np.array_equal(dates, stored.dates) and np.array_equal(counts, stored.counts):
            return [], {}
        before = dict(zip(stored.dates.tolist(), stored.counts.tolist(), strict=True))
        now = dict(zip(dates.tolist(), counts.tolist(), strict=True))
        changed = sorted(d for d in set(before) | set(now) if before.get(d) != now.get(d))
        return changed, {d: before[d] for d in changed if d in before}


def _record_front(
    store: AlertStore,
    plan: _FrontPlan,
    observed: _Observed,
    alerts: list[Alert],
    since: str,
    as_of: str,
    notifiers: Sequence[Notifier],
    result: AlertRunResult,
) -> None:
    """Store the front's processed observations and alerts; withdraw what a revision undid."""
    resume = plan.resume_date
    rows = observed.after(resume)
    store.replace_observations_after(plan.front, resume, rows, result.run_id)
    result.new_observations += sum(1 for d, _ in rows if plan.last_done is None or d > plan.last_done)

    existing = store.alerts_of(plan.front, None if resume is None else _next_day(resume))
    found_ids = set()
    added = 0
    for alert in alerts:
        found_ids.add(alert.id)
        status = STATUS_ISSUED
        if plan.first_run and alert.date < since:
            status = STATUS_HISTORY
        if plan.history_until is not None and alert.date <= plan.history_until:
            status = STATUS_HISTORY
        previous = existing.get(alert.id)
        if previous is None:
            payload = alert.to_json(as_of)
            store.insert_alert(payload, status, result.run_id)
        elif previous == STATUS_WITHDRAWN and status == STATUS_ISSUED:
            store.reinstate_alert(alert.id)
            payload = store.alert_payload(alert.id)
        else:
            continue
        if status == STATUS_ISSUED:
            added += 1
            result.issued.append(payload)
            for notifier in notifiers:
                store.enqueue(alert.id, notifier.key, result.run_id)

    if plan.changed and plan.history_until is None:
        first_changed = plan.changed[0]
        gone = sorted(
            alert_id
            for alert_id, status in store.alerts_of(plan.front, first_changed).items()
            if status != STATUS_WITHDRAWN and alert_id not in found_ids
        )
        store.withdraw_alerts(gone, result.run_id)
        result.withdrawn.extend(gone)
        examples = [{"date": d, "before": plan.previous.get(d), "after": observed.get(d)} for d in plan.changed[:20]]
        detail = {"changed": examples, "restarted_after": resume, "withdrawn": gone, "now_not_observed": plan.now_gaps}
        store.record_revision(result.run_id, plan.front, first_changed, len(plan.changed), len(gone), added, detail)
        result.revisions.append(
            {
                "front": plan.front,
                "first_changed": first_changed,
                "rows_changed": len(plan.changed),
                "alerts_withdrawn": len(gone),
                "alerts_added": added,
            }
        )
        shown = ", ".join(
            f"{e['date']}: {_shown_count(e['before'])} -> {_shown_count(e['after'])}" for e in examples[:3]
        )
        log.warning(
            "data revision on front %r: %d processed day(s) changed (%s%s)%s; recomputed from %s; %d alert(s) "
            "withdrawn, %d new",
            plan.front,
            len(plan.changed),
            shown,
            ", ..." if len(plan.changed) > 3 else "",
            f", {plan.now_gaps} of them now in a declared gap" if plan.now_gaps else "",
            first_changed,
            len(gone),
            added,
        )
        for alert_id in gone:
            log.warning("alert %s on %r is withdrawn: the revised data no longer support it", alert_id[:12], plan.front)


def _shown_count(count: object) -> str:
    """A day's count in a revision message; None: the day is not (or was not) observed."""
    return "not observed" if count is None else str(count)


def _next_day(day: str) -> str:
    return Date.fromordinal(Date.fromisoformat(day).toordinal() + 1).isoformat()

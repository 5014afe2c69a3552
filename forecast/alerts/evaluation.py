"""Scoring replayed alerts against known change dates: detection delay and false alarms.

A known change (``date``, ``front``, optional ``direction``) is **detected** by the first
alert on that front, in that direction when one is given, dated from the change date to
``match_days`` days after it; the **delay** is the number of days between the two.  An alert
that detects no known change (and lies within ``match_days`` after none of the known changes
of its front and direction) is a **false alarm**.  False alarms are counted over the fronts
that can be evaluated (those the detector ran on) and reported per 90 days of replay, per
front and in all.

An alert on a **window total** (its object has ``window_start``; ``date`` is the window's last
day) detects a change when its window reaches a day from the change date to ``match_days``
after it: ``window_start <= change + match_days`` and ``date >= change``.  Its delay is still
counted to ``date``, the first day the window's total was known, so a long window shows as a
long delay.  For a daily alert (``window_start = date``) the two rules are the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date as Date
from typing import Any

__all__ = ["KnownChange", "ReplayEvaluation", "evaluate_replay"]


@dataclass(frozen=True)
class KnownChange:
    """A dated change on a front, from a known-changes file."""

    date: str
    front: str
    label: str = ""
    source: str = ""
    direction: str | None = None


@dataclass(frozen=True)
class ReplayEvaluation:
    """Per known change: detected or not, and the delay; false alarms per front."""

    start: str
    end: str
    match_days: int
    detections: tuple[dict[str, Any], ...]
    not_evaluable: tuple[dict[str, Any], ...]
    false_alarms: Mapping[str, int]
    days: int

    @property
    def false_alarms_per_90_days(self) -> dict[str, float]:
        """Per evaluated front, and ``"all"`` (summed over fronts)."""
        scale = 90.0 / self.days if self.days else float("nan")
        out = {front: round(count * scale, 2) for front, count in sorted(self.false_alarms.items())}
        out["all"] = round(sum(self.false_alarms.values()) * scale, 2)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "days": self.days,
            "match_days": self.match_days,
            "detections": list(self.detections),
            "not_evaluable": list(self.not_evaluable),
            "false_alarms": dict(sorted(self.false_alarms.items())),
            "false_alarms_per_90_days": self.false_alarms_per_90_days,
        }

    def lines(self) -> list[str]:
        """A readable report."""
        out = [
            f"replay {self.start} .. {self.end} ({self.days} days); a change counts as detected by an alert "
            f"within {self.match_days} days after it"
        ]
        for item in self.detections:
            what = f"{item['date']} {item['front']} {item['direction'] or 'any'}: {item['label']}"
            if item["detected"]:
                out.append(
                    f"  detected  {what} -> alert {item['alert_date']} ({item['alert_rule']}), "
                    f"delay {item['delay_days']} day(s)"
                )
            else:
                out.append(f"  MISSED    {what}")
        for item in self.not_evaluable:
            out.append(f"  not evaluable  {item['date']} {item['front']}: {item['label']} ({item['why']})")
        rates = self.false_alarms_per_90_days
        per_front = ", ".join(
            f"{front} {count} ({rates[front]}/90d)" for front, count in sorted(self.false_alarms.items())
        )
        out.append(
            f"  false alarms: {sum(self.false_alarms.values())} in all, {rates['all']} per 90 days "
            f"({per_front or 'no evaluated front'})"
        )
        return out


def _days(first: str, second: str) -> int:
    return (Date.fromisoformat(second) - Date.fromisoformat(first)).days


def _covers(alert: Mapping[str, Any], change_date: str, match_days: int) -> bool:
    """The alert's day, or window ``window_start..date``, reaches ``change .. change + match_days``."""
    first = alert.get("window_start") or alert["date"]
    return _days(change_date, alert["date"]) >= 0 and _days(change_date, first) <= match_days


def evaluate_replay(
    alerts: Iterable[Mapping[str, Any]],
    known: Sequence[KnownChange],
    *,
    evaluable_fronts: Iterable[str],
    start: str,
    end: str,
    match_days: int = 14,
) -> ReplayEvaluation:
    """Score alert objects (``front``, ``date``, ``direction``, ``rule``) against known changes.

    Parameters
    ----------
    alerts : iterable of mappings
        The replayed alerts.
    known : sequence of KnownChange
        Known changes; those outside ``start..end`` or on fronts not in ``evaluable_fronts``
        are listed as not evaluable.
    evaluable_fronts : iterable of str
        Fronts the detector ran on (day by day or through window totals).
    start, end : str
        The replay span (ISO dates, inclusive).
    match_days : int
        Largest delay that counts as a detection.
    """
    fronts = set(evaluable_fronts)
    pool = sorted((dict(a) for a in alerts if a["front"] in fronts), key=lambda a: (a["date"], a["front"]))
    used: set[int] = set()
    detections: list[dict[str, Any]] = []
    not_evaluable: list[dict[str, Any]] = []
    for change in sorted(known, key=lambda c: (c.date, c.front)):
        base = {"date": change.date, "front": change.front, "direction": change.direction, "label": change.label}
        if change.front not in fronts:
            not_evaluable.append({**base, "why": "front not run through the detector"})
            continue
        if not (start <= change.date <= end):
            not_evaluable.append({**base, "why": "outside the replay span"})
            continue
        match = None
        for index, alert in enumerate(pool):
            if index in used or alert["front"] != change.front:
                continue
            if change.direction and alert["direction"] != change.direction:
                continue
            if _covers(alert, change.date, match_days):
                match = index
                break
        if match is None:
            detections.append({**base, "detected": False, "alert_date": None, "alert_rule": None, "delay_days": None})
            continue
        used.add(match)
        alert = pool[match]
        detections.append(
            {
                **base,
                "detected": True,
                "alert_date": alert["date"],
                "alert_rule": alert["rule"],
                "delay_days": _days(change.date, alert["date"]),
            }
        )
    false_alarms = {front: 0 for front in sorted(fronts)}
    for index, alert in enumerate(pool):
        if index in used:
            continue
        near_known = any(
            change.front == alert["front"]
            and (not change.direction or change.direction == alert["direction"])
            and _covers(alert, change.date, match_days)
            for change in known
        )
        if not near_known:
            false_alarms[alert["front"]] += 1
    return ReplayEvaluation(
        start=start,
        end=end,
        match_days=match_days,
        detections=tuple(detections),
        not_evaluable=tuple(not_evaluable),
        false_alarms=false_alarms,
        days=_days(start, end) + 1,
    )

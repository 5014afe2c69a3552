"""Alert rules: when a changepoint or a surprising count becomes an alert.

Two rules, evaluated on every new observation of a front:

``changepoint``
    Fires when ``P(a regime started within the last k observations) >= threshold``
    (``k = within_last``), once the front has more than ``warmup`` observations.  The
    direction compares the mean count since the most probable start of the new regime with
    the mean of up to ``baseline`` observations before it: ``up`` if higher, ``down`` if lower.
    ``probability`` is that changepoint probability.
``surprise``
    Needs posterior predictive draws from a saved fit covering the observation's date.
    Fires ``up`` when ``P(Y >= y) <= threshold`` and ``down`` when ``P(Y <= y) <= threshold``.
    ``probability`` is that tail probability (small is surprising).

Then, per front:

* ``direction``: ``up``, ``down`` or ``both`` (a sudden lull is news too);
* ``min_consecutive``: the rule must hold, in the same direction, on this many consecutive
  observations of the front; the alert is dated on the last of them;
* ``cooldown_days``: after an alert on a front in one direction (by any rule), no other alert
  on that front in that direction until this many days have passed (so one shift gives one
  alert, while a lull and the resumption after it give two).

The rules file (YAML) has the layout of ``priors/alerts/rules.yaml``, which equals the code
defaults.  Keys left out take the defaults; unknown keys and bad values are refused with a
message naming the file and listing the allowed keys.  ``fronts`` maps a front name to the
same keys (without ``fronts``) to override for that front.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date as Date
from pathlib import Path
from typing import Any

from forecast.alerts.yamlfile import check_keys, integer, number, shown
from forecast.data.yamlio import read_yaml_file
from forecast.errors import Problems, RulesConfigError

__all__ = [
    "DIRECTIONS",
    "RULE_CHANGEPOINT",
    "RULE_SURPRISE",
    "Alert",
    "AlertRules",
    "ChangepointRule",
    "FrontRuleState",
    "FrontRules",
    "Signal",
    "alert_id",
    "evaluate_front",
    "load_rules",
    "rules_from_dict",
]

RULE_CHANGEPOINT = "changepoint"
RULE_SURPRISE = "surprise"
RULES = (RULE_CHANGEPOINT, RULE_SURPRISE)
UP = "up"
DOWN = "down"
BOTH = "both"
DIRECTIONS = (UP, DOWN)
DIRECTION_CHOICES = (UP, DOWN, BOTH)

DEFAULTS_SOURCE = "<defaults>"


@dataclass(frozen=True)
class ChangepointRule:
    """Thresholds of the changepoint rule (see the module docstring)."""

    enabled: bool = True
    threshold: float = 0.5
    within_last: int = 7
    min_consecutive: int = 1
    warmup: int = 28
    baseline: int = 28


@dataclass(frozen=True)
class SurpriseRule:
    """Thresholds of the surprise rule (see the module docstring)."""

    enabled: bool = True
    threshold: float = 0.01
    min_consecutive: int = 1


@dataclass(frozen=True)
class FrontRules:
    """The rules that apply to one front."""

    changepoint: ChangepointRule = field(default_factory=ChangepointRule)
    surprise: SurpriseRule = field(default_factory=SurpriseRule)
    direction: str = BOTH
    cooldown_days: int = 7

    def directions(self) -> tuple[str, ...]:
        return DIRECTIONS if self.direction == BOTH else (self.direction,)

    def to_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "cooldown_days": self.cooldown_days,
            "changepoint": {
                "enabled": self.changepoint.enabled,
                "threshold": float(self.changepoint.threshold),
                "within_last": self.changepoint.within_last,
                "min_consecutive": self.changepoint.min_consecutive,
                "warmup": self.changepoint.warmup,
                "baseline": self.changepoint.baseline,
            },
            "surprise": {
                "enabled": self.surprise.enabled,
                "threshold": float(self.surprise.threshold),
                "min_consecutive": self.surprise.min_consecutive,
            },
        }


_TOP_KEYS = ("direction", "cooldown_days", "changepoint", "surprise", "fronts")
_FRONT_KEYS = ("direction", "cooldown_days", "changepoint", "surprise")
_CHANGEPOINT_KEYS = ("enabled", "threshold", "within_last", "min_consecutive", "warmup", "baseline")
_SURPRISE_KEYS = ("enabled", "threshold", "min_consecutive")


@dataclass(frozen=True)
class AlertRules:
    """Rules for every front: defaults plus per-front overrides.

    Parameters
    ----------
    default : FrontRules
        The rules of fronts without overrides.
    fronts : mapping of str to FrontRules
        Complete rules of the fronts that override something.
    source : str
        ``"<defaults>"`` or the file read.
    """

    default: FrontRules = field(default_factory=FrontRules)
    fronts: Mapping[str, FrontRules] = field(default_factory=dict)
    source: str = field(default=DEFAULTS_SOURCE, compare=False)

    def for_front(self, front: str) -> FrontRules:
        return self.fronts.get(front, self.default)

    def to_dict(self) -> dict[str, Any]:
        """The file format, every key written (overrides in full)."""
        out = self.default.to_dict()
        out["fronts"] = {name: self.fronts[name].to_dict() for name in sorted(self.fronts)}
        return out

    def hash(self) -> str:
        """sha256 of the canonical JSON of :meth:`to_dict`."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _boolean(value: object, where: str, problems: Problems) -> bool | None:
    if not isinstance(value, bool):
        problems.add(where, f"expected true or false, got {shown(value)}")
        return None
    return value


def _apply(base: FrontRules, data: Mapping[str, Any], where: str, problems: Problems) -> FrontRules:
    """``base`` with the keys given in ``data`` replaced, checking each."""
    rules = base
    prefix = f"{where}." if where else ""
    if "direction" in data:
        if data["direction"] not in DIRECTION_CHOICES:
            problems.add(
                f"{prefix}direction", f"must be one of {list(DIRECTION_CHOICES)}, got {shown(data['direction'])}"
            )
        else:
            rules = replace(rules, direction=data["direction"])
    if "cooldown_days" in data:
        days = integer(data["cooldown_days"], f"{prefix}cooldown_days", problems, low=0, high=3650)
        if days is not None:
            rules = replace(rules, cooldown_days=days)
    if "changepoint" in data:
        block = check_keys(data["changepoint"], _CHANGEPOINT_KEYS, f"{prefix}changepoint", problems)
        if block is not None:
            values: dict[str, Any] = {}
            here = f"{prefix}changepoint"
            if "enabled" in block:
                values["enabled"] = _boolean(block["enabled"], f"{here}.enabled", problems)
            if "threshold" in block:
                values["threshold"] = number(
                    block["threshold"], f"{here}.threshold", problems, low=0.0, high=1.0, low_open=True
                )
            if "within_last" in block:
                values["within_last"] = integer(block["within_last"], f"{here}.within_last", problems, low=1, high=365)
            if "min_consecutive" in block:
                values["min_consecutive"] = integer(
                    block["min_consecutive"], f"{here}.min_consecutive", problems, low=1, high=365
                )
            if "warmup" in block:
                values["warmup"] = integer(block["warmup"], f"{here}.warmup", problems, low=0, high=100_000)
            if "baseline" in block:
                values["baseline"] = integer(block["baseline"], f"{here}.baseline", problems, low=1, high=100_000)
            if all(value is not None for value in values.values()):
                rules = replace(rules, changepoint=replace(rules.changepoint, **values))
    if "surprise" in data:
        block = check_keys(data["surprise"], _SURPRISE_KEYS, f"{prefix}surprise", problems)
        if block is not None:
            values = {}
            here = f"{prefix}surprise"
            if "enabled" in block:
                values["enabled"] = _boolean(block["enabled"], f"{here}.enabled", problems)
            if "threshold" in block:
                values["threshold"] = number(
                    block["threshold"], f"{here}.threshold", problems, low=0.0, high=0.5, low_open=True
                )
            if "min_consecutive" in block:
                values["min_consecutive"] = integer(
                    block["min_consecutive"], f"{here}.min_consecutive", problems, low=1, high=365
                )
            if all(value is not None for value in values.values()):
                rules = replace(rules, surprise=replace(rules.surprise, **values))
    return rules


def rules_from_dict(raw: object, *, source: str = "<memory>") -> AlertRules:
    """Build :class:`AlertRules` from the file format; keys left out take the code defaults.

    Raises
    ------
    RulesConfigError
        Naming ``source`` and listing every problem (unknown keys with the allowed ones).
    """
    problems = Problems()
    if raw is None:
        raw = {}
    data = check_keys(raw, _TOP_KEYS, "", problems)
    if data is None:
        problems.raise_if_any(source, "rules", RulesConfigError)
        raise AssertionError("unreachable")
    default = _apply(FrontRules(), data, "", problems)
    fronts: dict[str, FrontRules] = {}
    overrides = data.get("fronts") or {}
    if not isinstance(overrides, Mapping):
        problems.add("fronts", f"expected a mapping from front name to rules, got {shown(overrides)}")
    else:
        for name, block in overrides.items():
            where = f"fronts.{name}"
            if not isinstance(name, str) or not name:
                problems.add(where, "a front name must be non-empty text")
                continue
            checked = check_keys(block, _FRONT_KEYS, where, problems)
            if checked is not None:
                fronts[name] = _apply(default, checked, where, problems)
    problems.raise_if_any(source, "rules", RulesConfigError)
    return AlertRules(default=default, fronts=fronts, source=source)


def load_rules(path: str | Path | None = None) -> AlertRules:
    """Read a rules file, or return the code defaults (equal to ``priors/alerts/rules.yaml``).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    RulesConfigError
        When the file is not plain YAML, has unknown keys or bad values.
    """
    if path is None:
        return AlertRules()
    raw = read_yaml_file(path, "rules file", RulesConfigError)
    return rules_from_dict(raw, source=str(path))


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def alert_id(front: str, rule: str, date: str, direction: str) -> str:
    """The stable id of an alert: sha256 of ``front|rule|date|direction``."""
    return hashlib.sha256(f"{front}|{rule}|{date}|{direction}".encode()).hexdigest()


@dataclass(frozen=True)
class Signal:
    """What the detector and the fit say about one observation of one front.

    ``regime_start`` is the date of the first observation of the most probable new regime
    (None when the changepoint probability was not high enough to look).  ``p_up`` and
    ``p_down`` are None when no draws cover the date.  For a window total, ``date`` is the
    window's last day, ``window_start`` its first, ``n_obs`` counts the days covered so far
    and the rates are per day.
    """

    date: str
    count: int
    n_obs: int
    changepoint_prob: float
    regime_start: str | None = None
    rate_after: float | None = None
    rate_before: float | None = None
    p_up: float | None = None
    p_down: float | None = None
    predictive_median: float | None = None
    fit_as_of: str | None = None
    window_start: str | None = None


@dataclass(frozen=True)
class Alert:
    """One alert, before it is given its ``as_of``."""

    front: str
    date: str
    rule: str
    direction: str
    probability: float
    details: Mapping[str, Any]

    @property
    def id(self) -> str:
        return alert_id(self.front, self.rule, self.date, self.direction)

    def to_json(self, as_of: str) -> dict[str, Any]:
        """The alert object: ``id, front, date, direction, rule, probability, as_of`` then details."""
        out: dict[str, Any] = {
            "id": self.id,
            "front": self.front,
            "date": self.date,
            "direction": self.direction,
            "rule": self.rule,
            "probability": _rounded(self.probability, 6),
            "as_of": as_of,
        }
        out.update(self.details)
        return out


def _rounded(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


@dataclass
class FrontRuleState:
    """What the rules remember about a front between observations (JSON-serialisable).

    ``streaks`` counts consecutive observations on which ``rule:direction`` held;
    ``last_alert`` is the date of the last alert per direction (for the cooldown).
    """

    streaks: dict[str, int] = field(default_factory=dict)
    last_alert: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"streaks": self.streaks, "last_alert": self.last_alert}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> FrontRuleState:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(streaks=dict(data.get("streaks", {})), last_alert=dict(data.get("last_alert", {})))


def _changepoint_direction(rule: ChangepointRule, signal: Signal) -> str | None:
    if not rule.enabled or signal.n_obs <= rule.warmup:
        return None
    if not math.isfinite(signal.changepoint_prob) or signal.changepoint_prob < rule.threshold:
        return None
    if signal.rate_after is None or signal.rate_before is None:
        return None
    if signal.rate_after > signal.rate_before:
        return UP
    if signal.rate_after < signal.rate_before:
        return DOWN
    return None


def evaluate_front(front: str, rules: FrontRules, state: FrontRuleState, signals: Iterable[Signal]) -> list[Alert]:
    """Apply the rules to a front's new observations, in date order; ``state`` is updated.

    Returns
    -------
    list of Alert
        In date order (changepoint before surprise on the same date).
    """
    alerts: list[Alert] = []
    allowed = rules.directions()
    for signal in signals:
        holding: dict[str, tuple[float, dict[str, Any]]] = {}
        cp_direction = _changepoint_direction(rules.changepoint, signal)
        if cp_direction is not None:
            details: dict[str, Any] = {
                "count": signal.count,
                "threshold": rules.changepoint.threshold,
                "within_last": rules.changepoint.within_last,
                "regime_start": signal.regime_start,
                "rate_before": _rounded(signal.rate_before, 3),
                "rate_after": _rounded(signal.rate_after, 3),
            }
            if signal.window_start is not None:  # a window total: `count` is over window_start..date
                details["window_start"] = signal.window_start
            holding[f"{RULE_CHANGEPOINT}:{cp_direction}"] = (signal.changepoint_prob, details)
        if rules.surprise.enabled and signal.p_up is not None and signal.p_down is not None:
            for direction, tail in ((UP, signal.p_up), (DOWN, signal.p_down)):
                if tail <= rules.surprise.threshold:
                    holding[f"{RULE_SURPRISE}:{direction}"] = (
                        tail,
                        {
                            "count": signal.count,
                            "threshold": rules.surprise.threshold,
                            "predictive_median": _rounded(signal.predictive_median, 3),
                            "fit_as_of": signal.fit_as_of,
                        },
                    )
        for rule, needed in (
            (RULE_CHANGEPOINT, rules.changepoint.min_consecutive),
            (RULE_SURPRISE, rules.surprise.min_consecutive),
        ):
            for direction in DIRECTIONS:
                key = f"{rule}:{direction}"
                streak = state.streaks.get(key, 0) + 1 if key in holding else 0
                if streak:
                    state.streaks[key] = streak
                else:
                    state.streaks.pop(key, None)
                if streak < needed or direction not in allowed:
                    continue
                last = state.last_alert.get(direction)
                if last is not None and _days_between(last, signal.date) < rules.cooldown_days:
                    continue
                probability, details = holding[key]
                alerts.append(Alert(front, signal.date, rule, direction, float(probability), details))
                state.last_alert[direction] = signal.date
    return alerts


def _days_between(first: str, second: str) -> int:
    return (Date.fromisoformat(second) - Date.fromisoformat(first)).days

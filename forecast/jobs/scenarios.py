"""Scenarios of ``forecast report --scenario``: hypothetical interventions, parsed and described."""

from __future__ import annotations

import re

import pandas as pd

from forecast import names as n
from forecast.errors import ForecastError
from forecast.forecasting.counts import ScenarioIntervention

_SCENARIO = re.compile(
    r"(?P<kind>[^@:]+)@(?P<start>\d{4}-\d{2}-\d{2})(?:\.\.(?P<end>\d{4}-\d{2}-\d{2}))?(?::(?P<fronts>[^:]+))?"
)


SCENARIO_SYNTAX = "KIND@DATE (a pulse) or KIND@START..END (a window), optionally followed by :FRONT1,FRONT2"


def parse_scenario(text: str) -> ScenarioIntervention:
    """Parse ``KIND@DATE[..END][:FRONT,FRONT]`` into a :class:`ScenarioIntervention`.

    ``strike@2024-05-20`` is a pulse on that day, ``truce@2024-05-20..2024-05-27`` a window
    over those days (inclusive), ``strike@2024-05-20:iraq,syria`` limits it to two fronts.
    """
    match = _SCENARIO.fullmatch(text.strip())
    if not match:
        raise ForecastError(f"--scenario {text!r} is not {SCENARIO_SYNTAX}")
    try:
        start = pd.Timestamp(pd.to_datetime(match["start"], format="%Y-%m-%d"))
        end = pd.Timestamp(pd.to_datetime(match["end"], format="%Y-%m-%d")) if match["end"] else None
    except ValueError as error:
        raise ForecastError(f"--scenario {text!r}: {error}") from error
    if end is not None and end < start:
        raise ForecastError(f"--scenario {text!r}: the window ends before it starts")
    fronts = tuple(part.strip() for part in (match["fronts"] or "").split(",") if part.strip())
    shape = n.SHAPE_WINDOW if end is not None else n.SHAPE_PULSE
    return ScenarioIntervention(kind=match["kind"].strip(), start=start, shape=shape, end=end, fronts=fronts)


def describe_scenario(scenario: tuple[ScenarioIntervention, ...]) -> str:
    """One line naming every hypothetical intervention of a scenario."""
    parts = []
    for item in scenario:
        when = f"from {item.start.date()} to {item.end.date()}" if item.end is not None else f"on {item.start.date()}"
        where = "every front" if not item.fronts else "fronts " + ", ".join(item.fronts)
        parts.append(f"{item.kind} {when} ({item.shape}, {where})")
    return "Scenario: " + " + ".join(parts)

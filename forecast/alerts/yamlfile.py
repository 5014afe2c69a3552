"""Checking the values of the small YAML files of the alerting path (detector prior, rules).

The files are parsed by :func:`forecast.data.yamlio.read_yaml_file` (plain YAML, duplicate keys
refused); the helpers here check keys, numbers and whole numbers and collect every problem, so
that one error names the file and lists them all.  :mod:`forecast.priors` cannot be imported on
this path (it imports PyMC, and the alerting path must start fast).
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping, Sequence
from typing import Any

from forecast.errors import SHOWN_CHARACTERS, Problems


def shown(value: object) -> str:
    """``repr(value)`` cut short: at most :data:`SHOWN_CHARACTERS` characters and a length."""
    try:
        short = reprlib.Repr()
        short.maxlevel, short.maxlist, short.maxdict, short.maxstring, short.maxother = 3, 6, 6, 60, 60
        text = short.repr(value)
    except Exception:  # noqa: BLE001 - a repr that fails must not hide the real problem
        text = f"<{type(value).__name__}>"
    return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 3] + "..."


def check_keys(
    data: object, allowed: Sequence[str], where: str, problems: Problems, *, required: Sequence[str] = ()
) -> Mapping[str, Any] | None:
    """Check that ``data`` is a mapping with only ``allowed`` keys and every ``required`` one."""
    if not isinstance(data, Mapping):
        problems.add(where, f"expected a mapping with keys {list(allowed)}, got {shown(data)}")
        return None
    unknown = [str(key) for key in data if key not in allowed]
    if unknown:
        problems.add(where, f"unknown keys {shown(sorted(unknown))}; the allowed keys are: {', '.join(allowed)}")
    missing = [key for key in required if key not in data]
    if missing:
        problems.add(where, f"missing keys {missing}; the required keys are: {', '.join(required)}")
    return data


def number(
    value: object,
    where: str,
    problems: Problems,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float | None:
    """A finite number within bounds, or None after recording the problem."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = ""
        if (
            isinstance(value, str)
            and value.strip()
            .lower()
            .replace("+", "")
            .replace("-", "")
            .replace(".", "", 1)
            .replace("e", "", 1)
            .isdigit()
        ):
            hint = " (YAML reads a number like 1e-3 as text; write 1.0e-3)"
        problems.add(where, f"expected a number, got {shown(value)}{hint}")
        return None
    result = float(value)
    if not math.isfinite(result):
        problems.add(where, f"expected a finite number, got {shown(value)}")
        return None
    if low is not None and (result < low or (low_open and result == low)):
        problems.add(where, f"must be {'>' if low_open else '>='} {low:g}, got {shown(value)}")
        return None
    if high is not None and (result > high or (high_open and result == high)):
        problems.add(where, f"must be {'<' if high_open else '<='} {high:g}, got {shown(value)}")
        return None
    return result


def integer(
    value: object, where: str, problems: Problems, *, low: int | None = None, high: int | None = None
) -> int | None:
    """An integer within bounds (``3.0`` is refused: counts of observations are whole)."""
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(where, f"expected a whole number, got {shown(value)}")
        return None
    if low is not None and value < low:
        problems.add(where, f"must be >= {low}, got {shown(value)}")
        return None
    if high is not None and value > high:
        problems.add(where, f"must be <= {high}, got {shown(value)}")
        return None
    return int(value)

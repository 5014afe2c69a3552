"""The package is a house with floors: a module imports only from its own floor or below.

Floors (see STYLE.md): 1 names and errors; 2 data, priors and saved fits; 3 models;
4 checks and forecasts; 5 indicators, report, alerts, plots; 6 jobs and the command line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "forecast"

FLOORS: dict[str, int] = {
    "forecast": 1,
    "forecast.names": 1,
    "forecast.errors": 1,
    "forecast.data": 2,
    "forecast.priors": 2,
    "forecast.fits": 2,
    "forecast.models": 3,
    "forecast.checks": 4,
    "forecast.forecasting": 4,
    "forecast.evaluation": 4,
    "forecast.indicators": 5,
    "forecast.report": 5,
    "forecast.alerts": 5,
    "forecast.plots": 5,
    "forecast.jobs": 6,
    "forecast.cli": 6,
    "forecast.cli_alert": 6,
    "forecast.__main__": 6,
}


def floor_of(module: str) -> int:
    """The floor of the longest registered prefix of ``module``."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in FLOORS:
            return FLOORS[prefix]
    raise KeyError(module)


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name == "forecast" or name.startswith("forecast.")]


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_floor():
    unknown = []
    for path in MODULES:
        try:
            floor_of(module_name(path))
        except KeyError:
            unknown.append(module_name(path))
    assert not unknown, f"add these modules to FLOORS: {unknown}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_module_imports_from_a_higher_floor(path):
    here = module_name(path)
    if here == "forecast":
        return  # the package root only reads its version
    mine = floor_of(here)
    upward = [
        f"line {line}: {here} (floor {mine}) imports {name} (floor {floor_of(name)})"
        for line, name in imports_of(path)
        if floor_of(name) > mine
    ]
    assert not upward, "\n".join(upward)


def test_library_code_never_reads_the_clock():
    offenders = []
    for path in MODULES:
        if module_name(path) in ("forecast.cli", "forecast.__main__"):
            continue
        text = path.read_text(encoding="utf-8")
        for needle in ("datetime.now(", "date.today(", "Timestamp.now(", "Timestamp.today(", "time.time("):
            if needle in text:
                offenders.append(f"{path.name}: {needle}")
    assert not offenders, offenders

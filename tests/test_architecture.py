"""The package is a house with floors: a module imports only from its own floor or below.

Floors (see STYLE.md): 1 names and errors; 2 data, priors and saved fits; 3 models;
4 checks and forecasts; 5 indicators, report, alerts, plots; 6 jobs and the command line.
``forecast.testing`` (the simulator, for tests, notebooks and benchmarks) is floor 7: it may
import anything, and nothing that a ``forecast`` command runs may import it.
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
    "forecast.artefacts": 1,
    "forecast.data": 2,
    "forecast.priors": 2,
    "forecast.prior_defaults": 2,
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
    # Not runtime code: above every floor, so that no runtime module can import it.
    "forecast.testing": 7,
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


# --------------------------------------------------------------------------------------------
# The import graph: no circle within a floor, and no PyMC on the alert path
# --------------------------------------------------------------------------------------------

#: Libraries the alert path must never import, directly or through the package's own modules.
HEAVY = ("pymc", "pytensor", "arviz")
#: The entry of the alert path: ``forecast alert`` and ``python -m forecast.jobs.alert``.
ALERT_ENTRY = "forecast.jobs.alert"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_main_guard(test: ast.expr) -> bool:
    """``if __name__ == "__main__":`` (its imports run in the ``__main__`` module, not this one)."""
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def _import_nodes(node: ast.AST, *, main_block: bool) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, at any depth (inside functions too).

    ``if TYPE_CHECKING:`` bodies never run and are left out; the body of the ``__main__``
    guard is kept only when ``main_block`` is true.
    """
    found: list[ast.Import | ast.ImportFrom] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and (_is_type_checking(child.test) or _is_main_guard(child.test)):
            if _is_main_guard(child.test) and main_block:
                found += [n for part in child.body for n in _import_nodes(ast.Module([part], []), main_block=True)]
            found += [n for part in child.orelse for n in _import_nodes(ast.Module([part], []), main_block=main_block)]
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            found.append(child)
        found += _import_nodes(child, main_block=main_block)
    return found


def imported_names(source: str, module: str, *, is_package: bool = False, main_block: bool = False) -> set[str]:
    """Full names of the modules ``source`` (the text of ``module``) may import.

    ``from A import b`` gives ``A`` and ``A.b`` (``b`` may be a submodule); relative imports
    are resolved against ``module``.
    """
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in _import_nodes(ast.parse(source), main_block=main_block):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join([*parts, base] if base else parts)
        names.add(base)
        names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def package_graph(*, main_block: bool) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """The package's import graph: module -> package modules it imports, and -> outside top-level names."""
    paths = {module_name(path): path for path in MODULES}
    graph: dict[str, set[str]] = {}
    outside: dict[str, set[str]] = {}
    for name, path in paths.items():
        found = imported_names(
            path.read_text(encoding="utf-8"), name, is_package=path.name == "__init__.py", main_block=main_block
        )
        graph[name] = {m for m in found if m in paths and m != name}
        outside[name] = {m.split(".")[0] for m in found if m.split(".")[0] != "forecast"}
    return graph, outside


def circles(graph: dict[str, set[str]], group_of) -> list[list[str]]:
    """Import circles among modules of the same group (strongly connected components, Tarjan).

    Only edges between modules with equal ``group_of`` count.  Returns each circle's modules,
    sorted; a module that imports itself is a circle of one.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in graph or group_of(target) != group_of(node):
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def heavy_imports_reachable(
    graph: dict[str, set[str]], outside: dict[str, set[str]], start: str, heavy: tuple[str, ...] = HEAVY
) -> list[str]:
    """Each heavy library reachable from ``start``, with the chain of modules that imports it.

    Importing a module also runs its parent packages' ``__init__``, so those are followed too.
    """
    chain: dict[str, list[str]] = {start: [start]}
    queue = [start]
    found = []
    while queue:
        module = queue.pop(0)
        parents = [module.rsplit(".", depth)[0] for depth in range(1, module.count(".") + 1)]
        for target in sorted({*graph.get(module, ()), *(p for p in parents if p in graph)}):
            if target not in chain:
                chain[target] = [*chain[module], target]
                queue.append(target)
        for library in sorted(outside.get(module, set()) & set(heavy)):
            found.append(" -> ".join([*chain[module], library]))
    return found


#: Circles there were when this test came, each to be broken by the work named beside it; the
#: test fails when a circle not listed here appears, and when a listed one is gone (delete it).
KNOWN_CIRCLES: set[tuple[str, ...]] = set()


def test_no_import_circle_within_a_floor():
    # Imports inside functions count: a lazy import defers a circle, it does not remove it.
    graph, _ = package_graph(main_block=False)
    found = {tuple(circle) for circle in circles(graph, floor_of)}
    new = sorted(found - KNOWN_CIRCLES)
    assert not new, "import circles (a module of a floor imports one that imports it back):\n" + "\n".join(
        " <-> ".join(circle) for circle in new
    )
    assert not KNOWN_CIRCLES - found, f"these circles are gone; delete them from KNOWN_CIRCLES: {KNOWN_CIRCLES - found}"


def test_the_alert_path_imports_no_pymc_pytensor_or_arviz():
    graph, outside = package_graph(main_block=True)
    assert ALERT_ENTRY in graph
    found = heavy_imports_reachable(graph, outside, ALERT_ENTRY)
    assert not found, "the alert path reaches a heavy library:\n" + "\n".join(found)


# The checkers above must fail on a violation: each is run on small made-up graphs and sources.


def test_the_circle_checker_finds_circles_within_a_group_only():
    graph = {"a.one": {"a.two"}, "a.two": {"a.three"}, "a.three": {"a.one"}, "a.four": {"a.one"}, "b.x": {"b.x"}}
    assert circles(graph, lambda m: m.split(".")[0]) == [["a.one", "a.three", "a.two"], ["b.x"]]
    acyclic = {"a.one": {"a.two"}, "a.two": {"a.three"}, "a.three": set()}
    assert circles(acyclic, lambda m: m.split(".")[0]) == []
    # a circle through another group is the floors test's business, not this one's
    across = {"a.one": {"b.two"}, "b.two": {"a.one"}}
    assert circles(across, lambda m: m.split(".")[0]) == []


def test_the_heavy_import_checker_follows_chains_and_parent_packages():
    graph = {
        "forecast.jobs.alert": {"forecast.alerts.engine"},
        "forecast.alerts.engine": {"forecast.alerts.rules"},
        "forecast.alerts.rules": set(),
        "forecast.alerts": set(),
        "forecast.jobs": set(),
        "forecast.models.model": set(),
    }
    outside = {"forecast.alerts.rules": {"numpy", "arviz"}, "forecast.models.model": {"pymc"}}
    assert heavy_imports_reachable(graph, outside, "forecast.jobs.alert") == [
        "forecast.jobs.alert -> forecast.alerts.engine -> forecast.alerts.rules -> arviz"
    ]
    outside = {"forecast.alerts": {"pytensor"}}  # in the package __init__ of a module on the path
    assert heavy_imports_reachable(graph, outside, "forecast.jobs.alert") == [
        "forecast.jobs.alert -> forecast.alerts.engine -> forecast.alerts -> pytensor"
    ]
    clean = {"forecast.alerts.rules": {"numpy"}, "forecast.models.model": {"pymc"}}  # pymc, but off the path
    assert heavy_imports_reachable(graph, clean, "forecast.jobs.alert") == []


def test_the_import_parser_sees_lazy_relative_and_submodule_imports():
    source = """
from typing import TYPE_CHECKING
import numpy as np
from forecast.alerts import bocpd_kernel
from . import sibling
from ..data.panel import Panel
if TYPE_CHECKING:
    import matplotlib
def later():
    import pymc as pm
if __name__ == "__main__":
    from forecast.cli_alert import main
"""
    found = imported_names(source, "forecast.jobs.alert")
    assert {"numpy", "forecast.alerts.bocpd_kernel", "forecast.jobs.sibling", "forecast.data.panel", "pymc"} <= found
    assert "matplotlib" not in found  # never runs
    assert "forecast.cli_alert" not in found
    assert "forecast.cli_alert" in imported_names(source, "forecast.jobs.alert", main_block=True)

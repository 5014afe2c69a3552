"""The example notebooks in notebooks/: valid, stripped, public API only, and (slow) runnable.

The fast tests read the notebooks as JSON and parse their code cells with ``ast``; they
never start a kernel.  The slow test executes every notebook top to bottom with nbclient on
the shipped data, with few draws (``FORECAST_NOTEBOOK_DRAWS``), exactly as ``make notebooks``.
"""

from __future__ import annotations

import ast
import importlib
import os
import warnings
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
EXPECTED = (
    "01_data_and_priors.ipynb",
    "02_fit_and_check.ipynb",
    "03_forecast_indicators_backtest.ipynb",
    "04_dynamic_model.ipynb",
)
#: The environment variables the notebooks read (only the notebooks: never the library).
DRAWS_ENV = "FORECAST_NOTEBOOK_DRAWS"
SAMPLER_ENV = "FORECAST_NOTEBOOK_SAMPLER"
#: Notebook-level metadata kept in git; anything else (widgets, execution state) is noise.
ALLOWED_METADATA = {"kernelspec", "language_info"}
#: Draws per chain for the slow run (tuning steps too); small, like ``make notebooks``.
SLOW_DRAWS = "100"
CELL_TIMEOUT_S = 1200

ids = [p.name for p in NOTEBOOKS]


def read(path: Path):
    return nbformat.read(path, as_version=4)


def code_of(cell) -> str:
    """The cell's source as Python (IPython magics such as ``%matplotlib inline`` removed)."""
    lines = [line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def code_cells(path: Path) -> list[tuple[int, ast.Module]]:
    return [
        (i, ast.parse(code_of(cell), filename=f"{path.name}[{i}]"))
        for i, cell in enumerate(read(path).cells)
        if cell.cell_type == "code"
    ]


def test_the_four_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == list(EXPECTED)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_is_valid(path):
    notebook = read(path)
    nbformat.validate(notebook)
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_outputs_are_stripped(path):
    """Outputs never enter git: no outputs, no execution counts, no execution metadata."""
    notebook = read(path)
    assert set(notebook.metadata) <= ALLOWED_METADATA, f"{path.name}: strip metadata {set(notebook.metadata)}"
    for i, cell in enumerate(notebook.cells):
        assert "execution" not in cell.get("metadata", {}), f"{path.name} cell {i}: strip execution metadata"
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i}: outputs are not stripped"
            assert cell.execution_count is None, f"{path.name} cell {i}: execution_count is not null"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_opens_with_the_question_and_ends_with_the_takeaways(path):
    cells = read(path).cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")
    assert "**Question:**" in cells[0].source
    assert cells[-1].cell_type == "markdown"
    assert "What to take from this notebook" in cells[-1].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_first_code_cell_reads_the_draws_from_the_environment(path):
    first = next(cell for cell in read(path).cells if cell.cell_type == "code")
    assert DRAWS_ENV in first.source


def test_the_library_never_reads_the_notebook_variables():
    for source in (ROOT / "forecast").rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert DRAWS_ENV not in text and SAMPLER_ENV not in text, source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_code_cells_define_no_functions_or_classes(path):
    """Logic lives in forecast/, where it is tested; notebooks only call it."""
    for i, tree in code_cells(path):
        for node in ast.walk(tree):
            assert not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef), (
                f"{path.name} cell {i} line {node.lineno}: move '{node.name}' into the forecast package"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebooks_use_only_public_names_that_exist(path):
    """Every ``forecast`` import names an existing module and an existing public name."""
    problems = []
    imported = 0
    for i, tree in code_cells(path):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "forecast":
                imported += 1
                if any(part.startswith("_") for part in node.module.split(".")):
                    problems.append(f"cell {i}: private module {node.module}")
                    continue
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if alias.name.startswith("_"):
                        problems.append(f"cell {i}: private name {node.module}.{alias.name}")
                    elif not hasattr(module, alias.name):
                        problems.append(f"cell {i}: {node.module} has no {alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "forecast":
                        imported += 1
                        if any(part.startswith("_") for part in alias.name.split(".")):
                            problems.append(f"cell {i}: private module {alias.name}")
                        importlib.import_module(alias.name)
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                problems.append(f"cell {i} line {node.lineno}: private attribute .{node.attr}")
    assert imported, f"{path.name} imports nothing from forecast"
    assert not problems, f"{path.name}: " + "; ".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    """Execute the notebook on the shipped data with few draws; any cell error fails the test."""
    import nbclient

    monkeypatch.setenv(DRAWS_ENV, os.environ.get(DRAWS_ENV, SLOW_DRAWS))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = read(path)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    with warnings.catch_warnings():
        # jupyter_client/jupyter_core deprecation notices about their own config paths and
        # zmq event loops are not ours; errors in the notebook raise CellExecutionError.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        client.execute()
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors, errors

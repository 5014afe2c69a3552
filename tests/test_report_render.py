"""Rendering the weekly report from fixed, fake content (no model, no sampling).

The Markdown of a fixed fake posterior summary is compared with the golden file
``tests/fixtures/report/golden.md``.  After an intended change to the report, regenerate the
golden files and review the diff before committing::

    FORECAST_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_report_render.py -q

The content is fixed (indicators, summary and provenance from ``tests/fixtures/report/``,
placeholder figure bytes), holds no timestamp, path or machine-dependent value, and the
Markdown links figures by name, so the golden files contain no image bytes.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from forecast.report import ReportContent, ReportFigure, markdown_figures, render_html, render_markdown
from forecast.report.content import SECTIONS, front_changes, headline_lines
from tests.conftest import FIXTURES

REPORT_FIXTURES = FIXTURES / "report"
REGENERATE = os.environ.get("FORECAST_REGENERATE_GOLDEN") == "1"
PLACEHOLDER_PNG = b"\x89PNG\r\n\x1a\n placeholder"
PROVENANCE = {
    "as of": "2024-05-16",
    "span": "2023-10-07 .. 2024-05-16",
    "frequency": "week",
    "model": "escalation",
    "data hash": "0" * 64,
    "priors hash": "f" * 64,
    "package version": "0.1.0",
    "sampler": {"name": "nutpie", "draws": 1000, "tune": 1000, "chains": 2, "target_accept": 0.95, "random_seed": 1},
}


def load(name: str) -> dict:
    return json.loads((REPORT_FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def figures() -> tuple[ReportFigure, ...]:
    return (
        ReportFigure(
            "fan_gaza", "forecasts", "Forecast: gaza", "Observed and forecast weekly counts.", PLACEHOLDER_PNG
        ),
        ReportFigure(
            "changepoints", "changepoints", "Changepoints", "Posterior of changepoint dates.", PLACEHOLDER_PNG
        ),
        ReportFigure("effects", "interventions", "Intervention effects", "Rate ratios.", PLACEHOLDER_PNG),
        ReportFigure("pit_histogram", "checks", "PIT histogram", "Randomised PIT.", PLACEHOLDER_PNG),
    )


def content(indicators: str = "indicators", previous: str | None = "previous_indicators", **extra) -> ReportContent:
    return ReportContent(
        indicators=load(indicators),
        summary=load("summary"),
        provenance=PROVENANCE,
        figures=figures(),
        previous=load(previous) if previous else None,
        previous_source="reports/2024-05-09" if previous else None,
        **extra,
    )


def compare_with_golden(text: str, name: str) -> None:
    path = REPORT_FIXTURES / name
    if REGENERATE:
        path.write_text(text, encoding="utf-8")
        pytest.skip(f"regenerated {path}")
    assert path.exists(), f"{path} is missing; run with FORECAST_REGENERATE_GOLDEN=1 to create it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"the Markdown report differs from {path}; see the module docstring to regenerate"


def test_markdown_matches_the_golden_file():
    compare_with_golden(render_markdown(content()), "golden.md")


def test_markdown_of_a_failed_first_fit_matches_its_golden_file():
    compare_with_golden(render_markdown(content("failed_indicators", previous=None)), "golden_failed.md")


def test_markdown_holds_no_image_bytes_and_links_each_figure():
    text = render_markdown(content())
    assert "base64" not in text and "placeholder" not in text
    for figure in figures():
        assert f"](figures/{figure.filename})" in text
    assert set(markdown_figures(content())) == {f"figures/{f.filename}" for f in figures()}


def test_html_is_self_contained_and_has_every_section():
    html = render_html(content())
    for key, title in SECTIONS:
        if key == "scenarios":
            continue
        assert f'id="{key}"' in html and title in html
    assert html.count("data:image/png;base64,") == len(figures())
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no external resources"
    assert "<script" not in html and "@import" not in html and "url(" not in html


def test_failed_fit_is_the_first_line_of_the_headline_and_the_level_is_unreliable():
    view_lines = headline_lines(load("failed_indicators"), load("summary"), None)
    assert view_lines[0].startswith("FIT FAILED ITS CHECKS")
    assert "UNRELIABLE" in view_lines[1]
    html = render_html(content("failed_indicators", previous=None))
    headline = html.split('id="headline"')[1].split("</section>")[0]
    assert re.search(r'<p class="first">FIT FAILED ITS CHECKS', headline)
    assert "(unreliable)" in html.split('id="indicators"')[1]
    markdown = render_markdown(content("failed_indicators", previous=None))
    assert markdown.split("## Headline\n\n")[1].startswith("**FIT FAILED ITS CHECKS")


def test_the_fixtures_follow_the_indicators_schema():
    from forecast.indicators import validate_indicators

    for name in ("indicators", "previous_indicators", "failed_indicators"):
        validate_indicators(load(name))


def test_first_report_says_so():
    lines = headline_lines(load("indicators"), load("summary"), None)
    assert any(line.startswith("First report") for line in lines)


def test_changes_since_last_week_per_front():
    changes = front_changes(load("indicators"), load("previous_indicators"))
    assert "level green → amber" in changes["gaza"]
    assert any(c.startswith("P(≥40 in 7 d) 0.40 → 0.61 (+0.21)") for c in changes["gaza"])
    assert "rate ratio 1.05 → 1.34" in changes["gaza"]
    assert changes["red_sea_shipping"] == ["new front"]
    assert not any(c.startswith("level") for c in changes["iraq"])
    lines = headline_lines(load("indicators"), load("summary"), load("previous_indicators"), "reports/2024-05-09")
    assert any("level was GREEN" in line for line in lines)
    assert any("gaza green → amber" in line for line in lines)


def test_scenarios_are_rendered_beside_the_baseline():
    scenario = {
        "description": "strike on 2024-05-20 (pulse, every front)",
        "rows": [
            {
                "front": "gaza",
                "baseline_total": "40.0 [20.0, 60.0]",
                "scenario_total": "30.0 [10.0, 55.0]",
                "p_lower": "0.80",
            }
        ],
    }
    text = render_markdown(content(scenarios=(scenario,)))
    assert "## Scenarios" in text and "strike on 2024-05-20" in text
    assert 'id="scenarios"' in render_html(content(scenarios=(scenario,)))


def test_repeated_figure_names_are_refused():
    twice = figures() + (figures()[0],)
    with pytest.raises(ValueError, match="unique"):
        render_html(ReportContent(load("indicators"), load("summary"), PROVENANCE, twice))


def test_markdown_table_cells_escape_pipes():
    text = render_markdown(content())
    assert "US strike in Iraq \\| Jurf al-Sakhar" in text


def test_golden_files_hold_nothing_machine_dependent():
    for name in ("golden.md", "golden_failed.md"):
        path = REPORT_FIXTURES / name
        if not path.exists():
            pytest.skip("golden files not generated yet")
        text = path.read_text(encoding="utf-8")
        assert "/tmp" not in text and "/home" not in text and "base64" not in text
        assert not re.search(r"\d{2}:\d{2}:\d{2}", text), "no timestamps"

"""The HTML report in a real headless browser: Debian's Chromium, driven by Playwright.

Chromium is installed by the test set-up (``make test`` installs the Debian package
``chromium``), never downloaded at run time: Playwright is pointed at ``/usr/bin/chromium``.
The page is rendered from fixed fake content with real PNG figures drawn by
:mod:`forecast.plots.report` and :mod:`forecast.plots.checks` on fake data (no fit), loaded
from a ``file://`` URL with network features off, and must load with no console error, every
image must decode, and a screenshot is taken.  The test is skipped, saying why, only when
``/usr/bin/chromium`` is absent.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from forecast.plots.checks import plot_pit_histogram
from forecast.plots.report import (
    EffectRow,
    InterventionMarker,
    WindowTotal,
    figure_png,
    plot_changepoint_posterior,
    plot_fan_chart,
    plot_intervention_effects,
)
from forecast.report import ReportContent, ReportFigure, render_html
from tests.test_report_render import PROVENANCE, load

matplotlib.use("Agg")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is absent: install Debian's chromium (make test does: apt-get install chromium)",
)


def real_figures() -> tuple[ReportFigure, ...]:
    rng = np.random.default_rng(0)
    days = pd.date_range("2024-03-01", periods=60)
    future = pd.date_range("2024-04-30", periods=28)
    fan = plot_fan_chart(
        "gaza",
        observed_dates=days,
        observed_values=rng.poisson(8, 60),
        forecast_dates=future,
        forecast_draws=rng.poisson(8, (400, 28)),
        scenario_draws=rng.poisson(5, (400, 28)),
        windows=[WindowTotal(pd.Timestamp("2024-03-05"), pd.Timestamp("2024-03-18"), 70.0)],
        interventions=[
            InterventionMarker("strike", "strike", pd.Timestamp("2024-03-10")),
            InterventionMarker("truce", "truce", pd.Timestamp("2024-04-01"), pd.Timestamp("2024-04-07"), "window"),
        ],
        as_of=pd.Timestamp("2024-04-29"),
    )
    probabilities = rng.dirichlet(np.ones(60))[None, :]
    changepoints = plot_changepoint_posterior({"gaza": (days, probabilities), "iraq": (days, probabilities)})
    effects = plot_intervention_effects(
        [
            EffectRow("gaza", "truce", {"mean": 0.1, "low": 0.05, "high": 0.2}),
            EffectRow("iraq", "strike", {"mean": 0.6, "low": 0.3, "high": 1.4}, {"mean": 5.0, "low": 2.0, "high": 9.0}),
        ]
    )
    pit = plot_pit_histogram(rng.uniform(size=200))
    return (
        ReportFigure("fan_gaza", "forecasts", "Forecast: gaza", "fan chart", figure_png(fan)),
        ReportFigure("changepoints", "changepoints", "Changepoints", "date posterior", figure_png(changepoints)),
        ReportFigure("effects", "interventions", "Effects", "forest plot", figure_png(effects)),
        ReportFigure("pit_histogram", "checks", "PIT", "PIT histogram", figure_png(pit)),
    )


def test_the_html_report_loads_in_chromium_with_every_image_decoded(tmp_path):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is a test dependency: pip install -e '.[test]'"
    )
    content = ReportContent(
        indicators=load("failed_indicators"),
        summary=load("summary"),
        provenance=PROVENANCE,
        figures=real_figures(),
        previous=load("previous_indicators"),
        previous_source="reports/2024-05-09",
    )
    page_path = tmp_path / "report.html"
    page_path.write_text(render_html(content), encoding="utf-8")

    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("requestfailed", lambda request: errors.append(f"request failed: {request.url}"))
            page.goto(page_path.as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img", "images => images.map(i => ({complete: i.complete, width: i.naturalWidth, alt: i.alt}))"
            )
            title = page.title()
            headline = page.inner_text("#headline p.first")
            screenshot = tmp_path / "report.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    assert errors == [], f"the page logged errors: {errors}"
    assert len(images) == len(content.figures)
    undecoded = [image["alt"] for image in images if not (image["complete"] and image["width"] > 0)]
    assert undecoded == [], f"images that did not decode: {undecoded}"
    assert "as of 2024-05-16" in title
    assert headline.startswith("FIT FAILED ITS CHECKS"), "the failure is the headline's first line"
    assert screenshot.stat().st_size > 10_000
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

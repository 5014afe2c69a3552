"""The names of the files the jobs write are part of the output contract (scripts read them)."""

from forecast import artefacts
from forecast.jobs import alert_inputs, fit


def test_artefact_names_are_locked():
    assert {name: getattr(artefacts, name) for name in artefacts.__all__} == {
        "BACKTEST_PAGE_FILE": "backtest.html",
        "CHECKS_FOLDER": "checks",
        "EXCEEDANCE_FILE": "exceedance.csv",
        "FIGURES_FOLDER": "figures",
        "FIT_FILE": "fit.nc",
        "FORECAST_DRAWS_FILE": "forecast_draws.npz",
        "INDICATORS_FILE": "indicators.json",
        "RELIABILITY_FILE": "reliability.csv",
        "REPORT_HTML_FILE": "report.html",
        "REPORT_MARKDOWN_FILE": "report.md",
        "SCORES_FILE": "scores.csv",
        "SUMMARY_FILE": "summary.json",
    }


def test_older_import_paths_name_the_same_files():
    assert fit.FIT_FILE is artefacts.FIT_FILE
    assert alert_inputs.DRAWS_FILE is artefacts.FORECAST_DRAWS_FILE

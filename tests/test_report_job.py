"""``forecast report`` end to end on the shipped data with a fake fit (prior draws, no MCMC).

The sampling step is injected (``run_report(..., sample=...)``); everything else is the real
job: data, checks, forecasts, indicators, figures, rendering and files.  The real-MCMC run on
the shipped data is marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecast.cli import main
from forecast.errors import ForecastError
from forecast.indicators import validate_indicators
from forecast.jobs.fit import FitRequest
from forecast.jobs.report import (
    ReportRequest,
    find_previous,
    horizon_days,
    parse_scenario,
    run_report,
)
from forecast.models.model import SamplerSettings
from forecast.report import SECTIONS
from tests.conftest import FIXTURES
from tests.fakes import prior_fit_result

FAKE_SETTINGS = SamplerSettings(draws=40, tune=1, chains=2, progressbar=False)


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """A report as of 2024-05-16 with a scenario, in an output root that holds an earlier report."""
    root = tmp_path_factory.mktemp("reports")
    for name in ("2024-05-09", "2024-05-02"):  # the earlier report, from the renderer's fixture
        (root / name).mkdir()
        previous = json.loads((FIXTURES / "report" / "previous_indicators.json").read_text())
        previous["as_of"] = name
        (root / name / "indicators.json").write_text(json.dumps(previous))
    latest = run_report(
        ReportRequest(
            fit=FitRequest(settings=FAKE_SETTINGS),
            root=root,
            scenarios=(parse_scenario("strike@2024-05-20"), parse_scenario("truce@2024-05-22..2024-05-29:gaza")),
        ),
        sample=prior_fit_result,
    )
    return root, latest


def test_every_file_is_written_into_the_as_of_folder(reports):
    root, latest = reports
    assert latest.out == root / "2024-05-16"
    for name in ("report.html", "report.md", "indicators.json", "fit.nc", "summary.json"):
        assert (latest.out / name).is_file(), name
    figures = sorted(p.name for p in (latest.out / "figures").iterdir())
    assert "changepoints.png" in figures and "fan_gaza.png" in figures and "pit_histogram.png" in figures
    markdown = (latest.out / "report.md").read_text()
    for name in figures:
        assert f"](figures/{name})" in markdown


def test_indicators_json_validates_against_the_schema(reports):
    _, latest = reports
    document = json.loads((latest.out / "indicators.json").read_text())
    validate_indicators(document)
    assert document["as_of"] == "2024-05-16"
    assert document["horizon"]["days"] == 28


def test_html_holds_every_section_and_embeds_every_figure(reports):
    _, latest = reports
    html = (latest.out / "report.html").read_text()
    for key, title in SECTIONS:
        assert f'id="{key}"' in html, key
        assert title in html
    figures = list((latest.out / "figures").iterdir())
    assert html.count("data:image/png;base64,") == len(figures)
    for text in ("data hash", "priors hash", "package version", "sampler"):
        assert text in html


def test_a_failed_fit_heads_the_report_and_marks_the_level_unreliable(reports):
    _, latest = reports
    assert latest.headline[0].startswith("FIT FAILED ITS CHECKS"), "prior draws never pass the diagnostics"
    assert "UNRELIABLE" in latest.headline[1]
    markdown = (latest.out / "report.md").read_text()
    assert markdown.split("## Headline\n\n")[1].startswith("**FIT FAILED ITS CHECKS")


def test_the_report_compares_with_the_latest_earlier_report(reports):
    _, latest = reports
    assert any("previous report as of 2024-05-09" in line for line in latest.headline)
    markdown = (latest.out / "report.md").read_text()
    table = markdown.split("## Indicators")[1].split("## Forecasts")[0]
    assert "first report" not in table and "new front" in table and "rate ratio 1.05 →" in table


def test_without_an_earlier_report_it_says_first_report(tmp_path):
    from forecast.report.content import headline_lines

    document = json.loads((FIXTURES / "report" / "indicators.json").read_text())
    assert find_previous(tmp_path / "2024-05-16", "2024-05-16") is None
    assert any(line.startswith("First report") for line in headline_lines(document, {}, None))


def test_the_scenario_is_reported_beside_the_baseline(reports):
    _, latest = reports
    markdown = (latest.out / "report.md").read_text()
    assert "## Scenarios" in markdown
    assert "strike on 2024-05-20 (pulse, every front) + truce from 2024-05-22 to 2024-05-29" in markdown


def test_find_previous_takes_the_latest_earlier_dated_folder(tmp_path):
    for name, as_of in (("2024-05-02", "2024-05-02"), ("2024-05-09", "2024-05-09"), ("2024-05-23", "2024-05-23")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "indicators.json").write_text(json.dumps({"as_of": as_of}))
    (tmp_path / "notes").mkdir()
    out = tmp_path / "2024-05-16"
    assert find_previous(out, "2024-05-16") == tmp_path / "2024-05-09" / "indicators.json"
    assert find_previous(tmp_path / "2024-05-01", "2024-05-01") is None


def test_scenario_syntax():
    pulse = parse_scenario("strike@2024-05-20")
    assert (pulse.kind, pulse.shape, pulse.end, pulse.fronts) == ("strike", "pulse", None, ())
    window = parse_scenario("truce@2024-05-20..2024-05-27:gaza,lebanon_rockets")
    assert window.shape == "window" and window.end == pd.Timestamp("2024-05-27")
    assert window.fronts == ("gaza", "lebanon_rockets")
    for bad in ("strike", "strike@20-05-2024", "truce@2024-05-27..2024-05-20", "strike@2024-02-30"):
        with pytest.raises(ForecastError):
            parse_scenario(bad)


def test_an_unknown_scenario_kind_is_refused_before_sampling_listing_the_estimated_kinds(tmp_path):
    def never(model, settings):
        raise AssertionError("must fail before sampling")

    request = ReportRequest(
        fit=FitRequest(settings=FAKE_SETTINGS), root=tmp_path, scenarios=(parse_scenario("us_strike@2024-05-20"),)
    )
    with pytest.raises(ForecastError, match=r"estimated kinds: .*strike.*truce"):
        run_report(request, sample=never)
    late = ReportRequest(
        fit=FitRequest(settings=FAKE_SETTINGS), root=tmp_path, scenarios=(parse_scenario("strike@2024-08-01"),)
    )
    with pytest.raises(ForecastError, match="inside the forecast horizon"):
        run_report(late, sample=never)


def test_horizon_in_steps_of_the_grid():
    end = pd.Timestamp("2024-09-30")
    assert horizon_days("day", None, end) == 28 and horizon_days("week", None, end) == 28
    assert horizon_days("week", 6, end) == 42 and horizon_days("day", 10, end) == 10
    assert horizon_days("month", None, end) == 31 and horizon_days("month", 3, end) == 31 + 30 + 31
    assert horizon_days("year", 2, pd.Timestamp("2023-12-31")) == 366 + 365
    with pytest.raises(ForecastError, match="at least 7"):
        horizon_days("day", 3, end)
    with pytest.raises(ForecastError, match="not the last day of its month"):
        horizon_days("month", 1, pd.Timestamp("2024-09-27"))
    with pytest.raises(ForecastError, match="at least 1"):
        horizon_days("month", 0, end)


def test_report_command_line_offers_the_documented_options(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    out = capsys.readouterr().out
    for option in (
        "--events",
        "--interventions",
        "--as-of",
        "--out",
        "--freq",
        "--horizon",
        "--priors",
        "--draws",
        "--scenario",
        "--previous",
    ):
        assert option in out
    assert "last date in the" in out


def test_report_command_reports_a_bad_scenario_as_an_error(capsys):
    assert main(["-q", "report", "--scenario", "strike@tomorrow", "--out", "unused"]) == 1
    assert "--scenario 'strike@tomorrow'" in capsys.readouterr().err


@pytest.mark.slow
def test_make_report_on_the_shipped_data_with_real_mcmc(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path / "2024-05-16")]) == 0
    out = capsys.readouterr().out
    assert f"report written to {tmp_path / '2024-05-16' / 'report.html'}" in out
    document = json.loads((tmp_path / "2024-05-16" / "indicators.json").read_text())
    validate_indicators(document)
    assert document["diagnostics"]["ok"], "the shipped fit passes its diagnostics with the default settings"
    assert Path(tmp_path / "2024-05-16" / "fit.nc").is_file()


def test_a_figure_that_fails_fails_the_report_naming_it(monkeypatch, reports):
    from forecast.jobs import report_figures as figures_module  # where the report's figures are drawn

    def broken(*args, **kwargs):
        raise RuntimeError("no ink")

    _, latest = reports
    monkeypatch.setattr(figures_module, "plot_fan_chart", broken)
    with pytest.raises(ForecastError, match=r"'fan_\w+' could not be drawn: RuntimeError: no ink"):
        figures_module.report_figures(latest.fit, latest.fit.forecast, None, None, ())


def test_a_dynamic_fit_reports_its_level_and_level_shifts_instead_of_changepoints(tmp_path):
    """The default model has no changepoints: its section shows the level's shifts and its posterior."""
    from forecast.models.design import ModelOptions

    folder = tmp_path / "2024-05-16"
    run_report(
        ReportRequest(
            fit=FitRequest(options=ModelOptions(family="dynamic", changepoints=0), settings=FAKE_SETTINGS),
            out=folder,
        ),
        sample=prior_fit_result,
    )
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    html = (folder / "report.html").read_text(encoding="utf-8")
    summary = json.loads((folder / "summary.json").read_text())
    shifts = [(f["front"], s) for f in summary["fronts"] for s in f["level_shifts"]]
    assert "## Level shifts" in markdown and "## Changepoints" not in markdown
    assert "\n\n| front | most probable date |" in markdown, "a blank line before the table, or it is not one"
    assert '<a href="#changepoints">Level shifts</a>' in html and "<h2>Changepoints</h2>" not in html
    for front, shift in shifts:
        assert f"| {front} | {shift['mode_date']} |" in markdown
    rule = summary["level_shift_rule"]
    assert rule == {"rate_ratio": pytest.approx(1.5), "probability": 0.5, "window_days": 14}
    assert "one large step, or small steps that add up to it within 14 days." in markdown
    assert (
        f"more than a factor {rule['rate_ratio']:g}, up or down, with probability at least {rule['probability']:g}"
        in markdown
    )
    if not shifts:
        assert "None this time." in markdown
    assert "![Level posterior](figures/level.png)" in markdown
    assert (folder / "figures" / "level.png").read_bytes().startswith(b"\x89PNG")
    assert not (folder / "figures" / "changepoints.png").exists()


def test_a_monthly_report_forecasts_calendar_months(tmp_path):
    """On month totals, ``--horizon 3`` is the next three months as the data count them, not 84 days."""
    from forecast.jobs.data import DataRequest
    from forecast.models.design import ModelOptions

    rows = ["date,end_date,front,count"]
    for front, base in (("north", 40), ("south", 12)):
        for i, start in enumerate(pd.date_range("2022-01-01", "2024-09-01", freq="MS")):
            end = start + pd.offsets.MonthEnd(0)
            rows.append(f"{start.date()},{end.date()},{front},{base + (i % 5)}")
    events = tmp_path / "months.csv"
    events.write_text("\n".join(rows) + "\n")
    folder = tmp_path / "2024-09-30"
    run_report(
        ReportRequest(
            fit=FitRequest(
                data=DataRequest(events=(events,), freq="month"),
                options=ModelOptions(family="dynamic", changepoints=0),
                settings=FAKE_SETTINGS,
            ),
            out=folder,
            horizon=3,
        ),
        sample=prior_fit_result,
    )
    indicators = json.loads((folder / "indicators.json").read_text())
    assert indicators["horizon"] == {"steps": 3, "freq": "month", "days": 92}
    for front in indicators["fronts"]:
        steps = [(s["date"], s["days"]) for s in front["forecast"]]
        assert steps == [("2024-10-31", 31), ("2024-11-30", 30), ("2024-12-31", 31)]
    assert "forecasts for the next 3 month(s) (92 days)" in (folder / "report.md").read_text(encoding="utf-8")


def test_the_fan_chart_draws_each_step_over_its_whole_span():
    """On a monthly grid each month's daily average runs from its first to its last day."""
    import xarray as xr

    from forecast.jobs.report_figures import _per_day

    dates = pd.date_range("2024-10-01", "2024-12-31", freq="D")
    per_day = np.where(dates.month == 11, 3.0, 1.0)
    counts = np.broadcast_to(per_day, (2, 5, 1, len(dates)))
    forecast = xr.Dataset(
        {"counts": (("chain", "draw", "front", "date"), counts)}, coords={"front": ["a"], "date": dates}
    )
    shown, values = _per_day(forecast, "a", "month")
    assert pd.DatetimeIndex(shown).strftime("%m-%d").tolist() == ["10-01", "10-31", "11-01", "11-30", "12-01", "12-31"]
    assert values.shape == (10, 6) and values[0].tolist() == [1.0, 1.0, 3.0, 3.0, 1.0, 1.0]
    daily, same = _per_day(forecast, "a", "day")
    assert len(daily) == len(dates) and same.shape == (10, len(dates))

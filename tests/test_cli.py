"""The command line: help, version, ``data check`` and ``data panel``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from forecast import __version__
from forecast.cli import main
from forecast.data.shipped import default_event_files


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_console_script_reports_version_and_help():
    exe = shutil.which("forecast") or f"{sys.executable} -m forecast"
    version = subprocess.run([*exe.split(), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"forecast {__version__}"
    helped = subprocess.run([*exe.split(), "--help"], capture_output=True, text=True, check=True)
    assert "data" in helped.stdout


def test_data_check_passes_on_the_shipped_data(capsys):
    code, out, _ = run(capsys, "-q", "data", "check", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["errors"] == []
    fronts = {f["front"]: f for f in result["fronts"]}
    assert set(fronts) == {
        "gaza",
        "lebanon_rockets",
        "lebanon_drones",
        "iraq",
        "syria",
        "iraq_syria",
        "red_sea_shipping",
    }
    assert set(fronts["gaza"]) == {"front", "first_date", "last_date", "total", "rows"}
    assert fronts["iraq"]["total"] + fronts["syria"]["total"] + fronts["iraq_syria"]["total"] == 172
    assert any("extreme outlier" in w["message"] and "2023-10-07" in w["message"] for w in result["warnings"])
    assert result["interventions"] == 14


def test_data_check_text_summary_lists_fronts_and_warnings(capsys):
    code, out, _ = run(capsys, "-q", "data", "check")
    assert code == 0
    assert "lebanon_drones" in out and "warnings (" in out and "frequency: day" in out


def test_data_check_exits_non_zero_and_names_file_line_and_column(capsys, write_csv):
    path = write_csv("date,front,count\n2024-01-01,iraq,1\n2024-01-02,iraq,-4\n")
    code, out, _ = run(capsys, "-q", "data", "check", str(path), "--json")
    assert code == 1
    (error,) = json.loads(out)["errors"]
    assert error == {
        "file": str(path),
        "line": 3,
        "column": "count",
        "message": "negative count '-4' (counts must be >= 0)",
    }


def test_unknown_layout_lists_the_expected_ones(capsys, write_csv):
    path = write_csv("when,where\n2024-01-01,x\n")
    code, out, _ = run(capsys, "-q", "data", "check", str(path))
    assert code == 1
    assert "unknown layout" in out and "ACLED export" in out and "UCDP GED" in out


def test_as_of_excludes_and_reports_later_rows(capsys):
    code, out, _ = run(capsys, "-q", "data", "check", "--as-of", "2024-01-31", "--json")
    result = json.loads(out)
    assert code == 0 and result["end"] == "2024-01-31"
    assert any("after as_of 2024-01-31" in w["message"] for w in result["warnings"])
    assert all(f["last_date"] <= "2024-01-31" for f in result["fronts"])


def test_bad_as_of_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["data", "check", "--as-of", "31/01/2024"])
    assert info.value.code == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


@pytest.mark.parametrize("freq", ["day", "week", "month", "year"])
def test_data_panel_writes_the_aggregated_csv_and_conserves_totals(capsys, tmp_path, freq):
    out_file = tmp_path / "panel.csv"
    code, out, _ = run(
        capsys, "-q", "data", "panel", *map(str, default_event_files()), "--freq", freq, "--out", str(out_file)
    )
    assert code == 0 and "wrote" in out
    panel = pd.read_csv(out_file, keep_default_na=False)
    assert list(panel.columns) == ["date", "front", "count", "end_date", "precision"]
    assert panel["count"].sum() == 5765
    windows = panel[panel["end_date"] != ""]
    assert set(windows["front"]) == {"iraq", "syria", "iraq_syria", "red_sea_shipping"}


def test_data_panel_reads_an_acled_export_with_options(capsys, tmp_path):
    from tests.conftest import FIXTURES

    out_file = tmp_path / "panel.csv"
    code, _, _ = run(
        capsys,
        "-q",
        "data",
        "panel",
        str(FIXTURES / "acled_api.csv"),
        "--by",
        "country",
        "--freq",
        "week",
        "--out",
        str(out_file),
    )
    assert code == 0
    assert pd.read_csv(out_file)["count"].sum() > 0


# --------------------------------------------------------------------------------------------
# User errors against bugs: only ForecastError (and a missing file) is reported as the user's


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fit", "--model", "changepoint", "--changepoints", "-1"], "changepoints must be an integer >= 0"),
        (["fit", "--changepoints", "2"], "--changepoints belongs to the changepoint model: add --model changepoint"),
        (["report", "--trend", "--self-excitation"], "--trend, --self-excitation belong to the changepoint model"),
        (["backtest", "--likelihood", "poisson"], "--likelihood poisson belongs to the changepoint model"),
        (["fit", "--model", "dynamic", "--trend"], "the dynamic model has no trend"),
        (["fit", "--draws", "0"], "draws must be >= 1"),
        (["fit", "--target-accept", "1.5"], "target_accept must be in [0.5, 1)"),
        (["backtest", "--origins", "0"], "origins must be >= 1"),
    ],
)
def test_a_bad_option_value_is_a_user_error(capsys, tmp_path, argv, message):
    code, _, err = run(capsys, "-q", *argv, "--out", str(tmp_path / "out"))
    assert code == 1
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["fit", "report", "backtest"])
def test_the_sampling_help_states_the_default_draws_and_tuning(capsys, command):
    """The help is written out (the parser does not import PyMC); it must say what the fit does."""
    from forecast.cli import build_parser
    from forecast.models.model import DEFAULT_DRAWS, DEFAULT_TUNE

    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option, defaults in (("draws per chain", DEFAULT_DRAWS), ("tuning iterations per chain", DEFAULT_TUNE)):
        expected = (
            f"{option} (default {defaults['changepoint']} for the changepoint model, "
            f"{defaults['dynamic']} for the dynamic)"
        )
        assert expected in text, option


@pytest.mark.parametrize("command", ["fit", "report", "backtest"])
def test_the_default_model_is_the_dynamic_one_and_changepoint_is_an_option(command):
    from forecast.cli import _fit_request, build_parser
    from forecast.models.model import DEFAULT_DRAWS, DEFAULT_TUNE

    default = _fit_request(build_parser().parse_args([command, "--out", "x"]))
    assert (default.options.family, default.options.changepoints) == ("dynamic", 0)
    assert (default.settings.draws, default.settings.tune) == (DEFAULT_DRAWS["dynamic"], DEFAULT_TUNE["dynamic"])
    chosen = _fit_request(build_parser().parse_args([command, "--model", "changepoint", "--trend", "--out", "x"]))
    assert (chosen.options.family, chosen.options.changepoints, chosen.options.trend) == ("changepoint", 1, True)
    assert (chosen.settings.draws, chosen.settings.tune) == (DEFAULT_DRAWS["changepoint"], DEFAULT_TUNE["changepoint"])
    asked = _fit_request(build_parser().parse_args([command, "--tune", "700", "--out", "x"]))
    assert asked.settings.tune == 700


def test_an_internal_value_error_is_not_reported_as_a_user_error(capsys, monkeypatch):
    import forecast.jobs.data

    def broken(request):
        raise ValueError("an internal bug")

    monkeypatch.setattr(forecast.jobs.data, "check_data", broken)
    with pytest.raises(ValueError, match="an internal bug"):
        main(["-q", "data", "check"])
    assert "error:" not in capsys.readouterr().err


def test_the_process_entry_exits_70_with_the_traceback_on_a_bug(capsys, monkeypatch):
    import forecast.jobs.data
    from forecast.cli import EXIT_ERROR, EXIT_INTERNAL
    from forecast.cli import run as run_process

    def broken(request):
        raise ValueError("an internal bug")

    monkeypatch.setattr(forecast.jobs.data, "check_data", broken)
    with pytest.raises(SystemExit) as exit_info:
        run_process(["-q", "data", "check"])
    assert exit_info.value.code == EXIT_INTERNAL != EXIT_ERROR
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: an internal bug" in err
    assert "internal error" in err and not err.startswith("error:")

"""The shipped example data: reproducible from data/raw, consistent, and readable by the toolkit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast import names as n
from forecast.data import shipped
from forecast.data.cumulative import WINDOW_COLUMNS, cumulative_to_windows
from forecast.data.events import read_events_csv
from forecast.data.interventions import INTERVENTION_CSV_COLUMNS
from forecast.errors import DataValidationError
from tools import build_shipped_data as builder

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
RAW_DIR = DATA_DIR / "raw"
SHARED_DATA_DIR = Path("/work/shared/data")
DERIVED_FILES = [*shipped.EVENT_FILES, shipped.INTERVENTIONS_FILE]


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rebuilt")
    builder.build_all(RAW_DIR, out)
    return out


def read_text_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


# --------------------------------------------------------------------------------------------
# Reproducibility


@pytest.mark.parametrize("name", DERIVED_FILES)
def test_derived_file_equals_what_build_all_writes(rebuilt: Path, name: str) -> None:
    assert (rebuilt / name).read_bytes() == (DATA_DIR / name).read_bytes()


def test_raw_folder_holds_every_input() -> None:
    assert sorted(p.name for p in RAW_DIR.iterdir()) == sorted(builder.RAW_FILES)


@pytest.mark.skipif(not SHARED_DATA_DIR.is_dir(), reason="the compiled originals are not on this machine")
@pytest.mark.parametrize("name", builder.RAW_FILES)
def test_raw_inputs_are_byte_copies_of_the_originals(name: str) -> None:
    assert (RAW_DIR / name).read_bytes() == (SHARED_DATA_DIR / name).read_bytes()


def test_command_line_entry_point_rebuilds_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert builder.main(["--raw", str(RAW_DIR), "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(DERIVED_FILES)
    assert "events_israel_alerts.csv (669 rows)" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# Locating the shipped files


def test_shipped_data_dir_is_the_repository_data_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(shipped.DATA_DIR_ENV, raising=False)
    assert shipped.shipped_data_dir() == DATA_DIR
    assert shipped.default_event_files() == [DATA_DIR / name for name in shipped.EVENT_FILES]
    assert shipped.default_interventions_file() == DATA_DIR / "interventions.csv"
    assert all(path.is_file() for path in [*shipped.default_event_files(), shipped.default_interventions_file()])


def test_environment_variable_overrides_the_data_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(shipped.DATA_DIR_ENV, str(tmp_path))
    assert shipped.shipped_data_dir() == tmp_path
    assert shipped.default_interventions_file() == tmp_path / "interventions.csv"


# --------------------------------------------------------------------------------------------
# cumulative_to_windows


def test_cumulative_to_windows_on_hand_computed_input() -> None:
    statements = pd.DataFrame(
        {
            "as_of": ["2024-01-03", "2024-01-05", "2024-01-06", "2024-01-10"],
            "total": ["3", "5.0", "5", "9"],
            "flag": ["exact", "at_least", "", "approx"],
            "url": ["a", "b", "c", "d"],
        }
    )
    before = statements.copy()
    windows = cumulative_to_windows(
        statements,
        date_col="as_of",
        total_col="total",
        front="north",
        start="2024-01-01",
        precision_col="flag",
        source_col="url",
    )
    assert list(windows.columns) == WINDOW_COLUMNS
    assert windows[n.DATE].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-01", "2024-01-04", "2024-01-06", "2024-01-07"]
    assert windows[n.END_DATE].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-03",
        "2024-01-05",
        "2024-01-06",
        "2024-01-10",
    ]
    assert windows[n.COUNT].tolist() == [3, 2, 0, 4]
    assert windows[n.COUNT].dtype == np.int64
    assert windows[n.PRECISION].tolist() == ["exact", "at_least", "exact", "approx"]
    assert windows[n.SOURCE].tolist() == ["a", "b", "c", "d"]
    assert set(windows[n.FRONT]) == {"north"}
    pd.testing.assert_frame_equal(statements, before)  # the caller's frame is untouched


def test_cumulative_to_windows_accepts_datetimes_and_numbers() -> None:
    statements = pd.DataFrame({"day": pd.to_datetime(["2024-02-01", "2024-02-03"]), "total": [4, 6]})
    windows = cumulative_to_windows(statements, date_col="day", total_col="total", front="f", start="2024-01-31")
    assert windows[n.COUNT].tolist() == [4, 2]
    assert windows[n.PRECISION].tolist() == ["exact", "exact"]
    assert windows[n.SOURCE].tolist() == ["", ""]


def _only_issue(error: pytest.ExceptionInfo[DataValidationError]):
    assert len(error.value.issues) == 1, error.value.issues
    return error.value.issues[0]


def test_decreasing_total_is_reported_with_file_line_and_column() -> None:
    statements = pd.DataFrame({"as_of": ["2024-01-02", "2024-01-05", "2024-01-09"], "total": ["5", "7", "6"]})
    with pytest.raises(DataValidationError) as error:
        cumulative_to_windows(
            statements,
            date_col="as_of",
            total_col="total",
            front="f",
            start="2024-01-01",
            file="counts.csv",
            lines=[2, 4, 7],
        )
    issue = _only_issue(error)
    assert (issue.file, issue.line, issue.column) == ("counts.csv", 7, "total")
    assert "decreases from 7 to 6" in issue.message


@pytest.mark.parametrize("third_date", ["2024-01-05", "2024-01-04"], ids=["repeated", "earlier"])
def test_dates_that_do_not_increase_strictly_are_reported(third_date: str) -> None:
    statements = pd.DataFrame({"as_of": ["2024-01-02", "2024-01-05", third_date], "total": ["1", "2", "3"]})
    with pytest.raises(DataValidationError) as error:
        cumulative_to_windows(
            statements, date_col="as_of", total_col="total", front="f", start="2024-01-01", file="x.csv"
        )
    issue = _only_issue(error)
    assert (issue.file, issue.line, issue.column) == ("x.csv", 4, "as_of")
    assert "increase strictly" in issue.message


@pytest.mark.parametrize(
    ("bad_total", "message"),
    [("2.5", "non-integer"), ("-1", "negative"), ("many", "cannot parse"), ("", "empty")],
)
def test_bad_totals_are_reported(bad_total: str, message: str) -> None:
    statements = pd.DataFrame({"as_of": ["2024-01-02", "2024-01-05"], "total": ["1", bad_total]})
    with pytest.raises(DataValidationError) as error:
        cumulative_to_windows(
            statements, date_col="as_of", total_col="total", front="f", start="2024-01-01", file="x.csv"
        )
    issue = _only_issue(error)
    assert (issue.file, issue.line, issue.column) == ("x.csv", 3, "total")
    assert message in issue.message


def test_first_statement_before_start_is_reported() -> None:
    statements = pd.DataFrame({"as_of": ["2023-12-30"], "total": ["1"]})
    with pytest.raises(DataValidationError) as error:
        cumulative_to_windows(statements, date_col="as_of", total_col="total", front="f", start="2024-01-01")
    assert _only_issue(error).column == "as_of"


def test_unknown_precision_flag_is_reported() -> None:
    statements = pd.DataFrame({"as_of": ["2024-01-02"], "total": ["1"], "flag": ["reported"]})
    with pytest.raises(DataValidationError) as error:
        cumulative_to_windows(
            statements, date_col="as_of", total_col="total", front="f", start="2024-01-01", precision_col="flag"
        )
    assert _only_issue(error).column == "flag"


@settings(max_examples=50, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(1, 40), st.integers(0, 30)), min_size=1, max_size=25),
    start_offset=st.integers(0, 5),
)
def test_windows_are_contiguous_and_conserve_the_total(steps: list[tuple[int, int]], start_offset: int) -> None:
    first_day = pd.Timestamp("2023-10-17")
    dates = first_day + pd.to_timedelta(np.cumsum([gap for gap, _ in steps]) + start_offset - 1, unit="D")
    totals = np.cumsum([increment for _, increment in steps])
    statements = pd.DataFrame({"as_of": dates.strftime("%Y-%m-%d"), "total": totals.astype(str)})
    windows = cumulative_to_windows(statements, date_col="as_of", total_col="total", front="f", start=first_day)
    assert windows[n.COUNT].sum() == totals[-1]
    assert (windows[n.COUNT] >= 0).all()
    assert windows[n.DATE].iloc[0] == first_day
    assert (windows[n.END_DATE] >= windows[n.DATE]).all()
    assert (
        windows[n.DATE].iloc[1:].to_numpy() == (windows[n.END_DATE].iloc[:-1] + pd.Timedelta(days=1)).to_numpy()
    ).all()


# --------------------------------------------------------------------------------------------
# The derived files


@pytest.mark.parametrize("name", shipped.EVENT_FILES)
def test_every_events_file_parses_with_the_canonical_reader(name: str) -> None:
    table = read_events_csv(DATA_DIR / name)
    assert len(table) > 0
    assert (table.frame[n.COUNT] >= 0).all()
    assert table.frame[n.SOURCE].str.startswith("http").all()


def test_alerts_per_front_equal_the_source_column_sums() -> None:
    source = pd.read_csv(RAW_DIR / builder.RAW_ALERTS)
    events = read_text_table(DATA_DIR / shipped.ALERTS_FILE)
    counts = events["count"].astype(int)
    totals = counts.groupby(events["front"]).sum()
    assert totals["gaza"] == source[list(builder.ALERT_GAZA_BANDS)].to_numpy().sum()
    assert totals["lebanon_rockets"] == source["Lebanon"].sum()
    assert totals["lebanon_drones"] == source["Lebanon_drone"].sum()
    assert set(events["front"]) == set(builder.ALERT_FRONTS)


def test_alerts_have_one_row_per_day_and_front_including_zero_days() -> None:
    source = pd.read_csv(RAW_DIR / builder.RAW_ALERTS, dtype=str)
    events = read_text_table(DATA_DIR / shipped.ALERTS_FILE)
    assert len(events) == 3 * len(source)
    assert not events.duplicated(["date", "front"]).any()
    assert (events["count"] == "0").any()
    assert builder.alert_date_gaps(RAW_DIR / builder.RAW_ALERTS) == []
    assert events["end_date"].eq("").all()


def _windows_by_front(name: str) -> dict[str, pd.DataFrame]:
    frame = read_text_table(DATA_DIR / name)
    frame["date"] = pd.to_datetime(frame["date"])
    frame["end_date"] = pd.to_datetime(frame["end_date"])
    frame["count"] = frame["count"].astype(int)
    return {front: rows.reset_index(drop=True) for front, rows in frame.groupby("front", sort=False)}


@pytest.mark.parametrize("name", [shipped.US_FORCES_FILE, shipped.RED_SEA_FILE])
def test_window_files_are_contiguous_and_never_negative(name: str) -> None:
    for rows in _windows_by_front(name).values():
        assert (rows["count"] >= 0).all()
        assert (rows["end_date"] >= rows["date"]).all()
        assert (
            rows["date"].iloc[1:].to_numpy() == (rows["end_date"].iloc[:-1] + pd.Timedelta(days=1)).to_numpy()
        ).all()


def test_pentagon_windows_sum_back_to_the_cumulative_totals() -> None:
    counts = read_text_table(RAW_DIR / builder.RAW_US_FORCES_COUNTS)
    split = counts[counts["iraq"] != ""]
    last_split = split.iloc[-1]
    fronts = _windows_by_front(shipped.US_FORCES_FILE)
    assert list(fronts) == list(builder.US_FORCES_FRONTS)
    assert fronts["iraq"]["count"].sum() == int(last_split["iraq"])
    assert fronts["syria"]["count"].sum() == int(last_split["syria"])
    final_total = int(counts["cumulative_total"].iloc[-1])
    assert fronts["iraq_syria"]["count"].sum() == final_total - int(last_split["cumulative_total"])
    assert sum(rows["count"].sum() for rows in fronts.values()) == final_total
    # Split fronts start when counting began; the total front starts the day after the last split.
    start = pd.Timestamp(builder.US_FORCES_COUNT_START)
    assert fronts["iraq"]["date"].iloc[0] == fronts["syria"]["date"].iloc[0] == start
    last_split_day = pd.Timestamp(last_split["as_of_date"])
    assert fronts["iraq"]["end_date"].iloc[-1] == fronts["syria"]["end_date"].iloc[-1] == last_split_day
    assert fronts["iraq_syria"]["date"].iloc[0] == last_split_day + pd.Timedelta(days=1)
    assert fronts["iraq_syria"]["end_date"].iloc[-1] == pd.Timestamp(counts["as_of_date"].iloc[-1])


def test_pentagon_precision_flags_are_mapped() -> None:
    windows = read_text_table(DATA_DIR / shipped.US_FORCES_FILE)
    assert set(windows["precision"]) == {"exact", "at_least", "approx", "approx_date"}


def test_red_sea_windows_follow_the_anchors() -> None:
    windows = read_text_table(DATA_DIR / shipped.RED_SEA_FILE)
    assert windows["count"].astype(int).tolist() == [26, 1, 33]
    assert windows["date"].iloc[0] == builder.RED_SEA_COUNT_START
    assert windows["precision"].tolist() == ["exact", "exact", "approx"]


def test_interventions_table() -> None:
    table = read_text_table(DATA_DIR / shipped.INTERVENTIONS_FILE)
    assert list(table.columns) == INTERVENTION_CSV_COLUMNS
    known_fronts = {*builder.ALERT_FRONTS, *builder.US_FORCES_FRONTS, builder.FRONT_RED_SEA_SHIPPING}
    for cell in table["front"]:
        assert cell and set(cell.split(";")) <= known_fronts
    assert set(table["shape"]) <= set(n.SHAPES)
    assert table["source"].str.startswith("http").all()
    assert pd.to_datetime(table["date"], format="%Y-%m-%d").is_monotonic_increasing
    strikes = table[(table["kind"] == "strike") & (table["front"] != "red_sea_shipping")]
    assert len(strikes) == 10
    assert (table["kind"] == "strike").sum() == 12
    windows = table[table["shape"] == "window"]
    assert windows[["date", "end_date"]].values.tolist() == [["2023-11-24", "2023-11-30"]]
    assert (table.loc[table["shape"] != "window", "end_date"] == "").all()
    both = table[table["date"] == "2024-02-02"]
    assert both["front"].tolist() == ["iraq;syria;iraq_syria"]

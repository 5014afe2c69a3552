"""Tests of the ACLED reader on invented fixtures (tests/fixtures/acled_*.csv).

The three fixtures hold the same five invented events in three layouts: ``acled_api.csv``
(31 columns, ISO dates, text inter labels), ``acled_export_tool.csv`` (``02 February 2024``
dates) and ``acled_legacy.csv`` (legacy columns in another order, day-first dates with ``-``
and ``/``, every integer written as ``1.0``).  Data row ``i`` (0-based) is on line ``i + 2``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast import names as n
from forecast.data.acled import (
    ACLED_BY,
    actor_type_label,
    interaction_label,
    looks_like_acled,
    read_acled_csv,
)
from forecast.data.csvio import RawTable, read_raw_csv
from forecast.data.options import SelectOptions
from forecast.data.panel import UNCERTAIN_END
from forecast.errors import DataValidationError

FIXTURES = Path(__file__).parent / "fixtures"
LAYOUTS = ("acled_api.csv", "acled_export_tool.csv", "acled_legacy.csv")
IDS = ["IRQ90001", "IRQ90002", "SYR90001", "SYR90002", "IRQ90003"]
DATES = pd.to_datetime(["2024-01-20", "2024-02-02", "2024-02-02", "2024-01-28", "2024-02-10"])
FATALITIES = [0, 16, 18, 3, 0]


def _ids(table) -> list[str]:
    return table.frame["event_id_cnty"].tolist()


def _variant(
    tmp_path: Path, name: str, edits: dict[tuple[int, str], str] | None = None, drop: tuple[str, ...] = ()
) -> Path:
    """Copy a fixture with some cells changed (``edits[(row, column)]``) and columns dropped."""
    with open(FIXTURES / name, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    header = [column for column in rows[0] if column not in drop]
    for (row, column), text in (edits or {}).items():
        rows[row][column] = text
    path = tmp_path / name
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _error(path: Path, options: SelectOptions = SelectOptions()) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        read_acled_csv(path, options)
    return info.value


def _assert_located(error: DataValidationError, path: Path, line: int, column: str) -> None:
    message = str(error)
    assert path.name in message
    assert f"line {line}" in message
    assert f"column '{column}'" in message


# --- layouts and formats ------------------------------------------------------------------


@pytest.mark.parametrize("name", LAYOUTS)
def test_every_date_format_gives_the_same_events(name):
    table = read_acled_csv(FIXTURES / name)
    frame = table.frame
    assert _ids(table) == IDS
    # rows dated to a week or a month are events with an uncertain date: their span's first
    # day, and its last in uncertain_end (the week around event_date; the calendar month)
    assert (
        frame[n.DATE].tolist()
        == pd.to_datetime(["2024-01-20", "2024-02-02", "2024-01-30", "2024-01-01", "2024-02-10"]).tolist()
    )
    assert frame[UNCERTAIN_END].tolist()[2:4] == pd.to_datetime(["2024-02-05", "2024-01-31"]).tolist()
    assert frame[UNCERTAIN_END].isna().tolist() == [True, True, False, False, True]
    assert frame[n.END_DATE].isna().all()
    assert frame[n.COUNT].tolist() == [1] * 5
    assert frame[n.FRONT].tolist() == ["Iraq", "Iraq", "Syria", "Syria", "Iraq"]
    assert frame[n.ORIGIN_LINE].tolist() == [2, 3, 4, 5, 6]
    assert frame[n.SOURCE].iloc[0] == "Invented Wire; Invented Daily"
    assert table.files == (str(FIXTURES / name),)


def test_legacy_columns_are_tolerated_and_kept():
    frame = read_acled_csv(FIXTURES / "acled_legacy.csv").frame
    for column in ("data_id", "event_id_no_cnty", "iso3"):
        assert column in frame.columns
    assert "disorder_type" not in frame.columns
    assert frame["fatalities"].tolist() == FATALITIES  # written as "16.0"
    assert frame["year"].tolist() == [2024] * 5  # written as "2024.0"
    assert frame["time_precision"].tolist() == [1, 1, 2, 3, 1]


def test_other_acled_columns_are_kept_as_extra_columns():
    frame = read_acled_csv(FIXTURES / "acled_api.csv").frame
    assert list(frame.columns[:8]) == [
        n.DATE,
        n.END_DATE,
        n.FRONT,
        n.COUNT,
        n.PRECISION,
        n.SOURCE,
        n.ORIGIN_FILE,
        n.ORIGIN_LINE,
    ]
    for column in ("event_id_cnty", "admin1", "actor1", "assoc_actor_2", "notes", "tags"):
        assert column in frame.columns
    assert "event_date" not in frame.columns


def test_numeric_and_text_inter_codes_give_the_same_labels():
    modern = read_acled_csv(FIXTURES / "acled_api.csv").frame
    legacy = read_acled_csv(FIXTURES / "acled_legacy.csv").frame
    for column in ("inter1", "inter2", "interaction"):
        assert legacy[column].tolist() == modern[column].tolist()
    assert legacy["interaction"].tolist() == [
        "Political militia-External/Other forces",
        "Political militia-External/Other forces",
        "Political militia-External/Other forces",
        "State forces-Rebel group",
        "Protesters only",
    ]
    assert legacy["inter2"].iloc[4] == ""  # code 0.0: no second actor


@pytest.mark.parametrize(
    ("cell", "label"),
    [
        ("18", "State forces-External/Other forces"),
        ("18.0", "State forces-External/Other forces"),
        ("80", "External/Other forces only"),
        ("STATE FORCES-external/other forces", "State forces-External/Other forces"),
        ("protesters only", "Protesters only"),
        ("", ""),
        ("81", None),  # 10 * min + max: the first digit is never the larger
        ("0", None),
        ("9", None),
        ("90", None),
        ("1.5", None),
        ("Aliens-State forces", None),
    ],
)
def test_interaction_label(cell, label):
    assert interaction_label(cell) == label


@pytest.mark.parametrize(
    ("cell", "label"),
    [
        ("1", "State forces"),
        ("8.0", "External/Other forces"),
        ("rebel group", "Rebel group"),
        ("0", ""),  # no second actor
        ("9", None),
        ("Pirates", None),
    ],
)
def test_actor_type_label(cell, label):
    assert actor_type_label(cell) == label


@pytest.mark.parametrize(("column", "cell"), [("inter1", "9"), ("inter2", "Pirates"), ("interaction", "81")])
def test_unknown_inter_code_is_an_issue(tmp_path, column, cell):
    path = _variant(tmp_path, "acled_legacy.csv", {(2, column): cell})
    _assert_located(_error(path), path, 4, column)


# --- options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (SelectOptions(countries=("iraq",)), ["IRQ90001", "IRQ90002", "IRQ90003"]),
        (SelectOptions(event_types=("BATTLES",)), ["SYR90002"]),
        (SelectOptions(sub_event_types=("air/drone strike",)), ["IRQ90002", "SYR90001"]),
        (SelectOptions(actors=("united states",)), ["IRQ90001", "IRQ90002", "SYR90001"]),  # actor2 or actor1
        (SelectOptions(actors=("popular mobilization",)), ["IRQ90002"]),  # assoc_actor_2
        (SelectOptions(actors=("islamic state", "protesters")), ["SYR90002", "IRQ90003"]),  # any pattern
        (SelectOptions(countries=("Syria",), actors=("United States",)), ["SYR90001"]),  # filters combine
        (SelectOptions(countries=("Iraq", "Syria"), event_types=("Explosions/Remote violence",)), IDS[:3]),
    ],
)
def test_filters(options, expected):
    assert _ids(read_acled_csv(FIXTURES / "acled_api.csv", options)) == expected


@pytest.mark.parametrize(
    ("by", "fronts"),
    [
        ("country", ["Iraq", "Iraq", "Syria", "Syria", "Iraq"]),
        ("admin1", ["Al Anbar", "Al Anbar", "Deir ez Zor", "Homs", "Baghdad"]),
        (
            "actor1",
            ["Islamic Resistance in Iraq"]
            + ["Military Forces of the United States (2021-)"] * 2
            + ["Military Forces of Syria (2000-)", "Protesters (Iraq)"],
        ),
        ("event_type", ["Explosions/Remote violence"] * 3 + ["Battles", "Protests"]),
    ],
)
def test_by_picks_the_front_column(by, fronts):
    assert read_acled_csv(FIXTURES / "acled_legacy.csv", SelectOptions(by=by)).frame[n.FRONT].tolist() == fronts


@pytest.mark.parametrize("name", LAYOUTS)
def test_measure_deaths_counts_fatalities(name):
    frame = read_acled_csv(FIXTURES / name, SelectOptions(measure="deaths")).frame
    assert frame[n.COUNT].tolist() == FATALITIES
    assert frame[n.COUNT].dtype == np.int64


def test_low_time_precision_rows_are_kept_and_flagged():
    table = read_acled_csv(FIXTURES / "acled_api.csv")
    assert table.frame[n.PRECISION].tolist() == ["exact", "exact", "within_week", "within_month", "exact"]
    warnings = {w.message.split(" flagged ")[1].split(" ")[0]: w for w in table.warnings}
    assert set(warnings) == {"'within_week'", "'within_month'"}
    assert "lines 4" in warnings["'within_week'"].message
    assert "lines 5" in warnings["'within_month'"].message
    assert all(w.file.endswith("acled_api.csv") for w in table.warnings)


def test_reading_a_given_table_leaves_it_unchanged():
    table = read_raw_csv(FIXTURES / "acled_legacy.csv")
    before = table.frame.copy()
    read_acled_csv("ignored.csv", SelectOptions(countries=("Iraq",), measure="deaths"), table=table)
    pd.testing.assert_frame_equal(table.frame, before)


@settings(max_examples=25, deadline=None)
@given(order=st.permutations(range(5)))
def test_row_order_does_not_change_the_events(order):
    table = read_raw_csv(FIXTURES / "acled_api.csv")
    shuffled = RawTable(
        file=table.file,
        columns=table.columns,
        frame=table.frame.iloc[list(order)].reset_index(drop=True),
        lines=table.lines[list(order)],
    )
    options = SelectOptions(measure="deaths", by="admin1")
    expected = read_acled_csv(table.file, options, table=table).frame
    got = read_acled_csv(table.file, options, table=shuffled).frame
    got = got.sort_values(n.ORIGIN_LINE).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)


def test_looks_like_acled():
    for name in LAYOUTS:
        assert looks_like_acled(read_raw_csv(FIXTURES / name).columns)
    assert not looks_like_acled(read_raw_csv(FIXTURES / "ucdp_ged_49.csv").columns)
    assert not looks_like_acled(["event_id_cnty", "event_date"])


# --- validation errors --------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["2024-02-31", "31 Febtember 2024", "2024/02/02", ""])
def test_unparseable_date(tmp_path, cell):
    path = _variant(tmp_path, "acled_export_tool.csv", {(1, "event_date"): cell})
    _assert_located(_error(path), path, 3, "event_date")


@pytest.mark.parametrize("cell", ["-1", "2.5", "many", ""])
@pytest.mark.parametrize("measure", ["deaths", "events"])
def test_bad_fatalities(tmp_path, cell, measure):
    path = _variant(tmp_path, "acled_api.csv", {(3, "fatalities"): cell})
    _assert_located(_error(path, SelectOptions(measure=measure)), path, 5, "fatalities")


@pytest.mark.parametrize("cell", ["4", "1.5", "exact"])
def test_unknown_time_precision(tmp_path, cell):
    path = _variant(tmp_path, "acled_api.csv", {(0, "time_precision"): cell})
    _assert_located(_error(path), path, 2, "time_precision")


def test_duplicate_event_ids_name_both_lines(tmp_path):
    path = _variant(tmp_path, "acled_api.csv", {(3, "event_id_cnty"): "IRQ90001"})
    error = _error(path)
    _assert_located(error, path, 5, "event_id_cnty")
    assert "also on line 2" in str(error)


def test_unknown_by_lists_the_allowed_values():
    path = FIXTURES / "acled_api.csv"
    message = str(_error(path, SelectOptions(by="region")))
    assert path.name in message
    assert "by='region'" in message
    assert str(list(ACLED_BY)) in message


def test_unknown_measure_lists_the_allowed_values():
    message = str(_error(FIXTURES / "acled_api.csv", SelectOptions(measure="injuries")))
    assert "acled_api.csv" in message and "['events', 'deaths']" in message


@pytest.mark.parametrize(
    ("dropped", "options"),
    [
        ("sub_event_type", SelectOptions(sub_event_types=("Air/drone strike",))),
        ("assoc_actor_2", SelectOptions(actors=("United States",))),
        ("fatalities", SelectOptions(measure="deaths")),
        ("admin1", SelectOptions(by="admin1")),
        ("event_type", SelectOptions()),  # always required
    ],
)
def test_missing_column_required_by_an_option(tmp_path, dropped, options):
    path = _variant(tmp_path, "acled_api.csv", drop=(dropped,))
    error = _error(path, options)
    _assert_located(error, path, 1, dropped)
    assert "found [" in str(error)


def test_options_that_need_nothing_more_do_not_require_optional_columns(tmp_path):
    dropped = ("fatalities", "sub_event_type", "inter1", "time_precision", "source")
    path = _variant(tmp_path, "acled_api.csv", drop=dropped)
    table = read_acled_csv(path)
    assert len(table) == 5
    assert table.frame[n.PRECISION].eq("exact").all()


def test_empty_selection_names_the_options():
    path = FIXTURES / "acled_api.csv"
    message = str(_error(path, SelectOptions(countries=("Yemen",), event_types=("Battles",))))
    assert path.name in message
    assert "no rows" in message
    assert "countries=['Yemen']" in message and "event_types=['Battles']" in message


def test_header_only_file(tmp_path):
    path = tmp_path / "acled_empty.csv"
    path.write_text((FIXTURES / "acled_api.csv").read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    assert "header but no rows" in str(_error(path))


def test_empty_front_of_a_kept_row_is_the_front_unknown_or_an_issue_when_strict(tmp_path):
    path = _variant(tmp_path, "acled_api.csv", {(4, "admin1"): ""})
    _assert_located(_error(path, SelectOptions(by="admin1", strict_fronts=True)), path, 6, "admin1")
    table = read_acled_csv(path, SelectOptions(by="admin1"))
    assert table.frame[n.FRONT].tolist().count("unknown") == 1 and len(table) == 5
    assert any("1 kept row(s) (count 1) have an empty 'admin1'" in str(w) for w in table.warnings)
    assert len(read_acled_csv(path, SelectOptions(by="admin1", countries=("Syria",)))) == 2  # row not selected


def test_every_issue_is_reported_at_once(tmp_path):
    path = _variant(tmp_path, "acled_api.csv", {(1, "event_date"): "soon", (3, "fatalities"): "-2", (4, "inter1"): "9"})
    error = _error(path)
    assert [(issue.line, issue.column) for issue in error.issues] == [
        (3, "event_date"),
        (5, "fatalities"),
        (6, "inter1"),
    ]

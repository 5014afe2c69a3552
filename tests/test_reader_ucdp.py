"""Tests of the UCDP GED reader on invented fixtures (tests/fixtures/ucdp_ged_*.csv).

Both fixtures hold the same four invented events: ``ucdp_ged_49.csv`` in the 49-column
layout (GED 23.1+) with ``YYYY-MM-DD`` and ``YYYY-MM-DD HH:MM:SS`` dates, ``ucdp_ged_41.csv``
in an older 41-column layout, columns in another order, with ``YYYY-MM-DD HH:MM:SS.fff``
dates.  Data row ``i`` (0-based) is on line ``i + 2``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast import names as n
from forecast.data.csvio import RawTable, read_raw_csv
from forecast.data.options import SelectOptions
from forecast.data.panel import UNCERTAIN_END
from forecast.data.ucdp import UCDP_BY, looks_like_ucdp, read_ucdp_csv
from forecast.errors import DataValidationError

FIXTURES = Path(__file__).parent / "fixtures"
LAYOUTS = ("ucdp_ged_49.csv", "ucdp_ged_41.csv")
IDS = ["990001", "990002", "990003", "990004"]


def _ids(table) -> list[str]:
    return table.frame["id"].tolist()


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
        read_ucdp_csv(path, options)
    return info.value


def _assert_located(error: DataValidationError, path: Path, line: int, column: str) -> None:
    message = str(error)
    assert path.name in message
    assert f"line {line}" in message
    assert f"column '{column}'" in message


# --- layouts and formats ------------------------------------------------------------------


@pytest.mark.parametrize("name", LAYOUTS)
def test_both_layouts_and_every_date_form(name):
    table = read_ucdp_csv(FIXTURES / name)
    frame = table.frame
    assert _ids(table) == IDS
    assert frame[n.DATE].tolist() == pd.to_datetime(["2024-01-28", "2024-02-01", "2024-01-01", "2024-02-10"]).tolist()
    # an uncertain date is one event somewhere in its span, never a window total
    assert frame[n.END_DATE].isna().all()
    assert frame[UNCERTAIN_END].isna().tolist() == [True, False, False, True]
    assert frame[UNCERTAIN_END].iloc[1] == pd.Timestamp("2024-02-04")
    assert frame[UNCERTAIN_END].iloc[2] == pd.Timestamp("2024-01-31")
    assert frame[n.COUNT].tolist() == [1, 1, 1, 1]
    assert frame[n.FRONT].tolist() == ["Syria", "Iraq", "Syria", "Iraq"]
    assert frame[n.ORIGIN_LINE].tolist() == [2, 3, 4, 5]
    assert frame[n.SOURCE].iloc[0].startswith("Invented Wire")
    assert "date_start" not in frame.columns and "conflict_name" in frame.columns


def test_the_two_layouts_give_the_same_canonical_events():
    columns = [n.DATE, n.END_DATE, n.FRONT, n.COUNT, n.PRECISION]
    new = read_ucdp_csv(FIXTURES / "ucdp_ged_49.csv", SelectOptions(measure="deaths")).frame[columns]
    old = read_ucdp_csv(FIXTURES / "ucdp_ged_41.csv", SelectOptions(measure="deaths")).frame[columns]
    pd.testing.assert_frame_equal(new, old)


@pytest.mark.parametrize("name", LAYOUTS)
def test_measure_deaths_counts_best(name):
    frame = read_ucdp_csv(FIXTURES / name, SelectOptions(measure="deaths")).frame
    assert frame[n.COUNT].tolist() == [3, 5, 2, 1]  # the third is written "2.0"


def test_date_prec_rows_are_kept_and_flagged():
    table = read_ucdp_csv(FIXTURES / "ucdp_ged_49.csv")
    assert table.frame[n.PRECISION].tolist() == ["exact", "within_week", "within_month", "exact"]
    messages = sorted(w.message for w in table.warnings)
    assert len(messages) == 2
    assert "'within_month'" in messages[0] and "lines 4" in messages[0]
    assert "'within_week'" in messages[1] and "lines 3" in messages[1]


@pytest.mark.parametrize(
    ("code", "flag"),
    [("1.0", "exact"), ("2", "within_week"), ("3", "within_week"), ("4", "within_month"), ("5", "within_month")],
)
def test_date_prec_mapping(tmp_path, code, flag):
    path = _variant(tmp_path, "ucdp_ged_49.csv", {(0, "date_prec"): code})
    assert read_ucdp_csv(path).frame[n.PRECISION].iloc[0] == flag


# --- options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (SelectOptions(countries=("SYRIA",)), ["990001", "990003"]),
        (SelectOptions(actors=("government of",)), ["990001", "990004"]),  # side_a
        (SelectOptions(actors=("tribal", "civilians")), ["990002", "990003"]),  # side_b, any pattern
        (SelectOptions(event_types=("one-sided",)), ["990002"]),
        (SelectOptions(event_types=("1",)), ["990001", "990004"]),
        (SelectOptions(event_types=("State-Based", "non-state")), ["990001", "990003", "990004"]),
        (SelectOptions(countries=("Iraq",), event_types=("state-based",)), ["990004"]),
    ],
)
@pytest.mark.parametrize("name", LAYOUTS)
def test_filters(name, options, expected):
    assert _ids(read_ucdp_csv(FIXTURES / name, options)) == expected


@pytest.mark.parametrize(
    ("by", "fronts"),
    [
        ("country", ["Syria", "Iraq", "Syria", "Iraq"]),
        ("adm_1", ["Homs governorate", "Anbar province", "Deir ez Zor governorate", "Kirkuk province"]),
        ("side_a", ["Government of Syria", "IS", "SDF", "Government of Iraq"]),
        ("side_b", ["IS", "Civilians", "Deir ez Zor tribal forces", "IS"]),
        (
            "dyad_name",
            [
                "Government of Syria - IS",
                "IS - Civilians",
                "SDF - Deir ez Zor tribal forces",
                "Government of Iraq - IS",
            ],
        ),
        (
            "conflict_name",
            ["Syria: Government", "IS - Civilians", "SDF - Deir ez Zor tribal forces", "Iraq: Government"],
        ),
        ("type_of_violence", ["state-based", "one-sided", "non-state", "state-based"]),
    ],
)
def test_by_picks_the_front_column(by, fronts):
    assert read_ucdp_csv(FIXTURES / "ucdp_ged_41.csv", SelectOptions(by=by)).frame[n.FRONT].tolist() == fronts


def test_looks_like_ucdp():
    for name in LAYOUTS:
        assert looks_like_ucdp(read_raw_csv(FIXTURES / name).columns)
    assert not looks_like_ucdp(read_raw_csv(FIXTURES / "acled_api.csv").columns)
    assert not looks_like_ucdp(["id", "date_start", "date_end", "best"])


@settings(max_examples=20, deadline=None)
@given(order=st.permutations(range(4)))
def test_row_order_does_not_change_the_events(order):
    table = read_raw_csv(FIXTURES / "ucdp_ged_49.csv")
    shuffled = RawTable(
        file=table.file,
        columns=table.columns,
        frame=table.frame.iloc[list(order)].reset_index(drop=True),
        lines=table.lines[list(order)],
    )
    options = SelectOptions(measure="deaths", by="side_a")
    expected = read_ucdp_csv(table.file, options, table=table).frame
    got = read_ucdp_csv(table.file, options, table=shuffled).frame
    got = got.sort_values(n.ORIGIN_LINE).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)


# --- validation errors --------------------------------------------------------------------


@pytest.mark.parametrize("column", ["date_start", "date_end"])
@pytest.mark.parametrize("cell", ["2024-02-30", "01/02/2024", "2024-02-01T00:00:00", ""])
def test_unparseable_date(tmp_path, column, cell):
    path = _variant(tmp_path, "ucdp_ged_49.csv", {(2, column): cell})
    _assert_located(_error(path), path, 4, column)


def test_date_end_before_date_start(tmp_path):
    path = _variant(tmp_path, "ucdp_ged_41.csv", {(1, "date_end"): "2024-01-30 00:00:00.000"})
    error = _error(path)
    _assert_located(error, path, 3, "date_end")
    assert "before" in str(error)


@pytest.mark.parametrize("cell", ["-1", "2.5", "a few", ""])
def test_bad_best(tmp_path, cell):
    path = _variant(tmp_path, "ucdp_ged_49.csv", {(3, "best"): cell})
    _assert_located(_error(path, SelectOptions(measure="deaths")), path, 5, "best")


@pytest.mark.parametrize(
    ("column", "cell"), [("type_of_violence", "4"), ("type_of_violence", "state-based"), ("date_prec", "6")]
)
def test_bad_codes(tmp_path, column, cell):
    path = _variant(tmp_path, "ucdp_ged_49.csv", {(0, column): cell})
    _assert_located(_error(path), path, 2, column)


def test_duplicate_ids_name_both_lines(tmp_path):
    path = _variant(tmp_path, "ucdp_ged_49.csv", {(2, "id"): "990001"})
    error = _error(path)
    _assert_located(error, path, 4, "id")
    assert "also on line 2" in str(error)


def test_unknown_by_lists_the_allowed_values():
    path = FIXTURES / "ucdp_ged_49.csv"
    message = str(_error(path, SelectOptions(by="region")))
    assert path.name in message and "by='region'" in message
    assert str(list(UCDP_BY)) in message


def test_unknown_event_type_lists_the_allowed_values():
    message = str(_error(FIXTURES / "ucdp_ged_49.csv", SelectOptions(event_types=("Battles",))))
    assert "ucdp_ged_49.csv" in message and "'Battles'" in message and "'one-sided'" in message


def test_sub_event_types_are_refused():
    message = str(_error(FIXTURES / "ucdp_ged_49.csv", SelectOptions(sub_event_types=("Armed clash",))))
    assert "ucdp_ged_49.csv" in message and "sub-event" in message


@pytest.mark.parametrize(
    ("dropped", "options"),
    [
        ("best", SelectOptions(measure="deaths")),
        ("side_b", SelectOptions(actors=("IS",))),
        ("adm_1", SelectOptions(by="adm_1")),
        ("date_end", SelectOptions()),  # always required
    ],
)
def test_missing_column_required_by_an_option(tmp_path, dropped, options):
    path = _variant(tmp_path, "ucdp_ged_49.csv", drop=(dropped,))
    error = _error(path, options)
    _assert_located(error, path, 1, dropped)
    assert "found [" in str(error)


def test_empty_selection_names_the_options():
    path = FIXTURES / "ucdp_ged_49.csv"
    message = str(_error(path, SelectOptions(countries=("Iraq",), event_types=("non-state",))))
    assert path.name in message and "no rows" in message
    assert "countries=['Iraq']" in message and "event_types=['non-state']" in message


def test_every_issue_is_reported_at_once(tmp_path):
    edits = {(0, "date_start"): "someday", (1, "date_end"): "2024-01-01", (3, "id"): "990003"}
    error = _error(_variant(tmp_path, "ucdp_ged_49.csv", edits))
    assert [(issue.line, issue.column) for issue in error.issues] == [(2, "date_start"), (3, "date_end"), (5, "id")]

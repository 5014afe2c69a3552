"""The canonical events reader: parsing, defaults and every validation error."""

from __future__ import annotations

import pandas as pd
import pytest

from forecast import names as n
from forecast.data.events import read_events_csv
from forecast.errors import DataValidationError


def problems(path) -> list[str]:
    with pytest.raises(DataValidationError) as info:
        read_events_csv(path)
    return [str(issue) for issue in info.value.issues]


def test_reads_rows_with_defaults_and_keeps_extra_columns(write_csv):
    path = write_csv("date,front,note\n2024-01-02,iraq,first\n2024-01-02,syria,\n")
    table = read_events_csv(path)
    frame = table.frame
    assert frame[n.COUNT].tolist() == [1, 1]
    assert frame[n.PRECISION].tolist() == ["exact", "exact"]
    assert frame[n.END_DATE].isna().all()
    assert frame["note"].tolist() == ["first", ""]
    assert frame[n.ORIGIN_LINE].tolist() == [2, 3]
    assert table.files == (str(path),)


def test_integer_counts_written_as_floats_are_accepted(write_csv):
    table = read_events_csv(write_csv("date,front,count\n2024-01-02,gaza,436.0\n"))
    assert table.frame[n.COUNT].tolist() == [436]


def test_window_rows_keep_their_end_even_when_one_day_long(write_csv):
    path = write_csv("date,front,count,end_date\n2024-01-01,iraq,5,2024-01-07\n2024-01-08,iraq,1,2024-01-08\n")
    frame = read_events_csv(path).frame
    assert frame[n.END_DATE].tolist() == [pd.Timestamp("2024-01-07"), pd.Timestamp("2024-01-08")]


@pytest.mark.parametrize(
    ("row", "column", "fragment"),
    [
        ("2024-02-30,iraq,1,", "date", "cannot parse '2024-02-30'"),
        ("02/01/2024,iraq,1,", "date", "expected YYYY-MM-DD"),
        (",iraq,1,", "date", "the date is empty"),
        ("2024-01-01,iraq,-2,", "count", "negative count"),
        ("2024-01-01,iraq,2.5,", "count", "non-integer count"),
        ("2024-01-01,iraq,many,", "count", "cannot parse 'many'"),
        ("2024-01-05,iraq,3,2024-01-01", "end_date", "is before date"),
        ("2024-01-01,,3,", "front", "the front is empty"),
    ],
)
def test_each_bad_cell_is_reported_with_file_line_and_column(write_csv, row, column, fragment):
    path = write_csv(f"date,front,count,end_date\n2024-01-01,iraq,1,\n{row}\n")
    (message,) = problems(path)
    assert str(path) in message
    assert "line 3" in message
    assert f"column '{column}'" in message
    assert fragment in message


def test_all_problems_of_a_file_are_reported_together(write_csv):
    path = write_csv("date,front,count\nbad,iraq,1\n2024-01-01,iraq,-1\n2024-01-01,,1\n")
    found = problems(path)
    assert len(found) == 3
    assert ["line 2" in found[0], "line 3" in found[1], "line 4" in found[2]] == [True, True, True]


def test_unknown_precision_lists_the_allowed_flags(write_csv):
    (message,) = problems(write_csv("date,front,precision\n2024-01-01,iraq,roughly\n"))
    assert "unknown precision 'roughly'" in message and "at_least" in message


def test_missing_required_column_names_what_was_found(write_csv):
    (message,) = problems(write_csv("day,front\n2024-01-01,iraq\n"))
    assert "missing required column" in message and "'date'" in message and "found ['day', 'front']" in message


def test_empty_file_and_header_only_file_are_errors(write_csv):
    assert "empty" in problems(write_csv("", "empty.csv"))[0]
    assert "no rows" in problems(write_csv("date,front\n", "header.csv"))[0]


def test_missing_file_is_a_clear_error(tmp_path):
    (message,) = problems(tmp_path / "absent.csv")
    assert "absent.csv" in message and "cannot open" in message


def test_rows_with_more_cells_than_header_are_errors(write_csv):
    (message,) = problems(write_csv("date,front\n2024-01-01,iraq,extra\n"))
    assert "line 2" in message and "3 cells" in message


def test_line_numbers_follow_multiline_quoted_cells(write_csv):
    path = write_csv('date,front,source\n2024-01-01,iraq,"two\nlines"\nnot-a-date,iraq,x\n')
    (message,) = problems(path)
    assert "line 4" in message


def test_low_precision_rows_are_kept_and_warned(write_csv):
    table = read_events_csv(write_csv("date,front,precision\n2024-01-01,iraq,within_week\n2024-01-02,iraq,\n"))
    assert len(table.frame) == 2
    (warning,) = table.warnings
    assert "within_week" in str(warning) and "kept" in str(warning)

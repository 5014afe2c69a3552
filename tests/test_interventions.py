"""The interventions reader: shapes, defaults, multi-front rows and validation."""

from __future__ import annotations

import pandas as pd
import pytest

from forecast import names as n
from forecast.data.interventions import read_interventions_csv
from forecast.errors import DataValidationError

HEADER = "date,end_date,kind,shape,front,label,source\n"


def test_shapes_default_from_end_date_and_fronts_split_on_semicolons(write_csv):
    path = write_csv(
        HEADER
        + "2023-10-27,,strike,,syria,,u1\n"
        + "2023-11-24,2023-11-30,truce,,,Gaza truce,u2\n"
        + "2024-01-30,,announcement,step,iraq; syria,KH suspension,u3\n"
    )
    table = read_interventions_csv(path)
    frame = table.frame
    assert frame[n.SHAPE].tolist() == ["pulse", "window", "step"]
    assert frame[n.FRONT].tolist() == [("syria",), (), ("iraq", "syria")]
    assert frame[n.LABEL].tolist() == ["strike 2023-10-27", "Gaza truce", "KH suspension"]
    assert frame[n.END_DATE].iloc[1] == pd.Timestamp("2023-11-30")
    applies = table.applies_to(["iraq", "syria", "gaza"])
    assert applies.tolist() == [[False, True, False], [True, True, True], [True, True, False]]


def test_fronts_not_in_the_events_are_reported(write_csv):
    table = read_interventions_csv(write_csv(HEADER + "2024-01-01,,strike,,yemen,,\n"))
    with pytest.raises(DataValidationError, match="front 'yemen' is not in the events"):
        table.check_fronts(["iraq", "syria"])


def test_before_keeps_only_interventions_known_at_as_of(write_csv):
    table = read_interventions_csv(write_csv(HEADER + "2024-01-01,,strike,,,a,\n2024-02-01,,strike,,,b,\n"))
    assert table.before(pd.Timestamp("2024-01-15")).labels == ["a"]


@pytest.mark.parametrize(
    ("row", "column", "fragment"),
    [
        ("2024-01-01,,strike,bump,,,", "shape", "unknown shape 'bump'"),
        ("2024-01-01,,truce,window,,,", "end_date", "a window needs an end_date"),
        ("2024-01-01,2024-01-05,strike,pulse,,,", "end_date", "only a window has an end"),
        ("2024-01-05,2024-01-01,truce,window,,,", "end_date", "is before date"),
        ("2024-01-01,,,pulse,,,", "kind", "the kind is empty"),
        ("yesterday,,strike,,,,", "date", "cannot parse 'yesterday'"),
        ("2024-01-01,,strike,,iraq;iraq,,", "front", "named twice"),
    ],
)
def test_each_bad_row_is_reported_with_file_line_and_column(write_csv, row, column, fragment):
    path = write_csv(HEADER + row + "\n")
    with pytest.raises(DataValidationError) as info:
        read_interventions_csv(path)
    (issue,) = info.value.issues
    assert (issue.file, issue.line, issue.column) == (str(path), 2, column)
    assert fragment in issue.message


def test_duplicate_labels_are_an_error(write_csv):
    path = write_csv(HEADER + "2024-01-01,,strike,,iraq,,\n2024-01-01,,strike,,syria,,\n")
    with pytest.raises(DataValidationError, match="label 'strike 2024-01-01' is used on lines 2, 3"):
        read_interventions_csv(path)

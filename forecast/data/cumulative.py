"""Running totals turned into window totals.

Press briefings give a **cumulative** count at irregular statement dates ("55 attacks since
17 October").  The count between two consecutive statements is the total over the days in
between; nothing is known about the days inside a window.  :func:`cumulative_to_windows`
makes that explicit by turning a running total into rows of the canonical events table
(:mod:`forecast.data.events`), each row a total over ``date..end_date`` inclusive:

* the first window runs from ``start`` (the day counting began, inclusive) to the first
  statement date, and its count is the first total;
* every later window runs from the day after the previous statement to the statement date,
  and its count is the difference between the two totals.

Because statement dates must increase strictly, every window is at least one day long and the
windows of one series are contiguous: together they cover ``start`` .. last statement date
with neither gap nor overlap, and their counts add up to the last total.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecast import names as n
from forecast.data.events import PRECISIONS
from forecast.data.parse import parse_counts, parse_dates
from forecast.errors import DataValidationError, Issue

#: Column order of the frame returned by :func:`cumulative_to_windows`.
WINDOW_COLUMNS = [n.DATE, n.END_DATE, n.FRONT, n.COUNT, n.PRECISION, n.SOURCE]

_ONE_DAY = pd.Timedelta(days=1)


def cumulative_to_windows(
    frame: pd.DataFrame,
    *,
    date_col: str,
    total_col: str,
    front: str,
    start: str | dt.date | pd.Timestamp,
    precision_col: str | None = None,
    source_col: str | None = None,
    file: str = "<memory>",
    lines: Sequence[int] | np.ndarray | None = None,
) -> pd.DataFrame:
    """Convert a cumulative running total into window totals in the canonical events format.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per statement, in date order.  ``date_col`` holds ISO ``YYYY-MM-DD`` text or
        datetimes; ``total_col`` holds the running total as whole numbers (``"55"``,
        ``"55.0"`` or numbers).  The frame is not modified.
    date_col : str
        Column with the date the total refers to (the last day it counts).
    total_col : str
        Column with the running total since ``start``.
    front : str
        Front written on every output row.
    start : str, datetime.date or pandas.Timestamp
        The day counting began, inclusive: the first window starts here.
    precision_col : str, optional
        Column with a canonical precision flag per statement (one of
        :data:`forecast.data.events.PRECISIONS`; empty means ``exact``).  Map source-specific
        flags to canonical ones before calling.  Without it every window is ``exact``.
    source_col : str, optional
        Column with the origin of each statement (a URL); copied to the window the statement
        closes.  Without it ``source`` is empty.
    file : str, default ``"<memory>"``
        Name used in error messages.
    lines : sequence of int, optional
        1-based line in ``file`` of each row of ``frame`` (the header is line 1).  Without it,
        row ``i`` is taken to be on line ``i + 2``.

    Returns
    -------
    pandas.DataFrame
        One row per statement, columns :data:`WINDOW_COLUMNS`: ``date`` and ``end_date``
        (datetime64, the window's first and last day, inclusive), ``front``, ``count``
        (int64, the increment over the window), ``precision`` and ``source`` (text).

    Raises
    ------
    DataValidationError
        Listing, with file, line and column, every empty, non-integer or negative total, every
        unparsable date, every date that is not strictly after the previous one, every total
        smaller than the previous one, a first date before ``start``, and unknown precision
        flags.

    Notes
    -----
    *Empty totals are an error here.*  A statement without a total (a dated event in the same
    file, say) carries no count, so skipping it is the caller's decision: drop those rows
    before calling.

    *Precision is a simplification.*  Each window takes the flag of its **closing**
    statement.  An ``at_least`` closing total therefore makes the increment a lower bound,
    which is what the flag says; but an ``at_least`` total also *opens* the next window, and
    the next increment may then be overstated.  That second effect is not recorded.  The same
    holds for ``approx``: only the closing statement's flag is kept.
    """
    row_lines = _row_lines(frame, lines)
    dates, issues = _parse_statement_dates(frame[date_col], file=file, lines=row_lines, column=date_col)
    totals, found = parse_counts(_as_text(frame[total_col]), file=file, lines=row_lines, column=total_col)
    issues += found
    precision, found = _parse_precision(frame, precision_col, file=file, lines=row_lines)
    issues += found
    bad_total = {issue.line for issue in issues if issue.column == total_col}
    bad_date = {issue.line for issue in issues if issue.column == date_col}
    first_day = pd.Timestamp(start).normalize()

    previous_date: pd.Timestamp | None = None
    previous_total: int | None = None
    previous_line: int | None = None
    for position in range(len(frame)):
        line = int(row_lines[position])
        date = dates.iloc[position]
        total = int(totals.iloc[position])
        if line not in bad_date:
            if previous_date is None and date < first_day:
                issues.append(
                    Issue(
                        file, line, date_col, f"date {date.date()} is before the start of counting {first_day.date()}"
                    )
                )
            elif previous_date is not None and date <= previous_date:
                issues.append(
                    Issue(
                        file,
                        line,
                        date_col,
                        f"dates must increase strictly: {date.date()} is not after {previous_date.date()} "
                        f"(line {previous_line})",
                    )
                )
            previous_date = date
        if line not in bad_total:
            if previous_total is not None and total < previous_total:
                issues.append(
                    Issue(
                        file,
                        line,
                        total_col,
                        f"the running total decreases from {previous_total} to {total}; a cumulative count "
                        "cannot go down",
                    )
                )
            previous_total = total
        previous_line = line
    if issues:
        raise DataValidationError(issues)

    closing = pd.DatetimeIndex(dates.to_numpy(dtype="datetime64[ns]"))
    opening = pd.DatetimeIndex([first_day]).append(closing[:-1] + _ONE_DAY) if len(closing) else closing
    counts = np.diff(totals.to_numpy(dtype=np.int64), prepend=0)
    source = _as_text(frame[source_col]) if source_col is not None else pd.Series("", index=frame.index)
    return pd.DataFrame(
        {
            n.DATE: opening.to_numpy(dtype="datetime64[ns]"),
            n.END_DATE: closing.to_numpy(dtype="datetime64[ns]"),
            n.FRONT: np.full(len(frame), front, dtype=object),
            n.COUNT: counts.astype(np.int64),
            n.PRECISION: precision.to_numpy(dtype=object),
            n.SOURCE: source.to_numpy(dtype=object),
        },
        columns=WINDOW_COLUMNS,
    )


def _row_lines(frame: pd.DataFrame, lines: Sequence[int] | np.ndarray | None) -> np.ndarray:
    if lines is None:
        return np.arange(2, len(frame) + 2, dtype=np.int64)
    row_lines = np.asarray(lines, dtype=np.int64)
    if len(row_lines) != len(frame):
        raise ValueError(f"lines has {len(row_lines)} entries but the frame has {len(frame)} rows")
    return row_lines


def _as_text(values: pd.Series) -> pd.Series:
    """Cells as stripped text, missing values as ``""`` (so parsers report them as empty)."""
    return values.map(lambda value: "" if pd.isna(value) else str(value).strip())


def _parse_statement_dates(
    values: pd.Series, *, file: str, lines: np.ndarray, column: str
) -> tuple[pd.Series, list[Issue]]:
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.Series(pd.to_datetime(values).dt.normalize().to_numpy(dtype="datetime64[ns]"), index=values.index)
        issues = [Issue(file, int(lines[i]), column, "the date is empty") for i in np.flatnonzero(parsed.isna())]
        return parsed, issues
    return parse_dates(_as_text(values), file=file, lines=lines, column=column)


def _parse_precision(
    frame: pd.DataFrame, precision_col: str | None, *, file: str, lines: np.ndarray
) -> tuple[pd.Series, list[Issue]]:
    if precision_col is None:
        return pd.Series(n.PRECISION_EXACT, index=frame.index, dtype=object), []
    text = _as_text(frame[precision_col])
    flags = text.where(text != "", n.PRECISION_EXACT)
    issues = [
        Issue(file, int(lines[i]), precision_col, f"unknown precision {flags.iloc[i]!r}; allowed: {list(PRECISIONS)}")
        for i in np.flatnonzero((~flags.isin(PRECISIONS)).to_numpy())
    ]
    return flags, issues

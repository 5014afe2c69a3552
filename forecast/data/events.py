"""The canonical events table and its CSV reader.

Canonical events CSV (a contract; later layers rely on these names):

``date``
    ISO ``YYYY-MM-DD``, required.
``front``
    Text naming the series the row belongs to (``iraq``, ``lebanon_rockets``...), required.
``count``
    Integer >= 0, optional, default 1 (one row per event).
``end_date``
    Optional.  When present and after ``date`` the row is a **total over the window**
    ``date..end_date`` inclusive (as in running totals from press briefings).
``precision``
    Optional flag: ``exact`` (default), ``at_least`` (a lower bound: censored from below),
    ``approx``, ``approx_date``, ``within_week``, ``within_month``, or ``not_observed``: a
    **declared gap**, "the front was not observed from ``date`` to ``end_date``" (one day
    without ``end_date``; ``count`` is ignored).  See :mod:`forecast.data.panel`.
``source``
    Optional text.

Other columns are kept and ignored.  Every row remembers its file and line
(``origin_file``, ``origin_line``) so that later checks can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forecast import names as n
from forecast.data.csvio import RawTable, read_raw_csv, require_columns
from forecast.data.parse import parse_counts, parse_dates, stripped_text
from forecast.errors import DataValidationError, Issue

#: ``precision`` of a declared gap row (see the module docstring).
PRECISION_NOT_OBSERVED = "not_observed"
PRECISIONS = (
    n.PRECISION_EXACT,
    n.PRECISION_AT_LEAST,
    n.PRECISION_APPROX,
    n.PRECISION_APPROX_DATE,
    n.PRECISION_WEEK,
    n.PRECISION_MONTH,
    PRECISION_NOT_OBSERVED,
)

#: Column order of the canonical in-memory events table.
EVENT_COLUMNS = [n.DATE, n.END_DATE, n.FRONT, n.COUNT, n.PRECISION, n.SOURCE, n.ORIGIN_FILE, n.ORIGIN_LINE]


@dataclass(frozen=True)
class EventTable:
    """Validated events from one or more files, in input order.

    Attributes
    ----------
    frame : pandas.DataFrame
        Columns :data:`EVENT_COLUMNS` first (``date`` and ``end_date`` as datetime64, where
        ``end_date`` is NaT for single-day rows; ``count`` int64), then any extra input
        columns.
    warnings : tuple of Issue
        Things the user should know that are not errors (low-precision dates, ...).
    files : tuple of str
        The files read, in order.
    """

    frame: pd.DataFrame
    warnings: tuple[Issue, ...] = field(default_factory=tuple)
    files: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def fronts(self) -> list[str]:
        return sorted(self.frame[n.FRONT].unique().tolist())


def make_event_frame(
    *,
    dates: pd.Series,
    end_dates: pd.Series,
    fronts: pd.Series,
    counts: pd.Series,
    precision: pd.Series,
    source: pd.Series,
    file: str,
    lines: np.ndarray,
    extra: pd.DataFrame | None = None,
    one_day_windows: bool = False,
) -> pd.DataFrame:
    """Assemble a canonical frame (every reader ends here, so the layout is defined once).

    With ``one_day_windows=False`` (event exports such as UCDP, whose single-day events carry
    ``date_end == date_start``) a row ending on its start day is a plain event row.  The
    canonical reader passes True: there an explicit ``end_date`` always marks a reported total,
    observed over its window only, even when the window is one day long.
    """
    end = pd.to_datetime(end_dates)
    start = pd.to_datetime(dates)
    if not one_day_windows:
        end = end.where(end != start)
    frame = pd.DataFrame(
        {
            n.DATE: start.to_numpy(dtype="datetime64[ns]"),
            n.END_DATE: end.to_numpy(dtype="datetime64[ns]"),
            n.FRONT: _shared_names(fronts),
            n.COUNT: counts.to_numpy(dtype=np.int64),
            n.PRECISION: precision.astype(str).to_numpy(dtype=object),
            n.SOURCE: source.astype(str).to_numpy(dtype=object),
            n.ORIGIN_FILE: file,
            n.ORIGIN_LINE: np.asarray(lines, dtype=np.int64),
        }
    )
    if extra is not None:
        for column in extra.columns:
            if column not in frame.columns:
                frame[column] = extra[column].to_numpy()
    return frame


def _shared_names(names: pd.Series) -> np.ndarray:
    """The names as an object array in which equal names are one string object.

    A reader makes one string per cell; a million rows of a thousand fronts then hold a
    million strings where a thousand do.
    """
    codes, uniques = pd.factorize(names.astype(str), sort=False)
    return np.asarray(uniques, dtype=object)[codes]


def check_windows(frame: pd.DataFrame, file: str, lines: np.ndarray, column: str = n.END_DATE) -> list[Issue]:
    """Issues for rows whose ``end_date`` is before ``date``."""
    bad = (frame[n.END_DATE].notna() & (frame[n.END_DATE] < frame[n.DATE])).to_numpy()
    return [
        Issue(
            file,
            int(lines[i]),
            column,
            f"end_date {frame[n.END_DATE].iloc[i].date()} is before date {frame[n.DATE].iloc[i].date()}",
        )
        for i in np.flatnonzero(bad)
    ]


def read_events_csv(path: str | Path, *, table: RawTable | None = None) -> EventTable:
    """Read and validate a canonical events CSV.

    Raises
    ------
    DataValidationError
        Listing every bad cell with its file, line and column.
    """
    table = table or read_raw_csv(path)
    require_columns(table, [n.DATE, n.FRONT], "a canonical events file")
    raw, file, lines = table.frame, table.file, table.lines
    issues: list[Issue] = []
    dates, found = parse_dates(raw[n.DATE], file=file, lines=lines, column=n.DATE, stripped=True)
    issues += found
    if n.END_DATE in raw:
        end_dates, found = parse_dates(
            raw[n.END_DATE], file=file, lines=lines, column=n.END_DATE, required=False, stripped=True
        )
        issues += found
    else:
        end_dates = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    if n.COUNT in raw:
        counts, found = parse_counts(raw[n.COUNT], file=file, lines=lines, column=n.COUNT, default=1, stripped=True)
        issues += found
    else:
        counts = pd.Series(1, index=raw.index, dtype="int64")
    fronts = stripped_text(raw[n.FRONT], stripped=True)
    if not all(fronts.to_numpy()):
        for i in np.flatnonzero((fronts == "").to_numpy()):
            issues.append(Issue(file, int(lines[i]), n.FRONT, "the front is empty"))
    if n.PRECISION in raw:
        precision = raw[n.PRECISION].astype(str).str.strip().replace("", n.PRECISION_EXACT)
        for i in np.flatnonzero((~precision.isin(PRECISIONS)).to_numpy()):
            issues.append(
                Issue(
                    file,
                    int(lines[i]),
                    n.PRECISION,
                    f"unknown precision {precision.iloc[i]!r}; allowed: {list(PRECISIONS)}",
                )
            )
    else:
        precision = pd.Series(n.PRECISION_EXACT, index=raw.index)
    source = raw[n.SOURCE] if n.SOURCE in raw else pd.Series("", index=raw.index)
    extra = raw.drop(columns=[c for c in raw.columns if c in EVENT_COLUMNS])
    frame = make_event_frame(
        dates=dates,
        end_dates=end_dates,
        fronts=fronts,
        counts=counts,
        precision=precision,
        source=source,
        file=file,
        lines=lines,
        extra=extra,
        one_day_windows=True,
    )
    issues += check_windows(frame, file, lines)
    if issues:
        raise DataValidationError(issues)
    if frame.empty:
        raise DataValidationError(Issue(file, None, None, "the file has a header but no rows"))
    warnings = tuple(low_precision_warnings(frame))
    return EventTable(frame=frame, warnings=warnings, files=(file,))


def low_precision_warnings(frame: pd.DataFrame) -> list[Issue]:
    """One warning per file for rows whose date is known only to within a week or a month."""
    low = frame[frame[n.PRECISION].isin([n.PRECISION_WEEK, n.PRECISION_MONTH, n.PRECISION_APPROX_DATE])]
    out = []
    for (file, flag), rows in low.groupby([n.ORIGIN_FILE, n.PRECISION], sort=True):
        lines = rows[n.ORIGIN_LINE].tolist()
        shown = ", ".join(str(x) for x in lines[:10]) + (" ..." if len(lines) > 10 else "")
        out.append(Issue(str(file), None, n.PRECISION, f"{len(lines)} row(s) flagged {flag!r} are kept; lines {shown}"))
    return out


def concat_events(tables: list[EventTable]) -> EventTable:
    """Join event tables from several files, keeping file order then row order."""
    if not tables:
        raise DataValidationError(Issue("<none>", None, None, "no event files were given"))
    frame = pd.concat([t.frame for t in tables], ignore_index=True, sort=False)
    warnings = tuple(w for t in tables for w in t.warnings)
    files = tuple(f for t in tables for f in t.files)
    return EventTable(frame=frame, warnings=warnings, files=files)

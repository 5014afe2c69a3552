"""Logic shared by the readers of external exports (ACLED, UCDP GED).

Each reader parses its own columns; what they have in common lives here, written once:
checking the options (``by``, ``measure``), the columns an option needs, integer precision
codes turned into precision flags, case-insensitive filters (equality and actor
substrings), duplicate identifiers, and the last steps that apply the selection and refuse
an empty one.

Every reader validates **every row of the file** (a bad cell is a bad input even in a row
the selection drops), then applies the selection, then checks the ``front`` of the rows it
keeps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from forecast import names as n
from forecast.data.csvio import RawTable, require_columns
from forecast.data.events import EventTable, low_precision_warnings
from forecast.data.options import MEASURE_DEATHS, MEASURE_EVENTS, UNKNOWN_FRONT, SelectOptions
from forecast.data.parse import parse_int_codes
from forecast.errors import DataValidationError, Issue

MEASURES = (MEASURE_EVENTS, MEASURE_DEATHS)


def resolve_by(by: str | None, allowed: Sequence[str], *, file: str, what: str) -> str:
    """Return the column that names the front: ``by``, or ``allowed[0]`` when ``by`` is None.

    Raises
    ------
    DataValidationError
        If ``by`` is not one of ``allowed``; the message lists the allowed values.
    """
    if by is None:
        return allowed[0]
    if by not in allowed:
        raise DataValidationError(
            Issue(file, None, None, f"option by={by!r} is not allowed for {what}; allowed: {list(allowed)}")
        )
    return by


def check_measure(measure: str, *, file: str) -> None:
    """Refuse a ``measure`` other than ``events`` or ``deaths``, listing the allowed ones."""
    if measure not in MEASURES:
        raise DataValidationError(
            Issue(file, None, None, f"option measure={measure!r} is not allowed; allowed: {list(MEASURES)}")
        )


def require_option_columns(table: RawTable, needs: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Check the header for the columns each reason needs (``[(reason, columns), ...]``).

    The error (from :func:`~forecast.data.csvio.require_columns`) names the file, line 1,
    the missing column(s), the reason they are needed and the columns that were found.
    """
    for reason, columns in needs:
        require_columns(table, list(columns), reason)


def text_column(raw: pd.DataFrame, column: str) -> pd.Series:
    """The stripped text of ``column``, or empty strings when the file lacks it."""
    if column not in raw:
        return pd.Series("", index=raw.index, dtype=object)
    return raw[column].astype(str).str.strip()


def precision_flags(
    raw: pd.DataFrame,
    column: str,
    flags: Mapping[int, str],
    *,
    file: str,
    lines: np.ndarray,
) -> tuple[pd.Series, pd.Series | None, list[Issue]]:
    """Map integer precision codes (``2`` or ``2.0``) in ``column`` to precision flags.

    A missing column or an empty cell means ``exact``; a code not in ``flags`` is an issue.

    Returns
    -------
    flags : pandas.Series
        One precision flag per row.
    codes : pandas.Series or None
        The parsed codes (``Int64``), or None when the file lacks the column.
    issues : list of Issue
    """
    exact = pd.Series(n.PRECISION_EXACT, index=raw.index, dtype=object)
    if column not in raw:
        return exact, None, []
    codes, issues = parse_int_codes(raw[column], file=file, lines=lines, column=column, allowed=sorted(flags))
    mapped = [flags.get(int(code), n.PRECISION_EXACT) if pd.notna(code) else n.PRECISION_EXACT for code in codes]
    return pd.Series(mapped, index=raw.index, dtype=object), codes, issues


def equals_any(values: pd.Series, wanted: Sequence[str]) -> np.ndarray:
    """Rows whose text equals one of ``wanted``, ignoring case and surrounding spaces.

    An empty ``wanted`` keeps every row.
    """
    if not wanted:
        return np.ones(len(values), dtype=bool)
    folded = {w.strip().casefold() for w in wanted}
    return values.astype(str).str.strip().str.casefold().isin(folded).to_numpy()


def contains_any(raw: pd.DataFrame, columns: Sequence[str], patterns: Sequence[str]) -> np.ndarray:
    """Rows where any pattern occurs (case-insensitive substring) in any of ``columns``.

    Columns absent from ``raw`` are skipped; an empty ``patterns`` keeps every row.
    """
    if not patterns:
        return np.ones(len(raw), dtype=bool)
    folded = [p.strip().casefold() for p in patterns]
    keep = np.zeros(len(raw), dtype=bool)
    for column in columns:
        if column not in raw:
            continue
        text = raw[column].astype(str).str.casefold()
        for pattern in folded:
            keep |= text.str.contains(pattern, regex=False).to_numpy()
    return keep


def duplicate_id_issues(values: pd.Series, *, file: str, lines: np.ndarray, column: str) -> list[Issue]:
    """Issues for empty identifiers and for each repeat of an identifier, naming both lines."""
    issues: list[Issue] = []
    first_line: dict[str, int] = {}
    for position, cell in enumerate(values.astype(str).str.strip().to_numpy()):
        line = int(lines[position])
        if cell == "":
            issues.append(Issue(file, line, column, "the identifier is empty"))
        elif cell in first_line:
            issues.append(Issue(file, line, column, f"duplicate identifier {cell!r}: also on line {first_line[cell]}"))
        else:
            first_line[cell] = line
    return issues


def describe_selection(options: SelectOptions, by: str) -> str:
    """The options in words, for messages: ``countries=['Iraq'], measure='events', by='country'``."""
    parts = [
        f"{name}={list(value)}"
        for name, value in (
            ("countries", options.countries),
            ("event_types", options.event_types),
            ("sub_event_types", options.sub_event_types),
            ("actors", options.actors),
        )
        if value
    ]
    parts += [f"measure={options.measure!r}", f"by={by!r}"]
    return ", ".join(parts)


def select_rows(
    frame: pd.DataFrame, keep: np.ndarray, *, file: str, options: SelectOptions, by: str
) -> tuple[pd.DataFrame, list[Issue]]:
    """Keep the selected rows of a canonical frame.

    Kept rows whose front (the ``by`` column) is empty get the front
    :data:`~forecast.data.options.UNKNOWN_FRONT`, and one warning counts them.

    Raises
    ------
    DataValidationError
        If the file has no rows, if the selection leaves none (naming the options used), or,
        with ``options.strict_fronts``, if a kept row has an empty front (naming its line and
        the ``by`` column).
    """
    if frame.empty:
        raise DataValidationError(Issue(file, None, None, "the file has a header but no rows"))
    if not keep.any():
        raise DataValidationError(
            Issue(
                file,
                None,
                None,
                f"the selection leaves no rows of {len(frame)}; options used: {describe_selection(options, by)}",
            )
        )
    kept = frame.loc[keep].reset_index(drop=True)
    empty = np.flatnonzero((kept[n.FRONT].astype(str).str.strip() == "").to_numpy())
    if len(empty) and options.strict_fronts:
        raise DataValidationError(
            [Issue(file, int(kept[n.ORIGIN_LINE].iloc[i]), by, f"the front column {by!r} is empty") for i in empty]
        )
    warnings = []
    if len(empty):
        kept.loc[kept.index[empty], n.FRONT] = UNKNOWN_FRONT
        lines = kept[n.ORIGIN_LINE].iloc[empty].tolist()
        shown = ", ".join(str(x) for x in lines[:10]) + (" ..." if len(lines) > 10 else "")
        warnings.append(
            Issue(
                file,
                None,
                by,
                f"{len(empty)} kept row(s) (count {int(kept[n.COUNT].iloc[empty].sum())}) have an empty {by!r}: they "
                f"form the front {UNKNOWN_FRONT!r} (lines {shown}; --strict-fronts makes this an error)",
            )
        )
    return kept, warnings


def event_table(frame: pd.DataFrame, file: str, warnings: Sequence[Issue] = ()) -> EventTable:
    """Wrap a validated canonical frame, with its low-precision warnings and ``warnings``."""
    return EventTable(frame=frame, warnings=(*warnings, *low_precision_warnings(frame)), files=(file,))

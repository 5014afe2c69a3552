"""Reader for ACLED exports (API, export tool and older downloads) into an :class:`EventTable`.

An ACLED export has one row per event and is read **by column name**, never by position,
so the 31-column layout of current exports and the legacy layout (with ``data_id``,
``event_id_no_cnty``, ``iso3``; without ``disorder_type``, ``civilian_targeting``, ``tags``)
are both accepted.  The columns used are:

``event_id_cnty``
    The event identifier, required and unique.
``event_date``
    Required; ``2024-02-02`` (API), ``02 February 2024`` (export tool), ``02-02-2024`` or
    ``02/02/2024`` (older exports; always day first).
``event_type``, ``country``
    Required.  ``sub_event_type``, ``admin1`` and the actor columns (``actor1``, ``actor2``,
    ``assoc_actor_1``, ``assoc_actor_2``) are required only by the options that use them.
``time_precision``
    Optional: ``1`` exact day, ``2`` within a week (flag ``within_week``), ``3`` within a
    month (flag ``within_month``).  Low-precision rows are kept and listed in the warnings.
    Such an event is **one event with an uncertain date**, placed by the panel like a UCDP
    event with a span (:mod:`forecast.data.panel`).  The span is an assumption of this
    reader, documented here: for ``2``, ``event_date`` plus or minus :data:`WEEK_HALF_SPAN`
    days (the week around the coded day; ``--uncertain-dates middle`` then keeps
    ``event_date`` itself); for ``3``, the calendar month of ``event_date``.  The row gets
    ``date`` = the span's first day and the extra column ``uncertain_end`` = its last.
``fatalities``
    Integer >= 0 (``3.0`` accepted); required when ``measure`` is ``deaths``.
``inter1``, ``inter2``, ``interaction``
    Optional actor-type codes, as integers in older exports (``1`` or ``1.0``) and as text
    in newer ones.  Both are normalised to the text labels of current exports, see
    :data:`ACTOR_TYPES` and :func:`interaction_label`.
``source``
    Becomes the canonical ``source``.

Each row becomes one event on ``event_date`` (``end_date`` NaT) with ``count`` 1
(``measure="events"``) or its ``fatalities`` (``measure="deaths"``); the ``by`` option picks
the column that names the ``front``.  Every other column is kept as an extra column.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from forecast import names as n
from forecast.data.csvio import RawTable, read_raw_csv
from forecast.data.events import EventTable, make_event_frame
from forecast.data.external import (
    check_measure,
    contains_any,
    duplicate_id_issues,
    equals_any,
    event_table,
    precision_flags,
    require_option_columns,
    resolve_by,
    select_rows,
    text_column,
)
from forecast.data.options import MEASURE_DEATHS, SelectOptions
from forecast.data.parse import ISO_DATE, parse_counts, parse_dates, parse_int_codes
from forecast.data.placement import UNCERTAIN_END
from forecast.errors import DataValidationError, Issue

ACLED_ID = "event_id_cnty"
ACLED_DATE = "event_date"
ACLED_EVENT_TYPE = "event_type"
ACLED_SUB_EVENT_TYPE = "sub_event_type"
ACLED_COUNTRY = "country"
ACLED_FATALITIES = "fatalities"
ACLED_TIME_PRECISION = "time_precision"
ACLED_YEAR = "year"
ACLED_SOURCE = "source"
ACLED_ACTOR_COLUMNS = ("actor1", "actor2", "assoc_actor_1", "assoc_actor_2")
ACLED_INTER_COLUMNS = ("inter1", "inter2")
ACLED_INTERACTION = "interaction"

#: Columns every ACLED export must have.
ACLED_REQUIRED = (ACLED_ID, ACLED_DATE, ACLED_EVENT_TYPE, ACLED_COUNTRY)
#: Columns whose presence identifies an ACLED export (see :func:`looks_like_acled`).
ACLED_SIGNATURE = (ACLED_ID, ACLED_DATE, ACLED_EVENT_TYPE)
#: Allowed values of ``SelectOptions.by``; the first is the default.
ACLED_BY = ("country", "admin1", "actor1", "event_type")
#: Accepted forms of ``event_date``, tried in order (none of them can read another's text).
ACLED_DATE_FORMATS = (ISO_DATE, "%d %B %Y", "%d-%m-%Y", "%d/%m/%Y")
#: ``time_precision`` code -> precision flag.
TIME_PRECISION_FLAGS = {1: n.PRECISION_EXACT, 2: n.PRECISION_WEEK, 3: n.PRECISION_MONTH}
#: A ``time_precision`` 2 date lies within this many days either side of ``event_date``.
WEEK_HALF_SPAN = 3

#: ACLED ``inter`` codes and the text labels newer exports write instead.
ACTOR_TYPES = {
    1: "State forces",
    2: "Rebel group",
    3: "Political militia",
    4: "Identity militia",
    5: "Rioters",
    6: "Protesters",
    7: "Civilians",
    8: "External/Other forces",
}
_LABELS = {label.casefold(): label for label in ACTOR_TYPES.values()}
_ONLY = " only"


def looks_like_acled(columns: list[str]) -> bool:
    """True when the header has the ACLED signature columns (used for format auto-detection)."""
    return all(name in columns for name in ACLED_SIGNATURE)


def read_acled_csv(
    path: str | Path, options: SelectOptions = SelectOptions(), *, table: RawTable | None = None
) -> EventTable:
    """Read an ACLED export, select rows and turn them into canonical events.

    Parameters
    ----------
    path : str or Path
        The CSV file (ignored when ``table`` is given).
    options : SelectOptions
        Filters (``countries``, ``event_types``, ``sub_event_types``: case-insensitive
        equality; ``actors``: case-insensitive substrings of any actor column), the ``by``
        column naming the front (one of :data:`ACLED_BY`, default ``country``) and the
        ``measure`` (``events`` or ``deaths``).
    table : RawTable, optional
        The file already read with :func:`~forecast.data.csvio.read_raw_csv`.

    Returns
    -------
    EventTable
        One row per selected event; warnings list rows dated only to a week or a month.

    Raises
    ------
    DataValidationError
        For an unknown option value, a column missing for a chosen option, every bad cell of
        the file (with its line and column), duplicate identifiers, or an empty selection.
    """
    table = table if table is not None else read_raw_csv(path)
    by = resolve_by(options.by, ACLED_BY, file=table.file, what="an ACLED export")
    check_measure(options.measure, file=table.file)
    require_option_columns(table, _needed_columns(options, by))
    frame = _parse_rows(table, by, options.measure)
    keep = _selection(table.frame, options)
    kept, warnings = select_rows(frame, keep, file=table.file, options=options, by=by)
    return event_table(kept, table.file, warnings)


def _needed_columns(options: SelectOptions, by: str) -> list[tuple[str, list[str]]]:
    needs = [("an ACLED export", list(ACLED_REQUIRED)), (f"option by={by!r}", [by])]
    if options.sub_event_types:
        needs.append(("option sub_event_types", [ACLED_SUB_EVENT_TYPE]))
    if options.actors:
        needs.append(("option actors", list(ACLED_ACTOR_COLUMNS)))
    if options.measure == MEASURE_DEATHS:
        needs.append(("option measure='deaths'", [ACLED_FATALITIES]))
    return needs


def _parse_rows(table: RawTable, by: str, measure: str) -> pd.DataFrame:
    """Validate every row and build the canonical frame of the whole file."""
    raw, file, lines = table.frame, table.file, table.lines
    dates, issues = parse_dates(raw[ACLED_DATE], file=file, lines=lines, column=ACLED_DATE, formats=ACLED_DATE_FORMATS)
    precision, codes, found = precision_flags(raw, ACLED_TIME_PRECISION, TIME_PRECISION_FLAGS, file=file, lines=lines)
    issues += found
    issues += duplicate_id_issues(raw[ACLED_ID], file=file, lines=lines, column=ACLED_ID)
    parsed, found = _parse_extra_columns(raw, file, lines)
    issues += found
    if codes is not None:
        parsed[ACLED_TIME_PRECISION] = codes
    if issues:
        raise DataValidationError(issues)
    if measure == MEASURE_DEATHS:
        counts = parsed[ACLED_FATALITIES]
    else:
        counts = pd.Series(1, index=raw.index, dtype="int64")
    extra = raw.drop(columns=[ACLED_DATE, ACLED_SOURCE], errors="ignore").assign(**parsed)
    span_start, span_end = uncertain_spans(dates, codes)
    extra[UNCERTAIN_END] = span_end.to_numpy()
    return make_event_frame(
        dates=span_start,
        end_dates=pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]"),
        fronts=text_column(raw, by),
        counts=counts,
        precision=precision,
        source=text_column(raw, ACLED_SOURCE),
        file=file,
        lines=lines,
        extra=extra,
    )


def uncertain_spans(dates: pd.Series, codes: pd.Series | None) -> tuple[pd.Series, pd.Series]:
    """The span each event's date lies in: ``(first day, last day or NaT)`` (see the module docstring)."""
    start = dates.copy()
    end = pd.Series(pd.NaT, index=dates.index, dtype="datetime64[ns]")
    if codes is None:
        return start, end
    week = (codes == 2).to_numpy(dtype=bool, na_value=False)
    month = (codes == 3).to_numpy(dtype=bool, na_value=False)
    start[week] = dates[week] - pd.Timedelta(days=WEEK_HALF_SPAN)
    end[week] = dates[week] + pd.Timedelta(days=WEEK_HALF_SPAN)
    first = dates[month].dt.to_period("M").dt.to_timestamp()
    start[month] = first
    end[month] = first + pd.offsets.MonthEnd(0)
    return start, end


def _parse_extra_columns(raw: pd.DataFrame, file: str, lines: np.ndarray) -> tuple[dict[str, pd.Series], list[Issue]]:
    """Parse the optional typed columns that are present: fatalities, year and the inter codes."""
    parsed: dict[str, pd.Series] = {}
    issues: list[Issue] = []
    if ACLED_FATALITIES in raw:
        parsed[ACLED_FATALITIES], found = parse_counts(
            raw[ACLED_FATALITIES], file=file, lines=lines, column=ACLED_FATALITIES
        )
        issues += found
    if ACLED_YEAR in raw:
        parsed[ACLED_YEAR], found = parse_int_codes(raw[ACLED_YEAR], file=file, lines=lines, column=ACLED_YEAR)
        issues += found
    for column in ACLED_INTER_COLUMNS:
        if column in raw:
            parsed[column], found = _labels(raw[column], actor_type_label, file=file, lines=lines, column=column)
            issues += found
    if ACLED_INTERACTION in raw:
        parsed[ACLED_INTERACTION], found = _labels(
            raw[ACLED_INTERACTION], interaction_label, file=file, lines=lines, column=ACLED_INTERACTION
        )
        issues += found
    return parsed, issues


def _selection(raw: pd.DataFrame, options: SelectOptions) -> np.ndarray:
    keep = equals_any(raw[ACLED_COUNTRY], options.countries)
    keep &= equals_any(raw[ACLED_EVENT_TYPE], options.event_types)
    if options.sub_event_types:
        keep &= equals_any(raw[ACLED_SUB_EVENT_TYPE], options.sub_event_types)
    keep &= contains_any(raw, ACLED_ACTOR_COLUMNS, options.actors)
    return keep


def _as_code(cell: str) -> int | None:
    """The integer written in ``cell`` (``"1"`` or ``"1.0"``); -1 for another number; None for text."""
    try:
        number = float(cell)
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number == int(number) else -1


def actor_type_label(cell: str) -> str | None:
    """Text label of an ``inter1`` / ``inter2`` cell, or None when the code or label is unknown.

    Codes 1-8 map to :data:`ACTOR_TYPES`; text labels are matched ignoring case.  An empty
    cell, or code ``0`` (used by older exports for "no second actor"), gives ``""``.
    """
    cell = cell.strip()
    if cell == "":
        return ""
    code = _as_code(cell)
    if code is None:
        return _LABELS.get(cell.casefold())
    return "" if code == 0 else ACTOR_TYPES.get(code)


def interaction_label(cell: str) -> str | None:
    """Text label of an ``interaction`` cell, or None when it is unknown.

    Older exports write ``10 * first + second`` with ``first <= second`` (``18`` is
    ``"State forces-External/Other forces"``) and, for an event with a single actor,
    ``10 * first`` (``60`` is ``"Protesters only"``), which is how newer exports label
    one-actor events.  Text labels of either form are matched ignoring case.  Any other
    code (``0``, ``81``, ``9``, ``19``...) is unknown.  An empty cell gives ``""``.
    """
    cell = cell.strip()
    if cell == "":
        return ""
    code = _as_code(cell)
    if code is None:
        return _interaction_from_text(cell.casefold())
    first, second = divmod(code, 10)
    if first not in ACTOR_TYPES or (second != 0 and not first <= second <= 8):
        return None
    if second == 0:
        return ACTOR_TYPES[first] + _ONLY
    return f"{ACTOR_TYPES[first]}-{ACTOR_TYPES[second]}"


def _interaction_from_text(folded: str) -> str | None:
    if folded.endswith(_ONLY):
        label = _LABELS.get(folded[: -len(_ONLY)].strip())
        return None if label is None else label + _ONLY
    parts = [_LABELS.get(part.strip()) for part in folded.split("-")]
    if len(parts) != 2 or None in parts:
        return None
    return f"{parts[0]}-{parts[1]}"


def _labels(
    values: pd.Series,
    to_label: Callable[[str], str | None],
    *,
    file: str,
    lines: np.ndarray,
    column: str,
) -> tuple[pd.Series, list[Issue]]:
    """Normalise a column of codes or labels with ``to_label``; unknown cells are issues."""
    labels = [to_label(cell) for cell in values.astype(str).to_numpy()]
    issues = [
        Issue(
            file,
            int(lines[i]),
            column,
            f"unknown actor-type code or label {values.iloc[i].strip()!r} "
            f"(codes 1-8: {list(ACTOR_TYPES.values())}; "
            "interaction = 10 * first + second, or 10 * first for one actor)",
        )
        for i, label in enumerate(labels)
        if label is None
    ]
    return pd.Series([label or "" for label in labels], index=values.index, dtype=object), issues

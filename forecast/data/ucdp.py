"""Reader for UCDP GED CSV files into an :class:`EventTable`.

The UCDP Georeferenced Event Dataset has one row per event of organised violence with at
least one death.  It is read **by column name**, so the 49-column layout (GED 23.1 and
later) and the older 41-column ones (GED 19.1) are both accepted.  The columns used are:

``id``
    The event identifier, required and unique.
``date_start``, ``date_end``
    Required; ``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM:SS`` or ``YYYY-MM-DD HH:MM:SS.fff`` (GED
    CSVs use all three; the time of day is dropped).  An event whose ``date_end`` is after
    its ``date_start`` is **one event with an uncertain date** somewhere in that span, never
    a total over a window: it gets ``date = date_start`` and the extra column
    :data:`~forecast.data.placement.UNCERTAIN_END` ``= date_end``, and the panel places it (in
    the grid period that holds the whole span, else by ``--uncertain-dates``; see
    :mod:`forecast.data.panel`).  ``date_end`` before ``date_start`` is an error.
``country``, ``type_of_violence``
    Required.  ``type_of_violence`` is ``1`` state-based, ``2`` non-state, ``3`` one-sided
    (``1.0`` accepted); the code is kept, and ``by="type_of_violence"`` names the front with
    the words of :data:`VIOLENCE_TYPES`.
``best``
    The best estimate of deaths, an integer >= 0 (``3.0`` accepted); required when
    ``measure`` is ``deaths``.
``date_prec``
    Optional; the GED codebook's precision of the dates: ``1`` exact day (``exact``),
    ``2`` a range of 2-6 days and ``3`` only the week known (both ``within_week``), ``4`` a
    range of 8-30 days or only the month known (``within_month``) and ``5`` a range longer
    than a month, at most a year (also ``within_month``, the coarsest flag the canonical
    table has; the real span is in ``date_start`` .. ``date_end``).  Such rows are kept and
    listed in the warnings.
``side_a``, ``side_b``
    Matched by the ``actors`` option; required only when it is used.
``source_article``
    Becomes the canonical ``source`` when present.

Every other column is kept as an extra column.  Kept events with an empty ``by`` value form
the front ``unknown`` (a warning counts them; an error with ``strict_fronts``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forecast import names as n
from forecast.data.csvio import RawTable, read_raw_csv
from forecast.data.events import EventTable, check_windows, make_event_frame
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

UCDP_ID = "id"
UCDP_DATE_START = "date_start"
UCDP_DATE_END = "date_end"
UCDP_COUNTRY = "country"
UCDP_VIOLENCE = "type_of_violence"
UCDP_BEST = "best"
UCDP_DATE_PREC = "date_prec"
UCDP_SOURCE = "source_article"
UCDP_ACTOR_COLUMNS = ("side_a", "side_b")

#: Columns every UCDP GED file must have (``best`` too when ``measure`` is ``deaths``).
UCDP_REQUIRED = (UCDP_ID, UCDP_DATE_START, UCDP_DATE_END, UCDP_COUNTRY, UCDP_VIOLENCE)
#: Columns whose presence identifies a UCDP GED file (see :func:`looks_like_ucdp`).
UCDP_SIGNATURE = (UCDP_ID, UCDP_DATE_START, UCDP_DATE_END, UCDP_BEST, UCDP_VIOLENCE)
#: Allowed values of ``SelectOptions.by``; the first is the default.
UCDP_BY = ("country", "adm_1", "side_a", "side_b", "dyad_name", "conflict_name", UCDP_VIOLENCE)
#: Accepted forms of ``date_start`` and ``date_end``, tried in order.
UCDP_DATE_FORMATS = (ISO_DATE, "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f")
#: ``date_prec`` code -> precision flag (see the module docstring).
DATE_PREC_FLAGS = {
    1: n.PRECISION_EXACT,
    2: n.PRECISION_WEEK,
    3: n.PRECISION_WEEK,
    4: n.PRECISION_MONTH,
    5: n.PRECISION_MONTH,
}
#: ``type_of_violence`` code -> the name accepted by ``event_types`` and used as a front.
VIOLENCE_TYPES = {1: "state-based", 2: "non-state", 3: "one-sided"}


def looks_like_ucdp(columns: list[str]) -> bool:
    """True when the header has the UCDP GED signature columns (used for format auto-detection)."""
    return all(name in columns for name in UCDP_SIGNATURE)


def read_ucdp_csv(
    path: str | Path, options: SelectOptions = SelectOptions(), *, table: RawTable | None = None
) -> EventTable:
    """Read a UCDP GED CSV file, select events and turn them into canonical events.

    Parameters
    ----------
    path : str or Path
        The CSV file (ignored when ``table`` is given).
    options : SelectOptions
        Filters (``countries``: case-insensitive equality on ``country``; ``event_types``:
        violence types by name, ``state-based``, ``non-state``, ``one-sided``, or by code
        ``1``, ``2``, ``3``; ``actors``: case-insensitive substrings of ``side_a`` or
        ``side_b``), the ``by`` column naming the front (one of :data:`UCDP_BY`, default
        ``country``) and the ``measure`` (``events``: 1 per event; ``deaths``: ``best``).
        ``sub_event_types`` is refused: GED has none.
    table : RawTable, optional
        The file already read with :func:`~forecast.data.csvio.read_raw_csv`.

    Returns
    -------
    EventTable
        One row per selected event (with its span in :data:`UNCERTAIN_END` when it spans
        several days); warnings list rows whose dates are known only to a week or a month.

    Raises
    ------
    DataValidationError
        For an unknown option value, a column missing for a chosen option, every bad cell of
        the file (with its line and column), ``date_end`` before ``date_start``, duplicate
        identifiers, or an empty selection.
    """
    table = table if table is not None else read_raw_csv(path)
    by = resolve_by(options.by, UCDP_BY, file=table.file, what="a UCDP GED file")
    check_measure(options.measure, file=table.file)
    violence = _violence_codes(options, table.file)
    require_option_columns(table, _needed_columns(options, by))
    frame, codes = _parse_rows(table, by, options.measure)
    keep = equals_any(table.frame[UCDP_COUNTRY], options.countries)
    keep &= contains_any(table.frame, UCDP_ACTOR_COLUMNS, options.actors)
    if violence:
        keep &= codes.isin(violence).to_numpy(dtype=bool, na_value=False)
    kept, warnings = select_rows(frame, keep, file=table.file, options=options, by=by)
    return event_table(kept, table.file, warnings)


def _violence_codes(options: SelectOptions, file: str) -> set[int]:
    """The ``type_of_violence`` codes named by ``event_types`` (names or codes); empty keeps all."""
    if options.sub_event_types:
        raise DataValidationError(
            Issue(
                file,
                None,
                None,
                f"option sub_event_types={list(options.sub_event_types)} does not apply: "
                "UCDP GED has no sub-event types",
            )
        )
    by_word = {name: code for code, name in VIOLENCE_TYPES.items()} | {str(code): code for code in VIOLENCE_TYPES}
    unknown = [value for value in options.event_types if value.strip().casefold() not in by_word]
    if unknown:
        raise DataValidationError(
            Issue(
                file,
                None,
                None,
                f"option event_types has unknown value(s) {unknown} for a UCDP GED file; allowed: {list(by_word)}",
            )
        )
    return {by_word[value.strip().casefold()] for value in options.event_types}


def _needed_columns(options: SelectOptions, by: str) -> list[tuple[str, list[str]]]:
    needs = [("a UCDP GED file", list(UCDP_REQUIRED)), (f"option by={by!r}", [by])]
    if options.actors:
        needs.append(("option actors", list(UCDP_ACTOR_COLUMNS)))
    if options.measure == MEASURE_DEATHS:
        needs.append(("option measure='deaths'", [UCDP_BEST]))
    return needs


def _parse_rows(table: RawTable, by: str, measure: str) -> tuple[pd.DataFrame, pd.Series]:
    """Validate every row; return the canonical frame of the whole file and the violence codes."""
    raw, file, lines = table.frame, table.file, table.lines
    issues: list[Issue] = []
    start, found = parse_dates(
        raw[UCDP_DATE_START], file=file, lines=lines, column=UCDP_DATE_START, formats=UCDP_DATE_FORMATS
    )
    issues += found
    end, found = parse_dates(
        raw[UCDP_DATE_END], file=file, lines=lines, column=UCDP_DATE_END, formats=UCDP_DATE_FORMATS
    )
    issues += found
    codes, found = parse_int_codes(
        raw[UCDP_VIOLENCE], file=file, lines=lines, column=UCDP_VIOLENCE, allowed=sorted(VIOLENCE_TYPES)
    )
    issues += found
    precision, prec_codes, found = precision_flags(raw, UCDP_DATE_PREC, DATE_PREC_FLAGS, file=file, lines=lines)
    issues += found
    issues += duplicate_id_issues(raw[UCDP_ID], file=file, lines=lines, column=UCDP_ID)
    parsed: dict[str, pd.Series] = {UCDP_VIOLENCE: codes}
    if prec_codes is not None:
        parsed[UCDP_DATE_PREC] = prec_codes
    if UCDP_BEST in raw:
        parsed[UCDP_BEST], found = parse_counts(raw[UCDP_BEST], file=file, lines=lines, column=UCDP_BEST)
        issues += found
    frame = make_event_frame(
        dates=start.dt.normalize(),
        end_dates=end.dt.normalize(),
        fronts=_fronts(raw, by, codes),
        counts=parsed[UCDP_BEST] if measure == MEASURE_DEATHS else pd.Series(1, index=raw.index, dtype="int64"),
        precision=precision,
        source=text_column(raw, UCDP_SOURCE),
        file=file,
        lines=lines,
        extra=raw.drop(columns=[UCDP_DATE_START, UCDP_DATE_END]).assign(**parsed),
    )
    issues += check_windows(frame, file, lines, column=UCDP_DATE_END)
    if issues:
        raise DataValidationError(issues)
    # An uncertain date is one event somewhere in date_start..date_end, never a window total.
    frame[UNCERTAIN_END] = frame[n.END_DATE]
    frame[n.END_DATE] = pd.NaT
    return frame, codes


def _fronts(raw: pd.DataFrame, by: str, codes: pd.Series) -> pd.Series:
    """The front of each row: the ``by`` column, or the violence type in words."""
    if by == UCDP_VIOLENCE:
        return pd.Series(
            [VIOLENCE_TYPES.get(int(c), "") if pd.notna(c) else "" for c in codes], index=raw.index, dtype=object
        )
    return text_column(raw, by)

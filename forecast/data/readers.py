"""One entry point for every events format: canonical, ACLED and UCDP GED.

``format="auto"`` picks the reader from the header; an unknown layout is an error that lists
what each format expects.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from forecast import names as n
from forecast.data.acled import looks_like_acled, read_acled_csv
from forecast.data.csvio import RawTable, read_raw_csv
from forecast.data.events import EventTable, concat_events, read_events_csv
from forecast.data.options import SelectOptions
from forecast.data.parse import shown_cell
from forecast.data.ucdp import looks_like_ucdp, read_ucdp_csv
from forecast.errors import DataValidationError, Issue

EXPECTED_LAYOUTS = {
    n.FORMAT_EVENTS: "canonical events: date, front (count, end_date, precision, source optional)",
    n.FORMAT_ACLED: "ACLED export: event_id_cnty, event_date, event_type, country, actor1, ...",
    n.FORMAT_UCDP: "UCDP GED: id, date_start, date_end, type_of_violence, best, country, ...",
}


def detect_format(table: RawTable) -> str:
    """The format whose signature columns the header carries.

    Raises
    ------
    DataValidationError
        When the header matches no known layout; the message lists what each expects.
    """
    if looks_like_acled(table.columns):
        return n.FORMAT_ACLED
    if looks_like_ucdp(table.columns):
        return n.FORMAT_UCDP
    if n.DATE in table.columns and n.FRONT in table.columns:
        return n.FORMAT_EVENTS
    expected = "; ".join(f"{name}: {layout}" for name, layout in EXPECTED_LAYOUTS.items())
    raise DataValidationError(
        Issue(table.file, 1, None, f"unknown layout with columns {table.columns}; expected one of: {expected}")
    )


def read_events(
    paths: Sequence[str | Path],
    *,
    format: str = n.FORMAT_AUTO,
    options: SelectOptions | None = None,
) -> EventTable:
    """Read one or more event files into one validated :class:`EventTable`.

    Parameters
    ----------
    paths : sequence of path-like
        Files to read, in order.  Every file is read and checked before anything is raised,
        so one run reports the problems of all files.
    format : {"auto", "events", "acled", "ucdp"}
        The layout; ``auto`` decides per file from its header.
    options : SelectOptions, optional
        Row selection and front definition for ACLED and UCDP files.
    """
    if format not in n.FORMATS:
        raise ValueError(f"unknown format {format!r}; allowed: {list(n.FORMATS)}")
    if not paths:
        raise DataValidationError(Issue("<none>", None, None, "no event files were given"))
    options = options or SelectOptions()
    tables: list[EventTable] = []
    issues: list[Issue] = []
    for path in paths:
        try:
            raw = read_raw_csv(path)
            chosen = detect_format(raw) if format == n.FORMAT_AUTO else format
            if chosen == n.FORMAT_ACLED:
                tables.append(read_acled_csv(path, options, table=raw))
            elif chosen == n.FORMAT_UCDP:
                tables.append(read_ucdp_csv(path, options, table=raw))
            else:
                tables.append(read_events_csv(path, table=raw))
            del raw  # the cells as text are no longer needed
        except DataValidationError as error:
            issues += error.issues
    if issues:
        raise DataValidationError(issues)
    return normalise_fronts(concat_events(tables))


def _bad_characters(name: str) -> list[str]:
    """Control characters (and line or paragraph separators) in a front name, as ``U+XXXX``."""
    return sorted({f"U+{ord(ch):04X}" for ch in name if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp")})


def normalise_fronts(events: EventTable) -> EventTable:
    """Front names in Unicode NFC; a name holding control characters is an error naming its line.

    "Caf\u00e9" typed on one system and "Cafe\u0301" on another print the same and are one
    front: both become the NFC form, and a warning lists the lines written in another form.
    Returns a new table (the given one is not modified).

    Raises
    ------
    DataValidationError
        For front names with control characters (a NUL, a tab or a line break inside a name
        usually means a damaged file or a quote that was never closed).
    """
    frame = events.frame
    names = pd.Series(frame[n.FRONT].unique())
    issues: list[Issue] = []
    renamed: dict[str, str] = {}
    for name in names.tolist():
        bad = _bad_characters(name)
        if bad:
            row = frame.index[frame[n.FRONT] == name][0]
            issues.append(
                Issue(
                    str(frame.at[row, n.ORIGIN_FILE]),
                    int(frame[n.ORIGIN_LINE][row]),
                    n.FRONT,
                    f"the front name {shown_cell(name)} holds control characters ({', '.join(bad[:5])})",
                )
            )
            continue
        normal = unicodedata.normalize("NFC", name)
        if normal != name:
            renamed[name] = normal
    if issues:
        raise DataValidationError(issues)
    if not renamed:
        return events
    fronts = frame[n.FRONT].map(lambda name: renamed.get(name, name))
    changed = frame[frame[n.FRONT].isin(list(renamed))]
    warnings = []
    for file, group in changed.groupby(n.ORIGIN_FILE, sort=True):
        lines = group[n.ORIGIN_LINE].tolist()
        shown = ", ".join(str(x) for x in lines[:10]) + (" ..." if len(lines) > 10 else "")
        names_shown = ", ".join(shown_cell(renamed[name]) for name in sorted(set(group[n.FRONT]))[:5])
        warnings.append(
            Issue(
                str(file),
                None,
                n.FRONT,
                f"{len(lines)} row(s) write the front name(s) {names_shown} in another Unicode form (not NFC); "
                f"they are read as the NFC form, one front with the rows that use it: lines {shown}",
            )
        )
    new_frame = frame.assign(**{n.FRONT: fronts.to_numpy(dtype=object)})
    return EventTable(frame=new_frame, warnings=(*events.warnings, *warnings), files=events.files)

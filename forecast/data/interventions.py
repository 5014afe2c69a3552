"""The interventions table (strikes, truces, announcements...) and its CSV reader.

Interventions CSV columns:

``date``
    ISO ``YYYY-MM-DD``, required: the day the intervention starts.
``end_date``
    Optional; required for ``window`` shapes, where the effect holds ``date..end_date``.
``kind``
    Free text, required (``strike``, ``truce``, ``announcement``, ``law``...).  Effects of
    one kind share a population distribution in the models.
``shape``
    ``pulse`` (a one-off whose effect decays with a half-life), ``window`` (holds from
    ``date`` to ``end_date``) or ``step`` (a lasting change from ``date``).  Default:
    ``window`` when ``end_date`` is given, else ``pulse``.
``front``
    Optional.  Empty means every front; several fronts are separated by ``;``.
``label``
    Optional unique name; default ``"<kind> <date>"``.
``source``
    Optional text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecast import names as n
from forecast.data.csvio import read_raw_csv, require_columns
from forecast.data.parse import parse_dates
from forecast.errors import DataValidationError, Issue

#: Columns of the interventions CSV, in the order the project writes them.
INTERVENTION_CSV_COLUMNS = [n.DATE, n.END_DATE, n.KIND, n.SHAPE, n.FRONT, n.LABEL, n.SOURCE]
#: Columns of :attr:`InterventionTable.frame`.
INTERVENTION_COLUMNS = [*INTERVENTION_CSV_COLUMNS, n.ORIGIN_FILE, n.ORIGIN_LINE]
FRONT_SEPARATOR = ";"


@dataclass(frozen=True)
class InterventionTable:
    """Validated interventions in file order.

    ``frame`` has :data:`INTERVENTION_COLUMNS`; ``front`` holds a tuple of front names
    (empty tuple: every front).
    """

    frame: pd.DataFrame
    files: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def labels(self) -> list[str]:
        return self.frame[n.LABEL].tolist()

    def applies_to(self, fronts: Sequence[str]) -> np.ndarray:
        """Boolean ``(intervention, front)`` matrix: which intervention touches which front."""
        out = np.zeros((len(self.frame), len(fronts)), dtype=bool)
        for i, targets in enumerate(self.frame[n.FRONT]):
            out[i] = True if not targets else [front in targets for front in fronts]
        return out

    def check_fronts(self, fronts: Sequence[str]) -> None:
        """Raise when an intervention names a front that is not in the data."""
        known = set(fronts)
        issues = [
            Issue(
                str(row[n.ORIGIN_FILE]),
                int(row[n.ORIGIN_LINE]),
                n.FRONT,
                f"front {front!r} is not in the events; known fronts: {sorted(known)}",
            )
            for _, row in self.frame.iterrows()
            for front in row[n.FRONT]
            if front not in known
        ]
        if issues:
            raise DataValidationError(issues)

    def before(self, as_of: pd.Timestamp) -> InterventionTable:
        """Interventions that started on or before ``as_of`` (later ones are unknown then)."""
        return InterventionTable(self.frame[self.frame[n.DATE] <= as_of].reset_index(drop=True), self.files)


def read_interventions_csv(path: str | Path) -> InterventionTable:
    """Read and validate an interventions CSV (see the module docstring for the columns).

    Raises
    ------
    DataValidationError
        Listing every problem with its file, line and column.
    """
    table = read_raw_csv(path)
    require_columns(table, [n.DATE, n.KIND], "an interventions file")
    raw, file, lines = table.frame, table.file, table.lines
    issues: list[Issue] = []

    def column(name: str) -> pd.Series:
        return raw[name].astype(str).str.strip() if name in raw else pd.Series("", index=raw.index, dtype=object)

    dates, found = parse_dates(raw[n.DATE], file=file, lines=lines, column=n.DATE)
    issues += found
    end_dates, found = parse_dates(column(n.END_DATE), file=file, lines=lines, column=n.END_DATE, required=False)
    issues += found
    kinds = column(n.KIND)
    shapes = column(n.SHAPE)
    fronts = column(n.FRONT)
    labels = column(n.LABEL)
    rows = []
    for i in range(len(raw)):
        line = int(lines[i])
        start, end, kind, shape = dates.iloc[i], end_dates.iloc[i], kinds.iloc[i], shapes.iloc[i]
        if not kind:
            issues.append(Issue(file, line, n.KIND, "the kind is empty (e.g. strike, truce, announcement)"))
        if not shape:
            shape = n.SHAPE_WINDOW if pd.notna(end) else n.SHAPE_PULSE
        if shape not in n.SHAPES:
            issues.append(Issue(file, line, n.SHAPE, f"unknown shape {shape!r}; allowed: {list(n.SHAPES)}"))
        elif shape == n.SHAPE_WINDOW and pd.isna(end):
            issues.append(Issue(file, line, n.END_DATE, "a window needs an end_date"))
        elif shape != n.SHAPE_WINDOW and pd.notna(end):
            issues.append(
                Issue(file, line, n.END_DATE, f"end_date is given but shape is {shape!r}; only a window has an end")
            )
        if pd.notna(start) and pd.notna(end) and end < start:
            issues.append(Issue(file, line, n.END_DATE, f"end_date {end.date()} is before date {start.date()}"))
        targets = tuple(part.strip() for part in fronts.iloc[i].split(FRONT_SEPARATOR) if part.strip())
        if len(set(targets)) != len(targets):
            issues.append(Issue(file, line, n.FRONT, f"a front is named twice in {fronts.iloc[i]!r}"))
        label = labels.iloc[i] or (f"{kind} {start.date()}" if pd.notna(start) else kind)
        rows.append((start, end, kind, shape, targets, label, column(n.SOURCE).iloc[i], file, line))
    frame = pd.DataFrame(rows, columns=INTERVENTION_COLUMNS)
    for label, group in frame.groupby(n.LABEL, sort=False):
        if len(group) > 1:
            where = ", ".join(str(x) for x in group[n.ORIGIN_LINE])
            issues.append(
                Issue(
                    file,
                    int(group[n.ORIGIN_LINE].iloc[1]),
                    n.LABEL,
                    f"label {label!r} is used on lines {where}; give each intervention a unique label",
                )
            )
    if issues:
        raise DataValidationError(issues)
    return InterventionTable(frame=frame, files=(file,))

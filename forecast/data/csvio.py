"""Reading delimited text with exact line numbers, shared by every reader.

Every reader takes its columns from here as strings and parses them itself, so that each
problem can be reported with its file, line and column.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.errors import DataValidationError, Issue


@dataclass(frozen=True)
class RawTable:
    """A CSV file read as text.

    Attributes
    ----------
    file : str
        The path as the user gave it.
    columns : list of str
        Header names, stripped of surrounding spaces (and of a byte-order mark).
    frame : pandas.DataFrame
        One string column per header name; empty cells are ``""``.
    lines : numpy.ndarray
        1-based line number in the file where each row starts (the header is line 1).
    """

    file: str
    columns: list[str]
    frame: pd.DataFrame
    lines: np.ndarray


def read_raw_csv(path: str | Path) -> RawTable:
    """Read a CSV file as text, keeping the starting line number of every row.

    Raises
    ------
    DataValidationError
        If the file is missing, empty, not UTF-8, has duplicate header names, or a row with
        more cells than the header.
    """
    file = str(path)
    try:
        handle = open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DataValidationError(Issue(file, None, None, f"cannot open file: {exc.strerror}")) from exc
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise DataValidationError(Issue(file, None, None, "the file is empty (no header line)"))
            columns = [name.strip() for name in header]
            seen: set[str] = set()
            for name in columns:
                if name in seen:
                    raise DataValidationError(Issue(file, 1, name, "the header names this column twice"))
                seen.add(name)
            rows: list[list[str]] = []
            lines: list[int] = []
            previous_end = reader.line_num
            issues: list[Issue] = []
            for record in reader:
                start_line = previous_end + 1
                previous_end = reader.line_num
                if not record or all(cell.strip() == "" for cell in record):
                    continue  # blank line: nothing to lose
                if len(record) > len(columns):
                    issues.append(
                        Issue(file, start_line, None, f"row has {len(record)} cells but the header has {len(columns)}")
                    )
                    continue
                record = record + [""] * (len(columns) - len(record))
                rows.append([cell.strip() for cell in record])
                lines.append(start_line)
        except UnicodeDecodeError as exc:
            raise DataValidationError(Issue(file, None, None, f"the file is not UTF-8 text ({exc.reason})")) from exc
        except csv.Error as exc:
            raise DataValidationError(Issue(file, reader.line_num, None, f"malformed CSV: {exc}")) from exc
    if issues:
        raise DataValidationError(issues)
    frame = pd.DataFrame(rows, columns=columns, dtype=object) if rows else pd.DataFrame(columns=columns, dtype=object)
    return RawTable(file=file, columns=columns, frame=frame, lines=np.asarray(lines, dtype=np.int64))


def require_columns(table: RawTable, required: list[str], what: str) -> None:
    """Raise a clear error naming the missing columns and the ones that were found."""
    missing = [name for name in required if name not in table.columns]
    if missing:
        raise DataValidationError(
            Issue(
                table.file,
                1,
                ", ".join(missing),
                f"missing required column(s) for {what}: {missing}; found {table.columns}",
            )
        )

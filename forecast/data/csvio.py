"""Reading delimited text with exact line numbers, shared by every reader.

Every reader takes its columns from here as strings and parses them itself, so that each
problem can be reported with its file, line and column.
"""

from __future__ import annotations

import codecs
import csv
import io
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


def _line_of(text: str, position: int) -> int:
    """1-based line number of a character position in ``text``."""
    return text.count("\n", 0, position) + 1


def _shown(text: str, limit: int = 60) -> str:
    """``repr`` of a cell, cut short (a hostile file must not make a huge message)."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def read_raw_csv(path: str | Path) -> RawTable:
    """Read a CSV file as text, keeping the starting line number of every row.

    The file is decoded as UTF-8 (a byte-order mark is dropped) and parsed strictly: a quote
    that is never closed, a stray character after a closing quote and a NUL byte are errors
    that name their line, never rows silently merged or cells silently cut.  A file without
    quote characters (the common case) goes through pandas' C parser; one with quotes through
    the standard library's, which follows records over several lines.

    Raises
    ------
    DataValidationError
        If the file is missing, empty, not UTF-8, malformed CSV, holds a NUL byte, has
        duplicate header names, or a row with more cells than the header.
    """
    file = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataValidationError(Issue(file, None, None, f"cannot open file: {exc.strerror}")) from exc
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        data.decode("utf-8")  # checked here, where the failing byte gives the line
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataValidationError(Issue(file, line, None, f"the file is not UTF-8 text ({exc.reason})")) from exc
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise DataValidationError(Issue(file, line, None, "the line holds a NUL byte (a damaged or binary file?)"))
    if not data.strip():
        raise DataValidationError(Issue(file, None, None, "the file is empty (no header line)"))
    if b'"' not in data:
        table = _read_unquoted(file, data)
        if table is not None:
            return table
    return _read_quoted(file, data.decode("utf-8"))


def _check_header(file: str, header: list[str]) -> list[str]:
    columns = [name.strip() for name in header]
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise DataValidationError(Issue(file, 1, _shown(name, 40), "the header names this column twice"))
        seen.add(name)
    return columns


def _read_unquoted(file: str, data: bytes) -> RawTable | None:
    """Fast path for a file without quotes: one physical line is one row.

    Parses the bytes with pandas' C parser (no decoded copy of the whole text is kept).
    Returns None when the parser refuses the text (the slow path then names each problem) or
    when lines end in a lone carriage return.
    """
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return None
    try:
        raw = pd.read_csv(
            io.BytesIO(data),
            header=None,
            dtype=str,
            na_filter=False,
            keep_default_na=False,
            skip_blank_lines=False,
            quoting=csv.QUOTE_NONE,
            index_col=False,
            encoding="utf-8",
            engine="c",
        )
    except (pd.errors.ParserError, ValueError):
        return None
    columns = _check_header(file, [str(cell) for cell in raw.iloc[0].tolist()])
    if not len(columns):
        return None
    frame = raw.iloc[1:].reset_index(drop=True)
    del raw
    frame.columns = columns
    lines = np.arange(2, len(frame) + 2, dtype=np.int64)
    # A few searches over the bytes instead of one strip per cell.
    padded = False
    if b" " in data or b"\t" in data:
        padded = b"\t" in data or data[:1] == b" " or data.rstrip(b"\r\n").endswith(b" ")
        padded = padded or any(pair in data for pair in (b" ,", b", ", b" \n", b"\n ", b" \r"))
    if not padded and not data.isascii():
        # Unicode white space that str.strip() removes too (no-break and typographic spaces...).
        padded = any(space in data for space in (b"\xc2\xa0", b"\xc2\x85", b"\xe2\x80", b"\xe3\x80\x80"))
    if not padded:
        padded = len(data.translate(None, b"\x0b\x0c\x1c\x1d\x1e\x1f")) != len(data)
    if padded:
        frame = frame.apply(lambda column: column.str.strip())
    # A blank row is one whose every cell is empty: look at the rows whose first cell is.
    maybe_blank = (frame.iloc[:, 0] == "").to_numpy()
    if not maybe_blank.any():
        return RawTable(file=file, columns=columns, frame=frame, lines=lines)
    blank = maybe_blank & (frame == "").all(axis=1).to_numpy()
    if blank.any():
        frame = frame[~blank].reset_index(drop=True)
        lines = lines[~blank]
    return RawTable(file=file, columns=columns, frame=frame, lines=lines)


def _read_quoted(file: str, text: str) -> RawTable:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    previous_end = 0
    try:
        header = next(reader)
        columns = _check_header(file, header)
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
    except csv.Error as exc:
        start_line = previous_end + 1
        if "unexpected end of data" in str(exc):
            reason = (
                f"unterminated quote: a quoted cell opened on line {start_line} is never closed (the file ends "
                f"inside it, on line {reader.line_num})"
            )
        else:
            reason = (
                f"malformed CSV ({exc}); a quoted cell must be closed by a quote followed by a comma or the "
                "end of the line"
            )
        raise DataValidationError(Issue(file, start_line, None, reason)) from exc
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

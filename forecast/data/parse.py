"""Cell parsers shared by the readers: each returns parsed values and the issues it found.

Parsers never guess: a cell that fits none of the accepted forms is an issue that names the
file, line and column, and shows the offending text.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from itertools import repeat

import numpy as np
import pandas as pd

from forecast.errors import Issue

ISO_DATE = "%Y-%m-%d"


def stripped_text(values: pd.Series, *, stripped: bool = False) -> pd.Series:
    """The cells as text without surrounding white space (the same series when already so).

    ``stripped=True`` says the cells are already stripped text (as :func:`read_raw_csv` gives
    them) and returns them as they are.  Otherwise uses C-level ``map`` over the cells (no
    per-cell Python frame), so the common case costs a few tens of nanoseconds a cell.
    """
    if stripped:
        return values
    if values.dtype != object or not all(map(isinstance, values.to_numpy(), repeat(str, len(values)))):
        values = values.astype(str)
    cells = values.to_numpy()
    stripped_cells = list(map(str.strip, cells))
    if all(map(operator.is_, stripped_cells, cells)):
        return values
    return pd.Series(stripped_cells, index=values.index, dtype=object)


def parse_dates(
    values: pd.Series,
    *,
    file: str,
    lines: np.ndarray,
    column: str,
    formats: Sequence[str] = (ISO_DATE,),
    required: bool = True,
    stripped: bool = False,
) -> tuple[pd.Series, list[Issue]]:
    """Parse text dates against an ordered list of ``strptime`` formats.

    Empty cells become ``NaT``; they are an issue only when ``required``.  ``stripped=True``:
    the cells are already stripped text (see :func:`stripped_text`).
    Returns a datetime64 series aligned with ``values`` and the list of issues.
    """
    text = stripped_text(values, stripped=stripped)
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    remaining = text != ""
    for fmt in formats:
        if not remaining.any():
            break
        attempt = pd.to_datetime(text[remaining], format=fmt, errors="coerce")
        ok = attempt.notna()
        parsed.loc[attempt.index[ok]] = attempt[ok]
        remaining.loc[attempt.index[ok]] = False
    issues: list[Issue] = []
    shown = " or ".join(_format_example(fmt) for fmt in formats)
    for position in np.flatnonzero(remaining.to_numpy()):
        issues.append(
            Issue(
                file,
                int(lines[position]),
                column,
                f"cannot parse {shown_cell(str(text.iloc[position]))} as a date (expected {shown})",
            )
        )
    if required:
        for position in np.flatnonzero((text == "").to_numpy()):
            issues.append(Issue(file, int(lines[position]), column, "the date is empty"))
    return parsed, issues


def _format_example(fmt: str) -> str:
    examples = {
        "%Y-%m-%d": "YYYY-MM-DD",
        "%d %B %Y": "'02 February 2024'",
        "%d-%m-%Y": "DD-MM-YYYY",
        "%d/%m/%Y": "DD/MM/YYYY",
        "%Y-%m-%d %H:%M:%S.%f": "'YYYY-MM-DD HH:MM:SS.fff'",
        "%Y-%m-%d %H:%M:%S": "'YYYY-MM-DD HH:MM:SS'",
    }
    return examples.get(fmt, repr(fmt))


#: The largest count a cell may hold (int64; counts are integers end to end, never floats).
MAX_COUNT = int(np.iinfo(np.int64).max)
_WHOLE = r"\+?(\d+)(?:\.0*)?"


def shown_cell(text: str, limit: int = 40) -> str:
    """``repr`` of a cell, cut short so that a hostile file cannot make a huge message."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def parse_counts(
    values: pd.Series,
    *,
    file: str,
    lines: np.ndarray,
    column: str,
    default: int | None = None,
    stripped: bool = False,
) -> tuple[pd.Series, list[Issue]]:
    """Parse non-negative integer counts exactly; ``"3.0"`` is accepted as 3, ``"3.5"`` is not.

    The text is read as an integer (never through a float, which cannot hold every count
    above 2**53); a count above :data:`MAX_COUNT` is refused with its line.  Empty cells take
    ``default``; with no default they are an issue.  Returns an int64 series aligned with
    ``values`` and the list of issues.
    """
    text = stripped_text(values, stripped=stripped)
    cells = text.to_numpy()
    size = len(cells)
    joined = "".join(cells) if size and all(map(isinstance, cells, repeat(str, size))) else None
    if joined is not None and joined.isascii() and joined.isdecimal() and all(cells) and max(map(len, cells)) <= 18:
        # Every cell is a whole number written in ASCII digits (the usual file): one pass.
        exact = np.fromstring(",".join(cells), dtype=np.int64, sep=",")  # numpy's C parser, exact for int64
        if len(exact) != size:
            exact = np.fromiter(map(int, cells), dtype=np.int64, count=size)
        return pd.Series(exact, index=values.index, dtype="int64"), []
    digits = (
        np.fromiter(map(str.isdecimal, cells), dtype=bool, count=size)
        & np.fromiter(map(str.isascii, cells), dtype=bool, count=size)
        & (np.fromiter(map(len, cells), dtype=np.int64, count=size) <= 18)
    )
    result = np.zeros(size, dtype=np.int64)
    if digits.any():
        result[digits] = np.fromiter(map(int, cells[digits]), dtype=np.int64, count=int(digits.sum()))
    issues: list[Issue] = []
    for position in np.flatnonzero(~digits):
        cell = str(text.iloc[position])
        line = int(lines[position])
        if cell == "":
            if default is None:
                issues.append(Issue(file, line, column, "the count is empty"))
            else:
                result[position] = default
            continue
        whole = re.fullmatch(_WHOLE, cell)
        if whole is not None:
            number = int(whole.group(1))
            if number > MAX_COUNT:
                issues.append(
                    Issue(file, line, column, f"count {shown_cell(cell)} is too large (the largest is {MAX_COUNT})")
                )
            else:
                result[position] = number
        elif re.fullmatch(r"-\s*\d+(?:\.\d*)?", cell):
            issues.append(Issue(file, line, column, f"negative count {shown_cell(cell)} (counts must be >= 0)"))
        elif re.fullmatch(r"\+?\d*\.\d+|\+?\d+\.\d*", cell):
            issues.append(
                Issue(file, line, column, f"non-integer count {shown_cell(cell)} (counts must be whole numbers)")
            )
        else:
            issues.append(
                Issue(file, line, column, f"cannot parse {shown_cell(cell)} as a count (expected a whole number >= 0)")
            )
    return pd.Series(result, index=values.index, dtype="int64"), issues


def parse_int_codes(
    values: pd.Series,
    *,
    file: str,
    lines: np.ndarray,
    column: str,
    allowed: Sequence[int] | None = None,
) -> tuple[pd.Series, list[Issue]]:
    """Parse integer codes written as ``2`` or ``2.0``; empty cells become ``<NA>``."""
    text = values.astype(str).str.strip()
    numbers = pd.to_numeric(text.where(text != ""), errors="coerce")
    issues: list[Issue] = []
    out = pd.array([pd.NA] * len(text), dtype="Int64")
    for position, (cell, number) in enumerate(zip(text.to_numpy(), numbers.to_numpy(dtype=float), strict=True)):
        if cell == "":
            continue
        if not np.isfinite(number) or number != np.floor(number):
            issues.append(
                Issue(file, int(lines[position]), column, f"cannot parse {shown_cell(cell)} as an integer code")
            )
        elif allowed is not None and int(number) not in allowed:
            issues.append(
                Issue(file, int(lines[position]), column, f"code {shown_cell(cell)} is not one of {list(allowed)}")
            )
        else:
            out[position] = int(number)
    return pd.Series(out, index=values.index), issues

"""The exception family, rooted in :class:`ForecastError`.

A subclass exists only where a caller branches on it.  Data problems carry a list of
:class:`Issue` objects so that one run reports every bad row, not just the first.  A subclass
also derives from the builtin exception it refines (a malformed file is a ``ValueError``, a
lock held too long a ``TimeoutError``, a failed delivery an ``OSError``), so code that knows
nothing of this family still catches it where it should.

Checks that report every problem at once gather them in one of two collectors: data readers in
a list of :class:`Issue` (located by file, line and column, raised as one
:class:`DataValidationError`), configuration files in :class:`Problems` (located by a path of
keys inside the file, raised as one error of the caller's class).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict


class IssueRecord(TypedDict):
    """An :class:`Issue` as a JSON-ready mapping (:meth:`Issue.to_dict`); ``Issue(**record)`` rebuilds it."""

    file: str
    line: int | None
    column: str | None
    message: str


#: Longest text of a value or location echoed in a message (a hostile file must not make a huge one).
SHOWN_CHARACTERS = 80


@dataclass(frozen=True)
class Issue:
    """One problem (or warning) found in an input, located as precisely as possible.

    Parameters
    ----------
    file : str
        The input file, as given by the user (``"<memory>"`` for in-memory frames).
    line : int or None
        1-based line number in the file (the header is line 1), or None when the problem
        concerns the file as a whole.
    column : str or None
        The column concerned, if any.
    message : str
        What is wrong, in words a user can act on.
    """

    file: str
    line: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column is not None:
            where += f", column '{self.column}'"
        return f"{where}: {self.message}"

    def to_dict(self) -> IssueRecord:
        return {"file": self.file, "line": self.line, "column": self.column, "message": self.message}


class Problems:
    """Collects the problems of one configuration file or mapping so that one error lists all of them.

    Each problem is ``"where: reason"``, where ``where`` is the path of keys inside the file
    (``"rate.kwargs.alpha"``; empty for a problem of the whole file or a message that says
    where itself).
    """

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, reason: str) -> None:
        where = where if len(where) <= SHOWN_CHARACTERS else where[: SHOWN_CHARACTERS - 3] + "..."
        self.items.append(f"{where}: {reason}" if where else reason)

    def raise_if_any(self, source: str, what: str, error: type[Exception]) -> None:
        """Raise ``error("SOURCE: N WHAT problems:\n  - ...")`` when any problem was added."""
        if self.items:
            noun = "problem" if len(self.items) == 1 else "problems"
            listed = "\n".join(f"  - {item}" for item in self.items)
            raise error(f"{source}: {len(self.items)} {what} {noun}:\n{listed}")


class ForecastError(Exception):
    """Root of every error the toolkit raises on purpose."""


class DataValidationError(ForecastError):
    """Input data are invalid; ``issues`` lists every problem found."""

    def __init__(self, issues: list[Issue] | Issue):
        found = [issues] if isinstance(issues, Issue) else list(issues)
        self.issues: list[Issue] = sorted(found, key=lambda i: (i.file, i.line or 0))
        shown = "\n".join(f"  - {issue}" for issue in self.issues[:50])
        more = len(self.issues) - 50
        if more > 0:
            shown += f"\n  ... and {more} more"
        noun = "problem" if len(self.issues) == 1 else "problems"
        super().__init__(f"{len(self.issues)} data {noun}:\n{shown}")


class PriorConfigError(ForecastError):
    """A prior file or prior dictionary is malformed."""


class OptionError(ForecastError, ValueError):
    """An option (of the command line, a request or a model) has a value it does not allow."""


class FitFileError(ForecastError, ValueError):
    """A fit's recorded provenance is malformed (a damaged or hand-edited fit file)."""


class FitMismatchError(ForecastError):
    """A saved fit does not match the data, priors or options it is used with."""


class RulesConfigError(ForecastError, ValueError):
    """An alert rules file or dictionary is malformed."""


class StateLockedError(ForecastError, TimeoutError):
    """Another run held the alert state file for longer than the lock timeout."""


class NotifySpecError(ForecastError, ValueError):
    """A ``--notify`` SPEC is malformed."""


class NotifyError(ForecastError, OSError):
    """A notification could not be delivered (it stays in the outbox)."""

"""The series the alert detector sees: daily counts per front, and window totals.

Built from the rows the job read (:func:`select_rows`: the per-front exclusions of an alert
run) and the daily panel aggregated from them (:func:`daily_series`), with no I/O:
:func:`forecast.jobs.alert_inputs.load_daily_series` reads the files with the project's
reader and hands both over.

Declared gaps (``precision = not_observed`` rows: "front not observed from ``date`` to
``end_date``") are neither zeros nor observations: their days are NaN in the daily series.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date as Date
from typing import Any

import numpy as np
import pandas as pd

from forecast import names as n
from forecast.data.events import PRECISION_NOT_OBSERVED, EventTable
from forecast.data.panel import Panel
from forecast.errors import DataValidationError, Issue

log = logging.getLogger(__name__)

__all__ = ["DailySeries", "WindowSeries", "daily_series", "select_rows"]


@dataclass(frozen=True)
class WindowSeries:
    """Window totals of a front observed only through windows, ordered by end date.

    Attributes
    ----------
    front : str
    starts, ends : tuple of str
        First and last day of each window (ISO, inclusive).
    counts, days : numpy.ndarray of int64
        Each window's total and its length in days.
    """

    front: str
    starts: tuple[str, ...]
    ends: tuple[str, ...]
    counts: np.ndarray
    days: np.ndarray

    def observed(self) -> dict[str, int]:
        """``{end date: total}``: what the state file records as processed."""
        return {end: int(count) for end, count in zip(self.ends, self.counts.tolist(), strict=True)}


@dataclass(frozen=True)
class DailySeries:
    """Daily counts of the fronts observed day by day.

    Attributes
    ----------
    fronts : tuple of str
    dates : tuple of str
        Every day of the span, ISO.
    counts : numpy.ndarray, shape (front, day)
        NaN where the front was not observed that day (a window total covers it, or the day is
        before the front's first row); float, for the detector.
    skipped : tuple of str
        Fronts with neither daily counts nor window totals up to the end.
    data_hash : str
        SHA-256 of the fronts, days, counts and window totals the detector sees.
    windows : tuple of WindowSeries
        The fronts observed only through window totals (window totals of fronts that also
        have daily counts are not used by the detector).
    exact : numpy.ndarray of int64, shape (front, day)
        The same counts as exact integers (0 where not observed): what is stored and reported.
    gaps : numpy.ndarray of bool, shape (front, day)
        True on the days of a declared gap (``precision = not_observed``): not observed
        (NaN in ``counts``), so the detector skips them; they are counted apart from the other
        unobserved days only to say how many a run skipped.
    """

    fronts: tuple[str, ...]
    dates: tuple[str, ...]
    counts: np.ndarray
    skipped: tuple[str, ...]
    data_hash: str
    windows: tuple[WindowSeries, ...] = ()
    exact: np.ndarray | None = None
    gaps: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.exact is None:
            object.__setattr__(self, "exact", np.nan_to_num(self.counts).astype(np.int64))
        if self.gaps is None:
            object.__setattr__(self, "gaps", np.zeros(np.shape(self.counts), dtype=bool))

    @property
    def exact_counts(self) -> np.ndarray:
        """``exact``, never None (``__post_init__`` fills it)."""
        assert self.exact is not None
        return self.exact

    @property
    def gap_days(self) -> np.ndarray:
        """``gaps``, never None (``__post_init__`` fills it)."""
        assert self.gaps is not None
        return self.gaps

    def count(self, front: int, day: int) -> int:
        """The exact count of front ``front`` on day ``day`` (0 where not observed)."""
        return int(self.exact_counts[front, day])

    @property
    def window_fronts(self) -> tuple[str, ...]:
        return tuple(w.front for w in self.windows)

    @property
    def end(self) -> str:
        return self.dates[-1]


def select_rows(
    events: EventTable,
    *,
    as_of: Date | None = None,
    known_starts: Mapping[str, str] | None = None,
) -> tuple[EventTable, pd.Timestamp]:
    """The rows an alert run aggregates, and the last day of its span.

    Rows are excluded **per front**, each reported at WARNING with its file and lines:

    * a row dated after ``as_of`` (or a window ending after it), such as a year mistyped
      2033 for 2023;
    * a row (or a window) ending before the front's known history (``known_starts``: the first
      day the state file holds for the front), such as a year mistyped 2013 for 2023.

    A declared gap (``precision = not_observed``, see :mod:`forecast.data.panel`) is no row of
    counts: its days are not observed (NaN in ``counts``, True in ``gaps``), never zeros.  A gap
    that runs past ``as_of`` is cut at ``as_of`` (its days up to then are known to be
    unobserved; leaving it out would make them zeros up to the end of the other fronts' data);
    a gap that starts after ``as_of`` or ends before the front's known history is left out
    without a warning (there is nothing of it to process).

    An excluded row extends no front: the span ends on the last day of the rows that are kept
    (never later; days after the last input row are not filled with zeros).

    Parameters
    ----------
    events : EventTable
        As read (not modified).
    as_of : date, optional
        The run's date.
    known_starts : mapping of str to str, optional
        Front -> first processed day (ISO) from the state file.

    Returns
    -------
    events : EventTable
        The rows kept.
    end : pandas.Timestamp
        The last day of the rows kept (a window's or gap's end date).

    Raises
    ------
    DataValidationError
        When nothing is left up to ``as_of``.
    """
    frame = events.frame
    is_gap = (frame[n.PRECISION] == PRECISION_NOT_OBSERVED).to_numpy()
    last_day = frame[n.END_DATE].fillna(frame[n.DATE])
    excluded = np.zeros(len(frame), dtype=bool)
    if as_of is not None:
        cut = pd.Timestamp(as_of)
        late = (last_day > cut).to_numpy()
        straddling = is_gap & late & (frame[n.DATE] <= cut).to_numpy()
        if straddling.any():  # known up to as_of: cut there (a copy: the reader's frame is left alone)
            frame = frame.copy()
            frame.loc[straddling, n.END_DATE] = cut
            last_day = frame[n.END_DATE].fillna(frame[n.DATE])
            late &= ~straddling
            events = EventTable(frame=frame, warnings=events.warnings, files=events.files)
        if (late | is_gap).all():
            raise DataValidationError(
                Issue(", ".join(events.files), None, n.DATE, f"no events on or before as_of {as_of.isoformat()}")
            )
        _warn_excluded(frame[late & ~is_gap], f"dated after as_of {as_of.isoformat()}", "")
        excluded |= late
    if known_starts:
        starts = pd.to_datetime(frame[n.FRONT].map(known_starts))
        # A row's last day (a window's end: a window front's state is keyed by end dates).
        early = (last_day < starts).to_numpy() & ~excluded
        _warn_excluded(
            frame[early & ~is_gap],
            "dated before the front's history in the state file",
            " (to add earlier history, start a new --state)",
        )
        excluded |= early
    if excluded.any():
        frame = frame[~excluded]
        if frame.empty:
            raise DataValidationError(Issue(", ".join(events.files), None, n.DATE, "no events left to process"))
        events = EventTable(frame=frame, warnings=events.warnings, files=events.files)
    return events, frame[n.END_DATE].fillna(frame[n.DATE]).max()


def daily_series(panel: Panel, events: EventTable) -> DailySeries:
    """The daily counts and window totals of a daily panel, for the detector.

    Each front's daily series starts on its own first row in ``events`` (the rows the panel
    was aggregated from): the days before it are not observed, rather than zeros borrowed from
    another front's longer history.  A front with no daily counts but window totals is a
    :class:`WindowSeries`; one with neither is skipped.
    """
    if panel.freq != n.FREQ_DAY:
        raise ValueError(f"the alert series need a daily panel, got freq {panel.freq!r}")
    first = events.frame.groupby(n.FRONT, sort=False)[n.DATE].min()
    for issue in panel.warnings:
        log.debug("%s", issue)
    periods = panel.periods
    table = panel.observations
    period_rows = (table[n.OBS_KIND] == n.OBS_PERIOD).to_numpy()
    row_of = pd.Index(panel.fronts).get_indexer(pd.Index(table[n.FRONT].to_numpy()[period_rows]))
    exact = np.zeros((len(panel.fronts), len(periods)), dtype=np.int64)
    seen = np.zeros(exact.shape, dtype=bool)
    start = periods[0].to_datetime64() if len(periods) else np.datetime64("1970-01-01")
    columns = ((table[n.DATE].to_numpy()[period_rows] - start) // np.timedelta64(1, "D")).astype(np.int64)
    exact[row_of, columns] = table[n.COUNT].to_numpy(dtype=np.int64)[period_rows]
    seen[row_of, columns] = True
    # Each front starts on its own first row: the days before it are not observed.
    first_column = periods.get_indexer(pd.Index(first.reindex(list(panel.fronts))))
    seen &= np.arange(len(periods))[None, :] >= first_column[:, None]
    exact[~seen] = 0
    gaps = _daily_gap_mask(panel, len(periods))
    daily = np.flatnonzero(seen.any(axis=1))
    counts = np.where(seen, exact.astype(float), np.nan)
    windows = []
    skipped = []
    table = table[~period_rows]
    daily_set = set(daily.tolist())
    by_front = dict(tuple(table.groupby(n.FRONT, sort=False))) if len(table) else {}
    for i, front in enumerate(panel.fronts):
        if i in daily_set:
            continue
        rows = by_front.get(front)
        if rows is None or rows.empty:
            skipped.append(front)
            continue
        rows = rows.sort_values([n.END_DATE, n.DATE], kind="stable")
        windows.append(
            WindowSeries(
                front=front,
                starts=tuple(day.date().isoformat() for day in rows[n.DATE]),
                ends=tuple(day.date().isoformat() for day in rows[n.END_DATE]),
                counts=rows[n.COUNT].to_numpy(dtype=np.int64),
                days=rows[n.EXPOSURE_DAYS].to_numpy(dtype=np.int64),
            )
        )
    fronts = tuple(panel.fronts[i] for i in daily)
    dates = tuple(periods.strftime("%Y-%m-%d"))
    return DailySeries(
        fronts=fronts,
        dates=dates,
        counts=counts[daily],
        skipped=tuple(skipped),
        data_hash=_series_hash(fronts, dates, exact[daily], seen[daily], windows, gaps[daily]),
        windows=tuple(windows),
        exact=exact[daily],
        gaps=gaps[daily],
    )


def _daily_gap_mask(panel: Any, n_days: int) -> np.ndarray:
    """The panel's declared gaps as ``(front, day)`` booleans over its daily periods."""
    if panel.gaps.empty:
        return np.zeros((len(panel.fronts), n_days), dtype=bool)
    mask = panel.gap_mask()
    if mask.shape[1] != n_days:  # a daily panel's periods are its days
        raise AssertionError(f"gap mask over {mask.shape[1]} days, daily periods {n_days}")
    return mask


def _warn_excluded(rows: Any, why: str, hint: str) -> None:
    """One WARNING per file and front for rows a run leaves out, with their lines."""
    if rows.empty:
        return
    for (file, front), group in rows.groupby([n.ORIGIN_FILE, n.FRONT], sort=True):
        lines = group[n.ORIGIN_LINE].tolist()
        shown = ", ".join(str(x) for x in lines[:10]) + (" ..." if len(lines) > 10 else "")
        dates = group[n.DATE]
        span = (
            f"{dates.min().date()}" if dates.min() == dates.max() else f"{dates.min().date()} .. {dates.max().date()}"
        )
        log.warning(
            "%s: %d row(s) of front %r %s are excluded (%s), line(s) %s%s; no other front is affected",
            file,
            len(lines),
            front,
            why,
            span,
            shown,
            hint,
        )


def _series_hash(
    fronts: Sequence[str],
    dates: Sequence[str],
    exact: np.ndarray,
    seen: np.ndarray,
    windows: Sequence[WindowSeries],
    gaps: np.ndarray,
) -> str:
    """SHA-256 of what the detector sees (fronts, days, counts, observed days, window totals, gaps).

    Data without gaps hash as they did before gaps existed.
    """
    digest = hashlib.sha256()
    digest.update("\n".join(fronts).encode())
    digest.update(f"|{dates[0] if dates else ''}|{dates[-1] if dates else ''}|".encode())
    digest.update(np.ascontiguousarray(exact, dtype="<i8").tobytes())
    digest.update(np.packbits(seen).tobytes())
    for w in windows:
        digest.update(f"{w.front}|{','.join(w.starts)}|{','.join(w.ends)}|{w.counts.tolist()}".encode())
    if gaps.any():
        digest.update(b"|gaps|" + np.packbits(gaps).tobytes())
    return digest.hexdigest()

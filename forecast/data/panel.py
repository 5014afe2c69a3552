"""Aggregation of validated events into a count panel on a regular grid.

A :class:`Panel` holds every observation the models use, one row each:

* **period observations**: the count of one front over one grid period (a day, week,
  month or year), with ``exposure_days``, the number of days of that period inside the
  observed span (the first and last periods may be partial; the model multiplies its daily
  rate by it).  Days with no events are explicit zeros.
* **window observations**: a total reported over ``date..end_date`` (inclusive), kept as
  it was reported.  A window is never spread into invented daily values; the model sums
  its daily rate over the window.

Which days count as observed
----------------------------
The span runs from ``start`` (default: the earliest date in the input) to ``end``
(``as_of`` when given, else the latest date in the input).  A front with at least one
single-day row is observed on every day of the span that none of its own windows covers:
those days get zeros where no event is recorded.  A front with window rows only is observed
only through its windows.  Rows after ``as_of`` (and windows that end after it) are
excluded and reported as warnings; they are never used.

Declared gaps
-------------
A row with ``precision = not_observed`` says "this front was not observed from ``date`` to
``end_date``" (a reporting blackout, a change of coding).  A gap is neither zero nor a window:
its days are left out of the front's observed days, exactly as the days under a window are
(:func:`~forecast.data.aggregation.aggregate_points` receives the gaps with the windows), so a period wholly inside a
gap has **no observation row** (its count is NaN in :meth:`Panel.counts_matrix`, so the
baselines skip it and the backtest does not score it) and a period partly inside one has only
its observed days as exposure.  The models read observations only, so gap days have no
likelihood term.  :attr:`Panel.gaps` keeps the gaps (clipped to the span), and
:meth:`Panel.gap_mask` gives them day by day for the alert detector.  An event row or a
window of the same front inside a gap is an error.  Gaps count towards the span's default
start and end.

Period tables and uncertain dates
---------------------------------
Rows dated on period starts (published per-period tables) and events whose date is known only
to lie in a span are placed as :mod:`forecast.data.placement` describes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from forecast import names as n
from forecast.data.aggregation import OBSERVATION_COLUMNS, aggregate_points, window_rows
from forecast.data.events import PRECISION_NOT_OBSERVED, EventTable
from forecast.data.periods import PERIOD_OFFSET, next_period, period_end, period_grid, period_start
from forecast.data.placement import (
    PERIOD_TABLE_CHOICES,
    UNCERTAIN_DATE_CHOICES,
    UNCERTAIN_END,
    period_table_fronts,
    place_uncertain_dates,
    whole_periods_only,
)
from forecast.errors import DataValidationError, Issue

# The grid helpers and the placement of uncertain dates moved to their own modules; these
# names stay importable from here for the modules that import them from the panel.
__all__ = [
    "GAP_COLUMNS",
    "OBSERVATION_COLUMNS",
    "PERIOD_OFFSET",
    "UNCERTAIN_END",
    "Panel",
    "build_panel",
    "period_start",
]

#: Columns of :attr:`Panel.gaps`: the front and the first and last day not observed.
GAP_COLUMNS = [n.FRONT, n.DATE, n.END_DATE]

#: Columns written by :meth:`Panel.to_frame` (the ``data panel`` CSV).
PANEL_CSV_COLUMNS = [n.DATE, n.FRONT, n.COUNT, n.END_DATE, n.PRECISION]

#: A period's daily rate is flagged as an extreme outlier when it exceeds this multiple of the
#: front's 95th-percentile daily rate (and of one event a day) ...
OUTLIER_RATIO = 5.0
OUTLIER_QUANTILE = 0.95
#: ... provided the front has at least this many period observations to compare with.
OUTLIER_MIN_PERIODS = 20


@dataclass(frozen=True)
class Panel:
    """Counts per front on a regular grid, plus reported window totals.

    Attributes
    ----------
    freq : str
        ``day``, ``week``, ``month`` or ``year``.
    start, end : pandas.Timestamp
        First and last observed day (inclusive).
    as_of : pandas.Timestamp or None
        The date the panel was cut at, when given.
    fronts : tuple of str
        Front names, sorted.
    periods : pandas.DatetimeIndex
        First day of each grid period, covering ``start..end``.
    observations : pandas.DataFrame
        Columns :data:`OBSERVATION_COLUMNS`, sorted by front, date and kind.
    warnings : tuple of Issue
        Reader warnings and what the aggregation excluded or found suspicious.
    period_table_fronts : tuple of str
        Fronts read as period tables (each row the total of its whole period).
    gaps : pandas.DataFrame
        Declared gaps, columns :data:`GAP_COLUMNS` (``date``..``end_date`` inclusive, clipped
        to ``start..end``), sorted by front and date.
    """

    freq: str
    start: pd.Timestamp
    end: pd.Timestamp
    as_of: pd.Timestamp | None
    fronts: tuple[str, ...]
    periods: pd.DatetimeIndex
    observations: pd.DataFrame
    warnings: tuple[Issue, ...] = field(default_factory=tuple)
    period_table_fronts: tuple[str, ...] = ()
    gaps: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=GAP_COLUMNS))

    @property
    def n_periods(self) -> int:
        return len(self.periods)

    @property
    def period_obs(self) -> pd.DataFrame:
        return self.observations[self.observations[n.OBS_KIND] == n.OBS_PERIOD]

    @property
    def window_obs(self) -> pd.DataFrame:
        return self.observations[self.observations[n.OBS_KIND] == n.OBS_WINDOW]

    def days(self) -> pd.DatetimeIndex:
        """Every day of the span ``start..end``."""
        return pd.date_range(self.start, self.end, freq="D")

    def gap_ranges(self, front: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """The declared gaps of ``front`` as ``(first day, last day)`` pairs, inclusive, in date order."""
        mine = self.gaps[self.gaps[n.FRONT] == front]
        return [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in zip(mine[n.DATE], mine[n.END_DATE], strict=True)]

    def gap_mask(self) -> np.ndarray:
        """``(front, day)`` booleans over :meth:`days`: True where the front was declared not observed.

        The alert detector's view of gaps: such a day is no observation (advance no run
        length, raise nothing), neither a zero nor part of a window.
        """
        days = self.days().to_numpy()
        mask = np.zeros((len(self.fronts), len(days)), dtype=bool)
        for f, front in enumerate(self.fronts):
            for first, last in self.gap_ranges(front):
                mask[f] |= (days >= first.to_datetime64()) & (days <= last.to_datetime64())
        return mask

    def period_days(self) -> np.ndarray:
        """Days of each period that lie inside ``start..end`` (partial edge periods count less)."""
        starts = np.maximum(self.periods.to_numpy(), self.start.to_datetime64())
        ends = np.minimum(self.period_ends().to_numpy(), self.end.to_datetime64())
        return ((ends - starts) / np.timedelta64(1, "D")).astype(np.int64) + 1

    def period_ends(self) -> pd.DatetimeIndex:
        """Last day of each grid period."""
        following = list(self.periods[1:]) + [next_period(self.periods[-1], self.freq)]
        return pd.DatetimeIndex(following) - pd.Timedelta(days=1)

    def counts_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """Period counts and exposures as ``(front, period)`` arrays.

        Returns
        -------
        counts : numpy.ndarray of float
            NaN where the front has no period observation (covered by a window, or never
            observed day by day).
        exposure : numpy.ndarray of int
            Observed days in each cell (0 where ``counts`` is NaN).
        """
        counts = np.full((len(self.fronts), self.n_periods), np.nan)
        exposure = np.zeros((len(self.fronts), self.n_periods), dtype=np.int64)
        obs = self.period_obs
        if len(obs):
            rows = pd.Index(self.fronts).get_indexer(pd.Index(obs[n.FRONT]))
            cols = self.periods.get_indexer(pd.Index(obs[n.DATE]))
            counts[rows, cols] = obs[n.COUNT].to_numpy(dtype=float)
            exposure[rows, cols] = obs[n.EXPOSURE_DAYS].to_numpy()
        return counts, exposure

    def window_weights(self, windows: pd.DataFrame | None = None) -> np.ndarray:
        """Days of overlap between each window observation and each period, ``(window, period)``.

        A window's expected total is ``sum_t weights[w, t] * daily_rate[front, t]``.  ``windows``:
        some rows of :attr:`window_obs` (all of them by default).
        """
        windows = self.window_obs if windows is None else windows
        starts = self.periods.to_numpy()
        ends = self.period_ends().to_numpy()
        weights = np.zeros((len(windows), self.n_periods), dtype=np.int64)
        for row, (w_start, w_end) in enumerate(
            zip(windows[n.DATE].to_numpy(), windows[n.END_DATE].to_numpy(), strict=True)
        ):
            lo = np.maximum(starts, w_start)
            hi = np.minimum(ends, w_end)
            weights[row] = np.clip(((hi - lo) / np.timedelta64(1, "D")).astype(np.int64) + 1, 0, None)
        return weights

    def to_frame(self) -> pd.DataFrame:
        """The panel as the ``data panel`` CSV writes it: ``date,front,count,end_date,precision``.

        ``end_date`` is filled for window totals only.
        """
        obs = self.observations
        frame = pd.DataFrame(
            {
                n.DATE: obs[n.DATE].dt.strftime("%Y-%m-%d"),
                n.FRONT: obs[n.FRONT],
                n.COUNT: obs[n.COUNT].astype(np.int64),
                n.END_DATE: obs[n.END_DATE].dt.strftime("%Y-%m-%d").where(obs[n.OBS_KIND] == n.OBS_WINDOW, ""),
                n.PRECISION: obs[n.PRECISION],
            }
        )
        if len(self.gaps):  # written as the events format declares them, so the CSV reads back
            gaps = pd.DataFrame(
                {
                    n.DATE: pd.to_datetime(self.gaps[n.DATE]).dt.strftime("%Y-%m-%d"),
                    n.FRONT: self.gaps[n.FRONT].to_numpy(),
                    n.COUNT: 0,
                    n.END_DATE: pd.to_datetime(self.gaps[n.END_DATE]).dt.strftime("%Y-%m-%d"),
                    n.PRECISION: PRECISION_NOT_OBSERVED,
                }
            )
            frame = pd.concat([frame, gaps], ignore_index=True)
        return frame[PANEL_CSV_COLUMNS].reset_index(drop=True)

    def data_hash(self) -> str:
        """SHA-256 of the panel's content (frequency, span and every observation)."""
        digest = hashlib.sha256()
        digest.update(f"{self.freq}|{self.start.date()}|{self.end.date()}\n".encode())
        digest.update(self.to_frame().to_csv(index=False, lineterminator="\n").encode())
        return digest.hexdigest()


def whole_periods(window_weights: np.ndarray, period_days: np.ndarray) -> np.ndarray:
    """``(window,)`` the period each window covers exactly, whole, or -1.

    A window that covers one whole period (a month of a monthly table, a day given with its own
    ``end_date`` on a daily grid) is that period's count written as a window.  ``window_weights``
    as :meth:`Panel.window_weights` gives them, ``period_days`` as :meth:`Panel.period_days`.
    """
    covered = window_weights > 0
    period = covered.argmax(axis=1) if covered.size else np.zeros(len(window_weights), dtype=np.int64)
    whole = (covered.sum(axis=1) == 1) & (window_weights.max(axis=1, initial=0) == period_days[period])
    return np.where(whole, period, -1)


def build_panel(
    events: EventTable,
    *,
    freq: str = n.FREQ_DAY,
    as_of: str | pd.Timestamp | None = None,
    start: str | pd.Timestamp | None = None,
    period_tables: str = "auto",
    uncertain_dates: str = "middle",
) -> Panel:
    """Aggregate validated events to a panel.

    Parameters
    ----------
    events : EventTable
        From a reader.  Not modified.
    freq : {"day", "week", "month", "year"}
        Grid frequency.
    as_of : date-like, optional
        Last day used.  Rows after it, and windows ending after it, are excluded and
        reported in ``Panel.warnings``.  Defaults to the latest date in the input.
    start : date-like, optional
        First observed day.  Defaults to the earliest date in the input; rows before it are
        excluded and reported.
    period_tables : {"auto", "yes", "no"}
        Which fronts are read as period tables (see the module docstring).
    uncertain_dates : {"start", "middle", "drop"}
        Placement of an event whose span crosses a period boundary (see the module docstring).

    Raises
    ------
    DataValidationError
        For overlapping windows of one front, single-day rows inside a window of the same
        front, or when nothing is left to aggregate.
    """
    if freq not in n.FREQS:
        raise ValueError(f"unknown frequency {freq!r}; allowed: {list(n.FREQS)}")
    if period_tables not in PERIOD_TABLE_CHOICES:
        raise ValueError(f"unknown period_tables {period_tables!r}; allowed: {list(PERIOD_TABLE_CHOICES)}")
    if uncertain_dates not in UNCERTAIN_DATE_CHOICES:
        raise ValueError(f"unknown uncertain_dates {uncertain_dates!r}; allowed: {list(UNCERTAIN_DATE_CHOICES)}")
    frame = events.frame
    files = ", ".join(events.files) or "<memory>"
    if frame.empty:
        raise DataValidationError(Issue(files, None, None, "no events to aggregate"))
    warnings = list(events.warnings)
    frame, placed = place_uncertain_dates(frame, freq, uncertain_dates)
    warnings += placed
    is_gap = (frame[n.PRECISION] == PRECISION_NOT_OBSERVED).to_numpy()
    declared_gaps, frame = frame[is_gap], frame[~is_gap]
    if frame.empty:
        left = "; ".join([str(w) for w in placed if "dropped" in str(w)] + ["declared gaps are no events"])
        raise DataValidationError(Issue(files, None, None, f"no events left to aggregate ({left})"))
    table_fronts = period_table_fronts(frame, freq, period_tables, files)
    last_day = frame[n.END_DATE].fillna(frame[n.DATE])
    in_table = frame[n.FRONT].isin(table_fronts).to_numpy()
    if in_table.any():
        last_day = last_day.where(~in_table, period_end(frame[n.DATE], freq))

    # Gaps count towards the default span: "not observed until D2" says the data reach D2.
    every_last = pd.concat([last_day, declared_gaps[n.END_DATE].fillna(declared_gaps[n.DATE])])
    every_first = pd.concat([frame[n.DATE], declared_gaps[n.DATE]])
    end = pd.Timestamp(as_of).normalize() if as_of is not None else every_last.max()
    begin = pd.Timestamp(start).normalize() if start is not None else every_first.min()
    if begin > end:
        raise DataValidationError(
            Issue(files, None, None, f"start {begin.date()} is after the end of the span {end.date()}")
        )

    after = last_day > end
    before = frame[n.DATE] < begin
    warnings += _exclusion_warnings(frame[after], f"after as_of {end.date()}")
    warnings += _exclusion_warnings(frame[before & ~after], f"before start {begin.date()}")
    kept = frame[~after & ~before] if (after | before).any() else frame  # no copy when nothing is excluded
    if kept.empty:
        raise DataValidationError(Issue(files, None, None, f"no rows fall within {begin.date()}..{end.date()}"))

    is_window = kept[n.END_DATE].notna().to_numpy()
    windows = kept[is_window]
    points = kept[~is_window] if is_window.any() else kept  # no copy when there are no windows
    _check_windows(windows, points)
    gaps = _clip_gaps(declared_gaps, begin, end)
    _check_gaps(gaps, kept)

    fronts = tuple(sorted(kept[n.FRONT].unique().tolist()))
    periods = period_grid(begin, end, freq)
    # Gap days are unobserved exactly as window days are: handed over with the windows.
    unobserved = pd.concat([windows[[n.FRONT, n.DATE, n.END_DATE]], gaps], ignore_index=True) if len(gaps) else windows
    period_obs = aggregate_points(points, unobserved, fronts, periods, begin, end, freq)
    period_obs = whole_periods_only(period_obs, table_fronts, periods, begin, end, freq)
    window_obs = window_rows(windows)
    parts = [part for part in (period_obs, window_obs) if not part.empty]
    observations = pd.concat(parts, ignore_index=True)
    observations = observations.sort_values([n.FRONT, n.DATE, n.OBS_KIND], kind="mergesort").reset_index(drop=True)
    panel = Panel(
        freq=freq,
        start=begin,
        end=end,
        as_of=pd.Timestamp(as_of).normalize() if as_of is not None else None,
        fronts=fronts,
        periods=periods,
        observations=observations[OBSERVATION_COLUMNS],
        warnings=(),
        period_table_fronts=table_fronts,
        gaps=gaps[gaps[n.FRONT].isin(fronts)].reset_index(drop=True),
    )
    warnings += _partial_period_warnings(panel)
    warnings += _outlier_warnings(panel)
    return replace(panel, warnings=tuple(warnings))


def _clip_gaps(declared: pd.DataFrame, begin: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Declared gaps as :data:`GAP_COLUMNS`, clipped to ``begin..end``, overlapping ones merged."""
    if declared.empty:
        return pd.DataFrame(columns=GAP_COLUMNS)
    first = np.maximum(declared[n.DATE].to_numpy(), begin.to_datetime64())
    last = np.minimum(declared[n.END_DATE].fillna(declared[n.DATE]).to_numpy(), end.to_datetime64())
    frame = pd.DataFrame({n.FRONT: declared[n.FRONT].to_numpy(), n.DATE: first, n.END_DATE: last})
    frame = frame[frame[n.DATE] <= frame[n.END_DATE]].sort_values([n.FRONT, n.DATE], kind="mergesort")
    merged = []
    for front, group in frame.groupby(n.FRONT, sort=True):
        current = None
        for a, b in zip(group[n.DATE], group[n.END_DATE], strict=True):
            if current is not None and a <= current[1] + pd.Timedelta(days=1):
                current[1] = max(current[1], b)
            else:
                if current is not None:
                    merged.append((front, *current))
                current = [a, b]
        if current is not None:
            merged.append((front, *current))
    return pd.DataFrame(merged, columns=GAP_COLUMNS)


def _check_gaps(gaps: pd.DataFrame, kept: pd.DataFrame) -> None:
    """A row of a front dated inside one of its declared gaps contradicts it: an error."""
    issues = []
    for front, first, last in gaps.itertuples(index=False):
        rows = kept[kept[n.FRONT] == front]
        row_last = rows[n.END_DATE].fillna(rows[n.DATE])
        inside = rows[(rows[n.DATE] <= last) & (row_last >= first)]
        for row in inside.itertuples(index=False):
            row_d = row._asdict()
            issues.append(
                Issue(
                    row_d[n.ORIGIN_FILE],
                    row_d[n.ORIGIN_LINE],
                    n.DATE,
                    f"row dated {row_d[n.DATE].date()} of front {front!r} falls inside its declared gap "
                    f"{first.date()}..{last.date()} (not_observed)",
                )
            )
    if issues:
        raise DataValidationError(issues)


def _partial_period_warnings(panel: Panel) -> list[Issue]:
    """Say which first and last periods are cut by the span: their counts cover only the days observed."""
    days = panel.period_days()
    full = ((panel.period_ends() - panel.periods) / pd.Timedelta(days=1)).to_numpy().astype(np.int64) + 1
    out: list[Issue] = []
    if panel.freq == n.FREQ_DAY or not len(panel.period_obs):
        return out
    for i, which in ((0, "first"), (panel.n_periods - 1, "last")):
        if days[i] < full[i]:
            out.append(
                Issue(
                    "<panel>",
                    None,
                    n.DATE,
                    f"the {which} {panel.freq} starting {panel.periods[i].date()} is partial: {days[i]} of {full[i]} "
                    "days observed (its counts cover those days only; rates use the days observed)",
                )
            )
        if panel.n_periods == 1:
            break
    return out


def _exclusion_warnings(rows: pd.DataFrame, why: str) -> list[Issue]:
    out = []
    for file, group in rows.groupby(n.ORIGIN_FILE, sort=True):
        lines = group[n.ORIGIN_LINE].tolist()
        shown = ", ".join(str(x) for x in lines[:10]) + (" ..." if len(lines) > 10 else "")
        total = int(group[n.COUNT].sum())
        out.append(
            Issue(str(file), None, None, f"{len(lines)} row(s) ({total} events) {why} were excluded: lines {shown}")
        )
    return out


def _check_windows(windows: pd.DataFrame, points: pd.DataFrame) -> None:
    issues: list[Issue] = []
    for front, group in windows.groupby(n.FRONT, sort=True):
        ordered = group.sort_values([n.DATE, n.END_DATE], kind="mergesort")
        prev = None
        for row_d in ordered.to_dict("records"):
            if prev is not None and row_d[n.DATE] <= prev[n.END_DATE]:
                issues.append(
                    Issue(
                        row_d[n.ORIGIN_FILE],
                        row_d[n.ORIGIN_LINE],
                        n.DATE,
                        f"window {row_d[n.DATE].date()}..{row_d[n.END_DATE].date()} of front {front!r} overlaps "
                        f"window {prev[n.DATE].date()}..{prev[n.END_DATE].date()} "
                        f"({prev[n.ORIGIN_FILE]}, line {prev[n.ORIGIN_LINE]})",
                    )
                )
            if prev is None or row_d[n.END_DATE] > prev[n.END_DATE]:
                prev = row_d
        front_points = points[points[n.FRONT] == front]
        if not _any_point_inside(ordered, front_points):
            continue
        for row_d in ordered.to_dict("records"):
            inside = front_points[(front_points[n.DATE] >= row_d[n.DATE]) & (front_points[n.DATE] <= row_d[n.END_DATE])]
            for p in inside.to_dict("records"):
                issues.append(
                    Issue(
                        p[n.ORIGIN_FILE],
                        p[n.ORIGIN_LINE],
                        n.DATE,
                        f"row dated {p[n.DATE].date()} of front {front!r} falls inside the window "
                        f"{row_d[n.DATE].date()}..{row_d[n.END_DATE].date()} ({row_d[n.ORIGIN_FILE]}, line "
                        f"{row_d[n.ORIGIN_LINE]}): it would be counted twice",
                    )
                )
    if issues:
        raise DataValidationError(issues)


def _any_point_inside(ordered: pd.DataFrame, front_points: pd.DataFrame) -> bool:
    """Whether any of a front's dated rows falls inside one of its windows (``ordered`` by start).

    A vectorised screen, so that the row-by-row search that names every such row runs only where
    there is one to name: on a table of 2,025 monthly windows it took 2.9 s (a scratch profile), most of a
    warm fit's data loading.
    """
    if front_points.empty or ordered.empty:
        return False
    starts = ordered[n.DATE].to_numpy()
    latest_end = np.maximum.accumulate(ordered[n.END_DATE].to_numpy())  # of the windows starting up to each one
    dates = front_points[n.DATE].to_numpy()
    last_started = np.searchsorted(starts, dates, side="right") - 1
    started = last_started >= 0
    return bool(np.any(latest_end[last_started[started]] >= dates[started]))


def _outlier_warnings(panel: Panel) -> list[Issue]:
    """Warn (never drop) on period counts far above the rest of their front."""
    out: list[Issue] = []
    obs = panel.observations  # sorted by front and date: each front's periods are one slice
    period = (obs[n.OBS_KIND] == n.OBS_PERIOD).to_numpy()
    fronts = obs[n.FRONT].to_numpy()[period]
    dates = obs[n.DATE].to_numpy()[period]
    counts = obs[n.COUNT].to_numpy()[period]
    rates = counts.astype(float) / obs[n.EXPOSURE_DAYS].to_numpy()[period]
    if not len(fronts):
        return out
    starts = np.flatnonzero(np.r_[True, fronts[1:] != fronts[:-1]])
    for lo, hi in zip(starts.tolist(), [*starts[1:].tolist(), len(fronts)], strict=True):
        if hi - lo < OUTLIER_MIN_PERIODS:
            continue
        front, rate = fronts[lo], rates[lo:hi]
        limit = OUTLIER_RATIO * max(1.0, float(np.quantile(rate, OUTLIER_QUANTILE)))
        for date, count in zip(dates[lo:hi][rate > limit], counts[lo:hi][rate > limit], strict=True):
            date = pd.Timestamp(date)
            out.append(
                Issue(
                    "<panel>",
                    None,
                    n.COUNT,
                    f"front {front!r}: {int(count)} events in the period starting {date.date()} is an extreme "
                    f"outlier (over {OUTLIER_RATIO:g}x the front's {OUTLIER_QUANTILE:.0%} quantile); kept",
                )
            )
    return out

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
(:func:`_aggregate_points` receives the gaps with the windows), so a period wholly inside a
gap has **no observation row** (its count is NaN in :meth:`Panel.counts_matrix`, so the
baselines skip it and the backtest does not score it) and a period partly inside one has only
its observed days as exposure.  The models read observations only, so gap days have no
likelihood term.  :attr:`Panel.gaps` keeps the gaps (clipped to the span), and
:meth:`Panel.gap_mask` gives them day by day for the alert detector.  An event row or a
window of the same front inside a gap is an error.  Gaps count towards the span's default
start and end.

Period tables
-------------
Published statistics often come as one row per period, dated on its first day (a monthly
table dated on the 1st).  Read as one-day events, such a table gets ``as_of`` = the last
row's date and its last month one day of exposure: a normal month then looks like a 30x
outlier.  So, with ``period_tables="auto"`` (the default) and a grid coarser than a day, a
front whose rows (at least two) all fall on the first day of a grid period and none has an
``end_date`` is read as a **period table**: each row is the total of its whole period.  Its
rows count as ending on their period's last day: the span's default end is the end of the
last period (whole-period exposure), and a row whose period ends after ``as_of`` is
excluded like any row after it (its total is not known at ``as_of``).  ``"yes"`` reads every
front without end dates as a period table (rows not on a period start are then an error),
``"no"`` never does.  :attr:`Panel.period_table_fronts` names them and ``data check`` says so.
A period cut by ``start`` or ``as_of`` keeps only its observed days as exposure and is
reported as a partial period in the warnings, never scaled up.

Uncertain dates
---------------
An event whose date is known only to lie in a span (UCDP GED ``date_start..date_end``, ACLED
``time_precision`` 2 or 3) is **one event somewhere in its span**, never a total over a
window.  Readers give it its span's first day as ``date`` and the last as
:data:`UNCERTAIN_END` (an extra column).  Placement: when the whole span lies inside one grid
period, the event counts in that period; otherwise ``uncertain_dates`` decides: ``start``
(the span's first day), ``middle`` (its middle day, rounded down; the default) or ``drop``
(left out, counted in a warning with the events and the deaths it held).  Every event and
every death is kept, in exactly one period, unless dropped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from forecast import names as n
from forecast.data.events import PRECISION_NOT_OBSERVED, EventTable
from forecast.errors import DataValidationError, Issue

#: Columns of :attr:`Panel.observations`.
OBSERVATION_COLUMNS = [
    n.FRONT,
    n.DATE,
    n.END_DATE,
    n.COUNT,
    n.OBS_KIND,
    n.EXPOSURE_DAYS,
    n.PRECISION,
    n.SOURCE,
    n.ORIGIN_FILE,
    n.ORIGIN_LINE,
]

#: Columns of :attr:`Panel.gaps`: the front and the first and last day not observed.
GAP_COLUMNS = [n.FRONT, n.DATE, n.END_DATE]
#: Extra column of an event table: last day of the span an uncertain date lies in (see above).
UNCERTAIN_END = "uncertain_end"
#: Values of ``period_tables`` and of ``uncertain_dates``.
PERIOD_TABLE_CHOICES = ("auto", "yes", "no")
UNCERTAIN_DATE_CHOICES = ("start", "middle", "drop")

#: Columns written by :meth:`Panel.to_frame` (the ``data panel`` CSV).
PANEL_CSV_COLUMNS = [n.DATE, n.FRONT, n.COUNT, n.END_DATE, n.PRECISION]

#: A period's daily rate is flagged as an extreme outlier when it exceeds this multiple of the
#: front's 95th-percentile daily rate (and of one event a day) ...
OUTLIER_RATIO = 5.0
OUTLIER_QUANTILE = 0.95
#: ... provided the front has at least this many period observations to compare with.
OUTLIER_MIN_PERIODS = 20


#: Length of the grid period that starts on a period start, by frequency.
PERIOD_OFFSET = {
    n.FREQ_DAY: pd.DateOffset(days=1),
    n.FREQ_WEEK: pd.DateOffset(days=7),
    n.FREQ_MONTH: pd.DateOffset(months=1),
    n.FREQ_YEAR: pd.DateOffset(years=1),
}


def period_start(dates: pd.DatetimeIndex | pd.Series, freq: str) -> pd.DatetimeIndex:
    """First day of the grid period containing each date (weeks start on Monday)."""
    index = pd.DatetimeIndex(dates).normalize()
    if freq == n.FREQ_DAY:
        return index
    if freq == n.FREQ_WEEK:
        return index - pd.to_timedelta(index.weekday, unit="D")
    if freq == n.FREQ_MONTH:
        return index.to_period("M").to_timestamp()
    if freq == n.FREQ_YEAR:
        return index.to_period("Y").to_timestamp()
    raise ValueError(f"unknown frequency {freq!r}; allowed: {list(n.FREQS)}")


def period_grid(start: pd.Timestamp, end: pd.Timestamp, freq: str) -> pd.DatetimeIndex:
    """Period start days covering ``start..end``."""
    first = period_start(pd.DatetimeIndex([start]), freq)[0]
    last = period_start(pd.DatetimeIndex([end]), freq)[0]
    step = {n.FREQ_DAY: "D", n.FREQ_WEEK: "7D", n.FREQ_MONTH: "MS", n.FREQ_YEAR: "YS"}[freq]
    return pd.date_range(first, last, freq=step)


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
        following = list(self.periods[1:]) + [_next_period(self.periods[-1], self.freq)]
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

    def window_weights(self) -> np.ndarray:
        """Days of overlap between each window observation and each period, ``(window, period)``.

        A window's expected total is ``sum_t weights[w, t] * daily_rate[front, t]``.
        """
        windows = self.window_obs
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


def _next_period(day: pd.Timestamp, freq: str) -> pd.Timestamp:
    if freq == n.FREQ_DAY:
        return day + pd.Timedelta(days=1)
    if freq == n.FREQ_WEEK:
        return day + pd.Timedelta(days=7)
    if freq == n.FREQ_MONTH:
        return day + pd.offsets.MonthBegin(1)
    return day + pd.offsets.YearBegin(1)


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
    period_obs = _aggregate_points(points, unobserved, fronts, periods, begin, end, freq)
    period_obs = _whole_periods_only(period_obs, table_fronts, periods, begin, end, freq)
    window_obs = _window_rows(windows)
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


def _whole_periods_only(
    period_obs: pd.DataFrame,
    table_fronts: tuple[str, ...],
    periods: pd.DatetimeIndex,
    begin: pd.Timestamp,
    end: pd.Timestamp,
    freq: str,
) -> pd.DataFrame:
    """Period tables are observed in whole periods only: a period cut by ``start`` or ``as_of`` is unknown.

    (Its row is excluded as before the start or after ``as_of``; counting the period as zero
    over the days inside the span would invent a lull.)
    """
    if not table_fronts or period_obs.empty:
        return period_obs
    first = periods[0] < begin
    last = period_end(pd.Series([periods[-1]]), freq).iloc[0] > end
    cut = np.zeros(len(period_obs), dtype=bool)
    if first:
        cut |= (period_obs[n.DATE] == periods[0]).to_numpy()
    if last:
        cut |= (period_obs[n.DATE] == periods[-1]).to_numpy()
    drop = cut & period_obs[n.FRONT].isin(table_fronts).to_numpy()
    return period_obs[~drop].reset_index(drop=True)


def period_end(dates: pd.Series, freq: str) -> pd.Series:
    """Last day of the grid period containing each date."""
    starts = period_start(dates, freq)
    following = {
        n.FREQ_DAY: starts + pd.Timedelta(days=1),
        n.FREQ_WEEK: starts + pd.Timedelta(days=7),
        n.FREQ_MONTH: starts + pd.offsets.MonthBegin(1),
        n.FREQ_YEAR: starts + pd.offsets.YearBegin(1),
    }[freq]
    return pd.Series(following - pd.Timedelta(days=1), index=dates.index)


def period_table_fronts(frame: pd.DataFrame, freq: str, mode: str, files: str = "<memory>") -> tuple[str, ...]:
    """Fronts read as period tables under ``mode`` (see the module docstring).

    Raises
    ------
    DataValidationError
        With ``mode="yes"``, for rows of such a front that are not on a period start.
    """
    if mode == "no" or freq == n.FREQ_DAY:
        return ()
    on_start = (frame[n.DATE] == period_start(frame[n.DATE], freq)).to_numpy()
    no_end = frame[n.END_DATE].isna().to_numpy()
    uncertain = frame[UNCERTAIN_END].notna().to_numpy() if UNCERTAIN_END in frame else np.zeros(len(frame), bool)
    out = []
    issues = []
    for front, positions in frame.groupby(n.FRONT, sort=True).indices.items():
        index = np.asarray(positions)
        if not no_end[index].all() or uncertain[index].any():
            continue
        if mode == "auto" and (len(index) >= 2 and on_start[index].all()):
            out.append(str(front))
        elif mode == "yes":
            bad = index[~on_start[index]]
            for i in bad[:10]:
                row = frame.iloc[i]
                issues.append(
                    Issue(
                        str(row[n.ORIGIN_FILE]),
                        int(row[n.ORIGIN_LINE]),
                        n.DATE,
                        f"front {front!r} is read as a {freq} table but {row[n.DATE].date()} is not the first day "
                        f"of a {freq}",
                    )
                )
            out.append(str(front))
    if issues:
        raise DataValidationError(issues)
    return tuple(out)


def place_uncertain_dates(frame: pd.DataFrame, freq: str, policy: str) -> tuple[pd.DataFrame, list[Issue]]:
    """Give each event with an uncertain date one day (see the module docstring); a new frame.

    Returns the frame (rows dropped by ``policy="drop"`` removed, :data:`UNCERTAIN_END`
    cleared) and the warnings that count what was moved or dropped.
    """
    if UNCERTAIN_END not in frame or frame[UNCERTAIN_END].isna().all():
        return frame, []
    span_end = pd.to_datetime(frame[UNCERTAIN_END])
    uncertain = span_end.notna() & (span_end > frame[n.DATE])
    if not uncertain.any():
        cleared = frame.copy()
        cleared[UNCERTAIN_END] = pd.NaT
        return cleared, []
    rows = frame[uncertain]
    inside = np.asarray(period_start(rows[n.DATE], freq) == period_start(span_end[uncertain], freq))
    crossing = rows[~inside]
    out = frame.copy()
    warnings = []
    label = ", ".join(sorted({str(f) for f in rows[n.ORIGIN_FILE]}))
    if len(crossing):
        if policy == "drop":
            out = out.drop(index=crossing.index)
            dropped = int(crossing[n.COUNT].sum())
            warnings.append(
                Issue(
                    label,
                    None,
                    n.DATE,
                    f"{len(crossing)} event row(s) (count {dropped}) whose uncertain dates span more than one {freq} "
                    "were dropped (--uncertain-dates drop)",
                )
            )
        else:
            if policy == "middle":
                days = (span_end[crossing.index] - crossing[n.DATE]).dt.days.astype(np.int64) // 2
                out.loc[crossing.index, n.DATE] = crossing[n.DATE] + pd.to_timedelta(days, unit="D")
            warnings.append(
                Issue(
                    label,
                    None,
                    n.DATE,
                    f"{len(crossing)} event row(s) (count {int(crossing[n.COUNT].sum())}) whose uncertain dates span "
                    f"more than one {freq} were placed on the {policy} of their span",
                )
            )
    if inside.any():
        warnings.append(
            Issue(
                label,
                None,
                n.DATE,
                f"{int(inside.sum())} event row(s) with uncertain dates lie within one {freq} each and count there",
            )
        )
    out[UNCERTAIN_END] = pd.NaT
    return out, warnings


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


def _aggregate_points(
    points: pd.DataFrame,
    windows: pd.DataFrame,
    fronts: tuple[str, ...],
    periods: pd.DatetimeIndex,
    begin: pd.Timestamp,
    end: pd.Timestamp,
    freq: str,
) -> pd.DataFrame:
    """Period rows for fronts with single-day rows: counts summed exactly (int64), zeros filled.

    Each row is placed by its front's and its day's position (no comparison of every front with
    every row).  A period total beyond int64 is refused with the line of the row that passed it.
    """
    if points.empty:
        return pd.DataFrame(columns=OBSERVATION_COLUMNS)
    days = pd.date_range(begin, end, freq="D")
    day_period = periods.get_indexer(period_start(days, freq))
    codes = pd.Index(fronts).get_indexer(pd.Index(points[n.FRONT]))
    with_points = np.unique(codes)  # sorted, as ``fronts`` is
    position = np.searchsorted(with_points, codes)
    n_fronts, n_days, n_periods = len(with_points), len(days), len(periods)
    observed = np.ones((n_fronts, n_days), dtype=bool)
    if not windows.empty:
        window_fronts = pd.Index(fronts).get_indexer(pd.Index(windows[n.FRONT]))
        window_codes = np.searchsorted(with_points, window_fronts)
        first_day = ((windows[n.DATE] - begin) // pd.Timedelta(days=1)).to_numpy(dtype=np.int64)
        last_day = ((windows[n.END_DATE] - begin) // pd.Timedelta(days=1)).to_numpy(dtype=np.int64)
        for code, w, lo, hi in zip(window_fronts, window_codes, first_day, last_day, strict=True):
            if w < n_fronts and with_points[w] == code:  # a window of a front that also has daily rows
                observed[w, max(lo, 0) : max(hi + 1, 0)] = False
    period_first = np.searchsorted(day_period, np.arange(n_periods))
    exposure = np.add.reduceat(observed.astype(np.int64), period_first, axis=1)
    day_index = ((points[n.DATE] - begin) // pd.Timedelta(days=1)).to_numpy(dtype=np.int64)
    cell = position * n_periods + day_period[day_index]
    values = points[n.COUNT].to_numpy(dtype=np.int64)
    flat_counts = np.zeros(n_fronts * n_periods, dtype=np.int64)
    np.add.at(flat_counts, cell, values)
    near = np.bincount(cell, weights=values.astype(float), minlength=n_fronts * n_periods) >= 2.0**62
    if near.any():
        _check_total_overflow(points, cell, values, np.flatnonzero(near))
    counts = flat_counts.reshape(n_fronts, n_periods)
    precision = _worst_precision_matrix(points, position, periods, freq, n_fronts)
    del codes, position, day_index, cell, values, near  # a million rows: free them before the frame is built
    keep = exposure > 0
    front_of_cell, period_of_cell = np.nonzero(keep)
    return pd.DataFrame(
        {
            n.FRONT: np.asarray(fronts, dtype=object)[with_points][front_of_cell],
            n.DATE: periods[period_of_cell],
            n.END_DATE: pd.NaT,
            n.COUNT: counts[keep],
            n.OBS_KIND: n.OBS_PERIOD,
            n.EXPOSURE_DAYS: exposure[keep],
            n.PRECISION: precision[keep] if precision is not None else n.PRECISION_EXACT,
            n.SOURCE: "",
            n.ORIGIN_FILE: "",
            n.ORIGIN_LINE: 0,
        }
    )


def _check_total_overflow(points: pd.DataFrame, cell: np.ndarray, values: np.ndarray, suspects: np.ndarray) -> None:
    """Sum the suspect period totals exactly; refuse one beyond int64, naming the row that passed it."""
    limit = int(np.iinfo(np.int64).max)
    issues = []
    for target in suspects.tolist():
        total = 0
        for row in np.flatnonzero(cell == target).tolist():
            total += int(values[row])
            if total > limit:
                issues.append(
                    Issue(
                        str(points[n.ORIGIN_FILE].iloc[row]),
                        int(points[n.ORIGIN_LINE].iloc[row]),
                        n.COUNT,
                        f"the total of front {points[n.FRONT].iloc[row]!r} on {points[n.DATE].iloc[row].date()} "
                        f"is too large with this row's count (over {limit})",
                    )
                )
                break
    if issues:
        raise DataValidationError(issues)


def _worst_precision_matrix(
    points: pd.DataFrame, position: np.ndarray, periods: pd.DatetimeIndex, freq: str, n_fronts: int
) -> np.ndarray | None:
    """The least precise flag among the rows of each (front, period); None when every row is exact."""
    flagged = (points[n.PRECISION] != n.PRECISION_EXACT).to_numpy()
    if not flagged.any():
        return None
    out = np.full((n_fronts, len(periods)), n.PRECISION_EXACT, dtype=object)
    rows = points[flagged]
    index = periods.get_indexer(period_start(rows[n.DATE], freq))
    rank = rows[n.PRECISION].map(_PRECISION_RANK).fillna(1).to_numpy()
    for f, i, flag, r in zip(position[flagged], index, rows[n.PRECISION].to_numpy(), rank, strict=True):
        if r > _PRECISION_RANK.get(out[f, i], 0):
            out[f, i] = flag
    return out


_PRECISION_RANK = {
    n.PRECISION_EXACT: 0,
    n.PRECISION_APPROX: 1,
    n.PRECISION_APPROX_DATE: 2,
    n.PRECISION_WEEK: 3,
    n.PRECISION_MONTH: 4,
    n.PRECISION_AT_LEAST: 5,
}


def _window_rows(windows: pd.DataFrame) -> pd.DataFrame:
    if windows.empty:
        return pd.DataFrame(columns=OBSERVATION_COLUMNS)
    exposure = (windows[n.END_DATE] - windows[n.DATE]).dt.days.astype(np.int64) + 1
    return pd.DataFrame(
        {
            n.FRONT: windows[n.FRONT].to_numpy(),
            n.DATE: windows[n.DATE].to_numpy(),
            n.END_DATE: windows[n.END_DATE].to_numpy(),
            n.COUNT: windows[n.COUNT].to_numpy(dtype=np.int64),
            n.OBS_KIND: n.OBS_WINDOW,
            n.EXPOSURE_DAYS: exposure.to_numpy(),
            n.PRECISION: windows[n.PRECISION].to_numpy(),
            n.SOURCE: windows[n.SOURCE].to_numpy(),
            n.ORIGIN_FILE: windows[n.ORIGIN_FILE].to_numpy(),
            n.ORIGIN_LINE: windows[n.ORIGIN_LINE].to_numpy(),
        }
    )


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

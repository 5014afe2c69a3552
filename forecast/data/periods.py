"""The calendar grid of a panel: period starts, ends and lengths by frequency.

Weeks start on Monday; months and years on their first day.  A day grid is the special case
of one-day periods.
"""

from __future__ import annotations

import pandas as pd

from forecast import names as n

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


def next_period(day: pd.Timestamp, freq: str) -> pd.Timestamp:
    """Start of the period after the one that starts on ``day``."""
    if freq == n.FREQ_DAY:
        return day + pd.Timedelta(days=1)
    if freq == n.FREQ_WEEK:
        return day + pd.Timedelta(days=7)
    if freq == n.FREQ_MONTH:
        return day + pd.offsets.MonthBegin(1)
    return day + pd.offsets.YearBegin(1)


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

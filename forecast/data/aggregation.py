"""Observation rows of a panel: single-day rows summed per front and period, windows kept whole.

The summing is exact (int64, with an overflow check naming the row that passed the limit) and
vectorised: each row is placed by its front's and its day's position.  See
:mod:`forecast.data.panel` for which days count as observed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast import names as n
from forecast.data.periods import period_start
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


def aggregate_points(
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


def window_rows(windows: pd.DataFrame) -> pd.DataFrame:
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

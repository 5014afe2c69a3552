"""What a backtest forecast is scored against: the targets after an origin.

* Fronts counted per grid period: each period :math:`h = 1..H` after the origin.  Periods
  partly covered by a window or a declared gap (fewer observed days than the period has) are
  not scored, and a period wholly inside a declared gap has no observation at all: each gap
  in a horizon is noted as ``declared_gap``.
* Fronts reported through window totals: a window is a target only when it lies entirely
  inside the horizon (``o < start`` and ``end <= o + horizon days``); its step is the period
  holding its last day.  Windows that overlap the horizon without lying inside it, and
  ``at_least`` totals, are skipped.

Every skip is returned as a note (``front``, ``reason``, ``detail``), never dropped silently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast import names as n
from forecast.data.panel import Panel, whole_periods
from forecast.evaluation.baselines import last_value

PERIOD = n.OBS_PERIOD
WINDOW = n.OBS_WINDOW
#: Columns of the targets frame of :func:`forecast_targets`.
TARGET_COLUMNS = ["front", "kind", "horizon", "target_start", "target_end", "days", "observed"]


def forecast_targets(
    train: Panel, truth: Panel, origin: pd.Timestamp, horizon: int
) -> tuple[pd.DataFrame, list[dict[str, str]], pd.Timestamp]:
    """What happened after ``origin`` that can be scored, what cannot, and the horizon's last day."""
    ends = truth.period_ends()
    position = int(np.flatnonzero(ends == origin)[0])
    last = min(position + horizon, truth.n_periods - 1)
    horizon_end: pd.Timestamp = min(ends[last], truth.end)
    rows: list[dict[str, object]] = []
    notes: list[dict[str, str]] = []
    obs = truth.observations
    for front in truth.fronts:
        mine = obs[obs[n.FRONT] == front]
        if front not in train.fronts:
            if ((mine[n.DATE] > origin) & (mine[n.DATE] <= horizon_end)).any():
                notes.append({"front": front, "reason": "front_not_in_training", "detail": "no data up to the origin"})
            continue
        periods = mine[(mine[n.OBS_KIND] == PERIOD) & (mine[n.DATE] > origin) & (mine[n.DATE] <= horizon_end)]
        for gap_first, gap_last in truth.gap_ranges(front):  # declared gaps are not targets
            if gap_first <= horizon_end and gap_last > origin:
                shown_first: pd.Timestamp = max(gap_first, origin + pd.Timedelta(days=1))
                shown_last: pd.Timestamp = min(gap_last, horizon_end)
                label = f"{shown_first.date()}..{shown_last.date()}"
                notes.append({"front": front, "reason": "declared_gap", "detail": label})
        for row_d in periods.to_dict("records"):
            index = _position(truth.periods, row_d[n.DATE])
            end: pd.Timestamp = min(ends[index], truth.end)
            days = (end - row_d[n.DATE]).days + 1
            if row_d[n.EXPOSURE_DAYS] < days or end < ends[index]:
                notes.append({"front": front, "reason": "partial_period", "detail": f"{row_d[n.DATE].date()}"})
                continue
            rows.append(_target(front, PERIOD, index - position, row_d[n.DATE], end, row_d[n.COUNT]))
        windows = mine[(mine[n.OBS_KIND] == WINDOW) & (mine[n.END_DATE] > origin) & (mine[n.DATE] <= horizon_end)]
        for row_d in windows.to_dict("records"):
            label = f"{row_d[n.DATE].date()}..{row_d[n.END_DATE].date()}"
            if row_d[n.DATE] <= origin or row_d[n.END_DATE] > horizon_end:
                notes.append({"front": front, "reason": "window_outside_horizon", "detail": label})
                continue
            if row_d[n.PRECISION] == n.PRECISION_AT_LEAST:
                notes.append({"front": front, "reason": "window_lower_bound", "detail": label})
                continue
            step = int(np.searchsorted(ends.to_numpy(), row_d[n.END_DATE].to_datetime64())) - position
            rows.append(_target(front, WINDOW, step, row_d[n.DATE], row_d[n.END_DATE], row_d[n.COUNT]))
    return pd.DataFrame(rows, columns=TARGET_COLUMNS), notes, horizon_end


def _position(index: pd.DatetimeIndex, day: pd.Timestamp) -> int:
    """Position of ``day`` in a grid of unique period starts."""
    position = index.get_loc(day)
    if not isinstance(position, int):  # a slice or mask only for a non-unique index
        raise TypeError(f"{day} is not a single period start")
    return position


def _target(front: str, kind: str, step: int, start: pd.Timestamp, end: pd.Timestamp, count: int) -> dict:
    return {
        "front": front,
        "kind": kind,
        "horizon": int(step),
        "target_start": start,
        "target_end": end,
        "days": int((end - start).days + 1),
        "observed": int(count),
    }


def front_series(train: Panel, front: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Training counts and exposures of one front: per grid period, or per window."""
    if kind == WINDOW:
        windows = train.window_obs[train.window_obs[n.FRONT] == front]
        return windows[n.COUNT].to_numpy(dtype=float), windows[n.EXPOSURE_DAYS].to_numpy(dtype=float)
    counts, exposure = train.counts_matrix()
    f = train.fronts.index(front)
    return counts[f], exposure[f].astype(float)


def whole_period_series(train: Panel, front: str) -> tuple[np.ndarray, np.ndarray] | None:
    """A front reported in windows that are each one whole grid period, as its per-period series.

    A monthly table (ACLED's: a window from the first to the last day of each month on a monthly
    grid) or a day-by-day table with an end date on each day (one-day windows on a daily grid) is a
    period series written as windows.  Returns the training counts and exposures per period, as
    :func:`front_series` gives them for ``PERIOD`` (NaN and 0 where nothing was reported, the
    front's period observations included), or None when any of the front's windows spans more
    or less than one whole period, or is a lower bound (``at_least``).
    """
    windows = train.window_obs[train.window_obs[n.FRONT] == front]
    if windows.empty or (windows[n.PRECISION] == n.PRECISION_AT_LEAST).any():
        return None
    starts = whole_periods(train.window_weights(windows), train.period_days())
    if (starts < 0).any():
        return None
    counts, exposure = front_series(train, front, PERIOD)
    counts, exposure = counts.copy(), exposure.copy()
    if not np.isnan(counts[starts]).all():
        return None
    counts[starts] = windows[n.COUNT].to_numpy(dtype=float)
    exposure[starts] = windows[n.EXPOSURE_DAYS].to_numpy(dtype=float)
    return counts, exposure


def last_values(train: Panel, targets: pd.DataFrame) -> np.ndarray:
    """The point forecast "next = last observed value" of each target (NaN where the front has none)."""
    out = np.full(len(targets), np.nan)
    for (front, kind), rows in targets.groupby(["front", "kind"], sort=False):
        if front not in train.fronts:
            continue
        counts, exposure = front_series(train, str(front), str(kind))
        out[targets.index.get_indexer(rows.index)] = last_value(counts, exposure, rows["days"].to_numpy())
    return out

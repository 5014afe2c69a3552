"""Rows that are not one-day events: period tables and events with uncertain dates.

How :func:`forecast.data.panel.build_panel` reads them (its module docstring has the rest).

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

import numpy as np
import pandas as pd

from forecast import names as n
from forecast.data.periods import period_end, period_start
from forecast.errors import DataValidationError, Issue

#: Extra column of an event table: last day of the span an uncertain date lies in (see above).
UNCERTAIN_END = "uncertain_end"


#: Values of ``period_tables`` and of ``uncertain_dates``.
PERIOD_TABLE_CHOICES = ("auto", "yes", "no")


UNCERTAIN_DATE_CHOICES = ("start", "middle", "drop")


def whole_periods_only(
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

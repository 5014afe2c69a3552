"""Origins of a rolling-origin backtest, and what is known at each of them.

An origin is the last day of a grid period (any day on a daily grid, a Sunday on a weekly
one); the model and the baselines are fitted on the data up to it and forecast the next
``horizon`` periods.  :func:`choose_origins` picks them from the full panel;
:func:`interventions_known_at` and :func:`restrict_panel` cut what a fit at an origin may see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from forecast import names as n
from forecast.data.interventions import InterventionTable
from forecast.data.panel import Panel
from forecast.errors import ForecastError

#: Default horizon in grid periods.
DEFAULT_HORIZON = {n.FREQ_DAY: 28, n.FREQ_WEEK: 4, n.FREQ_MONTH: 3, n.FREQ_YEAR: 1}
#: Default minimum training periods (8 weeks).
DEFAULT_MIN_TRAIN = {n.FREQ_DAY: 56, n.FREQ_WEEK: 8, n.FREQ_MONTH: 3, n.FREQ_YEAR: 2}
#: Origins are this many grid periods apart by default (a week on a daily grid).
ORIGIN_SPACING = {n.FREQ_DAY: 7, n.FREQ_WEEK: 1, n.FREQ_MONTH: 1, n.FREQ_YEAR: 1}
DEFAULT_MAX_ORIGINS = 20


def choose_origins(
    truth: Panel,
    *,
    horizon: int,
    min_train: int | None = None,
    count: int | None = None,
    dates: Sequence[pd.Timestamp] = (),
) -> list[pd.Timestamp]:
    """Origins at period ends, ``ORIGIN_SPACING`` apart, the last one leaving a full horizon.

    With ``dates`` those are checked and used; with ``count`` exactly that many are
    required; by default as many as fit, up to :data:`DEFAULT_MAX_ORIGINS`.

    Parameters
    ----------
    truth : Panel
        The full panel (everything up to ``as_of``).
    horizon : int
        Grid periods forecast after each origin.
    min_train : int, optional
        Grid periods of training data at the first origin (default :data:`DEFAULT_MIN_TRAIN`).
    count : int, optional
        The number of origins.
    dates : sequence of pandas.Timestamp
        The origins themselves.

    Raises
    ------
    ForecastError
        When a date is not a period end, leaves too little training data or nothing to
        forecast, or when ``count`` origins do not fit.
    """
    freq = truth.freq
    ends = truth.period_ends()
    min_train = min_train or DEFAULT_MIN_TRAIN[freq]
    complete = np.flatnonzero(ends <= truth.end)
    first_index = min_train - 1
    last_index = int(complete.max()) - horizon if complete.size else -1
    if dates:
        out = []
        for date in dates:
            date = pd.Timestamp(date).normalize()
            where = np.flatnonzero(ends == date)
            if not where.size:
                raise ForecastError(f"origin {date.date()} is not the last day of a {freq} period of the data")
            if where[0] < first_index:
                raise ForecastError(f"origin {date.date()} leaves fewer than {min_train} {freq}(s) of training data")
            if where[0] >= truth.n_periods - 1:
                raise ForecastError(f"origin {date.date()} leaves nothing to forecast before {truth.end.date()}")
            out.append(date)
        return sorted(set(out))
    spacing = ORIGIN_SPACING[freq]
    available = list(range(last_index, first_index - 1, -spacing))[::-1]
    wanted = count or min(DEFAULT_MAX_ORIGINS, len(available))
    if wanted > len(available) or not available:
        raise ForecastError(
            f"{wanted} origin(s) {spacing} {freq}(s) apart with {min_train} {freq}(s) of training data and a horizon "
            f"of {horizon} do not fit in {truth.start.date()}..{truth.end.date()}: at most {len(available)}"
        )
    return [ends[i] for i in available[-wanted:]]


def restrict_panel(panel: Panel, fronts: tuple[str, ...]) -> Panel:
    """The panel with only ``fronts``."""
    obs = panel.observations
    return replace(panel, fronts=fronts, observations=obs[obs[n.FRONT].isin(fronts)].reset_index(drop=True))


def interventions_known_at(table: InterventionTable | None, origin: pd.Timestamp, fronts: tuple[str, ...]):
    """Interventions started on or before ``origin``, restricted to ``fronts`` (None if none are left)."""
    if table is None:
        return None
    frame = table.before(origin).frame.copy()
    named = [tuple(f for f in targets if f in fronts) if targets else targets for targets in frame[n.FRONT]]
    keep = [not original or bool(kept) for original, kept in zip(frame[n.FRONT], named, strict=True)]
    frame[n.FRONT] = named
    frame = frame[keep].reset_index(drop=True)
    return InterventionTable(frame, table.files) if len(frame) else None

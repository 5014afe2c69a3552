r"""Exceedance thresholds and the probability that next week's count reaches them.

Weekly totals of the forecast
-----------------------------
For draw :math:`s` of the daily predictive counts :math:`\tilde y^{(s)}_{f,d}` after
``as_of`` (from :func:`forecast.forecasting.counts.forecast_counts`), the next week's total is

.. math::

    W^{(s)}_f = \sum_{d=1}^{7} \tilde y^{(s)}_{f,\text{as\_of}+d},
    \qquad
    p_\text{exceed}(f, c) = \Pr(W_f \ge c \mid y) \approx \frac1S \sum_s \mathbb 1[W^{(s)}_f \ge c].

Both steps are public (:func:`weekly_totals`, :func:`exceedance_probabilities`) so that a
backtest can score the same probabilities against the realised totals.

Default thresholds
------------------
Per front, from the data up to ``as_of`` only (:func:`default_thresholds`):

1. the historical ``quantile`` (0.9) of its 7-day totals, and
2. ``multiplier`` (2) times its recent weekly mean: the mean 7-day total over the last
   ``recent_weeks`` (4) weeks.

Where the 7-day totals come from depends on how the front is observed:

* **day-by-day fronts of a daily panel**: consecutive 7-day blocks counted *backward* from
  ``as_of`` (the last block is ``as_of - 6 .. as_of``).  A block enters the quantile only when
  all 7 of its days are observed (an incomplete first block, or one that touches a reported
  window, is left out).  The recent mean is ``7 x (events / observed days)`` over the last
  ``7 x recent_weeks`` days, which equals the mean of those weeks' totals when every day is
  observed.
* **fronts of a weekly, monthly or yearly panel**: each period's count scaled to 7 days,
  ``count x 7 / exposure_days``; only periods with at least 7 observed days enter the
  quantile (partial edge weeks are left out).  The recent mean is ``7 x (events / days)``
  over the periods that end within the last ``7 x recent_weeks`` days.
* **fronts observed only through window totals** (``date..end_date``): each window's total
  scaled to 7 days, ``count x 7 / days``, in the same way.  A long window averages its weeks,
  so its quantile understates week-to-week spread; the indicators add a note saying so.
  ``at_least`` totals are used as reported (lower bounds).

A quantile needs at least :data:`MIN_HISTORY_BLOCKS` blocks and a recent mean at least 7
observed days in the recent span; a threshold without them is left out (never invented), and
the reason is returned as a note.  Counts are integers, so a threshold :math:`c` is rounded up
to :math:`\lceil c \rceil` (``P(W >= 153.3) = P(W >= 154)``), raised to at least 1 (a
threshold of 0 is always reached), and the list is deduplicated and sorted ascending.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecast import names as n
from forecast.data.panel import Panel

#: Days in the "week" of ``p_exceed``.
WEEK_DAYS = 7
#: Fewest 7-day blocks (or scaled periods/windows) a historical quantile is computed from.
MIN_HISTORY_BLOCKS = 4


def weekly_totals(daily_counts: np.ndarray, *, days: int = WEEK_DAYS) -> np.ndarray:
    """Sum of the first ``days`` days along the last axis: ``(..., day) -> (...)``.

    Raises
    ------
    ValueError
        When fewer than ``days`` days are given.
    """
    counts = np.asarray(daily_counts)
    if counts.shape[-1] < days:
        raise ValueError(f"need at least {days} forecast days for a {days}-day total, got {counts.shape[-1]}")
    return counts[..., :days].sum(axis=-1)


def exceedance_probabilities(weekly: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """``P(total >= t)`` for each threshold, from draws of the total.

    Parameters
    ----------
    weekly : numpy.ndarray
        Draws of the total, ``(sample,)`` (any shape is flattened).
    thresholds : sequence of float

    Returns
    -------
    numpy.ndarray
        ``(threshold,)`` fractions of draws with ``total >= t``.
    """
    draws = np.asarray(weekly, dtype=float).ravel()
    if draws.size == 0:
        raise ValueError("no draws to compute exceedance probabilities from")
    limits = np.asarray(list(thresholds), dtype=float)
    return (draws[:, None] >= limits[None, :]).mean(axis=0)


def default_thresholds(
    panel: Panel, *, recent_weeks: int = 4, quantile: float = 0.9, multiplier: float = 2.0
) -> dict[str, list[float]]:
    """Per front: ``[historical quantile of 7-day totals, multiplier x recent weekly mean]``.

    See the module docstring for the blocks, the rounding and the rule for fronts without
    usable history (they get an empty list).
    """
    thresholds, _ = thresholds_with_notes(panel, recent_weeks=recent_weeks, quantile=quantile, multiplier=multiplier)
    return thresholds


def thresholds_with_notes(
    panel: Panel, *, recent_weeks: int = 4, quantile: float = 0.9, multiplier: float = 2.0
) -> tuple[dict[str, list[float]], dict[str, list[str]]]:
    """:func:`default_thresholds` and, per front, notes on how they were found or why one is missing."""
    if recent_weeks < 1:
        raise ValueError("recent_weeks must be >= 1")
    if not 0.0 <= quantile <= 1.0:
        raise ValueError("quantile must be in [0, 1]")
    thresholds: dict[str, list[float]] = {}
    notes: dict[str, list[str]] = {}
    for front in panel.fronts:
        blocks, front_notes = _blocks(panel, front)
        values: list[float] = []
        complete = blocks[blocks["days"] >= WEEK_DAYS]
        if len(complete) >= MIN_HISTORY_BLOCKS:
            weekly = complete["count"] * WEEK_DAYS / complete["days"]
            values.append(float(np.quantile(weekly.to_numpy(dtype=float), quantile)))
        else:
            front_notes.append(
                f"no historical-quantile threshold: {len(complete)} complete 7-day blocks, "
                f"at least {MIN_HISTORY_BLOCKS} needed"
            )
        recent_start = panel.end - pd.Timedelta(days=WEEK_DAYS * recent_weeks - 1)
        recent = blocks[blocks["end"] >= recent_start]
        if recent["days"].sum() >= WEEK_DAYS:
            values.append(multiplier * WEEK_DAYS * float(recent["count"].sum()) / float(recent["days"].sum()))
        else:
            front_notes.append(
                f"no recent-mean threshold: fewer than 7 observed days in the last {recent_weeks} weeks "
                f"({recent_start.date()}..{panel.end.date()})"
            )
        thresholds[front] = sorted({float(max(1, math.ceil(round(v, 9)))) for v in values})
        notes[front] = front_notes
    return thresholds, notes


def _blocks(panel: Panel, front: str) -> tuple[pd.DataFrame, list[str]]:
    """The front's history as blocks with columns ``end`` (last day), ``count`` and ``days``."""
    obs = panel.observations[panel.observations[n.FRONT] == front]
    periods = obs[obs[n.OBS_KIND] == n.OBS_PERIOD]
    if len(periods) and panel.freq == n.FREQ_DAY:
        return _daily_blocks(panel, periods), []
    if len(periods):
        ends = panel.period_ends()[panel.periods.get_indexer(pd.Index(periods[n.DATE]))]
        frame = pd.DataFrame(
            {
                "end": np.minimum(ends.to_numpy(), panel.end.to_datetime64()),
                "count": periods[n.COUNT].to_numpy(dtype=float),
                "days": periods[n.EXPOSURE_DAYS].to_numpy(dtype=float),
            }
        )
        return frame, []
    windows = obs[obs[n.OBS_KIND] == n.OBS_WINDOW]
    frame = pd.DataFrame(
        {
            "end": windows[n.END_DATE].to_numpy(),
            "count": windows[n.COUNT].to_numpy(dtype=float),
            "days": windows[n.EXPOSURE_DAYS].to_numpy(dtype=float),
        }
    )
    note = "observed only through window totals: thresholds use window totals scaled to 7 days (count x 7 / days)"
    return frame, [note]


def _daily_blocks(panel: Panel, periods: pd.DataFrame) -> pd.DataFrame:
    """7-day blocks counted backward from ``panel.end``; ``days`` counts the observed days of each."""
    days = pd.date_range(panel.start, panel.end, freq="D")
    counts = np.zeros(len(days))
    observed = np.zeros(len(days), dtype=bool)
    index = days.get_indexer(pd.Index(periods[n.DATE]))
    counts[index] = periods[n.COUNT].to_numpy(dtype=float)
    observed[index] = True
    block = (len(days) - 1 - np.arange(len(days))) // WEEK_DAYS  # 0 for the block ending at as_of
    n_blocks = int(block.max()) + 1
    block_counts = np.bincount(block, weights=counts, minlength=n_blocks)
    block_days = np.bincount(block, weights=observed.astype(float), minlength=n_blocks)
    ends = panel.end - pd.to_timedelta(WEEK_DAYS * np.arange(n_blocks), unit="D")
    frame = pd.DataFrame({"end": ends, "count": block_counts, "days": block_days})
    return frame[frame["days"] > 0].iloc[::-1].reset_index(drop=True)

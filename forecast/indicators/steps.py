r"""The forecast table: predictive counts per step after ``as_of``.

Steps follow the panel's grid, always counted forward from ``as_of``:

* ``day``: one step per forecast day, labelled by that day;
* ``week``: consecutive 7-day blocks ``as_of + 1 .. as_of + 7``, ... (never aligned to
  calendar weeks, so that a report on any day forecasts whole weeks), labelled by the block's
  **last** day;
* ``month`` and ``year``: the grid's calendar periods, as the data count them: the first step is
  the period that holds ``as_of + 1`` (the rest of it, where ``as_of`` is not a period's last
  day), then whole months or years; each labelled by its last day, with its number of days.

Days past the last whole step are left out.  For each step the per-draw total
:math:`T^{(s)} = \sum_{d \in \text{step}} \tilde y^{(s)}_d` is summarised by its mean and its
5 %, 50 % and 95 % quantiles (``q05``, ``q50``, ``q95``: literally those quantiles), plus
``low`` and ``high``, the equal-tailed interval at the requested probability.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from forecast import names as n
from forecast.names import DATE_DIM

#: Forecast days per step on the grids whose steps are fixed blocks of days.
STEP_DAYS = {n.FREQ_DAY: 1, n.FREQ_WEEK: 7}

#: Forecast steps when none are asked for: four weeks on daily and weekly grids, one period on
#: monthly and yearly ones.
DEFAULT_STEPS = {n.FREQ_DAY: 28, n.FREQ_WEEK: 4, n.FREQ_MONTH: 1, n.FREQ_YEAR: 1}

_CALENDAR = {n.FREQ_MONTH: "M", n.FREQ_YEAR: "Y"}


def step_days(freq: str) -> int | None:
    """Days per forecast step for a panel frequency; ``None`` for calendar months and years."""
    if freq not in n.FREQS:
        raise ValueError(f"unknown frequency {freq!r}; allowed: {list(n.FREQS)}")
    return STEP_DAYS.get(freq)


def step_ends(as_of: pd.Timestamp, freq: str, steps: int) -> pd.DatetimeIndex:
    """The last day of each of the first ``steps`` forecast steps after ``as_of`` (see the module docstring)."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    as_of = pd.Timestamp(as_of).normalize()
    size = step_days(freq)
    if size is not None:
        return pd.DatetimeIndex([as_of + pd.Timedelta(days=size * k) for k in range(1, steps + 1)])
    first = (as_of + pd.Timedelta(days=1)).to_period(_CALENDAR[freq])
    return pd.DatetimeIndex([(first + k).end_time.normalize() for k in range(steps)])


def whole_steps(dates: pd.DatetimeIndex, freq: str) -> list[tuple[int, int]]:
    """``(first, last)`` positions in ``dates`` of each whole forecast step, in order.

    ``dates`` are consecutive days from ``as_of + 1``; a last step that does not reach its last
    day is left out.
    """
    dates = pd.DatetimeIndex(dates)
    if not len(dates):
        return []
    size = step_days(freq)
    if size is not None:
        return [(k * size, (k + 1) * size - 1) for k in range(len(dates) // size)]
    ordinals = np.asarray([p.ordinal for p in dates.to_period(_CALENDAR[freq])])
    starts = np.flatnonzero(np.diff(ordinals, prepend=ordinals[0] - 1))
    bounds = [(int(a), int(b) - 1) for a, b in zip(starts, [*starts[1:], len(dates)], strict=True)]
    if dates[-1] != dates[-1:].to_period(_CALENDAR[freq])[0].end_time.normalize():
        bounds.pop()  # the last period is not over
    return bounds


def forecast_steps(forecast: xr.Dataset, *, freq: str, prob: float = 0.9) -> dict[str, list[dict]]:
    """Per front, a list of ``{date, mean, q05, q50, q95, low, high}`` of the counts of each step.

    Parameters
    ----------
    forecast : xarray.Dataset
        With ``counts`` ``(chain, draw, front, date)`` of daily predictive counts.
    freq : str
        The panel's frequency; decides the step (see the module docstring).
    prob : float
        Probability of the ``low``..``high`` interval.
    """
    if not 0.0 < prob < 1.0:
        raise ValueError("prob must be in (0, 1)")
    counts = forecast["counts"].stack(sample=("chain", "draw")).transpose(n.FRONT, DATE_DIM, "sample")
    values = counts.to_numpy().astype(float)  # (front, date, sample)
    dates = pd.DatetimeIndex(counts[DATE_DIM].to_numpy())
    bounds = whole_steps(dates, freq)
    tail = (1.0 - prob) / 2.0
    out: dict[str, list[dict]] = {}
    for f, front in enumerate(counts[n.FRONT].to_numpy().tolist()):
        rows = []
        for first, last in bounds:
            totals = values[f, first : last + 1].sum(axis=0)
            q05, q50, q95, low, high = np.quantile(totals, [0.05, 0.5, 0.95, tail, 1.0 - tail])
            rows.append(
                {
                    "date": dates[last].date().isoformat(),
                    "days": int(last - first + 1),
                    "mean": float(np.mean(totals)),
                    "q05": float(q05),
                    "q50": float(q50),
                    "q95": float(q95),
                    "low": float(low),
                    "high": float(high),
                }
            )
        out[str(front)] = rows
    return out

r"""The forecast table: predictive counts per step after ``as_of``.

Steps follow the panel's grid, always counted forward from ``as_of`` (never aligned to
calendar weeks or months, so that every step is a whole number of forecast days):

* ``day``: one step per forecast day, labelled by that day;
* ``week``: consecutive 7-day blocks ``as_of + 1 .. as_of + 7``, ... labelled by the block's
  **last** day;
* ``month`` and ``year``: consecutive 28-day blocks (four weeks; calendar months differ in
  length), labelled by the block's last day.

Days past the last whole block are left out.  For each step the per-draw total
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

#: Forecast days per step, by panel frequency.
STEP_DAYS = {n.FREQ_DAY: 1, n.FREQ_WEEK: 7, n.FREQ_MONTH: 28, n.FREQ_YEAR: 28}


def step_days(freq: str) -> int:
    """Days per forecast step for a panel frequency."""
    if freq not in STEP_DAYS:
        raise ValueError(f"unknown frequency {freq!r}; allowed: {list(STEP_DAYS)}")
    return STEP_DAYS[freq]


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
    size = step_days(freq)
    counts = forecast["counts"].stack(sample=("chain", "draw")).transpose(n.FRONT, DATE_DIM, "sample")
    values = counts.to_numpy().astype(float)  # (front, date, sample)
    dates = pd.DatetimeIndex(counts[DATE_DIM].to_numpy())
    n_steps = len(dates) // size
    tail = (1.0 - prob) / 2.0
    out: dict[str, list[dict]] = {}
    for f, front in enumerate(counts[n.FRONT].to_numpy().tolist()):
        rows = []
        for step in range(n_steps):
            totals = values[f, step * size : (step + 1) * size].sum(axis=0)
            q05, q50, q95, low, high = np.quantile(totals, [0.05, 0.5, 0.95, tail, 1.0 - tail])
            rows.append(
                {
                    "date": dates[(step + 1) * size - 1].date().isoformat(),
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

r"""Brier score and reliability table of probability forecasts of a binary event.

For forecasts :math:`p_i` of events :math:`o_i \in \{0, 1\}` (here: the weekly total
reaches a threshold),

Brier score
    :math:`B = \frac1n \sum_i (p_i - o_i)^2` (lower is better; 0.25 for a constant 0.5).

Reliability table
    The forecasts are put in ``bins`` equal-width bins of :math:`[0, 1]` (the last one closed);
    per bin: the number of forecasts, their mean :math:`\bar p_b` and the observed frequency
    :math:`\bar o_b`.  A reliable forecaster has :math:`\bar o_b \approx \bar p_b`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["RELIABILITY_COLUMNS", "brier_score", "reliability_table"]

RELIABILITY_COLUMNS = ["bin_lower", "bin_upper", "n", "mean_forecast", "observed_frequency"]


def _check(p: np.ndarray, outcome: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=float)
    o = np.asarray(outcome, dtype=float)
    if p.shape != o.shape:
        raise ValueError(f"forecasts and outcomes differ in shape: {p.shape} vs {o.shape}")
    if np.any((p < 0) | (p > 1)) or np.any(~np.isfinite(p)):
        raise ValueError("probabilities must lie in [0, 1]")
    if np.any((o != 0) & (o != 1)):
        raise ValueError("outcomes must be 0 or 1")
    return p, o


def brier_score(p: np.ndarray, outcome: np.ndarray) -> float:
    """Mean of :math:`(p_i - o_i)^2`; NaN when there are no forecasts."""
    p, o = _check(p, outcome)
    return float(np.mean((p - o) ** 2)) if p.size else float("nan")


def reliability_table(p: np.ndarray, outcome: np.ndarray, *, bins: int = 10) -> pd.DataFrame:
    """Per probability bin: count, mean forecast and observed frequency (empty bins: n = 0, NaN)."""
    p, o = _check(p, outcome)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(index, weights=p, minlength=bins) / count
        freq = np.bincount(index, weights=o, minlength=bins) / count
    return pd.DataFrame(
        {
            "bin_lower": edges[:-1],
            "bin_upper": edges[1:],
            "n": count.astype(np.int64),
            "mean_forecast": np.where(count > 0, mean_p, np.nan),
            "observed_frequency": np.where(count > 0, freq, np.nan),
        },
        columns=RELIABILITY_COLUMNS,
    )

"""What the backtest counts as good enough: its pass marks, in one place.

The backtest's summary (``first_week`` in ``summary.json``), the headline of
``backtest.html`` and the command's output all read these; none of them writes a number of
its own.
"""

from __future__ import annotations

import math

from forecast import names as n

#: The one-week horizon in grid periods, on the grids where a week is a whole number of them.
FIRST_WEEK_STEPS = {n.FREQ_DAY: 7, n.FREQ_WEEK: 1}
#: The model's one-week CRPS skill against ``no_change`` must be at least this.
MIN_FIRST_WEEK_SKILL = 0.10
#: The model's one-week 90% coverage must lie in this range (ends included).  It is judged on the
#: PIT coverage (:func:`forecast.evaluation.scores.pit_coverage`), which is 0.9 under a calibrated
#: forecast; the inclusive interval's coverage of counts is higher (0.986 for a calibrated Poisson(0.5)).
COVERAGE_90_RANGE = (0.85, 0.95)


def skill_met(value: float) -> bool:
    """Whether a one-week CRPS skill reaches :data:`MIN_FIRST_WEEK_SKILL` (NaN never does)."""
    return bool(math.isfinite(value) and value >= MIN_FIRST_WEEK_SKILL)


def coverage_met(coverage: float) -> bool:
    """Whether a 90% coverage lies in :data:`COVERAGE_90_RANGE` (NaN never does)."""
    low, high = COVERAGE_90_RANGE
    return bool(math.isfinite(coverage) and low <= coverage <= high)


def skill_mark_text() -> str:
    """The skill mark as the page and the command print it: ``>= 0.10``."""
    return f">= {MIN_FIRST_WEEK_SKILL:.2f}"


def coverage_mark_text() -> str:
    """The coverage mark as the page and the command print it: ``0.85-0.95``."""
    low, high = COVERAGE_90_RANGE
    return f"{low:.2f}-{high:.2f}"

"""Probabilistic escalation indicators from posterior and predictive draws (floor 5).

:func:`compute_indicators` builds the ``indicators.json`` document; its parts are public so
that backtests can score them (:func:`weekly_totals`, :func:`exceedance_probabilities`).
Formulas: :mod:`forecast.indicators.rates`, :mod:`forecast.indicators.thresholds`,
:mod:`forecast.indicators.steps`; levels: :mod:`forecast.indicators.document`.
"""

from forecast.indicators.document import LEVELS, IndicatorSettings, compute_indicators, front_level
from forecast.indicators.schema import SCHEMA_PATH, SCHEMA_VERSION, validate_indicators
from forecast.indicators.steps import forecast_steps
from forecast.indicators.thresholds import default_thresholds, exceedance_probabilities, weekly_totals

__all__ = [
    "LEVELS",
    "SCHEMA_PATH",
    "SCHEMA_VERSION",
    "IndicatorSettings",
    "compute_indicators",
    "default_thresholds",
    "exceedance_probabilities",
    "forecast_steps",
    "front_level",
    "validate_indicators",
    "weekly_totals",
]

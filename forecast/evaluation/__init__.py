"""Proper scores, baseline forecasts and reliability tables for backtests (floor 4).

Everything here works on plain arrays: observed counts, predictive draws or the parameters
of a negative binomial / Poisson predictive.  Nothing reads files, fits the escalation
model or draws figures; :mod:`forecast.jobs.backtest` assembles the pieces.
"""

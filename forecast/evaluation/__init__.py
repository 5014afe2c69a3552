"""Proper scores, baseline forecasts and reliability tables for backtests (floor 4).

Everything here is a pure function of plain arrays (observed counts, predictive draws or
the parameters of a negative binomial / Poisson predictive), score tables and panels.
Nothing reads files, fits the escalation model or draws figures.  The pure parts of the
rolling-origin backtest live here too (``origins``, ``targets``, ``backtest_scores``,
``backtest_summary``, ``pass_marks``); :mod:`forecast.jobs.backtest` loads the data, fits
the model at each origin and assembles the pieces.
"""

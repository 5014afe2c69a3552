"""Forecasts: draw-level predictive counts beyond ``as_of``, never reduced before the last step."""

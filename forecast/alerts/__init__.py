"""Alert rules and detectors (floor 5): pure functions from counts and draws to alerts.

* :mod:`forecast.alerts.bocpd`: Bayesian online changepoint detection over fronts (daily
  counts), with its configuration (:mod:`~forecast.alerts.detector_config`), state
  (:mod:`~forecast.alerts.bocpd_state`), predictive (:mod:`~forecast.alerts.bocpd_predictive`)
  and form for window totals (:mod:`~forecast.alerts.bocpd_windows`).
* :mod:`forecast.alerts.surprise`: tail probabilities of new counts under predictive draws.
* :mod:`forecast.alerts.rules`: the rules (thresholds, direction, consecutive, cooldown).
* :mod:`forecast.alerts.series`: the daily and window series the detector sees, from a panel.
* :mod:`forecast.alerts.engine`: the detector and the rules over spans of days (no I/O).
* :mod:`forecast.alerts.replay`: the alerts a daily schedule would have issued over history.
* :mod:`forecast.alerts.evaluation`: detection delay and false alarms of a replay.

Nothing here imports PyMC, reads the clock or touches files beyond the two small YAML
configuration files.
"""

"""Alert rules and detectors (floor 5): pure functions from counts and draws to alerts.

* :mod:`forecast.alerts.bocpd`: Bayesian online changepoint detection over fronts.
* :mod:`forecast.alerts.surprise`: tail probabilities of new counts under predictive draws.
* :mod:`forecast.alerts.rules`: the rules (thresholds, direction, consecutive, cooldown).
* :mod:`forecast.alerts.evaluation`: detection delay and false alarms of a replay.

Nothing here imports PyMC, reads the clock or touches files beyond the two small YAML
configuration files.
"""

"""Checks after a fit: sampler diagnostics, posterior predictive checks and PSIS-LOO comparison.

Each check returns a small frozen result object with ``to_dict()`` (JSON-safe) and a text
form; a fit that fails a check is *marked* failed, never raised on.  Nothing here fits a
model: the checks read an ``InferenceData`` (through :mod:`forecast.fits`) or plain arrays
of draws.

Modules
-------
diagnostics
    R-hat, bulk and tail ESS, divergences and BFMI against :class:`ConvergenceThresholds`.
predictive
    Interval coverage and Bayesian p-values of test statistics, randomised PIT values.
compare
    PSIS-LOO comparison of fitted variants from their pointwise log-likelihoods.
"""

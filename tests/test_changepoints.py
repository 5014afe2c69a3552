"""The marginalised changepoint likelihood equals brute-force enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytensor.tensor as pt
import pytest
from scipy.special import logsumexp

from forecast.models.changepoints import changepoint_posterior, log_cumsum_exp, marginal_loglik
from forecast.models.design import log_binomial


def brute_force(loglik: np.ndarray, n_obs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """log p per front and p(tau_j = s) by enumerating every configuration."""
    regimes, fronts, width = loglik.shape
    per_front = np.zeros(fronts)
    marginals = np.zeros((k, fronts, width))
    for f in range(fronts):
        scores, configs = [], []
        for taus in itertools.combinations(range(1, n_obs[f]), k):
            bounds = (0, *taus, n_obs[f])
            score = sum(loglik[r, f, bounds[r] : bounds[r + 1]].sum() for r in range(k + 1))
            scores.append(score)
            configs.append(taus)
        scores = np.array(scores)
        per_front[f] = logsumexp(scores) - log_binomial(np.array(n_obs[f] - 1), k)
        weights = np.exp(scores - logsumexp(scores))
        for w, taus in zip(weights, configs, strict=True):
            for j, s in enumerate(taus):
                marginals[j, f, s] += w
    return per_front, marginals


@pytest.mark.parametrize("k", [1, 2, 3])
def test_marginal_likelihood_and_date_posterior_match_enumeration(k):
    rng = np.random.default_rng(k)
    n_obs = np.array([9, 6, 11])
    width = n_obs.max()
    loglik = rng.normal(-3, 2, size=(k + 1, len(n_obs), width))
    valid = np.zeros((len(n_obs), width), dtype=bool)
    for f, size in enumerate(n_obs):
        loglik[:, f, size:] = 0.0
        valid[f, 1:size] = True
    expected, expected_marginals = brute_force(loglik, n_obs, k)

    tensor = pt.as_tensor(loglik)
    per_front, _ = marginal_loglik(tensor, valid, k, log_binomial(n_obs - 1, k))
    np.testing.assert_allclose(per_front.eval(), expected, rtol=1e-10)
    marginals = changepoint_posterior(tensor, valid, k).eval()
    np.testing.assert_allclose(marginals, expected_marginals, atol=1e-10)


def test_prefix_log_sum_exp_is_stable_for_widely_spread_values():
    values = np.array([-5000.0, 0.0, -3000.0, 800.0, 750.0, -1e10])
    got = log_cumsum_exp(pt.as_tensor(values), len(values)).eval()
    expected = [logsumexp(values[: i + 1]) for i in range(len(values))]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_gradient_is_finite_with_masked_positions():
    loglik = pt.tensor3("loglik")
    valid = np.array([[False, True, True, False]])
    per_front, _ = marginal_loglik(loglik, valid, 2, np.array([0.0]))
    grad = pt.grad(per_front.sum(), loglik)
    values = np.full((3, 1, 4), -2.0)
    values[:, :, 3] = 0.0
    assert np.isfinite(grad.eval({loglik: values})).all()


def test_gradient_survives_pymc_pre_gradient_rewrites_for_large_log_likelihoods():
    # Regression: pt.logsumexp's rewritten gradient was NaN once terms exceeded ~700.
    import pytensor
    from pymc.pytensorf import rewrite_pregrad

    loglik = pt.tensor3("loglik")
    valid = np.array([[False, True, True, True]])
    per_front, _ = marginal_loglik(loglik, valid, 1, np.array([0.0]))
    cost = rewrite_pregrad(per_front.sum())
    grad = pytensor.function([loglik], pt.grad(cost, loglik))
    values = np.array([[[-900.0, -2500.0, -1.0, -3.0]], [[-2.0, -4.0, -2600.0, -1.0]]])
    assert np.isfinite(grad(values)).all()

"""The observations' log-likelihood kernel: the same values and derivatives as the PyTensor definition."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import stats
from scipy.special import gammaln

from forecast.models.count_kernel import (
    AT_LEAST,
    EXACT,
    UNINFORMATIVE,
    count_loglik_each,
    count_loglik_total,
    observation_kind,
)
from forecast.models.escalation import count_logpmf, log_survival

# (count, mean, alpha): small and large counts, near-Poisson and overdispersed, and for the
# at_least copies both branches of log_survival, its tail stopped early (50, 5, 2) and summed
# to the last term with the geometric remainder (200, 30, 0.5: the ratio of terms tends to 0.98).
CASES = [
    (10, 2.0, 1.0),
    (50, 5.0, 2.0),
    (3, 40.0, 3.0),
    (200, 30.0, 0.5),
    (120, 1.0, 5.0),
    (700, 1.0, 5.0),
    (5, 5.0, 0.3),
    (18, 4.0, 20.0),
    (1, 0.2, 1.5),
    (30, 100.0, 0.8),
    (2, 1e-3, 1e6),
    (0, 3.0, 2.0),
    (9, 1e15, 2.0),
]


def _inputs():
    y = np.array([c[0] for c in CASES] * 2 + [0], dtype=float)
    mean = np.array([c[1] for c in CASES] * 2 + [4.0])
    alpha = np.array([c[2] for c in CASES] * 2 + [2.0])
    censored = np.zeros(len(y), dtype=bool)
    censored[len(CASES) :] = True
    return y, np.log(mean), alpha, censored


def _reference_terms(y, log_mean, alpha, censored):
    """The model's definition, term by term: count_logpmf, log_survival and 0 for an at_least 0."""
    exact = count_logpmf(y, log_mean, alpha, log_y_factorial=gammaln(y + 1.0))
    rows = np.flatnonzero(censored & (y > 0))
    below = np.arange(int(y[rows].max()), dtype=float)
    tail = log_survival(
        y[rows], log_mean[None, rows], alpha[None, rows], below=below, inside=below[None, :] < y[rows][:, None]
    )[0]
    return pt.switch(censored & (y == 0), 0.0, pt.set_subtensor(exact[rows], tail))


def _reference(y, log_mean, alpha, censored):
    """The sum of the model's definition."""
    return _reference_terms(y, log_mean, alpha, censored).sum()


def test_observation_kinds():
    kind = observation_kind(np.array([False, True, True, False]), np.array([3, 4, 0, 0]))
    assert kind.tolist() == [EXACT, AT_LEAST, UNINFORMATIVE, EXACT]


@pytest.mark.parametrize("mode", ["FAST_RUN", "NUMBA"])
def test_the_kernel_has_the_definitions_value_and_gradient(mode):
    y, log_mean, alpha, censored = _inputs()
    m, a = pt.dvector("m"), pt.dvector("a")
    reference = _reference(y, m, a, censored)
    kernel = count_loglik_total(m, a, y, gammaln(y + 1.0), observation_kind(censored, y))
    expected = pytensor.function([m, a], [reference, *pt.grad(reference, [m, a])])(log_mean, alpha)
    got = pytensor.function([m, a], [kernel, *pt.grad(kernel, [m, a])], mode=mode)(log_mean, alpha)
    assert np.isfinite(got[0])
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-12)
    for derivative, reference_derivative in zip(got[1:], expected[1:], strict=True):
        np.testing.assert_allclose(derivative, reference_derivative, rtol=1e-7, atol=1e-9)
    # The uninformative at_least 0 total contributes nothing, not even a gradient.
    assert got[1][-1] == 0.0 and got[2][-1] == 0.0


@pytest.mark.parametrize("mode", ["FAST_RUN", "NUMBA"])
def test_the_kernels_terms_are_the_definitions_and_share_the_sums_application(mode):
    """``obs_loglik`` is the kernel's per-observation output: each term is the definition's, the
    gradient of any weighted sum of them is the definition's, and beside the total they run the
    kernel once."""
    y, log_mean, alpha, censored = _inputs()
    m, a = pt.dvector("m"), pt.dvector("a")
    weights = np.random.default_rng(4).uniform(0.5, 2.0, size=len(y))
    reference = _reference_terms(y, m, a, censored)
    inputs = (m, a, y, gammaln(y + 1.0), observation_kind(censored, y))
    each, total = count_loglik_each(*inputs), count_loglik_total(*inputs)
    mixed = (weights * each).sum() + total
    expected = pytensor.function([m, a], [reference, *pt.grad((weights * reference).sum() + reference.sum(), [m, a])])
    got_function = pytensor.function([m, a], [each, total, *pt.grad(mixed, [m, a])], mode=mode)
    expected_values = expected(log_mean, alpha)
    got = got_function(log_mean, alpha)
    # (the near-Poisson term, alpha 1e6, agrees to 6e-11: the two arrange its arithmetic differently)
    np.testing.assert_allclose(got[0], expected_values[0], rtol=1e-10, atol=1e-12)
    assert got[0][-1] == 0.0  # the at_least 0 total
    np.testing.assert_allclose(got[1], got[0].sum(), rtol=1e-12)
    for derivative, reference_derivative in zip(got[2:], expected_values[1:], strict=True):
        np.testing.assert_allclose(derivative, reference_derivative, rtol=1e-7, atol=1e-9)
    ops = [type(node.op).__name__ for node in got_function.maker.fgraph.apply_nodes]
    assert ops.count("CountLoglik") == 1


def test_exact_counts_are_scipys_negative_binomial():
    y, log_mean, alpha, _ = _inputs()
    censored = np.zeros(len(y), dtype=bool)
    total = count_loglik_total(log_mean, alpha, y, gammaln(y + 1.0), observation_kind(censored, y)).eval()
    mean = np.exp(log_mean)
    expected = stats.nbinom.logpmf(y, alpha, alpha / (alpha + mean)).sum()
    np.testing.assert_allclose(total, expected, rtol=1e-9)


def test_the_gradient_is_the_derivative_of_the_value():
    rng = np.random.default_rng(3)
    y = np.array([0.0, 4.0, 25.0, 7.0, 60.0, 2.0])
    censored = np.array([False, False, False, True, True, True])
    kind = observation_kind(censored, y)
    point = [np.log([0.5, 3.0, 20.0, 2.0, 90.0, 8.0]), np.array([0.7, 2.0, 5.0, 1.5, 0.4, 3.0])]
    pytensor.gradient.verify_grad(
        lambda m, a: count_loglik_total(m, a, y, gammaln(y + 1.0), kind), point, rng=rng, abs_tol=1e-6, rel_tol=1e-6
    )


def test_the_kernel_rejects_inputs_of_the_wrong_rank():
    with pytest.raises(TypeError, match="log_mean must be a vector"):
        count_loglik_total(pt.matrix(), pt.vector(), pt.vector(), pt.vector(), pt.lvector())


def test_repeated_and_alternating_dispersions_give_the_definitions_values():
    """The kernel keeps the last two dispersions' log-gamma and digamma (months of 31 and 30 days alternate)."""
    y = np.array([120.0, 95.0, 130.0, 3.0, 110.0, 0.0, 250.0, 12.0, 140.0])
    alpha = np.array([5.0, 4.8, 5.0, 4.8, 4.8, 5.0, 4.5, 5.0, 4.8])
    censored = np.array([False, False, False, False, True, False, False, True, False])
    log_mean = np.log([100.0, 100.0, 110.0, 90.0, 100.0, 6.0, 100.0, 20.0, 130.0])
    m, a = pt.dvector("m"), pt.dvector("a")
    reference = _reference(y, m, a, censored)
    kernel = count_loglik_total(m, a, y, gammaln(y + 1.0), observation_kind(censored, y))
    expected = pytensor.function([m, a], [reference, *pt.grad(reference, [m, a])])(log_mean, alpha)
    got = pytensor.function([m, a], [kernel, *pt.grad(kernel, [m, a])])(log_mean, alpha)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-12)
    for derivative, reference_derivative in zip(got[1:], expected[1:], strict=True):
        np.testing.assert_allclose(derivative, reference_derivative, rtol=1e-7, atol=1e-9)

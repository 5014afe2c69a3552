"""Posterior predictive checks and randomised PIT on simulated counts (fixed seeds, no sampling)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from forecast.checks.predictive import (
    ALL_GROUPS,
    STATISTICS,
    central_intervals,
    predictive_checks,
    randomized_pit,
)

FRONTS = ("north", "south", "east")
RATES = (3.0, 12.0, 25.0)
PER_FRONT = 150
CHAINS, DRAWS = 4, 250


def simulate(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Observed Poisson counts per front and replicated counts from their conjugate posterior predictive.

    Rate :math:`\\lambda_g \\sim \\mathrm{Gamma}(1, 0.01)` a priori, so a posteriori
    :math:`\\lambda_g \\mid y \\sim \\mathrm{Gamma}(1 + \\sum y, 0.01 + n)` and
    :math:`y^{rep} \\mid \\lambda_g \\sim \\mathrm{Poisson}(\\lambda_g)`: a genuine posterior
    predictive of a correctly specified model.
    """
    rng = np.random.default_rng(seed)
    groups = np.repeat(FRONTS, PER_FRONT)
    mu = np.repeat(RATES, PER_FRONT)
    observed = rng.poisson(mu)
    replicated = np.empty((CHAINS, DRAWS, observed.size), dtype=np.int64)
    for front in FRONTS:
        members = groups == front
        rate = rng.gamma(1 + observed[members].sum(), 1 / (0.01 + members.sum()), size=(CHAINS, DRAWS, 1))
        replicated[:, :, members] = rng.poisson(rate, size=(CHAINS, DRAWS, int(members.sum())))
    return observed, replicated, groups, mu


def test_correct_model_is_not_flagged_and_covers_nominally():
    observed, replicated, groups, _ = simulate(seed=20240516)
    result = predictive_checks(observed, replicated, groups)
    assert result.flagged() == [], result.format()
    assert result.ok
    assert result.groups == (*FRONTS, ALL_GROUPS)
    for row in result.statistics:
        assert 0.025 <= row.p_value <= 0.975, row
    everything = result.coverage_of(ALL_GROUPS)
    assert everything.n_obs == observed.size
    # Inclusive intervals of counts cover at least nominally in expectation; 450 observations
    # give a standard error of about 0.014 on the 90% coverage.
    assert 0.86 <= everything.coverage_90 <= 0.97
    assert 0.45 <= everything.coverage_50 <= 0.70
    for front in FRONTS:
        assert 0.82 <= result.coverage_of(front).coverage_90 <= 0.99


def test_excess_zeros_are_flagged():
    observed, replicated, groups, _ = simulate(seed=7)
    rng = np.random.default_rng(8)
    inflated = np.where(rng.random(observed.size) < 0.3, 0, observed)
    result = predictive_checks(inflated, replicated, groups)
    for group in (*FRONTS, ALL_GROUPS):
        check = result.check(group, "share_zeros")
        assert check.flagged and check.p_value < 0.025, check
    assert any("share of zeros" in line for line in result.flagged())


def test_overdispersed_counts_are_flagged():
    observed, replicated, groups, mu = simulate(seed=11)
    rng = np.random.default_rng(12)
    size = 2.0  # negative binomial with the same means, variance mu + mu^2 / 2
    overdispersed = rng.negative_binomial(size, size / (size + mu))
    result = predictive_checks(overdispersed, replicated, groups)
    for group in (*FRONTS, ALL_GROUPS):
        check = result.check(group, "dispersion")
        assert check.flagged and check.p_value < 0.025, check
        assert check.observed > check.replicated_mean


def test_autocorrelation_follows_time_order_within_groups():
    rng = np.random.default_rng(3)
    n = 120
    trend = np.linspace(2, 40, n)  # a strong trend makes lag-1 autocorrelation high
    observed = rng.poisson(trend)
    replicated = rng.poisson(trend, size=(2, 200, n))
    groups = ["north"] * n
    in_time = predictive_checks(observed, replicated, groups)
    assert in_time.check("north", "lag1_autocorrelation").observed > 0.5

    # The same observations listed backwards with their positions in time give the same answer.
    backwards = slice(None, None, -1)
    reordered = predictive_checks(
        observed[backwards], replicated[..., backwards], groups, order=np.arange(n)[backwards]
    )
    assert reordered.check("north", "lag1_autocorrelation").observed == pytest.approx(
        in_time.check("north", "lag1_autocorrelation").observed
    )


def test_constant_and_all_zero_data_give_defined_statistics():
    observed = np.zeros(30, dtype=int)
    replicated = np.zeros((2, 50, 30), dtype=int)
    result = predictive_checks(observed, replicated, ["north"] * 30)
    for statistic in STATISTICS:
        check = result.check("north", statistic)
        assert check.p_value == 0.5, check  # every replicate ties with the observed value
        assert not check.flagged
    assert result.check("north", "dispersion").observed == 1.0
    assert result.check("north", "lag1_autocorrelation").observed == 0.0
    assert result.coverage_of("north").coverage_90 == 1.0


def test_mid_p_splits_ties():
    observed = np.array([5, 5, 5, 5])
    replicated = np.array([[[5, 5, 5, 5], [6, 6, 6, 6], [4, 4, 4, 4], [5, 5, 5, 5]]])  # (1, 4, 4)
    result = predictive_checks(observed, replicated, ["a"] * 4)
    # max: one draw above (6), two ties (5), one below: 1/4 + 0.5 * 2/4
    assert result.check("a", "max").p_value == pytest.approx(0.5)
    assert result.check("a", "mean").replicated_mean == pytest.approx(5.0)


def test_include_mask_drops_observations_everywhere():
    observed, replicated, groups, _ = simulate(seed=5)
    include = np.ones(observed.size, dtype=bool)
    include[:10] = False
    observed = observed.copy()
    observed[:10] = 1000  # e.g. censored totals that would wreck every statistic
    result = predictive_checks(observed, replicated, groups, include=include)
    assert result.coverage_of("north").n_obs == PER_FRONT - 10
    assert result.coverage_of(ALL_GROUPS).n_obs == observed.size - 10
    assert not result.check("north", "max").flagged


def test_small_groups_give_undefined_statistics_not_errors():
    observed = np.array([1, 2, 3, 4, 0])
    replicated = np.random.default_rng(0).poisson(2.0, size=(2, 40, 5))
    result = predictive_checks(observed, replicated, ["a", "a", "a", "a", "b"])
    assert np.isnan(result.check("b", "dispersion").p_value)
    assert np.isnan(result.check("b", "lag1_autocorrelation").p_value)
    assert not result.check("b", "lag1_autocorrelation").flagged
    assert np.isfinite(result.check(ALL_GROUPS, "lag1_autocorrelation").p_value)  # from group "a"
    assert json.loads(json.dumps(result.to_dict(), allow_nan=False))["statistics"]


def test_result_forms():
    observed, replicated, groups, _ = simulate(seed=9)
    rng = np.random.default_rng(10)
    result = predictive_checks(np.where(rng.random(observed.size) < 0.3, 0, observed), replicated, groups)
    frame = result.to_frame()
    assert list(frame.columns) == [
        "group",
        "statistic",
        "observed",
        "replicated_mean",
        "p_value",
        "flagged",
        "n_obs",
        "coverage_50",
        "coverage_90",
    ]
    assert len(frame) == (len(FRONTS) + 1) * len(STATISTICS)
    assert set(frame["group"]) == {*FRONTS, ALL_GROUPS}
    values = result.to_dict()
    assert json.loads(json.dumps(values, allow_nan=False)) == values
    assert values["flagged"] == result.flagged() and result.flagged()
    text = result.format()
    assert "share of zeros" in text and "*" in text
    assert len({len(line) for line in text.splitlines()[3:7]}) == 1  # fixed width coverage rows


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"replicated": np.zeros((10, 5))}, "chain, draw, obs"),
        ({"groups": ["a"] * 4}, "groups"),
        ({"groups": ["all"] * 5}, "reserved"),
        ({"include": np.ones(5)}, "boolean"),
        ({"order": np.array([0, 1, 1, 2, 3])}, "ties"),
    ],
)
def test_invalid_inputs_raise(change, message):
    arguments = {
        "observed": np.arange(5),
        "replicated": np.zeros((2, 10, 5)),
        "groups": ["a"] * 5,
        "include": None,
        "order": None,
    }
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        predictive_checks(
            arguments["observed"],
            arguments["replicated"],
            arguments["groups"],
            include=arguments["include"],
            order=arguments["order"],
        )


def test_no_observations_give_undefined_values_not_errors():
    result = predictive_checks(np.array([]), np.zeros((2, 5, 0)), [])
    assert result.groups == (ALL_GROUPS,)
    assert result.coverage_of(ALL_GROUPS).n_obs == 0
    assert result.flagged() == []
    assert json.loads(json.dumps(result.to_dict(), allow_nan=False))["coverage"][0]["coverage_90"] is None


def test_central_intervals_are_drawn_values():
    draws = np.arange(100).reshape(100, 1)
    lower, upper = central_intervals(draws, 0.9)
    assert lower[0] in draws and upper[0] in draws
    assert lower[0] <= 5 and upper[0] >= 94


def test_pit_of_a_correct_model_is_uniform():
    rng = np.random.default_rng(42)
    mu = rng.uniform(0.5, 30.0, size=600)
    observed = rng.poisson(mu)
    replicated = rng.poisson(mu, size=(4, 250, mu.size))
    pit = randomized_pit(observed, replicated, np.random.default_rng(43))
    assert pit.shape == observed.shape
    assert np.all((pit >= 0) & (pit <= 1))
    assert stats.kstest(pit, "uniform").pvalue > 0.01
    counts, _ = np.histogram(pit, bins=10, range=(0, 1))
    assert stats.chisquare(counts).pvalue > 0.01


def test_pit_of_a_misspecified_model_is_not_uniform():
    rng = np.random.default_rng(42)
    mu = rng.uniform(0.5, 30.0, size=600)
    observed = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))  # overdispersed truth
    replicated = rng.poisson(mu, size=(4, 250, mu.size))  # Poisson model
    pit = randomized_pit(observed, replicated, 43)
    assert stats.kstest(pit, "uniform").pvalue < 1e-4
    counts, _ = np.histogram(pit, bins=10, range=(0, 1))
    assert stats.chisquare(counts).pvalue < 1e-4


def test_pit_is_reproducible_with_a_seed():
    observed = np.array([0, 1, 2, 3])
    replicated = np.random.default_rng(0).poisson(1.5, size=(2, 100, 4))
    np.testing.assert_array_equal(randomized_pit(observed, replicated, 1), randomized_pit(observed, replicated, 1))

"""Scores, baselines and reliability tables on small cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import scoringrules as sr
from scipy import stats

from forecast.evaluation.baselines import (
    fit_dispersion,
    fit_dispersion_robust,
    last_value,
    period_baselines,
    window_baselines,
)
from forecast.evaluation.reliability import brier_score, reliability_table
from forecast.evaluation.scores import (
    count_distribution,
    count_interval,
    crps_count,
    crps_draws,
    log_score_count,
    mixture_log_score,
    pit_coverage,
    pooled_front_skill,
    randomized_pit_count,
    skill,
)


def test_crps_of_a_point_mass_is_the_absolute_error():
    y = np.array([0.0, 3.0, 10.0])
    draws = np.full((50, 3), 4.0)
    np.testing.assert_allclose(crps_draws(y, draws), [4.0, 1.0, 6.0])


def test_crps_of_a_poisson_matches_its_closed_form():
    y = np.array([0, 2, 5, 11])
    mu = np.array([0.3, 2.5, 4.0, 6.0])
    np.testing.assert_allclose(crps_count(y, mu), sr.crps_poisson(y.astype(float), mu), rtol=1e-9)


def test_crps_of_a_negative_binomial_matches_scoringrules_where_it_is_stable():
    y = np.array([0, 3, 10, 50])
    mu = np.array([2.0, 5.0, 8.0, 40.0])
    alpha = np.array([1.5, 3.0, 2.0, 20.0])
    np.testing.assert_allclose(crps_count(y, mu, alpha), sr.crps_negbinom(y, alpha, mu=mu), rtol=1e-7)


def test_sample_crps_approaches_the_exact_crps():
    rng = np.random.default_rng(1)
    draws = stats.nbinom(2.0, 2.0 / (2.0 + 6.0)).rvs(size=(20000, 1), random_state=rng)
    assert crps_draws(np.array([9.0]), draws)[0] == pytest.approx(crps_count([9], [6.0], [2.0])[0], rel=0.03)


def test_negative_binomial_parametrisation_is_mean_and_dispersion():
    dist = count_distribution(np.array([8.0]), np.array([2.0]))
    assert dist.mean()[0] == pytest.approx(8.0)
    assert dist.var()[0] == pytest.approx(8.0 + 8.0**2 / 2.0)
    # scoringrules' (n, prob) is scipy's: n = alpha, prob = alpha / (alpha + mu)
    assert sr.crps_negbinom(3, 2.0, 2.0 / 10.0) == pytest.approx(crps_count([3], [8.0], [2.0])[0], rel=1e-7)


def test_log_scores_are_minus_log_pmfs_and_the_mixture_averages_densities():
    y = np.array([4.0])
    assert log_score_count(y, [3.0])[0] == pytest.approx(-stats.poisson.logpmf(4, 3.0))
    assert log_score_count(y, [3.0], [0.5])[0] == pytest.approx(-stats.nbinom.logpmf(4, 0.5, 0.5 / 3.5))
    mu = np.array([[2.0], [6.0]])
    alpha = np.array([1.0, 4.0])
    expected = -np.log(0.5 * (stats.nbinom.pmf(4, 1.0, 1 / 3.0) + stats.nbinom.pmf(4, 4.0, 0.4)))
    assert mixture_log_score(y, mu, alpha)[0] == pytest.approx(expected)
    assert mixture_log_score(y, mu, None)[0] == pytest.approx(
        -np.log(0.5 * (stats.poisson.pmf(4, 2.0) + stats.poisson.pmf(4, 6.0)))
    )


def test_randomised_pit_is_uniform_for_a_correctly_specified_forecast():
    rng = np.random.default_rng(7)
    mu = rng.uniform(0.5, 20.0, size=4000)
    alpha = 1.5
    y = rng.poisson(rng.gamma(alpha, mu / alpha))
    pit = randomized_pit_count(y, mu, alpha, rng)
    assert stats.kstest(pit, "uniform").pvalue > 0.01
    wrong = randomized_pit_count(y, mu, None, rng)  # Poisson: too narrow, PIT piles up at the ends
    assert stats.kstest(wrong, "uniform").pvalue < 1e-6


def test_pit_coverage_is_nominal_for_calibrated_counts_where_the_interval_coverage_is_not():
    """Small counts: a calibrated forecast's inclusive 90% interval covers far more than 90%.

    The randomised PIT coverage is 0.9 in expectation however small the counts, and agrees
    with the interval's where counts are large (nearly continuous).
    """
    rng = np.random.default_rng(11)
    alpha = 2.0
    for low, high, interval_at_least in ((0.1, 3.0, 0.95), (200.0, 400.0, 0.88)):
        mu = rng.uniform(low, high, size=40_000)
        y = rng.poisson(rng.gamma(alpha, mu / alpha))  # drawn from the forecast itself: calibrated
        lower, upper = count_interval(mu, alpha, 0.9)
        interval = float(np.mean((y >= lower) & (y <= upper)))
        pit = pit_coverage(randomized_pit_count(y, mu, alpha, rng), 0.9)
        assert abs(pit - 0.9) < 0.006, (low, pit)  # 4 standard errors of 40,000 Bernoulli(0.9) draws
        assert interval >= interval_at_least, (low, interval)
        if low > 100:
            assert abs(interval - pit) < 0.01
    # miscalibrated (Poisson forecasts of overdispersed counts): too narrow, and the measure says so
    mu = rng.uniform(0.1, 3.0, size=40_000)
    y = rng.poisson(rng.gamma(0.3, mu / 0.3))
    assert pit_coverage(randomized_pit_count(y, mu, None, rng), 0.9) < 0.8


def test_pit_coverage_leaves_out_unscored_targets_and_checks_its_probability():
    assert pit_coverage(np.array([0.04, 0.05, 0.5, 0.95, 0.96, np.nan]), 0.9) == pytest.approx(3 / 5)
    assert np.isnan(pit_coverage(np.array([np.nan]), 0.9)) and np.isnan(pit_coverage(np.array([]), 0.5))
    with pytest.raises(ValueError, match="prob"):
        pit_coverage(np.array([0.5]), 1.0)


def test_intervals_of_a_count_forecast():
    lower, upper = count_interval(np.array([10.0]), None, 0.9)
    assert (lower[0], upper[0]) == (stats.poisson.ppf(0.05, 10), stats.poisson.ppf(0.95, 10))


def test_skill_and_its_interval():
    origins = np.repeat(np.arange(5), 3)
    reference = np.ones(15)
    estimate = skill(0.5 * reference, reference, origins)
    assert estimate.value == pytest.approx(0.5)
    assert estimate.lower == pytest.approx(0.5) and estimate.upper == pytest.approx(0.5)
    assert skill(reference, reference, origins).value == pytest.approx(0.0)
    noisy = skill(np.array([0.2, 0.8, 0.5, 0.4]), np.ones(4), np.arange(4))
    assert noisy.lower < noisy.value < noisy.upper


def test_brier_score_and_reliability_table():
    p = np.array([0.05, 0.05, 0.95, 0.95, 0.5])
    o = np.array([0, 0, 1, 0, 1])
    assert brier_score(p, o) == pytest.approx((0.0025 * 3 + 0.9025 + 0.25) / 5)
    table = reliability_table(p, o, bins=10)
    assert table["n"].sum() == 5
    first = table.iloc[0]
    assert first["n"] == 2 and first["observed_frequency"] == 0.0
    last = table.iloc[-1]
    assert last["n"] == 2 and last["observed_frequency"] == 0.5 and last["mean_forecast"] == pytest.approx(0.95)
    assert np.isnan(table.iloc[3]["observed_frequency"])


def test_period_baselines_on_hand_computable_data():
    counts = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0])
    exposure = np.ones_like(counts)
    out = period_baselines(counts, exposure, steps=np.array([1, 2, 7]), target_days=np.ones(3), window=3, season=7)
    np.testing.assert_allclose(out["no_change"].mean, [14.0, 14.0, 14.0])
    np.testing.assert_allclose(out["moving_average"].mean, [13.0, 13.0, 13.0])
    np.testing.assert_allclose(out["constant_rate"].mean, [7.5, 7.5, 7.5])
    # the next period is index 14 = 0 mod 7: the latest same-season value is index 7 (8.0)
    np.testing.assert_allclose(out["seasonal_naive"].mean, [8.0, 9.0, 14.0])
    # unobserved periods are skipped, partial exposure turns counts into rates
    counts2 = np.array([4.0, np.nan, 6.0])
    out2 = period_baselines(
        counts2, np.array([2, 0, 3]), steps=np.array([1]), target_days=np.array([7]), window=2, season=None
    )
    np.testing.assert_allclose(out2["no_change"].mean, [14.0])
    np.testing.assert_allclose(out2["moving_average"].mean, [14.0])
    np.testing.assert_allclose(out2["constant_rate"].mean, [10.0 / 5 * 7])
    assert "seasonal_naive" not in out2


def test_window_baselines_use_rates_of_the_windows():
    out = window_baselines(np.array([10, 20, 30]), np.array([10, 10, 5]), target_days=np.array([7]), window=2)
    np.testing.assert_allclose(out["no_change"].mean, [42.0])
    np.testing.assert_allclose(out["moving_average"].mean, [50.0 / 15 * 7])
    np.testing.assert_allclose(out["constant_rate"].mean, [60.0 / 25 * 7])


def test_dispersion_is_recovered_by_maximum_likelihood():
    rng = np.random.default_rng(3)
    mu = np.full(5000, 6.0)
    y = rng.poisson(rng.gamma(2.0, mu / 2.0))
    assert fit_dispersion(y, mu) == pytest.approx(2.0, rel=0.15)
    assert fit_dispersion(rng.poisson(mu), mu) > 50  # Poisson data: no overdispersion


def test_a_stretch_of_zeros_leaves_the_baselines_intervals_sane():
    """Six weeks read as zeros inside ~500 attacks a week must not collapse the dispersion.

    Plain maximum likelihood over the whole window gives alpha near 0 and a 90% interval of
    [0, several times the level]; the robust, local fit keeps it near the series' own spread.
    """
    rng = np.random.default_rng(3)
    counts = rng.poisson(rng.gamma(20.0, 500.0 / 20.0, size=60)).astype(float)
    counts[40:46] = 0.0  # a source gone dark, read as zeros
    exposure = np.full(60, 7.0)
    out = period_baselines(
        counts, exposure, steps=np.array([1, 2, 3, 4]), target_days=np.full(4, 7.0), window=4, season=None, recent=26
    )
    for method in ("no_change", "moving_average", "constant_rate"):
        lower, upper = count_interval(out[method].mean, out[method].alpha, 0.9)
        assert lower[0] > 0.3 * out[method].mean[0], method
        assert upper[0] < 2.0 * out[method].mean[0], method
    # the same series fitted by plain maximum likelihood over every pair is what broke
    pairs = np.flatnonzero(np.arange(60) >= 1)
    assert fit_dispersion(counts[pairs], counts[pairs - 1]) < 0.1


def test_robust_dispersion_is_maximum_likelihood_on_clean_series():
    rng = np.random.default_rng(5)
    for mu, alpha in ((0.5, None), (5.0, 2.0), (30.0, 0.5)):
        y = rng.poisson(mu if alpha is None else rng.gamma(alpha, mu / alpha, size=400), size=400).astype(float)
        mean = np.full(400, y.mean())
        assert fit_dispersion_robust(y, mean) == pytest.approx(fit_dispersion(y, mean), rel=0.05)


def test_views_benchmarks():
    counts = np.array([3.0, 0.0, 5.0, np.nan, 8.0] + [2.0] * 12 + [4.0])
    exposure = np.where(np.isnan(counts), 0, 1).astype(float)
    out = period_baselines(
        counts, exposure, steps=np.array([1, 2]), target_days=np.array([1.0, 2.0]), window=3, season=None
    )
    assert out["zero"].samples.shape == (1, 2) and not out["zero"].samples.any()
    np.testing.assert_allclose(out["last"].mean, [4.0, 8.0])  # Poisson around the last value
    assert out["last"].alpha[0] >= 1e6
    # conflictology: the last 12 observed values, equally likely, times the target's days
    expected = np.array([2.0] * 11 + [4.0])
    np.testing.assert_allclose(np.sort(out["conflictology"].samples[:, 0]), np.sort(expected))
    np.testing.assert_allclose(out["conflictology"].samples[:, 1], 2 * out["conflictology"].samples[:, 0])
    np.testing.assert_allclose(last_value(counts, exposure, np.array([7.0])), [28.0])
    windows = window_baselines(
        np.array([10.0, 20.0, 30.0]), np.array([10.0, 10.0, 5.0]), target_days=np.array([5.0]), window=2
    )
    np.testing.assert_allclose(windows["last"].mean, [30.0])
    np.testing.assert_allclose(np.sort(windows["conflictology"].samples[:, 0]), [5.0, 10.0, 30.0])


def test_pooled_front_skill_counts_every_front_once_whatever_its_scale():
    origins = np.repeat(np.arange(4), 2)
    fronts = np.tile(["big", "small"], 4)
    reference = np.tile([1000.0, 1.0], 4)
    method = np.tile([500.0, 2.0], 4)  # halves the big front's score, doubles the small one's
    pooled = pooled_front_skill(method, reference, fronts, origins)
    assert pooled.value == pytest.approx(1 - (0.5 + 2.0) / 2)  # -0.25: the fronts disagree
    assert skill(method, reference, origins).value == pytest.approx(1 - 2008 / 4004)  # the big front decides
    assert pooled.lower == pytest.approx(-0.25) and pooled.upper == pytest.approx(-0.25)
    # a front whose reference score is 0 has no ratio and is left out
    zero = pooled_front_skill(np.array([1.0, 3.0]), np.array([2.0, 0.0]), np.array(["a", "b"]), np.array([0, 0]))
    assert zero.value == pytest.approx(0.5)


def test_a_period_table_written_as_windows_gets_the_period_baselines(tmp_path):
    """Monthly windows, each one whole month (the ACLED table's layout), are a period series.

    Their baselines are those of the same counts given as period counts (dispersion fitted out of
    sample per step), not the window baselines' one dispersion around the constant rate.  A front
    with one window over two months keeps the window baselines.
    """
    import pandas as pd

    from forecast.data.events import read_events_csv
    from forecast.data.panel import build_panel
    from forecast.evaluation.backtest_scores import baselines_for_front
    from forecast.evaluation.targets import whole_period_series

    months = pd.date_range("2021-01-01", periods=30, freq="MS")
    counts = np.round(np.linspace(50, 400, 30) * np.random.default_rng(2).lognormal(0, 0.2, 30)).astype(int)
    starts, ends = months.strftime("%Y-%m-%d"), (months + pd.offsets.MonthEnd(0)).strftime("%Y-%m-%d")

    def panel(rows):
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.csv"
        pd.DataFrame(rows).to_csv(path, index=False)
        return build_panel(read_events_csv(path), freq="month")

    windows = panel({"date": starts, "end_date": ends, "front": "x", "count": counts})
    periods = panel({"date": starts, "front": "x", "count": counts})
    assert len(windows.window_obs) == 30 and windows.period_obs.empty
    series, exposure = whole_period_series(windows, "x")
    np.testing.assert_array_equal(series, counts)
    np.testing.assert_array_equal(
        exposure, [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] * 2 + [31, 28, 31, 30, 31, 30]
    )

    targets = pd.DataFrame({"kind": "window", "horizon": [1, 2, 3], "days": [31.0, 31.0, 30.0]})
    as_windows = baselines_for_front(windows, "x", targets, "month")
    as_periods = baselines_for_front(periods, "x", targets.assign(kind="period"), "month")
    for method in ("no_change", "moving_average", "constant_rate"):
        np.testing.assert_allclose(as_windows[method].mean, as_periods[method].mean)
        np.testing.assert_allclose(as_windows[method].alpha, as_periods[method].alpha)
    # the window baselines' dispersion around the constant rate is far wider on this rising front
    old = window_baselines(counts.astype(float), exposure, target_days=targets["days"].to_numpy(), window=3, recent=24)
    assert old["moving_average"].alpha[0] < as_windows["moving_average"].alpha[0] / 2

    merged_ends = ends.to_numpy().copy()
    merged_ends[4] = ends[5]  # the fifth window runs over May and June
    keep = np.r_[0:5, 6:30]
    mixed = panel({"date": starts[keep], "end_date": merged_ends[keep], "front": "x", "count": counts[keep]})
    assert whole_period_series(mixed, "x") is None
    kept = baselines_for_front(mixed, "x", targets, "month")
    assert np.unique(kept["moving_average"].alpha).size == 1  # one dispersion for every step: the window baselines

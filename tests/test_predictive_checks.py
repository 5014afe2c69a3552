"""Posterior predictive checks and randomised PIT on simulated counts (fixed seeds, no sampling)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
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


# --------------------------------------------------------------------------------------------
# Autocorrelation at lags 1..7
# --------------------------------------------------------------------------------------------


def brute_force_autocorrelation(values: dict[int, float], lag: int) -> tuple[float, float]:
    """Numerator and denominator of r_k by looping over every pair of steps (values: step -> y)."""
    mean = np.mean(list(values.values()))
    numerator = sum((values[s] - mean) * (values[t] - mean) for s in values for t in values if t - s == lag)
    denominator = sum((v - mean) ** 2 for v in values.values())
    return numerator, denominator


def brute_force_mid_p(observed: float, replicated: np.ndarray) -> float:
    defined = replicated[np.isfinite(replicated)]
    ties = np.isclose(defined, observed, rtol=0, atol=1e-12 * max(1, abs(observed)))
    return float(np.mean((defined > observed) & ~ties) + 0.5 * np.mean(ties))


def test_autocorrelations_match_a_brute_force_loop_with_groups_gaps_and_exclusions():
    rng = np.random.default_rng(17)
    # group "a": steps 0..29 with a gap at 10..13 (no rows); "b": 0..11 with steps 3 and 7 missing;
    # "c": four consecutive steps (lag 1 has 3 pairs, lags 2..7 too few: not computable).
    steps = {"a": [s for s in range(30) if not 10 <= s <= 13], "b": [0, 1, 2, 4, 5, 6, 8, 9, 10, 11], "c": [0, 1, 2, 3]}
    groups = [g for g, ss in steps.items() for _ in ss] + ["a", "b"]  # plus a window total in a and b
    order = np.array([s for ss in steps.values() for s in ss] + [np.nan, np.nan], dtype=float)
    include = np.ones(len(groups), dtype=bool)
    include[5] = False  # a censored total in "a" at step 5: a gap for the lags
    observed = rng.poisson(6.0, len(groups))
    replicated = rng.poisson(6.0, (2, 30, len(groups)))
    shuffle = rng.permutation(len(groups))  # the array order must not matter, only `order`
    result = predictive_checks(
        observed[shuffle],
        replicated[..., shuffle],
        [groups[i] for i in shuffle],
        order=order[shuffle],
        include=include[shuffle],
    )
    draws = replicated.reshape(-1, len(groups))

    def series(y: np.ndarray, group: str) -> dict[int, float]:
        return {
            int(order[i]): float(y[i])
            for i in range(len(groups))
            if groups[i] == group and include[i] and np.isfinite(order[i])
        }

    for lag in range(1, 8):
        statistic = f"lag{lag}_autocorrelation"
        pooled_obs, pooled_rep = [0.0, 0.0], np.zeros((draws.shape[0], 2))
        for group in steps:
            values = series(observed, group)
            pairs = sum(1 for s in values if s + lag in values)
            check = result.check(group, statistic)
            if pairs < 3:
                assert np.isnan(check.observed) and np.isnan(check.p_value) and not check.flagged, check
                continue
            num, den = brute_force_autocorrelation(values, lag)
            rep = np.array([brute_force_autocorrelation(series(draw, group), lag) for draw in draws])
            expected_rep = np.where(rep[:, 1] > 0, rep[:, 0] / np.where(rep[:, 1] > 0, rep[:, 1], 1), 0.0)
            assert check.observed == pytest.approx(num / den)
            assert check.replicated_mean == pytest.approx(expected_rep.mean())
            assert check.p_value == pytest.approx(brute_force_mid_p(num / den, expected_rep))
            pooled_obs = [pooled_obs[0] + num, pooled_obs[1] + den]
            pooled_rep += rep
        everything = result.check(ALL_GROUPS, statistic)
        assert everything.observed == pytest.approx(pooled_obs[0] / pooled_obs[1])
        assert everything.replicated_mean == pytest.approx(np.mean(pooled_rep[:, 0] / pooled_rep[:, 1]))
    # group "c" (4 steps) has lag 1 only; "b" loses lag 3 pairs to its two gaps but keeps enough
    assert np.isfinite(result.check("c", "lag1_autocorrelation").p_value)
    assert np.isnan(result.check("c", "lag2_autocorrelation").p_value)
    values = result.to_dict()
    assert json.loads(json.dumps(values, allow_nan=False)) == values
    row = next(r for r in values["statistics"] if r["group"] == "c" and r["statistic"] == "lag7_autocorrelation")
    assert row["observed"] is None and row["p_value"] is None and row["flagged"] is False
    assert "lag-7 autocorrelation" in result.format() and "n/a" in result.format()


def test_a_gap_is_skipped_not_joined():
    # 0, 0, 0, 0, 0 | gap | 9, 9, 9, 9, 9: joined across the gap the series looks like one
    # long positive run; with the gap skipped the pairs are the same as without it.
    observed = np.array([0, 9, 0, 9, 0, 9, 0, 9, 0, 9, 0, 9])
    steps = np.arange(observed.size)
    with_gap = np.where(steps >= 6, steps + 5, steps)  # five unobserved steps after the sixth
    replicated = np.zeros((1, 2, observed.size))
    for lag in (1, 2, 3):
        contiguous = predictive_checks(observed, replicated, ["a"] * observed.size).check(
            "a", f"lag{lag}_autocorrelation"
        )
        gapped = predictive_checks(observed, replicated, ["a"] * observed.size, order=with_gap).check(
            "a", f"lag{lag}_autocorrelation"
        )
        lost = lag  # pairs across the gap that are skipped
        centred = observed - observed.mean()
        expected = sum(
            centred[i] * centred[i + lag] for i in range(observed.size - lag) if not (i < 6 <= i + lag)
        ) / np.sum(centred**2)
        assert gapped.observed == pytest.approx(expected), lag
        assert lost and gapped.observed != pytest.approx(contiguous.observed)


def ar1_log_rate(rng: np.random.Generator, n: int, phi: float = 0.8, sigma: float = 0.6) -> np.ndarray:
    """A stationary AR(1) log rate around log 10: counts from it are strongly autocorrelated."""
    log_rate = np.empty(n)
    log_rate[0] = np.log(10.0) + rng.normal(0.0, sigma / np.sqrt(1 - phi**2))
    for t in range(1, n):
        log_rate[t] = np.log(10.0) + phi * (log_rate[t - 1] - np.log(10.0)) + rng.normal(0.0, sigma)
    return log_rate


@pytest.mark.parametrize("seed", [2024, 7, 99])
def test_autocorrelated_data_pass_against_their_own_process_and_fail_against_iid_replicates(seed):
    rng = np.random.default_rng(seed)
    n = 200
    log_rate = ar1_log_rate(rng, n)
    observed = rng.poisson(np.exp(log_rate))
    groups = ["gaza"] * n
    # The posterior predictive of a model that tracks the AR(1) level: the latent path, known up
    # to a little posterior noise per draw, then Poisson counts.
    same_process = rng.poisson(np.exp(log_rate + rng.normal(0.0, 0.1, (2, 200, n))))
    result = predictive_checks(observed, same_process, groups)
    lags = [f"lag{lag}_autocorrelation" for lag in range(1, 8)]
    assert not any(result.check("gaza", statistic).flagged for statistic in lags), result.format()
    assert result.check("gaza", "lag1_autocorrelation").observed > 0.4

    # i.i.d. replicates with the same marginal distribution (the observed counts shuffled per draw)
    iid = rng.permuted(np.broadcast_to(observed, (2, 200, n)), axis=-1)
    result = predictive_checks(observed, iid, groups)
    check = result.check("gaza", "lag1_autocorrelation")
    assert check.flagged and check.p_value < 0.025, check
    assert abs(check.replicated_mean) < 0.05
    assert not result.check("gaza", "mean").flagged  # the marginal is right: only the dependence is wrong
    assert any("lag-1 autocorrelation" in line for line in result.flagged())


def test_order_must_be_whole_time_steps():
    arguments = (np.arange(5), np.zeros((2, 10, 5)), ["a"] * 5)
    with pytest.raises(ValueError, match="whole numbers"):
        predictive_checks(*arguments, order=np.array([0.0, 1.5, 2.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match="integer time steps"):
        predictive_checks(*arguments, order=pd.date_range("2024-01-01", periods=5).to_numpy())


def _lag_autocorrelation(steps: dict[int, float], lag: int) -> float:
    """The checks' lag-``lag`` autocorrelation of ``{step: count}`` (pairs exactly ``lag`` steps apart)."""
    mean = np.mean(list(steps.values()))
    pairs = sum((steps[t] - mean) * (steps[t + lag] - mean) for t in steps if t + lag in steps)
    return pairs / sum((v - mean) ** 2 for v in steps.values())


def test_autocorrelations_pair_windows_that_are_one_whole_period(tmp_path):
    """A month of a monthly table, or a day given with its own end date, is paired as that period's count.

    A window over two days has no single period and stays out (pairs across it are skipped).
    """
    from forecast.data.events import read_events_csv
    from forecast.data.panel import build_panel
    from forecast.jobs.fit import check_predictions
    from forecast.models.design import ModelOptions, build_design

    def checks(rows: dict, freq: str = "day"):
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.csv"
        pd.DataFrame(rows).to_csv(path, index=False)
        design = build_design(build_panel(read_events_csv(path), freq=freq), None, ModelOptions(changepoints=0))
        return check_predictions(design, np.broadcast_to(design.y, (1, 4, design.n_obs)))

    counts = np.random.default_rng(5).poisson(20, size=40)
    days = pd.date_range("2024-01-01", periods=40, freq="D").strftime("%Y-%m-%d").to_numpy()
    as_rows = checks({"date": days, "front": "x", "count": counts})
    as_windows = checks({"date": days, "end_date": days, "front": "x", "count": counts})
    for lag in (1, 3, 7):
        name = f"lag{lag}_autocorrelation"
        expected = _lag_autocorrelation(dict(enumerate(counts.astype(float))), lag)
        assert as_rows.check("x", name).observed == pytest.approx(expected)
        assert as_windows.check("x", name).observed == pytest.approx(expected)

    ends = days.copy()
    ends[10] = days[11]  # one row for days 11 and 12
    keep = np.r_[0:11, 12:40]
    spanning = checks({"date": days[keep], "end_date": ends[keep], "front": "x", "count": counts[keep]})
    steps = {t: float(counts[t]) for t in range(40) if t not in (10, 11)}
    assert spanning.check("x", "lag1_autocorrelation").observed == pytest.approx(_lag_autocorrelation(steps, 1))

    months = pd.date_range("2022-01-01", periods=24, freq="MS")
    monthly = counts[:24] * 30
    table = checks(
        {
            "date": months.strftime("%Y-%m-%d"),
            "end_date": (months + pd.offsets.MonthEnd(0)).strftime("%Y-%m-%d"),
            "front": "x",
            "count": monthly,
        },
        freq="month",
    )
    expected = _lag_autocorrelation(dict(enumerate(monthly.astype(float))), 1)
    assert table.check("x", "lag1_autocorrelation").observed == pytest.approx(expected)

"""The changepoint detector of the alerting path: exactness, detection and state.

Its speed is measured by ``benchmarks/bench_alerts.py --throughput-only`` (a script that prints, not a test).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from forecast.alerts.bocpd import (
    DETECTOR_KEYS,
    DetectorConfig,
    DetectorState,
    WindowState,
    detector_config_from_dict,
    load_detector_config,
    update,
    update_windows,
    window_hazard,
    window_log_predictive,
)
from forecast.alerts.surprise import PredictiveDraws, tail_probabilities
from forecast.errors import PriorConfigError

DETECTOR_FILE = Path(__file__).resolve().parents[1] / "priors" / "alerts" / "detector.yaml"


def brute_force_run_length_posterior(counts, *, likelihood, hazard, alpha, beta, dispersion=2):
    """Unpruned, untruncated BOCPD with growing lists and full log predictives.

    Returns the run-length posterior after each count: ``post[t][r]`` for ``r = 0 .. t + 1``.
    """

    def log_predictive(n_obs, total, y):
        if likelihood == "poisson":
            a, b = alpha + total, beta + n_obs
            return (
                math.lgamma(a + y)
                - math.lgamma(a)
                - math.lgamma(y + 1)
                + a * math.log(b / (b + 1))
                - y * math.log(b + 1)
            )
        a, b = alpha + dispersion * n_obs, beta + total

        def log_beta(x, z):
            return math.lgamma(x) + math.lgamma(z) - math.lgamma(x + z)

        return (
            math.lgamma(y + dispersion)
            - math.lgamma(dispersion)
            - math.lgamma(y + 1)
            + log_beta(a + dispersion, b + y)
            - log_beta(a, b)
        )

    posterior = [1.0]
    stats = [(0, 0)]
    history = []
    for y in counts:
        predictive = [math.exp(log_predictive(n_obs, total, y)) for n_obs, total in stats]
        grown = [(1 - hazard) * p * q for p, q in zip(posterior, predictive, strict=True)]
        new = [0.0, grown[0] + hazard * predictive[0]] + grown[1:]
        total_mass = sum(new)
        posterior = [value / total_mass for value in new]
        stats = [(0, 0)] + [(n_obs + 1, total + y) for n_obs, total in stats]
        history.append(posterior)
    return history


@pytest.mark.parametrize("likelihood", ["poisson", "negative_binomial"])
def test_equals_brute_force_when_nothing_is_truncated(likelihood):
    rng = np.random.default_rng(3)
    counts = np.r_[rng.poisson(3, 25), rng.poisson(11, 20), rng.poisson(1, 15)]
    config = DetectorConfig(
        likelihood=likelihood,
        expected_run_length=40.0,
        rate_alpha=1.5,
        rate_beta=0.2,
        p_alpha=2.0,
        p_beta=1.5,
        dispersion=3,
        max_run_length=80,
        prune_below=0.0,
    )
    state = DetectorState.initial(1, config)
    out = update(config, state, counts[None, :].astype(float), within_last=5)
    reference = brute_force_run_length_posterior(
        counts.tolist(),
        likelihood=likelihood,
        hazard=config.hazard,
        alpha=1.5 if likelihood == "poisson" else 2.0,
        beta=0.2 if likelihood == "poisson" else 1.5,
        dispersion=3,
    )
    final = np.zeros(81)
    final[: len(reference[-1])] = reference[-1]
    np.testing.assert_allclose(state.probs[0], final, rtol=0, atol=1e-12)
    expected_cp = [sum(post[1:6]) for post in reference]
    np.testing.assert_allclose(out.changepoint_prob[0], expected_cp, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_detects_a_doubling_of_the_rate_within_a_few_steps(seed):
    # Poisson counts and the Poisson detector: a doubling from 6 to 12 a day.
    rng = np.random.default_rng(seed)
    change = 200
    counts = np.r_[rng.poisson(6, change), rng.poisson(12, 60)].astype(float)
    config = DetectorConfig(likelihood="poisson")
    out = update(config, DetectorState.initial(1, config), counts[None, :], within_last=7, report_above=0.5)
    before = out.changepoint_prob[0, 30:change]
    after = out.changepoint_prob[0, change : change + 8]
    assert np.mean(before >= 0.5) < 0.05, "few false alarms before the change"
    first = int(np.flatnonzero(after >= 0.5)[0])
    assert first <= 5
    step = change + first
    assert out.rate_after[0, step] > out.rate_before[0, step]
    assert 1 <= out.run_length[0, step] <= first + 2


def test_the_negative_binomial_detector_finds_a_large_jump_in_bursty_counts():
    rng = np.random.default_rng(4)
    change = 150
    mean_before, mean_after, phi = 4.0, 24.0, 2
    counts = np.r_[
        rng.negative_binomial(phi, phi / (phi + mean_before), change),
        rng.negative_binomial(phi, phi / (phi + mean_after), 30),
    ].astype(float)
    config = DetectorConfig()  # negative binomial, dispersion 2
    out = update(config, DetectorState.initial(1, config), counts[None, :], within_last=7, report_above=0.5)
    assert np.mean(out.changepoint_prob[0, 30:change] >= 0.5) < 0.05
    first = int(np.flatnonzero(out.changepoint_prob[0, change:] >= 0.5)[0])
    assert first <= 5
    assert out.rate_after[0, change + first] > out.rate_before[0, change + first]


def test_batches_of_any_size_give_the_same_numbers_and_state():
    rng = np.random.default_rng(5)
    counts = rng.poisson(4, (3, 120)).astype(float)
    counts[1, [0, 7, 8, 50]] = np.nan  # a front not observed on some days
    config = DetectorConfig(max_run_length=30)
    whole = DetectorState.initial(3, config)
    out_whole = update(config, whole, counts, report_above=0.0)
    pieces = DetectorState.initial(3, config)
    outs = [update(config, pieces, counts[:, lo : lo + 17], report_above=0.0) for lo in range(0, 120, 17)]
    np.testing.assert_array_equal(whole.probs, pieces.probs)
    np.testing.assert_array_equal(whole.sums, pieces.sums)
    np.testing.assert_array_equal(whole.n_obs, pieces.n_obs)
    for name in ("changepoint_prob", "run_length", "rate_after", "rate_before", "n_obs"):
        joined = np.concatenate([getattr(o, name) for o in outs], axis=1)
        np.testing.assert_array_equal(getattr(out_whole, name), joined)


def test_a_front_alone_gives_the_same_numbers_as_in_a_group():
    # A revision recomputes one front alone: it must match the front's run within the group.
    counts = np.random.default_rng(9).poisson(6, (4, 90)).astype(float)
    config = DetectorConfig(max_run_length=60)
    group = DetectorState.initial(4, config)
    out_group = update(config, group, counts, report_above=0.0)
    alone = DetectorState.initial(1, config)
    out_alone = update(config, alone, counts[2:3], report_above=0.0)
    np.testing.assert_array_equal(group.probs[2], alone.probs[0])
    np.testing.assert_array_equal(out_group.changepoint_prob[2], out_alone.changepoint_prob[0])
    np.testing.assert_array_equal(out_group.rate_before[2], out_alone.rate_before[0])


def test_a_missing_day_leaves_the_front_as_it_was():
    rng = np.random.default_rng(8)
    counts = rng.poisson(4, 40).astype(float)
    with_gaps = counts.copy()
    with_gaps[[5, 6, 30]] = np.nan
    config = DetectorConfig(max_run_length=50)
    gapped = DetectorState.initial(1, config)
    update(config, gapped, with_gaps[None, :])
    compact = DetectorState.initial(1, config)
    update(config, compact, with_gaps[~np.isnan(with_gaps)][None, :])
    np.testing.assert_array_equal(gapped.probs, compact.probs)
    assert gapped.n_obs[0] == 37


def test_state_round_trips_through_bytes_exactly():
    rng = np.random.default_rng(2)
    config = DetectorConfig(max_run_length=40)
    state = DetectorState.initial(2, config)
    update(config, state, rng.poisson(5, (2, 60)).astype(float))
    blobs = [state.front_bytes(0), state.front_bytes(1)]
    again = DetectorState.from_front_bytes(blobs, config)
    np.testing.assert_array_equal(again.probs, state.probs)
    np.testing.assert_array_equal(again.sums, state.sums)
    np.testing.assert_array_equal(again.n_obs, state.n_obs)
    follow = rng.poisson(5, (2, 10)).astype(float)
    update(config, state, follow)
    update(config, again, follow)
    np.testing.assert_array_equal(again.probs, state.probs)
    with pytest.raises(ValueError, match="max_run_length"):
        DetectorState.from_front_bytes(blobs, DetectorConfig(max_run_length=41))


def test_truncation_keeps_the_state_size_fixed_and_the_posterior_normalised():
    config = DetectorConfig(max_run_length=20)
    state = DetectorState.initial(1, config)
    update(config, state, np.random.default_rng(1).poisson(3, (1, 500)).astype(float))
    assert state.probs.shape == (1, 21)
    assert state.probs[0, 0] == 0.0
    assert math.isclose(state.probs.sum(), 1.0, rel_tol=1e-9)
    assert state.probs[0, -1] > 0.5  # a long stable regime sits in the last slot ("20 or more")


def test_refuses_negative_or_fractional_counts():
    config = DetectorConfig()
    with pytest.raises(ValueError, match="whole numbers"):
        update(config, DetectorState.initial(1, config), np.array([[1.0, -1.0]]))
    with pytest.raises(ValueError, match="whole numbers"):
        update(config, DetectorState.initial(1, config), np.array([[1.5]]))


# --------------------------------------------------------------------------------------------
# Surprise


def test_tail_probabilities_count_ties_on_both_sides():
    draws = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    p_up, p_down = tail_probabilities(draws, 7)
    assert p_up == pytest.approx(0.3) and p_down == pytest.approx(0.8)
    p_up, p_down = tail_probabilities(draws[:, None], np.array([12]))
    assert p_up[0] == 0.0 and p_down[0] == 1.0


def test_predictive_draws_look_up_front_and_date():
    draws = np.zeros((100, 2, 3), dtype=np.int64)
    draws[:, 1, 2] = np.arange(100)
    predictive = PredictiveDraws(
        fronts=("a", "b"), dates=("2024-01-01", "2024-01-02", "2024-01-03"), draws=draws, as_of="2023-12-31"
    )
    assert predictive.tails("b", "2024-01-03", 95) == pytest.approx((0.05, 0.96))
    assert predictive.tails("b", "2024-01-04", 95) is None
    assert predictive.tails("c", "2024-01-03", 95) is None
    with pytest.raises(ValueError, match="shape"):
        PredictiveDraws(fronts=("a",), dates=("2024-01-01",), draws=draws, as_of="2023-12-31")


# --------------------------------------------------------------------------------------------
# The detector file


def test_detector_file_equals_code_defaults():
    assert load_detector_config(DETECTOR_FILE) == DetectorConfig()
    assert load_detector_config(DETECTOR_FILE).hash() == DetectorConfig().hash()
    assert load_detector_config(None) == DetectorConfig()


def _valid() -> dict:
    return DetectorConfig().to_dict()


def test_detector_file_refuses_unknown_and_missing_keys(tmp_path):
    data = _valid()
    data["hazard_rate"] = 0.1
    del data["dispersion"]
    with pytest.raises(PriorConfigError) as error:
        detector_config_from_dict(data, source="my.yaml")
    message = str(error.value)
    assert "my.yaml" in message and "hazard_rate" in message and "dispersion" in message
    for key in DETECTOR_KEYS:
        assert key in message


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d.update(likelihood="zip"), "likelihood"),
        (lambda d: d["rate"].update(dist="Normal"), "Gamma"),
        (lambda d: d["success_probability"]["kwargs"].update(alpha=-1.0), "success_probability.kwargs.alpha"),
        (lambda d: d.update(dispersion=1.5), "dispersion"),
        (lambda d: d.update(expected_run_length="1e3"), "write 1.0e-3"),
        (lambda d: d.update(max_run_length=1), "max_run_length"),
        (lambda d: d["rate"]["kwargs"].update(shape=2.0), "unknown keys ['shape']"),
    ],
)
def test_detector_file_refuses_bad_values(change, needle):
    data = _valid()
    change(data)
    with pytest.raises(PriorConfigError, match="detector") as error:
        detector_config_from_dict(data, source="d.yaml")
    assert needle in str(error.value)


def test_detector_file_is_plain_yaml_only(tmp_path):
    path = tmp_path / "detector.yaml"
    path.write_text("likelihood: !!python/object/apply:os.system ['echo hi']\n", encoding="utf-8")
    with pytest.raises(PriorConfigError, match="plain YAML"):
        load_detector_config(path)
    path.write_text("likelihood: poisson\nlikelihood: poisson\n", encoding="utf-8")
    with pytest.raises(PriorConfigError, match="twice"):
        load_detector_config(path)
    with pytest.raises(FileNotFoundError):
        load_detector_config(tmp_path / "missing.yaml")


# --------------------------------------------------------------------------------------------
# Window totals (observations with an exposure)


@pytest.mark.parametrize("likelihood", ["poisson", "negative_binomial"])
def test_window_predictive_equals_the_closed_form(likelihood):
    from scipy import stats

    config = DetectorConfig(likelihood=likelihood, rate_alpha=1.5, rate_beta=0.3, p_alpha=2.0, p_beta=1.5, dispersion=3)
    totals, days = np.array([0, 4, 17, 40]), np.array([0, 2, 9, 30])
    for y, w in [(0, 1), (3, 5), (12, 16), (0, 30)]:
        got = window_log_predictive(config, totals, days, y, w)
        if likelihood == "poisson":
            a, b = 1.5 + totals, 0.3 + days
            expected = stats.nbinom.logpmf(y, a, b / (b + w))
        else:  # NB(w phi, p) with p ~ Beta(a0 + phi days, b0 + totals): beta-negative-binomial
            expected = stats.betanbinom.logpmf(y, 3 * w, 2.0 + 3 * days, 1.5 + totals)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("likelihood", ["poisson", "negative_binomial"])
def test_a_window_updates_the_posterior_like_its_days_in_total(likelihood):
    # Sufficiency: p(d_1..d_w) = p(window total) * p(d | total), and p(d | total) is free of the
    # rate (multinomial for Poisson-Gamma, a product of binomial coefficients for NB-Beta).
    config = DetectorConfig(likelihood=likelihood, rate_alpha=2.0, rate_beta=0.5, p_alpha=1.5, p_beta=2.5, dispersion=2)
    daily = [3, 0, 5, 2, 7, 1]
    total, w, phi = sum(daily), len(daily), 2
    sequential, seen = 0.0, 0
    for i, d in enumerate(daily):
        sequential += float(window_log_predictive(config, np.array([seen]), np.array([i]), d, 1)[0])
        seen += d
    if likelihood == "poisson":
        given_total = math.lgamma(total + 1) - sum(math.lgamma(d + 1) for d in daily) - total * math.log(w)
    else:

        def log_choose(top, k):
            return math.lgamma(top + 1) - math.lgamma(k + 1) - math.lgamma(top - k + 1)

        given_total = sum(log_choose(d + phi - 1, d) for d in daily) - log_choose(total + w * phi - 1, total)
    window = float(window_log_predictive(config, np.array([0]), np.array([0]), total, w)[0])
    assert sequential == pytest.approx(window + given_total, abs=1e-12)
    # ... and the regime's statistics after the window are those after its days.
    state = WindowState.initial(config)
    update_windows(config, state, [total], [w])
    days_state = DetectorState.initial(1, config)
    update(config, days_state, np.array([daily], dtype=float))
    assert state.sums[1] == days_state.sums[0, w] == total and state.days[1] == w
    after_window = window_log_predictive(config, state.sums[1:2], state.days[1:2], 4, 3)
    after_days = window_log_predictive(config, days_state.sums[0, w : w + 1], np.array([w]), 4, 3)
    np.testing.assert_array_equal(after_window, after_days)


@pytest.mark.parametrize("likelihood", ["poisson", "negative_binomial"])
def test_windows_of_one_day_give_the_daily_detector(likelihood):
    rng = np.random.default_rng(21)
    counts = np.r_[rng.poisson(4, 70), rng.poisson(13, 50)]
    config = DetectorConfig(likelihood=likelihood, max_run_length=60)
    daily = DetectorState.initial(1, config)
    out = update(config, daily, counts[None, :].astype(float), within_last=7, report_above=0.3)
    windows = WindowState.initial(config)
    out_w = update_windows(config, windows, counts, np.ones_like(counts), within_last=7, report_above=0.3)
    np.testing.assert_allclose(windows.probs, daily.probs[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out_w.changepoint_prob, out.changepoint_prob, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(out_w.run_length, out.run_length)
    np.testing.assert_allclose(out_w.rate_before, out.rate_before, rtol=1e-12, equal_nan=True)
    assert window_hazard(config, 1) == pytest.approx(config.hazard, rel=1e-15)
    assert window_hazard(config, 16) == pytest.approx(1 - (1 - config.hazard) ** 16, rel=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_rate_drop_in_window_totals_is_detected(seed):
    # Windows of 3 to 10 days, 3 a day then 0.3 a day from window 25 on (default detector).
    rng = np.random.default_rng(seed)
    days = rng.integers(3, 11, 40)
    rate = np.where(np.arange(40) < 25, 3.0, 0.3)
    counts = rng.poisson(rate * days)
    config = DetectorConfig()
    state = WindowState.initial(config)
    out = update_windows(config, state, counts, days, within_last=7, report_above=0.5)
    assert np.all(out.changepoint_prob[0, 5:25] < 0.5), "no alarm before the drop"
    first = int(np.flatnonzero(out.changepoint_prob[0, 25:] >= 0.5)[0])
    assert first <= 2
    step = 25 + first
    assert out.rate_after[0, step] < out.rate_before[0, step]
    assert out.n_obs[0, -1] == days.sum() == state.n_days
    again = WindowState.from_bytes(state.to_bytes(), config)
    np.testing.assert_array_equal(again.probs, state.probs)
    assert (again.n_obs, again.n_days) == (state.n_obs, state.n_days)


# --------------------------------------------------------------------------------------------
# The compiled inner loop (numba) against the numpy reference


def test_compiled_pairwise_sum_is_numpys():
    from forecast.alerts.bocpd_kernel import pairwise_sum

    rng = np.random.default_rng(0)
    for n in (1, 7, 8, 100, 128, 129, 366, 1000, 5003):
        values = rng.random(n) * 10.0 ** rng.integers(-20, 5, n)
        assert pairwise_sum(values) == np.add.reduce(values)


@pytest.mark.parametrize("likelihood", ["poisson", "negative_binomial"])
def test_compiled_single_series_path_equals_the_numpy_path(monkeypatch, likelihood):
    from forecast.alerts import bocpd

    rng = np.random.default_rng(17)
    counts = np.r_[rng.negative_binomial(2, 2 / 7, 1500), rng.negative_binomial(2, 2 / 22, 700)].astype(float)
    counts[[0, 1, 400, 401, 402, 1999]] = np.nan
    config = DetectorConfig(likelihood=likelihood, max_run_length=200)
    results = []
    for minimum in (10**9, 0):  # numpy only, then the compiled steps
        monkeypatch.setattr(bocpd, "KERNEL_MIN_STEPS", minimum)
        state = DetectorState.initial(1, config)
        out = update(config, state, counts[None, :], report_above=0.5)
        results.append((state, out))
    (ref_state, ref), (state, out) = results
    np.testing.assert_array_equal(state.probs, ref_state.probs)
    np.testing.assert_array_equal(state.sums, ref_state.sums)
    for name in ("changepoint_prob", "run_length", "rate_after", "rate_before", "n_obs"):
        np.testing.assert_array_equal(getattr(out, name), getattr(ref, name))


def test_unobserved_steps_never_read_uninitialised_memory(monkeypatch):
    """A batch with unobserved steps (NaN) raises no floating-point warning whatever memory holds.

    The predictive weights of unobserved steps were allocated with ``np.empty`` and multiplied
    before being masked: where that memory held NaN, a clean-clone CI run failed on
    ``RuntimeWarning: invalid value encountered in multiply``.  Here every ``np.empty`` of the
    module returns signalling NaNs, as uninitialised memory may hold.
    """
    import warnings

    from forecast.alerts import bocpd

    class NanEmpty:
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def empty(shape, *args, **kwargs):
            # a signalling NaN: arithmetic on it raises "invalid value", as a stray bit pattern did
            return np.full(shape, 0x7FF4000000000000, dtype=np.uint64).view(np.float64)

    config = DetectorConfig(likelihood="negative_binomial", dispersion=2, max_run_length=50)
    counts = np.array([[3.0, np.nan, np.nan, 4.0, 2.0, np.nan, 5.0], [1.0, 2.0, 0.0, 3.0, 1.0, 2.0, 2.0]])
    expected = update(config, DetectorState.initial(2, config), counts).changepoint_prob
    monkeypatch.setattr(bocpd, "np", NanEmpty())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = update(config, DetectorState.initial(2, config), counts).changepoint_prob
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got[~np.isnan(got)], expected[~np.isnan(expected)])

"""Tests of the intervention shapes and of the panel simulator."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast import names as n
from forecast.data.panel import Panel
from forecast.data.shapes import pulse, shape_values, step, window
from forecast.testing.simulate import (
    INTERVENTION_CSV_COLUMNS,
    MIN_ABS_JUMP,
    SelfExcitation,
    SimulatedIntervention,
    SimulationTruth,
    interventions_frame,
    simulate_panel,
)

# --- shapes -------------------------------------------------------------------------------


def test_pulse_is_zero_before_start_and_one_on_the_start_day():
    values = pulse(np.arange(10), start=4, half_life=3.0)
    np.testing.assert_array_equal(values[:4], 0.0)
    assert values[4] == 1.0
    np.testing.assert_allclose(values[4:], 2.0 ** (-np.arange(6) / 3.0))


def test_pulse_halves_every_half_life():
    days = np.array([10.0, 17.5, 25.0, 32.5])
    values = pulse(days, start=10.0, half_life=7.5)
    np.testing.assert_allclose(values, [1.0, 0.5, 0.25, 0.125])


def test_pulse_far_before_start_does_not_overflow():
    assert pulse(-1e6, start=0.0, half_life=0.01) == 0.0


@settings(max_examples=50, deadline=None)
@given(
    start=st.floats(-100, 100),
    half_life=st.floats(0.1, 100),
    days=st.lists(st.floats(-200, 200), min_size=1, max_size=20),
)
def test_pulse_lies_in_unit_interval_and_never_increases_after_start(start, half_life, days):
    ordered = np.sort(np.asarray(days))
    values = pulse(ordered, start, half_life)
    assert np.all((values >= 0) & (values <= 1))
    after = values[ordered >= start]
    assert np.all(np.diff(after) <= 0)


def test_window_includes_both_ends():
    values = window(np.arange(8), start=2, end=5)
    np.testing.assert_array_equal(values, [0, 0, 1, 1, 1, 1, 0, 0])


def test_single_day_window():
    np.testing.assert_array_equal(window(np.arange(4), start=2, end=2), [0, 0, 1, 0])


def test_step_switches_on_at_start():
    np.testing.assert_array_equal(step(np.arange(5), start=3), [0, 0, 0, 1, 1])


def test_shape_values_dispatches_on_shape_names():
    days = np.arange(10)
    np.testing.assert_array_equal(shape_values(n.SHAPE_PULSE, days, 2, half_life=4.0), pulse(days, 2, 4.0))
    np.testing.assert_array_equal(shape_values(n.SHAPE_WINDOW, days, 2, end=6), window(days, 2, 6))
    np.testing.assert_array_equal(shape_values(n.SHAPE_STEP, days, 2), step(days, 2))


@pytest.mark.parametrize(
    ("shape", "kwargs", "message"),
    [
        ("spike", {}, "allowed: \\['pulse', 'window', 'step'\\]"),
        (n.SHAPE_PULSE, {}, "half_life"),
        (n.SHAPE_PULSE, {"half_life": 0.0}, "half_life"),
        (n.SHAPE_PULSE, {"half_life": -2.0}, "half_life"),
        (n.SHAPE_PULSE, {"half_life": float("nan")}, "half_life"),
        (n.SHAPE_WINDOW, {}, "end"),
        (n.SHAPE_WINDOW, {"end": 1}, "end >= start"),
    ],
)
def test_shape_values_rejects_bad_arguments(shape, kwargs, message):
    with pytest.raises(ValueError, match=message):
        shape_values(shape, np.arange(5), 3, **kwargs)


# --- simulator: outputs and determinism ---------------------------------------------------


def test_same_seed_gives_identical_output_and_another_seed_does_not():
    options = dict(
        fronts=3,
        days=60,
        window_fronts=["front_2"],
        interventions=[SimulatedIntervention(start=20, shape=n.SHAPE_PULSE, effect=-1.0, half_life=5.0)],
        self_excitation=(0.1, 2.0),
    )
    panel_a, truth_a, events_a = simulate_panel(random_seed=11, **options)
    panel_b, truth_b, events_b = simulate_panel(random_seed=11, **options)
    _, truth_c, _ = simulate_panel(random_seed=12, **options)
    pd.testing.assert_frame_equal(events_a.frame, events_b.frame)
    pd.testing.assert_frame_equal(panel_a.observations, panel_b.observations)
    for name in ("baseline", "changepoint_days", "changepoint_jumps", "log_rate", "daily_counts"):
        np.testing.assert_array_equal(getattr(truth_a, name), getattr(truth_b, name))
    assert not np.array_equal(truth_a.daily_counts, truth_c.daily_counts)


def test_truth_arrays_have_documented_shapes():
    interventions = [
        SimulatedIntervention(start=10, shape=n.SHAPE_STEP, effect=0.4),
        SimulatedIntervention(start=5, end=9, shape=n.SHAPE_WINDOW, effect=[0.2, -0.2], fronts=["b", "a"]),
    ]
    panel, truth, _ = simulate_panel(
        fronts=["c", "a", "b"], days=50, n_changepoints=2, interventions=interventions, random_seed=3
    )
    assert isinstance(panel, Panel) and isinstance(truth, SimulationTruth)
    assert truth.fronts == panel.fronts == ("a", "b", "c")
    assert truth.n_fronts == 3 and truth.n_days == 50 and truth.n_changepoints == 2
    assert truth.baseline.shape == (3,)
    assert truth.changepoint_days.shape == truth.changepoint_jumps.shape == (3, 2)
    assert truth.intervention_start_days.shape == truth.intervention_end_days.shape == (2,)
    assert truth.intervention_shapes.shape == (2, 50)
    assert truth.intervention_effects.shape == (3, 2)
    assert truth.dispersion is not None and truth.dispersion.shape == (3,)
    assert truth.background_log_rate.shape == truth.log_rate.shape == truth.daily_counts.shape == (3, 50)
    assert truth.changepoint_dates.shape == (3, 2)
    np.testing.assert_array_equal(truth.log_rate, truth.background_log_rate)  # no self-excitation
    # per-front effects follow the names, whatever order they were given in
    np.testing.assert_array_equal(truth.intervention_effects, [[0.4, -0.2], [0.4, 0.2], [0.4, 0.0]])
    np.testing.assert_array_equal(truth.intervention_end_days, [np.nan, 9.0])


def test_truth_log_rate_is_the_sum_of_its_parts():
    intervention = SimulatedIntervention(start="2024-01-21", shape=n.SHAPE_PULSE, effect=-0.8, half_life=4.0)
    _, truth, _ = simulate_panel(fronts=2, days=80, n_changepoints=3, interventions=[intervention], random_seed=5)
    days = np.arange(80)
    expected = truth.baseline[:, None] + truth.intervention_effects @ truth.intervention_shapes
    for k in range(3):
        expected += truth.changepoint_jumps[:, [k]] * (days >= truth.changepoint_days[:, [k]])
    np.testing.assert_allclose(truth.log_rate, expected)
    assert truth.intervention_start_days.tolist() == [20]
    np.testing.assert_allclose(truth.intervention_shapes[0], pulse(days, 20, 4.0))


def test_fronts_given_as_a_number_sort_in_numeric_order():
    panel, truth, _ = simulate_panel(fronts=11, days=15, n_changepoints=0, random_seed=0)
    assert truth.fronts[:2] == ("front_00", "front_01") and truth.fronts[-1] == "front_10"
    assert panel.fronts == truth.fronts
    _, small, _ = simulate_panel(fronts=2, days=15, n_changepoints=0, random_seed=0)
    assert small.fronts == ("front_0", "front_1")


def test_events_table_has_one_row_per_front_per_day_including_zeros():
    panel, truth, events = simulate_panel(fronts=3, days=40, baseline=np.log(0.5), random_seed=8)
    frame = events.frame
    assert len(frame) == 3 * 40
    assert (frame[n.COUNT] == 0).any()
    assert frame[n.ORIGIN_FILE].unique().tolist() == ["<simulated>"]
    assert frame[n.ORIGIN_LINE].tolist() == list(range(1, 121))
    assert frame[n.END_DATE].isna().all()
    counts, exposure = panel.counts_matrix()
    np.testing.assert_array_equal(counts, truth.daily_counts)
    np.testing.assert_array_equal(exposure, 1)
    assert panel.start == pd.Timestamp("2024-01-01") and panel.end == pd.Timestamp("2024-02-09")


def test_weekly_panel_sums_the_daily_counts():
    panel, truth, _ = simulate_panel(fronts=2, days=30, freq=n.FREQ_WEEK, random_seed=2)
    counts, _ = panel.counts_matrix()
    np.testing.assert_array_equal(counts.sum(axis=1), truth.daily_counts.sum(axis=1))


def test_changepoints_are_sorted_distinct_and_away_from_the_edges():
    _, truth, _ = simulate_panel(fronts=30, days=50, n_changepoints=4, jump_sd=0.05, random_seed=4)
    tau = truth.changepoint_days
    assert np.all(np.diff(tau, axis=1) > 0)
    assert tau.min() >= 5 and tau.max() <= 45
    assert np.all(np.abs(truth.changepoint_jumps) >= MIN_ABS_JUMP)
    assert (truth.changepoint_jumps > 0).any() and (truth.changepoint_jumps < 0).any()


# --- simulator: the counts follow the truth -----------------------------------------------


def test_poisson_mean_matches_the_baseline_rate():
    _, truth, _ = simulate_panel(fronts=3, days=3000, n_changepoints=0, dispersion=None, random_seed=21)
    rate = np.exp(truth.baseline)
    standard_error = np.sqrt(rate / truth.n_days)
    mean = truth.daily_counts.mean(axis=1)
    assert np.all(np.abs(mean - rate) < 4 * standard_error)
    np.testing.assert_allclose(truth.daily_counts.var(axis=1) / mean, 1.0, atol=0.15)  # Poisson: variance = mean


def test_negative_binomial_variance_matches_the_dispersion():
    _, truth, _ = simulate_panel(
        fronts=2, days=4000, baseline=np.log(5.0), n_changepoints=0, dispersion=[2.0, 20.0], random_seed=22
    )
    variance = truth.daily_counts.var(axis=1)
    np.testing.assert_allclose(truth.daily_counts.mean(axis=1), 5.0, rtol=0.06)
    np.testing.assert_allclose(variance, 5.0 + 25.0 / np.array([2.0, 20.0]), rtol=0.12)


def test_a_changepoint_shifts_the_mean_on_its_right_side():
    _, truth, _ = simulate_panel(
        fronts=6, days=400, baseline=np.log(4.0), n_changepoints=1, dispersion=None, random_seed=31
    )
    for front in range(truth.n_fronts):
        tau = truth.changepoint_days[front, 0]
        before = truth.daily_counts[front, :tau]
        after = truth.daily_counts[front, tau:]
        log_ratio = np.log(after.mean() / before.mean())
        standard_error = np.sqrt(1 / before.sum() + 1 / after.sum())
        jump = truth.changepoint_jumps[front, 0]
        assert np.sign(log_ratio) == np.sign(jump)
        assert abs(log_ratio - jump) < 4 * standard_error


def test_a_negative_pulse_makes_a_lull_that_decays_with_the_half_life():
    start, half_life, effect = 40, 10.0, -1.5
    intervention = SimulatedIntervention(start=start, shape=n.SHAPE_PULSE, effect=effect, half_life=half_life)
    panel, truth, _ = simulate_panel(
        fronts=60,
        days=100,
        baseline=np.log(30.0),
        n_changepoints=0,
        dispersion=None,
        interventions=[intervention],
        random_seed=41,
    )
    counts, _ = panel.counts_matrix()
    total_per_day = counts.sum(axis=0)
    expected_without = 60 * 30.0
    before = np.log(total_per_day[:start].mean() / expected_without)
    assert abs(before) < 0.02
    for halvings in range(4):
        day = start + int(halvings * half_life)
        observed = np.log(total_per_day[day] / expected_without)
        expected = effect * 2.0**-halvings
        assert abs(observed - expected) < 4 / np.sqrt(total_per_day[day])
    assert np.all(np.diff(total_per_day[start : start + 40 : 10]) > 0)  # the lull fills in


def test_a_window_intervention_applies_only_on_its_fronts_and_days():
    intervention = SimulatedIntervention(
        start="2024-01-11", end="2024-01-20", shape=n.SHAPE_WINDOW, effect=1.0, fronts=["front_1"]
    )
    _, truth, _ = simulate_panel(fronts=2, days=30, n_changepoints=0, interventions=[intervention], random_seed=6)
    lift = truth.log_rate - truth.baseline[:, None]
    np.testing.assert_array_equal(lift[0], 0.0)
    np.testing.assert_array_equal(lift[1], np.where((np.arange(30) >= 10) & (np.arange(30) <= 19), 1.0, 0.0))


def test_self_excitation_raises_mean_and_variance():
    options = dict(fronts=4, days=1500, baseline=np.log(3.0), n_changepoints=0, dispersion=None)
    _, plain, _ = simulate_panel(random_seed=51, **options)
    excitation = SelfExcitation(strength=0.25, decay=3.0)
    _, excited, _ = simulate_panel(random_seed=51, self_excitation=excitation, **options)
    settled = excited.daily_counts[:, 100:]  # after the burn-in of the excitation
    stationary_mean = 3.0 / (1.0 - excitation.branching_ratio)
    np.testing.assert_allclose(settled.mean(), stationary_mean, rtol=0.05)
    assert settled.var() > 2 * plain.daily_counts.var()
    assert settled.var() / settled.mean() > plain.daily_counts.var() / plain.daily_counts.mean()
    assert np.all(excited.log_rate >= excited.background_log_rate)
    assert excited.self_excitation == excitation


def test_self_excitation_that_would_explode_is_refused():
    with pytest.raises(ValueError, match="branching ratio"):
        SelfExcitation(strength=1.0, decay=5.0)


# --- window fronts ------------------------------------------------------------------------


def test_window_fronts_report_totals_of_the_daily_counts():
    panel, truth, events = simulate_panel(fronts=3, days=31, window_fronts=["front_1"], window_every=7, random_seed=61)
    frame = events.frame
    windows = frame[frame[n.FRONT] == "front_1"]
    assert windows[n.END_DATE].notna().all()
    assert len(windows) == 5  # 4 full weeks and 3 days
    daily = truth.daily_counts[truth.fronts.index("front_1")]
    expected_totals = [daily[i : i + 7].sum() for i in range(0, 31, 7)]
    assert windows[n.COUNT].tolist() == expected_totals
    assert frame[n.ORIGIN_LINE].tolist() == list(range(1, len(frame) + 1))

    window_obs = panel.window_obs
    assert set(window_obs[n.FRONT]) == {"front_1"}
    assert window_obs[n.EXPOSURE_DAYS].tolist() == [7, 7, 7, 7, 3]
    spans = (window_obs[n.END_DATE] - window_obs[n.DATE]).dt.days + 1
    assert spans.tolist() == [7, 7, 7, 7, 3]
    assert window_obs[n.DATE].iloc[0] == panel.start and window_obs[n.END_DATE].iloc[-1] == panel.end
    assert window_obs[n.COUNT].tolist() == expected_totals

    counts, _ = panel.counts_matrix()
    assert np.isnan(counts[1]).all()  # observed only through its windows
    np.testing.assert_array_equal(counts[[0, 2]], truth.daily_counts[[0, 2]])
    np.testing.assert_array_equal(panel.window_weights().sum(axis=1), [7, 7, 7, 7, 3])


# --- interventions_frame ------------------------------------------------------------------


def test_interventions_frame_layout_and_round_trip_through_csv():
    interventions = [
        SimulatedIntervention(start=10, shape=n.SHAPE_PULSE, effect=-1.0, half_life=5.0, label="strike wave"),
        SimulatedIntervention(
            start="2024-02-01",
            end="2024-02-10",
            shape=n.SHAPE_WINDOW,
            effect=[0.5, 0.3],
            fronts=["front_2", "front_0"],
            kind="ceasefire",
        ),
        SimulatedIntervention(start=50, shape=n.SHAPE_STEP, effect=0.2, fronts="front_1"),
    ]
    _, truth, _ = simulate_panel(fronts=3, days=70, interventions=interventions, random_seed=71)
    frame = interventions_frame(truth)
    assert list(frame.columns) == INTERVENTION_CSV_COLUMNS
    assert frame[n.DATE].tolist() == ["2024-01-11", "2024-02-01", "2024-02-20"]
    assert frame[n.END_DATE].tolist() == ["", "2024-02-10", ""]
    assert frame[n.KIND].tolist() == ["strike", "ceasefire", "strike"]
    assert frame[n.SHAPE].tolist() == ["pulse", "window", "step"]
    assert frame[n.FRONT].tolist() == ["", "front_2;front_0", "front_1"]
    assert frame[n.LABEL].tolist() == ["strike wave", "ceasefire window from 2024-02-01", "strike step from day 50"]
    assert (frame[n.SOURCE] == "simulated").all()

    text = frame.to_csv(index=False)
    back = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(back, frame.astype(str))

    from_list = interventions_frame(interventions, start="2024-01-01")
    pd.testing.assert_frame_equal(from_list, frame)
    with pytest.raises(ValueError, match="start="):
        interventions_frame(interventions)


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shape": "spike", "effect": 1.0}, "allowed"),
        ({"shape": n.SHAPE_PULSE, "effect": 1.0}, "half_life"),
        ({"shape": n.SHAPE_PULSE, "effect": 1.0, "half_life": 0.0}, "half_life"),
        ({"shape": n.SHAPE_WINDOW, "effect": 1.0}, "end"),
        ({"shape": n.SHAPE_STEP, "effect": 1.0, "end": 5}, "only used by window"),
        ({"shape": n.SHAPE_STEP, "effect": 1.0, "half_life": 2.0}, "only used by pulse"),
        ({"shape": n.SHAPE_STEP, "effect": float("inf")}, "finite"),
        ({"shape": n.SHAPE_STEP, "effect": [1.0, 2.0], "fronts": ["a"]}, "2 values for 1 fronts"),
        ({"shape": n.SHAPE_STEP, "effect": 1.0, "fronts": []}, "at least one front"),
        ({"shape": n.SHAPE_STEP, "effect": 1.0, "fronts": ["a;b"]}, "front names"),
    ],
)
def test_simulated_intervention_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SimulatedIntervention(start=3, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_changepoints": 60, "days": 50}, "do not fit"),
        ({"window_fronts": ["nowhere"]}, "not simulated fronts"),
        ({"window_fronts": ["front_0"], "window_every": 1}, "window_every"),
        ({"baseline": [0.0, 1.0]}, "one per front"),
        ({"dispersion": 0.0}, "dispersion"),
        ({"fronts": ["a", "a"]}, "named twice"),
        ({"fronts": 0}, "at least 1"),
        ({"days": 0}, "days"),
        ({"interventions": [SimulatedIntervention(start=1, shape=n.SHAPE_STEP, effect=1.0, fronts=["x"])]}, "unknown"),
        ({"interventions": [SimulatedIntervention(start=1, shape=n.SHAPE_STEP, effect=[1.0, 2.0])]}, "2 effects"),
        ({"interventions": [SimulatedIntervention(start=9, end=3, shape=n.SHAPE_WINDOW, effect=1.0)]}, "end >= start"),
    ],
)
def test_simulate_panel_rejects_bad_arguments(kwargs, message):
    options = {"fronts": 3, "days": 40, "random_seed": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        simulate_panel(**options)


def test_random_seed_is_required():
    with pytest.raises(TypeError):
        simulate_panel(fronts=2, days=10)  # type: ignore[call-arg]

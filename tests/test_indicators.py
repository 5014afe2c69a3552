"""Escalation indicators on fake posteriors whose answers are known exactly (no MCMC)."""

from __future__ import annotations

import json

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from forecast import names as n
from forecast.data.events import read_events_csv
from forecast.data.interventions import read_interventions_csv
from forecast.data.panel import build_panel
from forecast.errors import ForecastError
from forecast.indicators import (
    SCHEMA_PATH,
    SCHEMA_VERSION,
    IndicatorSettings,
    compute_indicators,
    default_thresholds,
    exceedance_probabilities,
    forecast_steps,
    front_level,
    validate_indicators,
    weekly_totals,
)
from forecast.indicators.steps import step_ends, whole_steps
from forecast.models.design import ModelOptions
from forecast.models.model import EscalationModel
from tests.fakes import two_chain_posterior

START = pd.Timestamp("2024-01-01")
DAYS = 60
AS_OF = START + pd.Timedelta(days=DAYS - 1)  # 2024-02-29
DRAWS = 50  # per chain; 2 chains
PASSED = {"ok": True, "rhat_max": 1.001, "ess_bulk_min": 800.0, "divergences": 0}


def daily_panel(write_csv, fronts=("a", "b"), days=DAYS, counts=None):
    rows = ["date,front,count"]
    for front in fronts:
        for i in range(days):
            value = 1 if counts is None else counts[front][i]
            rows.append(f"{(START + pd.Timedelta(days=i)).date()},{front},{value}")
    return build_panel(read_events_csv(write_csv("\n".join(rows) + "\n", name="events.csv")))


def posterior(values: dict[str, tuple[tuple[str, ...], np.ndarray]], coords: dict) -> xr.Dataset:
    """Per-draw values ``(2 * DRAWS, ...)`` (or one value for every draw) as a 2-chain posterior."""
    return two_chain_posterior(values, coords, draws=DRAWS)


def forecast_of(fronts, counts_per_day, days=28, as_of=AS_OF) -> xr.Dataset:
    """Daily predictive counts: every draw has ``counts_per_day[front]`` each day (or an array per draw)."""
    dates = pd.date_range(as_of + pd.Timedelta(days=1), periods=days, freq="D")
    values = np.zeros((2, DRAWS, len(fronts), days), dtype=np.int64)
    for f, front in enumerate(fronts):
        per = np.broadcast_to(np.asarray(counts_per_day[front]), (2 * DRAWS,)).reshape(2, DRAWS)
        values[:, :, f, :] = per[..., None]
    dims = ("chain", "draw", n.FRONT, "date")
    coords = {"chain": [0, 1], "draw": range(DRAWS), n.FRONT: list(fronts), "date": dates}
    return xr.Dataset({"counts": (dims, values)}, coords=coords)


def jump_model(write_csv, k=1, fronts=("a", "b")):
    return EscalationModel(daily_panel(write_csv, fronts), options=ModelOptions(changepoints=k))


def jump_posterior(fronts, jumps):
    """baseline log 2 everywhere; ``jumps`` ``(sample, front)`` log jumps of a single changepoint."""
    return posterior(
        {
            "baseline": ((n.FRONT,), np.log(np.full(len(fronts), 2.0))),
            "jump": ((n.FRONT, n.CHANGEPOINT), np.asarray(jumps)[..., None]),
            "dispersion": ((n.FRONT,), np.full(len(fronts), 10.0)),
        },
        {n.FRONT: list(fronts), n.CHANGEPOINT: [0]},
    )


def no_changepoint_yet(model):
    """Position probabilities with all mass on the first valid position (long ago)."""
    design = model.design
    out = np.zeros((design.options.changepoints, len(design.fronts), design.position.shape[1]))
    for f in range(len(design.fronts)):
        valid = np.flatnonzero(design.changepoint_valid[f])
        for k in range(design.options.changepoints):
            out[k, f, valid[k]] = 1.0
    return out


# --------------------------------------------------------------------------- p_exceed and thresholds


def test_weekly_totals_and_exceedance_probabilities_are_exact():
    daily = np.ones((100, 28), dtype=np.int64)
    weekly = weekly_totals(daily)
    assert weekly.shape == (100,) and (weekly == 7).all()
    assert exceedance_probabilities(weekly, [6, 7, 8]).tolist() == [1.0, 1.0, 0.0]
    half = np.array([3] * 50 + [10] * 50)
    assert exceedance_probabilities(half, [4, 10, 11]).tolist() == [0.5, 0.5, 0.0]
    assert weekly_totals(daily, days=3)[0] == 3
    with pytest.raises(ValueError, match="at least 7"):
        weekly_totals(np.ones((5, 6)))


def test_default_thresholds_count_7_day_blocks_backward_from_as_of(write_csv):
    # 30 days: counts 0..29; blocks backward from day 29: [23..29], [16..22], [9..15], [2..8]; days 0-1 incomplete.
    counts = {"a": list(range(30)), "b": [1] * 30}
    panel = daily_panel(write_csv, counts=counts, days=30)
    weekly = [sum(range(2, 9)), sum(range(9, 16)), sum(range(16, 23)), sum(range(23, 30))]  # 35, 84, 133, 182
    q90 = np.quantile(weekly, 0.9)  # 133 + 0.7 * 49 = 167.3 -> 168
    recent = 2 * np.mean(weekly)  # the last 4 weeks = these 4 blocks
    assert default_thresholds(panel) == {"a": [float(np.ceil(q90)), float(np.ceil(recent))], "b": [7.0, 14.0]}
    assert default_thresholds(panel)["a"] == [168.0, 217.0]
    # Configurable: the median (108.5 -> 109) and 3x the mean of the last 2 weeks ((133 + 182) / 2 * 3 = 472.5 -> 473).
    assert default_thresholds(panel, quantile=0.5, recent_weeks=2, multiplier=3.0)["a"] == [109.0, 473.0]


def test_window_only_fronts_use_window_totals_scaled_to_7_days(write_csv):
    events = write_csv(
        "date,end_date,front,count\n"
        "2024-01-01,,a,1\n2024-01-28,,a,1\n"
        "2024-01-01,2024-01-07,w,7\n2024-01-08,2024-01-14,w,14\n"
        "2024-01-15,2024-01-21,w,21\n2024-01-22,2024-01-28,w,28\n"
        "2024-01-01,2024-01-14,v,28\n2024-01-15,2024-01-28,v,14\n"
        "2023-12-01,2023-12-07,old,70\n2023-12-08,2023-12-28,old,0\n",
        name="windows.csv",
    )
    panel = build_panel(read_events_csv(events), start="2023-12-01")
    thresholds = default_thresholds(panel)
    # w: weekly 7, 14, 21, 28 -> q90 25.9 -> 26; recent mean 17.5 -> 35.
    assert thresholds["w"] == [26.0, 35.0]
    # v: only two windows (no quantile); recent (42 events / 28 days) * 7 * 2 = 21.
    assert thresholds["v"] == [21.0]
    # old: no window ends in the last 4 weeks and two windows only: no usable history, nothing invented.
    assert thresholds["old"] == []


def test_weekly_panels_scale_periods_to_7_days_and_forecast_in_weeks(write_csv):
    # 2024-01-01 is a Monday: 8 full weeks at 1 a day, then Mon-Wed of a 9th week (a partial period).
    rows = "".join(f"{(START + pd.Timedelta(days=i)).date()},a,{1 + (i >= 56)}\n" for i in range(59))
    panel = build_panel(read_events_csv(write_csv("date,front,count\n" + rows)), freq="week")
    assert panel.freq == "week" and panel.end == pd.Timestamp("2024-02-28")
    # Quantile of the 8 full weeks (7 each); recent: the periods ending on or after 2024-02-01 (4 full weeks and
    # the partial one), 7 * (4 * 7 + 6) / 31 days = 7.68 -> x2 = 15.35 -> 16.
    assert default_thresholds(panel) == {"a": [7.0, 16.0]}
    model = EscalationModel(panel, options=ModelOptions(changepoints=0))
    post = posterior(
        {"baseline": ((n.FRONT,), np.log([1.0])), "dispersion": ((n.FRONT,), np.array([10.0]))}, {n.FRONT: ["a"]}
    )
    doc = compute_indicators(
        model, post, forecast_of(("a",), {"a": 1}, as_of=panel.end), diagnostics=PASSED, settings=IndicatorSettings()
    )
    assert doc["horizon"] == {"steps": 4, "freq": "week", "days": 28, "step_days": 7}
    assert [step["date"] for step in doc["fronts"][0]["forecast"]] == [
        "2024-03-06",
        "2024-03-13",
        "2024-03-20",
        "2024-03-27",
    ]
    assert doc["p_two_or_more_rising"] is None, "one front cannot have two rising"


def test_thresholds_round_up_deduplicate_and_never_drop_below_one(write_csv):
    panel = daily_panel(write_csv, counts={"a": [0] * 60, "b": [1] * 60})
    thresholds = default_thresholds(panel)
    assert thresholds["a"] == [1.0], "all-zero history: both thresholds are 0, raised to 1 and merged"
    assert thresholds["b"] == [7.0, 14.0]


# --------------------------------------------------------------------------- rate ratio and p_rate_increase


def test_rate_ratio_is_exactly_the_jump(write_csv):
    model = jump_model(write_csv)
    post = jump_posterior(("a", "b"), np.tile(np.log([3.0, 1.0]), (2 * DRAWS, 1)))
    doc = compute_indicators(
        model,
        post,
        forecast_of(("a", "b"), {"a": 1, "b": 0}),  # b: no events forecast, below its thresholds [7, 14]
        diagnostics=PASSED,
        changepoint_probabilities=no_changepoint_yet(model),
    )
    a, b = doc["fronts"]
    assert a["rate_ratio"] == pytest.approx({"mean": 3.0, "low": 3.0, "high": 3.0})
    assert a["p_rate_increase"] == 1.0 and b["p_rate_increase"] == 0.0
    assert a["baseline_daily_rate"]["mean"] == pytest.approx(2.0)
    assert a["current_daily_rate"]["mean"] == pytest.approx(6.0)
    assert a["level"] == "red" and b["level"] == "green" and doc["level"] == "red"
    assert doc["p_two_or_more_rising"] == 0.0
    assert a["p_changepoint_recent"] == 0.0
    assert doc["as_of"] == "2024-02-29" and doc["schema_version"] == SCHEMA_VERSION
    assert doc["horizon"] == {"steps": 28, "freq": "day", "days": 28, "step_days": 1}
    assert doc["unreliable"] is False and doc["headline_warning"] is None
    json.dumps(doc, allow_nan=False)


def test_half_the_draws_rising_gives_p_rate_increase_one_half(write_csv):
    model = jump_model(write_csv)
    jumps = np.zeros((2 * DRAWS, 2))
    jumps[::2, 0] = np.log(3.0)  # every other draw
    doc = compute_indicators(
        model,
        jump_posterior(("a", "b"), jumps),
        forecast_of(("a", "b"), {"a": 1, "b": 1}),
        diagnostics=PASSED,
        changepoint_probabilities=no_changepoint_yet(model),
        settings=IndicatorSettings(thresholds=(100.0,)),
    )
    assert doc["fronts"][0]["p_rate_increase"] == 0.5
    assert doc["fronts"][0]["rate_ratio"]["mean"] == pytest.approx(2.0)
    assert doc["fronts"][0]["level"] == "amber"
    # The threshold is configurable: with a ratio of 3 the draws rise, with 3.5 none does.
    doc = compute_indicators(
        model,
        jump_posterior(("a", "b"), jumps),
        forecast_of(("a", "b"), {"a": 1, "b": 1}),
        diagnostics=PASSED,
        changepoint_probabilities=no_changepoint_yet(model),
        settings=IndicatorSettings(rate_increase_ratio=3.5),
    )
    assert doc["fronts"][0]["p_rate_increase"] == 0.0


def test_two_or_more_rising_is_computed_per_draw_not_from_marginals(write_csv):
    model = jump_model(write_csv)
    rising = np.zeros(2 * DRAWS, dtype=bool)
    rising[:DRAWS] = True
    together = np.log(np.where(np.stack([rising, rising], axis=1), 3.0, 1.0))
    apart = np.log(np.where(np.stack([rising, ~rising], axis=1), 3.0, 1.0))
    answers = []
    for jumps in (together, apart):
        doc = compute_indicators(
            model,
            jump_posterior(("a", "b"), jumps),
            forecast_of(("a", "b"), {"a": 1, "b": 1}),
            diagnostics=PASSED,
            changepoint_probabilities=no_changepoint_yet(model),
        )
        assert [f["p_rate_increase"] for f in doc["fronts"]] == [0.5, 0.5], "the same marginals"
        answers.append(doc["p_two_or_more_rising"])
    assert answers == [0.5, 0.0]


def test_p_exceed_from_known_forecast_counts(write_csv):
    model = jump_model(write_csv)
    per_draw = np.array([1] * DRAWS + [2] * DRAWS)  # weekly 7 or 14, half each
    doc = compute_indicators(
        model,
        jump_posterior(("a", "b"), np.zeros((2 * DRAWS, 2))),
        forecast_of(("a", "b"), {"a": 1, "b": per_draw}),
        diagnostics=PASSED,
        changepoint_probabilities=no_changepoint_yet(model),
        settings=IndicatorSettings(thresholds=(8.0, 7.0, 14.0, 15.0)),
    )
    a, b = doc["fronts"]
    assert a["thresholds_source"] == "configured"
    assert [(e["threshold"], e["probability"]) for e in a["p_exceed"]] == [
        (7.0, 1.0),
        (8.0, 0.0),
        (14.0, 0.0),
        (15.0, 0.0),
    ]
    assert [e["probability"] for e in b["p_exceed"]] == [1.0, 0.5, 0.5, 0.0]
    assert all(e["horizon_days"] == 7 for e in a["p_exceed"])
    assert doc["exceedance_window"] == {"start": "2024-03-01", "end": "2024-03-07", "days": 7}
    # Lowest threshold reached surely (amber), highest not: p_exceed[-1] = 0 < 0.5.
    assert a["level"] == "amber"
    # Default thresholds from a 1/day history are [7, 14].
    doc = compute_indicators(
        model,
        jump_posterior(("a", "b"), np.zeros((2 * DRAWS, 2))),
        forecast_of(("a", "b"), {"a": 1, "b": per_draw}),
        diagnostics=PASSED,
        changepoint_probabilities=no_changepoint_yet(model),
    )
    b = doc["fronts"][1]
    assert b["thresholds_source"] == "default"
    assert [(e["threshold"], e["probability"]) for e in b["p_exceed"]] == [(7.0, 1.0), (14.0, 0.5)]
    assert b["level"] == "red"


# --------------------------------------------------------------------------- changepoints and lulls


@pytest.mark.parametrize("k", [1, 2])
def test_recent_changepoint_probability_is_the_mass_of_the_last_changepoint_in_the_window(write_csv, k):
    model = jump_model(write_csv, k=k)
    design = model.design
    probabilities = no_changepoint_yet(model)
    # Front a: the last changepoint 13 days before as_of (inside) with 0.3, 14 days before (outside) with 0.7.
    dates = design.obs_date[design.position[0]]
    inside = int(np.flatnonzero(dates == AS_OF - pd.Timedelta(days=13))[0])
    outside = int(np.flatnonzero(dates == AS_OF - pd.Timedelta(days=14))[0])
    probabilities[k - 1, 0] = 0.0
    probabilities[k - 1, 0, inside] = 0.3
    probabilities[k - 1, 0, outside] = 0.7
    post = posterior(
        {
            "baseline": ((n.FRONT,), np.log([2.0, 2.0])),
            "jump": ((n.FRONT, n.CHANGEPOINT), np.zeros((2, k))),
            "dispersion": ((n.FRONT,), np.full(2, 10.0)),
        },
        {n.FRONT: ["a", "b"], n.CHANGEPOINT: list(range(k))},
    )
    doc = compute_indicators(
        model,
        post,
        forecast_of(("a", "b"), {"a": 1, "b": 1}),
        diagnostics=PASSED,
        changepoint_probabilities=probabilities,
    )
    assert doc["fronts"][0]["p_changepoint_recent"] == pytest.approx(0.3)
    assert doc["fronts"][1]["p_changepoint_recent"] == 0.0
    wider = compute_indicators(
        model,
        post,
        forecast_of(("a", "b"), {"a": 1, "b": 1}),
        diagnostics=PASSED,
        changepoint_probabilities=probabilities,
        settings=IndicatorSettings(recent_changepoint_days=15),
    )
    assert wider["fronts"][0]["p_changepoint_recent"] == pytest.approx(1.0)


def test_pulse_lull_ratio_after_one_half_life_is_exactly_one_half(write_csv):
    strike = (AS_OF - pd.Timedelta(days=7)).date()
    table = read_interventions_csv(
        write_csv(
            f"date,end_date,kind,shape,front,label\n{strike},,strike,pulse,a,strike\n"
            "2024-02-20,2024-03-10,truce,window,b,truce\n2023-12-01,,law,step,,old law\n",
            name="interventions.csv",
        )
    )
    panel = daily_panel(write_csv)
    model = EscalationModel(panel, table, options=ModelOptions(changepoints=0))
    labels = model.design.labels
    assert labels == ["strike", "truce", "old law"]
    effect = np.array([[np.log(0.25), 0.0, 0.0], [0.0, np.log(0.5), np.log(2.0)]])
    post = posterior(
        {
            "baseline": ((n.FRONT,), np.log([2.0, 2.0])),
            "effect": ((n.FRONT, n.INTERVENTION), effect),
            "half_life": (("pulse",), np.array([7.0])),
            "dispersion": ((n.FRONT,), np.full(2, 10.0)),
        },
        {n.FRONT: ["a", "b"], n.INTERVENTION: labels, "pulse": ["strike"]},
    )
    doc = compute_indicators(model, post, forecast_of(("a", "b"), {"a": 1, "b": 1}), diagnostics=PASSED)
    a, b = doc["fronts"]
    (lull,) = a["lulls"]
    assert lull["label"] == "strike" and lull["days_since"] == 7
    assert lull["rate_ratio_now"] == pytest.approx({"mean": 0.5, "low": 0.5, "high": 0.5})
    assert lull["peak_rate_ratio"]["mean"] == pytest.approx(0.25)
    assert lull["half_life_days"] == pytest.approx({"mean": 7.0, "low": 7.0, "high": 7.0})
    assert lull["p_lull_holding"] == 1.0
    assert a["rate_ratio"]["mean"] == pytest.approx(0.5), "the current rate carries the decayed pulse"
    assert a["p_changepoint_recent"] is None and any("no changepoints" in note for note in a["notes"])
    (truce,) = b["lulls"]
    assert truce["rate_ratio_now"]["mean"] == pytest.approx(0.5) and truce["half_life_days"] is None
    assert truce["end_date"] == "2024-03-10"
    assert b["rate_ratio"]["mean"] == pytest.approx(1.0), "the old step (x2) holds, the truce halves it"
    assert all(item["label"] != "old law" for front in doc["fronts"] for item in front["lulls"]), "over 60 days old"
    # A lull "holds" below lull_ratio: 0.5 is not below 0.4.
    doc = compute_indicators(
        model,
        post,
        forecast_of(("a", "b"), {"a": 1, "b": 1}),
        diagnostics=PASSED,
        settings=IndicatorSettings(lull_ratio=0.4),
    )
    assert doc["fronts"][0]["lulls"][0]["p_lull_holding"] == 0.0


def test_seasonality_is_averaged_out_of_the_rate_ratio(write_csv):
    model = EscalationModel(daily_panel(write_csv), options=ModelOptions(changepoints=0, seasonality=True))
    post = posterior(
        {
            "baseline": ((n.FRONT,), np.log([2.0, 2.0])),
            "seasonality": (("season",), np.array([0.7, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])),
            "dispersion": ((n.FRONT,), np.full(2, 10.0)),
        },
        {n.FRONT: ["a", "b"], "season": list(model.design.season_labels)},
    )
    doc = compute_indicators(model, post, forecast_of(("a", "b"), {"a": 1, "b": 1}), diagnostics=PASSED)
    assert doc["fronts"][0]["rate_ratio"]["mean"] == pytest.approx(1.0)
    assert doc["fronts"][0]["baseline_daily_rate"]["mean"] == pytest.approx(2.0 * np.exp(0.1))


# --------------------------------------------------------------------------- levels, diagnostics, forecast table


@pytest.mark.parametrize(
    ("p_exceed", "p_increase", "level"),
    [
        ([0.0, 0.0], 0.0, "green"),
        ([0.2499, 0.0], 0.4999, "green"),
        ([0.25, 0.0], 0.0, "amber"),
        ([0.0, 0.0], 0.5, "amber"),
        ([0.9, 0.4999], 0.0, "amber"),
        ([0.9, 0.5], 0.0, "red"),
        ([0.0, 0.0], 0.8, "red"),
        ([], 0.7999, "amber"),
        ([], 0.0, "green"),
    ],
)
def test_level_rules_at_their_boundaries(p_exceed, p_increase, level):
    assert front_level(p_exceed, p_increase, IndicatorSettings())[0] == level


def test_failed_diagnostics_keep_levels_but_mark_everything_unreliable(write_csv):
    model = jump_model(write_csv)
    failed = {
        "ok": False,
        "rhat_max": 1.2,
        "ess_bulk_min": 12.0,
        "divergences": 3,
        "failures": ["R-hat 1.20 > 1.01 (worst: jump[a, 0])"],
        "headline": "FIT FAILED ITS CHECKS: R-hat 1.20 > 1.01 (worst: jump[a, 0])",
    }
    args = (model, jump_posterior(("a", "b"), np.tile(np.log([3.0, 1.0]), (2 * DRAWS, 1))))
    forecast = forecast_of(("a", "b"), {"a": 1, "b": 0})
    doc = compute_indicators(*args, forecast, diagnostics=failed, changepoint_probabilities=no_changepoint_yet(model))
    assert doc["diagnostics"]["ok"] is False and doc["unreliable"] is True
    assert doc["headline_warning"] == failed["headline"]
    assert all(front["unreliable"] for front in doc["fronts"])
    assert [front["level"] for front in doc["fronts"]] == ["red", "green"], "levels are kept"
    missing = compute_indicators(*args, forecast, changepoint_probabilities=no_changepoint_yet(model))
    assert missing["unreliable"] is True and missing["headline_warning"].startswith("FIT NOT CHECKED")


def test_forecast_steps_by_frequency():
    forecast = forecast_of(("a",), {"a": np.array([1] * DRAWS + [3] * DRAWS)}, days=30)
    daily = forecast_steps(forecast, freq="day")["a"]
    assert len(daily) == 30 and daily[0]["date"] == "2024-03-01"
    assert daily[0]["mean"] == pytest.approx(2.0) and daily[0]["q05"] == 1.0 and daily[0]["q95"] == 3.0
    weekly = forecast_steps(forecast, freq="week")["a"]
    assert [s["date"] for s in weekly] == ["2024-03-07", "2024-03-14", "2024-03-21", "2024-03-28"]
    assert weekly[0]["mean"] == pytest.approx(14.0)
    assert [s["days"] for s in weekly] == [7, 7, 7, 7] and daily[0]["days"] == 1
    monthly = forecast_steps(forecast, freq="month")["a"]
    assert monthly == [], "30 days of March are not the whole month: no step"
    march = forecast_steps(forecast_of(("a",), {"a": 2}, days=31), freq="month")["a"]
    assert [(s["date"], s["days"], s["q50"]) for s in march] == [("2024-03-31", 31, 62.0)]


def test_monthly_and_yearly_steps_are_the_calendar_periods_of_the_grid():
    """A report on month or year totals forecasts those periods, not 28-day blocks."""
    quarter = forecast_of(("a",), {"a": 1}, days=31 + 30 + 31)  # March to May 2024
    monthly = forecast_steps(quarter, freq="month")["a"]
    assert [(s["date"], s["days"], s["mean"]) for s in monthly] == [
        ("2024-03-31", 31, 31.0),
        ("2024-04-30", 30, 30.0),
        ("2024-05-31", 31, 31.0),
    ]
    assert step_ends(AS_OF, "month", 3).strftime("%Y-%m-%d").tolist() == ["2024-03-31", "2024-04-30", "2024-05-31"]
    assert step_ends(AS_OF, "year", 2).strftime("%Y-%m-%d").tolist() == ["2024-12-31", "2025-12-31"]
    # as_of inside a period: the first step is the rest of it
    assert step_ends(pd.Timestamp("2024-03-10"), "month", 2).strftime("%Y-%m-%d").tolist() == [
        "2024-03-31",
        "2024-04-30",
    ]
    year = forecast_of(("a",), {"a": 1}, days=366 + 100, as_of=pd.Timestamp("2023-12-31"))
    assert [(s["date"], s["days"]) for s in forecast_steps(year, freq="year")["a"]] == [("2024-12-31", 366)]
    assert whole_steps(pd.date_range("2024-03-10", "2024-04-30"), "month") == [(0, 21), (22, 51)]
    assert whole_steps(pd.date_range("2024-03-01", "2024-03-30"), "month") == []
    assert whole_steps(pd.date_range("2024-03-01", "2024-03-20"), "week") == [(0, 6), (7, 13)]


def test_a_forecast_that_does_not_start_after_as_of_is_refused(write_csv):
    model = jump_model(write_csv)
    post = jump_posterior(("a", "b"), np.zeros((2 * DRAWS, 2)))
    late = forecast_of(("a", "b"), {"a": 1, "b": 1}, as_of=AS_OF + pd.Timedelta(days=1))
    with pytest.raises(ForecastError, match="day after as_of"):
        compute_indicators(model, post, late, diagnostics=PASSED, changepoint_probabilities=no_changepoint_yet(model))
    short = forecast_of(("a", "b"), {"a": 1, "b": 1}, days=6)
    with pytest.raises(ForecastError, match="at least 7"):
        compute_indicators(model, post, short, diagnostics=PASSED, changepoint_probabilities=no_changepoint_yet(model))


# --------------------------------------------------------------------------- schema


@pytest.fixture(scope="module")
def shipped_document():
    from forecast.checks.diagnostics import check_convergence
    from forecast.forecasting.counts import forecast_counts
    from forecast.jobs.data import DataRequest, load_data
    from tests.fakes import prior_as_posterior

    loaded = load_data(DataRequest())
    model = EscalationModel(loaded.panel, loaded.interventions)
    post = prior_as_posterior(model, draws=20)
    forecast = forecast_counts(model, post, horizon_days=28, random_seed=1)
    diagnostics = check_convergence(az.InferenceData(posterior=post))
    return compute_indicators(model, post, forecast, diagnostics=diagnostics)


def test_indicators_of_a_fake_fit_of_the_shipped_data_validate(shipped_document):
    doc = shipped_document
    validate_indicators(doc)
    json.dumps(doc, allow_nan=False)
    assert doc["unreliable"] is True, "prior draws are not a converged posterior"
    assert doc["headline_warning"].startswith("FIT FAILED ITS CHECKS")
    fronts = {front["front"]: front for front in doc["fronts"]}
    assert set(fronts) >= {"gaza", "iraq", "red_sea_shipping"}
    assert all(len(front["forecast"]) == 28 for front in doc["fronts"])
    assert any("window totals" in note for note in fronts["iraq"]["notes"])
    assert all(front["p_changepoint_recent"] is not None for front in doc["fronts"])


def test_schema_file_ships_with_the_package_and_rejects_bad_documents(shipped_document):
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["schema_version", "as_of", "horizon", "diagnostics", "fronts"]
    missing = {k: v for k, v in shipped_document.items() if k != "fronts"}
    with pytest.raises(ForecastError, match=r"at \$: 'fronts' is a required property"):
        validate_indicators(missing)
    bad = json.loads(json.dumps(shipped_document))
    front = next(f for f in bad["fronts"] if f["p_exceed"])
    index = bad["fronts"].index(front)
    front["p_exceed"][0]["probability"] = 1.5
    with pytest.raises(ForecastError, match=rf"\$\.fronts\[{index}\]\.p_exceed\[0\]\.probability"):
        validate_indicators(bad)
    bad = json.loads(json.dumps(shipped_document))
    bad["fronts"][0]["surprise"] = 1
    with pytest.raises(ForecastError, match="Additional properties"):
        validate_indicators(bad)

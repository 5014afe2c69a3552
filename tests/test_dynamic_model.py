"""The dynamic model: graph structure, one definition of the rate, forecasts (no MCMC here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr

from forecast import names as n
from forecast.data.events import EventTable, make_event_frame
from forecast.data.panel import build_panel
from forecast.errors import ForecastError
from forecast.forecasting.counts import forecast_counts
from forecast.models import dynamic
from forecast.models.design import ModelOptions, build_design
from forecast.models.model import EscalationModel
from forecast.priors import load_priors

DYNAMIC = ModelOptions(family="dynamic", changepoints=0)


def daily_panel(fronts=("a", "b"), days=60, rate=(3.0, 40.0), seed=0):
    """Daily counts per front (one row a day)."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=days, freq="D")
    counts = np.concatenate([rng.poisson(r, size=days) for r in rate[: len(fronts)]])
    return _panel(np.tile(dates, len(fronts)), np.repeat(fronts, days), counts)


def monthly_window_panel(months=24):
    """One front reported as monthly window totals (the layout of the shared ACLED table)."""
    starts = pd.date_range("2022-01-01", periods=months, freq="MS")
    ends = starts + pd.offsets.MonthEnd(0)
    counts = np.random.default_rng(1).poisson(300, size=months)
    return _panel(starts, ["x"] * months, counts, end_dates=ends, freq=n.FREQ_MONTH)


def _panel(dates, fronts, counts, *, end_dates=None, freq=n.FREQ_DAY):
    rows = len(counts)
    frame = make_event_frame(
        dates=pd.Series(pd.DatetimeIndex(dates)),
        end_dates=pd.Series(pd.DatetimeIndex(end_dates) if end_dates is not None else [pd.NaT] * rows),
        fronts=pd.Series(list(fronts)),
        counts=pd.Series(np.asarray(counts, dtype=np.int64)),
        precision=pd.Series(["exact"] * rows),
        source=pd.Series([""] * rows),
        file="<test>",
        lines=np.arange(2, rows + 2),
    )
    return build_panel(EventTable(frame=frame, files=("<test>",)), freq=freq)


def test_the_dynamic_model_refuses_options_it_does_not_have():
    for options in (
        {"changepoints": 1},
        {"changepoints": 0, "trend": True},
        {"changepoints": 0, "likelihood": "poisson"},
    ):
        with pytest.raises(ValueError, match="dynamic model has no"):
            ModelOptions(family="dynamic", **options)
    with pytest.raises(ForecastError, match="priors .* are for the changepoint model"):
        EscalationModel(daily_panel(), options=DYNAMIC, priors=load_priors())


@pytest.mark.parametrize("panel", [daily_panel(), daily_panel(fronts=("a",)), monthly_window_panel()], ids=str)
def test_graph_names_and_dims(panel):
    model = EscalationModel(panel, options=DYNAMIC)
    graph = model.model
    assert model.name == "dynamic"
    fronts, periods = len(panel.fronts), panel.n_periods
    assert graph.named_vars_to_dims["level"] == (n.FRONT, n.TIME)
    assert graph.named_vars_to_dims["burst"] == (n.FRONT, n.TIME)
    for name in ("sigma_level", "tail_df", "burst_sd", "burst_persistence", "dispersion"):
        assert graph[name].eval().shape == (fronts,)  # a value per front, pooled through its hyperprior
    assert "obs_loglik" in {v.name for v in graph.deterministics}
    assert {"obs_log_mean", "obs_loglik"}.isdisjoint(model.stored_variables())
    level = pm.draw(graph["level"], random_seed=1)
    assert level.shape == (fronts, periods) and np.all(np.isfinite(level))
    assert np.isfinite(graph.compile_logp()(graph.initial_point()))


def test_numpy_twin_equals_the_graph_draw_by_draw():
    """One definition of the rate: latent_paths reproduces the graph's level and burst exactly."""
    # Monthly totals of 300 pin each month's level down (centred); 0.3 a day does not (non-centred).
    months = pd.date_range("2022-01-01", periods=18, freq="MS")
    counts = np.random.default_rng(2).poisson(np.repeat([300.0, 9.0], 18))
    panel = _panel(np.tile(months, 2), np.repeat(["big", "small"], 18), counts, freq=n.FREQ_MONTH)
    model = EscalationModel(panel, options=DYNAMIC)
    graph = model.model
    centred = dynamic.centred_fronts(model.design)
    assert centred.any() and not centred.all()  # both parameterisations are exercised
    names = [v.name for v in graph.free_RVs] + ["level", "burst", "sigma_level", "burst_sd", "burst_persistence"]
    drawn = pm.draw([graph[name] for name in names], draws=7, random_seed=3)  # joint forward draws
    values = dict(zip(names, drawn, strict=True))
    level, burst = dynamic.latent_paths(
        model.design,
        initial_level=values["initial_level"],
        sigma_level=values["sigma_level"],
        burst_sd=values["burst_sd"],
        burst_persistence=values["burst_persistence"],
        burst_innovation=values["burst_innovation"],
        level_innovation=values.get("level_innovation"),
        level_step=values.get("level_step"),
    )
    np.testing.assert_allclose(level, values["level"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(burst, values["burst"], rtol=1e-9, atol=1e-9)


def test_the_level_centre_is_each_fronts_own_scale_not_pooled():
    design = build_design(daily_panel(rate=(0.5, 400.0)), None, DYNAMIC)
    centre = dynamic.level_centre(design)
    assert centre[0] < np.log(2.0) and centre[1] > np.log(200.0)


def test_linear_recurrence_matches_the_sequential_definition():
    rng = np.random.default_rng(0)
    u = rng.normal(size=(3, 37))
    a = np.array([0.0, 0.5, 0.97])
    got = dynamic.linear_recurrence(pm.math.constant(u), pm.math.constant(a)).eval()
    expected = np.zeros_like(u)
    expected[:, 0] = u[:, 0]
    for t in range(1, u.shape[1]):
        expected[:, t] = a * expected[:, t - 1] + u[:, t]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


LEVEL = float(np.log(10.0))


def _dynamic_posterior(model, *, draws=400, sigma=0.1, level=LEVEL):
    fronts = list(model.design.fronts)
    periods = len(model.design.periods)
    shape = (2, draws, len(fronts))

    def per_front(value):
        return (("chain", "draw", n.FRONT), np.full(shape, value))

    return xr.Dataset(
        {
            "level": (("chain", "draw", n.FRONT, n.TIME), np.full(shape + (periods,), level)),
            "burst": (("chain", "draw", n.FRONT, n.TIME), np.zeros(shape + (periods,))),
            "sigma_level": per_front(sigma),
            "tail_df": per_front(30.0),
            "burst_sd": per_front(1e-9),
            "burst_persistence": per_front(0.5),
            "dispersion": per_front(1e6),
        },
        coords={"chain": [0, 1], "draw": range(draws), n.FRONT: fronts, n.TIME: range(periods)},
    )


def test_dynamic_forecasts_continue_the_level_and_widen_with_the_horizon():
    model = EscalationModel(daily_panel(fronts=("a",)), options=DYNAMIC)
    forecast = forecast_counts(model, _dynamic_posterior(model, draws=2000), horizon_days=28, random_seed=0)
    log_rate = np.log(forecast["rate"].sel({n.FRONT: "a"}).to_numpy()).reshape(-1, 28)
    ahead = np.arange(1, 29)
    # The median stays at the last level, within 4 standard errors of a median of 4,000 draws.
    tolerance = 4 * 1.25 * 0.1 * np.sqrt(ahead) / np.sqrt(log_rate.shape[0])
    assert np.all(np.abs(np.median(log_rate, axis=0) - np.log(10.0)) < tolerance)
    spread = log_rate.std(axis=0)
    # A random walk: the sd of the log rate grows like sigma x sqrt(days ahead).
    np.testing.assert_allclose(spread[[0, 3, 15]], 0.1 * np.sqrt([1, 4, 16]), rtol=0.15)


def test_monthly_forecasts_step_once_per_month():
    model = EscalationModel(monthly_window_panel(), options=DYNAMIC)
    forecast = forecast_counts(model, _dynamic_posterior(model, sigma=0.05), horizon_days=60, random_seed=0)
    rate = forecast["rate"].sel({n.FRONT: "x"}).to_numpy()[0, 0]
    days = pd.DatetimeIndex(forecast["date"].to_numpy())
    for month in np.unique(days.month):
        assert np.unique(rate[days.month == month]).size == 1  # one level per month
    assert np.unique(rate).size == len(np.unique(days.month))

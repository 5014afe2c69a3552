"""The dynamic model: graph structure, one definition of the rate, forecasts (no MCMC here)."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import pytest
import xarray as xr

from forecast import names as n
from forecast.data.events import EventTable, make_event_frame
from forecast.data.panel import build_panel
from forecast.errors import ForecastError
from forecast.forecasting.counts import forecast_counts
from forecast.models import dynamic, tails, whitened
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


def _panel(dates, fronts, counts, *, end_dates=None, freq=n.FREQ_DAY, as_of=None, precision=None):
    rows = len(counts)
    frame = make_event_frame(
        dates=pd.Series(pd.DatetimeIndex(dates)),
        end_dates=pd.Series(pd.DatetimeIndex(end_dates) if end_dates is not None else [pd.NaT] * rows),
        fronts=pd.Series(list(fronts)),
        counts=pd.Series(np.asarray(counts, dtype=np.int64)),
        precision=pd.Series(precision if precision is not None else ["exact"] * rows),
        source=pd.Series([""] * rows),
        file="<test>",
        lines=np.arange(2, rows + 2),
    )
    return build_panel(EventTable(frame=frame, files=("<test>",)), freq=freq, as_of=as_of)


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
    hyperparameters = ["sigma_level", "tail_weight", "dispersion"]
    if panel.freq == n.FREQ_DAY:
        hyperparameters += ["burst_sd", "burst_persistence"]
    else:  # no burst on coarser grids: it could not be told from the dispersion
        assert "burst_sd" not in graph.named_vars and not pm.draw(graph["burst"]).any()
    for name in hyperparameters:
        assert graph[name].eval().shape == (fronts,)  # a value per front, pooled through its hyperprior
    assert "obs_loglik" in {v.name for v in graph.deterministics}
    assert {"obs_log_mean", "obs_loglik"}.isdisjoint(model.stored_variables())
    level = pm.draw(graph["level"], random_seed=1)
    assert level.shape == (fronts, periods) and np.all(np.isfinite(level))
    assert np.isfinite(graph.compile_logp()(graph.initial_point()))


def _twin_panels():
    # One front counted month by month (its level whitened, "centred"), one reported in
    # two-month windows (non-centred: a window informs two levels at once, never one).
    months = pd.date_range("2022-01-01", periods=18, freq="MS")
    pairs = months[::2]
    counts = np.random.default_rng(2).poisson(np.repeat([300.0, 18.0], [18, 9]))
    ends = list(months + pd.offsets.MonthEnd(0)) + list(pairs + pd.DateOffset(months=2) - pd.Timedelta(days=1))
    monthly = _panel(
        list(months) + list(pairs), ["big"] * 18 + ["small"] * 9, counts, end_dates=ends, freq=n.FREQ_MONTH
    )
    return {"monthly": monthly, "daily": daily_panel(fronts=("a", "b"), days=40)}


@pytest.mark.parametrize("which", ["monthly", "daily"])
def test_fixing_the_stored_steps_fixes_the_paths(which):
    """The simulator's scenarios fix ``level_step`` and ``burst_step`` with ``pm.do``: the paths must follow them."""
    model = EscalationModel(_twin_panels()[which], options=DYNAMIC)
    graph = model.model
    name, path = ("level_step", "level") if which == "monthly" else ("burst_step", "burst")
    shape = pm.draw(graph[name], random_seed=1).shape
    steps = np.full(shape, 0.25)
    fixed = pm.do(graph, {name: steps})
    drawn = pm.draw(fixed[path], random_seed=2)
    if which == "monthly":  # the centred front's level climbs by 0.25 a month
        centred = np.flatnonzero(dynamic.layout_of(model.design).centred)
        np.testing.assert_allclose(np.diff(drawn[centred], axis=1), 0.25, rtol=1e-12)
    else:  # b_t = rho b_{t-1} + 0.25 from b_0 = 0.25
        rho = pm.draw(fixed["burst_persistence"], random_seed=2) ** dynamic.layout_of(model.design).persistence_days
        expected = np.zeros_like(drawn)
        expected[:, 0] = 0.25
        for t in range(1, drawn.shape[1]):
            expected[:, t] = rho * expected[:, t - 1] + 0.25
        np.testing.assert_allclose(drawn, expected, rtol=1e-10)


@pytest.mark.parametrize("which", ["monthly", "daily"])
def test_data_as_shared_variables_give_the_same_log_density_as_constants(which):
    """The backtest builds the graph on shared data, whose shapes the graph does not know."""
    panel = _twin_panels()[which]
    plain = EscalationModel(panel, options=DYNAMIC).model
    shared = EscalationModel(panel, options=DYNAMIC, shared_data=True).model
    point = plain.initial_point(random_seed=4)
    point = {k: v + np.random.default_rng(5).normal(0.0, 0.2, size=np.shape(v)) for k, v in point.items()}
    assert shared.compile_logp()(point) == pytest.approx(plain.compile_logp()(point), rel=1e-10)


@pytest.mark.parametrize("which", ["monthly", "daily"])
def test_numpy_twin_equals_the_graph_draw_by_draw(which):
    """One definition of the rate: latent_paths reproduces the graph's level and burst exactly."""
    model = EscalationModel(_twin_panels()[which], options=DYNAMIC)
    graph = model.model
    layout = dynamic.layout_of(model.design)
    if which == "monthly":  # both parameterisations of the level, no burst
        assert layout.centred.any() and not layout.centred.all() and not layout.any_burst
    else:  # the burst, on a daily grid
        assert layout.burst.all()
    names = [v.name for v in graph.free_RVs] + ["level", "burst", "sigma_level", "tail_weight"]
    # the whitened paths' steps
    names += [name for name in ("level_step", "level_window_step") if name in graph.named_vars]
    names += ["burst_sd", "burst_persistence", "burst_step"] if layout.any_burst else []
    drawn = pm.draw([graph[name] for name in names], draws=7, random_seed=3)  # joint forward draws
    values = dict(zip(names, drawn, strict=True))
    level, burst = dynamic.latent_paths(
        model.design,
        initial_level=values["initial_level"],
        burst_persistence=values.get("burst_persistence"),
        burst_step=values.get("burst_step"),
        level_window_step=values.get("level_window_step"),
        level_step=values.get("level_step"),
    )
    np.testing.assert_allclose(level, values["level"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(burst, values["burst"], rtol=1e-9, atol=1e-9)


def test_the_level_centre_is_each_fronts_own_scale_not_pooled():
    design = build_design(daily_panel(rate=(0.5, 400.0)), None, DYNAMIC)
    centre = dynamic.level_centre(design)
    assert centre[0] < np.log(2.0) and centre[1] > np.log(200.0)


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
            "tail_weight": per_front(1e-9),
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
    # On a daily grid the level steps once a week, on the data's weekdays: the 60 days end 4 days
    # into a week, so the first step comes on the 4th day ahead, then every 7th.
    steps = (60 + np.arange(28)) % 7 == 0
    np.testing.assert_array_equal(np.flatnonzero(steps) + 1, [4, 11, 18, 25])
    level_days = 7.0 * np.cumsum(steps)
    # The median stays at the last level, within 4 standard errors of a median of 4,000 draws.
    tolerance = 4 * 1.25 * 0.1 * np.sqrt(level_days) / np.sqrt(log_rate.shape[0]) + 1e-9  # the burst sd is 1e-9
    assert np.all(np.abs(np.median(log_rate, axis=0) - np.log(10.0)) <= tolerance)
    spread = log_rate.std(axis=0)
    # A random walk: the sd of the log rate grows like sigma x sqrt(days ahead), a week at a time.
    assert np.all(spread[:3] < 1e-9)  # the rest of the last week keeps its level
    np.testing.assert_allclose(spread[[3, 10, 24]], 0.1 * np.sqrt([7, 14, 28]), rtol=0.15)


def test_monthly_forecasts_step_once_per_month():
    model = EscalationModel(monthly_window_panel(), options=DYNAMIC)
    forecast = forecast_counts(model, _dynamic_posterior(model, sigma=0.05), horizon_days=60, random_seed=0)
    rate = forecast["rate"].sel({n.FRONT: "x"}).to_numpy()[0, 0]
    days = pd.DatetimeIndex(forecast["date"].to_numpy())
    for month in np.unique(days.month):
        assert np.unique(rate[days.month == month]).size == 1  # one level per month
    assert np.unique(rate).size == len(np.unique(days.month))


def _stepped_posterior(model, *, step_period, ratio, draws=200, seed=0):
    """Levels flat at 10 a day that jump by ``ratio`` at ``step_period`` (with a little noise)."""
    posterior = _dynamic_posterior(model, draws=draws)
    periods = len(model.design.periods)
    rng = np.random.default_rng(seed)
    path = np.where(np.arange(periods) >= step_period, np.log(10.0 * ratio), np.log(10.0))
    noise = rng.normal(0.0, 0.02, size=posterior["level"].shape)
    return posterior.assign(level=(posterior["level"].dims, path + noise))


def test_dynamic_summary_dates_a_level_shift_and_reports_the_current_rate():
    from forecast.models.summary import summarise

    model = EscalationModel(daily_panel(fronts=("a",)), options=DYNAMIC)
    summary = summarise(model, _stepped_posterior(model, step_period=40, ratio=3.0))
    front = summary["fronts"][0]
    assert front["current_daily_rate"]["mean"] == pytest.approx(30.0, rel=0.05)
    (shift,) = front["level_shifts"]
    assert shift["mode_date"] == "2024-02-10"  # period 40 of a panel starting 2024-01-01
    assert shift["interval_dates"] == ["2024-02-10", "2024-02-10"]
    assert shift["rate_ratio"]["mean"] == pytest.approx(3.0, rel=0.05) and shift["p_increase"] == 1.0
    assert front["changepoints"] == []


def test_a_level_that_slides_threefold_over_weeks_is_a_dated_shift():
    """Weekly steps of 0.75x each, none of them a 1.5x change, fall threefold from day 21 to day 49."""
    from forecast.models.summary import summarise

    model = EscalationModel(daily_panel(fronts=("a",), days=70), options=DYNAMIC)
    posterior = _dynamic_posterior(model, draws=200)
    day = np.arange(len(model.design.periods))
    weeks_down = np.clip((day - 21) // 7 + 1, 0, 4)  # steps on days 21, 28, 35 and 42
    path = np.log(10.0) + weeks_down * np.log(0.75)
    noise = np.random.default_rng(3).normal(0.0, 0.02, size=posterior["level"].shape)
    posterior = posterior.assign(level=(posterior["level"].dims, path + noise))
    (shift,) = summarise(model, posterior)["fronts"][0]["level_shifts"]
    assert shift["interval_dates"] == ["2024-01-22", "2024-02-12"]  # days 21 .. 42: the slide's steps
    assert shift["rate_ratio"]["mean"] == pytest.approx(0.75**4, rel=0.05) and shift["p_increase"] == 0.0
    assert shift["mode_date"] in {"2024-01-22", "2024-01-29", "2024-02-05", "2024-02-12"}
    # Each step alone is a 0.75x change: without the window the slide would not be a shift.
    from forecast.models.summary import _level_shifts

    level = posterior["level"].stack(sample=("chain", "draw")).transpose(n.FRONT, n.TIME, "sample").to_numpy()[0]
    assert _level_shifts(model.design.periods, level, 0.9, window=1) == []


def test_dynamic_rate_ratio_compares_with_28_days_earlier_not_with_the_start():
    from forecast.indicators.rates import log_rate_components, recent_level_change_probability

    model = EscalationModel(daily_panel(fronts=("a",)), options=DYNAMIC)
    # A rise 40 days before as_of: over, so the last 28 days are flat and nothing is rising now.
    old = _stepped_posterior(model, step_period=20, ratio=3.0)
    np.testing.assert_allclose(np.exp(log_rate_components(model.design, old)["log_ratio"]).mean(), 1.0, atol=0.05)
    assert recent_level_change_probability(model.design, old, days=14) == [0.0]
    # A rise 10 days before as_of: inside both windows.
    recent = _stepped_posterior(model, step_period=50, ratio=3.0)
    np.testing.assert_allclose(np.exp(log_rate_components(model.design, recent)["log_ratio"]).mean(), 3.0, rtol=0.05)
    assert recent_level_change_probability(model.design, recent, days=14) == [1.0]


def test_a_monthly_panel_can_have_a_recent_change_in_its_last_period():
    from forecast.indicators.rates import recent_level_change_probability

    model = EscalationModel(monthly_window_panel(), options=DYNAMIC)
    last = len(model.design.periods) - 1
    posterior = _stepped_posterior(model, step_period=last, ratio=2.0)
    assert recent_level_change_probability(model.design, posterior, days=14) == [1.0]


# --------------------------------------------------------------------------------------------
# The sinh-arcsinh tail: the heavy tails of the innovations
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [0.0, 1e-8, 0.1, 0.3, 0.5])
def test_sinh_arcsinh_logp_is_the_density_of_the_transformed_normal(t):
    """``sinh_arcsinh_logp`` against the change of variables done with a numerical inverse of ``g_t``."""
    from scipy import optimize, stats

    values = np.array([-400.0, -30.0, -3.0, -0.5, 0.0, 1e-4, 0.7, 2.5, 12.0, 1e3])
    expected = []
    for value in values:
        bound = abs(value) + 1.0  # |g_t(z)| >= |z|
        z = optimize.brentq(lambda z, v=value: tails.sinh_arcsinh(z, t) - v, -bound, bound, xtol=1e-14, rtol=1e-15)
        derivative = np.cosh((1.0 + t) * np.arcsinh(z)) / np.sqrt(1.0 + z * z)
        expected.append(stats.norm.logpdf(z) - np.log(derivative))
    got = tails.sinh_arcsinh_logp(pm.math.constant(values), pm.math.constant(t)).eval()
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(tails.sinh_arcsinh_logp(values, t), expected, rtol=1e-9, atol=1e-9)  # numpy alike
    np.testing.assert_allclose(tails.sinh_arcsinh(tails.sinh_arcsinh_inverse(values, t), t), values, rtol=1e-12)
    # ... and it is a density: it integrates to one.
    grid = np.concatenate([-np.logspace(3, -8, 4000), [0.0], np.logspace(-8, 3, 4000)])
    density = np.exp(tails.sinh_arcsinh_logp(grid, t))
    assert abs(np.trapezoid(density, grid) - 1.0) < 1e-4


def test_sinh_arcsinh_variance_is_the_exact_bessel_moment():
    """The whitening's variance against Jones and Pewsey's exact moment, across the tail weight's range."""
    from scipy.special import kv

    def p(q):
        return np.exp(0.25) / np.sqrt(8.0 * np.pi) * (kv((q + 1.0) / 2.0, 0.25) + kv((q - 1.0) / 2.0, 0.25))

    t = np.linspace(0.0, tails.TAIL_WEIGHT_MAX, 51)
    exact = (p(2.0 * (1.0 + t)) - 1.0) / (2.0 * (1.0 + t) ** 2)
    np.testing.assert_allclose(tails.sinh_arcsinh_variance(t), exact, rtol=2e-4)
    assert tails.sinh_arcsinh_variance(0.0) == 1.0


def test_the_rate_has_a_finite_mean_at_the_largest_tail_weight():
    """``E exp(sigma g_t(Z))`` is finite and moderate at the bound: the defect of power tails is gone."""
    from scipy import integrate, stats

    t = tails.TAIL_WEIGHT_MAX
    means = []
    for sigma in (0.3, 1.0):
        integrand = lambda z, s=sigma: np.exp(s * tails.sinh_arcsinh(z, t)) * stats.norm.pdf(z)  # noqa: E731
        means.append(integrate.quad(integrand, -40.0, 40.0, limit=400)[0])
    # The normal's exp(sigma^2 / 2) is 1.046 and 1.65; heavier tails cost more, but boundedly.
    assert 1.046 < means[0] < 1.1
    assert 1.65 < means[1] < 4.0
    # The far tail decays faster than any exponential: log density / |x| keeps falling.
    x = np.array([10.0, 100.0, 1000.0])
    slopes = -tails.sinh_arcsinh_logp(x, t) / x
    assert np.all(np.diff(slopes) > 0)


def test_the_centred_steps_draw_from_the_density_they_are_scored_with():
    """``level_step``'s random draws and its log density describe the same distribution."""
    from scipy import stats

    rng = np.random.default_rng(4)
    t, scale = 0.4, 0.2
    draws = tails._scaled_random(t, scale, rng=rng, size=200_000)
    edges = np.quantile(draws, np.linspace(0.0, 1.0, 21)[1:-1])
    grid = np.linspace(-60.0, 60.0, 600_001)
    logp = tails._scaled_logp(pm.math.constant(grid), pm.math.constant(t), pm.math.constant(scale)).eval()
    cdf = np.cumsum(np.exp(logp)) * (grid[1] - grid[0])
    expected = np.interp(edges, grid, cdf)
    # The empirical deciles of the draws sit where the density's CDF says (20 bins of 10,000 draws).
    observed = np.linspace(0.0, 1.0, 21)[1:-1]
    assert np.max(np.abs(expected - observed)) < 4 * np.sqrt(0.25 / 200_000) + 1e-3
    assert stats.kurtosis(draws) > 0.8  # heavier tails than the normal's


def _mixed_panel(as_of=None, scale=1.0):
    """One front counted day by day and one reported only as weekly window totals (``scale`` times as many)."""
    days = pd.date_range("2024-01-01", periods=42, freq="D")
    rng = np.random.default_rng(5)
    weeks = days[::7]
    dates = list(days) + list(weeks)
    end_dates = [pd.NaT] * len(days) + list(weeks + pd.Timedelta(days=6))
    counts = np.concatenate([rng.poisson(6.0 * scale, size=len(days)), rng.poisson(20.0 * scale, size=len(weeks))])
    fronts = ["daily"] * len(days) + ["windows"] * len(weeks)
    return _panel(dates, fronts, counts, end_dates=end_dates, as_of=as_of)


def test_only_fronts_counted_day_by_day_have_a_burst():
    model = EscalationModel(_mixed_panel(), options=DYNAMIC)
    layout = dynamic.layout_of(model.design)
    assert list(model.design.fronts) == ["daily", "windows"]
    np.testing.assert_array_equal(layout.burst, [True, False])
    graph = model.model
    burst, whitened = pm.draw([graph["burst"], graph["burst_whitened"]], random_seed=2)
    assert whitened.shape == (1, len(model.design.periods))  # the daily front's only
    assert np.all(burst[1] == 0.0) and np.any(burst[0] != 0.0)
    # The numpy twin agrees on this layout too.
    names = [v.name for v in graph.free_RVs] + ["level", "burst", "sigma_level", "tail_weight"]
    names += [name for name in ("level_step", "level_window_step") if name in graph.named_vars]
    names += ["burst_persistence", "burst_step"]
    values = dict(zip(names, pm.draw([graph[name] for name in names], draws=3, random_seed=6), strict=True))
    level, twin_burst = dynamic.latent_paths(
        model.design,
        **{k: values[k] for k in ("initial_level", "burst_persistence")},
        burst_step=values["burst_step"],
        level_window_step=values.get("level_window_step"),
        level_step=values.get("level_step"),
    )
    np.testing.assert_allclose(level, values["level"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(twin_burst, values["burst"], rtol=1e-9, atol=1e-9)
    # Forecasts keep the window front's burst at zero.
    rng = np.random.default_rng(0)
    ones = np.ones((5, 2))
    _, future_burst = dynamic.simulate_future(
        level=ones,
        burst=ones,
        sigma_level=0.1 * ones,
        tail_weight=0.2 * ones,
        burst_sd=0.5 * ones,
        burst_persistence=0.5 * ones,
        has_burst=layout.burst,
        step_days=np.ones(4),
        persistence_days=1.0,
        rng=rng,
    )
    assert np.all(future_burst[:, 1] == 0.0) and np.all(future_burst[:, 0] != 0.0)


def _evaluate(model, outputs, point):
    """``outputs`` (variables of ``model``'s graph) at a point of its sampler's coordinates."""
    graph = model.model
    values = graph.replace_rvs_by_values(outputs if isinstance(outputs, list) else [outputs])
    evaluated = graph.compile_fn(values, inputs=graph.value_vars, on_unused_input="ignore")(point)
    return evaluated if isinstance(outputs, list) else evaluated[0]


def test_padding_adds_only_prior_terms_and_backtest_origins_share_one_graph():
    """Padded latent periods (the backtest's) carry no data: the log density gains exactly their prior."""
    from forecast.models.nutpie_compile import _Graph

    panel = _mixed_panel()
    until = panel.periods[-1] + pd.Timedelta(days=5)
    plain = EscalationModel(panel, options=DYNAMIC)
    padded = EscalationModel(panel, options=DYNAMIC, placeholders_until=until)
    np.testing.assert_array_equal(padded.pad_days, np.ones(5))
    periods = len(panel.periods)
    assert padded.model["level"].eval().shape == (2, periods + 5)
    point = padded.model.initial_point()
    rng = np.random.default_rng(1)
    point = {k: v + rng.normal(0.0, 0.3, size=np.shape(v)) for k, v in point.items()}
    plain_shapes = {k: np.shape(v) for k, v in plain.model.initial_point().items()}
    # path (whitened coordinates), its innovations and how the path is rebuilt from them
    whitened_paths = {
        "level_whitened": "level_step",
        "level_window_whitened": "level_window_step",
        "burst_whitened": "burst_step",
    }
    extra_columns = {k: np.shape(point[k])[-1] - plain_shapes[k][-1] for k in whitened_paths}
    # 42 -> 47 days: 6 -> 7 weeks; the windowed front holds two knots a week (window_knot_capacity)
    assert extra_columns == {"level_window_whitened": 2, "level_whitened": 1, "burst_whitened": 5}
    plain_point = {k: (v[..., : plain_shapes[k][-1]] if k in extra_columns else v) for k, v in point.items()}
    # The daily front's level and burst are sampled in coordinates whitened given the data
    # (whitened.py), so the plain model's coordinates of the same paths are found by whitening
    # them with the plain inputs (the level first: the burst's inputs depend on it).
    for name, steps_name in whitened_paths.items():
        inputs = _evaluate(plain, list(plain.model[name].owner.inputs[2:]), plain_point)
        first, scale, tail, alpha, count, days, offset = inputs[:7]
        rho = inputs[7][:, 0] if len(inputs) == 8 else 1.0
        steps = _evaluate(padded, padded.model[steps_name], point)[:, : plain_shapes[name][-1]]
        path = np.zeros_like(steps)
        for k in range(steps.shape[1]):  # x_k = rho x_{k-1} + step_k from x_{-1} = first
            path[:, k] = rho * (path[:, k - 1] if k else first[:, 0]) + steps[:, k]
        plain_point[name] = whitened.whiten(path, first[:, 0], scale, tail[:, 0], alpha[:, 0], count, days, offset, rho)
    for path in ("level", "burst"):
        np.testing.assert_allclose(
            _evaluate(plain, plain.model[path], plain_point),
            _evaluate(padded, padded.model[path], point)[:, :periods],
            rtol=1e-9,
            atol=1e-12,
        )

    # Every term but the whitened paths' is the plain model's, plus the padded knots' prior; the
    # data terms are equal (the same paths over the data).
    def terms(model, at):
        names = [v.name for v in model.model.free_RVs if v.name not in whitened_paths] + ["likelihood"]
        rvs = [model.model[name] for name in names]
        return dict(zip(names, _evaluate(model, model.model.logp(vars=rvs, sum=False), at), strict=True))

    padded_terms, plain_terms = terms(padded, point), terms(plain, plain_point)
    for name, value in plain_terms.items():
        np.testing.assert_allclose(np.sum(padded_terms[name]), np.sum(value), rtol=1e-10, err_msg=name)
    # The whitened paths' terms: in path space (the whitening's Jacobian added back) the padded
    # model gains exactly the padded steps' prior density.
    for name, steps_name in whitened_paths.items():
        length = plain_shapes[name][-1]
        steps = _evaluate(padded, padded.model[steps_name], point)
        given = _evaluate(padded, list(padded.model[name].owner.inputs[2:]), point)
        scale, tail = given[1], given[2]
        prior_of_padding = tails.sinh_arcsinh_logp(steps[:, length:] / scale[:, length:], tail) - np.log(
            scale[:, length:]
        )
        path_density = []
        for model, at in ((padded, point), (plain, plain_point)):
            given = _evaluate(model, list(model.model[name].owner.inputs[2:]), at)
            rho = given[7][:, 0] if len(given) == 8 else 1.0
            _, diagonal, _ = whitened.conditional(
                given[0][:, 0], given[1], given[2][:, 0], given[3][:, 0], *given[4:7], rho
            )
            term = _evaluate(model, model.model.logp(vars=[model.model[f"{name}_density"]]), at)
            path_density.append(term + np.log(diagonal).sum())
        np.testing.assert_allclose(path_density[0], path_density[1] + prior_of_padding.sum(), rtol=1e-10, err_msg=name)
    # Two origins padded to the same last period are one graph, so one compiled sampler serves both.
    shorter = EscalationModel(
        _mixed_panel(as_of=panel.periods[-8]), options=DYNAMIC, placeholders_until=until, shared_data=True
    )
    longer = EscalationModel(panel, options=DYNAMIC, placeholders_until=until, shared_data=True)
    names = shorter.stored_variables()
    assert names == longer.stored_variables()
    assert _Graph.of(shorter.model, names).matches(_Graph.of(longer.model, names))


def test_a_reusable_model_keeps_its_graph_until_the_table_crosses_a_block():
    """The command line's fits pad the latent paths to a multiple of LATENT_BLOCK periods, so that
    next week's table is the same graph (and finds this week's compiled sampler on disk)."""
    from forecast.models.model import LATENT_BLOCK
    from forecast.models.nutpie_compile import _Graph

    panel = _mixed_panel()  # 42 days: padded to 56
    block = LATENT_BLOCK["day"]
    reusable = EscalationModel(panel, options=DYNAMIC, reusable=True)
    assert reusable.shared_data
    np.testing.assert_array_equal(reusable.pad_days, np.ones(-42 % block))
    assert reusable.model["level"].eval().shape == (2, 56)
    week_before = EscalationModel(_mixed_panel(as_of=panel.periods[-8]), options=DYNAMIC, reusable=True)
    names = reusable.stored_variables()
    assert _Graph.of(week_before.model, names).matches(_Graph.of(reusable.model, names))
    # other fronts' data of the same structure (another level centre): one graph too
    busier = EscalationModel(_mixed_panel(scale=5.0), options=DYNAMIC, reusable=True)
    assert not np.allclose(dynamic.level_centre(busier.design), dynamic.level_centre(reusable.design))
    assert _Graph.of(busier.model, names).matches(_Graph.of(reusable.model, names))
    # a table that crosses the block's end is another graph
    crossed = EscalationModel(_mixed_panel(as_of=panel.periods[-15]), options=DYNAMIC, reusable=True)
    assert len(crossed.design.periods) == block and not len(crossed.pad_days)
    assert not _Graph.of(crossed.model, names).matches(_Graph.of(reusable.model, names))
    # nothing padded for the changepoint model, or without asking
    assert not len(EscalationModel(panel, options=ModelOptions(changepoints=1), reusable=True).pad_days)
    assert not len(EscalationModel(panel, options=DYNAMIC).pad_days)


def test_derived_values_of_a_padded_fit_are_those_of_the_unpadded_model():
    """A padded fit's result has the data's periods only; its derived values (means and
    log-likelihoods of the observations) are computed by the padded graph all the same."""
    from forecast.models.posterior import _dynamic_draw_level

    panel = _mixed_panel()
    plain = EscalationModel(panel, options=DYNAMIC)
    padded = EscalationModel(panel, options=DYNAMIC, reusable=True)
    names = [name for name in dynamic.POST_HOC_INPUTS if name in plain.model.named_vars]
    draws = pm.draw([plain.model[name] for name in names], draws=6, random_seed=3)
    dims = plain.model.named_vars_to_dims
    posterior = xr.Dataset(
        {
            name: (("chain", "draw", *dims.get(name, ())), value.reshape(2, 3, *value.shape[1:]))
            for name, value in zip(names, draws, strict=True)
        }
    )
    assert posterior.sizes[n.TIME] == len(panel.periods) < padded.model["level"].eval().shape[1]
    # a padded fit's result has no padded period left, the burst's sampler coordinates included
    from tests.fakes import prior_as_posterior

    result = padded.without_padding(prior_as_posterior(padded, draws=3))
    assert {"burst_whitened", "burst_step"} <= set(result.data_vars)
    latent = len(panel.periods) + len(padded.pad_days)
    assert result["burst_step"].sizes[n.TIME] == len(panel.periods)
    assert not [name for name, v in result.data_vars.items() if latent in v.shape]
    assert result.attrs["padded_periods"] == len(padded.pad_days)
    expected, got = _dynamic_draw_level(plain, posterior), _dynamic_draw_level(padded, posterior)
    np.testing.assert_allclose(got.log_mean, expected.log_mean, rtol=1e-12)
    np.testing.assert_allclose(got.loglik, expected.loglik, rtol=1e-12)


def _log_density_and_gradient(graph: pm.Model, *, as_nutpie: bool = False):
    """The compiled graph of ``graph``'s log density and its gradient (``as_nutpie``: rewritten as nutpie does)."""
    import pytensor
    from pytensor.compile.mode import Mode

    logp = graph.logp()
    if as_nutpie:
        logp = pytensor.graph.rewrite_graph(logp, include=["canonicalize", "stabilize"])
    function = pytensor.function(
        graph.value_vars,
        [logp, *pytensor.grad(logp, graph.value_vars)],
        mode=Mode(linker="py", optimizer="fast_run"),
        on_unused_input="ignore",
    )
    return function.maker.fgraph


def test_each_whitened_path_is_factorised_once_in_the_log_density_and_its_gradient():
    """The density and the level (or burst) share one path: one kernel call per whitened variable.

    With the density as the CustomDist's own logp, PyMC re-broadcast its inputs and PyTensor
    could not merge the copies: the shipped data's gradient factorised five paths where two exist.
    """
    model = EscalationModel(_mixed_panel(), options=DYNAMIC).model
    assert {"level_whitened", "level_window_whitened", "burst_whitened"} <= set(model.named_vars)
    kinds = [type(node.op).__name__ for node in _log_density_and_gradient(model).apply_nodes]
    assert kinds.count("WhitenedPath") == 3
    assert kinds.count("WhitenedPathGradient") == 3


def _censored_panel():
    """A front counted day by day and one reported in weekly totals, four of them ``at_least`` (one of 0)."""
    days = pd.date_range("2024-01-01", periods=42, freq="D")
    weeks = days[::7]
    counts = np.concatenate([np.random.default_rng(2).poisson(6.0, size=len(days)), [30, 2, 0, 25, 1, 40]])
    return _panel(
        list(days) + list(weeks),
        ["daily"] * len(days) + ["windows"] * len(weeks),
        counts,
        end_dates=[pd.NaT] * len(days) + list(weeks + pd.Timedelta(days=6)),
        precision=["exact"] * len(days) + ["at_least", "at_least", "at_least", "exact", "at_least", "exact"],
    )


def test_the_sampled_likelihood_is_the_sum_of_the_observations_log_likelihoods():
    """The sampler reads one kernel (count_kernel.py); it is the PyTensor definition, observation by observation.

    With exact counts, at_least totals and an at_least 0 total, the sampled likelihood, the sum
    of the stored ``obs_loglik`` and the sum of ``escalation.observation_loglik`` at the graph's
    own means and dispersions agree at random points, term by term for the last two, and a log
    density with its gradient calls the kernel once (both branches of the survival function are
    checked against the definition in tests/test_count_kernel.py).
    """
    from forecast.models.escalation import DesignData, observation_loglik

    panel = _censored_panel()
    model = EscalationModel(panel, options=DYNAMIC)
    assert model.design.censored.sum() == 4 and (model.design.censored & (model.design.y == 0)).sum() == 1
    graph = model.model
    (potential,) = graph.potentials[-1:]
    assert potential.name == "likelihood"
    design = model.design
    alpha = graph["dispersion"][design.obs_front] * design.obs_days
    definition = observation_loglik(design, DesignData(design), graph["obs_log_mean"][None, :], alpha)[0]
    rng = np.random.default_rng(6)
    for seed in range(3):
        point = graph.initial_point(random_seed=seed)
        point = {k: v + rng.normal(0.0, 0.5, size=np.shape(v)) for k, v in point.items()}
        sampled, stored, defined = _evaluate(model, [potential, graph["obs_loglik"], definition], point)
        assert np.isfinite(sampled)
        assert sampled == pytest.approx(stored.sum(), rel=1e-10)
        np.testing.assert_allclose(stored, defined, rtol=1e-10, atol=1e-12)
    kinds = [type(node.op).__name__ for node in _log_density_and_gradient(graph).apply_nodes]
    assert kinds.count("CountLoglik") == 1


def test_the_log_density_holds_no_strided_constant_so_its_compiled_form_can_be_cached():
    """Numba compiles a non-contiguous constant in as a pointer to this process's memory.

    A fit whose fronts are all centred (the 45-series ACLED panel) then compiled its sampler
    again in every process (20 s), because the cache refuses such code.
    """
    from pytensor.graph.basic import Constant

    starts = pd.date_range("2022-01-01", periods=24, freq="MS")
    counts = np.random.default_rng(1).poisson(300, size=48)
    ends = list(starts + pd.offsets.MonthEnd(0)) * 2
    panel = _panel(list(starts) * 2, ["x"] * 24 + ["y"] * 24, counts, end_dates=ends, freq=n.FREQ_MONTH)
    model = EscalationModel(panel, options=DYNAMIC)
    assert dynamic.layout_of(model.design).centred.all()
    constants = [
        v.data
        for node in _log_density_and_gradient(model.model, as_nutpie=True).apply_nodes
        for v in node.inputs
        if isinstance(v, Constant) and isinstance(v.data, np.ndarray) and v.data.ndim > 1
    ]
    assert constants
    assert all(c.flags.c_contiguous or c.flags.f_contiguous for c in constants)


def test_a_daily_front_where_most_days_have_no_event_has_no_burst():
    """A day's zero says next to nothing about that day's excursion: no burst to identify."""
    panel = daily_panel(fronts=("sparse", "busy"), days=60, rate=(0.4, 6.0))
    design = build_design(panel, None, DYNAMIC)
    burst = dict(zip(design.fronts, dynamic.layout_of(design).burst, strict=True))
    assert burst == {"sparse": False, "busy": True}


def test_a_weekly_table_that_opens_with_a_long_window_still_has_its_level_whitened():
    """One window longer than a period beside a count for every other period keeps the front centred.

    The long window gives no pseudo-observation (its knots get the random walk's precision
    alone) but still enters the likelihood; a front reported mostly in such windows stays
    non-centred.
    """
    weeks = pd.date_range("2024-01-29", periods=12, freq="W-MON")
    opening, opening_end = pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-28")
    rng = np.random.default_rng(3)
    dates = [opening, *weeks, opening, *weeks[::4]]
    end_dates = [opening_end, *[pd.NaT] * len(weeks), opening_end, *(weeks[::4] + pd.Timedelta(days=27))]
    fronts = ["opens_long"] * (len(weeks) + 1) + ["windows"] * (len(weeks[::4]) + 1)
    counts = rng.poisson(40.0, size=len(dates))
    panel = _panel(dates, fronts, counts, end_dates=end_dates, freq=n.FREQ_WEEK)
    model = EscalationModel(panel, options=DYNAMIC)
    assert list(model.design.fronts) == ["opens_long", "windows"]
    np.testing.assert_array_equal(dynamic.layout_of(model.design).centred, [True, False])
    assert {"level_whitened", "level_window_whitened"} <= set(model.model.named_vars)


def test_a_front_reported_in_windows_steps_once_per_window():
    """A window's total depends on one level: its front's knots start at its windows, not every week.

    Windows of 10, 3, 30 and 17 days beside a front counted day by day: the knots start on
    days 0, 13 and 43 (the 3-day window is shorter than a week and shares the first knot), each
    knot's step moves as far as its days, the graph's level is flat across every window, and
    the numpy twin agrees.
    """
    days = pd.date_range("2024-01-01", periods=60, freq="D")
    bounds = [(0, 9), (10, 12), (13, 42), (43, 59)]
    rng = np.random.default_rng(8)
    dates = list(days) + [days[a] for a, _ in bounds]
    end_dates = [pd.NaT] * len(days) + [days[b] for _, b in bounds]
    counts = np.concatenate([rng.poisson(6.0, size=len(days)), [40, 9, 150, 80]])
    panel = _panel(dates, ["daily"] * len(days) + ["windows"] * len(bounds), counts, end_dates=end_dates)
    model = EscalationModel(panel, options=DYNAMIC)
    layout = dynamic.layout_of(model.design)
    np.testing.assert_array_equal(layout.windowed, [False, True])
    np.testing.assert_array_equal(np.flatnonzero(layout.knot_start[1]), [0, 13, 43])
    np.testing.assert_array_equal(np.flatnonzero(layout.knot_start[0]), np.arange(0, 60, 7))
    assert layout.window_knot_capacity == 18  # two a week over 60 days, whatever the windows
    np.testing.assert_array_equal(layout.window_knot_days[0, :4], [13.0, 30.0, 17.0 + 3.0, 0.0])
    graph = model.model
    names = [v.name for v in graph.free_RVs] + ["level", "burst", "sigma_level", "tail_weight", "burst_persistence"]
    names += ["burst_step", "level_step", "level_window_step"]
    values = dict(zip(names, pm.draw([graph[name] for name in names], draws=5, random_seed=4), strict=True))
    for a, b in [(0, 12), (13, 42), (43, 59)]:
        window = values["level"][:, 1, a : b + 1]
        np.testing.assert_allclose(window, window[:, :1] * np.ones_like(window), rtol=0, atol=0)
    assert np.all(values["level"][:, 1, 13] != values["level"][:, 1, 12])
    level, _ = dynamic.latent_paths(
        model.design,
        **{k: values[k] for k in ("initial_level", "burst_persistence", "burst_step")},
        level_step=values["level_step"],
        level_window_step=values["level_window_step"],
    )
    np.testing.assert_allclose(level, values["level"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        values["level"][:, 1, 13] - values["level"][:, 1, 12], values["level_window_step"][:, 0, 0], rtol=1e-9
    )
    # The step into the 30-day window's knot moves sqrt(30) ordinary steps: its density's scale.
    inputs = graph["level_window_whitened"].owner.inputs[2:]
    scale = pm.draw([inputs[1], graph["sigma_level"]], draws=1, random_seed=4)
    np.testing.assert_allclose(scale[0][0, :3], scale[1][1] * np.sqrt([30.0, 20.0, 7.0]), rtol=1e-12)
    # Its pseudo-observations: each window's total in its own knot (the 3-day window shares the first).
    count, seen_days = (v.eval() for v in inputs[4:6])
    np.testing.assert_allclose(count[0, :3], [150.0, 80.0, 0.0])
    np.testing.assert_allclose(seen_days[0, :3], [30.0, 17.0, 0.0])


@pytest.mark.parametrize(("rho", "share"), [(0.0, 1.0 / 7.0), (1.0, 1.0), (0.5, None)])
def test_a_burst_fronts_whitened_level_counts_the_burst_as_noise(rho, share):
    """The level's approximation adds the knot-average burst variance ``c kappa^2`` to the noise, per period.

    ``c`` is the variance of the mean of a week of the AR(1)'s days over its stationary
    variance: 1/7 for independent days, 1 for a burst that holds all week.
    """
    panel = daily_panel(fronts=("busy", "sparse"), days=42, rate=(6.0, 0.4))
    layout = dynamic.layout_of(build_design(panel, None, DYNAMIC))
    np.testing.assert_array_equal(layout.burst, [True, False])
    np.testing.assert_array_equal(layout.centred, [True, True])  # both counted day by day
    alpha, kappa = np.array([2.0, 3.0]), np.array([0.6, 0.6])
    burst = (pt.as_tensor(kappa), pt.as_tensor([rho, rho]))
    seen = dynamic._level_dispersion(layout, pt.as_tensor(alpha), burst).eval()
    if share is None:  # the double sum over a week's pairs of days
        lags = np.abs(np.subtract.outer(np.arange(7), np.arange(7)))
        share = float(np.mean(rho**lags))
    expected_extra = 7 * share * kappa[0] ** 2
    np.testing.assert_allclose(seen, [1.0 / (1.0 / alpha[0] + expected_extra), alpha[1]], rtol=1e-12)


def test_a_windowed_fronts_level_does_not_step_before_its_first_report():
    """Before a windowed front's first report nothing tells its first level from the steps before it: no knots there."""
    days = pd.date_range("2024-01-01", periods=63, freq="D")
    bounds = [(20, 34), (35, 62)]  # reports begin on day 20
    dates = list(days) + [days[a] for a, _ in bounds]
    end_dates = [pd.NaT] * len(days) + [days[b] for _, b in bounds]
    counts = np.concatenate([np.random.default_rng(9).poisson(6.0, size=len(days)), [30, 50]])
    panel = _panel(dates, ["daily"] * len(days) + ["late"] * len(bounds), counts, end_dates=end_dates)
    design = build_design(panel, None, DYNAMIC)
    np.testing.assert_array_equal(dynamic.first_observed_period(design), [0, 20])
    layout = dynamic.layout_of(design)
    np.testing.assert_array_equal(np.flatnonzero(layout.knot_start[1]), [0, 35])  # the first window keeps knot 0
    level = pm.draw(EscalationModel(panel, options=DYNAMIC).model["level"], random_seed=3)
    assert np.all(level[1, :35] == level[1, 0]) and level[1, 35] != level[1, 0]


def test_burst_fronts_sample_their_noise_as_a_split_with_the_same_density(monkeypatch):
    """``burst_noise_split`` changes the sampler's coordinates, not the model.

    The same point in both parameterisations: the split's log density is the per-front offsets'
    plus log |d(offsets)/d(u, w)|, the Jacobian taken here by finite differences of the map.
    """
    monkeypatch.setattr(dynamic, "_splits_by_centre", lambda prior: False)  # the offsets, as the test writes them
    panel = _mixed_panel()
    new = EscalationModel(panel, options=DYNAMIC)
    assert dynamic.NOISE_SPLIT in new.model.named_vars
    monkeypatch.setattr(dynamic, "_noise_split", lambda *args: None)
    old = EscalationModel(panel, options=DYNAMIC)
    assert dynamic.NOISE_SPLIT not in old.model.named_vars
    rng = np.random.default_rng(4)
    old_point = {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in old.model.initial_point().items()}
    mu_d, mu_b = old_point["log_dispersion_mu"], old_point["log_burst_sd_mu"]
    s_d, s_b = 1.0, 0.5  # the default priors' between-front scales
    a = mu_d + s_d * old_point["log_dispersion_offset"][0]  # the daily front: the only one with a burst
    b = mu_b + s_b * old_point["log_burst_sd_offset"][0]
    log_days = 0.0
    u, w = np.logaddexp(2 * b, log_days - a), 2 * b - log_days + a
    new_point = dict(old_point)
    new_point[dynamic.NOISE_SPLIT] = np.array([[u, w]])
    new_point["log_dispersion_offset"] = old_point["log_dispersion_offset"][1:]
    new_point["log_burst_sd_offset"] = old_point["log_burst_sd_offset"][1:]

    def offsets(uw):  # the map (u, w) -> (offset_d, offset_b), written out independently
        a_, b_ = log_days - uw[0] + np.logaddexp(0.0, uw[1]), (uw[0] - np.logaddexp(0.0, -uw[1])) / 2
        return np.array([(a_ - mu_d) / s_d, (b_ - mu_b) / s_b])

    np.testing.assert_allclose(
        offsets([u, w]), [old_point["log_dispersion_offset"][0], old_point["log_burst_sd_offset"][0]]
    )
    h = 1e-6
    jacobian = np.column_stack(
        [(offsets([u + h, w]) - offsets([u - h, w])) / (2 * h), (offsets([u, w + h]) - offsets([u, w - h])) / (2 * h)]
    )
    expected = old.model.compile_logp()(old_point) + np.log(abs(np.linalg.det(jacobian)))
    assert new.model.compile_logp()(new_point) == pytest.approx(expected, rel=1e-9, abs=1e-6)
    # The same model: the derived hyperparameters agree at these points.
    for name in ("log_dispersion", "log_burst_sd", "dispersion", "burst_sd"):
        np.testing.assert_allclose(
            _evaluate(new, new.model[name], new_point), _evaluate(old, old.model[name], old_point), rtol=1e-9
        )


def test_a_single_burst_front_samples_its_noise_as_a_split_with_the_same_density(monkeypatch):
    """One front with a burst gets the split too, its prior the population means' (fixed) one.

    Without it, 360info's Gaza deaths fitted alone failed with 120 divergences
    (benchmarks/results/dynamic/single_burst_front/).  The same point in both coordinates: the
    split's density is the front's own two priors plus log |d(log alpha, log kappa)/d(u, w)| = log 1/2.
    """
    panel = daily_panel(fronts=("a",), rate=(40.0,))
    new = EscalationModel(panel, options=DYNAMIC)
    assert dynamic.NOISE_SPLIT in new.model.named_vars and "log_dispersion_mu" not in new.model.named_vars
    monkeypatch.setattr(dynamic, "_noise_split", lambda *args: None)
    old = EscalationModel(panel, options=DYNAMIC)
    rng = np.random.default_rng(5)
    old_point = {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in old.model.initial_point().items()}
    a, b = float(old_point["log_dispersion_mu"]), float(old_point["log_burst_sd_mu"])
    log_days = 0.0
    new_point = {k: v for k, v in old_point.items() if k not in ("log_dispersion_mu", "log_burst_sd_mu")}
    new_point[dynamic.NOISE_SPLIT] = np.array([[np.logaddexp(2 * b, log_days - a), 2 * b - log_days + a]])
    expected = old.model.compile_logp()(old_point) + np.log(0.5)
    assert new.model.compile_logp()(new_point) == pytest.approx(expected, rel=1e-9, abs=1e-6)
    for name in ("log_dispersion", "log_burst_sd", "dispersion", "burst_sd"):
        np.testing.assert_allclose(
            _evaluate(new, new.model[name], new_point), _evaluate(old, old.model[name], old_point), rtol=1e-9
        )


def test_the_burst_whitens_a_day_with_no_event_at_its_mode_and_the_level_does_not(monkeypatch):
    """A 0 amid some 40 a day: the burst's approximation (its path at whitened 0) sits lower there.

    The burst's steps have a prior centred at 0, so its empty days get the Laplace approximation
    at their mode (:func:`whitened.pseudo_observations`); the level's knots keep the delta method,
    so the level at the same point is unchanged.
    """
    counts = np.random.default_rng(3).poisson(40.0, size=60)
    counts[30] = 0
    panel = _panel(pd.date_range("2024-01-01", periods=60, freq="D"), ["a"] * 60, counts)
    new = EscalationModel(panel, options=DYNAMIC)
    point = {k: np.zeros_like(v) if k.endswith("_whitened") else v for k, v in new.model.initial_point().items()}
    burst, level = _evaluate(new, [new.model["burst"], new.model["level"]], point)
    original = whitened.pseudo_observations
    monkeypatch.setattr(whitened, "pseudo_observations", lambda *args: original(*args[:6]))
    old = EscalationModel(panel, options=DYNAMIC)
    old_burst, old_level = _evaluate(old, [old.model["burst"], old.model["level"]], point)
    assert burst[0, 30] < old_burst[0, 30] - 0.1
    np.testing.assert_allclose(level, old_level, rtol=1e-12)


def test_the_centres_of_dispersion_and_level_scale_sampled_as_a_split_keep_the_same_density(monkeypatch):
    """``level_noise_centre_split`` changes the sampler's coordinates, not the model.

    On a panel without a burst, the two centres ``log_dispersion_centre`` and
    ``log_sigma_level_centre`` are sampled as ``(u, w)``.  At the same point, the log density is
    the two centres' own normal priors plus log |d(centres)/d(u, w)|, taken here by finite
    differences of the map written out again; every derived hyperparameter agrees.
    """
    starts = pd.date_range("2022-01-01", periods=24, freq="MS")
    counts = np.random.default_rng(1).poisson(np.repeat([300, 40, 5], 24))
    ends = np.tile(starts + pd.offsets.MonthEnd(0), 3)
    panel = _panel(np.tile(starts, 3), np.repeat(["x", "y", "z"], 24), counts, end_dates=ends, freq=n.FREQ_MONTH)
    new = EscalationModel(panel, options=DYNAMIC)
    assert dynamic.LEVEL_NOISE_CENTRES in new.model.named_vars
    monkeypatch.setattr(dynamic, "_level_noise_centres", lambda *args: {})
    old = EscalationModel(panel, options=DYNAMIC)
    assert dynamic.LEVEL_NOISE_CENTRES not in old.model.named_vars
    knot_days = dynamic.layout_of(new.design).knot_days[1:]
    log_k = np.log(np.median(knot_days))
    rng = np.random.default_rng(6)
    old_point = {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in old.model.initial_point().items()}
    d, s = float(old_point["log_dispersion_centre"]), float(old_point["log_sigma_level_centre"])
    u, w = np.logaddexp(2 * s, -log_k - d), 2 * s + log_k + d
    new_point = {k: v for k, v in old_point.items() if not k.endswith(("dispersion_centre", "sigma_level_centre"))}
    new_point[dynamic.LEVEL_NOISE_CENTRES] = np.array([u, w])
    assert set(new_point) == set(new.model.initial_point())

    def centres(uw):  # (u, w) -> (d, s): e^u = A + B and e^w = A / B, with A = e^(2s) and B = e^(-d) / K
        b = np.exp(uw[0]) / (1.0 + np.exp(uw[1]))
        a = b * np.exp(uw[1])
        return np.array([-np.log(b) - log_k, np.log(a) / 2])

    np.testing.assert_allclose(centres([u, w]), [d, s], rtol=1e-9)
    h = 1e-6
    jacobian = np.column_stack(
        [(centres([u + h, w]) - centres([u - h, w])) / (2 * h), (centres([u, w + h]) - centres([u, w - h])) / (2 * h)]
    )
    expected = old.model.compile_logp()(old_point) + np.log(abs(np.linalg.det(jacobian)))
    assert new.model.compile_logp()(new_point) == pytest.approx(expected, rel=1e-9, abs=1e-6)
    for name in ("log_dispersion", "log_sigma_level", "log_dispersion_mu", "log_sigma_level_mu", "level"):
        np.testing.assert_allclose(
            _evaluate(new, new.model[name], new_point), _evaluate(old, old.model[name], old_point), rtol=1e-9
        )


def test_pooled_hyperparameters_sampled_as_centre_and_spread_keep_the_same_prior(monkeypatch):
    """``<name>_centre``, ``<name>_spread`` and ``<name>_mean_split`` change the sampler's coordinates, not the model.

    The map from the per-front offsets and their population mean to the new coordinates is linear,
    so the two log densities differ by a constant (the map's log Jacobian) at every point.
    """
    panel = daily_panel(fronts=("a", "b", "c"), rate=(3.0, 40.0, 8.0))
    new = EscalationModel(panel, options=DYNAMIC)
    assert new.model is not None  # built now, before the patch below
    monkeypatch.setattr(dynamic, "_splits_by_centre", lambda prior: False)
    old = EscalationModel(panel, options=DYNAMIC)
    priors = new.priors
    split = ("log_sigma_level", "logit_tail_weight", "logit_burst_persistence")
    for name in split:
        assert f"{name}_centre" in new.model.named_vars and f"{name}_offset" in old.model.named_vars
        assert f"{name}_centre" not in old.model.named_vars
    fronts = len(panel.fronts)
    old_logp, new_logp = old.model.compile_logp(), new.model.compile_logp()
    differences = []
    for seed in (1, 2, 3):
        rng = np.random.default_rng(seed)
        old_point = {k: v + rng.normal(0.0, 0.5, np.shape(v)) for k, v in old.model.initial_point().items()}
        new_point = {k: v for k, v in old_point.items() if k in new.model.initial_point()}
        for name in split:
            prior = priors[name]
            a, b = prior.parameters["mu"].parameters["mu"], prior.parameters["mu"].parameters["sigma"]
            s = prior.parameters["sigma"]
            mu, z = old_point[f"{name}_mu"], old_point[f"{name}_offset"]
            centre = mu + s * z.mean()
            variance = b**2 + s**2 / fronts
            mean_split = (z.mean() - (s / fronts) / variance * (centre - a)) / np.sqrt(b**2 / (fronts * variance))
            spread_rv = new.model[f"{name}_spread"]
            value = new.model.rvs_to_values[spread_rv]
            new_point[value.name] = new.model.rvs_to_transforms[spread_rv].forward(pt.as_tensor(z - z.mean())).eval()
            new_point[f"{name}_centre"] = np.asarray(centre)
            new_point[f"{name}_mean_split"] = np.asarray(mean_split)
        assert set(new_point) == set(new.model.initial_point())
        for name in split:  # the same hyperparameters, population means and offsets at the two points
            for derived in (name, f"{name}_mu", f"{name}_offset"):
                np.testing.assert_allclose(
                    _evaluate(new, new.model[derived], new_point),
                    _evaluate(old, old.model[derived], old_point),
                    rtol=1e-9,
                )
        differences.append(new_logp(new_point) - old_logp(old_point))
    assert np.ptp(differences) < 1e-8, differences


def test_pooled_effects_sampled_as_centre_and_spread_keep_the_same_prior(monkeypatch):
    """``effect_centre`` and ``effect_mean_split`` change the sampler's coordinates, not the model.

    At old coordinates ``(m, r, s)`` (kind means, pair offsets, spread) and the new ones they map
    to (``c = m + s mean(r)`` per kind, the same ``r``, ``u`` the mean's share), the effects and
    their means are equal, and the two log densities differ by exactly what the change of
    variables ``(m, mean(r)) -> (c, u)`` gives: ``log N(mean(r); 0, 1/n) - log |J|`` per kind,
    ``|J| = sqrt(n (b^2 + s^2 / n)) / b``.
    """
    from scipy import stats

    from forecast.data.interventions import InterventionTable
    from forecast.models import escalation

    panel = daily_panel(fronts=("a", "b", "c"), rate=(3.0, 40.0, 8.0))
    frame = pd.DataFrame(
        {
            n.DATE: pd.to_datetime(["2024-01-20", "2024-02-05", "2024-01-25"]),
            n.END_DATE: pd.to_datetime([None, None, "2024-02-10"]),
            n.KIND: ["strike", "strike", "truce"],
            n.SHAPE: [n.SHAPE_PULSE, n.SHAPE_PULSE, n.SHAPE_WINDOW],
            n.FRONT: [(), ("a",), ("b",)],
            n.LABEL: ["s1", "s2", "t1"],
            n.SOURCE: ["test"] * 3,
            n.ORIGIN_FILE: ["<test>"] * 3,
            n.ORIGIN_LINE: [2, 3, 4],
        }
    )
    interventions = InterventionTable(frame, ("<test>",))
    new = EscalationModel(panel, interventions, options=DYNAMIC)
    assert new.model is not None  # built now, before the patch below
    monkeypatch.setattr(escalation, "_fixed_normal", lambda prior: False)
    old = EscalationModel(panel, interventions, options=DYNAMIC)
    assert {"effect_centre", "effect_mean_split"} <= set(new.model.named_vars)
    assert "effect_centre" not in old.model.named_vars
    design = new.design
    kind_of_pair = design.intervention_kind[design.pair_intervention]
    counts = np.bincount(kind_of_pair, minlength=len(design.kinds))
    assert sorted(counts) == [1, 4]  # a strike on 3 fronts and one on 1; a truce on one front
    prior = new.priors["effect_mean"]
    a, b = prior.parameters["mu"], prior.parameters["sigma"]
    old_logp, new_logp = old.model.compile_logp(), new.model.compile_logp()
    for seed in (1, 2, 3):
        rng = np.random.default_rng(seed)
        old_point = {k: v + rng.normal(0.0, 0.5, np.shape(v)) for k, v in old.model.initial_point().items()}
        m, r, s = old_point["effect_mean"], old_point["effect_raw"], np.exp(old_point["effect_sd_log__"])
        r_bar = np.bincount(kind_of_pair, weights=r) / counts
        centre = m + s * r_bar
        weight = b**2 / (b**2 + s**2 / counts)
        split = (m - a - weight * (centre - a)) / np.sqrt(weight * s**2 / counts)
        new_point = {k: v for k, v in old_point.items() if k != "effect_mean"}
        new_point |= {"effect_centre": centre, "effect_mean_split": split}
        assert set(new_point) == set(new.model.initial_point())
        for name in ("effect", "effect_mean"):
            np.testing.assert_allclose(
                _evaluate(new, new.model[name], new_point), _evaluate(old, old.model[name], old_point), rtol=1e-9
            )
        jacobian = np.sqrt(counts * (b**2 + s**2 / counts)) / b
        expected = np.sum(stats.norm.logpdf(r_bar, 0.0, 1.0 / np.sqrt(counts)) - np.log(jacobian))
        np.testing.assert_allclose(new_logp(new_point) - old_logp(old_point), expected, atol=1e-8)


@pytest.mark.parametrize("mode", [None, "NUMBA"])
def test_the_observations_recomputed_from_the_stored_paths_are_the_graphs_own(mode):
    """After a fit, ``obs_log_mean`` and ``obs_loglik`` are computed from the stored level, burst,
    effects, half-lives, season and dispersion (the graph cut there), not from every free variable.

    On a panel with every part those feed (a burst front counted day by day, weekly window totals
    with ``at_least`` totals and an ``at_least 0``, a pulse and a window, a weekly season) they
    equal the values the whole graph draws jointly with those inputs.  A cut that misses an input
    is refused: compiled, it would draw that input's random variables afresh.
    """
    from forecast.data.interventions import InterventionTable
    from forecast.models import posterior as draw_level_module

    panel = _censored_panel()
    frame = pd.DataFrame(
        {
            n.DATE: pd.to_datetime(["2024-01-10", "2024-01-20"]),
            n.END_DATE: pd.to_datetime([None, "2024-01-30"]),
            n.KIND: ["strike", "truce"],
            n.SHAPE: [n.SHAPE_PULSE, n.SHAPE_WINDOW],
            n.FRONT: [(), ("daily",)],
            n.LABEL: ["s1", "t1"],
            n.SOURCE: ["test"] * 2,
            n.ORIGIN_FILE: ["<test>"] * 2,
            n.ORIGIN_LINE: [2, 3],
        }
    )
    options = ModelOptions(family="dynamic", changepoints=0, seasonality=True)
    model = EscalationModel(panel, InterventionTable(frame, ("<test>",)), options=options)
    graph = model.model
    given = [name for name in dynamic.POST_HOC_INPUTS if name in graph.named_vars]
    assert given == list(dynamic.POST_HOC_INPUTS)  # every input the cut knows is in this graph
    assert dynamic.layout_of(model.design).any_burst
    names = list(dynamic.POST_HOC_VARIABLES)
    drawn = pm.draw([graph[name] for name in given + names], draws=6, random_seed=7)
    posterior = xr.Dataset(
        {
            name: (("chain", "draw", *graph.named_vars_to_dims.get(name, ())), values.reshape(2, 3, *values.shape[1:]))
            for name, values in zip(given + names, drawn, strict=True)
        },
        coords={k: list(v) for k, v in graph.coords.items()},
    )
    assert np.isfinite(posterior["obs_loglik"]).all()
    recomputed = model.derived(posterior[given], names, mode=mode, given=given)
    for name in names:
        np.testing.assert_allclose(recomputed[name].to_numpy(), posterior[name].to_numpy(), rtol=1e-9, atol=1e-9)
    # What the checks after a fit call: the same values.
    posterior.attrs["inference_library"] = "nutpie" if mode == "NUMBA" else "pymc"
    levels = draw_level_module.draw_level(model, posterior[given], random_seed=1)
    np.testing.assert_allclose(levels.loglik, posterior["obs_loglik"].to_numpy(), rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match=r"still depend on \[.*'burst_whitened'\]"):
        model.derived(posterior[given], names, mode=mode, given=[name for name in given if name != "burst"])


@pytest.mark.parametrize(("family", "low_rank"), [("dynamic", False), ("changepoint", True)])
def test_each_family_asks_nutpie_for_its_own_mass_matrix(monkeypatch, family, low_rank):
    """The dynamic model's centred-and-spread hyperparameters leave nothing for nutpie's low-rank
    correction to learn, so it samples with a diagonal matrix; the changepoint model keeps the
    low-rank one for its baselines against their jumps.  The fit records which it used."""
    import nutpie

    import forecast.models.model as model_module

    asked = {}

    def fake_sample(compiled, **kwargs):
        asked.update(kwargs)
        return az.InferenceData(posterior=xr.Dataset({"x": (("chain", "draw"), np.zeros((2, 3)))}))

    monkeypatch.setattr(model_module, "compile_nutpie_model", lambda graph, var_names: object())
    monkeypatch.setattr(nutpie, "sample", fake_sample)
    options = DYNAMIC if family == "dynamic" else ModelOptions(changepoints=1)
    model = EscalationModel(daily_panel(days=30), None, options=options)
    result = model.fit(model_module.SamplerSettings(draws=3, tune=3, random_seed=1, progressbar=False))
    assert asked["low_rank_modified_mass_matrix"] is low_rank
    expected = "low-rank modified" if low_rank else "diagonal"
    assert result.idata.posterior.attrs["mass_matrix"] == expected

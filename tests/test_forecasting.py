"""Forecasts from known (fake) posteriors: means, carried-forward shapes and scenarios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast import names as n
from forecast.data.events import EventTable, make_event_frame
from forecast.data.interventions import read_interventions_csv
from forecast.data.panel import build_panel
from forecast.errors import ForecastError
from forecast.forecasting.counts import ScenarioIntervention, forecast_counts
from forecast.models.design import ModelOptions
from forecast.models.model import EscalationModel
from tests.fakes import two_chain_posterior


def small_panel():
    days = pd.date_range("2024-01-01", periods=60, freq="D")
    frame = make_event_frame(
        dates=pd.Series(np.repeat(days, 2)),
        end_dates=pd.Series([pd.NaT] * 120),
        fronts=pd.Series(["a", "b"] * 60),
        counts=pd.Series(np.ones(120, dtype=np.int64)),
        precision=pd.Series(["exact"] * 120),
        source=pd.Series([""] * 120),
        file="<test>",
        lines=np.arange(2, 122),
    )
    return build_panel(EventTable(frame=frame, files=("<test>",)))


@pytest.fixture
def interventions(write_csv):
    return read_interventions_csv(
        write_csv(
            "date,end_date,kind,shape,front,label\n"
            "2024-02-25,,strike,pulse,a,strike\n"
            "2024-02-20,2024-03-05,truce,window,,truce\n"
        )
    )


def test_mean_forecast_equals_the_known_rate_and_shapes_carry_forward(interventions):
    model = EscalationModel(small_panel(), interventions, options=ModelOptions(changepoints=1))
    coords = {
        n.FRONT: ["a", "b"],
        n.CHANGEPOINT: [0],
        n.INTERVENTION: ["strike", "truce"],
        "pulse": ["strike"],
        "kind": ["strike", "truce"],
    }
    posterior = two_chain_posterior(
        {
            "baseline": ((n.FRONT,), np.log([2.0, 5.0])),
            "jump": ((n.FRONT, n.CHANGEPOINT), np.log([[1.5], [1.0]])),
            "effect": ((n.FRONT, n.INTERVENTION), np.array([[np.log(4.0), np.log(0.5)], [0.0, np.log(0.5)]])),
            "half_life": (("pulse",), np.array([3.0])),
            "dispersion": ((n.FRONT,), np.array([1e6, 1e6])),
        },
        draws=200,
        coords=coords,
    )
    result = forecast_counts(model, posterior, horizon_days=10, random_seed=1)
    rate = result["rate"].isel(chain=0, draw=0)
    days = result["date"].to_numpy()
    # Front a on 2024-03-01 (day 60): pulse from 2024-02-25 (5 days ago, half-life 3), truce on.
    pulse_now = 2 ** (-5 / 3)
    expected_a = 2.0 * 1.5 * np.exp(np.log(4.0) * pulse_now) * 0.5
    assert days[0] == np.datetime64("2024-03-01")
    assert rate.sel(front="a").to_numpy()[0] == pytest.approx(expected_a)
    # The truce ends on 2024-03-05: from 2024-03-06 on front b is back to 5 a day.
    assert rate.sel(front="b", date="2024-03-05").item() == pytest.approx(2.5)
    assert rate.sel(front="b", date="2024-03-06").item() == pytest.approx(5.0)
    counts = result["counts"].sel(front="b", date="2024-03-08").to_numpy()
    assert counts.mean() == pytest.approx(5.0, abs=4 * np.sqrt(5.0 / counts.size))


def test_scenario_draws_its_effect_from_the_kind_population(interventions):
    model = EscalationModel(small_panel(), interventions, options=ModelOptions(changepoints=0))
    coords = {
        n.FRONT: ["a", "b"],
        n.INTERVENTION: ["strike", "truce"],
        "pulse": ["strike"],
        "kind": ["strike", "truce"],
    }
    posterior = two_chain_posterior(
        {
            "baseline": ((n.FRONT,), np.log([2.0, 2.0])),
            "effect": ((n.FRONT, n.INTERVENTION), np.zeros((2, 2))),
            "half_life": (("pulse",), np.array([3.0])),
            "effect_mean": (("kind",), np.array([0.0, np.log(0.25)])),
            "effect_sd": ((), np.array(1e-9)),
            "half_life_log_mean": ((), np.array(np.log(3.0))),
            "half_life_log_sd": ((), np.array(1e-9)),
            "dispersion": ((n.FRONT,), np.array([10.0, 10.0])),
        },
        draws=50,
        coords=coords,
    )
    truce = ScenarioIntervention(
        kind="truce", shape="window", start=pd.Timestamp("2024-03-03"), end=pd.Timestamp("2024-03-04"), fronts=("b",)
    )
    result = forecast_counts(model, posterior, horizon_days=6, random_seed=2, scenario=(truce,))
    rate = result["rate"].isel(chain=0, draw=0)
    assert rate.sel(front="b", date="2024-03-03").item() == pytest.approx(0.5)
    assert rate.sel(front="a", date="2024-03-03").item() == pytest.approx(2.0)
    assert rate.sel(front="b", date="2024-03-05").item() == pytest.approx(2.0)
    with pytest.raises(ForecastError, match="not estimated"):
        forecast_counts(
            model,
            posterior,
            horizon_days=3,
            random_seed=2,
            scenario=(ScenarioIntervention(kind="law", start=pd.Timestamp("2024-03-02")),),
        )


def test_placeholder_interventions_are_zero_over_the_data_and_left_out_of_forecasts(write_csv):
    table = read_interventions_csv(
        write_csv(
            "date,end_date,kind,shape,front,label\n"
            "2024-02-20,2024-03-05,truce,window,,truce\n"
            "2024-03-03,,strike,pulse,a,later strike\n"
            "2024-03-20,,strike,step,,too late\n"
        )
    )
    until = pd.Timestamp("2024-03-10")
    plain = EscalationModel(small_panel(), table, options=ModelOptions(changepoints=0))
    model = EscalationModel(small_panel(), table, options=ModelOptions(changepoints=0), placeholders_until=until)
    assert plain.design.labels == ["truce"]
    assert model.design.labels == ["truce", "later strike"]  # the step starts after `until`
    assert model.design.intervention_known.tolist() == [True, False]
    assert not model.design.fixed_shapes_day[1].any()
    coords = {n.FRONT: ["a", "b"], n.INTERVENTION: ["truce", "later strike"], "pulse": ["later strike"]}
    posterior = two_chain_posterior(
        {
            "baseline": ((n.FRONT,), np.log([2.0, 5.0])),
            # a placeholder's effect is a prior draw; it must not reach the forecast
            "effect": ((n.FRONT, n.INTERVENTION), np.array([[np.log(0.5), 3.0], [np.log(0.5), 0.0]])),
            "half_life": (("pulse",), np.array([30.0])),
            "dispersion": ((n.FRONT,), np.array([1e6, 1e6])),
        },
        draws=50,
        coords=coords,
    )
    rate = forecast_counts(model, posterior, horizon_days=10, random_seed=1)["rate"]
    expected = forecast_counts(
        plain,
        posterior.isel({n.INTERVENTION: [0]}).drop_vars("half_life"),
        horizon_days=10,
        random_seed=1,
    )["rate"]
    np.testing.assert_allclose(rate.to_numpy(), expected.to_numpy())
    assert expected.sel({n.FRONT: "a"}).isel(chain=0, draw=0).to_numpy()[0] == pytest.approx(1.0)


def test_daily_forecast_draws_sum_to_the_likelihoods_total_distribution():
    """One definition of a multi-day total: seven daily draws sum to NB(7 x rate, 7 x alpha).

    At 5 a day and alpha 1 the week's total has sd 14.5 (NB(35, 1), the old likelihood's
    reading, has 35.5); the likelihood, backtest scoring and p_exceed all use the same one.
    """
    from scipy import stats

    from forecast.forecasting.counts import _draw_counts
    from forecast.models.escalation import total_dispersion

    rng = np.random.default_rng(0)
    rate = np.full((200_000, 7), 5.0)
    weekly = _draw_counts(rate, np.ones_like(rate), rng).sum(axis=1)
    alpha = total_dispersion(1.0, 7)
    total = stats.nbinom(alpha, alpha / (alpha + 35.0))
    assert abs(weekly.std() - total.std()) < 0.1
    assert total.std() == pytest.approx(14.49, abs=0.01)
    for q in (0.05, 0.5, 0.9, 0.99):
        assert abs(np.quantile(weekly, q) - total.ppf(q)) <= 1

"""Count axes switch to log(1 + y) when one value dwarfs the rest, and only then (no sampling)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from forecast.plots.checks import COUNT_LABEL, plot_predictive_bands
from forecast.plots.report import figure_png, plot_fan_chart
from forecast.plots.scales import LOG1P_AXIS_NOTE, needs_log1p_axis

UNIT = "events per day"


def fan(observed: np.ndarray, seed: int = 0):
    rng = np.random.default_rng(seed)
    days = pd.date_range("2023-09-01", periods=observed.size)
    return plot_fan_chart(
        "gaza",
        observed_dates=days,
        observed_values=observed,
        forecast_dates=pd.date_range(days[-1] + pd.Timedelta(days=1), periods=28),
        forecast_draws=rng.poisson(12, (400, 28)),
        unit=UNIT,
        as_of=days[-1],
    )


def spiky_history(seed: int = 0) -> np.ndarray:
    """Tens a day, some days with none, and one day of 1,640 (Gaza on 7 October 2023)."""
    observed = np.random.default_rng(seed).poisson(15, 120).astype(float)
    observed[::9] = 0.0
    observed[36] = 1640.0
    return observed


def test_a_fan_chart_with_one_huge_day_gets_a_log1p_axis_with_real_counts_as_ticks():
    figure = fan(spiky_history())
    ax = figure.axes[0]
    assert ax.get_yscale() == "function"
    assert ax.get_ylabel() == f"{UNIT} ({LOG1P_AXIS_NOTE})"
    ticks = list(ax.get_yticks())
    assert ticks[:5] == [0, 1, 3, 10, 30] and 1000 in ticks
    assert max(ticks) <= ax.get_ylim()[1]
    assert "1,000" in [label.get_text() for label in ax.get_yticklabels()]
    # the bulk is no longer flattened: 15 a day sits above a third of the height (log1p(15)/log1p(1837))
    bottom, top = ax.transData.transform([(0, 0), (0, 15)])[:, 1]
    full = ax.transAxes.transform((0, 1))[1] - ax.transAxes.transform((0, 0))[1]
    assert (top - bottom) / full > 0.33
    # zero counts stay on the chart (log1p(0) = 0) and the figure renders
    observed_line = next(line for line in ax.get_lines() if line.get_label() == "observed")
    assert 0.0 in observed_line.get_ydata()
    assert np.isfinite(ax.transData.transform((0, 0))).all()
    assert figure_png(figure)[:4] == b"\x89PNG"


def test_an_ordinary_fan_chart_keeps_a_linear_axis():
    observed = np.random.default_rng(1).poisson(15, 120).astype(float)
    observed[40] = 60.0  # a busy day, but four times the usual: no reason to transform
    ax = fan(observed).axes[0]
    assert ax.get_yscale() == "linear"
    assert ax.get_ylabel() == UNIT
    assert ax.get_ylim()[0] == 0.0


def test_predictive_bands_transform_only_the_panel_with_the_spike():
    rng = np.random.default_rng(2)
    n = 90
    days = np.tile(pd.date_range("2023-09-01", periods=n).to_numpy(), 2)
    groups = ["gaza"] * n + ["lebanon"] * n
    observed = rng.poisson(15, 2 * n).astype(float)
    observed[36] = 1640.0
    replicated = rng.poisson(15, (2, 100, 2 * n))
    figure = plot_predictive_bands(days, observed, replicated, groups)
    spiky, ordinary = figure.axes[:2]
    assert spiky.get_title(loc="left") == "gaza" and spiky.get_yscale() == "function"
    assert spiky.get_ylabel() == f"{COUNT_LABEL} ({LOG1P_AXIS_NOTE})"
    assert ordinary.get_yscale() == "linear" and ordinary.get_ylabel() == COUNT_LABEL
    assert figure_png(figure)[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([np.r_[np.full(99, 5.0), 51.0]], True),  # max just above 10 x the bulk (5)
        ([np.r_[np.full(99, 5.0), 50.0]], False),  # exactly 10 x: stays linear
        ([np.r_[np.zeros(98), 3.0, 9.0]], False),  # mostly zeros: the bulk counts as 1
        ([np.r_[np.zeros(98), 3.0, 11.0]], True),
        ([np.full(40, 5.0), np.array([[5.0, 6.0], [np.nan, 400.0]])], True),  # pooled over arrays, NaN ignored
        ([], False),
        ([np.array([np.nan])], False),
    ],
)
def test_the_rule_is_the_largest_value_against_ten_times_the_95th_percentile(values, expected):
    assert needs_log1p_axis(values) is expected


def test_the_level_posterior_is_drawn_on_a_log_axis_with_its_band_and_shifts():
    from forecast.plots.report import plot_level_posterior

    rng = np.random.default_rng(3)
    weeks = pd.date_range("2024-01-01", periods=30, freq="W-MON")
    level = np.log(np.r_[np.full(15, 2.0), np.full(15, 40.0)])  # a twentyfold rise in week 15
    draws = np.exp(level + rng.normal(0.0, 0.1, (500, 30)))
    figure = plot_level_posterior({"gaza": (weeks, draws, [weeks[15]]), "iraq": (weeks, draws / 10, [])})
    gaza, iraq = figure.axes
    assert gaza.get_yscale() == "log" and gaza.get_title(loc="left") == "gaza"
    (median,) = [line for line in gaza.get_lines() if line.get_label() == "median"]
    assert np.allclose(median.get_ydata()[[0, -1]], [2.0, 40.0], rtol=0.05)
    shifts = [line for line in gaza.get_lines() if line.get_linestyle() == ":"]
    assert len(shifts) == 1 and pd.Timestamp(shifts[0].get_xdata()[0]) == weeks[15]
    assert not [line for line in iraq.get_lines() if line.get_linestyle() == ":"]
    assert figure_png(figure).startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="gaza: 29 level periods for 30 dates"):
        plot_level_posterior({"gaza": (weeks, draws[:, 1:], [])})
    with pytest.raises(ValueError, match="finite and positive"):
        plot_level_posterior({"gaza": (weeks, np.zeros((5, 30)), [])})

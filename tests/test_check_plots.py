"""Figures of posterior predictive checks: they draw, are labelled and save to PNG."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # before pyplot; the plot module itself never picks a backend

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from forecast.checks.predictive import randomized_pit  # noqa: E402
from forecast.plots.checks import (  # noqa: E402
    COUNT_LABEL,
    plot_pit_histogram,
    plot_predictive_bands,
    plot_rootogram,
)


@pytest.fixture
def figures():
    made: list[Figure] = []
    yield made
    for figure in made:
        plt.close(figure)


def panel_data(seed: int = 0, zeros: bool = False):
    rng = np.random.default_rng(seed)
    weeks = pd.date_range("2024-01-01", periods=30, freq="W-MON")
    dates = np.concatenate([weeks, weeks])
    groups = ["north"] * 30 + ["south"] * 30
    mu = np.concatenate([np.linspace(1, 10, 30), np.full(30, 4.0)])
    if zeros:
        mu = np.zeros_like(mu)
    observed = rng.poisson(mu)
    replicated = rng.poisson(mu, size=(2, 100, mu.size))
    return dates, observed, replicated, groups


def saves_png(figure: Figure, path) -> None:
    figure.savefig(path, dpi=60)
    assert path.is_file() and path.stat().st_size > 0


def test_predictive_bands_one_labelled_panel_per_group(tmp_path, figures):
    dates, observed, replicated, groups = panel_data()
    figure = plot_predictive_bands(dates, observed, replicated, groups, title="Weekly events")
    figures.append(figure)
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 2
    assert [ax.get_title(loc="left") for ax in figure.axes] == ["north", "south"]
    for ax in figure.axes:
        assert ax.get_ylabel() == COUNT_LABEL
        assert "date" in ax.get_xlabel()
        assert len(ax.collections) >= 2  # the 50% and 90% bands
    saves_png(figure, tmp_path / "bands.png")


def test_predictive_bands_with_window_totals_and_all_zero_data(tmp_path, figures):
    dates, observed, replicated, groups = panel_data(zeros=True)
    window = np.zeros(observed.size, dtype=bool)
    window[[5, 40]] = True
    figure = plot_predictive_bands(dates, observed, replicated, groups, window=window)
    figures.append(figure)
    assert len(figure.axes) == 2
    for ax in figure.axes:
        assert ax.get_ylim()[1] > 0
    saves_png(figure, tmp_path / "bands_zero.png")


def test_predictive_bands_without_observations(tmp_path, figures):
    figure = plot_predictive_bands(np.array([], dtype="datetime64[ns]"), np.array([]), np.zeros((2, 5, 0)), [])
    figures.append(figure)
    assert len(figure.axes) == 1
    assert figure.axes[0].get_ylabel() == COUNT_LABEL
    saves_png(figure, tmp_path / "bands_empty.png")


def test_predictive_bands_single_observation_group(tmp_path, figures):
    figure = plot_predictive_bands(pd.to_datetime(["2024-03-04"]), np.array([2]), np.ones((1, 10, 1)), ["east"])
    figures.append(figure)
    assert len(figure.axes) == 1
    saves_png(figure, tmp_path / "bands_single.png")


def test_predictive_bands_reject_mismatched_inputs(figures):
    dates, observed, replicated, groups = panel_data()
    with pytest.raises(ValueError, match="groups"):
        plot_predictive_bands(dates, observed, replicated, groups[:-1])


def test_pit_histogram(tmp_path, figures):
    rng = np.random.default_rng(1)
    mu = rng.uniform(1, 20, size=300)
    pit = randomized_pit(rng.poisson(mu), rng.poisson(mu, size=(2, 200, mu.size)), rng)
    figure = plot_pit_histogram(pit, bins=10)
    figures.append(figure)
    assert len(figure.axes) == 1
    ax = figure.axes[0]
    assert ax.get_xlabel() == "PIT value" and ax.get_ylabel() == "number of observations"
    assert len(ax.patches) >= 10  # the bars (and the band)
    saves_png(figure, tmp_path / "pit.png")


def test_pit_histogram_empty_and_invalid(tmp_path, figures):
    figure = plot_pit_histogram(np.array([]))
    figures.append(figure)
    assert len(figure.axes) == 1
    saves_png(figure, tmp_path / "pit_empty.png")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plot_pit_histogram(np.array([0.2, 1.5]))


def test_rootogram(tmp_path, figures):
    rng = np.random.default_rng(2)
    observed = rng.negative_binomial(2, 0.3, size=200)
    replicated = rng.poisson(observed.mean(), size=(2, 100, 200))
    figure = plot_rootogram(observed, replicated, max_count=15)
    figures.append(figure)
    assert len(figure.axes) == 1
    ax = figure.axes[0]
    assert ax.get_xlabel().startswith(COUNT_LABEL) and "15 or more" in ax.get_xlabel()
    assert ax.get_ylabel() == "sqrt(frequency)"
    assert len(ax.patches) == 16  # one hanging bar per count 0..15
    saves_png(figure, tmp_path / "rootogram.png")


def test_rootogram_all_zero_and_empty(tmp_path, figures):
    zero = plot_rootogram(np.zeros(20, dtype=int), np.zeros((2, 50, 20), dtype=int))
    empty = plot_rootogram(np.array([], dtype=int), np.zeros((2, 50, 0), dtype=int))
    figures.extend([zero, empty])
    assert len(zero.axes[0].patches) == 1
    saves_png(zero, tmp_path / "rootogram_zero.png")
    saves_png(empty, tmp_path / "rootogram_empty.png")
    with pytest.raises(ValueError, match="whole counts"):
        plot_rootogram(np.array([1.5, 2.0]), np.ones((1, 3, 2)))

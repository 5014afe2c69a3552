"""Prior predictive draws and the exploring figures of the notebooks (no MCMC)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import xarray as xr

from forecast import names as n
from forecast.checks.prior_predictive import SUMMARY_COLUMNS, prior_predictive_counts, prior_predictive_summary
from forecast.jobs.data import DataRequest, load_data
from forecast.models.model import EscalationModel
from forecast.models.summary import summarise
from forecast.plots.explore import (
    effect_rows,
    plot_changepoint_dates,
    plot_fronts,
    plot_intervention_summary,
    plot_joint_effects,
    plot_prior_predictive,
    predictive_figures,
)
from tests.fakes import prior_as_posterior


@pytest.fixture(scope="module")
def shipped():
    return load_data(DataRequest())


@pytest.fixture(scope="module")
def model(shipped):
    return EscalationModel(shipped.panel, shipped.interventions)


@pytest.fixture(scope="module")
def prior_counts(model):
    return prior_predictive_counts(model, draws=30, random_seed=4)


def test_prior_predictive_counts_cover_every_observation(model, prior_counts):
    assert prior_counts.shape == (1, 30, model.design.n_obs)
    assert np.issubdtype(prior_counts.dtype, np.integer) and (prior_counts >= 0).all()


def test_prior_predictive_is_reproducible(model, prior_counts):
    np.testing.assert_array_equal(prior_predictive_counts(model, draws=30, random_seed=4), prior_counts)


def test_prior_predictive_summary_compares_daily_counts(model, prior_counts):
    table = prior_predictive_summary(model, prior_counts)
    daily_fronts = sorted(model.design.fronts[f] for f in set(model.design.obs_front[model.design.period_obs]))
    assert list(table.columns) == SUMMARY_COLUMNS
    assert sorted(table["front"]) == daily_fronts
    gaza = table.set_index("front").loc["gaza"]
    assert gaza["observed_max"] == 1640.0  # 2023-10-07, counted per day
    assert gaza["prior_median"] <= gaza["prior_q90"] <= gaza["prior_q99"]


def test_prior_predictive_summary_refuses_the_wrong_observations(model, prior_counts):
    with pytest.raises(ValueError, match="observations"):
        prior_predictive_summary(model, prior_counts[..., :-1])


def test_plot_fronts_has_one_labelled_axes_per_front(shipped):
    figure = plot_fronts(shipped.panel, shipped.interventions)
    axes = figure.axes
    assert [ax.get_title(loc="left") for ax in axes] == list(shipped.panel.fronts)
    # Gaza's 7 October 2023 (1,640 alerts) dwarfs every other day: only its axis is log(1 + y)
    labels = dict(zip(shipped.panel.fronts, (ax.get_ylabel() for ax in axes), strict=True))
    assert labels.pop("gaza") == "events per day (log(1 + value) axis)"
    assert all(label == "events per day" for label in labels.values()), labels
    assert axes[-1].get_xlabel() == "date"
    # iraq_syria carries the KH suspension (a step) and the strikes (pulses): both are marked.
    legend = [t.get_text() for t in axes[list(shipped.panel.fronts).index("iraq_syria")].get_legend().get_texts()]
    assert "intervention (step)" in legend and "intervention (pulse)" in legend


def test_plot_prior_predictive_draws_the_daily_fronts(model, prior_counts):
    figure = plot_prior_predictive(model.design, prior_counts)
    assert [ax.get_title(loc="left") for ax in figure.axes] == ["gaza", "lebanon_drones", "lebanon_rockets"]


def test_posterior_figures_from_fake_draws(model):
    fake = prior_as_posterior(model, draws=10, seed=5)
    probabilities = np.full((1, len(model.design.fronts), model.design.position.shape[1]), 0.0)
    probabilities[..., 10] = 1.0
    assert len(plot_changepoint_dates(model.design, probabilities).axes) == len(model.design.fronts)
    summary = summarise(model, fake)
    rows = effect_rows(summary)
    assert len(rows) == sum(len(front["interventions"]) for front in summary["fronts"])
    assert len(plot_intervention_summary(summary).axes) == 2
    replicated = np.ones((2, 10, model.design.n_obs), dtype=np.int64)
    figures = predictive_figures(model.design, replicated, random_seed=1)
    assert set(figures) == {"predictive_bands", "pit_histogram", "rootogram"}


def test_plot_joint_effects_reports_the_exact_correlation_and_combination():
    first = np.array([[-1.0, -0.5, 0.0, 0.5]])
    second = -first + np.array([[0.1, -0.1, 0.1, -0.1]])
    effect = np.stack([first, second], axis=-1)[:, :, None, :]  # (chain, draw, front, intervention)
    posterior = xr.Dataset(
        {"effect": (("chain", "draw", n.FRONT, n.INTERVENTION), effect)},
        coords={n.FRONT: ["iraq_syria"], n.INTERVENTION: ["a", "b"]},
    )
    figure = plot_joint_effects(posterior, "iraq_syria", "a", "b")
    correlation = np.corrcoef(first.ravel(), second.ravel())[0, 1]
    assert f"{correlation:.2f}" in figure.axes[0].get_title(loc="left")
    assert figure.axes[1].get_title(loc="left") == "P(combined < 1) = 0.50"

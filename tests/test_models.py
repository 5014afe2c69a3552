"""Model structure, likelihood pieces, prior predictive and fit round trips (no MCMC)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
from scipy import stats

from forecast import names as n
from forecast.data.events import EventTable, make_event_frame
from forecast.data.panel import build_panel
from forecast.data.shapes import pulse
from forecast.fits import FitProvenance, load_fit, posterior, save_fit
from forecast.jobs.data import DataRequest, load_data
from forecast.models.design import ModelOptions, build_design
from forecast.models.escalation import build_escalation_model, pulse_elapsed, pulse_shapes
from forecast.models.model import EscalationModel
from forecast.models.posterior import draw_level, sample_positions
from forecast.models.summary import summarise
from forecast.priors import load_priors
from tests.fakes import prior_as_posterior

PRIOR_FILES = sorted((Path(__file__).resolve().parents[1] / "priors").glob("*.yaml"))


@pytest.fixture(scope="module")
def shipped():
    return load_data(DataRequest())


@pytest.fixture(scope="module")
def shipped_model(shipped):
    return EscalationModel(shipped.panel, shipped.interventions)


# --------------------------------------------------------------------------- contract


def test_variable_names_and_dims_are_locked(shipped_model):
    model = shipped_model.model
    dims = {name: tuple(d) for name, d in model.named_vars_to_dims.items()}
    free = {rv.name for rv in model.free_RVs}
    assert {
        "baseline",
        "jump",
        "effect_mean",
        "effect_sd",
        "effect_raw",
        "half_life_log_mean",
        "half_life_log_sd",
        "half_life_raw",
        "dispersion",
    } <= free
    assert dims["baseline"] == (n.FRONT,)
    assert dims["jump"] == (n.FRONT, n.CHANGEPOINT)
    assert dims["effect"] == (n.FRONT, n.INTERVENTION)
    assert dims["half_life"] == ("pulse",)
    assert dims["dispersion"] == (n.FRONT,)
    assert dims["effect_mean"] == ("kind",)
    assert dims["regime_loglik"] == ("regime", "obs")
    assert dims["changepoint_probability"] == (n.CHANGEPOINT, n.FRONT, "position")
    assert [p.name for p in model.potentials] == ["marginal_loglik"]
    assert list(model.coords[n.FRONT]) == [
        "gaza",
        "iraq",
        "iraq_syria",
        "lebanon_drones",
        "lebanon_rockets",
        "red_sea_shipping",
        "syria",
    ]
    assert "Gaza truce (Israel-Hamas pause)" in model.coords[n.INTERVENTION]


def test_parameterization_follows_the_options(shipped):
    centred = EscalationModel(shipped.panel, shipped.interventions, options=ModelOptions(parameterization="centered"))
    offset = EscalationModel(
        shipped.panel, shipped.interventions, options=ModelOptions(parameterization="non_centered")
    )
    assert "baseline_offset" not in {rv.name for rv in centred.model.free_RVs}
    assert "baseline_offset" in {rv.name for rv in offset.model.free_RVs}
    assert centred.priors.hash() != offset.priors.hash()


def test_variants_build_without_changepoints_or_interventions_and_with_extras(shipped):
    for options in (
        ModelOptions(changepoints=0),
        ModelOptions(interventions=False),
        ModelOptions(changepoints=2),
        ModelOptions(seasonality=True, self_excitation=True, likelihood="poisson"),
        ModelOptions(trend=True),
    ):
        model = EscalationModel(shipped.panel, shipped.interventions, options=options).model
        assert np.isfinite(model.compile_logp()(model.initial_point()))


def test_the_trend_is_a_pooled_slope_per_front_on_a_centred_time_axis_of_30_days(shipped):
    model = EscalationModel(shipped.panel, shipped.interventions, options=ModelOptions(trend=True))
    assert model.model.named_vars_to_dims["trend"] == (n.FRONT,)
    assert "trend_offset" in {rv.name for rv in model.model.free_RVs}  # non-centred
    time = model.design.trend_time
    days = len(model.design.days)
    assert time[0] == pytest.approx(-(days - 1) / 2 / 30) and time[-1] == pytest.approx((days - 1) / 2 / 30)
    np.testing.assert_allclose(np.diff(time), 1 / 30)
    # a trend of 0.3 per 30 days moves each daily observation's log mean by 0.3 * time[day]
    pymc_model = model.model
    (log_mean,) = pymc_model.replace_rvs_by_values([pymc_model["base_log_mean"]])
    base = pymc_model.compile_fn(log_mean, inputs=pymc_model.value_vars, on_unused_input="ignore")
    point = model.model.initial_point()
    point["trend_offset"] = np.zeros(len(model.design.fronts))
    flat = base({**point, "trend_mu": np.array(0.0)})
    moved = base({**point, "trend_mu": np.array(0.3)})
    design = model.design
    whole = design.period_exposure == 1  # one observed day: the period's middle is that day
    obs, period = design.period_obs[whole], design.period_index[whole]
    assert len(obs) > 100
    np.testing.assert_allclose(moved[obs] - flat[obs], 0.3 * time[period])


@pytest.mark.parametrize("changepoints", [1, 2])
def test_data_as_shared_variables_give_the_same_log_density_as_constants(shipped, changepoints):
    """The backtest's graph (shared data, fixed scan ceiling) is the same density as the plain one."""
    options = ModelOptions(changepoints=changepoints, trend=True, self_excitation=True)
    plain = EscalationModel(shipped.panel, shipped.interventions, options=options).model
    shared = EscalationModel(shipped.panel, shipped.interventions, options=options, shared_data=True).model
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import graph_inputs

    inputs = {v.name for v in graph_inputs([shared.logp()]) if isinstance(v, SharedVariable)}
    assert {"design_y", "design_position", "design_changepoint_valid"} <= inputs
    assert not any(v.name.startswith("design_") for v in graph_inputs([plain.logp()]) if isinstance(v, SharedVariable))
    point = plain.initial_point(random_seed=4)
    assert shared.compile_logp()(point) == pytest.approx(plain.compile_logp()(point), rel=1e-10)


@pytest.mark.parametrize("changepoints", [0, 1, 2])
def test_log_density_reshapes_only_to_constant_shapes_as_jax_needs(shipped, changepoints):
    """NumPyro through PyMC traces the graph with JAX, which cannot reshape to a shape computed at run time.

    PyMC's JAX path first replaces shared variables (the coordinates' lengths) by constants; after
    the standard rewrites every reshape must then have a constant shape.  Checked without JAX,
    which the test environment does not install.
    """
    import pytensor.tensor as pt
    from pytensor.compile import mode
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph import FunctionGraph
    from pytensor.graph.basic import Constant
    from pytensor.graph.replace import clone_replace
    from pytensor.graph.traversal import graph_inputs
    from pytensor.tensor.shape import Reshape

    options = ModelOptions(changepoints=changepoints, trend=True, self_excitation=True)
    model = EscalationModel(shipped.panel, shipped.interventions, options=options).model
    outputs = [model.logp()]
    constants = {v: pt.constant(v.get_value()) for v in graph_inputs(outputs) if isinstance(v, SharedVariable)}
    graph = FunctionGraph(model.value_vars, clone_replace(outputs, replace=constants), clone=True)
    mode.get_mode("FAST_RUN").optimizer.rewrite(graph)
    reshapes = [node for node in graph.toposort() if isinstance(node.op, Reshape)]
    assert [node for node in reshapes if not isinstance(node.inputs[1], Constant)] == []


def test_placeholder_interventions_are_left_out_of_the_fit_summary(shipped):
    # As of 2024-01-31 the strikes of 2 February 2024 are unknown: placeholders at most.
    early = load_data(DataRequest(as_of=pd.Timestamp("2024-01-31")))
    options = ModelOptions(changepoints=0)
    model = EscalationModel(early.panel, early.interventions, options=options, placeholders_until=shipped.panel.end)
    design = model.design
    placeholders = set(design.interventions.loc[~design.intervention_known, n.LABEL])
    assert placeholders and (design.interventions[n.DATE] > pd.Timestamp("2024-01-31")).sum() == len(placeholders)
    summary = summarise(model, prior_as_posterior(model))
    reported = {item["label"] for front in summary["fronts"] for item in front["interventions"]}
    paired = {label for pair in summary["close_interventions"] for label in (pair["first"], pair["second"])}
    assert reported and not reported & placeholders
    assert not paired & placeholders


def test_too_many_changepoints_for_a_short_front_is_a_clear_error(shipped):
    with pytest.raises(Exception, match="red_sea_shipping"):
        build_design(shipped.panel, shipped.interventions, ModelOptions(changepoints=3))


# --------------------------------------------------------------------------- likelihood pieces


def _window_panel(precision: str):
    frame = make_event_frame(
        dates=pd.Series(pd.to_datetime(["2024-01-01", "2024-01-11"])),
        end_dates=pd.Series(pd.to_datetime(["2024-01-10", "2024-01-24"])),
        fronts=pd.Series(["a", "a"]),
        counts=pd.Series([12, 7]),
        precision=pd.Series(["exact", precision]),
        source=pd.Series(["", ""]),
        file="<test>",
        lines=np.array([2, 3]),
    )
    return build_panel(EventTable(frame=frame, files=("<test>",)))


def _regime_loglik_at(precision: str, baseline: float, dispersion: float) -> np.ndarray:
    """Log-likelihood of the two windows of :func:`_window_panel` at a fixed parameter point."""
    design = build_design(_window_panel(precision), None, ModelOptions(changepoints=0, parameterization="centered"))
    model = build_escalation_model(design, load_priors().priors)
    point = {"baseline": np.array([np.log(baseline)]), "dispersion": np.array([dispersion])}
    derived = pm.compute_deterministics(_dataset(point), var_names=["regime_loglik"], model=model, progressbar=False)
    return derived["regime_loglik"].to_numpy()[0, 0, 0]


def test_window_total_likelihood_is_that_of_the_summed_daily_rate():
    # A total over D days: NB(sum of the daily rates, alpha x D), the distribution of D
    # independent daily NB(rate, alpha) counts (forecast.models.escalation.total_dispersion).
    days = np.array([10, 14])
    mu = 1.3 * days
    expected = stats.nbinom.logpmf([12, 7], 4.0 * days, 4.0 * days / (4.0 * days + mu))
    np.testing.assert_allclose(_regime_loglik_at("exact", 1.3, 4.0), expected, rtol=1e-10)


def test_at_least_totals_are_censored_from_below():
    mu = 0.5 * 14
    expected = np.log(stats.nbinom.sf(6, 2.0 * 14, 2.0 * 14 / (2.0 * 14 + mu)))
    np.testing.assert_allclose(_regime_loglik_at("at_least", 0.5, 2.0)[1], expected, rtol=1e-8)


def test_an_at_least_zero_total_carries_no_information():
    assert _regime_loglik_at("at_least", 0.5, 2.0)[1] != 0.0  # y = 7: informative
    design = build_design(_window_panel("at_least"), None, ModelOptions(changepoints=0, parameterization="centered"))
    zero = replace(design, y=np.array([12, 0]))
    model = build_escalation_model(zero, load_priors().priors)
    point = {"baseline": np.array([np.log(0.5)]), "dispersion": np.array([2.0])}
    derived = pm.compute_deterministics(_dataset(point), var_names=["regime_loglik"], model=model, progressbar=False)
    assert derived["regime_loglik"].to_numpy()[0, 0, 0, 1] == 0.0


@pytest.mark.parametrize(
    ("y", "mean", "alpha"),
    # (700, 1, 5) is where log(1 - CDF) is -inf (scipy's nbinom.logsf too) and the truth about -1,232.
    [(10, 2.0, 1.0), (50, 5.0, 2.0), (3, 40.0, 3.0), (200, 30.0, 0.5), (120, 1.0, 5.0), (700, 1.0, 5.0)],
)
def test_log_survival_is_stable_in_both_tails(y, mean, alpha):
    """log P(Y >= y) against an exact reference, including where log(1 - CDF) cancels to -inf."""
    import pytensor.tensor as pt
    from scipy.special import logsumexp as np_logsumexp

    from forecast.models.escalation import log_survival

    below = np.arange(y, dtype=float)
    got = log_survival(
        np.array([float(y)]),
        pt.as_tensor(np.log([[mean]])),
        pt.as_tensor([[alpha]]),
        below=below,
        inside=below[None, :] < y,
    ).eval()[0, 0]
    # Exact reference: the upper tail summed term by term far beyond where it matters.
    k = np.arange(y, y + 200_000)
    reference = np_logsumexp(stats.nbinom.logpmf(k, alpha, alpha / (alpha + mean)))
    np.testing.assert_allclose(got, reference, rtol=2e-4)
    assert np.isfinite(got)


def _dataset(point: dict[str, np.ndarray]):
    variables = {name: (("chain", "draw", n.FRONT), value[None, None, :]) for name, value in point.items()}
    variables |= {"baseline_mu": (("chain", "draw"), [[0.0]]), "baseline_sigma": (("chain", "draw"), [[1.0]])}
    return xr.Dataset(variables, coords={"chain": [0], "draw": [0], n.FRONT: ["a"]})


def test_pulse_shapes_match_the_numpy_definition(shipped_model):
    design = shipped_model.design
    half_life = np.linspace(2.0, 20.0, len(design.pulse_index))
    got = pulse_shapes(pulse_elapsed(design), half_life).eval()
    days = np.arange(len(design.days))
    for row, j in enumerate(design.pulse_index):
        np.testing.assert_allclose(got[row], pulse(days, design.intervention_start_day[j], half_life[row]))


def test_backward_sampling_draws_positions_from_their_exact_posterior():
    import pytensor.tensor as pt

    from forecast.models.changepoints import changepoint_posterior, cumulative_loglik, forward_terms

    rng = np.random.default_rng(0)
    valid = np.zeros((2, 12), dtype=bool)
    valid[0, 2:10] = True
    valid[1, 1:7] = True
    loglik = rng.normal(-2.0, 1.5, size=(3, 2, 12))
    forward = np.stack([t.eval() for t in forward_terms(cumulative_loglik(pt.as_tensor(loglik)), valid, 2)])
    exact = changepoint_posterior(pt.as_tensor(loglik), valid, 2).eval()
    positions = sample_positions(np.broadcast_to(forward, (20000, *forward.shape)), valid, rng)
    assert (np.diff(positions, axis=1) > 0).all()
    for f in range(2):
        assert valid[f, positions[:, :, f]].all()
        for k in range(2):
            empirical = np.bincount(positions[:, k, f], minlength=12) / len(positions)
            np.testing.assert_allclose(empirical, exact[k, f], atol=0.02)


# --------------------------------------------------------------------------- prior predictive


#: Share of simulated counts allowed above 100,000 under each shipped prior file: the default
#: priors are weakly informative (measured: 0.16%; median daily count 1, 90th percentile 18), the
#: sensitivity variant doubles every scale on purpose (measured: 1.5%; 90th percentile 284).
EXTREME_SHARE_LIMIT = {"default.yaml": 0.01, "wide.yaml": 0.03, "dynamic.yaml": 0.01}


def test_every_shipped_prior_file_has_a_prior_predictive_limit():
    assert sorted(p.name for p in PRIOR_FILES) == sorted(EXTREME_SHARE_LIMIT)


@pytest.mark.parametrize("prior_file", PRIOR_FILES, ids=lambda p: p.name)
def test_prior_predictive_counts_are_plausible_for_the_shipped_data(shipped, prior_file):
    """Daily counts drawn from the prior cover the data's scale without absurd values.

    The shipped daily series range from 0 to 1,640 alerts a day (Gaza, 2023-10-07) and the
    Pentagon windows from 0 to 30 attacks over 1 to 32 days.  Under each shipped prior the
    median simulated daily count of the daily series must lie between 0.05 and 50, the 90th
    percentile must reach at least 5 (the prior allows the busy days that occurred) and only a
    small share (:data:`EXTREME_SHARE_LIMIT`) may exceed 100,000 in a period.
    """
    family = "dynamic" if prior_file.name.startswith("dynamic") else "changepoint"
    options = ModelOptions(family=family, changepoints=0) if family == "dynamic" else None
    priors = load_priors(prior_file, model=family)
    model = EscalationModel(shipped.panel, shipped.interventions, priors=priors, options=options)
    fake = prior_as_posterior(model, draws=100, seed=11)
    draws = draw_level(model, fake, random_seed=5)
    from forecast.models.posterior import replicate_counts

    counts = replicate_counts(draws, random_seed=6)
    design = model.design
    daily = counts[..., design.period_obs] / design.period_exposure
    assert 0.05 < np.median(daily) < 50, np.median(daily)
    assert np.quantile(daily, 0.9) >= 5, np.quantile(daily, 0.9)
    assert np.mean(counts > 100_000) < EXTREME_SHARE_LIMIT[prior_file.name], np.mean(counts > 100_000)
    assert (counts >= 0).all()


# --------------------------------------------------------------------------- round trip


def test_saved_and_reloaded_fit_gives_identical_summaries(shipped_model, tmp_path):
    fake = prior_as_posterior(shipped_model)
    import arviz as az

    idata = az.InferenceData(posterior=fake)
    provenance = FitProvenance(
        package_version="test",
        model_name=shipped_model.name,
        model_options=shipped_model.options.to_dict(),
        priors=shipped_model.priors.to_dict(),
        priors_hash=shipped_model.priors.hash(),
        data_hash=shipped_model.panel.data_hash(),
        as_of="2024-05-16",
        sampler={"name": "nutpie", "draws": 40, "tune": 0, "chains": 2, "target_accept": 0.9, "random_seed": 1},
    )
    path = save_fit(idata, tmp_path / "fit.nc", provenance)
    reloaded, saved = load_fit(path, expect={"data_hash": shipped_model.panel.data_hash()})
    assert saved == provenance
    before = json.dumps(summarise(shipped_model, fake), sort_keys=True)
    after = json.dumps(summarise(shipped_model, posterior(reloaded)), sort_keys=True)
    assert before == after
    a = draw_level(shipped_model, fake, random_seed=2)
    b = draw_level(shipped_model, posterior(reloaded), random_seed=2)
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_allclose(a.loglik, b.loglik)


def test_numpyro_without_its_optional_dependencies_is_a_clear_error(monkeypatch, shipped_model):
    import importlib.util

    from forecast.errors import ForecastError
    from forecast.models.model import SamplerSettings

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "numpyro" else real(name, *a))
    with pytest.raises(ForecastError, match=r"pip install 'escalation-forecast\[numpyro\]'"):
        shipped_model.fit(SamplerSettings(sampler="numpyro", draws=10, tune=10))


def test_numpyro_chains_get_a_cpu_device_each_unless_xla_flags_say_otherwise(monkeypatch):
    import importlib.util
    import os
    import sys

    from forecast.models import model as model_module

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    monkeypatch.delitem(sys.modules, "jax", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    model_module.prepare_numpyro(chains=4)
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x --xla_force_host_platform_device_count=2"
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    model_module.prepare_numpyro(chains=4)
    assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=1"
    monkeypatch.delenv("XLA_FLAGS")
    monkeypatch.setitem(sys.modules, "jax", object())  # too late to ask: JAX has its devices
    model_module.prepare_numpyro(chains=2)
    assert "XLA_FLAGS" not in os.environ

"""The discrete-changepoint comparison model agrees with the marginalised one."""

from __future__ import annotations

import itertools

import numpy as np
import pymc as pm
import pytest
from pymc.sampling.mcmc import assign_step_methods
from scipy.special import logsumexp

from forecast import names as n
from forecast.data.interventions import read_interventions_csv
from forecast.models.design import ModelOptions
from forecast.models.model import EscalationModel
from forecast.testing.simulate import SimulatedIntervention, interventions_frame, simulate_panel
from tools.discrete_changepoint import (
    LOGLIK_POTENTIAL,
    POSITION_VARIABLE,
    build_discrete_changepoint_model,
    changepoint_range,
    observation_positions,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """2 fronts x 40 days, one pulse on every front; returns (panel, interventions)."""
    pulse = SimulatedIntervention(start=12, shape=n.SHAPE_PULSE, effect=0.6, half_life=4.0, label="strike")
    panel, truth, _ = simulate_panel(fronts=2, days=40, n_changepoints=1, interventions=[pulse], random_seed=5)
    path = tmp_path_factory.mktemp("discrete") / "interventions.csv"
    interventions_frame(truth).to_csv(path, index=False)
    return panel, read_interventions_csv(path)


@pytest.fixture(scope="module")
def models(tiny):
    """The marginalised EscalationModel and the discrete model on the same design and priors."""
    panel, interventions = tiny
    marginal = EscalationModel(panel, interventions, options=ModelOptions(changepoints=1))
    discrete = build_discrete_changepoint_model(marginal.design, marginal.priors.priors)
    return marginal, discrete


def _random_point(model: pm.Model, seed: int) -> dict[str, np.ndarray]:
    """The model's initial point (unconstrained values), continuous values moved at random."""
    rng = np.random.default_rng(seed)
    point = model.initial_point()
    moved = {}
    for name, value in point.items():
        discrete = np.issubdtype(np.asarray(value).dtype, np.integer)
        moved[name] = value if discrete else value + rng.normal(0, 0.3, np.shape(value))
    return moved


def _function_of_values(model: pm.Model, name: str):
    """Compiled ``point -> value`` of a deterministic or potential, as a function of the value variables."""
    (out,) = model.replace_rvs_by_values([model[name]])
    return model.compile_fn(out, inputs=model.value_vars, on_unused_input="ignore")


def test_variable_names_and_step_assignment(models):
    marginal, discrete = models
    marginal_free = [v.name for v in marginal.model.free_RVs]
    assert [v.name for v in discrete.free_RVs] == [*marginal_free, POSITION_VARIABLE]
    assert [v.name for v in discrete.potentials] == [LOGLIK_POTENTIAL]
    marginal_deterministics = {v.name for v in marginal.model.deterministics}
    assert {v.name for v in discrete.deterministics} == marginal_deterministics - {
        "changepoint_probability",
        "changepoint_forward",
    }
    position = discrete[POSITION_VARIABLE]
    assert discrete.named_vars_to_dims[POSITION_VARIABLE] == (n.FRONT,)
    assert position.dtype in pm.discrete_types

    # pm.sample's automatic choice: NUTS for every continuous value, Metropolis for the position.
    _, assigned = assign_step_methods(discrete)
    by_step = {step.__name__: sorted(v.name for v in values) for step, values in assigned.items()}
    assert by_step == {
        "NUTS": sorted(v.name for v in discrete.value_vars if v.name != POSITION_VARIABLE),
        "Metropolis": [POSITION_VARIABLE],
    }


def test_position_range_is_the_valid_range_of_the_design(models):
    marginal, discrete = models
    design = marginal.design
    lo, hi = changepoint_range(design)
    for f in range(len(design.fronts)):
        expected = np.flatnonzero(design.changepoint_valid[f])
        assert (lo[f], hi[f]) == (expected[0], expected[-1])
    # The prior puts equal mass on every valid position and none outside.
    position_value = discrete.rvs_to_values[discrete[POSITION_VARIABLE]]
    logp = discrete.compile_fn(discrete.logp(vars=[discrete[POSITION_VARIABLE]], sum=False)[0], inputs=[position_value])
    inside = logp({POSITION_VARIABLE: lo})
    np.testing.assert_allclose(inside, -np.log(hi - lo + 1))
    assert np.all(np.isneginf(logp({POSITION_VARIABLE: lo - 1})))
    assert np.all(np.isneginf(logp({POSITION_VARIABLE: hi + 1})))


def test_observation_positions_follow_the_design():
    # Covered through the potential below; here the small helper on its own.
    class FakeDesign:
        n_obs = 5
        position = np.array([[0, 1, 2], [3, 4, 0]])
        position_mask = np.array([[True, True, True], [True, True, False]])

    np.testing.assert_array_equal(observation_positions(FakeDesign()), [0, 1, 2, 0, 1])


def test_potential_at_fixed_positions_equals_the_regime_loglik_sum(models):
    marginal, discrete = models
    design = marginal.design
    point = _random_point(discrete, seed=3)
    continuous = {v.name: point[v.name] for v in marginal.model.value_vars}
    regime = _function_of_values(marginal.model, "regime_loglik")(continuous)
    potential = _function_of_values(discrete, LOGLIK_POTENTIAL)

    lo, hi = changepoint_range(design)
    for tau in (lo, hi, (lo + hi) // 2, np.array([lo[0], hi[1]])):
        expected = 0.0
        for f in range(len(design.fronts)):
            members = design.position[f, : design.n_obs_front[f]]
            expected += regime[0, members[: tau[f]]].sum() + regime[1, members[tau[f] :]].sum()
        got = potential({**continuous, POSITION_VARIABLE: np.asarray(tau)})
        np.testing.assert_allclose(got, expected, rtol=1e-10)

    # Summed over every configuration with the uniform prior, it is the marginalised likelihood.
    grid = [range(lo[f], hi[f] + 1) for f in range(len(design.fronts))]
    values = [potential({**continuous, POSITION_VARIABLE: np.array(tau)}) for tau in itertools.product(*grid)]
    log_prior = -np.log(hi - lo + 1).sum()
    marginal_value = _function_of_values(marginal.model, "marginal_loglik")(continuous)
    np.testing.assert_allclose(logsumexp(values) + log_prior, marginal_value, rtol=1e-9)


@pytest.mark.parametrize("k", [0, 2])
def test_other_numbers_of_changepoints_are_refused(tiny, k):
    panel, interventions = tiny
    model = EscalationModel(panel, interventions, options=ModelOptions(changepoints=k))
    with pytest.raises(ValueError, match="exactly one changepoint"):
        build_discrete_changepoint_model(model.design, model.priors.priors)

"""The whitened level (forecast/models/whitened.py): an exact change of variables, and its pseudo-observations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt

from forecast import names as n
from forecast.models import whitened
from forecast.models.design import build_design
from forecast.models.dynamic import layout_of
from forecast.models.escalation import _design_array
from forecast.models.tails import _scaled_logp, sinh_arcsinh, sinh_arcsinh_variance
from tests.test_dynamic_model import DYNAMIC, _panel, daily_panel

FRONTS, STEPS = 2, 6


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    count = rng.poisson(50.0, size=(FRONTS, STEPS)).astype(float)
    days = np.full((FRONTS, STEPS), 30.0)
    days[1, 2] = 0.0  # a knot without data
    count[1, 2] = 0.0
    return (
        np.array([3.0, 0.5]),  # first
        np.full((FRONTS, STEPS), 0.3) * np.array([[1.0], [2.0]]),  # step_scale
        np.array([0.05, 0.2]),  # tail
        np.array([2.0, 0.5]),  # dispersion
        count,
        days,
        rng.normal(0.0, 0.1, size=(FRONTS, STEPS)),  # offset
    )


def _symbolic(values):
    return [pt.as_tensor(np.asarray(v, dtype=float)) for v in values]


def test_the_numpy_and_pytensor_conditionals_agree_and_factor_the_tridiagonal_precision():
    values = _inputs()
    numeric = whitened.conditional(*values, STEPS)
    symbolic = whitened.conditional(*_symbolic(values), STEPS)
    for got, expected in zip(symbolic, numeric, strict=True):
        np.testing.assert_allclose(got.eval(), expected, rtol=1e-10, atol=1e-12)
    mean, diagonal, below = numeric
    chol = np.zeros((FRONTS, STEPS, STEPS))
    index = np.arange(STEPS)
    chol[:, index, index] = diagonal
    chol[:, index[1:], index[:-1]] = below[:, 1:]
    q = chol @ np.swapaxes(chol, 1, 2)
    precision = 1.0 / (sinh_arcsinh_variance(values[2])[:, None] * values[1] ** 2)
    np.testing.assert_allclose(q[:, index[1:], index[:-1]], -precision[:, 1:], rtol=1e-10)
    np.testing.assert_allclose(np.triu(q, 2), 0.0, atol=1e-12)
    # The mean solves Q m = r: the data term's weight times the pseudo-observation, plus the first knot's pull.
    first, count, days, offset = values[0], values[4], values[5], values[6]
    exposure = values[3][:, None] * np.where(days > 0, days, 1.0)
    weight = np.where(days > 0, exposure * (count + 0.5) / (exposure + count + 0.5), 0.0)
    rhs = weight * (np.log((count + 0.5) / np.where(days > 0, days, 1.0)) - offset)
    rhs[:, 0] += precision[:, 0] * first
    np.testing.assert_allclose(np.einsum("fij,fj->fi", q, mean), rhs, rtol=1e-9, atol=1e-9)


def test_the_recurrence_scan_equals_the_loop():
    rng = np.random.default_rng(5)
    u, a = rng.normal(size=(3, 11)), rng.normal(size=(3, 11))
    np.testing.assert_allclose(whitened.recurrence(pt.as_tensor(u), pt.as_tensor(a)).eval(), whitened.recurrence(u, a))


def test_whitened_draws_map_back_to_the_prior_steps_they_came_from():
    values = _inputs()
    size = (FRONTS, STEPS)
    eps = whitened.whitened_random(*values, rng=np.random.default_rng(4), size=size)
    z = np.random.default_rng(4).standard_normal(size)
    expected = values[1] * sinh_arcsinh(z, values[2][:, None])
    steps, _ = whitened.steps_of(pt.as_tensor(eps), *_symbolic(values))
    np.testing.assert_allclose(steps.eval(), expected, rtol=1e-8, atol=1e-10)


def test_the_density_is_the_steps_density_times_the_jacobian():
    """log p(eps) = log p_h(steps(eps)) + log |det d steps / d eps|: the model is unchanged."""
    values = _inputs(1)
    eps = pt.vector("eps")
    shaped = eps.reshape((FRONTS, STEPS))
    symbolic = _symbolic(values)
    steps, _ = whitened.steps_of(shaped, *symbolic)
    jacobian = pytensor.gradient.jacobian(steps.ravel(), eps)
    logp = whitened.whitened_logp(shaped, *symbolic).sum()
    direct = _scaled_logp(steps, symbolic[2][:, None], symbolic[1]).sum()
    point = np.random.default_rng(2).normal(size=FRONTS * STEPS)
    logp_value, direct_value, jac = pytensor.function([eps], [logp, direct, jacobian])(point)
    np.testing.assert_allclose(logp_value, direct_value + np.linalg.slogdet(jac)[1], rtol=1e-9)


def test_pseudo_observations_take_windows_within_one_knot_and_nothing_censored():
    months = pd.date_range("2022-01-01", periods=6, freq="MS")
    ends = months + pd.offsets.MonthEnd(0)
    design = build_design(
        _panel(months, ["x"] * 6, [10, 20, 30, 40, 50, 60], end_dates=ends, freq=n.FREQ_MONTH), None, DYNAMIC
    )
    counts, days = _design_array(design, "knot_count"), _design_array(design, "knot_count_days")
    np.testing.assert_array_equal(counts[0], [10, 20, 30, 40, 50, 60])
    np.testing.assert_array_equal(days[0], [31, 28, 31, 30, 31, 30])
    # On a daily grid the knot is a week: day counts sum into it.
    daily = build_design(daily_panel(fronts=("a",), days=14, rate=(5.0,)), None, DYNAMIC)
    grid = _design_array(daily, "knot_count")
    assert layout_of(daily).level_periods == 7
    np.testing.assert_array_equal(grid[0], daily.y)


def test_a_window_across_two_knots_is_not_a_pseudo_observation():
    months = pd.date_range("2022-01-01", periods=4, freq="MS")
    starts = list(months[:2]) + [months[2] + pd.Timedelta(days=15)]
    ends = [months[0] + pd.offsets.MonthEnd(0), months[1] + pd.offsets.MonthEnd(0), months[3] + pd.Timedelta(days=9)]
    panel = _panel(starts, ["x"] * 3, [5, 6, 7], end_dates=ends, freq=n.FREQ_MONTH)
    design = build_design(panel, None, DYNAMIC)
    counts = _design_array(design, "knot_count")
    assert counts[0, :2].tolist() == [5, 6] and counts[0, 2:].sum() == 0  # the third spans two months

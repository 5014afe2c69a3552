"""The whitened level (forecast/models/whitened.py): an exact change of variables, and its pseudo-observations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest

from forecast import names as n
from forecast.data.events import read_events_csv
from forecast.data.panel import build_panel
from forecast.models import whitened, whitened_path
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


def _dense(first, step_scale, tail, dispersion, count, days, offset, rho):
    """Per front, the tridiagonal precision ``Q`` and right-hand side ``r`` built in full, as the docstring states."""
    precision = 1.0 / (sinh_arcsinh_variance(tail)[:, None] * step_scale**2)
    exposure = dispersion[:, None] * np.where(days > 0, days, 1.0)
    weight = np.where(days > 0, exposure * (count + 0.5) / (exposure + count + 0.5), 0.0)
    rhs = weight * (np.log((count + 0.5) / np.where(days > 0, days, 1.0)) - offset)
    rhs[:, 0] += rho * precision[:, 0] * first
    q = np.zeros((FRONTS, STEPS, STEPS))
    for f in range(FRONTS):
        for k in range(STEPS):
            after = rho[f] ** 2 * precision[f, k + 1] if k + 1 < STEPS else 0.0
            q[f, k, k] = precision[f, k] + weight[f, k] + after
            if k:
                q[f, k - 1, k] = q[f, k, k - 1] = -rho[f] * precision[f, k]
    return q, rhs


@pytest.mark.parametrize("rho", [np.ones(FRONTS), np.array([0.3, 0.9])], ids=["random walk", "AR(1)"])
def test_the_conditional_factors_the_tridiagonal_precision_and_solves_for_the_mean(rho):
    values = _inputs()
    mean, diagonal, below = whitened.conditional(*values, rho)
    q, rhs = _dense(*values, rho)
    chol = np.linalg.cholesky(q)
    index = np.arange(STEPS)
    np.testing.assert_allclose(diagonal, chol[:, index, index], rtol=1e-12)
    np.testing.assert_allclose(below[:, 1:], chol[:, index[1:], index[:-1]], rtol=1e-12)
    np.testing.assert_allclose(below[:, 0], 0.0)
    np.testing.assert_allclose(np.einsum("fij,fj->fi", q, mean), rhs, rtol=1e-9, atol=1e-9)


def test_the_path_op_is_the_dense_solve_in_every_backend_and_whiten_inverts_it():
    values, rho = _inputs(3), np.array([0.6, 1.0])
    eps = np.random.default_rng(6).normal(size=(FRONTS, STEPS))
    q, rhs = _dense(*values, rho)
    chol = np.linalg.cholesky(q)
    expected = np.stack([np.linalg.solve(chol[f].T, np.linalg.solve(chol[f], rhs[f]) + eps[f]) for f in range(FRONTS)])
    path, log_diagonal = whitened.path_of(pt.as_tensor(eps), *_symbolic(values), pt.as_tensor(rho))
    for mode in ("FAST_RUN", "NUMBA"):
        got = pytensor.function([], [path, log_diagonal], mode=mode)()
        np.testing.assert_allclose(got[0], expected, rtol=1e-10, err_msg=mode)
        np.testing.assert_allclose(got[1], np.log(np.diagonal(chol, axis1=1, axis2=2)), rtol=1e-12, err_msg=mode)
    np.testing.assert_allclose(whitened.whiten(expected, *values, rho), eps, rtol=1e-9, atol=1e-12)


def test_the_path_ops_gradient_is_the_derivative_of_its_map():
    """The hand-written reverse mode against finite differences, through both outputs and every input."""
    rng = np.random.default_rng(7)
    w, a, r = rng.normal(size=(3, 5)), rng.normal(size=3), rng.uniform(0.2, 1.0, size=3)
    p, h, g = rng.uniform(0.5, 3.0, size=(3, 5)), rng.uniform(0.0, 4.0, size=(3, 5)), rng.normal(size=(3, 5))
    h[1, 2] = 0.0  # a knot without data
    weights = rng.normal(size=(3, 5))
    inputs = [w, a, p, r, h, g]

    def cost(*values):
        path, diagonal = whitened_path.whitened_path(*values)
        return (path * weights).sum() + 1.7 * pt.log(diagonal).sum()

    def log_diagonal_only(*values):  # the path unused: its gradient is disconnected, not an error
        return pt.log(whitened_path.whitened_path(*values)[1]).sum()

    pytensor.gradient.verify_grad(cost, inputs, rng=rng)
    pytensor.gradient.verify_grad(log_diagonal_only, inputs, rng=rng)
    variables = [pt.matrix(), pt.vector(), pt.matrix(), pt.vector(), pt.matrix(), pt.matrix()]
    gradients = pytensor.grad(cost(*variables), variables)
    numba, c = (pytensor.function(variables, gradients, mode=m)(*inputs) for m in ("NUMBA", "FAST_RUN"))
    for got, expected in zip(numba, c, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_the_path_op_rejects_inputs_of_the_wrong_rank():
    with pytest.raises(TypeError, match="a must have 1 dimensions"):
        whitened_path.whitened_path(pt.matrix(), pt.matrix(), pt.matrix(), pt.vector(), pt.matrix(), pt.matrix())


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
    steps, logp = whitened.steps_and_logp(shaped, *symbolic)
    jacobian = pytensor.gradient.jacobian(steps.ravel(), eps)
    logp = logp.sum()
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


def test_the_burst_sees_one_day_windows_as_it_sees_day_counts(tmp_path):
    """A table that gives each day's count with its own end date is read as one-day windows.

    The burst's pseudo-observations (one per period) must be those of the same counts given as
    day counts; a window of two days, or a censored one, is none.
    """
    counts = np.random.default_rng(3).poisson(30, size=20)
    dates = pd.date_range("2024-01-01", periods=20, freq="D").strftime("%Y-%m-%d")

    def design_of(name, rows):
        path = tmp_path / name
        pd.DataFrame(rows).to_csv(path, index=False)
        return build_design(build_panel(read_events_csv(path), freq=n.FREQ_DAY), None, DYNAMIC)

    as_rows = design_of("days.csv", {"date": dates, "front": "x", "count": counts})
    as_windows = design_of("windows.csv", {"date": dates, "end_date": dates, "front": "x", "count": counts})
    assert len(as_windows.window_obs) == 20 and len(as_rows.window_obs) == 0
    assert layout_of(as_rows).burst.tolist() == layout_of(as_windows).burst.tolist() == [True]
    for name in ("period_count", "period_count_days", "knot_count", "knot_count_days"):
        np.testing.assert_array_equal(_design_array(as_windows, name), _design_array(as_rows, name), err_msg=name)
    np.testing.assert_array_equal(_design_array(as_windows, "period_count")[0], counts)

    # Day 5's row covers days 5 and 6 (day 6 has no row of its own); day 10's is a lower bound.
    keep = np.r_[0:5, 6:20]
    ends = dates.to_numpy().copy()
    ends[4] = dates[5]
    precision = np.array(["exact"] * 20, dtype=object)
    precision[9] = "at_least"
    mixed = design_of(
        "mixed.csv",
        {
            "date": dates[keep],
            "end_date": ends[keep],
            "front": "x",
            "count": counts[keep],
            "precision": precision[keep],
        },
    )
    expected = counts.astype(float)
    expected[[4, 5, 9]] = 0.0
    np.testing.assert_array_equal(_design_array(mixed, "period_count")[0], expected)
    seen = np.ones(20)
    seen[[4, 5, 9]] = 0.0
    np.testing.assert_array_equal(_design_array(mixed, "period_count_days")[0], seen)


def test_the_ar1_op_is_the_recurrence_and_its_gradient_the_derivative():
    rng = np.random.default_rng(8)
    u, a = rng.normal(size=(3, 9)), np.array([0.0, 0.5, 0.97])
    expected = np.zeros_like(u)
    expected[:, 0] = u[:, 0]
    for t in range(1, u.shape[1]):
        expected[:, t] = a * expected[:, t - 1] + u[:, t]
    for mode in ("FAST_RUN", "NUMBA"):
        got = pytensor.function([], whitened_path.ar1_path(pt.as_tensor(u), pt.as_tensor(a)), mode=mode)()
        np.testing.assert_allclose(got, expected, rtol=1e-12, err_msg=mode)
    weights = rng.normal(size=u.shape)
    pytensor.gradient.verify_grad(lambda x, r: (whitened_path.ar1_path(x, r) * weights).sum(), [u, a], rng=rng)


def test_a_burst_knot_with_no_event_is_approximated_at_the_mode_of_its_conditional():
    """A 0 where dozens are expected bounds the log rate from above only; its pseudo-observation is
    the Laplace approximation at the mode of its likelihood times its step's prior, not ``log(1/2)``.

    With prior precision ``P`` around 0 and the negative binomial's zero likelihood
    ``-a log(1 + mu(x) / a)``, the approximate posterior's mean ``w t / (P + w)`` is where the exact
    log density's slope is 0, and ``P + w`` its curvature there. A knot with events keeps the
    delta-method pseudo-observation, and numpy and PyTensor agree.
    """
    scale = np.array([[0.5, 0.5, 0.5, 0.5, 0.5]])
    tail, dispersion = np.array([0.4]), np.array([30.0])
    count = np.array([[0.0, 0.0, 0.0, 0.0, 12.0]])
    days = np.array([[1.0, 1.0, 1.0, 7.0, 1.0]])
    offset = np.log(np.array([[40.0, 0.2, 900.0, 3.0, 10.0]]))
    precision, weight, target = whitened.pseudo_observations(scale, tail, dispersion, count, days, offset, True)
    mean = weight * target / (precision + weight)
    exposure = dispersion[:, None] * days
    expected = days * np.exp(offset + mean)
    slope = -precision * mean - exposure * expected / (exposure + expected)
    curvature = -precision - exposure**2 * expected / (exposure + expected) ** 2
    np.testing.assert_allclose(slope[0, :4], 0.0, atol=1e-6)  # four Newton steps
    np.testing.assert_allclose(-curvature[0, :4], (precision + weight)[0, :4], rtol=1e-4)
    assert mean[0, 0] < -1.5 and mean[0, 2] < mean[0, 0]  # a 0 amid 40, and amid 900, pulls far down
    assert -0.1 < mean[0, 1] < 0.0  # a 0 where 0.2 are expected says little
    delta = exposure[0, 4] * 12.5 / (exposure[0, 4] + 12.5)
    assert weight[0, 4] == pytest.approx(delta) and target[0, 4] == pytest.approx(np.log(12.5) - offset[0, 4])
    symbolic = whitened.pseudo_observations(
        *(pt.as_tensor(v) for v in (scale, tail, dispersion, count, days, offset)), zeros_at_mode=True
    )
    for got, want in zip(symbolic, (precision, weight, target), strict=True):
        np.testing.assert_allclose(got.eval(), want, rtol=1e-12)
    # The level's knots (a random walk, whose prior is not centred at 0) keep the delta method's.
    _, level_weight, level_target = whitened.pseudo_observations(scale, tail, dispersion, count, days, offset)
    np.testing.assert_allclose(level_target[0, :4], np.log(0.5 / days[0, :4]) - offset[0, :4])
    np.testing.assert_allclose(level_weight[0, :4], exposure[0, :4] * 0.5 / (exposure[0, :4] + 0.5))


def test_the_burst_path_with_empty_days_at_their_mode_is_inverted_by_whiten_with_a_true_gradient():
    """``path_of`` (the log density's map) and ``whiten`` (the prior draws' map) must agree on the
    flag, or a fit would start from points its density does not describe; the Newton steps are in
    the graph, so their gradient must be the map's derivative, not NaN from the branch not taken.
    """
    first, step_scale, tail, dispersion, count, days, offset = _inputs(4)
    count[0, 1] = count[1, 4] = 0.0  # days with no event amid some 50
    values = (np.zeros(FRONTS), step_scale, tail, dispersion, count, days, offset)
    rho = np.array([0.6, 0.3])
    eps = np.random.default_rng(8).normal(size=(FRONTS, STEPS))
    path, _ = whitened.path_of(pt.as_tensor(eps), *_symbolic(values), pt.as_tensor(rho), zeros_at_mode=True)
    path = path.eval()
    np.testing.assert_allclose(whitened.whiten(path, *values, rho, zeros_at_mode=True), eps, rtol=1e-9, atol=1e-12)
    default, _ = whitened.path_of(pt.as_tensor(eps), *_symbolic(values), pt.as_tensor(rho))
    assert path[0, 1] < default.eval()[0, 1] - 0.5  # the empty day's approximation sits lower
    weights = np.random.default_rng(9).normal(size=(FRONTS, STEPS))

    def cost(scale, disp, off):
        steps, logp = whitened.steps_and_logp(
            pt.as_tensor(eps), values[0], scale, tail, disp, count, days, off, rho, zeros_at_mode=True
        )
        return (steps * weights).sum() + logp.sum()

    pytensor.gradient.verify_grad(cost, [step_scale, dispersion, offset], rng=np.random.default_rng(10))

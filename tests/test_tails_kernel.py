"""The step-density kernel: the same values and derivatives as the sinh-arcsinh density it replaces."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from forecast.models import tails
from forecast.models.tails_kernel import scaled_step_logp


def _inputs():
    rng = np.random.default_rng(0)
    steps = np.concatenate([rng.normal(0.0, 1.0, size=(3, 5)), [[0.0, 1e-12, -1e-12, 40.0, -300.0]]])
    tail = np.array([0.0, 0.2, 0.45, 0.3])
    scale = np.abs(rng.normal(0.5, 0.2, size=(4, 5))) + 0.01
    return steps, tail, scale


@pytest.mark.parametrize("mode", ["FAST_RUN", "NUMBA"])
def test_the_kernel_has_the_sinh_arcsinh_density_and_its_gradient(mode):
    steps, tail, scale = _inputs()
    v, t, s = pt.dmatrix("v"), pt.dvector("t"), pt.dmatrix("s")
    weights = np.random.default_rng(1).normal(size=steps.shape)  # a gradient that is not all ones
    reference = (tails._scaled_logp(v, t[:, None], s) * weights).sum()
    kernel = (scaled_step_logp(v, t, s) * weights).sum()
    expected = pytensor.function([v, t, s], [reference, *pt.grad(reference, [v, t, s])])(steps, tail, scale)
    got = pytensor.function([v, t, s], [kernel, *pt.grad(kernel, [v, t, s])], mode=mode)(steps, tail, scale)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-12)
    for derivative, reference_derivative in zip(got[1:], expected[1:], strict=True):
        np.testing.assert_allclose(derivative, reference_derivative, rtol=1e-9, atol=1e-12)


def test_the_elementwise_density_is_the_numpy_definition():
    steps, tail, scale = _inputs()
    got = scaled_step_logp(steps, tail, scale).eval()
    expected = tails.sinh_arcsinh_logp(steps / scale, tail[:, None]) - np.log(scale)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_a_scale_per_row_broadcasts_and_its_gradient_sums():
    steps, tail, scale = _inputs()
    per_row = scale[:, :1]
    s = pt.dmatrix("s", shape=(None, 1))
    total = scaled_step_logp(steps, tail, s).sum()
    gradient = pytensor.function([s], pt.grad(total, s))(per_row)
    reference = tails._scaled_logp(pt.as_tensor(steps), pt.as_tensor(tail)[:, None], s).sum()
    np.testing.assert_allclose(gradient, pytensor.function([s], pt.grad(reference, s))(per_row), rtol=1e-9)


def test_the_gradient_is_the_derivative_of_the_value():
    steps, tail, scale = _inputs()
    pytensor.gradient.verify_grad(
        lambda v, t, s: scaled_step_logp(v, t, s).sum(),
        [steps[:3], tail[:3], scale[:3]],
        rng=np.random.default_rng(2),
    )


def test_the_kernel_rejects_inputs_of_the_wrong_rank():
    with pytest.raises(TypeError, match="steps must be"):
        scaled_step_logp(pt.vector(), pt.vector(), pt.vector())

"""The rational-quadratic spline of sbi_core.nn.splines: nflows' arithmetic without masked indexing."""

import pytest
import torch
from nflows.transforms.splines.rational_quadratic import unconstrained_rational_quadratic_spline as nflows_spline

from sbi_core.nn.splines import unconstrained_rational_quadratic_spline as spline

BOUND = 3.0


def _params(n: int, bins: int = 10, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 2, generator=g) * 2.5  # about a quarter outside [-3, 3]
    inputs[:4, 0] = torch.tensor([-BOUND, BOUND, -BOUND - 1e-3, BOUND + 1e-3])  # the ends and just past them
    widths = torch.randn(n, 2, bins, generator=g) * 2
    heights = torch.randn(n, 2, bins, generator=g) * 2
    derivatives = torch.randn(n, 2, bins - 1, generator=g) * 2
    return inputs, widths, heights, derivatives


@pytest.mark.parametrize("inverse", [False, True])
def test_the_spline_is_nflows_spline_to_the_bit(inverse):
    inputs, widths, heights, derivatives = _params(500)
    ours = spline(inputs, widths, heights, derivatives, inverse=inverse, tail_bound=BOUND)
    theirs = nflows_spline(inputs, widths.clone(), heights.clone(), derivatives.clone(), inverse=inverse,
                           tails="linear", tail_bound=BOUND)
    assert torch.equal(ours[0], theirs[0])
    assert torch.equal(ours[1], theirs[1])
    outside = inputs.abs() > BOUND
    assert outside.sum() > 50
    assert torch.equal(ours[0][outside], inputs[outside]) and torch.all(ours[1][outside] == 0)


def test_the_inverse_undoes_the_spline_and_the_log_determinant_is_the_derivative():
    inputs, widths, heights, derivatives = _params(300, seed=1)
    inputs = inputs.double().requires_grad_(True)
    widths, heights, derivatives = widths.double(), heights.double(), derivatives.double()
    outputs, logabsdet = spline(inputs, widths, heights, derivatives, tail_bound=BOUND)
    back, inverse_logabsdet = spline(outputs.detach(), widths, heights, derivatives, inverse=True, tail_bound=BOUND)
    assert torch.allclose(back, inputs.detach(), atol=1e-9)
    assert torch.allclose(inverse_logabsdet, -logabsdet.detach(), atol=1e-9)
    # elementwise, so the gradient of the sum is each output's own derivative
    (grad,) = torch.autograd.grad(outputs.sum(), inputs)
    assert torch.allclose(grad.log(), logabsdet.detach(), atol=1e-9)


def test_gradients_are_finite_for_inputs_far_outside_the_interval():
    inputs, widths, heights, derivatives = _params(200, seed=2)
    inputs = inputs * 1e3
    for t in (widths, heights, derivatives):
        t.requires_grad_(True)
    outputs, logabsdet = spline(inputs, widths, heights, derivatives, tail_bound=BOUND)
    (outputs.sum() + logabsdet.sum()).backward()
    assert all(torch.isfinite(t.grad).all() for t in (widths, heights, derivatives))


def test_too_many_bins_for_the_minimal_width_is_refused():
    inputs, widths, heights, derivatives = _params(5, bins=10)
    with pytest.raises(ValueError, match="too large"):
        spline(inputs, widths, heights, derivatives, tail_bound=BOUND, min_bin_width=0.2)

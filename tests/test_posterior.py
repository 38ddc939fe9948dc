"""Posterior: an immutable snapshot whose normaliser does not depend on call order.

The flows here are not trained: :func:`build_flow` initialises one as the
least-squares linear-Gaussian posterior, which leaks a good part of its mass
out of a uniform box, so the truncation normaliser ``Z(x)`` is well below 1
and a wrong or order-dependent normaliser shows.
"""

from __future__ import annotations

import math

import pytest
import torch

from sbi_core import Posterior, Prior
from sbi_core.nn.flows import build_flow
from sbi_core.posteriors.posterior import NORMALIZER_DRAWS

X_EDGE = torch.tensor([0.03, 0.95])  # near a corner of the box: much of q(. | x) lies outside


def _posterior(default_x=None) -> Posterior:
    prior = Prior.uniform_box(["a", "b"], 0.0, 1.0)
    g = torch.Generator().manual_seed(0)
    theta = prior.sample((500,), generator=g)
    x = theta + 0.1 * torch.randn(500, 2, generator=g)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        flow = build_flow("maf", theta, x, hidden_features=8, num_transforms=1)
    return Posterior(flow, prior, default_x=default_x)


def _theta() -> torch.Tensor:
    return torch.tensor([[0.1, 0.9], [0.02, 0.99], [0.5, 0.5], [0.2, 0.7]])


def test_log_prob_is_the_same_before_and_after_sample():
    first_log_prob = _posterior()
    lp_before = first_log_prob.log_prob(_theta(), x=X_EDGE)
    first_log_prob.sample((2000,), x=X_EDGE, seed=1)
    lp_after = first_log_prob.log_prob(_theta(), x=X_EDGE)
    assert torch.equal(lp_before, lp_after)

    # a posterior whose first call is a small sample(): its acceptance rate is a
    # noisy estimate of Z(x) and must not become the normaliser
    first_sample = _posterior()
    first_sample.sample((30,), x=X_EDGE, seed=7)
    assert first_sample.last_acceptance_rate is not None
    assert torch.equal(first_sample.log_prob(_theta(), x=X_EDGE), lp_before)


def test_normaliser_is_the_truncated_mass_and_the_density_integrates_to_one():
    post = _posterior()
    # Z(x) = P_q(theta in box | x), by an independent estimate with other noise
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        draws = post.flow.sample(200_000, X_EDGE, generator=g)
    z = float(post.prior.support_contains(draws).float().mean())
    assert 0.05 < z < 0.8, "the set-up should leak mass out of the box"
    z_hat = math.exp(post._log_normalizer(X_EDGE))
    sd = math.sqrt(z * (1 - z) / NORMALIZER_DRAWS)
    assert abs(z_hat - z) < 5 * sd + 1e-3
    # so the normalised density integrates to about 1 over the box (midpoint rule)
    n = 200
    grid = (torch.arange(n, dtype=torch.float32) + 0.5) / n
    theta = torch.cartesian_prod(grid, grid)
    mass = float(post.log_prob(theta, x=X_EDGE).exp().sum()) / n**2
    assert mass == pytest.approx(1.0, abs=0.05)
    unnormalised = float(post.log_prob(theta, x=X_EDGE, normalize=False).exp().sum()) / n**2
    assert unnormalised == pytest.approx(z, abs=0.05)


def test_with_default_x_gives_a_new_posterior_and_leaves_this_one():
    post = _posterior()
    focused = post.with_default_x(X_EDGE)
    assert focused is not post
    assert post.default_x is None
    assert torch.equal(focused.default_x, X_EDGE)
    with pytest.raises(ValueError, match="Pass an observation x"):
        post.sample((5,))
    assert focused.sample((5,), seed=0).shape == (5, 2)
    # the same draws as with x given explicitly: one network, shared
    assert torch.equal(focused.sample((50,), seed=3), post.sample((50,), x=X_EDGE, seed=3))
    assert torch.equal(focused.log_prob(_theta()), post.log_prob(_theta(), x=X_EDGE))
    # asking for the default it already has gives the posterior itself
    assert focused.with_default_x(X_EDGE.clone()) is focused
    other = focused.with_default_x(torch.tensor([0.5, 0.5]))
    assert torch.equal(focused.default_x, X_EDGE) and torch.equal(other.default_x, torch.tensor([0.5, 0.5]))


def test_default_x_cannot_be_changed_from_outside():
    post = _posterior(default_x=X_EDGE)
    got = post.default_x
    got[0] = 0.9
    assert torch.equal(post.default_x, X_EDGE)
    with pytest.raises(AttributeError):
        post.default_x = torch.tensor([0.5, 0.5])
    assert not hasattr(post, "set_default_x")


def test_a_bad_default_x_is_refused_with_a_clear_message():
    post = _posterior()
    with pytest.raises(Exception, match="has 3 numbers but the model produces 2"):
        post.with_default_x(torch.zeros(3))
    with pytest.raises(Exception, match="NaN"):
        post.with_default_x(torch.tensor([0.1, float("nan")]))


def test_saved_and_loaded_keeps_the_default_x_and_the_density(tmp_path):
    post = _posterior(default_x=X_EDGE)
    post.save(tmp_path / "p.pt")
    again = Posterior.load(tmp_path / "p.pt")
    assert torch.equal(again.default_x, X_EDGE)
    assert torch.allclose(again.log_prob(_theta()), post.log_prob(_theta()), atol=1e-5)

"""Amortized NPE against closed-form posteriors; posterior behaviour."""


import pytest
import torch

import sbi_core
from sbi_core import NPE, Posterior, Prior, PosteriorSamplingError, SBIError


@pytest.fixture(scope="module")
def linreg():
    sim = sbi_core.get_simulator("linear_regression")
    g = torch.Generator().manual_seed(0)
    theta = sim.prior.sample((3000,), generator=g)
    x = sim.simulate(theta, generator=g)
    posterior = NPE(sim.prior, density_estimator="nsf", seed=0).train(theta, x)
    return sim, posterior


@pytest.mark.slow
def test_linear_regression_matches_conjugate_posterior(linreg):
    sim, posterior = linreg
    for seed in (1, 2):
        theta_true = sim.prior.sample((1,), generator=torch.Generator().manual_seed(seed))[0]
        xo = sim.simulate(theta_true, seed=seed)
        ref = sim.reference_posterior(xo, 20_000, seed=seed)
        s = posterior.sample((20_000,), x=xo, seed=seed)
        ref_sd = ref.std(0)
        assert torch.allclose(s.mean(0), ref.mean(0), atol=0.25 * ref_sd.max().item())
        assert torch.allclose(s.std(0), ref_sd, rtol=0.25)
        corr = lambda a: torch.corrcoef(a.T)[0, 1]  # noqa: E731
        assert corr(s).item() == pytest.approx(corr(ref).item(), abs=0.15)


@pytest.mark.slow
def test_gaussian_linear_10d_mean_and_covariance():
    sim = sbi_core.get_simulator("gaussian_linear")
    g = torch.Generator().manual_seed(0)
    theta = sim.prior.sample((5000,), generator=g)
    x = sim.simulate(theta, generator=g)
    posterior = NPE(sim.prior, seed=0).train(theta, x)
    xo = sim.default_observation
    s = posterior.sample((10_000,), x=xo, seed=0)
    # analytic: N(x/2, 0.05 I)
    assert torch.allclose(s.mean(0), 0.5 * xo, atol=0.06)
    cov = torch.cov(s.T)
    assert torch.allclose(torch.diagonal(cov), torch.full((10,), 0.05), rtol=0.3)
    off = cov - torch.diag(torch.diagonal(cov))
    assert off.abs().max().item() < 0.015


@pytest.mark.slow  # trains the module's linear-regression posterior (3,000 simulations)
def test_samples_inside_prior_and_log_prob(linreg):
    sim, posterior = linreg
    xo = sim.default_observation
    s = posterior.sample((500,), x=xo, seed=0)
    assert s.shape == (500, 2)
    assert sim.prior.support_contains(s).all()
    lp = posterior.log_prob(s, x=xo)
    assert lp.shape == (500,) and torch.isfinite(lp).all()
    assert 0 < posterior.last_acceptance_rate <= 1


@pytest.mark.slow  # trains the module's linear-regression posterior (3,000 simulations)
def test_posterior_is_a_snapshot_and_persists(linreg, tmp_path):
    sim, posterior = linreg
    xo = sim.default_observation
    path = tmp_path / "p.pt"
    posterior.save(path)
    again = Posterior.load(path)
    a = posterior.sample((50,), x=xo, seed=3)
    b = again.sample((50,), x=xo, seed=3)
    assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.slow  # trains to accuracy (1,500 simulations, full epochs)
def test_bounded_prior_rejection_and_fixed_parameters():
    prior = Prior.from_spec(
        [
            {"name": "a", "dist": "uniform", "low": 0.0, "high": 1.0},
            {"name": "k", "dist": "fixed", "value": 2.5},
            {"name": "b", "dist": "uniform", "low": 0.0, "high": 1.0},
        ]
    )
    g = torch.Generator().manual_seed(0)
    theta = prior.sample((1500,), generator=g)
    x = theta[:, [0, 2]] * theta[:, 1:2] + 0.05 * torch.randn(1500, 2, generator=g)
    post = NPE(prior, hidden_features=32, num_transforms=2, seed=0).train(theta, x)
    xo = torch.tensor([0.05, 2.4])  # near the edge of the box
    s = post.sample((1000,), x=xo, seed=0)
    assert (s[:, 1] == 2.5).all()
    assert prior.support_contains(s).all()
    assert s[:, 0].mean() < 0.1 and s[:, 2].mean() > 0.85


def test_nan_simulations_are_dropped_and_counted():
    prior = Prior.uniform_box(["a", "b"], 0.0, 1.0)
    g = torch.Generator().manual_seed(0)
    theta = prior.sample((600,), generator=g)
    x = theta + 0.1 * torch.randn(600, 2, generator=g)
    x[:50, 0] = float("nan")
    x[50:60, 1] = float("inf")
    npe = NPE(prior, hidden_features=16, num_transforms=2, max_epochs=3)
    npe.train(theta, x)
    assert npe.num_invalid == 60


def test_wrong_shapes_and_bad_observation_are_clear():
    prior = Prior.uniform_box(["a", "b"], 0.0, 1.0)
    with pytest.raises(SBIError, match=r"shape \(N, 2\)"):
        NPE(prior).train(torch.zeros(100, 3), torch.zeros(100, 2))
    with pytest.raises(SBIError, match="one row per theta row"):
        NPE(prior).train(torch.zeros(100, 2), torch.zeros(90, 2))
    theta = prior.sample((200,))
    post = NPE(prior, hidden_features=8, num_transforms=1, max_epochs=2).train(theta, theta.clone())
    with pytest.raises(SBIError, match="has 3 numbers but the model produces 2"):
        post.sample((10,), x=torch.zeros(3))
    with pytest.raises(SBIError, match="NaN"):
        post.sample((10,), x=torch.tensor([0.1, float("nan")]))


def test_implausible_observation_gives_bounded_time_error():
    prior = Prior.uniform_box(["a"], 0.0, 1.0)
    g = torch.Generator().manual_seed(0)
    theta = prior.sample((1000,), generator=g)
    x = theta + 0.01 * torch.randn(1000, 1, generator=g)
    # a few epochs suffice: at x = 50 the flow puts its mass far outside [0, 1]
    post = NPE(prior, hidden_features=16, num_transforms=2, seed=0, max_epochs=5).train(theta, x)
    with pytest.raises(PosteriorSamplingError, match="inside the prior"):
        post.sample((1000,), x=torch.tensor([50.0]), max_sampling_time=5)

"""The ABC posterior: a weighted kernel density on particles, truncated to the prior, for one observation."""

import math

import pytest
import torch

from sbi_core.errors import SBIError
from sbi_core.posteriors.particles import (
    FORMAT,
    ParticlePosterior,
    cv_bandwidth,
    effective_sample_size,
    kde_bandwidth,
)
from sbi_core.stats.priors import Prior

PRIOR = Prior.from_spec([
    {"name": "a", "dist": "uniform", "low": 0.0, "high": 1.0},
    {"name": "b", "dist": "uniform", "low": -1.0, "high": 1.0},
])
X_OBS = torch.tensor([0.3, -0.2, 1.0])


def make(prior=PRIOR, weights=None, **kwargs) -> ParticlePosterior:
    g = torch.Generator().manual_seed(0)
    particles = torch.stack([torch.rand(200, generator=g) * 0.2, torch.rand(200, generator=g) * 2 - 1], 1)
    if prior.dim == 3:
        particles = torch.cat([particles, torch.zeros(200, 1)], 1)
    return ParticlePosterior(prior, particles, weights, X_OBS, epsilon=0.1, acceptance_rate=0.02, **kwargs)


def test_samples_lie_inside_the_support_at_any_n_and_repeat_with_a_seed():
    post = make()  # particles crowd the edge a = 0: many kernel draws fall outside
    for shape in [(1,), (7,), (3, 4), (5000,)]:
        s = post.sample(shape, seed=1)
        assert s.shape == (*shape, 2) and bool(PRIOR.support_contains(s.reshape(-1, 2)).all())
    assert torch.equal(post.sample((50,), seed=3), post.sample((50,), seed=3))
    assert not torch.equal(post.sample((50,), seed=3), post.sample((50,), seed=4))
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(post.sample((20,), generator=g1), post.sample((20,), generator=g2))
    assert 0 < post.last_acceptance_rate < 1


def test_log_prob_is_minus_inf_outside_and_normalised_inside():
    post = make()
    lp = post.log_prob(torch.tensor([[0.1, 0.0], [-0.1, 0.0], [0.5, 2.0]]))
    assert math.isfinite(float(lp[0])) and lp[1] == -math.inf and lp[2] == -math.inf
    # integrate exp(log_prob) over the support on a grid: about 1
    a, b = torch.meshgrid(torch.linspace(0.0025, 0.9975, 200), torch.linspace(-0.995, 0.995, 200), indexing="ij")
    grid = torch.stack([a.reshape(-1), b.reshape(-1)], 1)
    mass = float(post.log_prob(grid).exp().sum()) * (1 / 200) * (2 / 200)
    assert mass == pytest.approx(1.0, abs=0.05)
    assert torch.allclose(post.log_prob(grid[:10], normalize=False), post.log_prob(grid[:10]) + post._log_normalizer())


def test_only_its_own_observation():
    post = make()
    assert post.default_x is None
    with_x = post.with_default_x(X_OBS)
    assert torch.equal(with_x.default_x, X_OBS) and with_x.with_default_x(X_OBS) is with_x
    with pytest.raises(SBIError, match="another observation"):
        post.with_default_x(X_OBS + 1)
    with pytest.raises(SBIError, match="another observation"):
        post.sample((3,), x=X_OBS + 1)
    with pytest.raises(SBIError, match="amortized method such as NPE, NLE or NRE"):
        post.sample_batched(10, X_OBS[None].repeat(4, 1))
    assert post.sample((2,), x=X_OBS).shape == (2, 2)


def test_report_and_cloud():
    post = make()
    report = post.sampling_report
    assert report == {"kind": "abc", "epsilon": 0.1, "acceptance_rate": 0.02, "ess": pytest.approx(200.0),
                      "num_particles": 200, "warning": None}
    assert torch.equal(post.cloud, post.particles)  # equal weights: the particles as they are
    w = torch.zeros(200, dtype=torch.float64)
    w[:10] = 1.0
    weighted = make(weights=w)
    assert weighted.sampling_report["ess"] == pytest.approx(10.0)
    assert "effective particles" in weighted.sampling_report["warning"]
    cloud = weighted.cloud
    assert cloud.shape == (200, 2) and all(any(torch.equal(c, p) for p in weighted.particles[:10]) for c in cloud[:20])
    assert torch.equal(cloud, weighted.cloud)  # deterministic


def test_save_and_load_round_trip(tmp_path):
    w = torch.linspace(1, 2, 200, dtype=torch.float64)
    post = make(weights=w).with_default_x(X_OBS)
    post.save(tmp_path / "abc.pt")
    payload = torch.load(tmp_path / "abc.pt", weights_only=True)
    assert payload["format"] == FORMAT == "sbi_core.abc_posterior/1"
    back = ParticlePosterior.load(tmp_path / "abc.pt")
    assert torch.equal(back.sample((30,), seed=2), post.sample((30,), seed=2))
    theta = post.sample((10,), seed=0)
    assert torch.allclose(back.log_prob(theta), post.log_prob(theta))
    assert torch.equal(back.default_x, X_OBS) and back.sampling_report == post.sampling_report
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(SBIError):
        ParticlePosterior.load(tmp_path / "other.pt")


def test_fixed_parameters_are_inserted_at_their_values():
    prior = Prior.from_spec(PRIOR.to_spec() + [{"name": "c", "dist": "fixed", "value": 2.5}])
    post = make(prior=prior)
    s = post.sample((100,), seed=0)
    assert s.shape == (100, 3) and bool((s[:, 2] == 2.5).all())
    assert bool(prior.support_contains(s).all())
    assert math.isfinite(float(post.log_prob(s[:1])[0]))
    assert post.log_prob(torch.tensor([[0.1, 0.0, 1.0]]))[0] == -math.inf


def test_bandwidth_rules():
    assert kde_bandwidth("scott", 100, 2) == pytest.approx(100 ** (-1 / 6))
    assert kde_bandwidth("silverman", 100, 1) == pytest.approx((100 * 3 / 4) ** (-1 / 5))
    assert kde_bandwidth(0.3, 100, 2) == 0.3
    with pytest.raises(SBIError):
        kde_bandwidth("wide", 100, 2)
    g = torch.Generator().manual_seed(0)
    h = cv_bandwidth(torch.randn(500, 1, generator=g), torch.ones(500))
    assert 0.2 < h < 0.8  # a Gaussian sample: near the normal-reference rule (0.29 here)
    assert effective_sample_size(torch.ones(7)) == pytest.approx(7)

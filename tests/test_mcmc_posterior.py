"""MCMCPosterior: the posterior surface of likelihood and ratio estimators, sampled by MCMC."""

import math

import pytest
import torch

import sbi_core
from sbi_core import Prior, SBIError
from sbi_core.posteriors.mcmc import FORMAT, MCMCPosterior, MCMCSettings
from sbi_core.methods.nle import NLE
from sbi_core.methods.nre import NRE
from sbi_core.errors import Cancelled

SMALL = dict(hidden_features=16, max_epochs=15, num_chains=20, warmup=20, thin=1)  # short chains: surface tests


def _pairs(prior, n=600, seed=0):
    sim = sbi_core.get_simulator("linear_regression")
    g = torch.Generator().manual_seed(seed)
    theta = prior.sample((n,), generator=g)
    return sim, theta, sim.simulate(theta, generator=g)


@pytest.fixture(scope="module")
def ratio_post():
    sim = sbi_core.get_simulator("linear_regression")
    sim, theta, x = _pairs(sim.prior)
    return sim, NRE(sim.prior, **SMALL).train(theta, x)


@pytest.fixture(scope="module")
def likelihood_post():
    sim = sbi_core.get_simulator("linear_regression")
    sim, theta, x = _pairs(sim.prior)
    return sim, NLE(sim.prior, num_transforms=1, **SMALL).train(theta, x)


def test_sample_shape_report_and_no_acceptance(ratio_post):
    sim, post = ratio_post
    s = post.sample((3, 100), x=sim.default_observation, seed=0)
    assert s.shape == (3, 100, 2)
    assert torch.isfinite(s).all()
    report = post.sampling_report
    assert set(report) == {"kind", "num_chains", "num_draws", "ess", "rhat", "seconds", "warning"}
    assert report["kind"] == "mcmc" and len(report["ess"]) == len(report["rhat"]) == 2
    assert report["num_chains"] * report["num_draws"] >= 300
    assert post.last_acceptance_rate is None
    assert post.reports_progress and post.cloud is None


@pytest.mark.parametrize("which", ["ratio_post", "likelihood_post"])
def test_save_load_round_trip_gives_identical_samples(which, request, tmp_path):
    sim, post = request.getfixturevalue(which)
    post = post.with_default_x(sim.default_observation)
    path = tmp_path / "post.pt"
    post.save(path)
    assert torch.load(path, weights_only=True)["format"] == FORMAT
    back = MCMCPosterior.load(path)
    assert back.learns == post.learns and back.mcmc == post.mcmc
    assert torch.equal(back.default_x, post.default_x)
    assert torch.equal(back.sample((200,), seed=3), post.sample((200,), seed=3))
    theta = sim.prior.sample((20,))
    assert torch.allclose(back.log_prob(theta), post.log_prob(theta))


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"format": "sbi_core.posterior/1"}, path)
    with pytest.raises(SBIError, match="not a saved"):
        MCMCPosterior.load(path)


def test_same_seed_same_samples_and_generator(ratio_post):
    sim, post = ratio_post
    xo = sim.default_observation
    a = post.sample((100,), x=xo, seed=1)
    assert torch.equal(a, post.sample((100,), x=xo, seed=1))
    b = post.sample((100,), x=xo, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, post.sample((100,), x=xo, seed=2))


def test_sample_batched_matches_each_observation(ratio_post):
    sim, post = ratio_post
    thetas = torch.tensor([[1.0, 1.0], [-1.0, -0.5]])
    xs = sim.simulate(thetas, seed=5)
    out = post.sample_batched(500, xs, seed=0)
    assert out.shape == (2, 500, 2)
    for i in range(2):
        ref = sim.reference_posterior(xs[i], 5000, seed=i)
        assert torch.allclose(out[i].mean(0), ref.mean(0), atol=0.25)
    assert (out[0].mean(0) - out[1].mean(0)).abs().min() > 0.4  # the groups really see their own x
    with pytest.raises(SBIError, match="shape"):
        post.sample_batched(10, xs[0])


def test_log_prob_is_the_unnormalised_potential(ratio_post):
    sim, post = ratio_post
    xo = sim.default_observation
    theta = sim.prior.sample((50,))
    lp = post.log_prob(theta, x=xo)
    assert lp.shape == (50,) and torch.isfinite(lp).all()
    expected = post.net(theta, xo.expand(50, -1)) + sim.prior.log_prob(theta)
    assert torch.allclose(lp, expected, atol=1e-5)
    assert torch.allclose(post.log_prob(theta, x=xo, normalize=False), lp)


def test_with_default_x_is_a_new_snapshot(ratio_post):
    sim, post = ratio_post
    xo = sim.default_observation
    other = post.with_default_x(xo)
    assert other is not post and post.default_x is None
    assert torch.equal(other.default_x, xo)
    assert other.with_default_x(xo) is other
    with pytest.raises(ValueError, match="observation"):
        post.sample((5,))
    with pytest.raises(SBIError, match="numbers"):
        post.sample((5,), x=torch.zeros(3))


def test_snapshot_is_frozen_against_later_training():
    sim = sbi_core.get_simulator("linear_regression")
    sim, theta, x = _pairs(sim.prior, n=300)
    est = NRE(sim.prior, hidden_features=8, max_epochs=3, num_chains=10, warmup=5)
    post = est.train(theta, x)
    probe = sim.prior.sample((10,))
    before = post.log_prob(probe, x=x[0])
    est.train(*_pairs(sim.prior, n=300, seed=1)[1:])
    assert torch.equal(post.log_prob(probe, x=x[0]), before)
    assert all(not p.requires_grad for p in post.net.parameters())


def test_on_progress_and_cancel(ratio_post):
    sim, post = ratio_post
    calls = []
    post.sample((200,), x=sim.default_observation, seed=0, on_progress=lambda d, t: calls.append((d, t)))
    assert 1 <= len(calls) <= 21
    assert all(d <= t for d, t in calls) and calls[-1][0] == calls[-1][1]
    with pytest.raises(Cancelled):
        post.sample((200,), x=sim.default_observation, seed=0, cancel=lambda: True)


def test_fixed_parameters_are_inserted_and_checked():
    prior = Prior.from_spec([
        {"name": "b0", "dist": "uniform", "low": -3.0, "high": 3.0},
        {"name": "b1", "dist": "fixed", "value": -1.2},
    ])
    sim, theta, x = _pairs(prior, n=400)
    post = NRE(prior, hidden_features=16, max_epochs=10, num_chains=20, warmup=20).train(theta, x)
    xo = sim.simulate(torch.tensor([0.5, -1.2]), seed=0)
    s = post.sample((300,), x=xo, seed=0)
    assert s.shape == (300, 2)
    assert torch.all(s[:, 1] == -1.2)
    assert prior.support_contains(s).all()
    assert len(post.sampling_report["ess"]) == 1
    lp = post.log_prob(torch.tensor([[0.5, -1.2], [0.5, 0.0], [5.0, -1.2]]), x=xo)
    assert math.isfinite(lp[0]) and lp[1] == -math.inf and lp[2] == -math.inf
    assert post.sample_batched(20, xo[None], seed=0)[..., 1].eq(-1.2).all()


def test_settings_reach_the_sampler(ratio_post):
    sim, post = ratio_post
    custom = MCMCPosterior(post.net, "ratio", sim.prior, mcmc=MCMCSettings(num_chains=8, warmup=5, thin=1))
    custom.sample((40,), x=sim.default_observation, seed=0)
    assert custom.sampling_report["num_chains"] == 8
    assert custom.sampling_report["num_draws"] == 5
    with pytest.raises(ValueError, match="learns"):
        MCMCPosterior(post.net, "posterior", sim.prior)


def test_init_pool_starts_chains_and_is_saved(ratio_post, tmp_path):
    sim, post = ratio_post
    xo = sim.default_observation
    pool = sim.reference_posterior(xo, 300, seed=0)
    pooled = MCMCPosterior(post.net, "ratio", sim.prior, default_x=xo, mcmc=post.mcmc, init_pool=pool)
    assert torch.equal(pooled.init_pool, pool) and post.init_pool is None
    s = pooled.sample((200,), seed=0)
    assert torch.allclose(s.mean(0), pool.mean(0), atol=0.3)
    pooled.save(tmp_path / "pooled.pt")
    back = MCMCPosterior.load(tmp_path / "pooled.pt")
    assert torch.equal(back.init_pool, pool)
    assert torch.equal(back.sample((200,), seed=0), s)


def test_chains_scale_with_the_draws_asked_for():
    from sbi_core.posteriors.mcmc import chains_for

    assert [chains_for(n) for n in (10, 1000, 10_000, 10**6)] == [50, 50, 500, 1000]
    kw = MCMCSettings().kwargs(10_000)
    assert kw["num_chains"] == 500 and kw["num_init_candidates"] >= 2000
    assert MCMCSettings(num_chains=20).kwargs(10_000)["num_chains"] == 20  # a setting wins


def test_a_sequential_round_proposes_the_draws_its_snapshot_made_first(ratio_post):
    """The next round's parameters reuse the cloud's draws at x_o; more than that runs new chains."""
    from sbi_core.methods.mcmc_estimator import DrawsFirst
    from sbi_core.methods.snpe import PosteriorProposal

    sim, post = ratio_post
    xo = sim.default_observation
    post = post.with_default_x(xo)
    est = NRE(sim.prior, sequential=True, **SMALL)
    assert est.next_proposal(post, xo, torch.Generator()) is post  # nothing drawn yet: the posterior itself
    assert isinstance(est.proposal_rule, PosteriorProposal)
    cloud = post.sample((300,), seed=0)
    assert torch.equal(post.drawn_at(xo), cloud) and post.drawn_at(xo + 1.0) is None
    proposal = est.next_proposal(post, xo, torch.Generator())
    assert isinstance(proposal, DrawsFirst)
    g = torch.Generator().manual_seed(1)
    some = proposal.sample((200,), x=xo, generator=g)
    rows = {tuple(r) for r in cloud.tolist()}
    assert some.shape == (200, cloud.shape[1]) and all(tuple(r) in rows for r in some.tolist())
    assert len({tuple(r) for r in some.tolist()}) == 200  # without replacement
    more = proposal.sample((400,), x=xo, generator=g)
    assert more.shape == (400, cloud.shape[1])
    assert sum(tuple(r) in rows for r in more.tolist()) == 300  # all 300 reused, 100 new draws
    assert post.with_default_x(xo + 1.0).drawn_at(xo) is None  # a copy forgets the last call's draws

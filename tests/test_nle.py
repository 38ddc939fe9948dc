"""NLE and SNLE: a likelihood flow q(x | theta) sampled by MCMC recovers the conjugate posterior."""

import pytest
import torch

import sbi_core
from sbi_core import SBIError
from sbi_core.posteriors.mcmc import MCMCPosterior
from sbi_core.methods.nle import METHOD_NLE, METHOD_SNLE, NLE, SNLE

SMALL = dict(hidden_features=32, num_transforms=2, max_epochs=60)


def _linreg(n, seed=0):
    sim = sbi_core.get_simulator("linear_regression")
    g = torch.Generator().manual_seed(seed)
    theta = sim.prior.sample((n,), generator=g)
    return sim, theta, sim.simulate(theta, generator=g)


def assert_matches_reference(samples, ref, mean_tol=0.3, std_rtol=0.3, corr_tol=0.2):
    """Mean within ``mean_tol`` reference sds, sds within ``std_rtol``, correlation within ``corr_tol``."""
    sd = ref.std(0)
    assert torch.all((samples.mean(0) - ref.mean(0)).abs() < mean_tol * sd), (samples.mean(0), ref.mean(0))
    assert torch.allclose(samples.std(0), sd, rtol=std_rtol), (samples.std(0), sd)
    corr = lambda a: torch.corrcoef(a.T)[0, 1]  # noqa: E731
    assert abs(float(corr(samples) - corr(ref))) < corr_tol


@pytest.mark.slow  # trains to accuracy and runs MCMC (about 5 s)
def test_nle_recovers_linear_regression_posterior():
    sim, theta, x = _linreg(2000)
    post = NLE(sim.prior, **SMALL).train(theta, x)
    assert isinstance(post, MCMCPosterior) and post.learns == "likelihood"
    xo = sim.default_observation
    s = post.sample((1000,), x=xo, seed=0)
    assert_matches_reference(s, sim.reference_posterior(xo, 20_000, seed=0))
    assert post.sampling_report["warning"] is None


def test_snle_two_rounds_through_the_class():
    sim, theta, x = _linreg(1000)
    xo = sim.default_observation
    est = SNLE(sim.prior, **SMALL)
    assert est.sequential
    est.append_simulations(theta, x)
    est.fit()
    proposal = est.next_proposal(est.build_posterior(), xo, torch.Generator().manual_seed(0))
    assert torch.equal(proposal.default_x, xo)
    theta1 = proposal.sample((1000,), x=xo, generator=torch.Generator().manual_seed(1))
    est.append_simulations(theta1, sim.simulate(theta1, seed=1))
    result = est.fit()
    assert result.history[0]["round"] == 1 and est.num_simulations == 2000
    assert result.stopped_early  # a warm round waits half the patience (10 -> 5) for a better loss
    assert result.epochs - result.best_epoch == 5
    post = est.build_posterior(default_x=xo)
    assert torch.equal(post.init_pool, theta1)  # chains may start where the last posterior was
    s = post.sample((1000,), seed=0)
    assert_matches_reference(s, sim.reference_posterior(xo, 20_000, seed=0))


def _registered(name):
    try:
        return sbi_core.methods.get_method(name)
    except SBIError:
        pytest.skip(f"method {name!r} is not registered yet")


@pytest.mark.slow
def test_snle_through_run_sequential():
    _registered("snle")
    sim = sbi_core.get_simulator("linear_regression")
    xo = sim.default_observation
    events = []
    run = sbi_core.run_sequential(sim, sim.prior, xo, method="snle", num_rounds=2, simulations_per_round=600,
                                  seed=0, on_event=events.append, density_estimator="maf", hidden_features=32,
                                  num_transforms=2, max_epochs=60, num_posterior_samples=1000)
    assert len(run.rounds) == 2 and not isinstance(run.rounds[1].proposal, sbi_core.Prior)
    assert run.rounds[-1].sampling["kind"] == "mcmc"
    assert any(e.get("type") == "epoch" for e in events)
    assert_matches_reference(run.rounds[-1].posterior_samples, sim.reference_posterior(xo, 20_000, seed=0),
                             mean_tol=0.35, std_rtol=0.35)


def test_invalid_pairs_are_dropped_and_counted():
    sim, theta, x = _linreg(100)
    x[:7, 0] = float("nan")
    est = NLE(sim.prior, hidden_features=8, num_transforms=1, max_epochs=2)
    assert est.append_simulations(theta, x) == 7
    assert est.num_simulations == 93 and est.num_invalid == 7
    with pytest.raises(RuntimeError):
        est.build_posterior()
    with pytest.raises(SBIError, match="theta and x"):
        est.train(theta)


def test_methods_describe_themselves():
    assert (METHOD_NLE.name, METHOD_NLE.sequential, METHOD_NLE.learns) == ("nle", False, "likelihood")
    assert (METHOD_SNLE.name, METHOD_SNLE.sequential, METHOD_SNLE.learns) == ("snle", True, "likelihood")
    assert METHOD_NLE.rounds(5) == 1 and METHOD_SNLE.rounds(5) == 5
    est = METHOD_SNLE.build(sbi_core.get_simulator("two_moons").prior, density_estimator="maf",
                            hidden_features=8, num_transforms=1, seed=3, max_epochs=4, num_chains=7)
    assert est.sequential and est.mcmc.num_chains == 7 and est.train_config.max_epochs == 4
    assert not METHOD_NLE.build(sbi_core.get_simulator("two_moons").prior, density_estimator="nsf",
                                hidden_features=8, num_transforms=1, seed=0).sequential


def test_same_seed_same_network():
    sim, theta, x = _linreg(200)
    a = NLE(sim.prior, hidden_features=8, num_transforms=1, max_epochs=3, seed=4).train(theta, x)
    b = NLE(sim.prior, hidden_features=8, num_transforms=1, max_epochs=3, seed=4).train(theta, x)
    probe = sim.prior.sample((10,))
    assert torch.equal(a.log_prob(probe, x=x[0]), b.log_prob(probe, x=x[0]))

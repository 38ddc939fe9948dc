"""TSNPE: truncated-prior proposals, box sampling of the prior, and the sequential loop."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

import sbi_core
from sbi_core import Prior, run_sequential
from sbi_core.methods import NPE, TruncatedPrior

from test_snpe import area90

FAMILIES = [
    ({"name": "u", "dist": "uniform", "low": -1.0, "high": 3.0}, stats.uniform(-1.0, 4.0)),
    ({"name": "n", "dist": "normal", "loc": 1.0, "scale": 2.0}, stats.norm(1.0, 2.0)),
    ({"name": "l", "dist": "lognormal", "loc": 0.0, "scale": 0.5}, stats.lognorm(0.5)),
    ({"name": "h", "dist": "halfnormal", "scale": 1.5}, stats.halfnorm(scale=1.5)),
    ({"name": "g", "dist": "gamma", "concentration": 2.0, "rate": 3.0}, stats.gamma(2.0, scale=1 / 3.0)),
    ({"name": "b", "dist": "beta", "alpha": 2.0, "beta": 5.0, "low": 0.0, "high": 2.0},
     stats.beta(2.0, 5.0, loc=0.0, scale=2.0)),
]


@pytest.mark.parametrize("spec,dist", FAMILIES, ids=[f[0]["dist"] for f in FAMILIES])
def test_sample_between_follows_the_truncated_marginal(spec, dist):
    prior = Prior.from_spec([spec])
    lo, hi = float(dist.ppf(0.3)), float(dist.ppf(0.9))
    values = prior.marginals[0].sample_between(20_000, lo, hi, generator=torch.Generator().manual_seed(0))
    assert values.shape == (20_000,)
    assert values.min() >= lo and values.max() <= hi
    f_lo, f_hi = dist.cdf(lo), dist.cdf(hi)
    truncated_cdf = lambda v: (dist.cdf(v) - f_lo) / (f_hi - f_lo)  # noqa: E731
    assert stats.kstest(values.numpy(), truncated_cdf).pvalue > 1e-3
    # box_mass is the prior probability of the interval
    assert prior.box_mass(torch.tensor([lo]), torch.tensor([hi])) == pytest.approx(0.6, abs=1e-5)


def test_sample_in_box_clips_to_the_support_and_keeps_fixed_values():
    prior = Prior.from_spec([
        {"name": "a", "dist": "gamma", "concentration": 2.0, "rate": 1.0},
        {"name": "k", "dist": "fixed", "value": 4.0},
        {"name": "c", "dist": "uniform", "low": 0.0, "high": 1.0},
    ])
    theta = prior.sample_in_box(1000, torch.tensor([-5.0, 0.0, 0.25]), torch.tensor([1.0, 9.0, 0.5]),
                                generator=torch.Generator().manual_seed(1))
    assert theta.shape == (1000, 3)
    assert (theta[:, 0] > 0).all() and (theta[:, 0] <= 1).all()
    assert (theta[:, 1] == 4.0).all()
    assert (theta[:, 2] >= 0.25).all() and (theta[:, 2] <= 0.5).all()
    assert prior.box_mass(torch.tensor([-5.0, 0.0, 0.25]), torch.tensor([1.0, 9.0, 0.5])) == pytest.approx(
        stats.gamma(2.0).cdf(1.0) * 0.25, rel=1e-6)


@pytest.fixture(scope="module")
def linear_posterior():
    """An NPE posterior for linear regression (2 parameters) and its observation."""
    sim = sbi_core.get_simulator("linear_regression")
    g = torch.Generator().manual_seed(0)
    theta = sim.prior.sample((2000,), generator=g)
    x = sim.simulate(theta, generator=g)
    post = NPE(sim.prior, seed=0, hidden_features=32, num_transforms=2, max_epochs=40).train(theta, x)
    return sim, post, sim.default_observation


@pytest.mark.slow  # trains the module's posterior (about 6 s with its fixture)
def test_truncated_prior_matches_brute_force_rejection(linear_posterior):
    """The box shortcut gives the same distribution as rejection from the whole prior."""
    sim, post, x_o = linear_posterior
    region = TruncatedPrior(sim.prior, post, x_o, generator=torch.Generator().manual_seed(2))
    fast = region.sample((4000,), generator=torch.Generator().manual_seed(3))
    assert fast.shape == (4000, 2)
    assert sim.prior.support_contains(fast).all()
    assert region.contains(fast).all()
    # brute force: the whole prior, kept where log q >= threshold
    pool = sim.prior.sample((400_000,), generator=torch.Generator().manual_seed(4))
    slow = pool[post.log_prob(pool, x=x_o, normalize=False) >= region.threshold][:4000]
    assert slow.shape[0] > 1000
    for d in range(2):
        assert stats.ks_2samp(fast[:, d].numpy(), slow[:, d].numpy()).pvalue > 1e-3
    # the region holds all but ~eps of the posterior, and far less than the whole prior
    inside = region.contains(post.sample((20_000,), x=x_o, seed=5)).float().mean()
    assert inside > 0.995
    assert 0.0 < region.prior_fraction < 0.5
    assert region.prior_fraction == pytest.approx(
        float((post.log_prob(pool, x=x_o, normalize=False) >= region.threshold).float().mean()), rel=0.15)


@pytest.mark.slow
def test_tsnpe_shrinks_and_proposes_from_the_region():
    sim = sbi_core.get_simulator("two_moons")
    events = []
    run = run_sequential(
        sim, sim.prior, sim.default_observation, method="tsnpe", num_rounds=3, simulations_per_round=300,
        seed=0, on_event=events.append, hidden_features=32, num_transforms=3, num_posterior_samples=2000,
    )
    proposals = [r.proposal for r in run.rounds]
    assert proposals[0] is sim.prior
    assert all(isinstance(p, TruncatedPrior) for p in proposals[1:])
    fractions = [e["proposal_fraction"] for e in events if e["type"] == "round"]
    # truncated by round 3 to well under the prior (0.51 to 0.55 of it at this small budget, by CPU:
    # floating-point kernels differ between machines); no truncation would keep 1.0
    assert fractions[0] == 1.0 and 0 < fractions[2] < 0.65, fractions
    for r in run.rounds[1:]:  # every later round's parameters came from its region
        assert r.proposal.contains(r.theta).all()
        assert r.seconds["propose"] > 0
    bounds = sim.prior.bounds
    areas = [area90(r.posterior_samples, bounds) for r in run.rounds]
    assert areas[-1] <= areas[0], areas
    first, last = run.rounds[0].reference_c2st, run.rounds[-1].reference_c2st  # C2ST against the exact posterior
    assert last < first and last < 0.65, (first, last)


def test_tsnpe_runs_from_the_spec_with_a_truncated_prior():
    # reproducibility with a seed is tests/test_method_contract.py's, for every method
    spec = sbi_core.RunSpec(simulator="linear_regression", method="tsnpe", num_rounds=2,
                            simulations_per_round=200, max_epochs=3, hidden_features=16, num_transforms=2)
    spec.validate()
    result = sbi_core.execute(spec)
    assert len(result.rounds) == 2 and isinstance(result.rounds[1].proposal, TruncatedPrior)
    assert math.isfinite(result.rounds[1].proposal.threshold)
    assert np.isfinite(result.rounds[-1].posterior_samples.numpy()).all()

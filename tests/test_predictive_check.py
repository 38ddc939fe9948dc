"""Posterior predictive check on linear regression: exact posterior samples explain the data, shifted ones do not."""

import math

import pytest
import torch

import sbi_core
from sbi_core import SBIError
from sbi_core.diagnostics import posterior_predictive_check
from sbi_core.diagnostics.predictive import MAX_PLOTTED


@pytest.fixture(scope="module")
def observations():
    """Ten observations of linear regression at parameters from its prior, with 1,000 exact posterior samples each."""
    sim = sbi_core.get_simulator("linear_regression")
    g = torch.Generator().manual_seed(0)
    thetas = sim.prior.sample((10,), generator=g)
    xs = sim.simulate(thetas, generator=g)
    return sim, [(x, sim.reference_posterior(x, 1000, generator=g)) for x in xs]


def test_exact_posterior_explains_the_observation(observations):
    sim, obs = observations
    checks = [posterior_predictive_check(sim, samples, x, level=0.9, seed=i) for i, (x, samples) in enumerate(obs)]
    fractions = torch.tensor([c.fraction_inside for c in checks])
    assert fractions.mean() >= 0.8, fractions
    c = checks[0]
    assert c.lower.shape == c.upper.shape == c.inside.shape == c.p_values.shape == (10,)
    assert (c.lower < c.upper).all() and c.n_invalid == 0 and c.n_simulations == 1000 and c.level == 0.9
    assert c.simulations.shape == (MAX_PLOTTED, 10)
    assert c.fraction_inside == pytest.approx(float(c.inside.float().mean()))
    assert ((c.p_values >= 0) & (c.p_values <= 1)).all()


def test_posterior_far_from_the_truth_fails_the_check(observations):
    sim, obs = observations
    g = torch.Generator().manual_seed(1)
    fractions = []
    for i, (x, _) in enumerate(obs):
        wrong = sim.prior.sample((1000,), generator=g) + 3.0
        fractions.append(posterior_predictive_check(sim, wrong, x, seed=i).fraction_inside)
    assert sum(fractions) / len(fractions) < 0.5, fractions


def test_p_values_are_two_sided():
    def identity(theta):
        return theta

    samples = torch.arange(1001.0)[:, None]  # predictive draws 0, 1, ..., 1000
    centre = posterior_predictive_check(identity, samples, torch.tensor([500.0]))
    edge = posterior_predictive_check(identity, samples, torch.tensor([20.0]))
    outside = posterior_predictive_check(identity, samples, torch.tensor([3000.0]))
    assert centre.p_values[0] == 1.0 and bool(centre.inside[0])
    assert edge.p_values[0] == pytest.approx(2 * 21 / 1001) and not bool(edge.inside[0])
    assert outside.p_values[0] == 0 and outside.fraction_inside == 0
    assert (centre.lower[0], centre.upper[0]) == (50.0, 950.0)


def test_invalid_simulations_are_left_out_and_counted():
    def sometimes_nan(theta):
        x = theta.repeat(1, 2)
        x[::4, 1] = math.nan
        return x

    samples = torch.randn(100, 1, generator=torch.Generator().manual_seed(0))
    check = posterior_predictive_check(sometimes_nan, samples, torch.zeros(2))
    assert check.n_invalid == 25 and check.n_simulations == 75
    assert torch.isfinite(check.simulations).all()
    with pytest.raises(SBIError, match="Only 0 of 100"):
        posterior_predictive_check(lambda t: torch.full((len(t), 2), math.nan), samples, torch.zeros(2))


def test_seed_makes_a_simulator_reproducible(observations):
    sim, obs = observations
    x, samples = obs[0]
    a = posterior_predictive_check(sim, samples, x, seed=3)
    b = posterior_predictive_check(sim, samples, x, seed=3)
    c = posterior_predictive_check(sim, samples, x, seed=4)
    assert torch.equal(a.simulations, b.simulations) and not torch.equal(a.simulations, c.simulations)


def test_bad_inputs_say_what_to_fix(observations):
    sim, obs = observations
    x, samples = obs[0]
    with pytest.raises(SBIError, match=r"expected \(1000, 9\)"):
        posterior_predictive_check(sim, samples, x[:9])
    with pytest.raises(SBIError, match="level"):
        posterior_predictive_check(sim, samples, x, level=90)
    with pytest.raises(SBIError, match="NaN"):
        posterior_predictive_check(sim, samples, torch.full((10,), math.nan))

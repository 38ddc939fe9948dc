"""The public API of docs/architecture.md ("The public API"), as written there: one test per part, so a failure names it."""

import pytest
import torch

import sbi_core

N = 300


@pytest.fixture(scope="module")
def sim():
    return sbi_core.get_simulator("two_moons")


@pytest.fixture(scope="module")
def trained(sim):
    """A quickly trained amortized posterior (the API's shape, not its accuracy)."""
    torch.manual_seed(0)
    theta = sim.prior.sample((500,))
    x = sim.simulate(theta)
    return sbi_core.NPE(sim.prior, density_estimator="nsf").train(theta, x, max_epochs=3)


def test_list_simulators():
    names = sbi_core.list_simulators()
    assert "linear_regression" in names and "two_moons" in names and len(names) >= 10


def test_simulator_attributes(sim):
    assert sim.param_names == ["theta1", "theta2"]
    assert isinstance(sim.prior, sbi_core.Prior)
    assert sim.default_observation.shape == (2,)


def test_simulate_is_batched(sim):
    theta = sim.prior.sample((7,))
    assert sim.simulate(theta).shape == (7, 2)


def test_prior_from_spec_sample_log_prob_to_spec():
    prior = sbi_core.Prior.from_spec([
        {"name": "a", "dist": "uniform", "low": -1.0, "high": 1.0},
        {"name": "b", "dist": "normal", "loc": 0.0, "scale": 1.0},
        {"name": "c", "dist": "lognormal", "loc": 0.0, "scale": 0.5},
    ])
    assert prior.sample((N,)).shape == (N, 3)
    assert prior.log_prob(prior.sample((N,))).shape == (N,)
    assert prior.to_spec()[0] == {"name": "a", "dist": "uniform", "low": -1.0, "high": 1.0}


def test_npe_train_then_sample_inside_the_support(sim, trained):
    s = trained.sample((N,), x=sim.default_observation)
    assert s.shape == (N, 2) and sim.prior.support_contains(s).all()


def test_npe_log_prob(sim, trained):
    x_obs = sim.default_observation
    s = trained.sample((N,), x=x_obs)
    assert trained.log_prob(s, x=x_obs).shape == (N,)


def test_run_sequential_rounds_posterior_and_live_events(sim):
    events = []
    run = sbi_core.run_sequential(sim, sim.prior, sim.default_observation, method="snpe", num_rounds=2,
                                  simulations_per_round=200, seed=0, on_event=events.append, max_epochs=3)
    assert run.rounds[1].posterior_samples.shape[1] == 2
    assert isinstance(run.posterior, sbi_core.Posterior)
    assert any(e["type"] == "epoch" and "train_loss" in e and "val_loss" in e for e in events)
    assert sum(e["type"] == "round" for e in events) == 2


def test_run_sequential_takes_any_callable_simulator(sim):
    run = sbi_core.run_sequential(lambda t: t + 0.1 * torch.randn(t.shape), sim.prior, sim.default_observation,
                                  method="npe", simulations_per_round=200, seed=0, max_epochs=2)
    assert len(run.rounds) == 1

"""DESIGN.md section 3, exactly as written there."""

import torch

import sbi_core


def test_design_section_3_api():
    names = sbi_core.list_simulators()
    assert "linear_regression" in names and "two_moons" in names and len(names) >= 10
    sim = sbi_core.get_simulator("two_moons")
    assert sim.param_names == ["theta1", "theta2"] or len(sim.param_names) == 2
    assert isinstance(sim.prior, sbi_core.Prior)
    theta = sim.prior.sample((7,))
    assert sim.simulate(theta).shape == (7, 2)
    assert sim.default_observation.shape == (2,)

    prior = sbi_core.Prior.from_spec([
        {"name": "a", "dist": "uniform", "low": -1.0, "high": 1.0},
        {"name": "b", "dist": "normal", "loc": 0.0, "scale": 1.0},
        {"name": "c", "dist": "lognormal", "loc": 0.0, "scale": 0.5},
    ])
    n = 300
    assert prior.sample((n,)).shape == (n, 3)
    assert prior.log_prob(prior.sample((n,))).shape == (n,)
    assert prior.to_spec()[0] == {"name": "a", "dist": "uniform", "low": -1.0, "high": 1.0}

    theta = sim.prior.sample((500,))
    x = sim.simulate(theta)
    posterior = sbi_core.NPE(sim.prior, density_estimator="nsf").train(theta, x, max_epochs=3)
    x_obs = sim.default_observation
    s = posterior.sample((n,), x=x_obs)
    assert s.shape == (n, 2) and sim.prior.support_contains(s).all()
    assert posterior.log_prob(s, x=x_obs).shape == (n,)

    events = []
    run = sbi_core.run_sequential(sim, sim.prior, x_obs, method="snpe", num_rounds=2, simulations_per_round=200,
                                  seed=0, on_event=events.append, max_epochs=3)
    assert run.rounds[1].posterior_samples.shape[1] == 2
    assert isinstance(run.posterior, sbi_core.Posterior)
    assert any(e["type"] == "epoch" and "train_loss" in e and "val_loss" in e for e in events)
    assert sum(e["type"] == "round" for e in events) == 2

    # any callable simulator
    run = sbi_core.run_sequential(lambda t: t + 0.1 * torch.randn(t.shape), sim.prior, x_obs, method="npe",
                                  simulations_per_round=200, seed=0, max_epochs=2)
    assert len(run.rounds) == 1

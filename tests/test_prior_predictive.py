"""The prior predictive check (sbi_core.simulators.prior_predictive): per component, jointly, what to widen."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sbi_core import Prior, get_simulator, list_simulators
from sbi_core.errors import SBIError
from sbi_core.simulators.prior_predictive import (
    MIN_SIMULATIONS,
    check_observation,
    observation_ranges,
    prior_predictive_check,
)

NARROW = Prior.from_spec([{"name": "v0", "dist": "uniform", "low": 5.0, "high": 15.0},
                          {"name": "angle", "dist": "uniform", "low": 10.0, "high": 80.0}])


@pytest.mark.parametrize("name", list_simulators())
def test_default_observations_pass_under_default_priors(name):
    sim = get_simulator(name)
    check = prior_predictive_check(sim, sim.prior, sim.default_observation)
    assert check.level == "ok", check.message()
    assert check.message() == "" and check.n_simulations == 300


def test_narrowed_projectile_prior_is_outside_and_names_v0():
    sim = get_simulator("projectile")
    check = prior_predictive_check(sim, NARROW, sim.default_observation)
    assert check.level == "outside"
    assert [c.label for c in check.outside] == ["d1 [m]", "d2 [m]", "d3 [m]"]
    assert all(c.side == "above" and c.value > c.high for c in check.outside)
    assert check.components[3].status == "inside"  # the height is reachable with v0 <= 15
    assert [(h.name, h.direction, h.edge) for h in check.hints] == [("v0", "higher", 15.0)]
    msg = check.message()
    assert "d1 [m] = 29.57 is above all 300 simulations" in msg
    assert "widen the prior of v0 [m/s] upwards (it ends at 15), or change the observation" in msg


def test_lower_edge_and_unbounded_hints():
    sim = get_simulator("projectile")
    high_v0 = Prior.from_spec([{"name": "v0", "dist": "uniform", "low": 25.0, "high": 30.0},
                               {"name": "angle", "dist": "uniform", "low": 10.0, "high": 80.0}])
    low = sim.simulate(torch.tensor([8.0, 45.0]), seed=0)
    check = prior_predictive_check(sim, high_v0, low)
    assert check.level == "outside" and ("v0", "lower", 25.0) in [(h.name, h.direction, h.edge) for h in check.hints]
    # an unbounded prior (lognormal) gets "move ... towards higher values"
    sir = get_simulator("sir")
    slow = Prior.from_spec([{"name": "beta", "dist": "lognormal", "loc": -2.5, "scale": 0.2},
                            {"name": "gamma", "dist": "lognormal", "loc": -2.08, "scale": 0.2}])
    check = prior_predictive_check(sir, slow, sir.default_observation)
    assert check.level == "outside"
    assert "move the prior of beta [1/day] towards higher values (or widen it)" in check.message()


def test_joint_check_finds_an_impossible_combination():
    """Each component in range, the pair impossible: far distance needs a flat throw, great height a
    steep one. Per-component checks pass; the k-NN score flags it."""
    sim = get_simulator("projectile")
    obs = np.array([5.0, 5.0, 5.0, 30.0])  # 30 m high needs v0 sin(angle) >= 24 m/s: it lands >= 21 m away
    check = prior_predictive_check(sim, sim.prior, obs)
    assert all(c.status == "inside" for c in check.components)
    assert check.level == "unusual" and check.joint_pvalue < 0.01
    assert "simulations from it lie as far from the others" in check.message()
    typical = prior_predictive_check(sim, sim.prior, np.array([20.0, 20.0, 20.0, 3.0]))
    assert typical.level == "ok" and typical.joint_pvalue > 0.1


def test_knn_not_mahalanobis_on_a_ring():
    """Points on a ring: its centre is the mean (Mahalanobis distance 0) yet no simulation is there."""
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 2 * np.pi, 400)
    x = np.c_[np.cos(a), np.sin(a)] + rng.normal(0, 0.03, (400, 2))
    centre = check_observation(x, [0.0, 0.0])
    assert all(c.status == "inside" for c in centre.components)
    assert centre.joint_outside and centre.level == "outside"
    assert centre.joint_pvalue == pytest.approx(1 / 401)
    assert "their combination is unlike every one of them" in centre.message()
    assert check_observation(x, [0.0, 1.0]).level == "ok"


def test_tail_is_unusual_not_outside():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 1))
    check = check_observation(x, [2.9])  # beyond the 99.5 % quantile (2.58), inside the range
    assert check.components[0].status == "tail" and check.level == "unusual"
    assert "is above 99 % of 2000 simulations" in check.message()


def test_too_few_or_failed_simulations_say_they_cannot_tell():
    x = np.full((40, 2), np.nan)
    x[: MIN_SIMULATIONS - 1] = 1.0
    check = check_observation(x, [1.0, 1.0])
    assert check.level == "unknown" and check.n_failed == 40 - MIN_SIMULATIONS + 1
    assert "too few to tell" in check.message()

    def broken(theta):
        raise SBIError("the sandbox timed out after 10 s")

    check = prior_predictive_check(broken, NARROW, [1, 2, 3, 4])
    assert check.level == "unknown" and "the sandbox timed out" in check.message()
    with pytest.raises(SBIError, match="3 numbers but the simulations have 2"):
        check_observation(np.zeros((30, 2)), [1, 2, 3])


def test_failed_rows_are_left_out_and_counted():
    sim = get_simulator("projectile")
    theta = NARROW.sample((300,), generator=torch.Generator().manual_seed(0))
    x = sim.simulate(theta, seed=1).numpy().astype(float)
    x[:10] = np.inf
    check = check_observation(x, sim.default_observation, theta.numpy(), NARROW)
    assert check.n_simulations == 290 and check.n_failed == 10
    assert "(10 simulations returned NaN or infinity and were left out.)" in check.message()


def test_global_rng_is_untouched():
    sim = get_simulator("two_moons")
    state = torch.get_rng_state()
    a = prior_predictive_check(sim, sim.prior, sim.default_observation, seed=3)
    assert torch.equal(state, torch.get_rng_state())
    b = prior_predictive_check(sim, sim.prior, sim.default_observation, seed=3)
    assert a == b


def test_observation_ranges_hold_the_observation_away_from_the_ends():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 10, size=(1000, 3))
    lo, hi = observation_ranges(x, [5.0, 12.0, -3.0])
    assert lo[0] == pytest.approx(0.1, abs=0.1) and hi[0] == pytest.approx(9.9, abs=0.1)  # 98 % band
    assert 12.0 < hi[1] and hi[1] - 12.0 == pytest.approx(0.1 * (12.0 - lo[1]))  # stretched past it
    assert lo[2] < -3.0 and hi[2] == pytest.approx(9.9, abs=0.1)
    lo, hi = observation_ranges(x, [9.85, 5.0, 5.0])  # inside the band, at its very edge: room is made
    assert hi[0] - 9.85 >= 0.1 * (hi[0] - lo[0]) * 0.9
    lo, hi = observation_ranges(np.ones((50, 1)), [1.0])
    assert lo[0] < 1.0 < hi[0]
    with pytest.raises(SBIError):
        observation_ranges(np.full((5, 2), np.nan))

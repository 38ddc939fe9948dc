"""Tests of the built-in simulators: contract, reproducibility, and exact posteriors.

The reference posteriors are checked against independent computations (numpy,
scipy, a grid evaluation of the two-moons likelihood) rather than against the
formulas they implement.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.integrate import solve_ivp

from sbi_core.simulators import get_simulator, list_simulators, teaching

NAMES = list_simulators()
WITH_REFERENCE = [n for n in NAMES if get_simulator(n).has_reference_posterior]
REQUIRED = {
    "linear_regression", "coin_flip", "projectile", "projectile_drag", "damped_oscillator",
    "two_moons", "gaussian_linear", "slcp", "gaussian_mixture", "sir", "lotka_volterra",
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ref(name: str, x_obs, n: int = 20_000, seed: int = 0) -> np.ndarray:
    sim = get_simulator(name)
    return sim.reference_posterior(torch.as_tensor(x_obs, dtype=torch.float32), n, seed=seed).double().numpy()


# ---------------------------------------------------------------------------
# the contract every simulator keeps
# ---------------------------------------------------------------------------
def test_required_simulators_are_registered_in_gallery_order():
    assert REQUIRED <= set(NAMES)
    assert NAMES.index("linear_regression") < NAMES.index("two_moons") < NAMES.index("sir")
    assert {"linear_regression", "coin_flip", "gaussian_linear", "two_moons", "gaussian_mixture"} <= set(
        WITH_REFERENCE
    )


@pytest.mark.parametrize("name", NAMES)
def test_metadata(name):
    sim = get_simulator(name)
    assert sim.name == name
    assert sim.title.strip() and sim.description.strip() and sim.equations.strip()
    assert len(sim.description) > 200, "the description should be a real paragraph"
    assert sim.tags
    d, k = sim.theta_dim, sim.x_dim
    assert len(sim.param_names) == len(sim.param_units) == sim.prior.dim == d
    assert len(sim.obs_names) == len(sim.obs_units) == k
    assert sim.prior.names == sim.param_names
    assert len(set(sim.param_names)) == d and len(set(sim.obs_names)) == k
    assert all(p.isidentifier() for p in sim.param_names)
    assert sim.true_theta.shape == (d,)
    assert bool(sim.prior.support_contains(sim.true_theta))


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_dtype(name):
    sim = get_simulator(name)
    theta = sim.prior.sample((7,), generator=_gen(0))
    x = sim.simulate(theta, seed=1)
    assert x.shape == (7, sim.x_dim) and x.dtype == torch.float32
    raw = sim.simulate_fn(theta, _gen(1))
    assert raw.shape == (7, sim.x_dim) and raw.dtype == torch.float32
    single = sim.simulate(sim.true_theta, seed=1)
    assert single.shape == (sim.x_dim,)


@pytest.mark.parametrize("name", NAMES)
def test_finite_for_prior_draws(name):
    sim = get_simulator(name)
    theta = sim.prior.sample((500,), generator=_gen(2))
    x = sim.simulate(theta, seed=3)
    assert torch.isfinite(x).all()


@pytest.mark.parametrize("name", NAMES)
def test_seeding(name):
    sim = get_simulator(name)
    theta = sim.prior.sample((50,), generator=_gen(4))
    a = sim.simulate(theta, seed=5)
    b = sim.simulate(theta, seed=5)
    c = sim.simulate(theta, seed=6)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    d = sim.simulate(theta, generator=_gen(5))
    assert torch.equal(a, d)


@pytest.mark.parametrize("name", NAMES)
def test_default_observation(name):
    sim = get_simulator(name)
    x = sim.default_observation
    assert x.shape == (sim.x_dim,) and torch.isfinite(x).all()
    assert torch.equal(x, get_simulator(name).default_observation)


@pytest.mark.parametrize("name", NAMES)
def test_global_rng_untouched(name):
    sim = get_simulator(name)
    theta = sim.prior.sample((20,), generator=_gen(7))
    state = torch.get_rng_state()
    sim.simulate(theta, seed=8)
    sim.simulate(theta)  # unseeded: a fresh generator, still not the global one
    if sim.has_reference_posterior:
        sim.reference_posterior(sim.default_observation, 100, seed=9)
        sim.reference_posterior(sim.default_observation, 100)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("name", WITH_REFERENCE)
def test_reference_posterior_contract(name):
    sim = get_simulator(name)
    x_obs = sim.default_observation
    s = sim.reference_posterior(x_obs, 500, seed=1)
    assert s.shape == (500, sim.theta_dim) and s.dtype == torch.float32
    assert torch.isfinite(s).all()
    assert sim.prior.support_contains(s).all()
    assert torch.equal(s, sim.reference_posterior(x_obs, 500, seed=1))
    assert not torch.equal(s, sim.reference_posterior(x_obs, 500, seed=2))


@pytest.mark.parametrize("name", sorted(set(NAMES) - set(WITH_REFERENCE)))
def test_no_reference_posterior_raises(name):
    with pytest.raises(NotImplementedError):
        get_simulator(name).reference_posterior(get_simulator(name).default_observation, 10)


# ---------------------------------------------------------------------------
# exact posteriors, checked independently
# ---------------------------------------------------------------------------
def test_linear_regression_reference_matches_numpy():
    y = np.array([0.9, 0.5, 0.4, 0.1, -0.2, -0.3, -0.5, -0.9, -1.0, -1.4])
    x = np.linspace(-1, 1, 10)
    X = np.column_stack([np.ones(10), x])
    cov = np.linalg.inv(X.T @ X / 0.25 + np.eye(2))
    mean = cov @ X.T @ y / 0.25
    s = _ref("linear_regression", y)
    np.testing.assert_allclose(s.mean(0), mean, atol=0.01)
    np.testing.assert_allclose(np.cov(s.T), cov, rtol=0.05, atol=1.5e-3)


@pytest.mark.parametrize("heads", [0, 13, 20])
def test_coin_flip_reference_matches_scipy(heads):
    s = _ref("coin_flip", [heads])[:, 0]
    post = stats.beta(2 + heads, 2 + 20 - heads)
    assert abs(s.mean() - post.mean()) < 0.005
    assert abs(s.var() - post.var()) < 0.05 * post.var()
    assert stats.kstest(s, post.cdf).pvalue > 1e-3


def test_gaussian_linear_reference():
    x_obs = torch.linspace(-0.8, 0.8, 10)
    s = _ref("gaussian_linear", x_obs)
    np.testing.assert_allclose(s.mean(0), 0.5 * x_obs.numpy(), atol=0.01)
    np.testing.assert_allclose(s.var(0), 0.05, rtol=0.05)
    assert np.abs(np.corrcoef(s.T) - np.eye(10)).max() < 0.05


def _two_moons_grid_posterior(x_obs: np.ndarray, n: int = 801):
    """Posterior on a grid from sbibm's likelihood: p = x - shift(theta) must lie on the ring."""
    g = np.linspace(-1, 1, n)
    t1, t2 = np.meshgrid(g, g, indexing="ij")
    p0 = x_obs[0] + np.abs(t1 + t2) / math.sqrt(2)
    p1 = x_obs[1] - (t2 - t1) / math.sqrt(2)
    u = p0 - 0.25
    r = np.hypot(u, p1)
    # density of p = (r cos a + 0.25, r sin a): N(r; 0.1, 0.01) / (pi r), only for u >= 0
    w = np.where(u >= 0, stats.norm.pdf(r, 0.1, 0.01) / np.maximum(r, 1e-12), 0.0)
    w /= w.sum()
    return t1, t2, w


def test_two_moons_reference_matches_grid():
    sim = get_simulator("two_moons")
    x_obs = sim.default_observation.double().numpy()
    s = _ref("two_moons", x_obs, n=40_000)
    t1, t2, w = _two_moons_grid_posterior(x_obs)
    for j, t in enumerate((t1, t2)):
        m = (w * t).sum()
        sd = math.sqrt((w * (t - m) ** 2).sum())
        assert abs(s[:, j].mean() - m) < 0.01
        assert abs(s[:, j].std() - sd) < 0.01
    # the two mirror crescents carry equal mass when both lie inside the box
    pos_grid = w[(t1 + t2) > 0].sum()
    assert 0.3 < pos_grid < 0.7
    assert abs((s.sum(1) > 0).mean() - pos_grid) < 0.02


def test_two_moons_reference_reproduces_observation():
    sim = get_simulator("two_moons")
    x_obs = sim.default_observation
    s = sim.reference_posterior(x_obs, 5000, seed=3)
    assert (s.abs() <= 1).all()
    # pushing samples back through the deterministic part leaves a point on the ring
    t = s.double()
    shift = torch.stack([-(t[:, 0] + t[:, 1]).abs(), t[:, 1] - t[:, 0]], 1) / math.sqrt(2)
    p = x_obs.double() - shift
    r = torch.hypot(p[:, 0] - 0.25, p[:, 1])
    assert (p[:, 0] - 0.25 >= -1e-5).all()
    assert ((r - 0.1).abs() < 0.06).all()
    # simulating from posterior samples lands near the observation
    x_sim = sim.simulate(s, seed=4)
    dist = (x_sim - x_obs).norm(dim=1)
    assert (dist < 0.3).all()
    assert dist.median() < 0.16


def test_two_moons_impossible_observation_raises():
    with pytest.raises(RuntimeError):
        get_simulator("two_moons").reference_posterior(torch.tensor([2.0, 0.0]), 10, seed=0)


def test_gaussian_mixture_reference():
    x_obs = np.array([1.0, -2.0])
    s = _ref("gaussian_mixture", x_obs)
    np.testing.assert_allclose(s.mean(0), x_obs, atol=0.03)
    np.testing.assert_allclose(s.var(0), 0.5 * 1.0 + 0.5 * 0.01, atol=0.04)
    # half the mass in the narrow spike: P(|theta - x| < 0.3) = 0.5 (1 - e^-4.5) + 0.5 (1 - e^-0.045)
    near = (np.linalg.norm(s - x_obs, axis=1) < 0.3).mean()
    expected = 0.5 * (1 - math.exp(-4.5)) + 0.5 * (1 - math.exp(-0.045))
    assert abs(near - expected) < 0.02


def test_gaussian_mixture_reference_truncated_at_box():
    x_obs = np.array([-9.8, 0.0])
    s = _ref("gaussian_mixture", x_obs)
    assert (np.abs(s) <= 10).all()
    # the broad component is cut off at -10, pushing the mean inwards
    assert s[:, 0].mean() > x_obs[0] + 0.1
    assert abs(s[:, 1].mean()) < 0.03


# ---------------------------------------------------------------------------
# physics checked against numerical integration
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "v0,angle,k", [(30.0, 80.0, 0.5), (5.0, 10.0, 0.5), (18.0, 35.0, 0.15), (25.0, 60.0, 0.02)]
)
def test_linear_drag_matches_ode(v0, angle, k):
    a = math.radians(angle)

    def rhs(t, s):
        return [s[2], s[3], -k * s[2], -9.81 - k * s[3]]

    def land(t, s):
        return s[1]

    land.terminal, land.direction = True, -1
    sol = solve_ivp(rhs, [0, 100], [0, 0, v0 * math.cos(a), v0 * math.sin(a)], events=land,
                    rtol=1e-10, atol=1e-10, dense_output=True)
    t = np.linspace(0, sol.t[-1], 20001)
    rng, height = teaching._linear_drag_flight(torch.tensor([v0]), torch.tensor([angle]), torch.tensor([k]))
    assert abs(rng.item() - sol.y_events[0][0][0]) < 1e-4
    assert abs(height.item() - sol.sol(t)[1].max()) < 1e-4


def test_projectile_drag_reduces_to_drag_free():
    theta = torch.tensor([[18.0, 35.0], [29.0, 70.0], [6.0, 15.0]])
    free = get_simulator("projectile").simulate(theta, seed=1)
    zero_drag = get_simulator("projectile_drag").simulate(torch.cat([theta, torch.zeros(3, 1)], 1), seed=1)
    torch.testing.assert_close(zero_drag, free, atol=2e-3, rtol=1e-4)
    # range/height identify the angle: 35 and 55 degrees give equal range, different height
    pair = torch.tensor([[18.0, 35.0], [18.0, 55.0]])
    mirror = get_simulator("projectile").simulate(pair.repeat(2000, 1), seed=2)
    means = mirror.reshape(2000, 2, 4).mean(0)
    assert abs(means[0, 0] - means[1, 0]) < 0.3
    assert means[1, 3] - means[0, 3] > 4.0


def test_damped_oscillator_matches_ode():
    omega, zeta = 1.8, 0.15
    sim = get_simulator("damped_oscillator")
    x = sim.simulate(torch.tensor([[omega, zeta]]).repeat(4000, 1), seed=0)
    t = np.arange(1, 9) * 0.5
    sol = solve_ivp(lambda _, s: [s[1], -2 * zeta * omega * s[1] - omega**2 * s[0]], [0, 4], [1.0, 0.0],
                    t_eval=t, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.mean(0).numpy(), sol.y[0], atol=0.005)
    np.testing.assert_allclose(x.std(0).numpy(), 0.05, rtol=0.1)


def test_coin_flip_is_binomial():
    x = get_simulator("coin_flip").simulate(torch.full((20_000, 1), 0.3), seed=0)[:, 0].numpy()
    assert set(np.unique(x)) <= set(range(21))
    assert abs(x.mean() - 6.0) < 0.05 and abs(x.var() - 4.2) < 0.2


def test_sir_summaries_are_sensible():
    sim = get_simulator("sir")
    theta = sim.prior.sample((300,), generator=_gen(11))
    x = sim.simulate(theta, seed=12)
    peak, day, final, mean_inf = x[:, 0], x[:, 1], x[:, 2], x[:, 3]
    assert ((peak > 0) & (peak <= 1) & (final >= 0.01) & (final <= 1)).all()
    assert ((day >= 0) & (day <= 160) & (day == day.round())).all()
    assert (mean_inf <= peak + 1e-6).all()
    # bigger reproduction number -> more people infected in the end
    r0 = theta[:, 0] / theta[:, 1]
    assert stats.spearmanr(r0.numpy(), final.numpy()).statistic > 0.7


def test_lotka_volterra_matches_ode():
    from sbi_core.simulators import science

    theta = torch.tensor([[0.6859157, 0.10761319, 0.88789904, 0.116794825]])
    log_x, log_y = science._lv_log_trajectory(theta)
    a, b, c, d = theta[0].tolist()
    def rhs(_, s):
        return [a * s[0] - b * s[0] * s[1], d * s[0] * s[1] - c * s[1]]

    sol = solve_ivp(rhs, [0, 20], [30.0, 1.0], t_eval=np.arange(41) * 0.5, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(log_x[0].numpy(), np.log(sol.y[0]), atol=1e-3)
    np.testing.assert_allclose(log_y[0].numpy(), np.log(sol.y[1]), atol=1e-3)

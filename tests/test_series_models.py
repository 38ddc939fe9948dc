"""The built-in models whose simulations are a series or a set of repeated trials
(sbi_core.simulators.series): their shapes, seeds, and exact posteriors.

The exact posteriors are checked against independent computations: the AR(1) likelihood
against scipy's multivariate normal with the AR(1) covariance, the grid sampler against the
marginal of phi (sigma integrated out with the incomplete gamma function) and against a
sampler that draws phi from that marginal and sigma given phi; the repeated measurements
against the conjugate normal formula written out in numpy; the drift-diffusion model's
choice probabilities and mean decision times against the first-passage formulas.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from scipy import special, stats

from sbi_core.simulators import get_simulator, list_simulators, science, series
from sbi_core.stats.shapes import DataShape

MODELS = {
    "ar1_series": DataShape.series(100),
    "sir_series": DataShape.series(100),
    "gaussian_trials": DataShape.trials(20, 1),
    "drift_diffusion": DataShape.trials(50, 2),
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------
# what every model here keeps
# ---------------------------------------------------------------------------
def test_registry_lists_them_after_the_summary_models():
    names = list_simulators()
    assert set(MODELS) <= set(names)
    assert names.index("sir") < names.index("sir_series")
    assert names.index("lotka_volterra") < min(names.index(n) for n in MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_shape_is_declared_and_flat(name):
    sim = get_simulator(name)
    assert sim.data_shape == MODELS[name]
    assert sim.data_shape.size == sim.x_dim == len(sim.obs_names) == len(sim.obs_units)
    theta = sim.prior.sample((6,), generator=_gen(0))
    x = sim.simulate(theta, seed=1)
    assert x.shape == (6, sim.data_shape.size) and x.dtype == torch.float32
    folded = sim.data_shape.fold(x.numpy())
    assert folded.shape == (6, *sim.data_shape.dims)
    assert sim.data_shape.valid_rows(x.numpy()).all()
    assert sim.data_shape.valid_rows(sim.default_observation.numpy()[None]).all()
    tags = set(sim.tags)
    assert ("series" in tags) == (sim.data_shape.kind == "series")
    assert ("trials" in tags) == (sim.data_shape.kind == "trials")


@pytest.mark.parametrize("name", MODELS)
def test_reproducible_from_a_seed_and_finite_for_prior_draws(name):
    sim = get_simulator(name)
    theta = sim.prior.sample((200,), generator=_gen(2))
    a = sim.simulate(theta, seed=3)
    assert torch.equal(a, sim.simulate(theta, generator=_gen(3)))
    assert not torch.equal(a, sim.simulate(theta, seed=4))
    assert torch.isfinite(a).all()  # every trial is present: no NaN rows in simulations


def test_trial_names_follow_the_flat_order():
    ddm = get_simulator("drift_diffusion")
    assert ddm.obs_names[:4] == ["trial 1 rt", "trial 1 choice", "trial 2 rt", "trial 2 choice"]
    assert ddm.obs_units[:2] == ["s", ""]
    assert get_simulator("gaussian_trials").obs_names[-1] == "trial 20"
    assert get_simulator("sir_series").obs_names[0] == "day 1"


# ---------------------------------------------------------------------------
# AR(1)
# ---------------------------------------------------------------------------
def _ar1_stats(x: np.ndarray) -> tuple[float, float, float, float]:
    return x[0] ** 2, (x[1:] ** 2).sum(), (x[1:] * x[:-1]).sum(), (x[1:-1] ** 2).sum()


def test_ar1_paths_are_stationary_with_lag_one_correlation_phi():
    theta = torch.tensor([[0.5, 1.0]]).repeat(4000, 1)
    x = series._ar1_paths(theta, _gen(0)).double().numpy()
    var = 1.0 / (1 - 0.25)
    assert x[:, 0].var() == pytest.approx(var, rel=0.08)  # the stationary start
    assert x[:, -1].var() == pytest.approx(var, rel=0.08)
    assert np.corrcoef(x[:, 50], x[:, 49])[0, 1] == pytest.approx(0.5, abs=0.05)


def test_ar1_likelihood_matches_the_multivariate_normal():
    """Differences of the grid's log density equal those of N(0, Sigma), Sigma_ij = s^2 phi^|i-j| / (1 - phi^2)."""
    x = get_simulator("ar1_series").default_observation.double()
    t = np.arange(x.numel())
    lag = np.abs(t[:, None] - t[None, :])
    points = [(0.7, 1.0), (-0.4, 0.6), (0.93, 1.9), (0.1, 0.25)]
    ours, ref = [], []
    for phi, sigma in points:
        grid = series._ar1_log_posterior(x, torch.tensor([phi], dtype=torch.float64),
                                         torch.tensor([sigma], dtype=torch.float64))
        ours.append(float(grid[0, 0]))
        cov = sigma**2 / (1 - phi**2) * phi**lag
        ref.append(stats.multivariate_normal(np.zeros(len(t)), cov).logpdf(x.numpy()))
    np.testing.assert_allclose(np.diff(ours), np.diff(ref), rtol=1e-8, atol=1e-6)


def _phi_marginal(x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Normalised p(phi | x) on ``grid`` with sigma ~ U(a, b) integrated out analytically."""
    first, rest, cross, inner = _ar1_stats(x)
    k = (len(x) - 1) / 2
    a, b = series._AR1_SIGMA
    q = first + rest - 2 * grid * cross + grid**2 * inner
    with np.errstate(divide="ignore"):  # both gamma functions are 1 far out in the tails: density 0
        log_p = 0.5 * np.log1p(-grid**2) - k * np.log(q) + np.log(
            special.gammainc(k, q / (2 * a**2)) - special.gammainc(k, q / (2 * b**2)))
    p = np.exp(log_p - log_p.max())
    return p / np.trapezoid(p, grid)


def _independent_ar1_sampler(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """phi from its marginal (inverse CDF on a fine grid), then sigma | phi exactly: with
    u = Q / (2 sigma^2), u ~ Gamma((T - 1) / 2) truncated to [Q / (2 b^2), Q / (2 a^2)]."""
    lo, hi = series._AR1_PHI
    grid = np.linspace(lo, hi, 200_001)
    pdf = _phi_marginal(x, grid)
    cdf = np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) / 2 * np.diff(grid))])
    phi = np.interp(rng.uniform(0, cdf[-1], n), cdf, grid)
    first, rest, cross, inner = _ar1_stats(x)
    q = first + rest - 2 * phi * cross + phi**2 * inner
    k = (len(x) - 1) / 2
    a, b = series._AR1_SIGMA
    p_lo, p_hi = special.gammainc(k, q / (2 * b**2)), special.gammainc(k, q / (2 * a**2))
    u = special.gammaincinv(k, p_lo + rng.uniform(size=n) * (p_hi - p_lo))
    return np.stack([phi, np.sqrt(q / (2 * u))], axis=1)


def test_ar1_grid_posterior_matches_an_independent_exact_sampler():
    sim = get_simulator("ar1_series")
    x_obs = sim.default_observation
    s = sim.reference_posterior(x_obs, 20_000, seed=0).double().numpy()
    x = x_obs.double().numpy()
    # phi's marginal: a KS test against the analytic CDF
    lo, hi = series._AR1_PHI
    grid = np.linspace(lo, hi, 200_001)
    pdf = _phi_marginal(x, grid)
    cdf = np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) / 2 * np.diff(grid))])
    assert stats.kstest(s[:, 0], lambda v: np.interp(v, grid, cdf)).pvalue > 1e-3
    # the joint law: two-sample tests and moments against phi-then-sigma exact draws
    ref = _independent_ar1_sampler(x, 20_000, np.random.default_rng(1))
    assert stats.ks_2samp(s[:, 1], ref[:, 1]).pvalue > 1e-3
    assert (np.abs(s.mean(0) - ref.mean(0)) < 4 * ref.std(0) * math.sqrt(2 / 20_000)).all()
    np.testing.assert_allclose(s.std(0), ref.std(0), rtol=0.04)
    assert np.corrcoef(s.T)[0, 1] == pytest.approx(np.corrcoef(ref.T)[0, 1], abs=0.04)
    # sigma given phi near its mode: the same conditional in both samplers
    near = lambda a: a[np.abs(a[:, 0] - np.median(ref[:, 0])) < 0.02, 1]  # noqa: E731
    assert stats.ks_2samp(near(s), near(ref)).pvalue > 1e-3


def test_ar1_grid_posterior_is_reproducible_and_inside_the_prior():
    sim = get_simulator("ar1_series")
    x_obs = sim.default_observation
    s = sim.reference_posterior(x_obs, 3000, seed=5)
    assert s.shape == (3000, 2) and s.dtype == torch.float32
    assert sim.prior.support_contains(s).all()
    assert torch.equal(s, sim.reference_posterior(x_obs, 3000, seed=5))
    assert not torch.equal(s, sim.reference_posterior(x_obs, 3000, seed=6))


@pytest.mark.parametrize("truth", [(0.6, 0.8), (-0.5, 1.5), (0.93, 0.3)])
def test_ar1_grid_posterior_finds_the_truth_on_a_long_series(truth):
    """4,000 steps: the posterior is narrow (sd about 0.01), and the zoomed grid still resolves it."""
    x = series._ar1_paths(torch.tensor([truth]), _gen(11), steps=4000)[0]
    s = series._ar1_grid_posterior(x, 20_000, _gen(12)).double()
    mean, sd = s.mean(0), s.std(0)
    assert (sd < 0.03).all()
    assert ((mean - torch.tensor(truth, dtype=torch.float64)).abs() < 4 * sd).all(), (mean, sd)
    # the grid's cells are far finer than the posterior: 400 cells span the zoomed box
    assert len(torch.unique(s[:, 0])) > 15_000


def test_ar1_reference_needs_a_finite_series():
    sim = get_simulator("ar1_series")
    x = sim.default_observation
    x[3] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        sim.reference_posterior(x, 10, seed=0)


# ---------------------------------------------------------------------------
# SIR, daily counts
# ---------------------------------------------------------------------------
def test_sir_series_is_the_start_of_the_summary_models_epidemic():
    sim = get_simulator("sir_series")
    theta = sim.prior.sample((50,), generator=_gen(3))
    x = sim.simulate(theta, seed=7)
    curve, _ = science._sir_infected_curve(theta, _gen(7))  # the summary model's 160 days
    assert torch.equal(x, curve[:, 1:101].to(torch.float32))
    assert (x >= 0).all() and (x <= science._SIR_POP).all() and torch.equal(x, x.round())
    assert sim.prior.to_spec() == get_simulator("sir").prior.to_spec()
    assert torch.equal(sim.true_theta, get_simulator("sir").true_theta)


# ---------------------------------------------------------------------------
# repeated measurements
# ---------------------------------------------------------------------------
def _conjugate(y: np.ndarray) -> tuple[float, float]:
    y = y[~np.isnan(y)]
    prec = 1 / 2.0**2 + len(y)
    return y.sum() / prec, prec**-0.5


@pytest.mark.parametrize("present", [20, 3])
def test_gaussian_trials_reference_is_the_conjugate_posterior(present):
    sim = get_simulator("gaussian_trials")
    trials = sim.simulate(torch.tensor([-0.8]), seed=3).numpy()[:present]
    x_obs = sim.data_shape.observation(trials[:, None])  # fewer trials: NaN rows at the end
    assert x_obs.shape == (20,) and np.isnan(x_obs).sum() == 20 - present
    assert sim.data_shape.trial_counts(x_obs[None])[0] == present
    s = sim.reference_posterior(torch.as_tensor(x_obs), 40_000, seed=4).double().numpy()[:, 0]
    mean, sd = _conjugate(x_obs)
    assert abs(s.mean() - mean) < 4 * sd / math.sqrt(len(s))
    assert s.std() == pytest.approx(sd, rel=0.02)
    assert stats.kstest(s, stats.norm(mean, sd).cdf).pvalue > 1e-3


def test_gaussian_trials_posterior_narrows_with_more_trials_and_rejects_infinity():
    sim = get_simulator("gaussian_trials")
    full = sim.default_observation.numpy()
    few = sim.data_shape.observation(full[:5, None])
    sd_full = sim.reference_posterior(sim.default_observation, 20_000, seed=0).std()
    sd_few = sim.reference_posterior(torch.as_tensor(few), 20_000, seed=0).std()
    assert float(sd_few / sd_full) == pytest.approx(math.sqrt((0.25 + 20) / (0.25 + 5)), rel=0.04)
    bad = full.copy()
    bad[0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        sim.reference_posterior(torch.as_tensor(bad), 10, seed=0)


# ---------------------------------------------------------------------------
# drift-diffusion
# ---------------------------------------------------------------------------
def _trials(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    t = x.double().numpy().reshape(x.shape[0], 50, 2)
    return t[..., 0], t[..., 1]


def test_ddm_reaction_times_exceed_t0_and_choices_are_binary():
    sim = get_simulator("drift_diffusion")
    theta = sim.prior.sample((300,), generator=_gen(0))
    rt, choice = _trials(sim.simulate(theta, seed=1))
    t0 = theta[:, 3].double().numpy()[:, None]
    assert (rt > t0).all() and (rt <= t0 + 5.0 + 1e-5).all()
    assert set(np.unique(choice)) <= {0.0, 1.0}
    assert 0.2 < choice.mean() < 0.8  # both answers occur under the prior


def test_ddm_larger_drift_gives_more_upper_choices_and_faster_answers():
    sim = get_simulator("drift_diffusion")
    shares = []
    for v in (-2.0, 0.0, 1.0, 2.5):
        _, choice = _trials(sim.simulate(torch.tensor([[v, 1.5, 0.5, 0.3]]).repeat(40, 1), seed=2))
        shares.append(choice.mean())
    assert shares == sorted(shares) and shares[0] < 0.1 and shares[-1] > 0.9
    assert shares[1] == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize("v,a,z", [(1.0, 1.5, 0.5), (-0.5, 2.0, 0.6), (2.0, 1.0, 0.35)])
def test_ddm_matches_first_passage_formulas(v, a, z):
    """P(upper) = (1 - e^{-2 v z a}) / (1 - e^{-2 v a}) and, for z = 1/2, E[T] = a / (2v) tanh(v a / 2).

    Euler steps of 1 ms overshoot the boundary a little (about 0.58 sqrt(dt), Broadie et al. 1997),
    hence the tolerances."""
    sim = get_simulator("drift_diffusion")
    rt, choice = _trials(sim.simulate(torch.tensor([[v, a, z, 0.3]]).repeat(200, 1), seed=5))
    p_upper = (1 - math.exp(-2 * v * z * a)) / (1 - math.exp(-2 * v * a))
    assert choice.mean() == pytest.approx(p_upper, abs=0.025)
    if z == 0.5:
        assert (rt - 0.3).mean() == pytest.approx(a / (2 * v) * math.tanh(v * a / 2), rel=0.08)


def test_ddm_undecided_trials_stop_at_five_seconds_at_the_nearer_boundary():
    sim = get_simulator("drift_diffusion")
    rt, choice = _trials(sim.simulate(torch.tensor([[0.0, 60.0, 0.5, 0.2]]).repeat(4, 1), seed=0))
    assert np.allclose(rt, 5.2)  # nobody reaches 0 or 60 within 5 s
    assert 0.3 < choice.mean() < 0.7


@pytest.mark.slow
def test_ddm_simulates_a_thousand_sets_of_fifty_trials_quickly():
    """About 0.3 s of CPU on one thread: vectorised over the sets, not a Python loop (which takes minutes).

    CPU time of this process, not wall time: on a busy CI machine the wall time of the same work
    reached 4.5 s while other tests ran beside it; the CPU it takes does not depend on them."""
    sim = get_simulator("drift_diffusion")
    theta = sim.prior.sample((1000,), generator=_gen(1))
    start = time.process_time()
    x = sim.simulate(theta, seed=2)
    assert time.process_time() - start < 3.0
    assert x.shape == (1000, 100)

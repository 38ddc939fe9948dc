"""Rejection ABC and SMC-ABC: analytic posteriors, decreasing tolerance, stopping, NaN simulations."""

import math

import pytest
import torch

from sbi_core.errors import SBIError
from sbi_core.methods.abc.distance import robust_scale, scaled_distances
from sbi_core.methods.abc.rejection import METHOD as REJECTION, RejectionABC
from sbi_core.methods.abc.smc import METHOD as SMC, ParticleProposal, SMCABC, kernel_covariances
from sbi_core.stats.priors import Prior

SIGMA = 0.5  # x ~ N(theta, SIGMA^2)
X_OBS = torch.tensor([0.8])


def gaussian_posterior(x_obs: float, prior_scale: float = 1.0) -> tuple[float, float]:
    """Mean and sd of theta | x for theta ~ N(0, prior_scale^2), x ~ N(theta, SIGMA^2)."""
    var = 1.0 / (1.0 / prior_scale ** 2 + 1.0 / SIGMA ** 2)
    return var * x_obs / SIGMA ** 2, math.sqrt(var)


def simulate(theta: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return theta[:, :1] + SIGMA * torch.randn(theta.shape[0], 1, generator=g)


def run(estimator, prior: Prior, x_obs: torch.Tensor, rounds: int, n: int, simulator=simulate, seed: int = 0):
    """The run loop's steps (propose, simulate, append, fit, snapshot) for ``rounds`` rounds."""
    g, gs = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    estimator.set_observation(x_obs)
    posterior = None
    for r in range(rounds):
        if r == 0:
            theta = prior.sample((n,), generator=g)
        else:
            theta = estimator.next_proposal(posterior, x_obs, g).sample((n,), x=x_obs, generator=g)
        estimator.append_simulations(theta, simulator(theta, gs))
        estimator.fit()
        posterior = estimator.build_posterior(default_x=x_obs)
    return posterior


NORMAL = Prior.from_spec([{"name": "mu", "dist": "normal", "loc": 0.0, "scale": 1.0}])
UNIFORM = Prior.from_spec([{"name": "mu", "dist": "uniform", "low": -3.0, "high": 3.0}])


def test_distances_are_z_scored_and_infinite_for_nan():
    x = torch.tensor([[0.0, 0.0], [1.0, 100.0], [2.0, 200.0], [float("nan"), 1.0]])
    s = robust_scale(x)
    assert torch.allclose(s, torch.tensor([1.4826, 148.26], dtype=torch.float64), rtol=1e-4)
    d = scaled_distances(x, torch.tensor([1.0, 100.0]), s)
    assert d[1] == 0 and math.isclose(float(d[0]), float(d[2])) and math.isinf(float(d[3]))


def test_rejection_abc_matches_the_analytic_gaussian_posterior():
    post = run(RejectionABC(NORMAL, quantile=0.01), NORMAL, X_OBS, 1, 20_000)
    mean, sd = gaussian_posterior(0.8)
    particles = post.cloud[:, 0]
    assert particles.shape == (200,)
    assert abs(float(particles.mean()) - mean) < 0.08 and abs(float(particles.std()) / sd - 1) < 0.15
    samples = post.sample((5000,), seed=0)[:, 0]
    assert abs(float(samples.mean()) - mean) < 0.08 and abs(float(samples.std()) / sd - 1) < 0.2
    report = post.sampling_report
    assert report["kind"] == "abc" and report["num_particles"] == 200 and report["acceptance_rate"] == 0.01
    assert report["epsilon"] < 0.05 and report["ess"] == pytest.approx(200)


def test_rejection_abc_fit_is_a_train_result_without_epochs():
    est = RejectionABC(NORMAL, quantile=0.1)
    est.set_observation(X_OBS)
    theta = NORMAL.sample((500,), generator=torch.Generator().manual_seed(0))
    est.append_simulations(theta, simulate(theta, torch.Generator().manual_seed(1)))
    events = []
    result = est.fit(on_event=events.append)
    assert result.history == [] and result.best_epoch == 0 and events == []
    assert est.epsilon == pytest.approx(float(est.distances[est.accepted].max()))


def test_abc_needs_the_observation():
    est = RejectionABC(NORMAL)
    theta = NORMAL.sample((100,))
    est.append_simulations(theta, theta)
    with pytest.raises(SBIError, match="set_observation"):
        est.fit()


def test_smc_abc_epsilon_decreases_and_the_posterior_is_close_to_analytic():
    est = SMCABC(UNIFORM, quantile=0.2)
    post = run(est, UNIFORM, X_OBS, 6, 1000)
    eps = [h["epsilon"] for h in est.history]
    assert all(b <= a for a, b in zip(eps, eps[1:])) and eps[-1] < 0.5 * eps[0]
    mean, sd = gaussian_posterior(0.8, prior_scale=math.inf)  # the uniform prior is flat near x_o
    samples = post.sample((5000,), seed=0)[:, 0]
    assert abs(float(samples.mean()) - mean) < 0.08 and abs(float(samples.std()) / sd - 1) < 0.2
    report = post.sampling_report
    assert report["epsilon"] == eps[-1] and 0 < report["ess"] <= report["num_particles"]


def test_smc_weights_correct_for_the_proposal():
    """A generation drawn from a proposal narrower than the prior still recovers the posterior (weights)."""
    est = SMCABC(NORMAL, quantile=0.3, kernel=0.5)
    run(est, NORMAL, X_OBS, 4, 2000)
    mean, sd = gaussian_posterior(0.8)
    w, th = est.weights, est.particles[:, 0].double()
    m = float((w * th).sum())
    s = math.sqrt(float((w * (th - m) ** 2).sum()))
    assert abs(m - mean) < 0.08 and abs(s / sd - 1) < 0.2
    assert est.history[-1]["ess"] < est.history[-1]["num_particles"]  # unequal weights


def test_recycling_keeps_every_simulation_within_the_tolerance_and_stays_unbiased():
    """Recycled particles of all generations, weighted against the mixture of proposals, give the posterior."""
    est = SMCABC(NORMAL, quantile=0.3)  # the default kNN kernel, recycling on
    run(est, NORMAL, X_OBS, 4, 1500)
    eps = est.epsilon
    within = sum(int((g.distances <= eps).sum()) for g in est._generations)
    assert len(est.particles) == within > 0.3 * 1500 * 1.5  # more than the last generation alone
    assert bool((est.particle_distances <= eps).all())
    mean, sd = gaussian_posterior(0.8)
    w, th = est.weights, est.particles[:, 0].double()
    m = float((w * th).sum())
    s = math.sqrt(float((w * (th - m) ** 2).sum()))
    assert abs(m - mean) < 0.08 and abs(s / sd - 1) < 0.2
    alone = SMCABC(NORMAL, quantile=0.3, recycle=False)
    run(alone, NORMAL, X_OBS, 4, 1500)
    assert len(alone.particles) == alone.history[-1]["num_particles"] <= 450


def test_the_knn_kernel_is_local_to_each_cluster():
    """Two far clusters: each particle's kernel spans its own cluster, not the gap between them."""
    g = torch.Generator().manual_seed(0)
    pts = torch.cat([0.1 * torch.randn(50, 2, generator=g) - 3, 0.1 * torch.randn(50, 2, generator=g) + 3])
    w = torch.full((100,), 0.01, dtype=torch.float64)
    local = kernel_covariances(pts, w, "knn", neighbours=10)
    wide = kernel_covariances(pts, w, 1.0)
    assert local.shape == (100, 2, 2)
    assert float(local.diagonal(dim1=1, dim2=2).max()) < 0.1 and float(wide[0].diagonal().min()) > 5
    with pytest.raises(SBIError, match="kernel must be 'knn'"):
        SMCABC(NORMAL, kernel="nearest")


def test_proposal_samples_inside_the_support_and_its_density_is_a_mixture():
    particles = torch.tensor([[2.9], [0.0]], dtype=torch.float64)
    prop = ParticleProposal(UNIFORM, particles, torch.tensor([0.5, 0.5]), torch.ones(2, 1, 1, dtype=torch.float64))
    theta = prop.sample((4000,), generator=torch.Generator().manual_seed(0))
    assert theta.shape == (4000, 1) and bool(UNIFORM.support_contains(theta).all())
    expected = torch.log(0.5 * torch.exp(-0.5 * (torch.tensor(1.0) - 2.9) ** 2) + 0.5 * math.exp(-0.5)) - 0.5 * math.log(2 * math.pi)
    assert float(prop.log_density(torch.tensor([[1.0]]))[0]) == pytest.approx(float(expected), rel=1e-6)


def test_a_low_acceptance_rate_stops_with_advice():
    est = SMCABC(UNIFORM, quantile=0.2, min_acceptance=0.5)
    with pytest.raises(SBIError, match="larger budget per generation.*larger quantile.*fewer summary statistics"):
        run(est, UNIFORM, X_OBS, 2, 500)
    est = SMCABC(UNIFORM, quantile=0.01)  # 5 particles of 500: fewer than 20
    with pytest.raises(SBIError, match="larger budget"):
        run(est, UNIFORM, X_OBS, 1, 500)


def nan_above_one(theta: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    x = simulate(theta, g)
    return torch.where(theta[:, :1] > 1.0, torch.tensor(float("nan")), x)


@pytest.mark.parametrize("make", [lambda: RejectionABC(UNIFORM, quantile=0.05, regression_adjustment=False),
                                  lambda: SMCABC(UNIFORM, quantile=0.2, regression_adjustment=False)])
def test_nan_simulations_are_never_accepted(make):
    est = make()
    est.set_observation(torch.tensor([1.2]))  # close to the region that fails
    theta = UNIFORM.sample((2000,), generator=torch.Generator().manual_seed(0))
    invalid = est.append_simulations(theta, nan_above_one(theta, torch.Generator().manual_seed(1)))
    assert invalid == int((theta[:, 0] > 1).sum()) > 0
    est.fit()
    post = est.build_posterior()
    assert bool((post.cloud[:, 0] <= 1.0).all())


def test_methods_are_described_and_build_ignores_network_settings():
    assert (REJECTION.name, REJECTION.sequential, REJECTION.learns) == ("rejection_abc", False, "nothing")
    assert (SMC.name, SMC.sequential, SMC.learns) == ("smc_abc", True, "nothing")
    assert "quantile" in REJECTION.options and "min_acceptance" in SMC.options
    est = SMC.build(UNIFORM, density_estimator="nsf", hidden_features=50, num_transforms=5, seed=3,
                    max_epochs=10, quantile=0.3)
    assert isinstance(est, SMCABC) and est.quantile == 0.3 and est.sequential
    assert isinstance(REJECTION.build(UNIFORM, density_estimator="maf", hidden_features=8, num_transforms=1,
                                      seed=0), RejectionABC)
    with pytest.raises(SBIError, match="quantile"):
        REJECTION.build(UNIFORM, density_estimator="nsf", hidden_features=8, num_transforms=1, seed=0, quantile=2)


def test_run_sequential_runs_smc_abc():
    from sbi_core.methods import get_method
    from sbi_core.run.loop import run_sequential

    assert get_method("smc_abc").sequential  # a lost registration fails here, it is not skipped
    events, g = [], torch.Generator().manual_seed(0)
    result = run_sequential(lambda theta: simulate(theta, g), UNIFORM.to_spec(),
                            X_OBS, method="smc_abc", num_rounds=3, simulations_per_round=500, seed=0,
                            on_event=events.append, num_posterior_samples=200)
    assert len(result.rounds) == 3
    eps = [rr.sampling["epsilon"] for rr in result.rounds]
    assert all(b <= a for a, b in zip(eps, eps[1:]))
    assert [e["type"] for e in events].count("round") == 3


@pytest.mark.slow
def test_regression_adjustment_removes_the_tolerance_blur():
    """With a wide tolerance the accepted particles are too spread; the adjustment pulls them back."""
    mean, sd = gaussian_posterior(0.8)
    plain = run(RejectionABC(NORMAL, quantile=0.6, regression_adjustment=False), NORMAL, X_OBS, 1, 4000).cloud[:, 0]
    adjusted = run(RejectionABC(NORMAL, quantile=0.6), NORMAL, X_OBS, 1, 4000).cloud[:, 0]
    assert float(plain.std()) > 1.3 * sd
    assert abs(float(adjusted.std()) / sd - 1) < 0.15 and abs(float(adjusted.mean()) - mean) < 0.08

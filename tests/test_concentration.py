"""The posterior's 90 % highest-density region, measured in prior mass (sbi_core.stats.concentration).

Analytic cases: an isotropic Gaussian N(mu, s^2 I) in 2-D has its 90 % HDR a disc
of radius r with r^2 = 2 ln(10) s^2 (the chi-square(2) 90 % point), so its area
is 2 pi ln(10) s^2; inside the uniform prior on [-1, 1]^2 (area 4) the prior
mass is that area / 4. Two such bumps, equally weighted and far apart, have
an HDR of two such discs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sbi_core import Prior
from sbi_core.stats.concentration import (
    format_intervals,
    hdr_intervals,
    hdr_prior_mass,
    kde_log_prob,
    posterior_hdr_size,
)

DISC = 2 * math.pi * math.log(10.0)  # area of the 90 % HDR of N(0, I_2), times s^2


def gaussian_log_prob(centers, s):
    centers = np.atleast_2d(centers)

    def log_prob(theta):
        t = np.asarray(theta, dtype=float)
        d2 = ((t[:, None, :] - centers[None]) ** 2).sum(-1) / s**2
        return np.log(np.exp(-0.5 * d2).mean(1) + 1e-300)

    return log_prob


def mixture_samples(rng, centers, s, n):
    centers = np.atleast_2d(centers)
    k = rng.integers(0, len(centers), n)
    return centers[k] + rng.normal(0, s, (n, centers.shape[1]))


def test_gaussian_inside_a_uniform_box_matches_the_disc():
    rng = np.random.default_rng(1)
    s = 0.1
    post = mixture_samples(rng, [[0.2, -0.3]], s, 4000)
    prior = rng.uniform(-1, 1, (40_000, 2))
    out = hdr_prior_mass(gaussian_log_prob([[0.2, -0.3]], s), post, prior)
    exact = DISC * s**2 / 4
    assert 0 < out.stderr < 0.2 * exact
    assert abs(out.fraction - exact) < 4 * out.stderr, (out, exact)
    assert out.mass == 0.9 and out.num_prior == 40_000


def test_two_moons_like_bimodal_posterior_is_small_although_its_sd_exceeds_the_prior():
    rng = np.random.default_rng(2)
    s, centers = 0.05, [[-0.6, -0.6], [0.6, 0.6]]
    post = mixture_samples(rng, centers, s, 4000)
    prior = rng.uniform(-1, 1, (40_000, 2))
    sd_ratio = post.std(0) / (2 / math.sqrt(12))  # the uniform prior's sd
    assert (sd_ratio > 1).all()  # what the old "shrinkage" column read as "nothing learned"
    out = hdr_prior_mass(gaussian_log_prob(centers, s), post, prior)
    exact = 2 * DISC * s**2 / 4
    assert out.fraction < 0.05
    assert abs(out.fraction - exact) < 4 * out.stderr + 0.002, (out, exact)


def test_nothing_learned_gives_the_hdr_mass_itself():
    rng = np.random.default_rng(3)
    prior = rng.normal(0, 1, (20_000, 2))
    out = hdr_prior_mass(gaussian_log_prob([[0, 0]], 1.0), rng.normal(0, 1, (4000, 2)), prior)
    assert abs(out.fraction - 0.9) < 0.03


def test_the_estimate_is_reproducible_and_uses_no_global_rng():
    rng = np.random.default_rng(4)
    post, prior = rng.normal(0, 0.1, (1000, 1)), rng.uniform(-1, 1, (5000, 1))
    lp = gaussian_log_prob([[0.0]], 0.1)
    np.random.seed(123)
    torch.manual_seed(123)
    a = hdr_prior_mass(lp, post, prior, seed=7)
    state_np, state_torch = np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    b = hdr_prior_mass(lp, post, prior, seed=7)
    assert a == b
    assert (np.random.get_state()[1] == state_np).all() and torch.equal(torch.get_rng_state(), state_torch)


def test_bad_mass_says_what_to_fix():
    with pytest.raises(ValueError, match="mass must be between 0 and 1"):
        hdr_prior_mass(lambda t: np.zeros(len(t)), np.zeros((5, 1)), np.zeros((5, 1)), mass=90)


def test_kde_fallback_for_stored_samples_is_small_for_a_bimodal_cloud_and_errs_large():
    rng = np.random.default_rng(5)
    s, centers = 0.05, [[-0.6, -0.6], [0.6, 0.6]]
    post = mixture_samples(rng, centers, s, 1000)
    prior = rng.uniform(-1, 1, (20_000, 2))
    est = hdr_prior_mass(kde_log_prob(post), post, prior)
    exact = 2 * DISC * s**2 / 4
    assert exact - 3 * est.stderr <= est.fraction < 0.1, (est, exact)


def test_kde_ignores_a_fixed_parameter():
    rng = np.random.default_rng(6)
    post = np.c_[rng.normal(0, 0.1, 500), np.full(500, 2.0)]
    lp = kde_log_prob(post)
    assert np.isfinite(lp(np.array([[0.0, 2.0], [0.5, 2.0]]))).all()
    with pytest.raises(ValueError, match="varies"):
        kde_log_prob(np.ones((10, 2)))


def test_hdr_intervals_one_per_mode():
    rng = np.random.default_rng(7)
    one = hdr_intervals(rng.normal(1.0, 0.2, 4000))
    assert len(one) == 1
    (a, b), = one
    assert abs(a - (1 - 1.645 * 0.2)) < 0.06 and abs(b - (1 + 1.645 * 0.2)) < 0.06
    two = hdr_intervals(np.r_[rng.normal(-0.7, 0.05, 2000), rng.normal(0.6, 0.05, 2000)])
    assert len(two) == 2
    assert two[0][0] < -0.7 < two[0][1] and two[1][0] < 0.6 < two[1][1]
    assert two[0][1] < 0 < two[1][0]  # the empty middle is not in the region
    assert format_intervals([(-0.8123, -0.6), (0.5, 0.71)]) == "-0.812 to -0.6 or 0.5 to 0.71"
    assert hdr_intervals([]) == [] and hdr_intervals([3.0, 3.0, 3.0]) == [(3.0, 3.0)]


class _GaussianPosterior:
    """A posterior with a known density, N(0.3, 0.1^2) per parameter."""

    def log_prob(self, theta, x=None, normalize=True):
        return (-0.5 * ((torch.as_tensor(theta) - 0.3) / 0.1) ** 2).sum(-1)


def test_posterior_hdr_size_draws_its_own_prior_samples():
    prior = Prior.uniform_box(["a", "b"], -1.0, 1.0)
    g = torch.Generator().manual_seed(0)
    samples = 0.3 + 0.1 * torch.randn(2000, 2, generator=g)
    a = posterior_hdr_size(_GaussianPosterior(), prior, samples, torch.zeros(2), seed=3)
    b = posterior_hdr_size(_GaussianPosterior(), prior, samples, torch.zeros(2), seed=3)
    assert a == b
    assert abs(a.fraction - DISC * 0.01 / 4) < 4 * a.stderr + 0.002
    assert a.to_dict() == {"fraction": a.fraction, "stderr": a.stderr, "mass": 0.9, "num_prior": 10_000}


def test_every_round_event_carries_the_hdr_size():
    import sbi_core

    torch.set_num_threads(1)
    sim = sbi_core.get_simulator("two_moons")
    events = []
    sbi_core.run_sequential(sim, sim.prior, sim.default_observation, method="snpe", num_rounds=1,
                            simulations_per_round=200, seed=0, max_epochs=3, hidden_features=16,
                            num_transforms=2, on_event=events.append)
    rounds = [e for e in events if e["type"] == "round"]
    assert len(rounds) == 1
    size = rounds[0]["hdr_size"]
    assert set(size) == {"fraction", "stderr", "mass", "num_prior"}
    assert 0.0 < size["fraction"] <= 1.0 and size["stderr"] >= 0 and size["mass"] == 0.9

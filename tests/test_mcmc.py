"""The MCMC engine (sbi_core.stats.mcmc): correctness on known densities, groups, support, seeds,
cancellation, diagnostics, and the SLCP reference posterior built on it."""

import math

import pytest
import torch

from sbi_core.errors import Cancelled, SBIError
from sbi_core.stats.mcmc import MCMCInitError, mcmc_report, sample_mcmc


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _box(g: torch.Generator, dim: int, half: float = 5.0):
    return lambda m: (torch.rand(m, dim, generator=g) * 2 - 1) * half


COV = torch.tensor([[1.0, 0.8], [0.8, 1.0]])
MEAN = torch.tensor([0.5, -1.0])


def _gaussian(t):  # (G, B, 2) -> (G, B)
    z = t - MEAN
    return -0.5 * torch.einsum("gbi,ij,gbj->gb", z, torch.linalg.inv(COV), z)


def test_correlated_gaussian_mean_and_cov():
    g = _gen(0)
    res = sample_mcmc(_gaussian, _box(g, 2), 4000, generator=g)
    s = res.samples[0]
    assert res.samples.shape == (1, 4000, 2)
    assert res.draws.shape[:2] == (1, 50) and res.draws.shape[3] == 2
    assert torch.allclose(s.mean(0), MEAN, atol=0.1)
    assert torch.allclose(torch.cov(s.T), COV, atol=0.12)
    assert res.num_evaluations > 0 and res.seconds > 0


def test_bimodal_modes_get_their_weights():
    """Two far-apart modes (weights 0.3 / 0.7): the resampling start puts chains in both."""
    centres, weights = torch.tensor([-4.0, 4.0]), torch.tensor([0.3, 0.7])

    def mixture(t):  # (G, B, 1)
        comp = -0.5 * ((t[..., 0, None] - centres) / 0.3) ** 2 + weights.log()
        return torch.logsumexp(comp, dim=-1)

    g = _gen(1)
    res = sample_mcmc(mixture, _box(g, 1, 8.0), 4000, num_chains=200, num_init_candidates=20_000, generator=g)
    s = res.samples[0, :, 0]
    assert 0.22 < (s < 0).float().mean() < 0.38
    assert abs(s[s > 0].mean() - 4.0) < 0.05 and abs(s[s > 0].std() - 0.3) < 0.05


def test_groups_are_sampled_independently():
    means = torch.tensor([[-2.0, 0.0], [0.0, 1.0], [3.0, -3.0]])  # one per group
    seen = []

    def target(t):  # (3, B, 2)
        seen.append(tuple(t.shape))
        return -0.5 * ((t - means[:, None, :]) / 0.5).pow(2).sum(-1)

    g = _gen(2)
    res = sample_mcmc(target, _box(g, 2), 1000, num_groups=3, num_chains=20, generator=g)
    assert res.samples.shape == (3, 1000, 2) and res.draws.shape[:2] == (3, 20)
    assert torch.allclose(res.samples.mean(1), means, atol=0.1)
    assert torch.allclose(res.samples.std(1), torch.full((3, 2), 0.5), atol=0.08)
    assert all(s[0] == 3 and s[2] == 2 for s in seen)


def test_bounded_support_is_respected():
    """A density flat on [0, 1] x [-1, 2] (-inf outside): draws stay inside and are uniform."""

    def box(t):
        inside = (t[..., 0] >= 0) & (t[..., 0] <= 1) & (t[..., 1] >= -1) & (t[..., 1] <= 2)
        return torch.where(inside, 0.0, -torch.inf)

    g = _gen(3)
    s = sample_mcmc(box, _box(g, 2, 3.0), 4000, generator=g).samples[0]
    assert (s[:, 0] >= 0).all() and (s[:, 0] <= 1).all() and (s[:, 1] >= -1).all() and (s[:, 1] <= 2).all()
    assert abs(s[:, 0].mean() - 0.5) < 0.04 and abs(s[:, 1].mean() - 0.5) < 0.1
    assert abs(s[:, 0].var() - 1 / 12) < 0.015


def test_reproducible_with_the_same_generator_and_global_rng_untouched():
    state = torch.get_rng_state()
    a = sample_mcmc(_gaussian, _box(_gen(4), 2), 300, generator=_gen(5)).samples
    b = sample_mcmc(_gaussian, _box(_gen(4), 2), 300, generator=_gen(5)).samples
    c = sample_mcmc(_gaussian, _box(_gen(4), 2), 300, generator=_gen(6)).samples
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(state, torch.get_rng_state())


def test_progress_and_cancel():
    calls = []
    sample_mcmc(_gaussian, _box(_gen(0), 2), 500, generator=_gen(0), on_progress=lambda d, t: calls.append((d, t)))
    assert 1 <= len(calls) <= 20
    assert calls[-1][0] == calls[-1][1] and all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))

    polls = []

    def cancel():
        polls.append(1)
        return len(polls) > 5

    with pytest.raises(Cancelled):
        sample_mcmc(_gaussian, _box(_gen(0), 2), 500, generator=_gen(0), cancel=cancel)


def test_impossible_density_and_bad_settings_raise_plain_errors():
    with pytest.raises(MCMCInitError, match="positive posterior density"):
        sample_mcmc(lambda t: torch.full(t.shape[:2], -math.inf), _box(_gen(0), 2), 10, generator=_gen(0))
    with pytest.raises(SBIError):
        sample_mcmc(_gaussian, _box(_gen(0), 2), 10, thin=0)


def test_report_flags_stuck_chains_and_passes_good_ones():
    g = _gen(7)
    good = torch.randn(4, 250, 2, generator=g)
    rep = mcmc_report(good, ["mu_1", "mu_2"], seconds=1.5)
    assert rep["kind"] == "mcmc" and rep["num_chains"] == 4 and rep["num_draws"] == 250
    assert rep["warning"] is None and rep["seconds"] == 1.5
    assert all(r < 1.05 for r in rep["rhat"]) and all(e > 500 for e in rep["ess"])

    stuck = good * 0.1 + torch.tensor([0.0, 1.0, 2.0, 3.0])[:, None, None]  # each chain at its own place
    rep = mcmc_report(stuck, ["mu_1", "mu_2"])
    assert rep["rhat"][0] > 1.1 and "not mixed" in rep["warning"] and "mu_" in rep["warning"]

    sticky = torch.cumsum(torch.randn(4, 250, 1, generator=g), dim=1) * 0.05 + torch.randn(4, 1, 1, generator=g) * 0.01
    rep = mcmc_report(sticky)
    assert rep["warning"] is not None and "theta1" in rep["warning"]


def test_report_is_json_serialisable_with_undefined_values():
    import json

    rep = mcmc_report(torch.zeros(2, 3, 2))  # constant chains: nothing is defined
    json.dumps(rep, allow_nan=False)
    assert rep["warning"] is not None


def test_sampler_diagnostics_say_a_gaussian_mixed():
    g = _gen(8)
    res = sample_mcmc(_gaussian, _box(g, 2), 2000, generator=g)
    rep = mcmc_report(res.draws[0], seconds=res.seconds)
    assert rep["warning"] is None and max(rep["rhat"]) < 1.05


@pytest.mark.slow
def test_slcp_reference_agrees_with_a_long_independent_run():
    from sbi_core.simulators import get_simulator
    from sbi_core.simulators.benchmark import _slcp_log_likelihood

    sim = get_simulator("slcp")
    x_obs = sim.default_observation
    ref = sim.reference_posterior(x_obs, 3000, seed=0)
    assert ref.shape == (3000, 5) and sim.prior.support_contains(ref).all()
    # the four mirror modes (signs of theta3, theta4) carry 1/4 of the mass each
    quadrant = (ref[:, 2] > 0).float() * 2 + (ref[:, 3] > 0).float()
    assert all(abs(float((quadrant == q).float().mean()) - 0.25) < 0.04 for q in range(4))

    def log_post(t):
        inside = (t.abs() <= 3).all(-1)
        return torch.where(inside, _slcp_log_likelihood(t, x_obs.double()), -torch.inf)

    g = _gen(11)
    long = sample_mcmc(log_post, lambda m: (torch.rand(m, 5, generator=g, dtype=torch.float64) * 2 - 1) * 3, 2000,
                       num_chains=40, warmup=200, thin=4, num_init_candidates=20_000, generator=g)
    other = long.samples[0].float()
    folded = lambda s: torch.cat([s[:, :2], s[:, 2:4].abs(), s[:, 4:]], 1)  # noqa: E731
    a, b = folded(ref), folded(other)
    assert torch.allclose(a.mean(0), b.mean(0), atol=0.15), (a.mean(0), b.mean(0))
    assert torch.allclose(a.std(0), b.std(0), atol=0.12), (a.std(0), b.std(0))
    rep = mcmc_report(long.draws[0])
    assert max(rep["rhat"][:2] + rep["rhat"][4:]) < 1.05

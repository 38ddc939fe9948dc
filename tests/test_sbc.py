"""SBC: uniform ranks for an exact posterior, clear failures for distorted ones; shared draws and batched sampling."""

import math
import time

import pytest
import torch
from scipy.stats import ks_2samp

import sbi_core
from calibration_models import GaussianPosterior, gaussian_datasets
from sbi_core import SBIError
from sbi_core.diagnostics import check_sbc, draw_for_datasets, drop_invalid, run_sbc, sample_for_datasets, sbc_ranks

N = 300


@pytest.fixture(scope="module")
def datasets():
    return gaussian_datasets(N, dim=2, seed=0)


def test_exact_posterior_gives_uniform_ranks(datasets):
    thetas, xs = datasets
    ranks, dap = run_sbc(thetas, xs, GaussianPosterior(), num_posterior_samples=100, seed=1)
    assert ranks.shape == (N, 2) and dap.shape == (N, 2)
    assert ranks.min() >= 0 and ranks.max() <= 100
    checks = check_sbc(ranks, thetas, dap, num_posterior_samples=100)
    assert (checks["ks_pvals"] > 0.01).all(), checks["ks_pvals"]
    assert (checks["c2st_ranks"] < 0.6).all(), checks["c2st_ranks"]
    assert (checks["c2st_dap"] < 0.6).all(), checks["c2st_dap"]
    assert checks["n_datasets"] == N


@pytest.mark.parametrize("distorted", [GaussianPosterior(scale=0.5), GaussianPosterior(shift=0.5)],
                         ids=["shrunk", "shifted"])
def test_overconfident_and_biased_posteriors_are_detected(datasets, distorted):
    thetas, xs = datasets
    ranks, dap = run_sbc(thetas, xs, distorted, num_posterior_samples=100, seed=1)
    checks = check_sbc(ranks, thetas, dap, num_posterior_samples=100)
    assert (checks["ks_pvals"] < 0.01).all(), checks["ks_pvals"]
    assert (checks["c2st_ranks"] > 0.55).all(), checks["c2st_ranks"]


def test_shrunk_ranks_pile_up_at_both_ends(datasets):
    thetas, xs = datasets
    ranks, _ = run_sbc(thetas, xs, GaussianPosterior(scale=0.5), num_posterior_samples=100, seed=1)
    at_ends = ((ranks < 10) | (ranks > 90)).float().mean()
    assert at_ends > 0.4  # about 0.19 for uniform ranks (19 of 101 values)


def test_rank_is_the_number_of_draws_below_the_truth():
    thetas = torch.tensor([[0.5, 0.0]])
    samples = torch.tensor([[[0.1, 1.0], [0.7, -1.0], [0.3, 2.0]]])  # (1, 3, 2)
    assert sbc_ranks(thetas, samples).tolist() == [[2.0, 1.0]]
    norm = lambda theta, x: theta.norm(dim=-1)  # noqa: E731
    assert sbc_ranks(thetas, samples, xs=torch.zeros(1, 1), reduce_fn=norm).tolist() == [[0.0]]
    with pytest.raises(SBIError, match="xs"):
        sbc_ranks(thetas, samples, reduce_fn=norm)


def test_reduce_fn_list_gives_one_column_each(datasets):
    thetas, xs = datasets
    post = GaussianPosterior()
    fns = [lambda t, x: post.log_prob(t, x), lambda t, x: t[:, 0]]
    ranks, _ = run_sbc(thetas[:50], xs[:50], post, num_posterior_samples=20, seed=3, reduce_fn=fns)
    plain, _ = run_sbc(thetas[:50], xs[:50], post, num_posterior_samples=20, seed=3)
    assert ranks.shape == (50, 2)
    assert torch.equal(ranks[:, 1], plain[:, 0])


def test_nan_rows_are_dropped_and_counted(datasets):
    thetas, xs = datasets[0][:40].clone(), datasets[1][:40].clone()
    xs[3, 0] = math.nan
    xs[7, 1] = math.inf
    _, _, n_dropped = drop_invalid(thetas, xs)
    assert n_dropped == 2
    ranks, dap = run_sbc(thetas, xs, GaussianPosterior(), num_posterior_samples=20, seed=0)
    assert ranks.shape == (38, 2) and dap.shape == (38, 2)
    draws = draw_for_datasets(thetas, xs, GaussianPosterior(), 20, seed=0)
    assert draws.n_dropped == 2 and draws.n_datasets == 38
    with pytest.raises(SBIError, match="All 2"):
        drop_invalid(thetas[:2], torch.full((2, 2), math.nan))


def test_seed_reproduces_and_shared_draws_give_the_same_ranks(datasets):
    thetas, xs = datasets
    post = GaussianPosterior()
    a, dap_a = run_sbc(thetas, xs, post, num_posterior_samples=30, seed=5)
    b, dap_b = run_sbc(thetas, xs, post, num_posterior_samples=30, seed=5)
    c, _ = run_sbc(thetas, xs, post, num_posterior_samples=30, seed=6)
    assert torch.equal(a, b) and torch.equal(dap_a, dap_b)
    assert not torch.equal(a, c)
    samples = sample_for_datasets(post, xs, 30, seed=5)
    shared, dap_shared = run_sbc(thetas, xs, None, samples=samples)
    assert torch.equal(shared, a) and torch.equal(dap_shared, dap_a)


def test_shared_samples_with_nan_rows_drop_the_same_rows(datasets):
    thetas, xs = datasets[0][:30].clone(), datasets[1][:30].clone()
    xs[0] = math.nan
    clean = draw_for_datasets(thetas, xs, GaussianPosterior(), 25, seed=2)
    full = torch.zeros(30, 25, 2)
    full[1:] = clean.samples
    ranks, _ = run_sbc(thetas, xs, None, samples=full)
    assert torch.equal(ranks, sbc_ranks(clean.thetas, clean.samples))
    with pytest.raises(SBIError, match="samples must have shape"):
        run_sbc(thetas, xs, None, samples=clean.samples)


def test_progress_callback_reports_and_can_cancel(datasets):
    thetas, xs = datasets[0][:120], datasets[1][:120]
    seen = []
    run_sbc(thetas, xs, GaussianPosterior(), num_posterior_samples=10, seed=0, on_event=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (120, 120) and len(seen) > 2
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)

    class Stop(Exception):
        pass

    def cancel(done, total):
        if done >= 30:
            raise Stop

    with pytest.raises(Stop):
        run_sbc(thetas, xs, GaussianPosterior(), num_posterior_samples=10, seed=0, on_event=cancel)


def test_bad_inputs_say_what_to_fix(datasets):
    thetas, xs = datasets
    with pytest.raises(SBIError, match="one simulation per parameter set"):
        run_sbc(thetas[:10], xs[:9], GaussianPosterior())
    ranks, dap = run_sbc(thetas[:20], xs[:20], GaussianPosterior(), num_posterior_samples=50, seed=0)
    with pytest.raises(SBIError, match="num_posterior_samples"):
        check_sbc(ranks, thetas[:20], dap, num_posterior_samples=10)
    with pytest.raises(SBIError, match="same D"):
        check_sbc(ranks, thetas[:20, :1], dap, num_posterior_samples=50)


# ---- sbi_core's Posterior: batched sampling -----------------------------------------------------------------
@pytest.fixture(scope="module")
def small_posterior():
    """An undertrained two-moons posterior: its flow leaks out of the prior's box, so rejection matters."""
    sim = sbi_core.get_simulator("two_moons")
    g = torch.Generator().manual_seed(0)
    theta = sim.prior.sample((300,), generator=g)
    x = sim.simulate(theta, generator=g)
    post = sbi_core.NPE(sim.prior, hidden_features=16, num_transforms=2, max_epochs=3).train(theta, x)
    return sim, post, x[:6]


def test_sample_batched_matches_per_observation_sampling(small_posterior):
    sim, post, xs = small_posterior
    batched = post.sample_batched(2000, xs, seed=0)
    assert batched.shape == (6, 2000, 2)
    assert sim.prior.support_contains(batched.reshape(-1, 2)).all()
    for i in (0, 3):
        single = post.sample((2000,), x=xs[i], seed=1)
        for d in range(2):
            assert ks_2samp(batched[i, :, d].numpy(), single[:, d].numpy()).pvalue > 1e-3
    assert torch.equal(post.sample_batched(50, xs, seed=3), post.sample_batched(50, xs, seed=3))
    assert 0 < post.last_acceptance_rate <= 1


def test_sample_batched_rejects_bad_observations(small_posterior):
    _, post, xs = small_posterior
    bad = xs.clone()
    bad[1, 0] = math.nan
    with pytest.raises(SBIError, match="1 of the 6 observations"):
        post.sample_batched(10, bad)
    with pytest.raises(SBIError, match=r"shape \(N, 2\)"):
        post.sample_batched(10, xs[:, :1])


def test_sample_batched_gives_up_on_an_implausible_observation(small_posterior):
    _, post, xs = small_posterior
    tiny_box = sbi_core.Prior.from_spec(
        [{"name": n, "dist": "uniform", "low": 0.9, "high": 0.9001} for n in ("theta1", "theta2")]
    )
    narrow = sbi_core.Posterior(post.flow, tiny_box)
    with pytest.raises(sbi_core.PosteriorSamplingError, match="For observation 0"):
        narrow.sample_batched(100, xs[:2], seed=0, min_acceptance=0.01)


def test_sample_for_datasets_uses_batched_sampling(small_posterior):
    _, post, xs = small_posterior
    calls = []

    class Spy:
        def sample(self, *a, **k):
            raise AssertionError("the per-observation path was used")

        def sample_batched(self, num_samples, xs, generator=None):
            calls.append(xs.shape[0])
            return post.sample_batched(num_samples, xs, generator=generator)

    out = sample_for_datasets(Spy(), xs, 7, seed=0)
    assert out.shape == (6, 7, 2) and sum(calls) == 6


@pytest.mark.slow
def test_sbc_of_a_trained_npe_is_fast():
    """200 datasets x 100 draws of a two-moons NPE posterior on one thread (bench/calibration.py reports the time)."""
    torch.set_num_threads(1)
    sim = sbi_core.get_simulator("two_moons")
    g = torch.Generator().manual_seed(0)
    theta = sim.prior.sample((1000,), generator=g)
    post = sbi_core.NPE(sim.prior, max_epochs=10).train(theta, sim.simulate(theta, generator=g))
    thetas = sim.prior.sample((200,), generator=g)
    xs = sim.simulate(thetas, generator=g)
    start = time.perf_counter()
    ranks, dap = run_sbc(thetas, xs, post, num_posterior_samples=100, seed=0)
    seconds = time.perf_counter() - start
    assert ranks.shape == (200, 2) and sim.prior.support_contains(dap).all()
    assert seconds < 30, f"SBC took {seconds:.1f} s"

"""Expected coverage (HPD and central), the outside-the-interval share, z-scores and recovery."""

import math

import pytest
import torch

from calibration_models import NOISE, GaussianPosterior, SamplesOnly, gaussian_datasets
from sbi_core import SBIError
from sbi_core.diagnostics import (
    draw_for_datasets,
    expected_coverage,
    outside_central_interval,
    recovery,
    zscore_contraction,
)
from sbi_core.diagnostics.coverage import rank_interval_weight

N = 400
LEVELS = (0.2, 0.5, 0.8, 0.9, 0.95)


@pytest.fixture(scope="module")
def datasets():
    return gaussian_datasets(N, dim=2, seed=20)


@pytest.fixture(scope="module")
def exact_draws(datasets):
    return draw_for_datasets(*datasets, GaussianPosterior(), 100, seed=0)


@pytest.fixture(scope="module")
def shrunk_draws(datasets):
    return draw_for_datasets(*datasets, GaussianPosterior(scale=0.5), 100, seed=0)


def test_randomized_rank_weight_is_exact_for_uniform_counts():
    L = 37
    counts = torch.arange(L + 1)  # every value of a uniform rank once
    for level in (0.05, 0.5, 0.9, 0.99):
        lo, hi = torch.tensor((1 - level) / 2, dtype=torch.float64), torch.tensor((1 + level) / 2, dtype=torch.float64)
        hpd = rank_interval_weight(counts, L, torch.tensor(0.0), torch.tensor(level, dtype=torch.float64)).mean()
        central = rank_interval_weight(counts, L, lo, hi).mean()
        assert float(hpd) == pytest.approx(level, abs=1e-12)
        assert float(central) == pytest.approx(level, abs=1e-12)


@pytest.mark.parametrize("kind", ["hpd", "central"])
def test_exact_posterior_covers_at_nominal_level(datasets, exact_draws, kind):
    cov = expected_coverage(*datasets, GaussianPosterior(), levels=LEVELS, kind=kind, samples=exact_draws.samples)
    assert cov.kind == kind and cov.n_datasets == N and cov.n_dropped == 0
    nominal = cov.levels if kind == "hpd" else cov.levels[:, None]
    assert cov.coverage.shape == ((5,) if kind == "hpd" else (5, 2))
    assert ((cov.coverage - nominal).abs() <= 3 * cov.stderr.clamp_min(0.01)).all(), cov.coverage
    if kind == "hpd":
        assert cov.density == "log_prob"


@pytest.mark.parametrize("kind", ["hpd", "central"])
def test_overconfident_posterior_under_covers(datasets, shrunk_draws, kind):
    cov = expected_coverage(*datasets, GaussianPosterior(scale=0.5), levels=LEVELS, kind=kind,
                            samples=shrunk_draws.samples)
    nominal = cov.levels if kind == "hpd" else cov.levels[:, None]
    assert (cov.coverage < nominal - 5 * cov.stderr).all(), cov.coverage


def test_wide_posterior_over_covers(datasets):
    cov = expected_coverage(*datasets, GaussianPosterior(scale=2.0), levels=(0.5, 0.8), seed=0)
    assert (cov.coverage > cov.levels + 0.1).all(), cov.coverage


def test_without_log_prob_hpd_falls_back_to_a_kde(datasets, exact_draws, shrunk_draws):
    exact = expected_coverage(*datasets, SamplesOnly(GaussianPosterior()), levels=LEVELS, samples=exact_draws.samples)
    assert exact.density == "kde"
    assert ((exact.coverage - exact.levels).abs() < 0.06).all(), exact.coverage
    shrunk = expected_coverage(*datasets, SamplesOnly(GaussianPosterior()), levels=LEVELS, samples=shrunk_draws.samples)
    assert (shrunk.coverage < shrunk.levels - 5 * shrunk.stderr).all(), shrunk.coverage


def test_log_prob_that_is_not_implemented_falls_back_to_a_kde(datasets, exact_draws):
    class NoDensity(SamplesOnly):
        def log_prob(self, theta, x):
            raise NotImplementedError

    cov = expected_coverage(*datasets, NoDensity(GaussianPosterior()), levels=(0.5,), samples=exact_draws.samples)
    assert cov.density == "kde"


def test_given_log_prob_fn_is_used(datasets, exact_draws):
    """It scores each dataset's draws and truth together (with exact draws any statistic ranks uniformly)."""
    calls = []

    def log_prob_fn(theta, x):
        calls.append(tuple(theta.shape))
        return GaussianPosterior().log_prob(theta, x)

    cov = expected_coverage(*datasets, SamplesOnly(GaussianPosterior()), levels=(0.5,), samples=exact_draws.samples,
                            log_prob_fn=log_prob_fn)
    assert cov.density == "log_prob" and calls == [(101, 2)] * N
    with pytest.raises(SBIError, match="log_prob returned 1 values for 101"):
        expected_coverage(*datasets, None, samples=exact_draws.samples, log_prob_fn=lambda t, x: torch.zeros(1))


def test_outside_the_90_interval(exact_draws, shrunk_draws):
    exact = outside_central_interval(exact_draws.thetas, exact_draws.samples, level=0.9)
    shrunk = outside_central_interval(shrunk_draws.thetas, shrunk_draws.samples, level=0.9)
    assert exact.shape == (2,)
    assert ((exact - 0.1).abs() < 0.05).all(), exact
    assert (shrunk > 0.25).all(), shrunk  # a 0.5x posterior puts its 90 % interval at +-0.82 sd: 41 % outside


def test_nan_rows_are_counted(datasets):
    thetas, xs = datasets[0][:60].clone(), datasets[1][:60].clone()
    xs[[2, 9, 30], 0] = math.nan
    cov = expected_coverage(thetas, xs, GaussianPosterior(), levels=(0.5,), num_posterior_samples=20, seed=0)
    assert cov.n_dropped == 3 and cov.n_datasets == 57


def test_bad_levels_and_kind_say_what_to_fix(datasets):
    with pytest.raises(SBIError, match="strictly between 0 and 1"):
        expected_coverage(*datasets, GaussianPosterior(), levels=(0.5, 1.0))
    with pytest.raises(SBIError, match="'hpd' or 'central'"):
        expected_coverage(*datasets, GaussianPosterior(), kind="quantile")


# ---- z-scores, contraction, recovery ----------------------------------------------------------------
POSTERIOR_VAR = NOISE**2 / (1 + NOISE**2)  # 0.2: the exact posterior's variance per coordinate


def test_zscores_and_contraction_of_the_exact_posterior(exact_draws):
    res = zscore_contraction(exact_draws.thetas, exact_draws.samples, prior_std=torch.ones(2))
    assert res.z.shape == res.contraction.shape == (N, 2) and res.n_datasets == N
    assert res.z.mean(0).abs().max() < 0.15
    assert ((res.z.std(0) - 1).abs() < 0.1).all(), res.z.std(0)
    assert ((res.contraction.mean(0) - (1 - POSTERIOR_VAR)).abs() < 0.02).all()


def test_zscores_spread_out_for_an_overconfident_posterior(shrunk_draws):
    res = zscore_contraction(shrunk_draws.thetas, shrunk_draws.samples, prior_std=1.0)
    assert (res.z.std(0) > 1.7).all()  # 2 in theory
    assert (res.contraction.mean(0) > 0.93).all()  # 1 - 0.05


def test_zscore_of_a_fixed_parameter_is_nan():
    thetas = torch.tensor([[1.0, 0.0]])
    samples = torch.stack([torch.tensor([1.0, 0.1]), torch.tensor([1.0, -0.1])])[None]
    res = zscore_contraction(thetas, samples, prior_std=torch.tensor([0.0, 1.0]))
    assert math.isnan(res.z[0, 0]) and math.isnan(res.contraction[0, 0])
    assert res.z[0, 1] == pytest.approx(0.0) and res.contraction[0, 1] == pytest.approx(1 - 0.02)


def test_recovery_of_the_exact_posterior(exact_draws):
    rec = recovery(exact_draws.thetas, exact_draws.samples)
    assert rec.means.shape == rec.stds.shape == (N, 2)
    assert ((rec.r2 - (1 - POSTERIOR_VAR)).abs() < 0.05).all(), rec.r2
    assert ((rec.correlation - math.sqrt(1 - POSTERIOR_VAR)).abs() < 0.03).all(), rec.correlation
    assert ((rec.stds.mean(0) - math.sqrt(POSTERIOR_VAR)).abs() < 0.02).all()


def test_recovery_of_a_biased_posterior_is_worse(datasets):
    draws = draw_for_datasets(*datasets, GaussianPosterior(shift=1.0), 50, seed=0)
    rec = recovery(draws.thetas, draws.samples)
    assert (rec.r2 < 0.1).all() and (rec.correlation > 0.85).all()  # shifted means still correlate


def test_zscore_shapes_are_checked():
    with pytest.raises(SBIError, match=r"\(N, L, D\)"):
        recovery(torch.zeros(5, 2), torch.zeros(5, 10, 3))

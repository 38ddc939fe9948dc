"""TARP: the exact posterior's curve lies on the diagonal; narrow, wide and biased posteriors move its area."""

import math

import pytest
import torch

from calibration_models import GaussianPosterior, gaussian_datasets
from sbi_core import SBIError
from sbi_core.diagnostics import check_tarp, run_tarp, sample_for_datasets
from sbi_core.diagnostics.tarp import tarp_counts, tarp_references

N = 400


@pytest.fixture(scope="module")
def datasets():
    return gaussian_datasets(N, dim=2, seed=10)


def test_exact_posterior_is_on_the_diagonal(datasets):
    thetas, xs = datasets
    ecp, alpha = run_tarp(thetas, xs, GaussianPosterior(), num_posterior_samples=100, seed=0)
    assert alpha.shape == ecp.shape == (101,)
    assert alpha[0] == 0 and alpha[-1] == 1 and ecp[0] == 0 and ecp[-1] == 1
    assert (ecp.diff() >= 0).all()
    atc, ks_pval = check_tarp(ecp, alpha)
    assert abs(atc) < 0.02, atc
    assert ks_pval > 0.01
    assert (ecp - alpha).abs().max() < 0.1


@pytest.mark.parametrize(("posterior", "sign"), [(GaussianPosterior(scale=0.5), -1), (GaussianPosterior(scale=2.0), 1)],
                         ids=["shrunk", "wide"])
def test_narrow_posterior_has_negative_area_and_wide_positive(datasets, posterior, sign):
    thetas, xs = datasets
    ecp, alpha = run_tarp(thetas, xs, posterior, num_posterior_samples=100, seed=0)
    atc, ks_pval = check_tarp(ecp, alpha)
    assert sign * atc > 0.04, atc
    # sbi's KS test compares the curve's values with the grid's, a weak test: far below the exact's p of ~1, no more
    assert ks_pval < 0.2


def test_biased_posterior_leaves_the_diagonal(datasets):
    thetas, xs = datasets
    ecp, alpha = run_tarp(thetas, xs, GaussianPosterior(shift=0.7), num_posterior_samples=100, seed=0)
    assert (ecp - alpha).abs().max() > 0.1


def test_counts_are_draws_closer_to_the_reference_than_the_truth():
    thetas = torch.tensor([[0.0, 0.0]])
    refs = torch.tensor([[1.0, 0.0]])
    samples = torch.tensor([[[0.5, 0.0], [2.5, 0.0], [0.9, 0.9], [-1.0, 0.0]]])  # distances 0.5, 1.5, 0.9, 2
    assert tarp_counts(thetas, samples, refs, "l2", z_score_theta=False).tolist() == [2]
    assert tarp_counts(thetas, samples, refs, "l1", z_score_theta=False).tolist() == [1]  # l1 of (0.9, 0.9) is 1.0
    lmax = lambda a, b: (a - b).abs().amax(-1)  # noqa: E731
    assert tarp_counts(thetas, samples, refs, lmax, z_score_theta=False).tolist() == [2]


def test_references_lie_in_the_bounding_box_and_follow_the_seed(datasets):
    thetas, _ = datasets
    refs = tarp_references(thetas, torch.Generator().manual_seed(0))
    assert ((refs >= thetas.min(0).values) & (refs <= thetas.max(0).values)).all()
    thetas_small, xs_small = datasets[0][:60], datasets[1][:60]
    a = run_tarp(thetas_small, xs_small, GaussianPosterior(), num_posterior_samples=20, seed=4)
    b = run_tarp(thetas_small, xs_small, GaussianPosterior(), num_posterior_samples=20, seed=4)
    assert torch.equal(a[0], b[0])


def test_given_references_and_shared_samples(datasets):
    thetas, xs = datasets[0][:80], datasets[1][:80]
    samples = sample_for_datasets(GaussianPosterior(), xs, 30, seed=1)
    refs = torch.zeros_like(thetas)
    ecp, _ = run_tarp(thetas, xs, None, references=refs, samples=samples)
    counts = tarp_counts(thetas, samples, refs)
    f = counts.float() / 30
    assert ecp[50] == pytest.approx(float((f < 0.5).float().mean()), abs=1.0 / 30 + 1e-6)
    with pytest.raises(SBIError, match="references must have the shape"):
        run_tarp(thetas, xs, None, references=refs[:5], samples=samples)


def test_nan_rows_are_dropped_not_fatal(datasets):
    thetas, xs = datasets[0][:50].clone(), datasets[1][:50].clone()
    xs[:5, 1] = math.nan
    ecp, alpha = run_tarp(thetas, xs, GaussianPosterior(), num_posterior_samples=20, seed=0)
    assert torch.isfinite(ecp).all() and ecp[-1] == 1


def test_check_tarp_of_the_diagonal_and_of_a_step():
    alpha = torch.linspace(0, 1, 101)
    atc, p = check_tarp(alpha.clone(), alpha)
    assert atc == 0 and p == pytest.approx(1.0)
    step = (alpha >= 0.5).float() * 0.5 + 0.5 * (alpha == 1).float()  # ECP of an overconfident posterior, extreme
    atc_step, p_step = check_tarp(step, alpha)
    assert atc_step < -0.1 and p_step < 0.05
    with pytest.raises(SBIError):
        check_tarp(alpha[:10], alpha)

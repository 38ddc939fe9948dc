"""Posterior z-scores, contraction and parameter recovery over test datasets.

From ``L`` posterior draws at each test dataset ``(theta*_i, x_i)``, with
posterior mean ``m_id`` and standard deviation ``s_id`` of parameter ``d``
(Schad, Betancourt and Vasishth, 2021):

    z_id = (m_id - theta*_id) / s_id            posterior z-score
    c_id = 1 - s_id^2 / sigma_d^2                posterior contraction

with ``sigma_d`` the prior's standard deviation. A calibrated posterior has
z-scores of mean 0 and spread about 1 (a spread well above 1: overconfident;
a mean away from 0: biased); contraction near 1 means the data pinned the
parameter down, near 0 that little was learned (negative: wider than the prior).

Recovery compares the posterior means with the truth per parameter:
the coefficient of determination

    R^2_d = 1 - sum_i (m_id - theta*_id)^2 / sum_i (theta*_id - mean_i theta*_id)^2

(1: means equal the truth; 0: no better than guessing the average; it can be
negative) and the Pearson correlation of ``m_d`` with ``theta*_d``.

All functions take the draws ``(N, L, D)`` made once for all checks
(:mod:`.batched`). Where ``s_id = 0`` (a fixed parameter) ``z_id`` is NaN;
where ``sigma_d = 0``, ``c_id`` is NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sbi_core.errors import SBIError

__all__ = ["ZScores", "Recovery", "zscore_contraction", "recovery"]


@dataclass(frozen=True)
class ZScores:
    """z: ``(N, D)`` posterior z-scores; contraction: ``(N, D)``; n_datasets: ``N``."""

    z: Tensor
    contraction: Tensor
    n_datasets: int


@dataclass(frozen=True)
class Recovery:
    """means, stds: ``(N, D)`` posterior means and standard deviations;
    r2, correlation: ``(D,)`` of the means against the truth; n_datasets: ``N``."""

    means: Tensor
    stds: Tensor
    r2: Tensor
    correlation: Tensor
    n_datasets: int


def _check(thetas: Tensor, samples: Tensor) -> tuple[Tensor, Tensor]:
    thetas = torch.as_tensor(thetas, dtype=torch.float64)
    samples = torch.as_tensor(samples, dtype=torch.float64)
    if thetas.ndim != 2 or samples.ndim != 3 or samples.shape[0] != thetas.shape[0] or samples.shape[2] != thetas.shape[1]:
        raise SBIError(
            f"thetas must be (N, D) and posterior_samples (N, L, D) for the same N and D; "
            f"got {tuple(thetas.shape)} and {tuple(samples.shape)}."
        )
    if samples.shape[1] < 2:
        raise SBIError("A posterior standard deviation needs at least 2 draws per dataset.")
    return thetas, samples


def _nan_where_zero(numerator: Tensor, denominator: Tensor) -> Tensor:
    return torch.where(denominator > 0, numerator / denominator.clamp_min(1e-300), torch.full_like(numerator, float("nan")))


def zscore_contraction(thetas: Tensor, posterior_samples: Tensor, prior_std: Tensor | float) -> ZScores:
    """z-scores and contraction of ``posterior_samples (N, L, D)`` at true ``thetas (N, D)``.

    ``prior_std``: ``(D,)`` prior standard deviations (``Prior.stddev``), or one number for all.
    """
    thetas, samples = _check(thetas, posterior_samples)
    sigma = torch.as_tensor(prior_std, dtype=torch.float64).expand(thetas.shape[1])
    mean, std = samples.mean(1), samples.std(1)
    z = _nan_where_zero(mean - thetas, std)
    contraction = 1 - _nan_where_zero(std**2, sigma**2 * torch.ones_like(std))
    return ZScores(z.float(), contraction.float(), int(thetas.shape[0]))


def recovery(thetas: Tensor, posterior_samples: Tensor) -> Recovery:
    """Posterior means and stds of ``posterior_samples (N, L, D)``, and how well the means recover ``thetas (N, D)``."""
    thetas, samples = _check(thetas, posterior_samples)
    mean, std = samples.mean(1), samples.std(1)
    truth_c, mean_c = thetas - thetas.mean(0), mean - mean.mean(0)
    r2 = 1 - _nan_where_zero(((mean - thetas) ** 2).sum(0), (truth_c**2).sum(0))
    corr = _nan_where_zero((truth_c * mean_c).sum(0), ((truth_c**2).sum(0) * (mean_c**2).sum(0)).sqrt())
    return Recovery(mean.float(), std.float(), r2.float(), corr.float(), int(thetas.shape[0]))

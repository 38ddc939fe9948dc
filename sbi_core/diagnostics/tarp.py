"""TARP: tests of accuracy with random points (Lemos et al., 2023).

For each test dataset ``(theta*_i, x_i)`` with ``L`` posterior draws
``theta_il``, pick a random reference point ``r_i`` and count the draws
closer to it than the truth,

    k_i = #{ l : d(r_i, theta_il) < d(r_i, theta*_i) },   f_i = k_i / L.

``f_i`` is the credibility of the smallest ball around ``r_i`` that contains
the truth. For an exact posterior ``k_i`` is uniform on ``{0, ..., L}`` (for
any reference distribution independent of the draws), so the expected
coverage probability

    ECP(alpha) = mean_i P_U((k_i + U) / (L + 1) < alpha),   U ~ U(0, 1),

equals ``alpha``: the curve lies on the diagonal (the randomized count is the
one of :func:`sbi_core.diagnostics.coverage.rank_interval_weight`; the plain
indicator ``1[f_i < alpha]`` runs low by about ``alpha / L``). Unlike per-parameter
ranks, TARP looks at the joint posterior; it is necessary *and* sufficient for
calibration when references are random (Lemos et al., Theorem 3).

References are drawn uniformly in the bounding box of the test ``thetas``
(from the seed's ``"tarp_references"`` stream, independent of the posterior
draws), as in the paper and in ``sbi``. With ``z_score_theta`` every
coordinate is first rescaled to ``[0, 1]`` over that box, so parameters of
different units weigh alike in the distance ``d`` (``"l2"``, ``"l1"`` or a callable).

:func:`check_tarp` summarises the curve on the grid ``alpha_j = j / J``:

    ATC = sum_{j >= J/2} (ECP(alpha_j) - alpha_j) * (1 / J)

(as ``sbi`` computes it: the area between curve and diagonal over
``alpha >= 0.5``). ATC near 0 is calibrated; negative means overconfident
(too narrow), positive underconfident (too wide); a biased posterior also
moves it. The KS p-value is scipy's two-sample test between the ECP values
and the alpha grid, also as in ``sbi``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import torch
from torch import Tensor

from sbi_core.diagnostics.batched import ProgressCallback, resolve_samples, valid_rows
from sbi_core.diagnostics.coverage import rank_interval_weight
from sbi_core.errors import SBIError
from sbi_core.stats.seeds import SeedPlan

__all__ = ["run_tarp", "tarp_counts", "tarp_references", "check_tarp", "NUM_ALPHA"]

NUM_ALPHA = 101  # alpha grid 0, 0.01, ..., 1

# distance(a (..., D), b (..., D)) -> (...)
Distance = Callable[[Tensor, Tensor], Tensor]
_DISTANCES: dict[str, Distance] = {
    "l2": lambda a, b: ((a - b) ** 2).sum(-1).sqrt(),
    "l1": lambda a, b: (a - b).abs().sum(-1),
}


def tarp_references(thetas: Tensor, generator: torch.Generator) -> Tensor:
    """``(N, D)`` reference points uniform in the bounding box of ``thetas (N, D)``."""
    lo, hi = thetas.min(0).values, thetas.max(0).values
    return lo + (hi - lo) * torch.rand(thetas.shape, generator=generator)


def tarp_counts(
    thetas: Tensor,
    samples: Tensor,
    references: Tensor,
    distance: Union[str, Distance] = "l2",
    z_score_theta: bool = True,
) -> Tensor:
    """``k_i``, ``(N,)``: draws in ``samples (N, L, D)`` closer to ``references (N, D)`` than ``thetas (N, D)``."""
    dist = _DISTANCES.get(distance) if isinstance(distance, str) else distance
    if dist is None:
        raise SBIError(f"distance must be 'l2', 'l1' or a function; got {distance!r}.")
    if z_score_theta:
        lo, hi = thetas.min(0).values, thetas.max(0).values
        span = (hi - lo).clamp_min(1e-10)
        thetas, samples, references = (thetas - lo) / span, (samples - lo) / span, (references - lo) / span
    to_samples = dist(references[:, None, :], samples)  # (N, L)
    to_truth = dist(references, thetas)  # (N,)
    return (to_samples < to_truth[:, None]).sum(1)


def run_tarp(
    thetas: Tensor,
    xs: Tensor,
    posterior: Any,
    num_posterior_samples: int = 100,
    seed: Optional[int] = None,
    on_event: Optional[ProgressCallback] = None,
    references: Optional[Tensor] = None,
    distance: Union[str, Distance] = "l2",
    z_score_theta: bool = True,
    *,
    samples: Optional[Tensor] = None,
    num_alpha: int = NUM_ALPHA,
) -> tuple[Tensor, Tensor]:
    """``(ecp, alpha)``, both ``(num_alpha,)``: TARP's coverage curve on test datasets ``thetas (N, D)``, ``xs (N, K)``.

    Args:
        posterior, num_posterior_samples, seed, on_event, samples: as in :func:`~.sbc.run_sbc`.
        references: ``(N, D)`` reference points, one per row of ``thetas``; drawn
            uniformly in the bounding box of the valid ``thetas`` when ``None``.
        distance: ``"l2"``, ``"l1"`` or ``f(a (..., D), b (..., D)) -> (...)``.
        z_score_theta: rescale each coordinate to ``[0, 1]`` over the box first.
        num_alpha: points of the alpha grid ``0..1``.

    Rows whose ``x`` or ``theta`` is not finite are dropped (``drop_invalid`` counts them).
    """
    if num_alpha < 3:
        raise SBIError(f"num_alpha must be at least 3, got {num_alpha}.")
    draws = resolve_samples(thetas, xs, posterior, num_posterior_samples, seed, on_event, samples)
    if references is None:
        if seed is None:
            g = torch.Generator()
            g.seed()
        else:
            g = SeedPlan(int(seed)).generator("tarp_references")
        refs = tarp_references(draws.thetas, g)
    else:
        refs = torch.as_tensor(references, dtype=torch.float32)
        ok = valid_rows(thetas, xs)
        if refs.shape != (len(ok), draws.thetas.shape[1]):
            raise SBIError(
                f"references must have the shape of thetas, ({len(ok)}, {draws.thetas.shape[1]}): one point "
                f"per dataset; got {tuple(refs.shape)}."
            )
        refs = refs[ok]
    counts = tarp_counts(draws.thetas, draws.samples, refs, distance, z_score_theta)
    alpha = torch.linspace(0.0, 1.0, int(num_alpha), dtype=torch.float64)
    weights = rank_interval_weight(counts[None, :], draws.num_posterior_samples, torch.zeros(1, 1), alpha[:, None])
    return weights.mean(1).to(torch.float32), alpha.to(torch.float32)


def check_tarp(ecp: Tensor, alpha: Tensor) -> tuple[float, float]:
    """``(atc, ks_pval)`` of a TARP curve ``ecp (J,)`` on the uniform grid ``alpha (J,)``.

    ``atc``: the area between curve and diagonal for ``alpha >= 0.5`` (module
    docstring); ``ks_pval``: two-sample KS p-value between ``ecp`` and ``alpha``.
    """
    ecp = torch.as_tensor(ecp, dtype=torch.float64).reshape(-1)
    alpha = torch.as_tensor(alpha, dtype=torch.float64).reshape(-1)
    if ecp.shape != alpha.shape or len(alpha) < 3:
        raise SBIError(f"ecp and alpha must be equal-length curves of 3 points or more; got {len(ecp)} and {len(alpha)}.")
    mid = len(alpha) // 2
    step = float(alpha[1] - alpha[0])
    atc = float(((ecp[mid:] - alpha[mid:]) * step).sum())
    from scipy.stats import ks_2samp  # scipy only when a check runs

    return atc, float(ks_2samp(ecp.numpy(), alpha.numpy()).pvalue)

r"""Where the chains start: importance resampling of candidate points.

For each group ``g`` (observation), ``M`` candidates ``theta_m`` are drawn
from ``init_sampler`` (usually the prior) and weighted by the unnormalised
target, ``w_m ∝ exp(log p_g(theta_m))``; the ``C`` starting points are drawn
from the candidates with these weights (without replacement where enough
candidates have positive weight, so chains start apart). This is sbi's
``"resample"`` initialisation. Started where the posterior has mass, chains
need a short warm-up only, and with ``M`` large enough every mode of a
multimodal posterior (two moons) gets chains in proportion to its mass, which
a single slice chain could not find by itself.

Each group's candidates are the same ``M`` draws (one call of ``init_sampler``),
evaluated under each group's density in one ``(G, M, D)`` batch.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from sbi_core.errors import SBIError

__all__ = ["MCMCInitError", "resample_init"]


class MCMCInitError(SBIError):
    """No candidate starting point has positive density."""


def resample_init(
    log_prob: Callable[[Tensor], Tensor],
    init_sampler: Callable[[int], Tensor],
    num_groups: int,
    num_chains: int,
    num_candidates: int,
    generator: Optional[torch.Generator] = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Starting points of ``C = num_chains`` chains per group.

    Args:
        log_prob: ``(G, M, D) -> (G, M)`` unnormalised log density.
        init_sampler: ``m -> (m, D)`` candidate points.
        num_groups, num_chains, num_candidates: ``G``, ``C``, ``M``.

    Returns:
        ``x0 (G, C, D)``, ``lp0 (G, C)`` (finite) and ``spread (G, D)``: the
        weighted standard deviation of the candidates per group, a first scale
        for the slice widths.

    Raises:
        MCMCInitError: when every candidate of some group has zero density.
    """
    cand = torch.as_tensor(init_sampler(int(num_candidates)))
    cand = cand.reshape(int(num_candidates), -1)
    if not cand.is_floating_point():
        cand = cand.to(torch.get_default_dtype())
    m, d = cand.shape
    with torch.no_grad():
        lp = log_prob(cand.unsqueeze(0).expand(num_groups, m, d).contiguous()).detach()
    lp = torch.nan_to_num(lp.to(cand.dtype), nan=-torch.inf, posinf=-torch.inf, neginf=-torch.inf).reshape(num_groups, m)
    finite = torch.isfinite(lp)
    if not bool(finite.any(dim=1).all()):
        bad = int((~finite.any(dim=1)).nonzero()[0])
        raise MCMCInitError(
            f"MCMC could not start: none of {m} candidate parameter values has a positive posterior density"
            + (f" for observation {bad + 1}" if num_groups > 1 else "")
            + ". The observation may be impossible under this model and prior; check the observation, "
            "or widen the prior."
        )
    weights = torch.softmax(lp, dim=1)  # (G, M); exp(-inf) = 0
    enough = bool((finite.sum(dim=1) >= num_chains).all())
    idx = torch.multinomial(weights, num_chains, replacement=not enough, generator=generator)  # (G, C)
    x0 = cand[idx]
    lp0 = lp.gather(1, idx)
    mean = weights @ cand  # (G, D)
    var = weights @ cand**2 - mean**2
    spread = var.clamp_min(0).sqrt()
    # a posterior narrower than the candidates resolve (all weight on one point): fall back to their spread
    fallback = cand.std(dim=0).expand_as(spread)
    spread = torch.where(spread > 0, spread, fallback)
    return x0, lp0, torch.where(spread > 0, spread, torch.ones_like(spread))

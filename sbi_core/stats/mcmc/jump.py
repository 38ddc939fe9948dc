r"""Jumps between modes: an independence Metropolis-Hastings move after every sweep.

Slice sampling moves locally, so a chain does not leave the mode it starts in
when modes are far apart (the two crescents of two moons, the mirror modes of
SLCP). After each sweep a chain therefore proposes a point from a fixed
density ``q`` that covers the whole posterior and accepts it with probability

    min(1, p(theta') q(theta) / (p(theta) q(theta'))),

the independence sampler (Tierney 1994, "Markov chains for exploring posterior
distributions", Ann. Statist. 22(4)). It leaves ``p`` invariant for any fixed
``q``, so the chain stays correct; it moves between modes as often as ``q``
matches ``p`` there, and it lets R-hat see whether chains agree.

``q`` is fixed at the end of warm-up: per group, a mixture of Gaussians
centred on the ``C`` chains' states then (posterior draws, all modes the
chains found), with a diagonal bandwidth ``h_g = s_g b_g``: ``s_g`` the
per-parameter spread of the posterior (:mod:`.init`) and ``b_g`` the median
distance from a centre to its nearest neighbour in units of ``s_g``, at most
Scott's ``C^{-1/(D+4)}``. The nearest-neighbour scale keeps the kernels as thin
as a thin posterior (the crescents of two moons), where Scott's rule would
spread them over empty space and almost every jump would be rejected:

    q_g(theta) = (1 / C) sum_c N(theta; x_{g,c}, diag(h_g^2)).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

__all__ = ["MixtureProposal"]


class MixtureProposal:
    """``q_g``: a mixture of ``C`` Gaussians per group.

    Args:
        centres: ``(G, C, D)`` mixture centres.
        bandwidth: ``(G, D)`` kernel standard deviations.
    """

    def __init__(self, centres: Tensor, bandwidth: Tensor):
        self.centres = centres
        self.h = bandwidth.clamp_min(torch.finfo(centres.dtype).tiny)

    @classmethod
    def around(cls, centres: Tensor, spread: Tensor) -> "MixtureProposal":
        """Kernels at ``centres (G, C, D)`` with the nearest-neighbour bandwidth for ``spread (G, D)``."""
        g, c, d = centres.shape
        scott = c ** (-1.0 / (d + 4))
        if c < 2:
            return cls(centres, spread * scott)
        z = centres / spread[:, None, :]
        dist = torch.cdist(z, z) + torch.eye(c, dtype=z.dtype) * torch.finfo(z.dtype).max  # (G, C, C)
        nearest = dist.min(dim=2).values.median(dim=1).values  # (G,)
        return cls(centres, spread * nearest.clamp(min=1e-3 * scott, max=scott)[:, None])

    def sample(self, groups: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """One draw ``(N, D)`` for each entry of ``groups (N,)`` (the group of each chain)."""
        c = self.centres.shape[1]
        pick = torch.randint(c, groups.shape, generator=generator)
        noise = torch.randn(groups.shape[0], self.centres.shape[2], generator=generator, dtype=self.centres.dtype)
        return self.centres[groups, pick] + self.h[groups] * noise

    def log_prob(self, theta: Tensor, groups: Tensor) -> Tensor:
        """``log q_g(theta_n)``: ``theta (N, D)``, ``groups (N,)`` -> ``(N,)``."""
        h = self.h[groups]  # (N, D)
        z = (theta[:, None, :] - self.centres[groups]) / h[:, None, :]  # (N, C, D)
        c, d = self.centres.shape[1], theta.shape[1]
        log_norm = -torch.log(h).sum(-1) - 0.5 * d * math.log(2 * math.pi) - math.log(c)
        return torch.logsumexp(-0.5 * (z**2).sum(-1), dim=1) + log_norm

"""Sequential NPE with truncated proposals (TSNPE; Deistler et al., 2022).

Round ``r > 0`` draws parameters from the prior truncated to the
highest-density region of the current posterior estimate at ``x_o``,

    p~_r(theta) = p(theta) 1[theta in H_r] / P(H_r),
    H_r = { theta : log q_r(theta | x_o) >= tau_r },

where ``tau_r`` is the ``eps`` quantile (``eps = 1e-4``) of
``log q_r(theta | x_o)`` under ``theta ~ q_r(. | x_o)``: ``H_r`` holds all
but ``eps`` of the estimated posterior mass.

Training uses plain maximum likelihood, ``-log q(theta | x)``, on the pairs of
every round. Pooled, the parameters come from the mixture
``p~(theta) = sum_r w_r p~_r(theta)``, so the network learns

    p(theta | x) p~(theta) / p(theta) / Z(x),

and ``p~(theta) / p(theta) = sum_r w_r 1[theta in H_r] / P(H_r)`` is constant
on the intersection of the ``H_r``. As long as every ``H_r`` contains the
true posterior at ``x_o`` (which the small ``eps`` is there to ensure), the
learned density at ``x_o`` is the posterior. Unlike APT's atomic loss this
needs no contrasting atoms, so a round costs what amortized NPE on the same
pairs costs, and the estimate cannot leak mass far outside the prior.

Sampling ``p~_r``: draw from the prior restricted to a box around 100,000
posterior samples (widened by 10 % of its width on each side), keep the draws
with ``log q_r(theta | x_o) >= tau_r``. Drawing from the restricted prior is
exact (inverse CDF per marginal), so the kept draws follow ``p~_r`` as long as
``H_r`` lies inside the box.

TSNPE is :class:`~.npe.NPE` (its plain loss) with :class:`TruncatedProposal`.

**The same proposal for flow and score matching** (TSFMPE, TSNPSE in
:mod:`.fmpe` and :mod:`.npse`). The argument above never used that ``q`` is a
normalizing flow: any estimator trained by plain regression on the pooled pairs
learns the conditional of the distribution they were drawn from, which is the
posterior on the region. Flow matching (its optimal-transport regression) and
denoising score matching are such losses, so a vector field trains on truncated
rounds unchanged, as sbi does with ``force_first_round_loss=True``. What differs
is the price of a density: ``log q`` of a vector field solves an ODE with the
field's divergence, about ``D + 1`` times the cost of a draw
(:mod:`sbi_core.posteriors.vector_field`, ``expensive_log_prob``). For such a
posterior the threshold is set from :data:`EXPENSIVE_REFERENCES` draws instead of
100,000, so ``tau`` is then about the lowest of their densities and the region
leaves out about ``max(eps, 1 / 4096)`` of the posterior's mass, and candidate
parameters are tested in batches of at most :data:`EXPENSIVE_BATCH`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from sbi_core.methods.base import Method
from sbi_core.methods.npe import MaximumLikelihood, NPE
from sbi_core.posteriors.posterior import Posterior, PosteriorSamplingError
from sbi_core.stats.priors import Prior
from sbi_core.stats.rejection import RejectionTooSlow, rejection_sample

__all__ = ["TSNPE", "TruncatedPrior", "TruncatedProposal", "METHOD", "EXPENSIVE_REFERENCES", "EXPENSIVE_BATCH"]

EXPENSIVE_REFERENCES = 4_096  # reference draws of a posterior whose log_prob solves an ODE (a vector field)
EXPENSIVE_BATCH = 16_384  # candidates per rejection batch for such a posterior (about 20 s of densities)


class TruncatedPrior:
    """The prior restricted to the ``1 - quantile`` highest-density region of a posterior at ``x_obs``.

    Args:
        prior: the prior over all ``D`` parameters.
        posterior: the current estimate ``q(theta | x)``.
        x_obs: ``(K,)`` the observation.
        quantile: ``eps``, the posterior mass left outside the region.
        num_reference: posterior samples used to set the threshold and the box (at most
            :data:`EXPENSIVE_REFERENCES` for a posterior with ``expensive_log_prob``).
        margin: how far the sampling box extends past the samples, as a
            fraction of their range per parameter.
        generator: randomness for the reference samples.

    Attributes:
        threshold: ``tau``, the log-density cut.
        num_reference: the posterior draws it was set from.
        low, high: ``(D,)`` the sampling box.
        prior_fraction: estimated prior mass of the region (1 = the whole prior).
        last_acceptance_rate: fraction of box draws kept by the last :meth:`sample`.
    """

    _expensive = False  # set per instance: the posterior's log_prob solves an ODE (a region pickled before has none)

    def __init__(
        self,
        prior: Prior,
        posterior: Posterior,
        x_obs: Tensor,
        quantile: float = 1e-4,
        num_reference: int = 100_000,
        margin: float = 0.1,
        generator: Optional[torch.Generator] = None,
    ):
        self.prior = prior
        self.posterior = posterior
        self.x_obs = torch.as_tensor(x_obs, dtype=torch.float32).reshape(-1)
        self._expensive = bool(getattr(posterior, "expensive_log_prob", False))
        if self._expensive:
            num_reference = min(int(num_reference), EXPENSIVE_REFERENCES)
        self.num_reference = int(num_reference)
        reference = posterior.sample((self.num_reference,), x=self.x_obs, generator=generator)
        log_q = posterior.log_prob(reference, x=self.x_obs, normalize=False)
        self.threshold = float(torch.quantile(log_q.double(), quantile))
        span = reference.max(0).values - reference.min(0).values
        support = prior.support_bounds
        self.low = torch.maximum(reference.min(0).values - margin * span, support[:, 0])
        self.high = torch.minimum(reference.max(0).values + margin * span, support[:, 1])
        self._box_mass = prior.box_mass(self.low, self.high)
        self.last_acceptance_rate: Optional[float] = None
        self.prior_fraction = self._box_mass  # refined by every call to sample()

    @property
    def dim(self) -> int:
        return self.prior.dim

    def contains(self, theta: Tensor) -> Tensor:
        """Bool ``(N,)``: whether ``theta (N, D)`` lies in the region.

        ``log_prob`` is ``-inf`` outside the prior's support, so the threshold
        also keeps the region inside it.
        """
        in_box = ((theta >= self.low) & (theta <= self.high)).all(1)
        log_q = self.posterior.log_prob(theta, x=self.x_obs, normalize=False)
        return in_box & (log_q >= self.threshold)

    def sample(
        self,
        sample_shape: tuple[int, ...] = (1,),
        x: Optional[Tensor] = None,
        generator: Optional[torch.Generator] = None,
        max_sampling_time: float = 60.0,
    ) -> Tensor:
        """``(*sample_shape, D)`` draws from the truncated prior (``x`` is ignored: the region is fixed)."""
        shape = tuple(torch.Size(sample_shape))
        n = math.prod(shape) if shape else 1
        try:
            samples, self.last_acceptance_rate = rejection_sample(
                lambda m: self.prior.sample_in_box(m, self.low, self.high, generator=generator),
                self.contains, n, max_seconds=max_sampling_time, first_rate=0.5, min_batch=1024,
                max_batch=EXPENSIVE_BATCH if self._expensive else 500_000,
            )
        except RejectionTooSlow as slow:
            cost = (" Each test solves the posterior's ODE, so a small region takes long to fill."
                    if self._expensive else "")
            raise PosteriorSamplingError(
                f"Only {100 * slow.rate:.3g}% of prior draws fall in the posterior's high-density region, "
                f"so the next round's parameters cannot be drawn in time.{cost} Narrow the prior or use fewer rounds."
            ) from None
        self.prior_fraction = self._box_mass * self.last_acceptance_rate
        return samples.reshape(*shape, self.dim)

    def __repr__(self) -> str:
        return f"TruncatedPrior(threshold={self.threshold:.3g}, prior_fraction={self.prior_fraction:.3g})"


@dataclass(frozen=True)
class TruncatedProposal:
    """Round ``r > 0`` draws from the prior truncated to the last posterior's ``1 - quantile`` region."""

    quantile: float = 1e-4
    sequential: bool = True

    def next_proposal(self, prior: Prior, posterior: Posterior, x_obs: Tensor,
                      generator: torch.Generator) -> TruncatedPrior:
        return TruncatedPrior(prior, posterior, x_obs, quantile=self.quantile, generator=generator)


def TSNPE(prior: Prior, *args, quantile: float = 1e-4, **kwargs) -> NPE:
    """Sequential NPE with truncated-prior proposals and the plain NPE loss.

    Args:
        prior, density_estimator, ...: as :class:`~sbi_core.methods.NPE`.
        quantile: ``eps``, posterior mass outside each proposal's region.
    """
    return NPE(prior, *args, loss=MaximumLikelihood(), proposal=TruncatedProposal(float(quantile)), **kwargs)


METHOD = Method.of("tsnpe", build=TSNPE)

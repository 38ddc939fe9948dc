"""Neural posterior estimation (NPE), amortized, and the estimator every NPE variant shares.

With pairs ``theta_i ~ p(theta)``, ``x_i ~ p(x | theta_i)``, maximising

    L(phi) = (1/N) sum_i log q_phi(theta_i | x_i)

over a conditional density ``q_phi`` makes ``q_phi(theta | x)`` approach the
posterior ``p(theta | x)`` for *every* ``x`` the prior predictive can produce
(the loss is minimised, in expectation, by the true posterior). One training
run thus answers any later observation without new simulations: the cost is
amortized.

The sequential variants are the same estimator with other arguments, not
subclasses: SNPE (:mod:`.snpe`) changes the loss and proposes from the last
posterior; TSNPE (:mod:`.tsnpe`) keeps this loss and proposes from the
truncated prior. :class:`NPE` pools every round's pairs and trains on all of
them with its :class:`~.base.PosteriorLoss`.

Fixed prior parameters are not learnt (their posterior is their value);
pairs whose simulation returned NaN or infinity are dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Optional

import torch
from torch import Tensor

from sbi_core.errors import SBIError
from sbi_core.events import EventCallback
from sbi_core.methods.base import Method, PosteriorLoss, PriorProposal, ProposalRule
from sbi_core.methods.pooled import PooledPairs, drop_invalid
from sbi_core.nn.flows import ConditionalFlow, build_flow
from sbi_core.nn.training import TrainConfig, TrainResult, train
from sbi_core.posteriors.posterior import Posterior
from sbi_core.stats.priors import Prior
from sbi_core.stats.seeds import SeedPlan

__all__ = ["NPE", "MaximumLikelihood", "drop_invalid", "METHOD"]  # drop_invalid: from .pooled


@dataclass(frozen=True)
class MaximumLikelihood:
    """``-log q(theta | x)`` per pair: the NPE loss (exact when every pair comes from the prior)."""

    def __call__(self, log_q, log_prior, theta: Tensor, x: Tensor, generator: torch.Generator,
                 round_index: int) -> Tensor:
        return -log_q(theta, x)


def training_config(overrides: dict, base: TrainConfig | None = None) -> TrainConfig:
    """``base`` (or the defaults) with ``overrides``; unknown names raise ``TypeError``."""
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"unknown training setting(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    values = {f.name: getattr(base or TrainConfig(), f.name) for f in fields(TrainConfig)}
    values.update(overrides)
    return TrainConfig(**values)


class NPE:
    """Neural posterior estimation with a conditional normalizing flow.

    Amortized use: ``NPE(prior).train(theta, x)`` returns a
    :class:`~sbi_core.posteriors.posterior.Posterior` valid at any observation. Rounds:
    ``append_simulations(theta, x)`` then ``train()`` (or :meth:`fit`) trains on
    every pair appended so far.

    Args:
        prior: the prior over ``D`` parameters.
        density_estimator: ``"nsf"`` (neural spline flow) or ``"maf"``.
        hidden_features, num_transforms, num_bins: flow size.
        seed: seeds the network's initial weights and all training randomness
            (streams ``"network"`` and ``"training"`` of :class:`~sbi_core.stats.seeds.SeedPlan`).
        loss: the per-sample loss (default :class:`MaximumLikelihood`).
        proposal: where later rounds draw (default: the prior, amortized).
        **training: any :class:`~sbi_core.nn.training.TrainConfig` field
            (``max_epochs``, ``batch_size``, ``learning_rate``, ...).

    >>> import sbi_core
    >>> sim = sbi_core.get_simulator("linear_regression")
    >>> theta = sim.prior.sample((200,)); x = sim.simulate(theta, seed=0)
    >>> post = NPE(sim.prior, hidden_features=8, num_transforms=1, max_epochs=2).train(theta, x)
    >>> post.sample((5,), x=x[0]).shape
    torch.Size([5, 2])
    """

    def __init__(
        self,
        prior: Prior,
        density_estimator: str = "nsf",
        hidden_features: int = 50,
        num_transforms: int = 5,
        num_bins: int = 10,
        seed: int = 0,
        *,
        loss: Optional[PosteriorLoss] = None,
        proposal: Optional[ProposalRule] = None,
        **training,
    ):
        self.prior = Prior.from_spec(prior)
        self.density_estimator = density_estimator
        self.flow_kwargs = dict(hidden_features=hidden_features, num_transforms=num_transforms, num_bins=num_bins)
        self.seed = int(seed)
        self.loss_rule: PosteriorLoss = loss or MaximumLikelihood()
        self.proposal_rule: ProposalRule = proposal or PriorProposal()
        self.train_config = training_config(training)
        self._seeds = SeedPlan(self.seed)
        self._generator = self._seeds.generator("training")
        self._free_prior = Prior([m for m in self.prior.marginals if not m.is_fixed])
        self._flow: Optional[ConditionalFlow] = None
        self._pairs = PooledPairs(self.prior)
        self.last_result: Optional[TrainResult] = None

    # ---- data ---------------------------------------------------------------
    @property
    def sequential(self) -> bool:
        return bool(self.proposal_rule.sequential)

    @property
    def free_mask(self) -> Tensor:
        return self.prior.free_mask

    @property
    def round(self) -> int:
        """0-based index of the last round appended (-1 before any)."""
        return self._pairs.round

    @property
    def num_simulations(self) -> int:
        return self._pairs.num_simulations

    @property
    def num_invalid(self) -> int:
        return self._pairs.num_invalid

    def append_simulations(self, theta: Tensor, x: Tensor) -> int:
        """Add one round's pairs ``theta (N, D)``, ``x (N, K)``; returns how many were invalid."""
        return self._pairs.append(theta, x)

    # ---- training -----------------------------------------------------------
    def _ensure_flow(self) -> ConditionalFlow:
        """Build the flow on the first round's pairs (its z-scoring comes from the prior round)."""
        if self._flow is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self._seeds.seed_of("network"))
                self._flow = build_flow(self.density_estimator, *self._pairs.first(), **self.flow_kwargs)
        return self._flow

    def _loss(self, round_index: int) -> Callable[[Tensor, Tensor, torch.Generator], Tensor]:
        flow, log_prior, rule = self._flow, self._free_prior.log_prob, self.loss_rule
        return lambda theta, x, g: rule(flow.log_prob, log_prior, theta, x, g, round_index)

    def fit(
        self,
        *,
        on_event: EventCallback | None = None,
        cancel: Callable[[], bool] | None = None,
        round_index: Optional[int] = None,
        **training,
    ) -> TrainResult:
        """Train on every pair appended so far (continuing from the current weights)."""
        theta, x = self._pairs.training_set()
        self._ensure_flow()
        r = self.round if round_index is None else int(round_index)
        self.last_result = train(
            self._flow, theta, x, self._loss(self.round),
            config=training_config(training, self.train_config), generator=self._generator,
            on_event=on_event, cancel=cancel, round_index=r,
        )
        return self.last_result

    def train(
        self,
        theta: Optional[Tensor] = None,
        x: Optional[Tensor] = None,
        *,
        on_event: EventCallback | None = None,
        cancel: Callable[[], bool] | None = None,
        round_index: Optional[int] = None,
        **training,
    ) -> Posterior:
        """Append ``theta (N, D)``, ``x (N, K)`` (if given), train, and return the posterior."""
        if theta is not None or x is not None:
            if theta is None or x is None:
                raise SBIError("Give both theta and x (or neither, after append_simulations).")
            self.append_simulations(theta, x)
        self.fit(on_event=on_event, cancel=cancel, round_index=round_index, **training)
        return self.build_posterior()

    # ---- snapshots ----------------------------------------------------------
    def build_posterior(self, default_x: Optional[Tensor] = None) -> Posterior:
        """An immutable snapshot of the current network as a :class:`Posterior`."""
        if self._flow is None:
            raise RuntimeError("train() first")
        return Posterior(self._flow, self.prior, default_x=default_x)

    def next_proposal(self, posterior: Posterior, x_obs: Tensor, generator: torch.Generator):
        """Where the next round draws parameters (see the proposal rule)."""
        return self.proposal_rule.next_proposal(self.prior, posterior, x_obs, generator)


def _build(prior: Prior, **settings) -> NPE:
    return NPE(prior, **settings)


METHOD = Method.of("npe", build=_build)

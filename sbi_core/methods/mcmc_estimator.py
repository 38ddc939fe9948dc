"""The estimator of every method whose posterior is sampled by MCMC (NLE, NRE and their sequential forms).

Such a method trains one network ``f_phi(theta, x)`` (a likelihood flow, a
ratio classifier) by minimising a per-sample loss ``l_phi(theta_i, x_i)`` over
the pooled pairs of all rounds, and its posterior is the potential
``f_phi(theta, x) + log p(theta)`` sampled by MCMC
(:class:`~sbi_core.posteriors.mcmc.MCMCPosterior`). What differs between the
methods is only which network, which loss and where later rounds propose,
so :class:`MCMCEstimator` takes those three as arguments (the classes in
:mod:`.nle` and :mod:`.nre` fill them in).

As for NPE: fixed prior parameters are not learnt (the network sees the free
ones; the posterior inserts the fixed values), pairs whose simulation returned
NaN or infinity are dropped and counted, and the network is built on the
first round's pairs (its z-scoring comes from the prior round).

A learned summary of ``x`` (``embedding``, :mod:`sbi_core.nn.embeddings`) is
passed to ``build_net`` as ``embedding=``, ``data_shape=`` and
``embedding_features=`` when one is asked for (the ratio classifier reads it;
NLE refuses it); ``x`` may then arrive in its array shape, as for NPE.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable, Optional

import torch
from torch import Tensor, nn

from sbi_core.events import EventCallback
from sbi_core.methods.base import PriorProposal, ProposalRule
from sbi_core.methods.npe import training_config
from sbi_core.methods.pooled import PooledData, PooledPairs
from sbi_core.nn.embeddings import as_shape, check_embedding, embedding_kwargs
from sbi_core.nn.training import TrainResult, train
from sbi_core.posteriors.base import same_observation
from sbi_core.posteriors.mcmc import MCMCPosterior, MCMCSettings
from sbi_core.stats.priors import Prior
from sbi_core.stats.seeds import SeedPlan

__all__ = ["MCMCEstimator", "NetLoss", "DrawsFirst", "WARM_PATIENCE"]

WARM_PATIENCE = 0.5  # the share of the patience that rounds after the first wait (see MCMCEstimator)

# loss(net, theta (B, Df), x (B, K), generator, round_index) -> (B,)
NetLoss = Callable[[nn.Module, Tensor, Tensor, torch.Generator, int], Tensor]


class MCMCEstimator(PooledData):
    """Pools rounds, trains ``build_net``'s network with ``loss``, snapshots an MCMC posterior.

    Args:
        prior: the prior over ``D`` parameters.
        learns: ``"likelihood"`` or ``"ratio"`` (what the network's output is).
        build_net: ``(theta_free (N, Df), x (N, K)) -> nn.Module`` from the first round's pairs.
        loss: the per-sample loss (:data:`NetLoss`).
        seed: seeds the initial weights and all training randomness (streams
            ``"network"`` and ``"training"`` of :class:`~sbi_core.stats.seeds.SeedPlan`).
        proposal: where later rounds draw (default: the prior, amortized).
        mcmc: how the posterior's chains run.
        init_from_last_round: for a sequential method, offer the parameters of the last
            round (draws of the previous posterior) as half of the chains' starting
            candidates. Measured neutral where prior candidates suffice (SNLE 10 x 1,000,
            seed 0, one observation: two moons C2ST 0.500 with, 0.542 without; SLCP 0.578
            with, 0.567 without; same time), kept for posteriors too narrow for prior draws.
        warm_patience: the fraction of the early-stopping patience that every round after the
            first waits (rounded up): those rounds continue from trained weights, which reach their
            best validation loss within a few epochs. Measured (SNLE 10 x 1,000, two moons, one
            observation, MAF, 2 threads): patience 10 in every round 66.9 s, C2ST 0.523; 5 in
            every round 36.0 s, 0.563; 10 then 5 (0.5): 39.6 s, 0.525.
        embedding, data_shape, embedding_features: the learned summary of ``x``, how one
            simulation folds and the summary's size, as for :class:`~sbi_core.methods.npe.NPE`.
        **training: any :class:`~sbi_core.nn.training.TrainConfig` field.
    """

    def __init__(self, prior: Prior, *, learns: str, build_net: Callable[[Tensor, Tensor], nn.Module],
                 loss: NetLoss, seed: int = 0, proposal: Optional[ProposalRule] = None,
                 mcmc: Optional[MCMCSettings] = None, init_from_last_round: bool = True,
                 warm_patience: float = WARM_PATIENCE, embedding=None, data_shape=None,
                 embedding_features: Optional[int] = None, **training):
        self.prior = Prior.from_spec(prior)
        self.learns = learns
        self.build_net = build_net
        self.loss = loss
        self.seed = int(seed)
        self.proposal_rule: ProposalRule = proposal or PriorProposal()
        self.mcmc = mcmc or MCMCSettings()
        self.init_from_last_round = bool(init_from_last_round)
        self.train_config = training_config(training)
        self.warm_patience = float(warm_patience)
        self._seeds = SeedPlan(self.seed)
        self._generator = self._seeds.generator("training")
        self._net: Optional[nn.Module] = None
        check_embedding(embedding)  # an unknown kind: say so now ...
        self.embedding = embedding
        if data_shape is not None:  # ... and data this method cannot read
            self._check_data(as_shape(data_shape))
        self.embedding_features = None if embedding_features is None else int(embedding_features)
        self._pairs = PooledPairs(self.prior, data_shape, embedding)
        self.last_result: Optional[TrainResult] = None

    # ---- data ---------------------------------------------------------------
    @property
    def net(self) -> Optional[nn.Module]:
        return self._net

    # ---- training -----------------------------------------------------------
    def _embedding_kwargs(self) -> dict:
        """``build_net``'s embedding arguments (:func:`~sbi_core.nn.embeddings.embedding_kwargs`)."""
        return embedding_kwargs(self.embedding, self.data_shape, self.embedding_features)

    def _ensure_net(self) -> nn.Module:
        if self._net is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self._seeds.seed_of("network"))
                self._net = self.build_net(*self._pairs.first(), **self._embedding_kwargs())
        return self._net

    def fit(self, *, on_event: EventCallback | None = None, cancel: Callable[[], bool] | None = None,
            round_index: Optional[int] = None, **training) -> TrainResult:
        """Train on every pair appended so far (continuing from the current weights)."""
        theta, x = self._pairs.training_set()
        net, loss, r = self._ensure_net(), self.loss, self.round
        config = training_config(training, self.train_config)
        if r > 0:  # continued from trained weights: a shorter wait for a better validation loss
            config = replace(config, patience=max(1, math.ceil(config.patience * self.warm_patience)))
        self.last_result = train(
            net, theta, x, lambda th, x, g: loss(net, th, x, g, r),
            config=config, generator=self._generator,
            on_event=on_event, cancel=cancel, round_index=r if round_index is None else int(round_index),
        )
        return self.last_result


    # ---- snapshots ----------------------------------------------------------
    def build_posterior(self, default_x: Optional[Tensor] = None) -> MCMCPosterior:
        """An immutable snapshot of the current network as an :class:`MCMCPosterior`."""
        if self._net is None:
            raise RuntimeError("train() first")
        pool = self._pairs.last_theta() if self.sequential and self.init_from_last_round and self.round > 0 else None
        return MCMCPosterior(self._net, self.learns, self.prior, default_x=default_x, mcmc=self.mcmc,
                             init_pool=pool, data_shape=self.data_shape)

    def next_proposal(self, posterior: MCMCPosterior, x_obs: Tensor, generator: torch.Generator):
        """Where the next round draws parameters (see the proposal rule); the last posterior's draws at
        ``x_o`` (the round's cloud) are used before new chains run (:class:`DrawsFirst`)."""
        proposal = self.proposal_rule.next_proposal(self.prior, posterior, x_obs, generator)
        drawn = posterior.drawn_at(x_obs) if isinstance(posterior, MCMCPosterior) else None
        if isinstance(proposal, MCMCPosterior) and drawn is not None:
            return DrawsFirst(proposal, drawn, x_obs)
        return proposal


class DrawsFirst:
    """The posterior as a proposal that first hands out draws it already made at ``x_o``.

    A sequential round proposes ``N`` parameters from the last posterior at
    ``x_o``, which the round's snapshot has just sampled (its cloud, ``m``
    draws). Running new chains for the same distribution would double the
    MCMC time of a round, so :meth:`sample` returns ``min(N, m)`` of those
    draws in a random order and runs the posterior's chains only for the rest.

    Args:
        posterior: the last round's posterior (its default observation is ``x_o``).
        draws: ``(m, D)`` its draws at ``x_o``.
        x_obs: ``(K,)`` the observation ``x_o``.
    """

    def __init__(self, posterior: MCMCPosterior, draws: Tensor, x_obs: Tensor):
        self.posterior = posterior
        self.draws = draws
        self.x_obs = torch.as_tensor(x_obs, dtype=torch.float32).reshape(-1)

    def sample(self, sample_shape: tuple[int, ...] = (1,), x: Optional[Tensor] = None,
               generator: Optional[torch.Generator] = None, **kwargs) -> Tensor:
        """``(*sample_shape, D)`` parameters: reused draws first (``x`` must be ``x_o`` or None)."""
        shape = tuple(torch.Size(sample_shape))
        n = math.prod(shape) if shape else 1
        if x is not None and not same_observation(torch.as_tensor(x, dtype=torch.float32).reshape(-1), self.x_obs):
            return self.posterior.sample(sample_shape, x=x, generator=generator, **kwargs)  # another x: fresh chains
        order = torch.randperm(len(self.draws), generator=generator)[:n]
        out = self.draws[order]
        if n > len(out):
            out = torch.cat([out, self.posterior.sample((n - len(out),), generator=generator, **kwargs)])
        return out.reshape(*shape, out.shape[-1])

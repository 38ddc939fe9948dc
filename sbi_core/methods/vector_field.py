"""The estimator FMPE and NPSE share: a conditional vector field trained on pooled pairs.

FMPE (:mod:`.fmpe`) and NPSE (:mod:`.npse`) learn ``q(theta | x)`` as a
continuous normalizing flow (:mod:`sbi_core.nn.vector_field`): the same network,
the same pooled pairs (:class:`~.pooled.PooledPairs`: invalid pairs dropped and
counted, fixed parameters left out, z-scoring from the first round), the same
training loop (:func:`sbi_core.nn.training.train`: validation split, early
stopping, an ``epoch`` event per epoch, cancel checks, seeds) and the same
posterior (:class:`~sbi_core.posteriors.vector_field.VectorFieldPosterior`); they
differ in the path that carries noise to the posterior, hence in the loss and
in the ODE.

**A deterministic validation loss.** Both losses draw a time and a noise per pair.
The validation split is scored with :data:`VALIDATION_DRAWS` draws per pair from a
generator of its own (the seed plan's ``"validation"`` stream), reset before every
epoch (:func:`~sbi_core.nn.training.train`'s ``validation_generator``): every epoch
scores the same draws, so early stopping compares networks, not noise.

**Amortized or truncated.** The proposal is the prior (FMPE, NPSE) or, from the
second round on, the prior truncated to the last posterior's highest-density region
(TSFMPE, TSNPSE: :class:`~.tsnpe.TruncatedProposal`, whose module docstring says why
the plain losses stay valid there and what a vector field's densities cost it).
APT's atomic loss needs the posterior's density at many contrasting parameters per
pair and so does not apply.

Settings the RunSpec carries for flows are read as: ``hidden_features`` the width,
``num_transforms`` (the flow's layers) the number of residual blocks;
``density_estimator`` (a flow's kind) does not apply and is ignored. The automatic
batch is :func:`~sbi_core.nn.training.vector_field_batch_size` (about 64 steps an epoch).

**Measured** (two moons, 10,000 simulations, training seed 0, mean C2ST of 5,000 draws
at 3 observations of ``bench/common.py``; one torch thread on a shared 2-core machine,
so the seconds are rough; sbi_core's NPE scores 0.570 there, sbi 0.27's FMPE with its
defaults 0.732 in 80 s of training). FMPE:

* time exponent: 0 (uniform) 0.777 with batches of 281; with batches of 128, learning
  rate 1e-3, patience 20: exponent 1 0.765, 4 0.604; at 2e-3: 4 0.578, 8 0.738;
* residual blocks against a plain MLP of the same width and depth: 0.604 against 0.752;
* batches of 256 / 128 at 1e-3: 0.703 / 0.604; of 128 / 64 at 2e-3: 0.578 / 0.570;
* patience 10 and 200 epochs at most (the RunSpec's) 0.581 in 55 s, patience 20 0.578 in 84 s;
* width 64: 0.58; 128 (the default): 0.553 in 48 s, 113 epochs (training seed 1: 0.602);
  the RunSpec's default size, 50 wide with 5 blocks: 0.571;
* RK4 steps: 5 0.659, 10 0.606, 20 0.602 (seed 1); at 40 network passes a draw RK4 x 10
  0.552, midpoint x 20 0.580, Euler x 40 0.603;
* ``log_prob`` at reference draws against 100 steps: RK4 x 10 off by 0.27 nats on average
  (at most 2.6), x 20 by 0.07 (at most 0.43): densities take 20 steps (``density_steps``).

NPSE:

* VP with uniform training times 0.723; with log-uniform noise levels but equal steps of
  ``t`` 0.735 at 20 steps and 0.687 at 50 (the solver, not the network: the last step of
  ``t`` crossed most noise levels); with equal steps of ``log(sigma / m)`` and the
  network added to the Gaussian baseline 0.620 (10, 20 and 50 steps alike);
* VE (the default): 0.560 at 10, 20 and 50 steps (training seed 1: 0.555), 0.612 at 5;
  learning rate 5e-4: 0.583; 56 s, 155 epochs;
* predictor-corrector SDE (VE, one Langevin step of signal-to-noise 0.16 per step): 50
  steps 0.545, 200 steps 0.552; with each row's own Langevin step size (instead of the
  batch's mean norms) 0.748 and 0.821.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Callable, Optional

import torch
from torch import Tensor

from sbi_core.errors import SBIError
from sbi_core.events import EventCallback
from sbi_core.methods.base import PriorProposal, ProposalRule
from sbi_core.methods.npe import training_config
from sbi_core.methods.pooled import PooledData, PooledPairs
from sbi_core.nn.embeddings import check_embedding, embedding_kwargs
from sbi_core.nn.training import TrainConfig, TrainResult, train, vector_field_batch_size
from sbi_core.nn.vector_field import ConditionalVectorField, VectorFieldConfig, build_vector_field
from sbi_core.posteriors.vector_field import VectorFieldPosterior
from sbi_core.stats.priors import Prior
from sbi_core.stats.seeds import SeedPlan

__all__ = ["VectorFieldEstimator", "VALIDATION_DRAWS"]

VALIDATION_DRAWS = 4  # time and noise draws per validation pair


class VectorFieldEstimator(PooledData):
    """A conditional vector field ``q(theta | x)`` trained by flow or score matching (see the module docstring).

    Args:
        prior: the prior over ``D`` parameters.
        path: ``"flow_matching"``, ``"vp"`` or ``"ve"`` (:mod:`sbi_core.nn.vector_field`).
        hidden_features, num_blocks: the network's width and residual blocks (``num_transforms``,
            the RunSpec's name for a flow's layers, is read as ``num_blocks`` when given).
        seed: seeds the initial weights and all training randomness.
        steps, solver, sampler: how the posterior solves its ODE (``None``: the path's default).
        embedding, data_shape, embedding_features: the learned summary of ``x``, as for
            :class:`~sbi_core.methods.npe.NPE`.
        network: other :class:`~sbi_core.nn.vector_field.VectorFieldConfig` fields (``time_exponent``,
            ``sigma_min``, ``beta_max``, ``residual``, ...).
        proposal: where later rounds draw (default: the prior, amortized; a
            :class:`~.tsnpe.TruncatedProposal` for TSFMPE and TSNPSE).
        **training: any :class:`~sbi_core.nn.training.TrainConfig` field.
    """

    def __init__(self, prior: Prior, path: str, *, hidden_features: int, num_blocks: int, seed: int = 0,
                 num_transforms: Optional[int] = None, density_estimator: Optional[str] = None,
                 steps: Optional[int] = None, solver: Optional[str] = None, sampler: Optional[str] = None,
                 embedding=None, data_shape=None, embedding_features: Optional[int] = None,
                 network: Optional[dict] = None, proposal: Optional[ProposalRule] = None, **training):
        self.prior = Prior.from_spec(prior)
        self.path = path
        blocks = int(num_blocks if num_transforms is None else num_transforms)
        sampling = {k: v for k, v in dict(steps=steps, solver=solver, sampler=sampler).items() if v is not None}
        self.network_kwargs = dict(hidden_features=int(hidden_features), num_blocks=blocks, **sampling,
                                   **(network or {}))
        self._check_network()
        self.seed = int(seed)
        self.proposal_rule: ProposalRule = proposal or PriorProposal()
        self.train_config = training_config(training)
        self._seeds = SeedPlan(self.seed)
        self._generator = self._seeds.generator("training")
        self._net: Optional[ConditionalVectorField] = None
        self.embedding = embedding
        self.embedding_features = None if embedding_features is None else int(embedding_features)
        check_embedding(embedding, data_shape)
        self._pairs = PooledPairs(self.prior, data_shape, embedding)
        self.last_result: Optional[TrainResult] = None

    def _check_network(self) -> None:
        """An :class:`SBIError` now for a setting the network would refuse (checked on a 1-D stand-in)."""
        try:
            VectorFieldConfig(path=self.path, theta_dim=1, x_dim=1, **self.network_kwargs)
        except (TypeError, ValueError) as err:
            raise SBIError(f"{type(self).__name__}: {err}") from None

    # ---- data ---------------------------------------------------------------
    # ---- training -----------------------------------------------------------
    def _ensure_net(self) -> ConditionalVectorField:
        """Build the network on the first round's pairs (its z-scoring comes from them)."""
        if self._net is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self._seeds.seed_of("network"))
                self._net = build_vector_field(
                    self.path, *self._pairs.first(), **self.network_kwargs,
                    **embedding_kwargs(self.embedding, self.data_shape, self.embedding_features))
        return self._net

    def _config(self, overrides: dict, num_pairs: int) -> TrainConfig:
        """The training schedule: the estimator's, ``overrides``, and
        :func:`~sbi_core.nn.training.vector_field_batch_size` where the batch is automatic."""
        cfg = training_config(overrides, self.train_config)
        if cfg.batch_size is None:
            n_train = num_pairs - max(int(round(cfg.validation_fraction * num_pairs)), cfg.min_validation)
            cfg = replace(cfg, batch_size=vector_field_batch_size(max(n_train, 1)))
        return cfg

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
        net = self._ensure_net()
        r = self.round if round_index is None else int(round_index)
        self.last_result = train(
            net, theta, x, lambda th, xx, g: net.loss(th, xx, g),
            config=self._config(training, theta.shape[0]), generator=self._generator,
            on_event=on_event, cancel=cancel, round_index=r,
            validation_loss=partial(_repeated_loss, net, VALIDATION_DRAWS),
            validation_generator=self._seeds.generator("validation"),
        )
        return self.last_result


    # ---- snapshots ----------------------------------------------------------
    def build_posterior(self, default_x: Optional[Tensor] = None) -> VectorFieldPosterior:
        """An immutable snapshot of the current network as a :class:`VectorFieldPosterior`."""
        if self._net is None:
            raise RuntimeError("train() first")
        return VectorFieldPosterior(self._net, self.prior, default_x=default_x, data_shape=self.data_shape)

    def next_proposal(self, posterior: VectorFieldPosterior, x_obs: Tensor, generator: torch.Generator):
        """Where the next round draws parameters (see the proposal rule)."""
        return self.proposal_rule.next_proposal(self.prior, posterior, x_obs, generator)


def _repeated_loss(net: ConditionalVectorField, repeats: int, theta: Tensor, x: Tensor,
                   generator: torch.Generator) -> Tensor:
    """The per-pair loss averaged over ``repeats`` draws (the validation loss; picklable)."""
    return net.loss(theta, x, generator, repeats=repeats)

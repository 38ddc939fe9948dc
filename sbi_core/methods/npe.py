"""Amortized neural posterior estimation (NPE).

With pairs ``theta_i ~ p(theta)``, ``x_i ~ p(x | theta_i)``, maximising

    L(phi) = (1/N) sum_i log q_phi(theta_i | x_i)

over a conditional density ``q_phi`` makes ``q_phi(theta | x)`` approach the
posterior ``p(theta | x)`` for *every* ``x`` the prior predictive can produce
(the loss is minimised, in expectation, by the true posterior). One training
run thus answers any later observation without new simulations: the cost is
amortized.

Fixed prior parameters are not learnt (their posterior is their value);
pairs whose simulation returned NaN or infinity are dropped and counted.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Callable, Optional

import torch
from torch import Tensor

from ..errors import SBIError
from ..events import EventCallback
from ..flows import ConditionalFlow, build_flow
from ..posterior import Posterior
from ..priors import Prior
from ..training import TrainConfig, TrainResult, train

__all__ = ["NPE", "drop_invalid"]


def drop_invalid(theta: Tensor, x: Tensor) -> tuple[Tensor, Tensor, int]:
    """Remove rows where ``x (N, K)`` or ``theta (N, D)`` is not finite; return the count removed."""
    ok = torch.isfinite(x).all(1) & torch.isfinite(theta).all(1)
    return theta[ok], x[ok], int((~ok).sum())


def _as_pairs(theta: Tensor, x: Tensor, prior: Prior) -> tuple[Tensor, Tensor]:
    theta = torch.as_tensor(theta, dtype=torch.float32)
    x = torch.as_tensor(x, dtype=torch.float32)
    if theta.ndim == 1 and prior.dim == 1:
        theta = theta[:, None]
    if x.ndim == 1:
        x = x[:, None]
    if theta.ndim != 2 or theta.shape[1] != prior.dim:
        raise SBIError(
            f"theta must have shape (N, {prior.dim}) for parameters {', '.join(prior.names)}; "
            f"got {tuple(theta.shape)}."
        )
    if x.ndim != 2 or x.shape[0] != theta.shape[0]:
        raise SBIError(
            f"x must have one row per theta row ({theta.shape[0]}); got shape {tuple(x.shape)}."
        )
    return theta, x


class NPE:
    """Neural posterior estimation with a conditional normalizing flow.

    Args:
        prior: the prior over ``D`` parameters.
        density_estimator: ``"nsf"`` (neural spline flow) or ``"maf"``.
        hidden_features, num_transforms, num_bins: flow size.
        seed: seeds the network's initial weights and all training randomness.
        **training: any :class:`~sbi_core.training.TrainConfig` field
            (``max_epochs``, ``batch_size``, ``learning_rate``, ...).
    """

    def __init__(
        self,
        prior: Prior,
        density_estimator: str = "nsf",
        hidden_features: int = 50,
        num_transforms: int = 5,
        num_bins: int = 10,
        seed: int = 0,
        **training,
    ):
        self.prior = Prior.from_spec(prior)
        self.density_estimator = density_estimator
        self.flow_kwargs = dict(hidden_features=hidden_features, num_transforms=num_transforms, num_bins=num_bins)
        self.seed = int(seed)
        self.train_config = self._config(training)
        self._flow: Optional[ConditionalFlow] = None
        self._generator = torch.Generator().manual_seed(self.seed + 1)
        self.last_result: Optional[TrainResult] = None
        self.num_invalid = 0

    @staticmethod
    def _config(overrides: dict, base: TrainConfig | None = None) -> TrainConfig:
        names = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown training setting(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        values = {f.name: getattr(base or TrainConfig(), f.name) for f in fields(TrainConfig)}
        values.update(overrides)
        return TrainConfig(**values)

    @property
    def free_mask(self) -> Tensor:
        return self.prior.free_mask

    def _ensure_flow(self, theta_free: Tensor, x: Tensor) -> ConditionalFlow:
        if self._flow is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                self._flow = build_flow(self.density_estimator, theta_free, x, **self.flow_kwargs)
        return self._flow

    def loss(self, theta_free: Tensor, x: Tensor, generator: torch.Generator) -> Tensor:
        """Per-sample ``-log q(theta | x)``: ``(B, D_free)``, ``(B, K)`` -> ``(B,)``."""
        return -self._flow.log_prob(theta_free, x)

    def _fit(
        self,
        theta: Tensor,
        x: Tensor,
        loss_fn: Callable,
        on_event: EventCallback | None,
        cancel: Callable[[], bool] | None,
        round_index: int,
        overrides: dict,
    ) -> TrainResult:
        config = self._config(overrides, self.train_config)
        result = train(
            self._flow,
            theta,
            x,
            loss_fn,
            config=config,
            generator=self._generator,
            on_event=on_event,
            cancel=cancel,
            round_index=round_index,
        )
        self.last_result = result
        return result

    def train(
        self,
        theta: Tensor,
        x: Tensor,
        *,
        on_event: EventCallback | None = None,
        cancel: Callable[[], bool] | None = None,
        round_index: int = 0,
        **training,
    ) -> Posterior:
        """Train on ``theta (N, D)`` and ``x (N, K)`` and return the posterior.

        Rows with non-finite values are dropped (see :attr:`num_invalid`).
        Calling ``train`` again continues from the current weights.
        """
        theta, x = _as_pairs(theta, x, self.prior)
        theta, x, self.num_invalid = drop_invalid(theta, x)
        if theta.shape[0] < 10:
            raise SBIError(
                f"Only {theta.shape[0]} valid simulations to train on ({self.num_invalid} returned NaN or "
                "infinity); at least 10 are needed."
            )
        free = theta[:, self.free_mask]
        self._ensure_flow(free, x)
        self._fit(free, x, self.loss, on_event, cancel, round_index, training)
        return self.build_posterior()

    def build_posterior(self, default_x: Optional[Tensor] = None) -> Posterior:
        """An immutable snapshot of the current network as a :class:`Posterior`."""
        if self._flow is None:
            raise RuntimeError("train() first")
        return Posterior(self._flow, self.prior, default_x=default_x)

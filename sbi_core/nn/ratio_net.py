"""The classifier of neural ratio estimation: ``d_phi(theta, x) = log r(theta, x)``.

A ratio estimator learns one real number per pair, the log of

    r(theta, x) = p(x | theta) / p(x) = p(theta, x) / (p(theta) p(x)),

by telling pairs drawn together (``theta_i, x_i``) from pairs drawn apart
(``theta_j, x_i``); the losses are in :mod:`sbi_core.methods.nre`. The network
is a residual MLP (as sbi's default ``"resnet"`` classifier) on the
concatenation of the z-scored inputs,

    h_0 = W_0 [ (theta - m_theta) / s_theta ,  (x - m_x) / s_x ],
    h_{l+1} = h_l + W_l'' relu(W_l' relu(h_l)),        d = w^T relu(h_L) + b,

with the z-scoring statistics taken from the first round's pairs and kept as
buffers (so a saved network carries them). With a learned summary
(:mod:`sbi_core.nn.embeddings`) the data enter as ``s_psi(x)`` (``F`` features) instead
of the z-scored ``x``, and the embedding's weights train with the classifier's:
``h_0 = W_0 [ (theta - m_theta) / s_theta ,  s_psi(x) ]``. ``kind="mlp"`` drops the skip
connections; the residual default measured better for NRE-C on two moons
(10,000 simulations, mean C2ST over 3 observations 0.752 against 0.781).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import torch
from torch import Tensor, nn

from sbi_core.nn.embeddings import (
    Embedding,
    build_embedding,
    checked_config_dict,
    embedding_config,
    make_embedding,
)
from sbi_core.nn.flows import zscore_stats

__all__ = ["RatioConfig", "RatioNet", "build_ratio_net"]


@dataclass(frozen=True)
class RatioConfig:
    """Architecture of a ratio classifier (JSON-serialisable).

    kind: ``"resnet"`` (residual blocks) or ``"mlp"``.
    theta_dim, x_dim: ``D`` and ``K``.
    hidden_features: width of every layer.
    num_blocks: residual blocks (or hidden layers for ``"mlp"``).
    embedding: the learned summary of ``x`` (an :class:`~sbi_core.nn.embeddings.EmbeddingConfig`
        as a dict), or ``None``: the z-scored ``x`` (payloads without the key load as ``None``).
    """

    theta_dim: int
    x_dim: int
    kind: str = "resnet"
    hidden_features: int = 50
    num_blocks: int = 2
    embedding: Optional[dict] = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in ("resnet", "mlp"):
            raise ValueError(f"classifier must be 'resnet' or 'mlp', got {self.kind!r}")
        if self.theta_dim < 1 or self.x_dim < 1:
            raise ValueError("theta_dim and x_dim must be at least 1")
        object.__setattr__(self, "embedding", checked_config_dict(self.embedding, self.x_dim))

    @property
    def x_features(self) -> int:
        """What the first layer reads of ``x``: ``F`` with an embedding, else ``K``."""
        return int(self.embedding["features"]) if self.embedding is not None else self.x_dim


class _Block(nn.Module):
    """``h -> h + W'' relu(W' relu(h))`` (no skip for an MLP layer)."""

    def __init__(self, width: int, residual: bool):
        super().__init__()
        self.residual = residual
        self.inner = nn.Sequential(nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))

    def forward(self, h: Tensor) -> Tensor:
        return h + self.inner(h) if self.residual else self.inner(h)


class RatioNet(nn.Module):
    """``log r(theta, x)`` with z-scoring built in.

    Args:
        cfg: the architecture.
        theta_mean, theta_std: ``(D,)`` z-scoring statistics of theta.
        x_mean, x_std: ``(K,)`` z-scoring statistics of x (unused with an embedding).
        embedding_net: with ``cfg.embedding``, the fitted embedding network (``None``: an
            unfitted one, to load a state into).
    """

    def __init__(self, cfg: RatioConfig, theta_mean: Tensor, theta_std: Tensor, x_mean: Tensor, x_std: Tensor,
                 embedding_net: Optional[Embedding] = None):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("theta_mean", theta_mean.clone().float())
        self.register_buffer("theta_std", theta_std.clone().float())
        self.register_buffer("x_mean", x_mean.clone().float())
        self.register_buffer("x_std", x_std.clone().float())
        if cfg.embedding is not None:
            self.embedding = embedding_net if embedding_net is not None else make_embedding(cfg.embedding)
        H = cfg.hidden_features
        self.inp = nn.Linear(cfg.theta_dim + cfg.x_features, H)
        self.blocks = nn.Sequential(*[_Block(H, cfg.kind == "resnet") for _ in range(cfg.num_blocks)])
        self.out = nn.Sequential(nn.ReLU(), nn.Linear(H, 1))

    def forward(self, theta: Tensor, x: Tensor) -> Tensor:
        """``log r(theta_i, x_i)``: ``theta (N, D)``, ``x (N, K)`` -> ``(N,)``."""
        emb = self.embedding_net
        x_in = (x - self.x_mean) / self.x_std if emb is None else emb(x)
        z = torch.cat([(theta - self.theta_mean) / self.theta_std, x_in], dim=-1)
        return self.out(self.blocks(self.inp(z))).squeeze(-1)

    @property
    def embedding_net(self) -> Optional[Embedding]:
        """The learned summary of ``x``, or ``None`` (a network saved before embeddings has none)."""
        return getattr(self, "embedding", None) if "embedding" in self._modules else None

    def augment(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """The training loop's hook: the embedding's augmentation of a batch ``x (B, K)`` (none without one)."""
        emb = self.embedding_net
        return x if emb is None else emb.augment(x, generator)

    # ---- persistence -------------------------------------------------------
    def to_payload(self) -> dict:
        """A dict (plain values and tensors) that :meth:`from_payload` turns back into an equal network."""
        return {"config": asdict(self.cfg), "state": self.state_dict()}

    @classmethod
    def from_payload(cls, payload: dict) -> "RatioNet":
        cfg = RatioConfig(**payload["config"])
        D, K = cfg.theta_dim, cfg.x_dim
        net = cls(cfg, torch.zeros(D), torch.ones(D), torch.zeros(K), torch.ones(K))
        net.load_state_dict(payload["state"])
        return net


def build_ratio_net(theta: Tensor, x: Tensor, kind: str = "resnet", hidden_features: int = 50,
                    num_blocks: int = 2, embedding: Any = None, data_shape: Any = None,
                    embedding_features: Optional[int] = None) -> RatioNet:
    """A fresh classifier z-scored on training data ``theta (N, D)``, ``x (N, K)`` (flat).

    embedding, data_shape, embedding_features: the learned summary of ``x``, how one row folds
        and the summary's size, as for
    :func:`sbi_core.nn.flows.build_flow` (``None``: the z-scored numbers, as before embeddings).

    Weights come from torch's current RNG: build it under
    :func:`torch.random.fork_rng` with a seed for a reproducible network.
    """
    emb_cfg = (embedding_config(embedding, data_shape, x_dim=x.shape[1], features=embedding_features)
               if embedding is not None else None)
    cfg = RatioConfig(theta_dim=theta.shape[1], x_dim=x.shape[1], kind=kind,
                      hidden_features=hidden_features, num_blocks=num_blocks,
                      embedding=None if emb_cfg is None else emb_cfg.to_dict())
    if emb_cfg is None:
        return RatioNet(cfg, *zscore_stats(theta), *zscore_stats(x))
    K = x.shape[1]
    return RatioNet(cfg, *zscore_stats(theta), torch.zeros(K), torch.ones(K),
                    embedding_net=build_embedding(emb_cfg, x))

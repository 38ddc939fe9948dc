"""Conditional normalizing flows ``q(theta | x)`` built on nflows.

A flow writes ``theta = T(z; x)`` with ``z ~ N(0, I)`` and ``T`` invertible in
``theta``, so that

    log q(theta | x) = log N(T^{-1}(theta; x); 0, I) + log |det d T^{-1} / d theta|.

Both sides are z-scored with statistics of the training data: the first
transform maps ``theta -> (theta - m_theta) / s_theta`` (its log-determinant
``-sum log s_theta`` is part of the density, so ``log_prob`` is in the original
units) and the context ``x`` enters the conditioner networks as
``(x - m_x) / s_x``.

Two families:

* ``"maf"``: masked autoregressive flow (Papamakarios et al., 2017): affine
  autoregressive layers with reversed orderings in between.
* ``"nsf"``: neural spline flow (Durkan et al., 2019): rational-quadratic
  spline coupling layers with alternating masks; linear tails outside
  ``[-tail_bound, tail_bound]`` in z-scored units.

Every flow starts (on the data side) with a conditional elementwise affine
layer, ``u = (theta_z - mu(x)) / sigma(x)``: it rescales a posterior that is
much narrower than the prior to unit width before the other layers. Without it
such a posterior occupies a sliver of the splines' interval and their
identity tails put far-away outliers around it (nflows' own affine layers
cannot do this: their scale is capped at 1).

For a single parameter both are replaced by autoregressive rational-quadratic
spline layers (whose only input is ``x``): an affine flow in 1-D could only
represent a Gaussian, and a coupling layer needs at least two features.

**Embeddings.** With a learned summary (:mod:`.embeddings`) the context is
``s_psi(x)`` (``F`` features) instead of the z-scored ``x``: the embedding
network is the nflows ``embedding_net`` of the flow, so its weights train with
the flow's. The conditional affine layer then starts at the identity
(``mu = 0``, ``sigma = 1``) instead of the least-squares fit: fitted to the
embedding's initial (random) features, ``A`` amplifies features that change as
soon as training starts. Measured (3,000 simulations of a Gaussian mean with 20
repeated trials, ``"set"``, NSF with 2 transforms, 32 hidden): with the fit the first
epoch's loss was 3.3e4 and the posterior came out 3 to 10 times too wide (1,
5, 20 trials); ridge-damped fits (1 % or 10 % of ``N``) 0.5 to 1.7 times; at the
identity the loss on new data came within 0.04 nats of the exact posterior's
at every trial count (1 to 20). The spline layers' identity tails then leave about
0.3 % of draws at prior-scale distances for a narrow posterior (the sample
standard deviation at 20 trials 1.5 times the exact one, the interquartile range
right): the affine layer's scale is learnt only as far as the loss asks.
NPE therefore adds to the gradient (not to the loss's value) that of the
affine layer's own Gaussian fit (:meth:`ConditionalFlow.log_prob_and_gaussian`,
:mod:`sbi_core.methods.npe`).
Hand-made summaries (``"handmade"``) are a fixed function with no weights, so
for them the affine layer starts at the least-squares fit on the standardised
summaries, as for a plain vector.

This is the only module that imports nflows. Its ``NaiveLinear`` is broken and
``LULinear`` warns under torch 2.13, so neither is used. Its spline layers evaluate
the spline with :mod:`.splines` (the same arithmetic without masked indexing, about
12 % less time per training step); their parameters, and so saved flows, are nflows'.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import torch
from torch import Tensor, nn

from nflows.distributions.normal import StandardNormal
from nflows.flows.base import Flow
from nflows.nn.nets import ResidualNet
from nflows.transforms.autoregressive import (
    MaskedAffineAutoregressiveTransform,
    MaskedPiecewiseRationalQuadraticAutoregressiveTransform,
)
from nflows.transforms.base import CompositeTransform, Transform
from nflows.transforms.coupling import PiecewiseRationalQuadraticCouplingTransform
from nflows.transforms.permutations import ReversePermutation
from nflows.transforms.standard import PointwiseAffineTransform
from nflows.utils.torchutils import create_alternating_binary_mask, sum_except_batch

from sbi_core.nn.embeddings import (
    Embedding,
    build_embedding,
    checked_config_dict,
    embedding_config,
    make_embedding,
)
from sbi_core.nn.splines import unconstrained_rational_quadratic_spline
from sbi_core.nn.standardize import Standardize, zscore_stats

_Standardize = Standardize  # the name checkpoints pickled before z-scoring moved to .standardize

__all__ = ["FlowConfig", "ConditionalFlow", "build_flow", "zscore_stats"]


@dataclass(frozen=True)
class FlowConfig:
    """Architecture of a conditional flow (JSON-serialisable).

    kind: ``"nsf"`` or ``"maf"``.
    theta_dim, x_dim: ``D`` and ``K``.
    hidden_features: width of every conditioner network.
    num_transforms: number of flow layers.
    num_blocks: residual blocks per conditioner.
    num_bins: spline bins (NSF and 1-D).
    tail_bound: spline interval half-width in z-scored units.
    embedding: the learned summary of ``x`` (:class:`~sbi_core.nn.embeddings.EmbeddingConfig`
        as a dict), or ``None``: the z-scored ``x`` itself (payloads written before
        embeddings have no such key and load as ``None``).
    """

    kind: str
    theta_dim: int
    x_dim: int
    hidden_features: int = 50
    num_transforms: int = 5
    num_blocks: int = 2
    num_bins: int = 10
    tail_bound: float = 3.0
    embedding: Optional[dict] = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in ("nsf", "maf"):
            raise ValueError(f"density estimator must be 'nsf' or 'maf', got {self.kind!r}")
        if self.theta_dim < 1 or self.x_dim < 1:
            raise ValueError("theta_dim and x_dim must be at least 1")
        object.__setattr__(self, "embedding", checked_config_dict(self.embedding, self.x_dim))

    @property
    def context_features(self) -> int:
        """What the conditioners read: ``F`` with an embedding, else ``K``."""
        return int(self.embedding["features"]) if self.embedding is not None else self.x_dim


class _ConditionalAffine(Transform):
    """``u = (theta - mu(x)) * exp(-log_sigma(x))``, elementwise.

    ``mu(x) = A x + b + f(x)`` and ``log_sigma(x) = c + g(x)`` with a small MLP
    for ``(f, g)`` whose output layer starts at zero, and ``(A, b, c)``
    initialised by least squares on the training data (:meth:`init_linear_gaussian`):
    the flow starts as the best linear-Gaussian conditional and the layers
    after it model what is left. ``log |det du/dtheta| = -sum_d log_sigma_d(x)``;
    ``log_sigma`` is softly bounded to ``[-8, 8]``.
    """

    def __init__(self, features: int, context_features: int, hidden_features: int):
        super().__init__()
        self.linear = nn.Linear(context_features, features)
        self.log_scale = nn.Parameter(torch.zeros(features))
        self.net = nn.Sequential(
            nn.Linear(context_features, hidden_features),
            nn.ReLU(),
            nn.Linear(hidden_features, hidden_features),
            nn.ReLU(),
            nn.Linear(hidden_features, 2 * features),
        )
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    @torch.no_grad()
    def init_linear_gaussian(self, theta_z: Tensor, x_z: Tensor) -> None:
        """Least-squares fit ``theta_z ~ A x_z + b``; ``c`` = log residual std. Shapes ``(N, D)``, ``(N, K)``."""
        design = torch.cat([x_z, torch.ones(x_z.shape[0], 1)], 1).double()
        coef = torch.linalg.lstsq(design, theta_z.double(), driver="gelsd").solution  # (K+1, D)
        resid = theta_z.double() - design @ coef
        if not torch.isfinite(coef).all():
            return
        self.linear.weight.copy_(coef[:-1].T.float())
        self.linear.bias.copy_(coef[-1].float())
        self.log_scale.copy_(resid.std(0).clamp_min(1e-3).log().float())

    def _params(self, context: Tensor) -> tuple[Tensor, Tensor]:
        dmu, draw = self.net(context).chunk(2, dim=-1)
        mu = self.linear(context) + dmu
        return mu, 8.0 * torch.tanh((self.log_scale + draw) / 8.0)

    def forward(self, inputs: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mu, log_sigma = self._params(context)
        return (inputs - mu) * torch.exp(-log_sigma), -log_sigma.sum(-1)

    def inverse(self, inputs: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mu, log_sigma = self._params(context)
        return mu + inputs * torch.exp(log_sigma), log_sigma.sum(-1)


def _spline_inputs(params: Tensor, num_bins: int, net: nn.Module) -> tuple[Tensor, Tensor, Tensor]:
    """Split a conditioner's ``params (..., 3K - 1)`` into unnormalised widths, heights ``(..., K)``
    and inner derivatives ``(..., K - 1)``; widths and heights are divided by
    ``sqrt(hidden_features)`` when the conditioner has that attribute, as nflows does."""
    widths, heights = params[..., :num_bins], params[..., num_bins:2 * num_bins]
    if hasattr(net, "hidden_features"):
        scale = math.sqrt(net.hidden_features)
        widths, heights = widths / scale, heights / scale
    return widths, heights, params[..., 2 * num_bins:]


class _SplineCoupling(PiecewiseRationalQuadraticCouplingTransform):
    """nflows' rational-quadratic spline coupling layer, its spline evaluated by :mod:`.splines`."""

    def _piecewise_cdf(self, inputs: Tensor, transform_params: Tensor, inverse: bool = False):
        widths, heights, derivatives = _spline_inputs(transform_params, self.num_bins, self.transform_net)
        return unconstrained_rational_quadratic_spline(
            inputs, widths, heights, derivatives, inverse=inverse, tail_bound=self.tail_bound,
            min_bin_width=self.min_bin_width, min_bin_height=self.min_bin_height,
            min_derivative=self.min_derivative)


class _SplineAutoregressive(MaskedPiecewiseRationalQuadraticAutoregressiveTransform):
    """nflows' autoregressive rational-quadratic spline layer, its spline evaluated by :mod:`.splines`."""

    def _elementwise(self, inputs: Tensor, autoregressive_params: Tensor, inverse: bool = False):
        params = autoregressive_params.view(inputs.shape[0], inputs.shape[1], self._output_dim_multiplier())
        widths, heights, derivatives = _spline_inputs(params, self.num_bins, self.autoregressive_net)
        outputs, logabsdet = unconstrained_rational_quadratic_spline(
            inputs, widths, heights, derivatives, inverse=inverse, tail_bound=self.tail_bound,
            min_bin_width=self.min_bin_width, min_bin_height=self.min_bin_height,
            min_derivative=self.min_derivative)
        return outputs, sum_except_batch(logabsdet)


def _layers(cfg: FlowConfig) -> list:
    D, K, H = cfg.theta_dim, cfg.context_features, cfg.hidden_features
    layers: list = [_ConditionalAffine(D, K, H)]
    if D == 1:
        for _ in range(cfg.num_transforms):
            layers.append(
                _SplineAutoregressive(
                    features=1,
                    hidden_features=H,
                    context_features=K,
                    num_bins=cfg.num_bins,
                    tails="linear",
                    tail_bound=cfg.tail_bound,
                    num_blocks=cfg.num_blocks,
                )
            )
        return layers
    for i in range(cfg.num_transforms):
        if cfg.kind == "maf":
            layers.append(
                MaskedAffineAutoregressiveTransform(
                    features=D, hidden_features=H, context_features=K, num_blocks=cfg.num_blocks
                )
            )
            layers.append(ReversePermutation(features=D))
        else:
            mask = create_alternating_binary_mask(D, even=(i % 2 == 0))

            def net(in_features: int, out_features: int) -> nn.Module:
                return ResidualNet(
                    in_features,
                    out_features,
                    hidden_features=H,
                    context_features=K,
                    num_blocks=cfg.num_blocks,
                    activation=torch.relu,
                )

            layers.append(
                _SplineCoupling(
                    mask=mask,
                    transform_net_create_fn=net,
                    num_bins=cfg.num_bins,
                    tails="linear",
                    tail_bound=cfg.tail_bound,
                    apply_unconditional_transform=False,
                )
            )
    return layers


class ConditionalFlow(nn.Module):
    """``q(theta | x)`` with z-scoring built in.

    Args:
        cfg: the architecture.
        theta_mean, theta_std: ``(D,)`` z-scoring statistics of theta.
        x_mean, x_std: ``(K,)`` z-scoring statistics of x (unused with an embedding).
        embedding_net: with ``cfg.embedding``, the (fitted) embedding network; ``None`` builds
            an unfitted one of ``cfg.embedding`` (to load a state into).
    """

    def __init__(self, cfg: FlowConfig, theta_mean: Tensor, theta_std: Tensor, x_mean: Tensor, x_std: Tensor,
                 embedding_net: Optional[Embedding] = None):
        super().__init__()
        self.cfg = cfg
        standardize_theta = PointwiseAffineTransform(shift=-theta_mean / theta_std, scale=1.0 / theta_std)
        transform = CompositeTransform([standardize_theta, *_layers(cfg)])
        if cfg.embedding is None:
            embed: nn.Module = Standardize(x_mean, x_std)
        else:
            embed = embedding_net if embedding_net is not None else make_embedding(cfg.embedding)
        self.flow = Flow(transform, StandardNormal([cfg.theta_dim]), embedding_net=embed)

    @property
    def embedding(self) -> Optional[Embedding]:
        """The learned summary of ``x``, or ``None`` (the z-scored ``x`` itself)."""
        net = self.flow._embedding_net
        return net if isinstance(net, Embedding) else None

    def augment(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """The training loop's hook: the embedding's augmentation of a batch ``x (B, K)`` (none without one)."""
        net = self.embedding
        return x if net is None else net.augment(x, generator)

    @property
    def affine(self) -> _ConditionalAffine:
        """The conditional affine layer next to the data."""
        return self.flow._transform._transforms[1]

    def log_prob(self, theta: Tensor, x: Tensor) -> Tensor:
        """``log q(theta_i | x_i)``: ``theta (N, D)``, ``x (N, K)`` -> ``(N,)``."""
        return self.flow.log_prob(theta, context=x)

    def to_base(self, theta: Tensor, x: Tensor) -> Tensor:
        """``z_i = T^{-1}(theta_i; x_i)``, the flow's map to its standard normal base: ``theta (N, D)``,
        ``x (N, K)`` -> ``(N, D)``; ``z ~ N(0, I)`` exactly when ``theta ~ q(. | x)`` (L-C2ST-NF,
        :mod:`sbi_core.diagnostics.lc2st`)."""
        return self.flow.transform_to_noise(theta, context=x)

    def log_prob_and_gaussian(self, theta: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """``log q(theta_i | x_i)`` and the log density of the conditional Gaussian that the
        conditional affine layer alone defines (``theta ~ N(mu(x), sigma(x)^2)`` in z-scored units),
        both ``(N,)``, with ``x`` embedded once. ``log q`` equals :meth:`log_prob`'s."""
        context = self.flow._embedding_net(x)
        half_log_2pi = 0.5 * math.log(2 * math.pi)
        out, total = theta, theta.new_zeros(theta.shape[0])
        gaussian = None
        for i, transform in enumerate(self.flow._transform._transforms):
            out, logabsdet = transform(out, context)
            total = total + logabsdet
            if i == 1:  # after z-scoring and the conditional affine layer
                gaussian = -0.5 * (out**2).sum(1) - self.cfg.theta_dim * half_log_2pi + total
        log_q = -0.5 * (out**2).sum(1) - self.cfg.theta_dim * half_log_2pi + total
        return log_q, gaussian

    def sample(self, num_samples: int, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``(num_samples, D)`` draws of ``theta ~ q(. | x)`` for one ``x (K,)``.

        Base noise is drawn with ``generator`` (global RNG untouched) and pushed
        through the inverse transform.
        """
        context = self.flow._embedding_net(x.reshape(1, -1)).expand(num_samples, -1)
        z = torch.randn(num_samples, self.cfg.theta_dim, generator=generator)
        theta, _ = self.flow._transform.inverse(z, context=context)
        return theta

    def sample_batched(self, num_samples: int, xs: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``(N, num_samples, D)`` draws of ``theta ~ q(. | x_i)`` for ``xs (N, K)``, in one pass.

        Row ``i`` holds draws at ``xs[i]``: the context of each of the ``N * num_samples``
        base draws is its dataset's ``x``.
        """
        n = xs.shape[0]
        context = self.flow._embedding_net(xs).repeat_interleave(num_samples, dim=0)
        z = torch.randn(n * num_samples, self.cfg.theta_dim, generator=generator)
        theta, _ = self.flow._transform.inverse(z, context=context)
        return theta.reshape(n, num_samples, self.cfg.theta_dim)

    def sample_and_log_prob(
        self, num_samples: int, x: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Samples ``(n, D)`` and their ``log q`` ``(n,)`` in one pass."""
        context = self.flow._embedding_net(x.reshape(1, -1)).expand(num_samples, -1)
        z = torch.randn(num_samples, self.cfg.theta_dim, generator=generator)
        theta, logabsdet = self.flow._transform.inverse(z, context=context)
        log_base = -0.5 * (z**2).sum(1) - 0.5 * self.cfg.theta_dim * math.log(2 * math.pi)
        return theta, log_base - logabsdet

    # ---- persistence -------------------------------------------------------
    def to_payload(self) -> dict:
        """A dict that :meth:`from_payload` turns back into an equal flow."""
        return {"config": asdict(self.cfg), "state": self.state_dict()}

    @classmethod
    def from_payload(cls, payload: dict) -> "ConditionalFlow":
        cfg = FlowConfig(**payload["config"])
        D, K = cfg.theta_dim, cfg.x_dim
        flow = cls(cfg, torch.zeros(D), torch.ones(D), torch.zeros(K), torch.ones(K))
        flow.load_state_dict(payload["state"])
        return flow


def build_flow(
    kind: str,
    theta: Tensor,
    x: Tensor,
    hidden_features: int = 50,
    num_transforms: int = 5,
    num_bins: int = 10,
    embedding: Any = None,
    data_shape: Any = None,
    embedding_features: Optional[int] = None,
) -> ConditionalFlow:
    """A fresh flow z-scored on training data ``theta (N, D)``, ``x (N, K)`` (flat).

    embedding: the learned summary of ``x``: ``None`` (the z-scored numbers, as
        before embeddings), ``"auto"``, a kind of :mod:`.embeddings`, or an
        :class:`~sbi_core.nn.embeddings.EmbeddingConfig`; ``data_shape`` says how
        one row of ``x`` folds (``None``: a vector); ``embedding_features``: its ``F``.
        Without an embedding the conditional affine layer starts at the least-squares
        linear-Gaussian fit, with one at the identity (see the module docstring).

    Weights are initialised from torch's current RNG; callers wanting a
    reproducible network build it under :func:`torch.random.fork_rng` with a
    seed (as :mod:`sbi_core.nn.training` does), so no global state leaks.
    """
    emb_cfg = (embedding_config(embedding, data_shape, x_dim=x.shape[1], features=embedding_features)
               if embedding is not None else None)
    cfg = FlowConfig(
        kind=kind,
        theta_dim=theta.shape[1],
        x_dim=x.shape[1],
        hidden_features=hidden_features,
        num_transforms=num_transforms,
        num_bins=num_bins,
        embedding=None if emb_cfg is None else emb_cfg.to_dict(),
    )
    tm, ts = zscore_stats(theta)
    if emb_cfg is None:
        xm, xs = zscore_stats(x)
        flow = ConditionalFlow(cfg, tm, ts, xm, xs)
        flow.affine.init_linear_gaussian((theta - tm) / ts, (x - xm) / xs)
        return flow
    net = build_embedding(emb_cfg, x)
    flow = ConditionalFlow(cfg, tm, ts, torch.zeros(x.shape[1]), torch.ones(x.shape[1]), embedding_net=net)
    if not net.learned:  # fixed (hand-made) summaries: start at their linear-Gaussian fit, as for a vector
        with torch.no_grad():
            flow.affine.init_linear_gaussian((theta - tm) / ts, net(x))
    return flow

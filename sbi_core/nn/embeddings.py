"""Learned summaries of the data (embedding networks), trained jointly with the estimator.

A simulation may be a vector, a series, an image or a set of repeated trials
(:class:`~sbi_core.stats.shapes.DataShape`). Everywhere in the pipeline it stays
*flat*, ``x: (N, K)``; an embedding network folds each row into its shape and
maps it to ``F`` features,

    s_psi : R^K -> R^F,          x (N, K)  ->  s_psi(x) (N, F),

which the estimator reads instead of ``x``: a flow ``q_phi(theta | s_psi(x))``
(as the flow's ``embedding_net``) or a ratio classifier ``d_phi(theta, s_psi(x))``.
``psi`` and ``phi`` are trained together by the estimator's own loss, so the
summary is whatever makes that loss smallest: for NPE the loss is minimised by
``q(theta | s(x)) = p(theta | s(x))``, which is the posterior ``p(theta | x)``
when ``s`` is sufficient (loses nothing about ``theta``).

Every network first standardises the data with statistics of the training
data, kept as buffers (so a saved network carries them), computed on the
finite numbers only (NaN-safe): per number for ``"mlp"``, per channel for
series and images (a convolution then sees the same scale at every time or
pixel), per trial column for sets. The kinds (``F = features``, ``H = hidden``):

* ``"mlp"`` (any shape but trials): the flat ``K`` numbers, standardised, through
  ``Linear(K, H) - ReLU - Linear(H, H) - ReLU - Linear(H, F)``: a plain learned summary.
* ``"cnn1d"`` (series ``(C, T)``), by default the ``"strided"`` design: ``L`` convolutions
  of kernel 5 with ReLU, each of stride 2 while the series is longer than
  :data:`PYRAMID_KEEP` points (``T -> ceil(T / 2)``), widening ``C -> 8 -> 16 -> ... -> H``
  channels, then average pooling to :data:`PYRAMID_KEEP` positions (so *when* a series
  peaks stays visible) and ``Linear(8 H_L, H) - ReLU - Linear(H, F)`` (``H_L``: the last layer's
  channels); ``L`` halvings take
  ``T`` down to about 8 (2 to 5 layers). ``design="pyramid"`` runs the same layers at
  stride 1, each followed by ``2``-max-pooling (twice the work; the default before, kept for
  saved runs). ``design="dilated"`` is a temporal convolutional network at full length
  (dilated convolutions as in WaveNet, van den Oord et al., 2016, https://arxiv.org/abs/1609.03499,
  and the TCN of Bai et al., 2018, https://arxiv.org/abs/1803.01271): a ``1 x 1``
  convolution lifts ``C`` channels to ``H``, then ``L`` layers

      h_{l+1} = h_l + ReLU(conv_{k, 2^l}(h_l))      (residual; ``h_{l+1} = ReLU(conv(h_l))`` without)

  with kernel ``k`` and dilation ``2^l`` keep the length ``T`` (zero padding:
  on the left only for ``causal=True``, so ``h_l[t]`` depends on ``x[<= t]``;
  split on both sides otherwise). The receptive field is ``1 + (k - 1)(2^L - 1)``
  time points; ``L`` defaults to the smallest that covers the series (at most 8).
  Global average pooling over time gives ``(N, H)`` (``pooling="mean_max"``
  adds max pooling, ``(N, 2H)``), then ``Linear(., H) - ReLU - Linear(H, F)``.
  Pooling makes the summary (nearly) invariant to shifts in time, which suits
  stationary series. Measured on AR(1) series (``T = 50``, 3,000 simulations,
  the conv net with a Gaussian head, Adam 2e-3, batches of 256, validation
  loss every 100 steps to 600; the exact posterior's is -0.77): residual with mean
  pooling -0.46 to -0.67, steady; residual with mean and max pooling -0.32 to -0.60
  and unstable (-0.01 at step 500); without skips (mean pooling) -0.47 to -0.62.
  Hence residual layers and mean pooling by default.
* ``"gru"`` (series): a gated recurrent unit over time (Cho et al., 2014,
  https://arxiv.org/abs/1406.1078) with ``H`` units, ``(N, T, C) -> (N, T, H)``;
  the last hidden state and the mean over time, ``(N, 2H)``, then ``Linear(2H, H) - ReLU - Linear(H, F)``.
  For long series whose order matters beyond a convolution's reach (slower on a CPU).
* ``"cnn2d"`` (image ``(C, H, W)``): ``L`` (default 3) layers of ``3 x 3``
  convolutions with ReLU, each but the last followed by ``2 x 2`` max pooling
  (while the image is at least 2 pixels wide), global average pooling (and max
  pooling with ``pooling="mean_max"``), then ``Linear(., H) - ReLU - Linear(H, F)``.
* ``"set"`` (trials ``(M, D)``): DeepSets (Zaheer et al., 2017,
  https://arxiv.org/abs/1703.06114). For the ``n`` trials present (the others
  are rows of NaN, masked out and zero-filled before ``phi``)

      s(x) = rho( [ (1/n) sum_{j present} phi(x_j),  log n,  1/n ] ),

  ``phi: R^D -> R^H`` and ``rho: R^{H+2} -> R^F`` MLPs. A masked mean is exactly
  invariant to the order of the trials (up to floating-point summation) and
  answers any number ``n = 1..M`` of trials; the count features let the
  posterior narrow as ``n`` grows (a mean alone does not say how many trials it
  averages).
* ``"set_attention"`` (trials): the same, pooling by multi-head attention with a
  learned query (PMA of the Set Transformer, Lee et al., 2019,
  https://arxiv.org/abs/1810.00825, without its layer normalisation): with
  ``h_j = phi(x_j)``, per head ``a``

      w_{aj} = softmax_j over present trials ( q_a . (W_K h_j)_a / sqrt(H / heads) ),
      pooled_a = sum_j w_{aj} (W_V h_j)_a,

  then ``rho([pooled, log n, 1/n])``. Absent trials get zero weight.

* ``"handmade"`` (any shape of a built-in model that defines them): the model's own
  hand-made summary statistics (:mod:`.handmade`), a fixed function ``s: R^K -> R^S``
  that is not trained, z-scored with the mean and standard deviation of the training
  data's summaries (buffers):

      h(x) = (s(x) - m_s) / sd_s,        F = S.

  Nothing in it learns, so the flow's conditional affine layer starts at the
  least-squares linear-Gaussian fit on ``h(x)`` (as for a plain vector, :mod:`.flows`),
  and training batches are those of a plain vector (:attr:`Embedding.learned` is False).
  For trials the summaries are computed over the present trials, and training shows
  random subsets of the trials as a set network's does (below).

``None`` (no learned summary) is the flow's own standardisation of the flat
numbers (:mod:`.flows`), as before embeddings existed.

**Fewer trials.** A set network must answer for 1 to ``M`` trials, but every
simulation holds ``M``. Training therefore shows it random subsets
(:meth:`SetEmbedding.augment`, called on every training batch by
:func:`sbi_core.nn.training.train`): each row keeps ``n ~ U{1..m}`` of its ``m``
present trials, chosen at random, the others set to NaN. Trials are
independent given ``theta``, so ``n`` of them are an exact draw of ``x`` with
``n`` trials from the same ``theta``: the pair stays a sample of the joint
distribution, now over trial counts too, and the loss's minimiser is the
posterior for every count.

Choosing a network: :func:`resolve_embedding` (``"auto"``: a vector -> ``None``,
a series -> ``"cnn1d"``, an image -> ``"cnn2d"``, trials -> ``"set"``);
:func:`embedding_config` makes the JSON-serialisable :class:`EmbeddingConfig`
that a flow's or classifier's payload carries; :func:`build_embedding` builds
the module with its statistics from training data; :func:`make_embedding` an
unfitted one to load a state into.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sbi_core.errors import SBIError
from sbi_core.nn.handmade import get_summary
from sbi_core.stats.shapes import (
    AUTO_EMBEDDING,
    EMBEDDING_CHOICES,
    EMBEDDING_FITS,
    EMBEDDINGS,
    HANDMADE,
    DataShape,
    DataShapeError,
    embedding_for,
    guess_shape,
)

__all__ = [
    "EMBEDDINGS", "CHOICES", "FITS", "AUTO", "HANDMADE", "EmbeddingConfig", "Embedding", "SetEmbedding",
    "HandmadeEmbedding", "handmade_embedding",
    "check_embedding", "resolve_embedding", "embedding_config", "build_embedding", "make_embedding", "data_shape_for",
    "as_shape", "flat_batch", "drop_trials",
]

CHOICES = EMBEDDING_CHOICES  # what a person may ask for (None and "none": no learned summary)
FITS, AUTO = EMBEDDING_FITS, AUTO_EMBEDDING  # which networks read which kind of simulation (stats.shapes)
_DATA_KIND = {"cnn1d": "series", "gru": "series", "cnn2d": "image", "set": "trials", "set_attention": "trials"}

DEFAULT_FEATURES = 32
DEFAULT_HIDDEN = {"mlp": 64, "cnn1d": 32, "gru": 32, "cnn2d": 32, "set": 64, "set_attention": 64}
MAX_CONV1D_LAYERS = 8


# ---- shapes -----------------------------------------------------------------------
def as_shape(data_shape: Any, size: Optional[int] = None) -> DataShape:
    """``data_shape`` (a :class:`DataShape`, its dict, a kind) as a :class:`DataShape`, or an :class:`SBIError`."""
    try:
        return DataShape.from_spec(data_shape, size=size)
    except DataShapeError as err:
        raise SBIError(str(err)) from None


def _kind(embedding: Any) -> Optional[str]:
    """The network kind an ``embedding`` argument names (``"auto"`` kept; ``"none"`` -> ``None``)."""
    if isinstance(embedding, EmbeddingConfig):
        return embedding.kind
    if isinstance(embedding, dict):
        kind = embedding.get("kind")
        if kind not in CHOICES or kind in ("auto", "none"):
            raise SBIError(f"An embedding given as a dict names its network: 'kind' one of "
                           f"{', '.join(map(repr, (*EMBEDDINGS, HANDMADE)))}; got {kind!r}.")
        return kind
    if embedding is None or embedding == "none":
        return None
    if not isinstance(embedding, str) or embedding not in CHOICES:
        raise SBIError(f"The embedding must be one of {', '.join(map(repr, CHOICES))} or None; got {embedding!r}.")
    return embedding


def _summary(embedding: Any) -> Optional[str]:
    """The hand-made summary an ``embedding`` argument names (a dict's or a config's ``summary``), or ``None``."""
    if isinstance(embedding, EmbeddingConfig):
        return embedding.summary
    if isinstance(embedding, dict):
        return embedding.get("summary")
    return None


def handmade_embedding(summary: str) -> dict:
    """The ``embedding`` argument of the hand-made summaries registered as ``summary``
    (:mod:`.handmade`): ``{"kind": "handmade", "summary": summary}`` (an :class:`SBIError` if unknown)."""
    get_summary(summary)
    return {"kind": HANDMADE, "summary": summary}


def check_embedding(embedding: Any, data_shape: Any = None) -> None:
    """An :class:`SBIError` now for an unknown embedding, or (when ``data_shape`` is given) one that
    cannot read it; nothing otherwise."""
    _kind(embedding)
    if data_shape is not None:
        resolve_embedding(embedding, data_shape)


def resolve_embedding(embedding: Any, data_shape: Any) -> Optional[str]:
    """The network kind that reads simulations of ``data_shape``: ``None`` (the flat numbers) or one of
    :data:`EMBEDDINGS` (:func:`sbi_core.stats.shapes.embedding_for`, whose message names the kinds that fit).

    ``"handmade"`` needs the summaries' name: ``embedding`` is then ``{"kind": "handmade", "summary": name}``
    (:func:`handmade_embedding`) or a config; the string alone is refused (the model's summaries are unknown).

    >>> resolve_embedding("auto", DataShape.series(50)), resolve_embedding(None, DataShape.vector(3))
    ('cnn1d', None)
    """
    return embedding_for(_kind(embedding), as_shape(data_shape), summary=_summary(embedding))


def data_shape_for(embedding: Any, x_shape: Sequence[int], data_shape: Any = None) -> DataShape:
    """The shape of one simulation of a batch ``x`` of shape ``x_shape = (N, ...)``.

    ``data_shape`` when given (checked against ``x_shape``); else read from the
    embedding and ``x_shape[1:]``: ``cnn1d``/``gru`` a series (``(T,)`` or ``(C, T)``),
    ``cnn2d`` an image (``(H, W)`` or ``(C, H, W)``; flat data need ``data_shape``),
    ``set``/``set_attention`` trials (``(M, D)``; flat ``(N, M)`` is ``M`` trials of
    one number), otherwise a vector for flat ``(N, K)`` and :func:`guess_shape` for more dimensions.
    """
    x_shape = tuple(int(s) for s in x_shape)
    if len(x_shape) == 1:
        x_shape = (x_shape[0], 1)
    if len(x_shape) < 2:
        raise SBIError(f"x must have one row per simulation; got shape {x_shape}.")
    one = x_shape[1:]
    if data_shape is not None:
        shape = as_shape(data_shape)
        try:
            shape.flat_batch_shape(x_shape)
        except DataShapeError as err:
            raise SBIError(str(err)) from None
        return shape
    kind = _kind(embedding)
    try:
        if kind in ("cnn1d", "gru"):
            return DataShape.of("series", one)
        if kind == "cnn2d":
            if len(one) == 1:
                raise SBIError("A cnn2d embedding needs the image's height and width: give x as (N, H, W) or "
                               "(N, C, H, W), or say data_shape={'kind': 'image', 'shape': [H, W]}.")
            return DataShape.of("image", one)
        if kind in ("set", "set_attention"):
            return DataShape.of("trials", one if len(one) == 2 else (one[0], 1))
        if len(one) == 1:
            return DataShape.vector(one[0])
        return guess_shape(one)
    except DataShapeError as err:
        raise SBIError(str(err)) from None


def flat_batch(x: Any, data_shape: DataShape) -> Tensor:
    """``x`` (a batch in the simulation's array shape, or flat) as a float32 ``(N, K)`` tensor; a set of
    fewer than ``M`` trials, ``(N, M', D)``, is padded with NaN rows. An :class:`SBIError` says what does not fit."""
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.ndim == 1:
        x = x[:, None]
    try:
        n, k = data_shape.flat_batch_shape(tuple(x.shape))
    except DataShapeError as err:
        raise SBIError(str(err)) from None
    if data_shape.kind == "trials" and x.ndim == 3 and x.shape[1] < data_shape.max_trials:
        pad = torch.full((n, data_shape.max_trials - x.shape[1], x.shape[2]), float("nan"))
        x = torch.cat([x, pad], dim=1)
    return x.reshape(n, k)


# ---- the configuration --------------------------------------------------------------
@dataclass(frozen=True)
class EmbeddingConfig:
    """Architecture of an embedding network (JSON-serialisable: :meth:`to_dict` / :meth:`from_dict`).

    kind: one of :data:`EMBEDDINGS`.
    data_shape: ``{"kind": ..., "shape": [...]}`` of one simulation (:meth:`DataShape.to_dict`).
    features: ``F``, the summary's size.
    hidden: ``H``, width of the MLPs or channels of the convolutions / GRU.
    num_layers: convolution layers (``cnn1d``, ``cnn2d``); ignored by the others.
    kernel_size: ``cnn1d``'s kernel (odd).
    causal: ``cnn1d``: pad on the left only.
    residual: ``cnn1d``: skip connections around every dilated layer.
    pooling: ``cnn1d``/``cnn2d``: ``"mean"`` (global average) or ``"mean_max"`` (average and max).
    design: ``cnn1d``: ``"strided"`` (stride-2 convolutions that halve the length, the default),
        ``"pyramid"`` (the same layers at stride 1, each followed by max-pooling: twice the work) or
        ``"dilated"`` (a temporal convolutional network at full length). See :data:`CONV1D_DESIGNS`.
    num_heads: ``set_attention``'s heads (divides ``hidden``).
    subsample_trials: sets: train on random subsets of the trials (see the module docstring).
    summary: ``"handmade"``: the registered name of the hand-made summaries (:mod:`.handmade`),
        whose number is ``features``; ``None`` for every learned kind (and then left out of :meth:`to_dict`).
    """

    kind: str
    data_shape: dict = field(hash=False)
    features: int = DEFAULT_FEATURES
    hidden: int = 64
    num_layers: int = 4
    kernel_size: int = 3
    causal: bool = False
    residual: bool = True
    pooling: str = "mean"
    design: str = "strided"
    num_heads: int = 4
    subsample_trials: bool = True
    summary: Optional[str] = None

    def __post_init__(self) -> None:
        if self.kind not in (*EMBEDDINGS, HANDMADE):
            raise SBIError(f"The embedding must be one of {', '.join(map(repr, (*EMBEDDINGS, HANDMADE)))}; "
                           f"got {self.kind!r}.")
        shape = as_shape(self.data_shape)
        object.__setattr__(self, "data_shape", shape.to_dict())
        try:
            embedding_for(self.kind, shape, summary=self.summary)  # the kind must read the shape
        except DataShapeError as err:
            raise SBIError(str(err)) from None
        if self.kind == HANDMADE:
            size = get_summary(self.summary).size
            if self.features != size:
                raise SBIError(f"The hand-made summaries {self.summary!r} are {size} numbers; "
                               f"the configuration says {self.features}.")
        elif self.summary is not None:
            raise SBIError(f"Only the 'handmade' embedding names a summary; a {self.kind} one got {self.summary!r}.")
        if self.features < 1 or self.hidden < 1 or self.num_layers < 1:
            raise SBIError("An embedding's features, hidden size and layers must be at least 1.")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise SBIError(f"The convolution kernel must be odd; got {self.kernel_size}.")
        if self.design not in CONV1D_DESIGNS:
            raise SBIError(f"A 1-D CNN's design is 'pyramid', 'strided' or 'dilated'; got {self.design!r}.")
        if self.pooling not in ("mean", "mean_max"):
            raise SBIError(f"Pooling is 'mean' or 'mean_max'; got {self.pooling!r}.")
        if self.kind == "set_attention" and self.hidden % self.num_heads:
            raise SBIError(f"The hidden size ({self.hidden}) must be a multiple of the heads ({self.num_heads}).")

    @property
    def shape(self) -> DataShape:
        return DataShape.from_spec(self.data_shape)

    def to_dict(self) -> dict:
        """JSON form (``summary`` only for ``"handmade"``, so a learned network's dict is as before)."""
        d = asdict(self)
        if d["summary"] is None:
            del d["summary"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EmbeddingConfig":
        return cls(**d)


def _conv1d_layers(t: int, kernel_size: int) -> int:
    """The fewest dilated layers whose receptive field ``1 + (k - 1)(2^L - 1)`` covers ``t`` points (2 to 8)."""
    need = (t - 1) / (kernel_size - 1) + 1 if kernel_size > 1 else t
    return int(min(MAX_CONV1D_LAYERS, max(2, math.ceil(math.log2(max(need, 1.0))))))


# The 1-D CNN's designs. Measured on AR(1) series of 100 steps (10,000 simulations, C2ST against the
# exact grid posterior at 5 observations, NPE with NSF 5 layers, seeds 0 and 1; bench/RESULTS.md,
# "Learned summaries: AR(1) series"): the strided design trains faster and ends closer to the exact
# posterior than the pyramid, whose max-pooling throws away what the convolution computed at every
# other step. Hence strided by default; configs saved with "pyramid" keep it (to_dict writes it).
CONV1D_DESIGNS = ("strided", "pyramid", "dilated")
DEFAULT_CONV1D_DESIGN = "strided"
PYRAMID_KEEP = 8  # time points a pyramid keeps at its end (coarse positions: when a series peaks matters)


def _pyramid_layers(t: int) -> int:
    """Layers of a pyramid: one per halving until ``t`` is at most :data:`PYRAMID_KEEP` (2 to 5)."""
    return int(min(5, max(2, math.ceil(math.log2(max(t, 1) / PYRAMID_KEEP)))))


def checked_config_dict(embedding: Optional[dict], x_dim: int) -> Optional[dict]:
    """A network config's ``embedding`` field, checked and in its canonical dict form: it must read
    ``x_dim`` numbers (a ``ValueError`` otherwise); ``None`` stays ``None``."""
    if embedding is None:
        return None
    emb = EmbeddingConfig.from_dict(dict(embedding))
    if emb.shape.size != x_dim:
        raise ValueError(f"the embedding reads {emb.shape.size} numbers, but x_dim is {x_dim}")
    return emb.to_dict()


def embedding_kwargs(embedding: Any, data_shape: Optional[DataShape], features: Optional[int]) -> dict:
    """A network builder's embedding arguments for an estimator's settings (``{}`` without a learned
    summary: the network of before)."""
    kind = resolve_embedding(embedding, data_shape) if data_shape is not None else None
    if kind is None:
        return {}
    if kind == HANDMADE:
        return dict(embedding=handmade_embedding(_summary(embedding)), data_shape=data_shape)
    if isinstance(embedding, (dict, EmbeddingConfig)):  # a kind with its options: ``{"kind": "cnn1d", "hidden": 16}``
        return dict(embedding=embedding, data_shape=data_shape, embedding_features=features)
    return dict(embedding=kind, data_shape=data_shape, embedding_features=features)


def embedding_config(embedding: Any, data_shape: Any = None, x_dim: Optional[int] = None,
                     features: Optional[int] = None, **options) -> Optional[EmbeddingConfig]:
    """The :class:`EmbeddingConfig` an ``embedding`` argument asks for, or ``None`` for no learned summary.

    embedding: ``None``/``"none"``, ``"auto"``, a kind, an :class:`EmbeddingConfig` or its dict, or
        ``{"kind": "handmade", "summary": name}`` (:func:`handmade_embedding`; any dict without a
        ``data_shape`` is read as a kind with options).
    data_shape: the shape of one simulation (``None``: a vector of ``x_dim`` numbers).
    features: ``F`` (default :data:`DEFAULT_FEATURES`; for ``"handmade"`` always the number of
        summaries); ``options``: other :class:`EmbeddingConfig` fields.
    Defaults: ``hidden`` per kind (:data:`DEFAULT_HIDDEN`), ``num_layers`` for ``cnn1d`` the fewest
    covering the series, 3 for ``cnn2d``.
    """
    if isinstance(embedding, EmbeddingConfig):
        return embedding
    if isinstance(embedding, dict) and "data_shape" in embedding:
        return EmbeddingConfig.from_dict(embedding)
    if isinstance(embedding, dict):
        options = {**{k: v for k, v in embedding.items() if k not in ("kind", "summary")}, **options}
    if data_shape is None:
        if x_dim is None:
            raise ValueError("give data_shape or x_dim")
        data_shape = DataShape.vector(x_dim)
    shape = as_shape(data_shape, size=x_dim)
    kind = resolve_embedding(embedding, shape)
    if kind is None:
        return None
    if kind == HANDMADE:
        name = _summary(embedding)
        return EmbeddingConfig(kind=HANDMADE, data_shape=shape.to_dict(), features=get_summary(name).size,
                               summary=name, **{k: v for k, v in options.items() if k == "subsample_trials"})
    values = {"hidden": DEFAULT_HIDDEN[kind], "features": int(features or DEFAULT_FEATURES)}
    if kind == "cnn1d" and options.get("design", DEFAULT_CONV1D_DESIGN) in ("pyramid", "strided"):
        values.update(kernel_size=5, num_layers=_pyramid_layers(shape.dims[1]))
    elif kind == "cnn1d":
        values["num_layers"] = _conv1d_layers(shape.dims[1], int(options.get("kernel_size", 3)))
    elif kind == "cnn2d":
        values["num_layers"] = 3
    values.update(options)
    return EmbeddingConfig(kind=kind, data_shape=shape.to_dict(), **values)


# ---- the networks ---------------------------------------------------------------------
def _nan_stats(values: Tensor, min_std: float = 1e-6) -> tuple[Tensor, Tensor]:
    """Column mean and standard deviation of ``values (N, C)`` over its finite entries (1 where fewer than 2)."""
    values = values.double()
    ok = torch.isfinite(values)
    count = ok.sum(0)
    filled = torch.where(ok, values, torch.zeros(()))
    mean = filled.sum(0) / count.clamp_min(1)
    var = torch.where(ok, (values - mean) ** 2, torch.zeros(())).sum(0) / (count - 1).clamp_min(1)
    std = var.sqrt()
    std = torch.where((std > min_std) & (count > 1), std, torch.ones_like(std))
    mean = torch.where(count > 0, mean, torch.zeros_like(mean))
    return mean.float(), std.float()


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Embedding(nn.Module):
    """An embedding network: flat ``x (N, K)`` -> features ``(N, F)`` (see the module docstring).

    ``mean``/``std`` are the standardising statistics (buffers; shape per kind:
    ``(K,)`` for ``mlp``, ``(C,)`` for series and images, ``(D,)`` for sets), set by
    :meth:`fit_statistics`. :meth:`augment` is the training hook (identity here).
    :attr:`learned` says whether the summary has weights that train with the estimator.
    """

    learned = True

    def __init__(self, config: EmbeddingConfig, stat_size: int):
        super().__init__()
        self.config = config
        self.shape = config.shape
        self.register_buffer("mean", torch.zeros(stat_size))
        self.register_buffer("std", torch.ones(stat_size))

    @property
    def features(self) -> int:
        return self.config.features

    def _stat_columns(self, x: Tensor) -> Tensor:
        """``x (N, K)`` as rows over the statistics' columns."""
        return x

    @torch.no_grad()
    def fit_statistics(self, x: Tensor) -> "Embedding":
        """Set ``mean``/``std`` from training data ``x (N, K)`` (finite numbers only)."""
        mean, std = _nan_stats(self._stat_columns(torch.as_tensor(x, dtype=torch.float32)))
        self.mean.copy_(mean)
        self.std.copy_(std)
        return self

    def augment(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Training-time augmentation of a batch ``x (B, K)``: none (draws nothing)."""
        return x


class _MLPEmbedding(Embedding):
    def __init__(self, config: EmbeddingConfig):
        super().__init__(config, config.shape.size)
        self.net = _mlp([config.shape.size, config.hidden, config.hidden, config.features])

    def forward(self, x: Tensor) -> Tensor:
        return self.net((x - self.mean) / self.std)


def _head(width: int, hidden: int, features: int) -> nn.Sequential:
    return _mlp([width, hidden, features])


def _pool(h: Tensor, pooling: str) -> Tensor:
    """``(N, H, L)`` -> ``(N, H)`` mean over the last axis, or ``(N, 2H)`` with its max."""
    return h.mean(-1) if pooling == "mean" else torch.cat([h.mean(-1), h.amax(-1)], dim=-1)


class _Conv1dEmbedding(Embedding):
    def __init__(self, config: EmbeddingConfig):
        c, t = config.shape.dims
        super().__init__(config, c)
        h, k = config.hidden, config.kernel_size
        if config.design in ("pyramid", "strided"):
            widths = [min(h, 8 * 2**i) for i in range(config.num_layers)]
            strides = []
            for _ in range(config.num_layers):
                strides.append(2 if t > PYRAMID_KEEP and config.design == "strided" else 1)
                t = (t + 1) // 2 if t > PYRAMID_KEEP else t
            self.convs = nn.ModuleList([nn.Conv1d(a, b, k, stride=s)
                                        for a, b, s in zip([c, *widths[:-1]], widths, strides)])
            self.keep = min(PYRAMID_KEEP, t)
            width = widths[-1] * self.keep * (2 if config.pooling == "mean_max" else 1)
        else:
            self.lift = nn.Conv1d(c, h, 1)
            self.convs = nn.ModuleList([nn.Conv1d(h, h, k, dilation=2**i) for i in range(config.num_layers)])
            width = h * (2 if config.pooling == "mean_max" else 1)
        self.head = _head(width, h, config.features)

    def _stat_columns(self, x: Tensor) -> Tensor:
        c, t = self.shape.dims
        return x.reshape(-1, c, t).transpose(1, 2).reshape(-1, c)

    def _pad(self, h: Tensor, pad: int) -> Tensor:
        left = pad if self.config.causal else pad // 2
        return F.pad(h, (left, pad - left))

    def forward(self, x: Tensor) -> Tensor:
        c, t = self.shape.dims
        h = (x.reshape(-1, c, t) - self.mean[:, None]) / self.std[:, None]  # (N, C, T)
        k = self.config.kernel_size
        if self.config.design in ("pyramid", "strided"):
            for conv in self.convs:
                h = F.relu(conv(self._pad(h, k - 1)))  # strided: (N, H_l, ceil(T_l / 2)) at once
                if self.config.design == "pyramid" and h.shape[-1] > PYRAMID_KEEP:
                    h = F.max_pool1d(h, 2, ceil_mode=True)  # (N, H_l, ceil(T_l / 2))
            pooled = F.adaptive_avg_pool1d(h, self.keep)
            if self.config.pooling == "mean_max":
                pooled = torch.cat([pooled, F.adaptive_max_pool1d(h, self.keep)], dim=1)
            return self.head(pooled.flatten(1))
        h = self.lift(h)  # (N, H, T)
        for i, conv in enumerate(self.convs):
            out = F.relu(conv(self._pad(h, (k - 1) * 2**i)))
            h = h + out if self.config.residual else out
        return self.head(_pool(h, self.config.pooling))


class _GRUEmbedding(Embedding):
    def __init__(self, config: EmbeddingConfig):
        c, _ = config.shape.dims
        super().__init__(config, c)
        self.gru = nn.GRU(c, config.hidden, batch_first=True)
        self.head = _head(2 * config.hidden, config.hidden, config.features)

    _stat_columns = _Conv1dEmbedding._stat_columns

    def forward(self, x: Tensor) -> Tensor:
        c, t = self.shape.dims
        seq = ((x.reshape(-1, c, t) - self.mean[:, None]) / self.std[:, None]).transpose(1, 2)  # (N, T, C)
        out, last = self.gru(seq)
        return self.head(torch.cat([last[-1], out.mean(1)], dim=-1))


class _Conv2dEmbedding(Embedding):
    def __init__(self, config: EmbeddingConfig):
        c, height, width = config.shape.dims
        super().__init__(config, c)
        h = config.hidden
        layers: list = []
        for i in range(config.num_layers):
            layers += [nn.Conv2d(c if i == 0 else h, h, 3, padding=1), nn.ReLU()]
            if i < config.num_layers - 1 and min(height, width) >= 2:
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
        self.convs = nn.Sequential(*layers)
        self.head = _head(h * (2 if config.pooling == "mean_max" else 1), h, config.features)

    def _stat_columns(self, x: Tensor) -> Tensor:
        c = self.shape.dims[0]
        return x.reshape(-1, c, self.shape.size // c).transpose(1, 2).reshape(-1, c)

    def forward(self, x: Tensor) -> Tensor:
        c, height, width = self.shape.dims
        z = (x.reshape(-1, c, height, width) - self.mean[:, None, None]) / self.std[:, None, None]
        h = self.convs(z).flatten(2)  # (N, H, pixels)
        return self.head(_pool(h, self.config.pooling))


def drop_trials(x: Tensor, data_shape: DataShape, generator: torch.Generator) -> Tensor:
    """Random subsets of trials: each row of ``x (B, M * D)`` keeps ``n ~ U{1..m}`` of its ``m`` present
    trials, chosen uniformly, moved to the front in a random order; the rest become NaN rows.

    Draws two ``torch.rand`` tensors, ``(B,)`` and ``(B, M)``, from ``generator`` (reproducible); only
    whole trials are removed, and a row without any present trial is left as it is.
    """
    m, d = data_shape.dims
    t = x.reshape(-1, m, d)
    present = ~torch.isnan(t).all(-1)  # (B, M)
    count = present.sum(1)  # (B,)
    keep_n = (torch.rand(t.shape[0], generator=generator) * count).floor().long() + 1  # U{1..count}
    keep_n = torch.minimum(keep_n, count.clamp_min(1))
    score = torch.rand(t.shape[0], m, generator=generator) + (~present).float() * 2.0  # absent last
    order = score.argsort(dim=1)
    t = t.gather(1, order[..., None].expand(-1, -1, d))
    kept = torch.arange(m)[None, :] < keep_n[:, None]
    kept = kept | (count == 0)[:, None]
    out = torch.where(kept[..., None], t, torch.full_like(t, float("nan")))
    return out.reshape(x.shape)


class SetEmbedding(Embedding):
    """DeepSets (``"set"``) or attention pooling (``"set_attention"``) over the present trials."""

    def __init__(self, config: EmbeddingConfig):
        m, d = config.shape.dims
        super().__init__(config, d)
        h = config.hidden
        self.phi = _mlp([d, h, h, h])
        self.rho = _mlp([h + 2, h, h, config.features])
        if config.kind == "set_attention":
            self.query = nn.Parameter(torch.randn(h) / math.sqrt(h))
            self.keys = nn.Linear(h, h)
            self.values = nn.Linear(h, h)

    def _stat_columns(self, x: Tensor) -> Tensor:
        rows = x.reshape(-1, self.shape.dims[1])
        return rows[~torch.isnan(rows).all(-1)]

    def forward(self, x: Tensor) -> Tensor:
        m, d = self.shape.dims
        t = x.reshape(-1, m, d)
        present = ~torch.isnan(t).all(-1)  # (N, M)
        z = torch.where(present[..., None], (t - self.mean) / self.std, torch.zeros(()))
        h = self.phi(z)  # (N, M, H)
        w = present.to(h.dtype)
        n = w.sum(1, keepdim=True).clamp_min(1.0)  # (N, 1)
        if self.config.kind == "set_attention":
            heads = self.config.num_heads
            dh = h.shape[-1] // heads
            keys = self.keys(h).reshape(*h.shape[:2], heads, dh)
            vals = self.values(h).reshape(*h.shape[:2], heads, dh)
            scores = (keys * self.query.reshape(heads, dh)).sum(-1) / math.sqrt(dh)  # (N, M, heads)
            scores = scores.masked_fill(~present[..., None], -1e9)
            attn = torch.softmax(scores, dim=1)
            pooled = (attn[..., None] * vals).sum(1).reshape(h.shape[0], -1)  # (N, H)
        else:
            pooled = (h * w[..., None]).sum(1) / n
        return self.rho(torch.cat([pooled, n.log(), 1.0 / n], dim=-1))

    def augment(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Random subsets of the trials of a training batch (:func:`drop_trials`), if ``subsample_trials``."""
        if not self.config.subsample_trials or self.shape.max_trials == 1:
            return x
        return drop_trials(x, self.shape, generator)


class HandmadeEmbedding(Embedding):
    """The model's hand-made summaries ``s(x) (N, S)``, z-scored: ``(s(x) - mean) / std`` (see the
    module docstring). No weights; ``mean``/``std`` ``(S,)`` come from the training data's summaries."""

    learned = False

    def __init__(self, config: EmbeddingConfig):
        super().__init__(config, config.features)
        self.summary = get_summary(config.summary)

    def _stat_columns(self, x: Tensor) -> Tensor:
        return self.summary(x)

    def forward(self, x: Tensor) -> Tensor:
        return (self.summary(x) - self.mean) / self.std

    def augment(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Trials: random subsets of a training batch's trials (:func:`drop_trials`), as a set network's;
        other shapes: none (draws nothing)."""
        if self.shape.kind != "trials" or not self.config.subsample_trials or self.shape.max_trials == 1:
            return x
        return drop_trials(x, self.shape, generator)


_CLASSES = {"mlp": _MLPEmbedding, "cnn1d": _Conv1dEmbedding, "gru": _GRUEmbedding, "cnn2d": _Conv2dEmbedding,
            "set": SetEmbedding, "set_attention": SetEmbedding, HANDMADE: HandmadeEmbedding}


def make_embedding(config: EmbeddingConfig | dict) -> Embedding:
    """An embedding network of ``config`` with standardising statistics 0 and 1 (to load a state into).

    Weights come from torch's current RNG (build under :func:`torch.random.fork_rng` with a seed)."""
    if isinstance(config, dict):
        config = EmbeddingConfig.from_dict(config)
    return _CLASSES[config.kind](config)


def build_embedding(config: EmbeddingConfig | dict, x_train: Tensor) -> Embedding:
    """An embedding network of ``config`` standardised on training data ``x_train (N, K)``: maps flat
    ``x (N, K)`` to ``(N, F)``.

    >>> cfg = embedding_config("set", DataShape.trials(5, 2), features=4)
    >>> x = torch.randn(10, 10); x[0, 6:] = float("nan")  # the first set has 3 trials
    >>> build_embedding(cfg, x)(x).shape
    torch.Size([10, 4])
    """
    net = make_embedding(config)
    x_train = torch.as_tensor(x_train, dtype=torch.float32)
    if x_train.ndim != 2 or x_train.shape[1] != net.shape.size:
        raise SBIError(f"An embedding for {net.shape.describe()} reads rows of {net.shape.size:,} numbers; "
                       f"got data of shape {tuple(x_train.shape)}.")
    return net.fit_statistics(x_train)

"""What one simulation looks like: a vector, a series, an image or a set of repeated trials.

Every part of the pipeline stores a simulation *flat*, as ``K`` numbers (the
store, tables, checkpoints and the pooled training pairs keep ``x: (N, K)``);
a :class:`DataShape` says how those ``K`` numbers fold into one simulation,
and so which learned summary (embedding network, :mod:`sbi_core.nn.embeddings`)
reads them and how pages draw them. Torch-free, so that a RunSpec, an upload
or a table can use it without loading torch.

The four kinds, with their canonical ``dims`` (a series or image with one
channel may be declared without it):

========  ===============  ==========================================================
kind      dims             one simulation
========  ===============  ==========================================================
vector    ``(K,)``         ``K`` numbers with their own meaning (summary statistics)
series    ``(C, T)``       ``C`` channels observed at ``T`` ordered times
image     ``(C, H, W)``    ``C`` channels of ``H x W`` pixels
trials    ``(M, D)``       up to ``M`` exchangeable repeated trials of ``D`` numbers
========  ===============  ==========================================================

Flattening is C-order (``numpy.reshape``): a series ``(C, T)`` is channel 0's
``T`` values, then channel 1's, and so on; trials ``(M, D)`` are trial 0's ``D``
values, then trial 1's. A set of trials may hold *fewer* than ``M`` trials: the
missing ones are rows of NaN at the end (:meth:`DataShape.pad_trials`). Such a
simulation is valid; a trial with only *some* values missing (or infinite) makes
the simulation invalid, as any non-finite number does for the other kinds
(:meth:`DataShape.valid_rows`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from sbi_core.errors import SBIError

__all__ = ["DataShape", "DataShapeError", "KINDS", "MAX_DATA_NUMBERS", "guess_shape", "shape_from_columns",
           "EMBEDDINGS", "EMBEDDING_CHOICES", "AUTO_EMBEDDING", "EMBEDDING_FITS", "EMBEDDING_READS", "HANDMADE",
           "NO_HANDMADE", "embedding_for", "embedding_words", "embedding_short"]

KINDS = ("vector", "series", "image", "trials")
MAX_DATA_NUMBERS = 100_000  # numbers in one simulation (a 316 x 316 image), bounds every declared shape
_NDIMS = {"vector": (1,), "series": (1, 2), "image": (2, 3), "trials": (2,)}


class DataShapeError(SBIError, ValueError):
    """A declared shape or a piece of data that does not fit its shape; the message says what to fix."""


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class DataShape:
    """How the ``K`` numbers of one simulation fold: ``kind`` and canonical ``dims``.

    Build one with :meth:`vector`, :meth:`series`, :meth:`image`, :meth:`trials`
    or :meth:`of` (from a kind and any accepted shape); ``dims`` is always the
    canonical form of the table in the module docstring.

    >>> DataShape.of("series", (100,))
    DataShape(kind='series', dims=(1, 100))
    >>> DataShape.of("series", (100,)).size, DataShape.trials(20, 2).describe()
    (100, 'up to 20 repeated trials of 2 numbers each')
    """

    kind: str
    dims: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DataShapeError(f"A simulation's shape is one of {', '.join(KINDS)}; got {self.kind!r}.")
        dims = tuple(self.dims)
        want = {"vector": 1, "series": 2, "image": 3, "trials": 2}[self.kind]
        if len(dims) != want or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in dims):
            raise DataShapeError(f"A {self.kind} has {want} whole-number dimensions; got {dims!r}.")
        if any(d < 1 for d in dims):
            raise DataShapeError(f"Every dimension of a {self.kind} must be at least 1; got {dims!r}.")
        if math.prod(dims) > MAX_DATA_NUMBERS:
            raise DataShapeError(f"One simulation may hold at most {MAX_DATA_NUMBERS:,} numbers; "
                                 f"a {self.kind} of shape {dims!r} holds {math.prod(dims):,}.")
        object.__setattr__(self, "dims", tuple(int(d) for d in dims))

    # ---- construction ---------------------------------------------------------
    @classmethod
    def vector(cls, k: int) -> "DataShape":
        return cls("vector", (int(k),))

    @classmethod
    def series(cls, t: int, channels: int = 1) -> "DataShape":
        return cls("series", (int(channels), int(t)))

    @classmethod
    def image(cls, h: int, w: int, channels: int = 1) -> "DataShape":
        return cls("image", (int(channels), int(h), int(w)))

    @classmethod
    def trials(cls, m: int, d: int = 1) -> "DataShape":
        return cls("trials", (int(m), int(d)))

    @classmethod
    def of(cls, kind: str, shape: Sequence[int]) -> "DataShape":
        """The shape of ``kind`` whose one simulation has array shape ``shape``
        (``(T,)`` or ``(C, T)`` for a series, ``(H, W)`` or ``(C, H, W)`` for an image)."""
        if kind not in KINDS:
            raise DataShapeError(f"A simulation's shape is one of {', '.join(KINDS)}; got {kind!r}.")
        try:
            shape = tuple(int(d) for d in shape)
        except (TypeError, ValueError):
            raise DataShapeError(f"A shape is a list of whole numbers; got {shape!r}.") from None
        if len(shape) not in _NDIMS[kind]:
            forms = {"vector": "(K,)", "series": "(T,) or (C, T)", "image": "(H, W) or (C, H, W)",
                     "trials": "(M, D)"}[kind]
            raise DataShapeError(f"A {kind} has the shape {forms}; got {shape!r}.")
        if kind in ("series", "image") and len(shape) == _NDIMS[kind][0]:
            shape = (1, *shape)
        return cls(kind, shape)

    @classmethod
    def from_spec(cls, spec: Any, size: Optional[int] = None) -> "DataShape":
        """A shape from what a person or a file declares: a :class:`DataShape`, a dict
        ``{"kind": ..., "shape": [...]}``, a kind alone (``"series"``: the whole simulation
        is one series of ``size`` numbers; ``"vector"``) or ``None`` (a vector of ``size``).
        ``size``, when given, must equal the shape's number of values."""
        if isinstance(spec, DataShape):
            shape = spec
        elif spec is None or spec == "vector" and size is not None:
            if size is None:
                raise DataShapeError("Say how many numbers one simulation has.")
            shape = cls.vector(size)
        elif isinstance(spec, str):
            if spec not in ("series", "vector"):
                raise DataShapeError(
                    f"{spec!r} alone does not say the shape: give {{'kind': {spec!r}, 'shape': [...]}} "
                    "(an image needs its height and width, trials their number and width).")
            if size is None:
                raise DataShapeError(f"Say how many numbers one {spec} has.")
            shape = cls.of(spec, (size,))
        elif isinstance(spec, dict):
            unknown = sorted(set(spec) - {"kind", "shape"})
            if unknown or "kind" not in spec or "shape" not in spec:
                raise DataShapeError("A data shape is {'kind': 'vector' | 'series' | 'image' | 'trials', "
                                     f"'shape': [...]}}; got the keys {sorted(spec)}.")
            if not isinstance(spec["shape"], (list, tuple)):
                raise DataShapeError(f"A data shape's 'shape' is a list of whole numbers; got {spec['shape']!r}.")
            shape = cls.of(spec["kind"], spec["shape"])
        else:
            raise DataShapeError(f"A data shape is a kind or {{'kind': ..., 'shape': [...]}}; got {type(spec).__name__}.")
        if size is not None and shape.size != int(size):
            raise DataShapeError(f"{shape.describe().capitalize()} holds {shape.size:,} numbers, "
                                 f"but one simulation has {int(size):,}.")
        return shape

    def to_dict(self) -> dict:
        """JSON form, read back by :meth:`from_spec`."""
        return {"kind": self.kind, "shape": list(self.dims)}

    # ---- sizes and words ------------------------------------------------------
    @property
    def size(self) -> int:
        """``K``: numbers in one flat simulation."""
        return math.prod(self.dims)

    @property
    def is_vector(self) -> bool:
        return self.kind == "vector"

    @property
    def channels(self) -> int:
        """Channels of a series or image (1 otherwise)."""
        return self.dims[0] if self.kind in ("series", "image") else 1

    @property
    def max_trials(self) -> int:
        """``M`` for trials (1 otherwise: one simulation is one trial)."""
        return self.dims[0] if self.kind == "trials" else 1

    @property
    def trial_width(self) -> int:
        """``D``: numbers per trial (``K`` otherwise)."""
        return self.dims[1] if self.kind == "trials" else self.size

    @property
    def array_shape(self) -> tuple[int, ...]:
        """The shape a person writes for one simulation: a single channel is left out."""
        if self.kind in ("series", "image") and self.dims[0] == 1:
            return self.dims[1:]
        return self.dims

    def describe(self) -> str:
        """In words: ``"a series of 100 time points"``, ``"an image of 28 x 28 pixels"``..."""
        d = self.dims
        if self.kind == "vector":
            return f"a vector of {_plural(d[0], 'number')}"
        if self.kind == "series":
            points = _plural(d[1], "time point")
            return f"a series of {points}" if d[0] == 1 else f"{d[0]} series (channels) of {points}"
        if self.kind == "image":
            pixels = f"{d[1]} x {d[2]} pixels"
            return f"an image of {pixels}" if d[0] == 1 else f"an image of {pixels} with {d[0]} channels"
        return f"up to {_plural(d[0], 'repeated trial')} of {_plural(d[1], 'number')} each"

    # ---- data -------------------------------------------------------------------
    def fold(self, x: Any) -> np.ndarray:
        """``(N, K)`` flat simulations as ``(N, *dims)`` (numpy; a torch tensor's ``reshape`` does the same)."""
        arr = np.asarray(x)
        if arr.ndim != 2 or arr.shape[1] != self.size:
            raise DataShapeError(f"Expected simulations of {self.size:,} numbers each, as rows; "
                                 f"got an array of shape {tuple(arr.shape)}.")
        return arr.reshape(arr.shape[0], *self.dims)

    def flat_batch_shape(self, shape: Sequence[int]) -> tuple[int, int]:
        """``(N, K)`` for a batch of simulations of array shape ``shape`` (``(N, *dims)``, the
        single-channel form, or already flat ``(N, K)``); a clear error otherwise."""
        shape = tuple(int(s) for s in shape)
        if len(shape) == 2 and shape[1] == self.size:
            return shape[0], self.size
        if len(shape) >= 2 and shape[1:] in (self.dims, self.array_shape):
            return shape[0], self.size
        if self.kind == "trials" and len(shape) == 3 and shape[2] == self.dims[1] and shape[1] <= self.dims[0]:
            return shape[0], self.size  # fewer trials: padded by the caller
        raise DataShapeError(f"Each simulation should be {self.describe()} (shape {self.array_shape}); "
                             f"got a batch of shape {shape}.")

    def observation(self, x: Any) -> np.ndarray:
        """One observation as ``K`` flat numbers (float64): ``x`` in the simulation's array shape,
        flat, or, for trials, any number of trials from 1 to ``M`` (padded with NaN rows).

        Raises :class:`DataShapeError` naming what was expected and what arrived.
        """
        arr = np.asarray(x, dtype=np.float64)
        if self.kind == "trials":
            d, m = self.dims[1], self.dims[0]
            if arr.ndim == 1:
                if arr.size % d:
                    raise DataShapeError(f"Trials have {_plural(d, 'number')} each, so an observation's "
                                         f"length must be a multiple of {d}; got {arr.size:,} numbers.")
                arr = arr.reshape(-1, d)
            if arr.ndim != 2 or arr.shape[1] != d:
                raise DataShapeError(f"Each trial has {_plural(d, 'number')}; got an observation of shape "
                                     f"{tuple(arr.shape)}.")
            rows = arr[~np.isnan(arr).all(axis=1)]
            if rows.shape[0] == 0:
                raise DataShapeError("The observation has no trial: give at least one.")
            if rows.shape[0] > m:
                raise DataShapeError(f"The observation has {rows.shape[0]:,} trials, but the model was simulated "
                                     f"with at most {m:,}: simulate more trials per set, or observe fewer.")
            if not np.isfinite(rows).all():
                raise DataShapeError("A trial of the observation has a missing or infinite value: "
                                     "give every number of a trial, or leave the whole trial out.")
            return self.pad_trials(rows)
        flat = arr.reshape(-1)
        if arr.shape not in (self.dims, self.array_shape, (self.size,)):
            if flat.size == self.size and arr.ndim == 1:
                pass
            else:
                raise DataShapeError(f"The observation should be {self.describe()} "
                                     f"(shape {self.array_shape}); got shape {tuple(arr.shape)}.")
        return flat

    def pad_trials(self, rows: Any) -> np.ndarray:
        """``(M', D)`` trials (``M' <= M``) as ``M * D`` flat numbers, missing trials NaN."""
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, self.trial_width)
        out = np.full((self.max_trials, self.trial_width), np.nan)
        out[: rows.shape[0]] = rows
        return out.reshape(-1)

    def trial_counts(self, x: Any) -> np.ndarray:
        """``(N,)`` trials present per flat simulation (all ``M`` but for NaN rows; 1 for other kinds)."""
        arr = np.asarray(x, dtype=np.float64)
        if self.kind != "trials":
            return np.ones(arr.shape[0], dtype=int)
        present = ~np.isnan(arr.reshape(arr.shape[0], *self.dims)).all(axis=2)
        return present.sum(axis=1)

    def valid_rows(self, x: Any) -> np.ndarray:
        """``(N,)`` bool: which flat simulations ``(N, K)`` are usable.

        Any NaN or infinity makes a simulation invalid, except, for trials, whole
        trials of NaN (missing trials), as long as one trial is present.
        """
        arr = np.asarray(x, dtype=np.float64)
        if self.kind != "trials":
            return np.isfinite(arr).all(axis=1)
        t = arr.reshape(arr.shape[0], *self.dims)
        missing = np.isnan(t).all(axis=2)  # (N, M)
        whole = np.isfinite(t).all(axis=2) | missing
        return whole.all(axis=1) & (~missing).any(axis=1)

    # ---- names ------------------------------------------------------------------
    def value_names(self, prefix: str = "x") -> list[str]:
        """``K`` names of the flat numbers, as a table writes them: ``x[0]``..., ``x[c][t]``,
        ``x[c][i][j]``, trials ``x[m][d]`` (single channels left out)."""
        shape = self.array_shape
        return [prefix + "".join(f"[{i}]" for i in idx) for idx in np.ndindex(*shape)]


# ---- which learned summary reads which shape (the networks: sbi_core.nn.embeddings) ---------
EMBEDDINGS = ("mlp", "cnn1d", "gru", "cnn2d", "set", "set_attention")
# a built-in model's own summary statistics, computed by a fixed function (not trained): sbi_core.nn.handmade
HANDMADE = "handmade"
EMBEDDING_CHOICES = ("auto", "none", *EMBEDDINGS, HANDMADE)  # what a person may ask for ("none": no learned summary)
AUTO_EMBEDDING = {"vector": None, "series": "cnn1d", "image": "cnn2d", "trials": "set"}
EMBEDDING_FITS = {  # kind of data -> the networks that read it, the one "auto" picks first
    "vector": ("mlp",),
    "series": ("cnn1d", "gru", "mlp"),
    "image": ("cnn2d", "mlp"),
    "trials": ("set", "set_attention"),
}
EMBEDDING_READS = {"mlp": "the flat numbers of a vector, series or image", "cnn1d": "a series", "gru": "a series",
                   "cnn2d": "an image", "set": "a set of repeated trials", "set_attention": "a set of repeated trials",
                   HANDMADE: "any simulation of a built-in model that defines its own summary statistics"}
NO_HANDMADE = ("This model has no hand-made summary statistics; choose {names}. Hand-made "
               "summaries are for built-in models; an uploaded simulator returning its own summary statistics "
               "already works as a vector model.")
_EMBEDDING_WORDS = {
    None: "the numbers as they are (standardised)",
    "mlp": "a learned summary (a fully connected network)",
    "cnn1d": "a learned summary of the series (a 1-D convolutional network)",
    "gru": "a learned summary of the series (a recurrent network)",
    "cnn2d": "a learned summary of the image (a 2-D convolutional network)",
    "set": "a learned summary of the trials (a permutation-invariant network, DeepSets)",
    "set_attention": "a learned summary of the trials (a permutation-invariant network with attention pooling)",
    HANDMADE: "hand-made summary statistics (the model's own)",
}


def embedding_for(choice: Optional[str], shape: "DataShape", summary: Optional[str] = None) -> Optional[str]:
    """The network that reads ``shape``'s data for a person's ``choice``: ``"auto"`` picks by
    ``shape.kind`` (:data:`AUTO_EMBEDDING`), ``None``/``"none"`` is none (refused for trials, whose
    NaN rows mean "missing"); a network that cannot read the shape is a :class:`DataShapeError`
    naming those that can (:data:`EMBEDDING_FITS`).

    ``"handmade"`` (:data:`HANDMADE`) is the model's own summary statistics, a fixed function of
    any shape: allowed only when ``summary`` names them (a built-in model's
    ``Simulator.handmade_summary``), refused with :data:`NO_HANDMADE` otherwise.

    >>> embedding_for("auto", DataShape.series(100)), embedding_for("none", DataShape.vector(3))
    ('cnn1d', None)
    >>> embedding_for("handmade", DataShape.series(100), summary="ar1_series")
    'handmade'
    >>> embedding_for("cnn2d", DataShape.series(50))
    Traceback (most recent call last):
    ...
    sbi_core.stats.shapes.DataShapeError: A cnn2d embedding reads an image, but one simulation here is a series of 50 time points: use 'cnn1d', 'gru' or 'mlp' (or 'auto').
    """
    fits = EMBEDDING_FITS[shape.kind]
    names = ", ".join(map(repr, fits[:-1])) + f" or {fits[-1]!r}" if len(fits) > 1 else repr(fits[0])
    if choice == "auto":
        return AUTO_EMBEDDING[shape.kind]
    if choice == HANDMADE:
        if not summary:
            usable = ("auto", *(() if shape.kind == "trials" else ("none",)), *fits)
            raise DataShapeError(NO_HANDMADE.format(names=", ".join(map(repr, usable[:-1])) + f" or {usable[-1]!r}"))
        return HANDMADE
    if choice in (None, "none"):
        if shape.kind == "trials":
            raise DataShapeError(f"One simulation here is {shape.describe()}, which needs a set network to read "
                                 f"any number of trials: use {names} (or 'auto').")
        return None
    if choice not in EMBEDDINGS:
        raise DataShapeError(f"The embedding must be one of 'auto', 'none', {', '.join(map(repr, EMBEDDINGS))} "
                             f"or {HANDMADE!r}; got {choice!r}.")
    if choice not in fits:
        raise DataShapeError(f"A {choice} embedding reads {EMBEDDING_READS[choice]}, but one simulation here is "
                             f"{shape.describe()}: use {names} (or 'auto').")
    return choice


def embedding_words(name: Optional[str]) -> str:
    """A resolved embedding in words, for pages and reports."""
    return _EMBEDDING_WORDS.get(name, str(name))


_EMBEDDING_SHORT = {
    "auto": "learned summary (automatic)", "none": "raw numbers", None: "raw numbers",
    "mlp": "learned summary (MLP)", "cnn1d": "learned summary (1-D CNN)", "gru": "learned summary (GRU)",
    "cnn2d": "learned summary (2-D CNN)", "set": "learned summary (DeepSets)",
    "set_attention": "learned summary (attention pooling)", HANDMADE: "hand-made summaries",
}


def embedding_short(choice: Optional[str]) -> str:
    """A person's embedding choice in two or three words, to tell runs apart in a legend
    (``"hand-made summaries"``, ``"learned summary (1-D CNN)"``, ``"raw numbers"``)."""
    return _EMBEDDING_SHORT.get(choice, str(choice))


# ---- guesses -------------------------------------------------------------------
def guess_shape(shape: Sequence[int]) -> DataShape:
    """A sensible reading of one simulation's array shape, to show a person for confirmation.

    ``(K,)``: a vector up to 20 numbers, a series beyond; ``(a, b)``: a series of ``a``
    channels when ``a <= 8 < b``, trials when ``b <= 8 < a`` (or ``a >= b``), an image when both
    exceed 8; ``(C, H, W)``: an image.

    >>> guess_shape((100,)).kind, guess_shape((3, 200)).kind, guess_shape((50, 2)).kind, guess_shape((28, 28)).kind
    ('series', 'series', 'trials', 'image')
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 1:
        return DataShape.of("series" if shape[0] > 20 else "vector", shape)
    if len(shape) == 2:
        a, b = shape
        if a > 8 and b > 8:
            return DataShape.of("image", shape)
        if a <= 8 < b:
            return DataShape.of("series", shape)
        return DataShape.of("trials", shape)
    if len(shape) == 3:
        return DataShape.of("image", shape)
    raise DataShapeError(f"One simulation may be a vector, series, image or set of trials; "
                         f"an array of shape {shape} is none of them.")


_INDEXED = re.compile(r"^(?P<stem>.*?)(?P<idx>(\[\s*-?\d+\s*\])+)$")
_SUFFIXED = re.compile(r"^(?P<stem>.*?[A-Za-z_ ])(?P<num>-?\d+(\.\d+)?)$")


def _indices(text: str) -> tuple[int, ...]:
    return tuple(int(i) for i in re.findall(r"\[\s*(-?\d+)\s*\]", text))


def shape_from_columns(names: Iterable[str]) -> Optional[tuple[DataShape, list[str]]]:
    """The shape a table's data columns spell, with the columns in flat order, or ``None``.

    Recognised schemes (the Data page explains them):

    * ``x[0], x[1], ..., x[T-1]``: a series; ``x[c][t]``: a series of channels
      (``x[m][d]`` read as trials when the first index runs longer than the second,
      as :func:`guess_shape` reads any ``(a, b)``); ``x[c][i][j]``: an image;
    * a shared name with numbers after it, ``resp_0.3, resp_1, resp_2.5``: one series
      ordered by that number (the times need not be whole or evenly spaced).

    Every column must follow the scheme and every index from 0 to its largest must be
    there once; otherwise ``None`` (the table is read as a vector of its columns).

    >>> shape, cols = shape_from_columns(["x[1]", "x[0]", "x[2]"])
    >>> shape.describe(), cols
    ('a vector of 3 numbers', ['x[0]', 'x[1]', 'x[2]'])
    >>> shape_from_columns([f"resp_{t}" for t in (0.3, 1, 2.5)])[0].kind
    'vector'
    """
    names = [str(n) for n in names]
    if len(names) < 2:
        return None
    matches = [_INDEXED.match(n.strip()) for n in names]
    if all(matches) and len({m.group("stem") for m in matches}) == 1:
        idx = [_indices(m.group("idx")) for m in matches]
        ndim = {len(i) for i in idx}
        if len(ndim) == 1:
            dims = tuple(max(i[k] for i in idx) + 1 for k in range(ndim.pop()))
            if all(min(i) >= 0 for i in idx) and math.prod(dims) == len(names) == len(set(idx)):
                order = sorted(range(len(names)), key=lambda j: idx[j])
                shape = guess_shape(dims) if len(dims) > 1 else DataShape.of(
                    "series" if dims[0] > 20 else "vector", dims)
                return shape, [names[j] for j in order]
        return None
    suffixed = [_SUFFIXED.match(n.strip()) for n in names]
    if all(suffixed) and len({m.group("stem") for m in suffixed}) == 1:
        nums = [float(m.group("num")) for m in suffixed]
        if len(set(nums)) == len(nums):
            order = sorted(range(len(names)), key=lambda j: nums[j])
            kind = "series" if len(names) > 20 else "vector"
            return DataShape.of(kind, (len(names),)), [names[j] for j in order]
    return None

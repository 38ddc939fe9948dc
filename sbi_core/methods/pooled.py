"""The training set of a neural method: the valid pairs of every round so far.

A neural estimator (NPE and its sequential forms, NLE, NRE) trains on the
pooled pairs ``{(theta_i, x_i)}`` of rounds ``0..r``. :class:`PooledPairs`
keeps them per round: pairs whose ``x`` or ``theta`` is not finite are
dropped and counted (a flow cannot learn from NaN), fixed prior parameters
are left out (only the ``Df`` free columns are learnt), and the first round's
pairs stay at hand (networks take their z-scoring from them: the prior round).

**Shaped data.** A simulation may be a series, an image or a set of trials
(:class:`~sbi_core.stats.shapes.DataShape`); the pairs keep ``x`` flat,
``(N, K)``, whatever shape it arrived in (``(N, T)``, ``(N, C, H, W)``,
``(N, M, D)``...). The shape is the one given, else read from the first
round's ``x`` and the embedding asked for
(:func:`sbi_core.nn.embeddings.data_shape_for`). Which rows are valid is
:meth:`DataShape.valid_rows`: for trials, whole rows of NaN are missing trials
(a valid, smaller set), a trial with only some numbers missing makes its
simulation invalid.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

import torch
from torch import Tensor

from sbi_core.errors import SBIError
from sbi_core.events import EventCallback
from sbi_core.nn.embeddings import as_shape, data_shape_for, flat_batch, resolve_embedding
from sbi_core.stats.priors import Prior
from sbi_core.stats.shapes import DataShape

__all__ = ["PooledPairs", "PooledData", "MIN_PAIRS", "as_pairs", "drop_invalid"]

MIN_PAIRS = 10  # fewer valid pairs than this cannot be split into training and validation sensibly


def drop_invalid(theta: Tensor, x: Tensor, data_shape: Optional[DataShape] = None) -> tuple[Tensor, Tensor, int]:
    """Remove rows where ``x (N, K)`` or ``theta (N, D)`` is not finite; return the count removed.

    With a ``data_shape`` of trials, whole NaN trials of ``x`` are allowed
    (:meth:`DataShape.valid_rows`)."""
    if data_shape is None or data_shape.kind != "trials":
        ok = torch.isfinite(x).all(1)
    else:
        ok = torch.as_tensor(data_shape.valid_rows(x.detach().numpy().astype(np.float64)))
    ok = ok & torch.isfinite(theta).all(1)
    return theta[ok], x[ok], int((~ok).sum())


def as_pairs(theta: Tensor, x: Tensor, prior: Prior) -> tuple[Tensor, Tensor]:
    """``theta`` as ``(N, D)`` and ``x`` as ``(N, K)`` float tensors, or an :class:`SBIError` saying what is wrong."""
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


class PooledPairs:
    """Every round's valid pairs, free parameters only.

    Args:
        prior: the prior over ``D`` parameters (its fixed ones are left out).
        data_shape: how one simulation folds (a :class:`DataShape` or its dict); ``None``:
            read from the first round's ``x`` and ``embedding``.
        embedding: the embedding asked for (only to read the shape of ``x``).
    """

    data_shape: Optional[DataShape] = None  # pairs pickled before shapes had none: a vector
    embedding: Any = None

    def __init__(self, prior: Prior, data_shape: Any = None, embedding: Any = None):
        self.prior = prior
        self.data_shape = None if data_shape is None else as_shape(data_shape)
        self.embedding = embedding
        self._theta: list[Tensor] = []  # per round: (N_r, Df)
        self._x: list[Tensor] = []  # per round: (N_r, K)
        self.num_invalid = 0

    @property
    def round(self) -> int:
        """0-based index of the last round appended (-1 before any)."""
        return len(self._theta) - 1

    @property
    def num_simulations(self) -> int:
        """Valid pairs pooled over all rounds."""
        return sum(t.shape[0] for t in self._theta)

    def shape_for(self, x: Any) -> DataShape:
        """The data shape pairs with ``x`` would have: the pool's, or the one read from ``x``
        (an :class:`SBIError` when ``x`` does not fit the pool's shape)."""
        shape = tuple(torch.as_tensor(x).shape)
        return data_shape_for(self.embedding, shape, self.data_shape)

    def append(self, theta: Tensor, x: Tensor) -> int:
        """Add one round's ``theta (N, D)`` and ``x`` (``(N, K)`` flat or ``(N, *dims)``); returns how
        many pairs were invalid (dropped)."""
        shape = self.shape_for(x)
        if not (shape.is_vector and torch.as_tensor(x).ndim <= 2):
            x = flat_batch(x, shape)
        theta, x = as_pairs(theta, x, self.prior)
        theta, x, invalid = drop_invalid(theta, x, shape)
        self.data_shape = shape
        self._theta.append(theta[:, self.prior.free_mask])
        self._x.append(x)
        self.num_invalid += invalid
        return invalid

    def first(self) -> tuple[Tensor, Tensor]:
        """Round 0's ``theta (N_0, Df)`` and ``x (N_0, K)``."""
        return self._theta[0], self._x[0]

    def last_theta(self) -> Optional[Tensor]:
        """The last round's ``(N_r, Df)`` parameters, or None before any round."""
        return self._theta[-1] if self._theta else None

    def training_set(self) -> tuple[Tensor, Tensor]:
        """All pooled ``theta (N, Df)`` and ``x (N, K)``, or an :class:`SBIError` when too few are valid."""
        if not self._theta:
            raise RuntimeError("append_simulations() first")
        if self.num_simulations < MIN_PAIRS:
            raise SBIError(
                f"Only {self.num_simulations} valid simulations to train on ({self.num_invalid} returned NaN or "
                f"infinity); at least {MIN_PAIRS} are needed."
            )
        return torch.cat(self._theta), torch.cat(self._x)


class PooledData:
    """The data side of an estimator that keeps every round's pairs in ``self._pairs`` (a
    :class:`PooledPairs`): its round and counts, the data's shape, :meth:`append_simulations`, and
    :meth:`train` (append, then the estimator's own ``fit`` and ``build_posterior``).

    The estimator sets ``_pairs``, ``proposal_rule`` and ``embedding`` in its ``__init__``; the class
    defaults below stand for an estimator pickled before embeddings (a checkpoint): no learned summary.
    """

    embedding = None
    embedding_features = None

    @property
    def sequential(self) -> bool:
        return bool(self.proposal_rule.sequential)

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

    @property
    def data_shape(self):
        """How one simulation folds (:class:`~sbi_core.stats.shapes.DataShape`; ``None`` before any data)."""
        return self._pairs.data_shape

    def append_simulations(self, theta: Tensor, x: Tensor) -> int:
        """Add one round's pairs ``theta (N, D)``, ``x`` (``(N, K)`` flat, or ``(N, *dims)`` in the
        simulation's shape); returns how many were invalid."""
        self._check_data(self._pairs.shape_for(x))  # refused before anything is kept
        return self._pairs.append(theta, x)

    def train(self, theta: Optional[Tensor] = None, x: Optional[Tensor] = None, *,
              on_event: Optional[EventCallback] = None, cancel: Optional[Callable[[], bool]] = None,
              round_index: Optional[int] = None, **training) -> Any:
        """Append ``theta (N, D)``, ``x (N, K)`` (if given), train, and return the posterior."""
        if theta is not None or x is not None:
            if theta is None or x is None:
                raise SBIError("Give both theta and x (or neither, after append_simulations).")
            self.append_simulations(theta, x)
        self.fit(on_event=on_event, cancel=cancel, round_index=round_index, **training)
        return self.build_posterior()

    def _check_data(self, shape) -> None:
        """Refuse data of ``shape`` before it is kept (an :class:`SBIError`); here: an embedding that cannot read it."""
        resolve_embedding(self.embedding, shape)

"""What every posterior shares: the observation's shape rules and the fixed parameters.

Each posterior (:class:`~sbi_core.posteriors.posterior.Posterior`,
:class:`~sbi_core.posteriors.mcmc.MCMCPosterior`,
:class:`~sbi_core.posteriors.particles.ParticlePosterior`) answers
``sample((n,), x=...)`` and ``log_prob(theta, x=...)`` for an observation
``x`` of ``K`` numbers, and models only the *free* parameters of a prior over
``D`` parameters. :class:`PosteriorBase` owns the rules around that, written
once:

* **the observation.** ``x`` is flattened to ``(K,)`` float32; it must have
  ``K = x_dim`` finite numbers, else an :class:`~sbi_core.errors.SBIError`
  says what is wrong. ``x=None`` means the posterior's default observation,
  and is a ``ValueError`` when it has none. Many observations ``xs`` are an
  ``(N, K)`` array of finite rows. :meth:`PosteriorBase.with_default_x`
  returns a copy with another default (a posterior is an immutable snapshot)
  with the diagnostics of the last call cleared.
* **the shape of a simulation.** A posterior may know how the ``K`` numbers
  fold (:attr:`PosteriorBase.data_shape`, a
  :class:`~sbi_core.stats.shapes.DataShape`; a vector unless said). For a
  series or an image ``x`` may come in its array shape (``(T,)``, ``(C, T)``,
  ``(H, W)``, ``(C, H, W)``) or flat; for repeated trials any number of trials
  from 1 to ``M`` (``(n, D)`` or ``n * D`` flat numbers), padded with NaN rows
  (missing trials), which are then the only NaN allowed
  (:meth:`DataShape.observation`; its :class:`DataShapeError` becomes an
  :class:`~sbi_core.errors.SBIError` with the same words). ``xs`` of trials may hold
  whole NaN trial rows.
* **fixed parameters.** A fixed parameter ``theta_j = c_j`` is not modelled;
  :func:`insert_fixed` maps free draws ``(N, Df)`` to ``(N, D)`` with every
  fixed column at its value.
* **the call arguments.** ``sample_shape`` gives ``n = prod(sample_shape)``
  draws; ``seed`` / ``generator`` give the one generator a call draws from;
  ``theta`` of ``log_prob`` is ``(N, D)`` or a single ``(D,)`` row.

A subclass sets ``prior`` and ``x_dim``, calls
:meth:`PosteriorBase._init_fixed` and :meth:`PosteriorBase._init_default_x`
in its constructor, and overrides :meth:`PosteriorBase._check_x` where its
observations follow another rule (an ABC posterior answers its own only).
"""

from __future__ import annotations

import copy
import math
from typing import Optional, TypeVar

import torch
from torch import Tensor

from sbi_core.errors import SBIError
from sbi_core.nn.embeddings import as_shape, flat_batch
from sbi_core.stats.priors import Prior
from sbi_core.stats.shapes import DataShape, DataShapeError

__all__ = ["PosteriorBase", "insert_fixed", "same_observation"]

P = TypeVar("P", bound="PosteriorBase")


def insert_fixed(theta_free: Tensor, free_mask: Tensor, fixed_values: Tensor) -> Tensor:
    """``theta_free (N, Df)`` -> ``(N, D)``: free columns where ``free_mask (D,)`` is True, ``fixed_values (D,)`` elsewhere.

    The result has ``fixed_values``' dtype (free draws are cast to it).
    """
    out = fixed_values.expand(theta_free.shape[0], -1).clone()
    out[:, free_mask] = theta_free.to(out.dtype)
    return out


def same_observation(a: Optional[Tensor], b: Optional[Tensor]) -> bool:
    """Whether two flat observations are equal, NaN (a missing trial) equal to NaN."""
    if a is None or b is None:
        return a is None and b is None
    a, b = torch.as_tensor(a).reshape(-1), torch.as_tensor(b, dtype=torch.as_tensor(a).dtype).reshape(-1)
    return a.shape == b.shape and bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())


class PosteriorBase:
    """The observation rules and fixed-parameter insertion of a posterior (see the module docstring).

    ``_call_diagnostics`` names the attributes that describe the last
    ``sample`` call; a copy made by :meth:`with_default_x` has them ``None``.
    """

    prior: Prior
    x_dim: int  # K, numbers per observation: each posterior defines it
    _call_diagnostics: tuple[str, ...] = ("last_acceptance_rate",)
    _data_shape: Optional[DataShape] = None  # None: a vector of x_dim numbers (and posteriors pickled before shapes)

    def _init_data_shape(self, data_shape) -> None:
        """Keep how one simulation folds (``None``: a vector); its size must be ``x_dim``."""
        self._data_shape = None if data_shape is None else as_shape(data_shape, size=self.x_dim)
        if self._data_shape is not None and self._data_shape.is_vector:
            self._data_shape = None

    @property
    def data_shape(self) -> DataShape:
        """How the ``K`` numbers of one simulation fold (:class:`~sbi_core.stats.shapes.DataShape`)."""
        return self._data_shape if self._data_shape is not None else DataShape.vector(self.x_dim)

    def _init_fixed(self, prior: Prior) -> None:
        """Keep ``prior`` and its ``(D,)`` free mask and fixed values."""
        self.prior = prior
        self._free = prior.free_mask
        self._fixed_values = prior.fixed_values

    def _init_default_x(self, default_x: Optional[Tensor]) -> None:
        """Check and keep the ``(K,)`` default observation (``None``: none)."""
        self._default_x: Optional[Tensor] = None
        self._default_x = None if default_x is None else self._check_x(default_x)

    # ---- shapes and observation --------------------------------------------
    @property
    def theta_dim(self) -> int:
        return self.prior.dim

    @property
    def default_x(self) -> Optional[Tensor]:
        """The ``(K,)`` observation used when ``x`` is not given (a copy), or None."""
        return None if self._default_x is None else self._default_x.clone()

    def with_default_x(self: P, x: Tensor) -> P:
        """A new posterior equal to this one with ``x`` as its default observation.

        This one is left as it was; the copy shares its networks and memos (they
        depend on the network only), so it is cheap. When ``x`` already is the
        default, this very posterior is returned.
        """
        x = self._check_x(x)
        if self._default_x is not None and same_observation(x, self._default_x):
            return self
        other = copy.copy(self)
        other._default_x = x
        for name in self._call_diagnostics:
            setattr(other, name, None)
        return other

    def _check_x(self, x: Optional[Tensor]) -> Tensor:
        """``x`` as a finite ``(K,)`` float tensor (``None``: the default), or an error saying what is wrong."""
        if x is None:
            if self._default_x is None:
                raise ValueError("Pass an observation x, or make a posterior with one: with_default_x(x).")
            return self._default_x
        if self._data_shape is not None:
            return self._check_shaped_x(x)
        x = torch.as_tensor(x, dtype=torch.float32).reshape(-1)
        if x.shape[0] != self.x_dim:
            raise SBIError(f"The observation has {x.shape[0]} numbers but the model produces {self.x_dim}.")
        if not torch.isfinite(x).all():
            raise SBIError("The observation contains NaN or infinite values; give finite numbers.")
        return x

    def _check_shaped_x(self, x) -> Tensor:
        """An observation of a series, image or set of trials as ``(K,)`` float32 (see the module docstring)."""
        shape = self._data_shape
        try:
            flat = shape.observation(torch.as_tensor(x, dtype=torch.float64).detach().cpu().numpy())
        except DataShapeError as err:
            raise SBIError(str(err)) from None
        x = torch.as_tensor(flat, dtype=torch.float32)
        if shape.kind != "trials" and not torch.isfinite(x).all():
            raise SBIError("The observation contains NaN or infinite values; give finite numbers.")
        return x

    def _check_xs(self, xs: Tensor) -> Tensor:
        """``xs`` as a finite ``(N, K)`` float tensor, or an :class:`SBIError` saying what is wrong
        (a batch in the simulation's array shape is flattened; for trials, whole NaN trials are allowed)."""
        shape = self._data_shape
        if shape is not None:
            xs = flat_batch(xs, shape)
            bad = ~torch.as_tensor(shape.valid_rows(xs.numpy().astype("float64")))
            if bool(bad.any()):
                what = "a partly missing trial, or no trial" if shape.kind == "trials" else "NaN or infinite values"
                raise SBIError(
                    f"{int(bad.sum())} of the {xs.shape[0]} observations contain {what}; "
                    "remove those rows first (sbi_core.diagnostics.drop_invalid does)."
                )
            return xs
        xs = torch.as_tensor(xs, dtype=torch.float32)
        if xs.ndim != 2 or xs.shape[1] != self.x_dim:
            raise SBIError(
                f"xs must have shape (N, {self.x_dim}), one observation per row; got {tuple(xs.shape)}."
            )
        bad = ~torch.isfinite(xs).all(1)
        if bool(bad.any()):
            raise SBIError(
                f"{int(bad.sum())} of the {xs.shape[0]} observations contain NaN or infinite values; "
                "remove those rows first (sbi_core.diagnostics.drop_invalid does)."
            )
        return xs

    # ---- parameters -----------------------------------------------------------
    def _full(self, theta_free: Tensor) -> Tensor:
        """``(N, Df)`` free parameters -> ``(N, D)`` with the fixed ones at their values."""
        return insert_fixed(theta_free, self._free, self._fixed_values)

    def _inside(self, theta: Tensor) -> Tensor:
        """``theta (..., D)`` -> ``(...)``: inside the prior's support and finite."""
        return self.prior.support_contains(theta) & torch.isfinite(theta).all(-1)

    @staticmethod
    def _theta_rows(theta: Tensor) -> Tensor:
        """``theta`` of ``log_prob`` as ``(N, D)`` float32 (a single ``(D,)`` row becomes ``(1, D)``)."""
        theta = torch.as_tensor(theta, dtype=torch.float32)
        return theta.unsqueeze(0) if theta.ndim == 1 else theta

    @staticmethod
    def _draw_count(sample_shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
        """``(shape, n)``: ``sample_shape`` as a tuple and how many draws it holds (1 for ``()``)."""
        shape = tuple(torch.Size(sample_shape))
        return shape, (math.prod(shape) if shape else 1)

"""VectorFieldPosterior: the posterior of FMPE and NPSE, a continuous normalizing flow restricted to the prior.

The network (:class:`~sbi_core.nn.vector_field.ConditionalVectorField`) is a flow
``q(theta | x)`` whose transform is the solution of an ODE, so everything
:class:`~sbi_core.posteriors.posterior.Posterior` does with a flow holds here
unchanged and is inherited: draws outside the prior's support are rejected
(``sample``, ``sample_batched``; the acceptance rate is reported and a hopeless
rate raises :class:`~sbi_core.posteriors.posterior.PosteriorSamplingError`),
and ``log_prob`` is the flow's density truncated to the support, divided by the
fixed Monte Carlo estimate ``Z_hat(x)`` of the mass inside it (10,000 draws from
a constant seed; ``normalize=False`` skips it).

What differs is the cost. A draw solves the ODE: ``steps`` times 1, 2 or 4
network passes (Euler, midpoint, RK4; :attr:`evaluations_per_sample`). A density
solves it backwards with the divergence of the field, each evaluation a forward
and ``D`` backward passes, so ``log_prob`` of ``N`` points costs about ``D + 1``
times drawing ``N`` samples; the first normalised ``log_prob`` at a new ``x``
also draws the 10,000 samples of ``Z_hat(x)`` (memoised per ``x``).
:meth:`VectorFieldPosterior.with_sampling` returns a copy that solves with other
settings (more steps for a more exact solution, another solver, or NPSE's
predictor-corrector SDE).

``to_base`` carries parameters to the ODE's noise end, where ``q(. | x)``'s image
is the standard normal base (the L-C2ST-NF map).

Measured (two moons, the default network, RK4 x 20, one thread of a shared 2-core
machine): 11,000 unnormalised densities took 15 s, against 0.2 s for NPE's flow, and
the first normalised one at an observation 8 s (its 10,000 draws). So
``expensive_log_prob`` is set: the run loop's size of the 90 % region
(:func:`sbi_core.stats.concentration.posterior_hdr_size`) reads it and uses the
round's samples instead of 11,000 densities.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from sbi_core.errors import SBIError
from sbi_core.nn.vector_field import ConditionalVectorField
from sbi_core.posteriors.posterior import Posterior
from sbi_core.stats.priors import Prior

__all__ = ["VectorFieldPosterior", "FORMAT"]

FORMAT = "sbi_core.vector_field_posterior/1"


class VectorFieldPosterior(Posterior):
    """``p(theta | x)`` from a trained conditional vector field; an immutable snapshot.

    Args:
        field: the trained network; deep-copied and frozen.
        prior: the prior over all ``D`` parameters (fixed ones included).
        default_x: ``(K,)`` observation used when ``x`` is not given.
        data_shape: how one simulation folds (see :class:`~sbi_core.posteriors.posterior.Posterior`).

    ``sample``, ``sample_batched`` and ``log_prob`` (and their arguments) are
    :class:`~sbi_core.posteriors.posterior.Posterior`'s; see the module docstring for their cost.
    """

    expensive_log_prob = True  # a density solves an ODE with D backward passes per step (see the module docstring)

    def __init__(self, field: ConditionalVectorField, prior: Prior, default_x: Optional[Tensor] = None,
                 data_shape=None):
        super().__init__(field, prior, default_x=default_x, data_shape=data_shape)

    @property
    def field(self) -> ConditionalVectorField:
        return self._flow

    @property
    def evaluations_per_sample(self) -> int:
        """Network passes one draw costs with the current solver settings."""
        return self._flow.cfg.evaluations_per_sample

    def with_sampling(self, steps: Optional[int] = None, solver: Optional[str] = None,
                      density_steps: Optional[int] = None, sampler: Optional[str] = None,
                      corrector_steps: Optional[int] = None, snr: Optional[float] = None) -> "VectorFieldPosterior":
        """A copy (sharing the frozen network) that solves with other settings; ``None`` keeps one.

        steps: solver steps of a draw; solver: ``"euler"``, ``"midpoint"`` or ``"rk4"``; density_steps: the
        steps of ``log_prob`` and ``to_base``; sampler: ``"ode"``, or ``"sde"`` (predictor-corrector, for
        NPSE); corrector_steps, snr: its Langevin corrector. An :class:`SBIError` says what is wrong with a setting.
        """
        try:
            field = self._flow.with_sampling(steps=steps, solver=solver, density_steps=density_steps,
                                             sampler=sampler, corrector_steps=corrector_steps, snr=snr)
        except ValueError as err:
            raise SBIError(str(err)) from None
        other = copy.copy(self)
        other._flow = field
        other._log_z = {}  # Z_hat(x) depends on the solver
        other.last_acceptance_rate = None
        return other

    def to_base(self, theta: Tensor, xs: Tensor) -> Tensor:
        """``(N, Df)``: each ``theta_i`` of ``theta (N, D)`` carried along the ODE to its noise end at its own
        ``xs[i]`` (``xs (N, K)``, or one ``(K,)`` observation for every row), where ``z ~ N(0, I_Df)`` when
        ``theta ~ q(. | x)``. Only the free parameters are mapped; as for a flow, this is the untruncated ``q``."""
        theta = self._theta_rows(theta)
        xs = torch.as_tensor(xs, dtype=torch.float32)
        xs = self._check_x(xs).expand(theta.shape[0], -1) if xs.ndim == 1 else self._check_xs(xs)
        if xs.shape[0] != theta.shape[0]:
            raise SBIError(f"theta has {theta.shape[0]} rows but xs has {xs.shape[0]}; give one x per theta.")
        return self._flow.to_base(theta[:, self._free], xs)

    # ---- persistence ------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the network, prior and default observation to ``path`` (torch file)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "format": FORMAT,
                "field": self._flow.to_payload(),
                "prior": self.prior.to_spec(),
                "default_x": None if self._default_x is None else self._default_x.tolist(),
                "data_shape": None if self._data_shape is None else self._data_shape.to_dict(),
            },
            path,
        )

    @classmethod
    def load(cls, path: str | Path) -> "VectorFieldPosterior":
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != FORMAT:
            raise SBIError(f"{path} is not a saved sbi_core vector-field posterior.")
        field = ConditionalVectorField.from_payload(payload["field"])
        dx = payload["default_x"]
        return cls(field, Prior.from_spec(payload["prior"]), None if dx is None else torch.tensor(dx),
                   data_shape=payload.get("data_shape"))

    def __repr__(self) -> str:
        cfg = self._flow.cfg
        return f"VectorFieldPosterior({cfg.path}, D={self.theta_dim}, K={self.x_dim}, {cfg.solver} x {cfg.steps})"

"""The :class:`Simulator`: a batched stochastic model ``x ~ p(x | theta)``.

A simulator maps a batch of parameters ``theta: (N, D)`` to a batch of
observations ``x: (N, K)``. Randomness comes from a ``torch.Generator`` that
the caller may pass (or a ``seed``), never from reseeding torch's global RNG.

Besides the function itself a simulator carries what a person needs to use it:
a title, a paragraph of explanation, its equations in LaTeX, parameter and
observation names (with units), a default prior, a default "true" parameter
and, where the posterior is known in closed form, a sampler for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor

from sbi_core.nn.handmade import HandmadeSummary, get_summary
from sbi_core.stats.priors import Prior
from sbi_core.stats.shapes import DataShape
from sbi_core.stats.seeds import make_generator  # noqa: F401 - where it lived before stats/

__all__ = ["Simulator", "SimulateFn", "ReferenceFn", "make_generator"]

# simulate(theta: (N, D), generator) -> x: (N, K)
SimulateFn = Callable[[Tensor, torch.Generator], Tensor]
# reference(x_obs: (K,), num_samples, generator) -> theta: (num_samples, D)
ReferenceFn = Callable[[Tensor, int, torch.Generator], Tensor]

DEFAULT_OBSERVATION_SEED = 20240607


@dataclass
class Simulator:
    """A named, documented, batched simulator.

    Attributes:
        name: registry key, e.g. ``"two_moons"``.
        title: human title, e.g. ``"Two moons"``.
        description: a paragraph a student understands.
        equations: LaTeX (one string, may hold several lines with ``\\\\``).
        param_names: ``D`` parameter names.
        param_units: ``D`` units ("" when dimensionless).
        obs_names: ``K`` observation component names.
        obs_units: ``K`` units.
        prior: the default :class:`Prior`.
        true_theta: ``(D,)`` default "true" parameter.
        simulate_fn: ``(theta (N, D), generator) -> x (N, K)``.
        reference_fn: optional exact posterior sampler under the default prior.
        tags: free labels for the gallery ("teaching", "benchmark", ...).
        data_shape: how the ``K`` numbers of one simulation fold (a series, an image,
            repeated trials: :class:`~sbi_core.stats.shapes.DataShape`); ``None``: a vector.
            ``simulate`` always returns them flat, ``(N, K)``.
        handmade_summary: the registered name (:mod:`sbi_core.nn.handmade`) of the model's own
            hand-made summary statistics, a fixed function ``x (N, K) -> (N, S)`` that the
            ``"handmade"`` embedding puts in place of a learned summary; ``None``: the model has none.
    """

    name: str
    title: str
    description: str
    equations: str
    param_names: list[str]
    param_units: list[str]
    obs_names: list[str]
    obs_units: list[str]
    prior: Prior
    true_theta: Tensor
    simulate_fn: SimulateFn
    reference_fn: Optional[ReferenceFn] = None
    tags: Sequence[str] = field(default_factory=tuple)
    data_shape: Optional[DataShape] = None
    handmade_summary: Optional[str] = None
    _default_observation: Optional[Tensor] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.true_theta = torch.as_tensor(self.true_theta, dtype=torch.float32).reshape(-1)
        if len(self.param_names) != self.prior.dim:
            raise ValueError(f"{self.name}: {len(self.param_names)} names for a {self.prior.dim}-D prior")
        if len(self.param_units) != len(self.param_names):
            raise ValueError(f"{self.name}: param_units must match param_names")
        if len(self.obs_units) != len(self.obs_names):
            raise ValueError(f"{self.name}: obs_units must match obs_names")
        self.data_shape = DataShape.from_spec(self.data_shape, size=len(self.obs_names))
        if self.handmade_summary is not None:
            get_summary(self.handmade_summary)  # registered: say so now, not when a network is built

    # ---- shapes ----------------------------------------------------------
    @property
    def theta_dim(self) -> int:
        return len(self.param_names)

    @property
    def x_dim(self) -> int:
        return len(self.obs_names)

    # ---- simulation --------------------------------------------------------
    def simulate(
        self,
        theta: Tensor,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Simulate ``x: (N, K)`` for ``theta: (N, D)`` (a single ``(D,)`` gives ``(K,)``).

        Pass ``seed`` or ``generator`` for reproducible draws; without either,
        a fresh random generator is used (torch's global RNG is never touched).
        """
        theta = torch.as_tensor(theta, dtype=torch.float32)
        single = theta.ndim == 1
        if single:
            theta = theta.unsqueeze(0)
        if theta.ndim != 2 or theta.shape[1] != self.theta_dim:
            raise ValueError(
                f"{self.title} takes theta with {self.theta_dim} columns "
                f"({', '.join(self.param_names)}), got shape {tuple(theta.shape)}."
            )
        g = make_generator(seed, generator)
        x = self.simulate_fn(theta, g).to(torch.float32)
        return x[0] if single else x

    # ---- hand-made summaries ------------------------------------------------
    @property
    def handmade(self) -> Optional[HandmadeSummary]:
        """The model's hand-made summary statistics (:attr:`handmade_summary`), or ``None``."""
        return None if self.handmade_summary is None else get_summary(self.handmade_summary)

    def summarise(self, x) -> Tensor:
        """The hand-made summaries of simulations ``x (N, K)`` flat -> ``(N, S)``, or of one observation
        ``x`` (anything :meth:`DataShape.observation` reads: flat, in its array shape, fewer trials) -> ``(S,)``.

        Raises ``ValueError`` when the model has none.
        """
        summary = self.handmade
        if summary is None:
            raise ValueError(f"{self.title} has no hand-made summary statistics.")
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.ndim == 2 and x.shape[1] == self.x_dim:
            return summary(x)
        one = torch.as_tensor(self.data_shape.observation(x.numpy()), dtype=torch.float32)
        return summary(one[None])[0]

    def __call__(self, theta: Tensor) -> Tensor:
        return self.simulate(theta)

    @property
    def default_observation(self) -> Tensor:
        """``(K,)``: one simulation at :attr:`true_theta` with a fixed seed."""
        if self._default_observation is None:
            self._default_observation = self.simulate(self.true_theta, seed=DEFAULT_OBSERVATION_SEED)
        return self._default_observation.clone()

    # ---- reference posterior ----------------------------------------------
    @property
    def has_reference_posterior(self) -> bool:
        return self.reference_fn is not None

    def reference_posterior(
        self,
        x_obs: Tensor,
        num_samples: int = 10_000,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Exact samples ``(num_samples, D)`` of ``p(theta | x_obs)`` under :attr:`prior`.

        Raises ``NotImplementedError`` when the model has no closed form.
        """
        if self.reference_fn is None:
            raise NotImplementedError(f"{self.title} has no closed-form posterior.")
        x_obs = torch.as_tensor(x_obs, dtype=torch.float32).reshape(-1)
        if x_obs.shape[0] != self.x_dim:
            raise ValueError(f"{self.title}: x_obs must have {self.x_dim} entries, got {x_obs.shape[0]}.")
        return self.reference_fn(x_obs, int(num_samples), make_generator(seed, generator))

    def param_labels(self) -> list[str]:
        """Names with units for axis labels, e.g. ``"v0 [m/s]"``."""
        return [f"{n} [{u}]" if u else n for n, u in zip(self.param_names, self.param_units)]

    def obs_labels(self) -> list[str]:
        return [f"{n} [{u}]" if u else n for n, u in zip(self.obs_names, self.obs_units)]

"""The model the next run uses: the typed choice the Model and *Your model & data* pages make and
Train, Explore and the data tabs read (one object in session state, :data:`keys.S_MODEL_CFG`).

A built-in model names its simulator and keeps ``prior``/``observation`` ``None``
for the model's defaults; an uploaded one also carries ``simulator_ref`` (the
RunSpec's simulator) and what the pages show about it, and always an explicit
prior and observation. Pages build RunSpecs from it with :meth:`ModelChoice.to_spec_fields`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any, Optional

import streamlit as st

from sbi_core import list_simulators
from sbi_core.stats.shapes import DataShape

from sbi_ui import keys as K
from sbi_ui.resources import simulator

__all__ = ["ModelChoice", "ModelView"]


@dataclass(frozen=True)
class ModelView:
    """What pages show about an uploaded model (a built-in one is its Simulator)."""

    title: str
    param_names: list
    obs_names: list
    data_shape: Optional[DataShape] = None
    """How one simulation's numbers fold (the upload's confirmed reading; ``None``: a vector)."""


@dataclass(frozen=True)
class ModelChoice:
    """The current model, its prior and its observation."""

    simulator: str = "two_moons"
    """A built-in simulator's name, or ``"upload:<file name>"`` for an uploaded one."""
    prior: Optional[list] = None
    """The prior spec (list of marginals), or ``None`` for the built-in model's default prior."""
    observation: Optional[list] = None
    """The observation (``K`` numbers), or ``None`` for the built-in model's example observation."""
    true_theta: Optional[list] = None
    """The parameter the observation was simulated at, when known and not the model's default."""
    obs_source: str = "default"
    """Where the observation came from: ``"default"``, ``"simulate"``, ``"typed"`` or ``"upload"``."""
    simulator_ref: Optional[dict] = None
    """An uploaded model's RunSpec ``simulator`` (``{"kind": "upload", "path": ...}``); ``None`` if built in."""
    title: str = ""
    """An uploaded model's title (a built-in one's is its Simulator's)."""
    param_names: Optional[list] = None
    """An uploaded model's parameter names (default: the prior's names)."""
    obs_names: Optional[list] = None
    """An uploaded model's observation component names (default: ``x1, x2, ...``)."""
    prior_key: str = ""
    """The prior editor's model key of an uploaded model (:mod:`sbi_ui.prior_editor`)."""
    prior_text: str = ""
    """How the Train page names an uploaded model's prior (``"the file's PRIOR"``)."""

    # ---- session state -------------------------------------------------------------
    @classmethod
    def default(cls, name: str = "two_moons") -> "ModelChoice":
        """Built-in model ``name`` with its default prior and example observation."""
        return cls(simulator=name)

    @classmethod
    def current(cls) -> "ModelChoice":
        """The session's choice (the default model until one is made, or if it is no longer valid)."""
        choice = cls._from_stored(st.session_state.get(K.S_MODEL_CFG))
        if choice is None or (choice.simulator not in list_simulators() and not choice.simulator_ref):
            choice = cls.default()
            choice.save()
        return choice

    @classmethod
    def _from_stored(cls, stored: Any) -> Optional["ModelChoice"]:
        if isinstance(stored, cls) or stored is None:
            return stored
        if is_dataclass(stored):  # an instance of this class from before a module reload
            stored = {f.name: getattr(stored, f.name) for f in fields(stored)}
        if isinstance(stored, dict):
            names = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in stored.items() if k in names})
        return None

    def save(self) -> "ModelChoice":
        """Make this the session's current model (returns it)."""
        st.session_state[K.S_MODEL_CFG] = self
        return self

    def replace(self, **changes: Any) -> "ModelChoice":
        """A copy with ``changes`` (the choice itself never changes)."""
        return replace(self, **changes)

    # ---- what pages read -----------------------------------------------------------
    @property
    def is_upload(self) -> bool:
        return bool(self.simulator_ref)

    @property
    def view(self):
        """The model's title and sizes: its :class:`~sbi_core.Simulator` if built in, else a
        :class:`ModelView` of the upload (nothing is loaded)."""
        if not self.is_upload:
            return simulator(self.simulator)
        names = list(self.param_names or [m.get("name", f"theta{i + 1}") for i, m in enumerate(self.prior or [])])
        obs = list(self.obs_names or [f"x{k + 1}" for k in range(len(self.observation or []))])
        shape = self.simulator_ref.get("data_shape")
        return ModelView(title=str(self.title or "Uploaded simulator"), param_names=names, obs_names=obs,
                         data_shape=DataShape.from_spec(shape, size=len(obs)) if shape is not None else None)

    @property
    def theta_dim(self) -> int:
        """How many parameters the model has (its prior's entries)."""
        return len(self.prior) if self.prior else len(self.view.param_names)

    @property
    def prior_spec(self) -> list:
        """The prior in use as a spec (a built-in model's default spelled out)."""
        return self.prior if self.prior else simulator(self.simulator).prior.to_spec()

    def to_spec_fields(self) -> dict:
        """The RunSpec fields this choice fixes: ``simulator``, ``prior``, ``observation``, ``true_theta``."""
        return {
            "simulator": self.simulator_ref or self.simulator,
            "prior": self.prior,
            "observation": self.observation,
            "true_theta": self.true_theta,
        }

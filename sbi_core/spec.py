"""RunSpec: the complete, JSON-serialisable description of one inference run.

Same spec (including ``seed``) => same result. The spec is what the run store
keeps, what a URL or a file shares, and what ``python -m sbi_core spec.json``
re-runs headless.
"""

from __future__ import annotations

from .errors import SBIError

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional

__all__ = ["RunSpec", "RunSpecError", "METHODS", "ESTIMATORS"]

METHODS = ("npe", "snpe", "tsnpe")
ESTIMATORS = ("nsf", "maf")


class RunSpecError(SBIError, ValueError):
    """A RunSpec that cannot be run; the message says what to fix."""


@dataclass
class RunSpec:
    """What to infer and how.

    simulator: a built-in name (``"two_moons"``) or a dict
        ``{"kind": "builtin", "name": ...}`` / ``{"kind": "upload", "path": ...}`` /
        ``{"kind": "table", "path": ..., "theta_columns": [...], "x_columns": [...]}``.
    prior: a prior spec (list of marginals) or ``None`` for the model's default.
    observation: ``K`` numbers, or ``None`` for the model's default observation.
    true_theta: the parameter the observation was simulated from, if known.
    method: ``"npe"`` (one round on the prior, amortized), ``"snpe"`` (sequential,
        APT) or ``"tsnpe"`` (sequential, truncated-prior proposals).
    num_rounds, simulations_per_round: the simulation budget.
    density_estimator, hidden_features, num_transforms: the flow.
    max_epochs, batch_size (None: automatic), learning_rate, validation_fraction, patience: training.
    num_posterior_samples: samples kept per round at the observation.
    seed: every random choice of the run derives from it.
    num_threads: torch threads for the worker (``None``: all cores).
    """

    simulator: Any = "two_moons"
    prior: Optional[list] = None
    observation: Optional[list] = None
    true_theta: Optional[list] = None
    method: str = "snpe"
    num_rounds: int = 4
    simulations_per_round: int = 1000
    density_estimator: str = "nsf"
    hidden_features: int = 50
    num_transforms: int = 5
    max_epochs: int = 200
    batch_size: Optional[int] = None
    learning_rate: float = 2e-3
    validation_fraction: float = 0.1
    patience: int = 10
    num_posterior_samples: int = 1000
    seed: int = 0
    num_threads: Optional[int] = None
    title: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.method not in METHODS:
            raise RunSpecError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}.")
        if self.density_estimator not in ESTIMATORS:
            raise RunSpecError(
                f"density_estimator must be one of {', '.join(ESTIMATORS)}, got {self.density_estimator!r}."
            )
        ints = {
            "num_rounds": (1, 50),
            "simulations_per_round": (20, 1_000_000),
            "hidden_features": (4, 1024),
            "num_transforms": (1, 20),
            "max_epochs": (1, 10_000),
            "patience": (1, 10_000),
            "num_posterior_samples": (10, 1_000_000),
        }
        for name, (lo, hi) in ints.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise RunSpecError(f"{name} must be a whole number from {lo} to {hi}, got {v!r}.")
        if self.batch_size is not None and (
            isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or not 2 <= self.batch_size <= 100_000
        ):
            raise RunSpecError(f"batch_size must be empty (automatic) or a whole number from 2 to 100000, got {self.batch_size!r}.")
        if self.method == "npe" and self.num_rounds != 1:
            raise RunSpecError("Amortized NPE trains in one round: set num_rounds to 1.")
        if not 0 < float(self.learning_rate) < 1:
            raise RunSpecError(f"learning_rate must be between 0 and 1, got {self.learning_rate!r}.")
        if not 0 < float(self.validation_fraction) < 0.5:
            raise RunSpecError(
                f"validation_fraction must be between 0 and 0.5, got {self.validation_fraction!r}."
            )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise RunSpecError(f"seed must be a whole number, got {self.seed!r}.")
        if self.num_threads is not None and (not isinstance(self.num_threads, int) or self.num_threads < 1):
            raise RunSpecError(f"num_threads must be a positive whole number, got {self.num_threads!r}.")

    @classmethod
    def demo(cls) -> "RunSpec":
        """The guided demo: two moons, 4 sequential rounds of 250 simulations.

        Small rounds make the story visible (the first cloud is broad, later
        ones tighten around the two crescents) and keep each round to seconds
        on a 2-core laptop."""
        return cls(
            simulator="two_moons",
            method="snpe",
            num_rounds=4,
            simulations_per_round=250,
            density_estimator="nsf",
            hidden_features=32,
            num_transforms=3,
            max_epochs=80,
            patience=8,
            num_posterior_samples=1000,
            seed=0,
            title="Guided demo: two moons, 4 rounds",
        )

    @property
    def simulator_ref(self) -> dict:
        """The simulator reference as a dict with a ``kind``."""
        if isinstance(self.simulator, str):
            return {"kind": "builtin", "name": self.simulator}
        if isinstance(self.simulator, dict) and "kind" in self.simulator:
            return dict(self.simulator)
        raise RunSpecError(f"simulator must be a built-in name or a dict with 'kind', got {self.simulator!r}.")

    # ---- serialisation ----------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict) -> "RunSpec":
        if not isinstance(data, dict):
            raise RunSpecError("A RunSpec is a JSON object (a mapping of settings).")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RunSpecError(f"Unknown RunSpec setting(s): {', '.join(unknown)}.")
        try:
            return cls(**data)
        except TypeError as err:
            raise RunSpecError(str(err)) from None

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise RunSpecError(f"The RunSpec is not valid JSON: {err}.") from None
        return cls.from_dict(data)

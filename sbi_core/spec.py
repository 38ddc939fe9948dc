"""RunSpec: the complete, JSON-serialisable description of one inference run.

Same spec (including ``seed``) => same result. The spec is what the run store
keeps, what a URL or a file shares, and what ``python -m sbi_core spec.json``
re-runs headless.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Optional

import numpy as np

from .errors import SBIError
from .methods.registry import get_method, method_names
from .priors import Prior, PriorSpecError

__all__ = ["RunSpec", "RunSpecError", "METHODS", "ESTIMATORS"]

METHODS = method_names()  # from the method registry, in the order pages offer them
ESTIMATORS = ("nsf", "maf")


class RunSpecError(SBIError, ValueError):
    """A RunSpec that cannot be run; the message says what to fix."""


@dataclass
class RunSpec:
    """What to infer and how.

    simulator: a built-in name (``"two_moons"``) or a dict
        ``{"kind": "builtin", "name": ...}`` / ``{"kind": "upload", "path": ...}`` /
        ``{"kind": "table", "path": ..., "theta_columns": [...], "x_columns": [...]}``.
        A ``path`` is a file of this machine's run store; a spec that travels
        carries the file instead (``"file_name"``, ``"sha256"``, ``"source"``):
        see :func:`sbi_core.uploads.portable_spec` and :func:`~sbi_core.uploads.admit_spec`.
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

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """The one validation of a RunSpec, whoever hands it in (page, file, CLI, URL, ``execute``).

        Checks every setting's type and range, the method's rules (a
        one-round method has ``num_rounds == 1``), the shape of the simulator
        reference, the prior spec, and that the observation and true parameter
        are non-empty lists of finite numbers. What a simulator reference
        *points to* (a built-in that exists, an upload of this server) is
        checked where a spec arrives from outside: :func:`sbi_core.uploads.admit_spec`.
        """
        _check_choices(self)
        _check_numbers(self)
        if not get_method(self.method).sequential and self.num_rounds != 1:
            raise RunSpecError(f"{get_method(self.method).title} trains in one round: set num_rounds to 1.")
        self.simulator_ref  # noqa: B018 - raises on a malformed reference
        _check_prior(self.prior)
        for key in ("observation", "true_theta"):
            _check_vector(key, getattr(self, key))

    @property
    def rounds(self) -> int:
        """How many rounds this spec's run has (1 for a one-round method, else ``num_rounds``)."""
        return get_method(self.method).rounds(self.num_rounds)

    @property
    def is_sequential(self) -> bool:
        """Whether the method refines its posterior at one observation, round after round."""
        return get_method(self.method).sequential

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
        if data.get("extra", None) == {}:  # an always-empty setting that older versions wrote
            data = {k: v for k, v in data.items() if k != "extra"}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RunSpecError(f"Unknown RunSpec setting(s): {', '.join(unknown)}.")
        try:
            return cls(**data)
        except TypeError as err:
            raise RunSpecError(str(err)) from None

    def to_query(self) -> str:
        """A short, URL-safe, versioned string of every field (the ``?spec=`` of a shared link).

        See :mod:`sbi_core.spec_query` for the format; ``RunSpec.from_query(spec.to_query()) == spec``.
        """
        from .spec_query import spec_to_query

        return spec_to_query(self.to_dict())

    @classmethod
    def from_query(cls, query: str) -> "RunSpec":
        """The RunSpec of a :meth:`to_query` string.

        Raises:
            RunSpecError: the link is empty, cut short, edited, from a newer
                version, or holds settings that are not valid (the message says which).
                A decoded spec is validated like any other; what its simulator
                points to is checked where it arrives (:func:`sbi_core.uploads.admit_spec`).
        """
        from .spec_query import spec_dict_from_query

        return cls.from_dict(spec_dict_from_query(query))

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise RunSpecError(f"The RunSpec is not valid JSON: {err}.") from None
        return cls.from_dict(data)


# ---- the checks behind RunSpec.validate -------------------------------------
_INT_RANGES = {
    "num_rounds": (1, 50),
    "simulations_per_round": (20, 1_000_000),
    "hidden_features": (4, 1024),
    "num_transforms": (1, 20),
    "max_epochs": (1, 10_000),
    "patience": (1, 10_000),
    "num_posterior_samples": (10, 1_000_000),
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_choices(spec: "RunSpec") -> None:
    if spec.method not in METHODS:
        raise RunSpecError(f"method must be one of {', '.join(METHODS)}, got {spec.method!r}.")
    if spec.density_estimator not in ESTIMATORS:
        raise RunSpecError(
            f"density_estimator must be one of {', '.join(ESTIMATORS)}, got {spec.density_estimator!r}."
        )


def _check_numbers(spec: "RunSpec") -> None:
    for name, (lo, hi) in _INT_RANGES.items():
        v = getattr(spec, name)
        if not _is_int(v) or not lo <= v <= hi:
            raise RunSpecError(f"{name} must be a whole number from {lo} to {hi}, got {v!r}.")
    if spec.batch_size is not None and (not _is_int(spec.batch_size) or not 2 <= spec.batch_size <= 100_000):
        raise RunSpecError(
            f"batch_size must be empty (automatic) or a whole number from 2 to 100000, got {spec.batch_size!r}."
        )
    try:
        lr, vf = float(spec.learning_rate), float(spec.validation_fraction)
    except (TypeError, ValueError):
        raise RunSpecError("learning_rate and validation_fraction must be numbers.") from None
    if not 0 < lr < 1:
        raise RunSpecError(f"learning_rate must be between 0 and 1, got {spec.learning_rate!r}.")
    if not 0 < vf < 0.5:
        raise RunSpecError(f"validation_fraction must be between 0 and 0.5, got {spec.validation_fraction!r}.")
    if not _is_int(spec.seed):
        raise RunSpecError(f"seed must be a whole number, got {spec.seed!r}.")
    if spec.num_threads is not None and (not _is_int(spec.num_threads) or spec.num_threads < 1):
        raise RunSpecError(f"num_threads must be a positive whole number, got {spec.num_threads!r}.")


def _check_prior(prior: Optional[list]) -> None:
    if prior is None:
        return
    try:
        Prior.from_spec(prior)
    except PriorSpecError as err:
        raise RunSpecError(f"The RunSpec's prior is not valid: {err}") from None
    except (TypeError, ValueError, OverflowError, RecursionError) as err:
        raise RunSpecError(f"The RunSpec's prior is not valid ({str(err)[:160]}).") from None


def _check_vector(key: str, value: Any) -> None:
    if value is None:
        return
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise RunSpecError(f"The RunSpec's {key} must be a list of numbers.") from None
    if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all():
        raise RunSpecError(f"The RunSpec's {key} must be a non-empty list of finite numbers.")

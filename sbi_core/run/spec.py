"""RunSpec: the complete, JSON-serialisable description of one inference run.

Same spec (including ``seed``) => same result. The spec is what the run store
keeps, what a URL or a file shares, and what ``python -m sbi_core spec.json``
re-runs headless.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Optional

import numpy as np

from sbi_core.errors import RunSpecError
from sbi_core.methods.catalogue import method_info, method_names
from sbi_core.run.json_text import MAX_JSON_DEPTH, check_json_depth, json_depth
from sbi_core.run.link import spec_dict_from_query, spec_to_query
from sbi_core.stats.shapes import EMBEDDING_CHOICES, KINDS, DataShape, DataShapeError
from sbi_core.stats.prior_spec import MAX_MAGNITUDE, PRIOR_BOUNDS, PriorSpecError, check_prior_spec
from sbi_core.threads import machine_cores

__all__ = ["RunSpec", "RunSpecError", "METHODS", "ESTIMATORS", "EMBEDDINGS", "Bound", "BOUNDS", "PRIOR_BOUNDS", "machine_cores",
           "MAX_JSON_DEPTH", "json_depth", "check_json_depth"]

METHODS = method_names()  # from the method catalogue, in the order pages offer them
ESTIMATORS = ("nsf", "maf")
# the learned summary of the data (sbi_core.nn.embeddings): "auto" picks by the model's data shape
# (a vector: none; a series: cnn1d; an image: cnn2d; repeated trials: set); "none": the data as it is;
# "handmade": a built-in model's own summary statistics (refused when the run starts for a model without them)
EMBEDDINGS = EMBEDDING_CHOICES


@dataclass(frozen=True)
class Bound:
    """What one RunSpec setting accepts: the row of :data:`BOUNDS` that validation, the Train
    form's fields and every error message read.

    kind: ``"int"`` (a whole number, never a bool), ``"float"`` (a finite number strictly
        between ``lo`` and ``hi``), ``"choice"`` (one of ``choices``), ``"text"`` (a string of
        at most ``hi`` characters), ``"numbers"`` (a list of ``lo`` to ``hi`` finite numbers of
        magnitude at most :data:`MAX_MAGNITUDE`), ``"prior"`` (a prior spec of ``lo`` to ``hi``
        parameters, see :data:`PRIOR_BOUNDS`) or ``"simulator"`` (a reference, see
        :attr:`RunSpec.simulator_ref`).
    lo, hi: the range (inclusive for whole numbers and lengths, exclusive for ``float``).
        ``hi`` may be a function (``num_threads``: this machine's cores), read when checked.
    meaning: what the setting does, in words.
    optional: what ``None`` means, if the setting may be ``None`` (``""``: it may not).
    form: the narrower range the Train form offers a student (``None``: the same range).
    choices: the values a ``choice`` takes (a function, read when checked, where they
        come from a registry).
    """

    kind: str
    lo: Any = None
    hi: Any = None
    meaning: str = ""
    optional: str = ""
    form: Optional[tuple] = None
    choices: Any = None

    @property
    def high(self) -> Any:
        """``hi``, evaluated (a machine's cores are read when asked)."""
        return self.hi() if callable(self.hi) else self.hi

    @property
    def options(self) -> tuple:
        """``choices``, evaluated."""
        return tuple(self.choices() if callable(self.choices) else self.choices or ())

    @property
    def form_range(self) -> tuple:
        """The Train form's range: ``form``, else the whole range."""
        return self.form if self.form is not None else (self.lo, self.high)

    def range_text(self) -> str:
        """The accepted values in words, as every message about this setting writes them."""
        if self.kind == "int":
            text = f"a whole number from {self.lo:,} to {self.high:,}"
        elif self.kind == "float":
            text = f"a number greater than {self.lo:g} and less than {self.hi:g}"
        elif self.kind == "choice":
            text = "one of " + ", ".join(self.options)
        elif self.kind == "text":
            text = f"text of at most {self.hi:,} characters"
        elif self.kind == "numbers":
            text = (f"a list of {self.lo:,} to {self.hi:,} finite numbers, each between "
                    f"{-MAX_MAGNITUDE:g} and {MAX_MAGNITUDE:g}")
        elif self.kind == "prior":
            text = f"a list of {self.lo:,} to {self.hi:,} parameters, each like " \
                   "{\"name\": \"a\", \"dist\": \"uniform\", \"low\": 0, \"high\": 1}"
        else:
            text = ("a built-in model's name, or a mapping with a 'kind' ('builtin', 'upload' or 'table') "
                    f"of at most {self.hi:,} characters as JSON")
        return f"empty ({self.optional}) or {text}" if self.optional else text


MAX_PARAMETERS = 64  # parameters of a prior (and of a true parameter)
MAX_OBSERVATION = 10_000  # numbers in an observation
MAX_SIMULATOR_CHARS = 10_000_000  # a simulator reference as JSON (a carried file is inside it)

# Every setting of a RunSpec, in one place: RunSpec.validate, the Train form (its ranges and the
# words under its fields) and the error messages all read this table.
BOUNDS: dict[str, Bound] = {
    "simulator": Bound("simulator", hi=MAX_SIMULATOR_CHARS, meaning="the model that simulates data"),
    "prior": Bound("prior", 1, MAX_PARAMETERS, "the prior over the parameters", optional="the model's default"),
    "observation": Bound("numbers", 1, MAX_OBSERVATION, "the observed data the posterior is for",
                         optional="the model's example observation"),
    "true_theta": Bound("numbers", 1, MAX_PARAMETERS, "the parameter the observation was simulated at",
                        optional="not known"),
    "method": Bound("choice", meaning="the inference method", choices=method_names),
    "num_rounds": Bound("int", 1, 50, "rounds of simulation and training (1 for a one-round method)",
                        form=(1, 20)),
    "simulations_per_round": Bound("int", 20, 1_000_000, "simulations in each round", form=(100, 100_000)),
    "density_estimator": Bound("choice", meaning="the normalizing flow", choices=ESTIMATORS),
    "embedding": Bound("choice", meaning="the summary of the data the network learns", choices=EMBEDDINGS),
    "hidden_features": Bound("int", 4, 1024, "width of the flow's networks", form=(8, 512)),
    "num_transforms": Bound("int", 1, 20, "layers of the flow", form=(1, 12)),
    "max_epochs": Bound("int", 1, 10_000, "most training passes over the data in a round", form=(5, 2000)),
    "batch_size": Bound("int", 2, 100_000, "examples per training step", optional="automatic"),
    "learning_rate": Bound("float", 0.0, 1.0, "the optimiser's step size"),
    "validation_fraction": Bound("float", 0.0, 0.5, "share of simulations held out to stop training early"),
    "patience": Bound("int", 1, 10_000, "epochs without a better validation loss before a round stops",
                      form=(2, 200)),
    "num_posterior_samples": Bound("int", 10, 1_000_000, "posterior samples kept per round"),
    "seed": Bound("int", 0, 2**31 - 1, "the seed every random choice of the run derives from"),
    "num_threads": Bound("int", 1, machine_cores, "CPU threads of the run", optional="the server decides"),
    "title": Bound("text", 0, 200, "the run's name in lists"),
}



@dataclass
class RunSpec:
    """What to infer and how.

    simulator: a built-in name (``"two_moons"``) or a dict
        ``{"kind": "builtin", "name": ...}`` / ``{"kind": "upload", "path": ...}`` /
        ``{"kind": "table", "path": ..., "theta_columns": [...], "x_columns": [...]}``.
        A ``path`` is a file of this machine's run store; a spec that travels
        carries the file instead (``"file_name"``, ``"sha256"``, ``"source"``):
        see :func:`sbi_core.uploads.files.portable_spec` and :func:`~sbi_core.uploads.files.admit_spec`.
    prior: a prior spec (list of marginals) or ``None`` for the model's default.
    observation: ``K`` numbers, or ``None`` for the model's default observation.
    true_theta: the parameter the observation was simulated from, if known.
    method: ``"npe"`` (one round on the prior, amortized), ``"snpe"`` (sequential,
        APT) or ``"tsnpe"`` (sequential, truncated-prior proposals).
    num_rounds, simulations_per_round: the simulation budget.
    density_estimator, hidden_features, num_transforms: the flow.
    embedding: the summary of the data learnt with it (:data:`EMBEDDINGS`; ``"auto"`` by the
        model's data shape, ``"none"``: the numbers as they are, ``"handmade"``: a built-in
        model's own summary statistics).
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
    embedding: str = "auto"
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

        Checks every setting's type and range against its row of :data:`BOUNDS`
        (the one table of what each setting accepts), the method's rules (a
        one-round method has ``num_rounds == 1``), the shape of the simulator
        reference, the prior spec (its numbers against :data:`PRIOR_BOUNDS`),
        and that the observation and true parameter are short lists of finite
        numbers. Every refusal is a :class:`RunSpecError` naming the setting
        (``err.field``) and what it accepts. What a simulator reference
        *points to* (a built-in that exists, an upload of this server) is
        checked where a spec arrives from outside: :func:`sbi_core.uploads.files.admit_spec`.
        """
        for name in BOUNDS:  # every setting against its row of the one table, in field order
            _check_field(name, getattr(self, name))
        if not method_info(self.method).sequential and self.num_rounds != 1:
            raise RunSpecError(f"{method_info(self.method).title} trains in one round: set num_rounds to 1.",
                               field="num_rounds")
        if (self.prior is not None and self.true_theta is not None
                and len(self.true_theta) != len(self.prior)):
            n = len(self.prior)
            raise RunSpecError(f"true_theta has {len(self.true_theta)} numbers but the prior has {n} "
                               f"parameter{'s' if n != 1 else ''}: give one number per parameter.",
                               field="true_theta")

    @property
    def rounds(self) -> int:
        """How many rounds this spec's run has (1 for a one-round method, else ``num_rounds``)."""
        return method_info(self.method).rounds(self.num_rounds)

    @property
    def is_sequential(self) -> bool:
        """Whether the method refines its posterior at one observation, round after round."""
        return method_info(self.method).sequential

    @classmethod
    def demo(cls) -> "RunSpec":
        """The guided demo: two moons, 4 sequential rounds of 150 simulations.

        Small rounds make the story visible: round 1's cloud is broad and each
        later round tightens it around the two crescents. Measured by the prior
        mass of the 90 % region (:mod:`sbi_core.stats.concentration`, one torch
        thread): 25 % after round 1 and 0.8 % after round 4 at this seed. The
        story depends on the seed (seed 1: 16 % to 1.2 %; seed 2: round 1
        already at 3.7 %), which is why the demo fixes it; with 250 per round
        round 1 was already on the crescents (1.5 %) and the rounds hardly
        changed it. Round 1 takes about 2 s (the first cloud a class waits for)."""
        return cls(
            simulator="two_moons",
            method="snpe",
            num_rounds=4,
            simulations_per_round=150,
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
        raise RunSpecError(f"simulator must be a built-in name or a dict with 'kind', got {self.simulator!r:.80}.",
                           field="simulator")

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
            raise RunSpecError(f"Unknown RunSpec setting(s): {', '.join(map(str, unknown))[:300]}.",
                               field=str(unknown[0]))
        try:
            return cls(**data)
        except TypeError as err:
            raise RunSpecError(str(err)) from None

    def to_query(self) -> str:
        """A short, URL-safe, versioned string of every field (the ``?spec=`` of a shared link).

        See :mod:`sbi_core.run.link` for the format; ``RunSpec.from_query(spec.to_query()) == spec``.
        """
        return spec_to_query(self.to_dict())

    @classmethod
    def from_query(cls, query: str) -> "RunSpec":
        """The RunSpec of a :meth:`to_query` string.

        Raises:
            RunSpecError: the link is empty, cut short, edited, from a newer
                version, or holds settings that are not valid (the message says which).
                A decoded spec is validated like any other; what its simulator
                points to is checked where it arrives (:func:`sbi_core.uploads.files.admit_spec`).
        """
        return cls.from_dict(spec_dict_from_query(query))

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", "replace")
        check_json_depth(text, "The RunSpec")
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as err:
            raise RunSpecError(f"The RunSpec is not valid JSON: {err}.") from None
        return cls.from_dict(data)


# ---- the checks behind RunSpec.validate -------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _refuse(name: str, value: Any, problem: str = "") -> RunSpecError:
    """The error for setting ``name``: what it accepts (from :data:`BOUNDS`) and what it got."""
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return RunSpecError(f"{name} must be {BOUNDS[name].range_text()}, got {shown}{problem}.", field=name)


def _check_field(name: str, value: Any) -> None:
    """Check one setting against its row of :data:`BOUNDS` (raises :class:`RunSpecError` naming it)."""
    b = BOUNDS[name]
    if value is None and b.optional:
        return
    if b.kind == "int":
        if not _is_int(value) or not b.lo <= value <= b.high:
            raise _refuse(name, value)
    elif b.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _refuse(name, value)
        try:
            v = float(value)
        except OverflowError:  # an integer beyond float range
            raise _refuse(name, value) from None
        if not (math.isfinite(v) and b.lo < v < b.hi):
            raise _refuse(name, value)
    elif b.kind == "choice":
        if not isinstance(value, str) or value not in b.options:
            raise _refuse(name, value)
    elif b.kind == "text":
        if not isinstance(value, str) or len(value) > b.hi:
            raise _refuse(name, value)
    elif b.kind == "numbers":
        _check_numbers_list(name, value)
    elif b.kind == "prior":
        _check_prior(value)
    elif b.kind == "simulator":
        _check_simulator(value)


def _check_numbers_list(name: str, value: Any) -> None:
    b = BOUNDS[name]
    if not isinstance(value, (list, tuple)) or not b.lo <= len(value) <= b.hi:
        raise _refuse(name, value)
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        raise _refuse(name, value, " (every entry must be a number)")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise _refuse(name, value, " (every entry must be a number)") from None
    if not np.isfinite(arr).all() or (np.abs(arr) > MAX_MAGNITUDE).any():
        raise _refuse(name, value)


def _check_simulator(value: Any) -> None:
    if isinstance(value, str):
        if not 0 < len(value) <= 200:
            raise _refuse("simulator", value)
        return
    if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
        raise RunSpecError(f"simulator must be a built-in name or a dict with 'kind', got {value!r:.80}.",
                           field="simulator")
    try:
        size = len(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        raise _refuse("simulator", value, " (it is not plain JSON)") from None
    if size > MAX_SIMULATOR_CHARS:
        raise _refuse("simulator", value)
    if value.get("data_shape") is not None and value["data_shape"] not in KINDS:
        try:
            DataShape.from_spec(value["data_shape"])
        except DataShapeError as err:
            raise RunSpecError(f"The simulator's data_shape is not valid: {err}", field="simulator") from None


def _check_prior(prior: Optional[list]) -> None:
    if prior is None:
        return
    b = BOUNDS["prior"]
    if not isinstance(prior, list) or not b.lo <= len(prior) <= b.hi:
        raise _refuse("prior", prior)
    try:
        check_prior_spec(prior)
    except PriorSpecError as err:
        raise RunSpecError(f"The RunSpec's prior is not valid: {err}", field="prior") from None
    except (TypeError, ValueError, OverflowError, RecursionError) as err:
        raise RunSpecError(f"The RunSpec's prior is not valid ({str(err)[:160]}).", field="prior") from None


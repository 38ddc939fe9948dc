"""A :class:`Simulator` built from an uploaded Python file.

The file is plain Python with one required function and two optional names::

    \"\"\"Docstring: shown as the model's description.\"\"\"
    PRIOR = [{"name": "k", "dist": "uniform", "low": 0, "high": 2}]  # Prior.from_spec format
    OBSERVATION = [0.3, 1.2]                                         # the data to explain
    DATA_SHAPE = "vector"   # optional: "series", "image", "trials" (or {"kind": ..., "shape": [...]})

    def simulate(theta):   # numpy (n, d) -> (n, k); or per sample (d,) -> (k,)
        ...

``simulate`` may also return one series ``(n, T)`` / ``(n, C, T)``, images
``(n, H, W)`` / ``(n, C, H, W)`` or repeated trials ``(n, M, D)`` (per sample:
without the ``n``). ``DATA_SHAPE`` says which (:class:`~sbi_core.stats.shapes.DataShape`);
without it a simulation with more than one dimension gets :func:`~sbi_core.stats.shapes.guess_shape`'s
reading and a flat one is a vector, and the simulator's ``data_shape_declared`` is False
so that a page can ask the person to confirm. The numbers are kept flat (``K`` per
simulation, C order) and folded back by the data shape.

The code never runs in this process: :func:`load_simulator` starts a
persistent, sandboxed child (:mod:`sbi_core.sandbox.runner`) that runs the file,
reports ``PRIOR``/``OBSERVATION``, and is probed with a few prior draws to
learn the output size ``K`` and whether ``simulate`` takes a batch or one
parameter set at a time; a simulator whose test simulations are all NaN or
infinite is refused. Every failure is a :class:`SimulatorError` whose
message a non-programmer can act on.

Randomness: before each batch (batched ``simulate``) or each row (per-sample
``simulate``) the child seeds numpy's global RNG (``np.random.*``) and the
``random`` module from a number drawn from the torch generator passed to
``simulate_fn``, so equal seeds give equal simulations. Code that makes its own
unseeded ``np.random.default_rng()`` is not reproducible.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from sbi_core.sandbox.runner import (
    Limits,
    SandboxRunner,
    SimulatorError,
    sandbox_mode,
    sandbox_mode_description,
)
from sbi_core.simulators.base import Simulator
from sbi_core.stats.priors import Prior, PriorSpecError
from sbi_core.stats.shapes import DataShape, DataShapeError, guess_shape

__all__ = [
    "load_simulator",
    "SimulatorError",
    "UploadedSimulateFn",
    "sandbox_mode",
    "sandbox_mode_description",
    "MAX_UPLOAD_BYTES",
]

MAX_UPLOAD_BYTES = 1024 * 1024
BATCH_ROWS = 1000  # rows per message for a batched simulate (fixes the seeding, so it is constant)
SEED_HIGH = 2**63 - 1
PROBE_SEED = 0
MAX_OUTPUTS = 100_000  # numbers per simulation
FINITE_CHECK_ROWS = 20  # test simulations of which at least one must be finite


class UploadedSimulateFn:
    """``simulate_fn(theta (N, D), generator) -> (N, K)`` backed by a sandboxed child.

    Attributes:
        runner: the :class:`~sbi_core.sandbox.runner.SandboxRunner` (its ``mode`` is
            "sandboxed" or "trusted").
        call_mode: "batched" or "per-sample".
        k: output size.

    Pickling sends the file's text and settings, not the process: the copy
    starts its own child on first use.
    """

    def __init__(self, runner: SandboxRunner, source: bytes, call_mode: str, k: int, d: int,
                 trusted: Optional[bool], seconds_per_row: float = 0.0):
        self.runner = runner
        self.source = source
        self.call_mode = call_mode
        self.k = k
        self.d = d
        self.trusted = trusted
        self.seconds_per_row = seconds_per_row

    # -- calling -------------------------------------------------------------------
    def __call__(self, theta: Tensor, generator: torch.Generator) -> Tensor:
        arr = torch.as_tensor(theta).detach().to("cpu", torch.float64).numpy()
        n = arr.shape[0]
        if n == 0:
            return torch.zeros((0, self.k))
        base = int(torch.randint(0, SEED_HIGH, (1,), generator=generator))
        parts = []
        for start, stop in self._chunks(n):
            message = {"cmd": "simulate", "mode": self.call_mode, "k": self.k, "seed": base,
                       "index": start if self.call_mode == "per-sample" else start // BATCH_ROWS}
            _, out = self.runner.request(message, arr[start:stop], expect_k=self.k)
            assert out is not None
            parts.append(out)
        return torch.from_numpy(np.concatenate(parts)).to(torch.float32)

    def _chunks(self, n: int) -> list[tuple[int, int]]:
        """Batched: fixed blocks of BATCH_ROWS; per-sample: sized to a quarter of the timeout."""
        if self.call_mode == "batched":
            size = BATCH_ROWS
        else:
            per_row = max(self.seconds_per_row, 1e-6)
            size = int(min(BATCH_ROWS, max(1, 0.25 * self.runner.limits.timeout / per_row)))
        return [(s, min(n, s + size)) for s in range(0, n, size)]

    def close(self) -> None:
        """Stop the child process."""
        self.runner.close()

    @property
    def last_output(self) -> str:
        """What the last call printed (capped at 64 KB)."""
        return self.runner.last_output

    # -- pickling --------------------------------------------------------------------
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        r = self.runner
        return (_restore_fn, (self.source, r.filename, r.limits, self.trusted, self.call_mode,
                              self.k, self.d, self.seconds_per_row))


def _restore_fn(source: bytes, filename: str, limits: Limits, trusted: Optional[bool], call_mode: str,
                k: int, d: int, seconds_per_row: float) -> UploadedSimulateFn:
    runner = SandboxRunner(source, filename, limits, trusted)  # starts lazily, on the first call
    return UploadedSimulateFn(runner, source, call_mode, k, d, trusted, seconds_per_row)


# ---- loading ---------------------------------------------------------------------------
def _read_upload(path: Path) -> bytes:
    """The file's bytes, if it is a Python file of acceptable size.

    Anything not named ``*.py`` is refused unopened: a RunSpec naming
    ``/etc/passwd`` as its simulator must not have that file's first line
    quoted back in a syntax-error message.
    """
    if path.suffix.lower() != ".py":
        raise SimulatorError(f"A simulator file is Python code ending in .py; {path.name} is not, so it was "
                             "not opened. Upload the simulator's .py file.", kind="not_python")
    try:
        size = path.stat().st_size
    except OSError:
        raise SimulatorError(f"The file {path.name} was not found.", kind="missing_file") from None
    if size > MAX_UPLOAD_BYTES:
        raise SimulatorError(
            f"The file {path.name} is {size / 1e6:.1f} MB; a simulator file may be at most "
            f"{MAX_UPLOAD_BYTES // 1024} KB of code.", kind="too_large")
    return path.read_bytes()


def _title(filename: str) -> str:
    stem = Path(filename).stem
    words = re.sub(r"[_\-]+", " ", stem).strip()
    return (words[:1].upper() + words[1:]) if words else "Uploaded simulator"


def _resolve_prior(explicit: Union[Prior, Sequence[dict], None], hello: dict[str, Any]) -> Prior:
    """The explicit prior if given, else the file's PRIOR; a SimulatorError otherwise."""
    if explicit is not None:
        try:
            return Prior.from_spec(explicit)
        except PriorSpecError as exc:
            raise SimulatorError(f"The prior is not valid: {exc}", kind="prior") from None
    if "prior_error" in hello:
        raise SimulatorError(
            "PRIOR in the file must be a list of plain entries like "
            "{'name': 'k', 'dist': 'uniform', 'low': 0, 'high': 2} "
            f"({hello['prior_error']}).", kind="prior")
    if "prior" not in hello:
        raise SimulatorError("The file has no PRIOR; set one in the prior editor.", kind="no_prior")
    try:
        return Prior.from_spec(hello["prior"])
    except PriorSpecError as exc:
        raise SimulatorError(f"PRIOR in the file is not valid: {exc}", kind="prior") from None


def _observation(hello: dict[str, Any], shape: DataShape) -> Optional[Tensor]:
    """OBSERVATION as a flat ``(K,)`` tensor (in the data's shape, or flat; trials may be fewer
    than simulated), None when absent; a SimulatorError when unusable."""
    if "observation_error" in hello:
        raise SimulatorError(
            f"OBSERVATION in the file must be a list of numbers ({hello['observation_error']}).",
            kind="observation")
    if "observation" not in hello:
        return None
    try:
        obs = np.asarray(hello["observation"], dtype=np.float64)
    except (TypeError, ValueError):
        raise SimulatorError("OBSERVATION in the file must be a list of numbers.", kind="observation") from None
    if shape.is_vector and obs.ndim == 2 and obs.shape[0] == 1:
        obs = obs[0]
    if obs.ndim == 0:
        obs = obs.reshape(1)
    if shape.is_vector and obs.ndim != 1:
        raise SimulatorError(
            f"OBSERVATION in the file must be one list of numbers, got shape {obs.shape}.", kind="observation")
    if shape.kind != "trials" and not np.all(np.isfinite(obs)):
        raise SimulatorError("OBSERVATION in the file contains NaN or infinite values.", kind="observation")
    if shape.is_vector and obs.shape[0] != shape.size:
        raise SimulatorError(
            f"OBSERVATION has {obs.shape[0]} number{'s' if obs.shape[0] != 1 else ''} "
            f"but simulate returns {shape.size}.", kind="observation")
    try:
        flat = shape.observation(obs)
    except DataShapeError as err:
        raise SimulatorError(f"OBSERVATION in the file does not fit: {err}", kind="observation") from None
    return torch.from_numpy(flat).to(torch.float32)


def _data_shape(declared: Any, sample_shape: Optional[Sequence[int]], k: int) -> tuple[DataShape, bool]:
    """The data shape of an upload and whether the file (or the caller) declared it.

    ``declared``: ``DATA_SHAPE`` of the file or the caller's override (a kind, a dict, a DataShape);
    ``sample_shape``: one simulation's array shape as ``simulate`` returned it (``None``: flat ``(K,)``).
    """
    shape_of_output = tuple(sample_shape) if sample_shape else (k,)
    if declared is None:
        return (guess_shape(shape_of_output) if len(shape_of_output) > 1 else DataShape.vector(k)), False
    try:
        if isinstance(declared, str) and declared in ("series", "image", "trials"):
            if declared != "series" and len(shape_of_output) == 1:
                raise DataShapeError(
                    f"DATA_SHAPE = {declared!r} needs the {'height and width' if declared == 'image' else 'trial count and width'}: "
                    f"return each simulation as a 2-D array, or write DATA_SHAPE = {{'kind': {declared!r}, 'shape': [...]}}.")
            return DataShape.of(declared, shape_of_output), True
        return DataShape.from_spec(declared, size=k), True
    except DataShapeError as err:
        raise SimulatorError(f"DATA_SHAPE does not fit what simulate returns ({k:,} numbers per simulation"
                             + (f", shape {shape_of_output}" if len(shape_of_output) > 1 else "")
                             + f"): {err}", kind="data_shape") from None


def _probe(runner: SandboxRunner, prior: Prior) -> dict[str, Any]:
    n = prior.dim + 3  # two sizes, n-1 and n, both different from D
    g = torch.Generator().manual_seed(PROBE_SEED)
    theta = prior.sample((n,), generator=g).to(torch.float64).numpy()
    reply, _ = runner.request({"cmd": "probe"}, theta, phase="probe")
    mode, k = reply.get("mode"), reply.get("k")
    if mode not in ("batched", "per-sample") or not isinstance(k, int) or k < 0:
        raise SimulatorError("The simulator sent a garbled reply to its first test.", kind="protocol")
    if not 1 <= k <= MAX_OUTPUTS:
        raise SimulatorError(
            f"simulate returns {k} numbers per simulation; it must return between 1 and {MAX_OUTPUTS}.",
            kind="shape")
    return reply


def _seconds_per_row(probe: dict[str, Any]) -> float:
    try:
        return max(float(probe.get("seconds", 0.0)), 0.0) / max(int(probe.get("rows", 1)), 1)
    except (TypeError, ValueError, OverflowError):
        return 0.0


def _check_some_finite(fn: UploadedSimulateFn, prior: Prior, timeout: float) -> None:
    """Refuse a simulator whose test simulations are all NaN or infinite: nothing of it could be trained on.

    Up to :data:`FINITE_CHECK_ROWS` prior draws (fewer for a slow per-sample ``simulate``: a quarter of
    the timeout's worth), with fixed seeds. Some NaN rows are fine (they are left out and counted); all
    of them means a bug or a prior the code cannot handle, better said now than after a failed run.
    """
    per_row = max(fn.seconds_per_row, 1e-6)
    n = int(min(FINITE_CHECK_ROWS, max(2, 0.25 * timeout / per_row)))
    theta = prior.sample((n,), generator=torch.Generator().manual_seed(PROBE_SEED + 1))
    x = fn(theta, torch.Generator().manual_seed(PROBE_SEED))
    if not bool(torch.isfinite(x).all(dim=1).any()):
        raise SimulatorError(
            f"simulate returned NaN or infinity for all {n} test simulations (at draws from the prior), so "
            "there is nothing to train on. Look for a division by zero, a log or square root of a negative "
            "number, or numbers too large for 32-bit floats (about 3e38) in the code; or narrow the prior "
            "to values the code can handle.", kind="all_nan")


def load_simulator(
    path: Union[str, os.PathLike],
    timeout: float = 10.0,
    memory_mb: int = 512,
    trusted: Optional[bool] = None,
    prior: Union[Prior, Sequence[dict], None] = None,
    data_shape: Any = None,
) -> Simulator:
    """Load an uploaded simulator file into a :class:`Simulator`.

    Args:
        path: the ``.py`` file.
        timeout: wall-clock seconds allowed for running the file and for each
            batch of (up to 1000) simulations.
        memory_mb: the child's address-space limit.
        trusted: allow running without the bubblewrap sandbox where it is
            unavailable (default: the ``SBI_TRUSTED_UPLOADS`` environment variable).
        prior: overrides the file's ``PRIOR`` (a :class:`Prior` or its spec).
        data_shape: overrides the file's ``DATA_SHAPE`` (a person's confirmed reading of a guess).

    The returned simulator's ``simulate_fn`` is an :class:`UploadedSimulateFn`
    owning a child process; ``sim.close()`` (or ``sim.simulate_fn.close()``)
    stops it; it is also stopped when garbage-collected and at exit.

    Raises:
        SimulatorError: with a message for the person who wrote the file.
    """
    path = Path(path)
    source = _read_upload(path)
    limits = Limits(timeout=float(timeout), memory_mb=int(memory_mb))
    runner = SandboxRunner(source, path.name, limits, trusted)
    try:
        hello = runner.start()
        prior_obj = _resolve_prior(prior, hello)
        probe = _probe(runner, prior_obj)
        k = int(probe["k"])
        if "data_shape_error" in hello:
            raise SimulatorError(f"DATA_SHAPE in the file must be a kind or a plain mapping "
                                 f"({hello['data_shape_error']}).", kind="data_shape")
        shape, declared = _data_shape(data_shape if data_shape is not None else hello.get("data_shape"),
                                      probe.get("sample_shape"), k)
        observation = _observation(hello, shape)
        per_row = _seconds_per_row(probe)
        fn = UploadedSimulateFn(runner, source, probe["mode"], k, prior_obj.dim, trusted, per_row)
        _check_some_finite(fn, prior_obj, limits.timeout)
    except BaseException:
        runner.close()
        raise
    doc = hello.get("doc") or f"A simulator uploaded as {path.name}."
    sim = Simulator(
        name=f"upload:{path.name}",
        title=_title(path.name),
        description=doc,
        equations="",
        param_names=prior_obj.names,
        param_units=[""] * prior_obj.dim,
        obs_names=[f"x{i + 1}" for i in range(k)] if shape.is_vector else shape.value_names(),
        obs_units=[""] * k,
        prior=prior_obj,
        true_theta=prior_obj.mean,
        simulate_fn=fn,
        tags=("upload",),
        data_shape=shape,
    )
    sim.data_shape_declared = declared  # type: ignore[attr-defined]
    if observation is not None:
        sim._default_observation = observation
    sim.close = fn.close  # type: ignore[attr-defined]
    return sim

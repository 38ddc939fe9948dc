"""A run's checkpoint after a finished round: what the loop needs to go on from there.

After round ``r`` the run loop's whole state is

* the estimator (its pooled training pairs with their proposals, its trained
  network and its own training random stream),
* round ``r``'s :class:`~sbi_core.run.loop.RoundResult` (its posterior is where
  round ``r + 1`` proposes from),
* the states of the run's named random streams (``theta``, ``posterior``,
  ``proposal``) and of the simulator's stream (``simulate``).

:class:`Checkpoint` holds them; :func:`save_checkpoint` writes it as
``round_<r>/checkpoint.pt`` next to the round's other artifacts (one
``torch.save``, written to a temporary name and renamed, so a killed worker
leaves either the whole file or none). Resuming a run from it
(``run_sequential(..., resume=checkpoint)``) continues with round ``r + 1`` and
draws exactly what the uninterrupted run would have drawn: same seed, same
rounds, bit for bit (``tests/test_resume.py`` checks that).

The file is a pickle: only this app's own workers write it, into the run
store, and no path that comes from a client can name it
(:func:`sbi_core.store.artifacts` accepts run ids only).
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["Checkpoint", "CHECKPOINT_FILE", "MOVED_MODULES", "save_checkpoint", "load_checkpoint",
           "checkpoint_rounds"]

CHECKPOINT_FILE = "checkpoint.pt"
_LOOP_STREAMS = ("g_theta", "g_post", "g_proposal")


@dataclass
class Checkpoint:
    """The loop's state after round ``round`` (0-based).

    generators: ``{stream: ByteTensor state}`` of the loop's streams and, under
    ``"simulate"``, the simulator's stream (absent for a table of simulations).
    """

    round: int
    estimator: Any
    last: Any  # the RoundResult of ``round`` (without a checkpoint of its own)
    generators: dict[str, Tensor]

    @classmethod
    def of(cls, loop: Any, round_result: Any) -> "Checkpoint":
        """Capture ``loop`` (a :class:`sbi_core.run.loop._Loop`) right after ``round_result`` finished."""
        states = {name: getattr(loop, name).get_state() for name in _LOOP_STREAMS}
        generator = getattr(loop.source, "generator", None)
        if generator is not None:
            states["simulate"] = generator.get_state()
        return cls(round=int(round_result.index), estimator=loop.estimator,
                   last=replace(round_result, checkpoint=None), generators=states)

    def to_bytes(self) -> bytes:
        """The checkpoint frozen now (the live estimator goes on training after this)."""
        import torch  # deferred: listing checkpoints (resume, the job manager) needs no torch

        buf = io.BytesIO()
        torch.save(self, buf)
        return buf.getvalue()

    @staticmethod
    def from_bytes(data: bytes) -> "Checkpoint":
        """The checkpoint of :meth:`to_bytes`, also one pickled before sbi_core's modules moved
        (see :data:`MOVED_MODULES`)."""
        import torch  # deferred: listing checkpoints (resume, the job manager) needs no torch

        return torch.load(io.BytesIO(data), weights_only=False, pickle_module=_MovedModulesPickle)

    def restore(self, loop: Any) -> None:
        """Put this state into a freshly built ``loop`` of the same spec."""
        loop.estimator = self.estimator
        for name in _LOOP_STREAMS:
            getattr(loop, name).set_state(self.generators[name])
        generator = getattr(loop.source, "generator", None)
        if generator is not None and "simulate" in self.generators:
            generator.set_state(self.generators["simulate"])


# Where the modules of sbi_core 0.1 went when it was regrouped into packages (docs/architecture.md). A
# checkpoint is a pickle, which names the module of every object in it; one written before the move
# names the old module, and unpickling it looks the class up under the new one.
MOVED_MODULES: dict[str, str] = {
    "sbi_core.priors": "sbi_core.stats.priors",
    "sbi_core.seeds": "sbi_core.stats.seeds",
    "sbi_core.rejection": "sbi_core.stats.rejection",
    "sbi_core.concentration": "sbi_core.stats.concentration",
    "sbi_core.checks.bands": "sbi_core.stats.bands",
    "sbi_core.mcmc": "sbi_core.stats.mcmc",
    "sbi_core.mcmc.diagnostics": "sbi_core.stats.mcmc.diagnostics",
    "sbi_core.mcmc.init": "sbi_core.stats.mcmc.init",
    "sbi_core.mcmc.jump": "sbi_core.stats.mcmc.jump",
    "sbi_core.mcmc.sample": "sbi_core.stats.mcmc.sample",
    "sbi_core.mcmc.slice": "sbi_core.stats.mcmc.slice",
    "sbi_core.flows": "sbi_core.nn.flows",
    "sbi_core.ratio_net": "sbi_core.nn.ratio_net",
    "sbi_core.training": "sbi_core.nn.training",
    "sbi_core.posterior": "sbi_core.posteriors.posterior",
    "sbi_core.posterior_base": "sbi_core.posteriors.base",
    "sbi_core.mcmc_posterior": "sbi_core.posteriors.mcmc",
    "sbi_core.particle_posterior": "sbi_core.posteriors.particles",
    "sbi_core.posterior_files": "sbi_core.posteriors.files",
    "sbi_core.abc_by_hand": "sbi_core.methods.abc.by_hand",
    "sbi_core.abc_distance": "sbi_core.methods.abc.distance",
    "sbi_core.methods.rejection_abc": "sbi_core.methods.abc.rejection",
    "sbi_core.methods.smc_abc": "sbi_core.methods.abc.smc",
    "sbi_core.simulation": "sbi_core.simulators.sources",
    "sbi_core.fanout": "sbi_core.simulators.fanout",
    "sbi_core.prior_predictive": "sbi_core.simulators.prior_predictive",
    "sbi_core.sandbox": "sbi_core.sandbox.runner",
    "sbi_core.sandbox_child": "sbi_core.sandbox.child",
    "sbi_core.spec": "sbi_core.run.spec",
    "sbi_core.spec_query": "sbi_core.run.link",
    "sbi_core.runs": "sbi_core.run.loop",
    "sbi_core.checkpoint": "sbi_core.run.checkpoint",
    "sbi_core.cost": "sbi_core.run.cost",
    "sbi_core.compare": "sbi_core.run.compare",
    "sbi_core.tables.json_specs": "sbi_core.run.json_files",
    "sbi_core.store": "sbi_core.store.runs",
    "sbi_core.store_db": "sbi_core.store.db",
    "sbi_core.store_errors": "sbi_core.store.errors",
    "sbi_core.artifacts": "sbi_core.store.artifacts",
    "sbi_core.check_records": "sbi_core.store.check_records",
    "sbi_core.dask_checks": "sbi_core.jobs.dask_checks",
    "sbi_core.jobs": "sbi_core.jobs.manager",
    "sbi_core.worker": "sbi_core.jobs.worker",
    "sbi_core.process_executor": "sbi_core.jobs.process_executor",
    "sbi_core.dask_executor": "sbi_core.jobs.dask_executor",
    "sbi_core.resume": "sbi_core.jobs.resume",
    "sbi_core.uploads": "sbi_core.uploads.files",
    "sbi_core.upload_quota": "sbi_core.uploads.quota",
}
# names that moved between modules as well: (old module, name) -> new module
MOVED_NAMES: dict[tuple[str, str], str] = {
    ("sbi_core.training", "Cancelled"): "sbi_core.errors",
    ("sbi_core.spec", "RunSpecError"): "sbi_core.errors",
    ("sbi_core.simulators.base", "make_generator"): "sbi_core.stats.seeds",
    ("sbi_core.priors", "PriorSpecError"): "sbi_core.stats.prior_spec",
}


def moved(module: str, name: str) -> str:
    """The module that defines ``name`` now, for a pickle that found it in ``module``."""
    return MOVED_NAMES.get((module, name)) or MOVED_MODULES.get(module, module)


class _MovedModulesPickle:
    """The ``pickle_module`` :func:`torch.load` reads a checkpoint with: :mod:`pickle`, but its
    ``Unpickler`` looks classes up where :func:`moved` says they are now."""

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            return super().find_class(moved(module, name), name)

    load = staticmethod(pickle.load)
    loads = staticmethod(pickle.loads)


def save_checkpoint(round_dir: Path, data: bytes) -> Path:
    """Write a checkpoint's bytes (:meth:`Checkpoint.to_bytes`) into ``round_dir`` atomically."""
    round_dir = Path(round_dir)
    round_dir.mkdir(parents=True, exist_ok=True)
    final = round_dir / CHECKPOINT_FILE
    tmp = round_dir / f".{CHECKPOINT_FILE}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    return final


def load_checkpoint(round_dir: Path) -> Optional[Checkpoint]:
    """The checkpoint saved in ``round_dir``, or None if there is none (or it cannot be read)."""
    path = Path(round_dir) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        return Checkpoint.from_bytes(path.read_bytes())
    except Exception:  # noqa: BLE001 - a damaged or outdated file: resume from an earlier round
        return None


def checkpoint_rounds(store: Any, run_id: str) -> list[int]:
    """Rounds of a stored run with a checkpoint file, ascending."""
    return [r for r in store.rounds_saved(run_id) if (store.round_dir(run_id, r) / CHECKPOINT_FILE).is_file()]

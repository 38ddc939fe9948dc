"""A run's checkpoint after a finished round: what the loop needs to go on from there.

After round ``r`` the run loop's whole state is

* the estimator (its pooled training pairs with their proposals, its trained
  network and its own training random stream),
* round ``r``'s :class:`~sbi_core.runs.RoundResult` (its posterior is where
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
(:func:`sbi_core.artifacts` accepts run ids only).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor

__all__ = ["Checkpoint", "CHECKPOINT_FILE", "save_checkpoint", "load_checkpoint", "checkpoint_rounds"]

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
        """Capture ``loop`` (a :class:`sbi_core.runs._Loop`) right after ``round_result`` finished."""
        states = {name: getattr(loop, name).get_state() for name in _LOOP_STREAMS}
        generator = getattr(loop.source, "generator", None)
        if generator is not None:
            states["simulate"] = generator.get_state()
        return cls(round=int(round_result.index), estimator=loop.estimator,
                   last=replace(round_result, checkpoint=None), generators=states)

    def to_bytes(self) -> bytes:
        """The checkpoint frozen now (the live estimator goes on training after this)."""
        buf = io.BytesIO()
        torch.save(self, buf)
        return buf.getvalue()

    @staticmethod
    def from_bytes(data: bytes) -> "Checkpoint":
        return torch.load(io.BytesIO(data), weights_only=False)

    def restore(self, loop: Any) -> None:
        """Put this state into a freshly built ``loop`` of the same spec."""
        loop.estimator = self.estimator
        for name in _LOOP_STREAMS:
            getattr(loop, name).set_state(self.generators[name])
        generator = getattr(loop.source, "generator", None)
        if generator is not None and "simulate" in self.generators:
            generator.set_state(self.generators["simulate"])


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

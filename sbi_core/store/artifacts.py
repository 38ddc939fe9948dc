"""A run's files: each finished round's posterior and arrays, under ``<root>/artifacts/<run_id>/``.

Layout: ``round_<i>/posterior.pt`` (the trained network), and
``round_<i>/posterior_samples.npy``, ``theta.npy``, ``x.npy``. Every file is
written to a temporary name and renamed, so a reader never sees half a file.
:class:`RunArtifacts` is the part of :class:`~sbi_core.store.runs.RunStore` that
handles them.

A write that the disk refuses (full: ``ENOSPC``/``EDQUOT``; read-only or
forbidden: ``EROFS``/``EACCES``/``EPERM``) raises
:class:`~sbi_core.store.errors.StoreUnavailable` with the store's plain
message, and leaves no temporary file behind (a full disk gets back the space
of the half-written file). Reading never needs the disk to have room.
"""

from __future__ import annotations

import importlib
import math
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from sbi_core.errors import SBIError
from sbi_core.run.ids import is_run_id
from sbi_core.store.errors import FULL, StoreUnavailable, translate_store_errors

__all__ = ["ArtifactMissing", "RunArtifacts"]



def _checked(run_id: str) -> str:
    """``run_id`` if it is one (:func:`~sbi_core.run.ids.is_run_id`): no client text names another folder."""
    if not isinstance(run_id, str) or not is_run_id(run_id):
        raise ValueError(f"not a run id: {run_id!r}")
    return run_id

class ArtifactMissing(SBIError, LookupError):
    """A run has no saved artifact of the kind asked for (e.g. no finished round yet)."""


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


# Below this much free space, a posterior file that failed to write is taken to have met a full disk
# (torch reports a full disk as a RuntimeError "file write failed", without the errno).
_FULL_BELOW_BYTES = 16 * 2**20


@contextmanager
def _removed_on_failure(tmp: Path) -> Iterator[None]:
    """Delete the temporary file ``tmp`` if the block fails (a half-written file never stays behind)."""
    try:
        yield
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with _removed_on_failure(tmp):
        with open(tmp, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)


def _free_bytes(folder: Path) -> float:
    """Free space for this user on ``folder``'s disk (infinite if it cannot be told)."""
    try:
        return float(shutil.disk_usage(folder).free)
    except OSError:
        return math.inf


class RunArtifacts:
    """Artifact methods of the run store; needs ``artifacts_root`` (a folder) and ``events()``."""

    artifacts_root: Path

    def _store_folder(self) -> Path:
        """The store's folder, as its messages name it (the store's ``root``, else the one above ``artifacts/``)."""
        return Path(getattr(self, "root", self.artifacts_root.parent))

    def artifact_dir(self, run_id: str) -> Path:
        """``<root>/artifacts/<run_id>/``, created if needed (StoreUnavailable if the disk refuses)."""
        path = self.artifacts_root / _checked(run_id)
        with translate_store_errors(self._store_folder()):
            path.mkdir(parents=True, exist_ok=True)
        return path

    def round_dir(self, run_id: str, index: int) -> Path:
        """``artifacts/<run_id>/round_<index>/`` (not created)."""
        return self.artifacts_root / _checked(run_id) / f"round_{int(index)}"

    def save_round(self, run_id: str, round_result: Any) -> Path:
        """Save one finished round: ``posterior.pt`` and ``posterior_samples``/``theta``/``x`` ``.npy``.

        ``round_result`` has ``index``, ``posterior`` (with ``save(path)``),
        ``theta``, ``x`` and ``posterior_samples``. Returns the round's folder.
        A disk that is full or may not be written raises
        :class:`~sbi_core.store.errors.StoreUnavailable`.
        """
        index = int(round_result.index)
        final = self.round_dir(run_id, index)
        self.artifact_dir(run_id)
        with translate_store_errors(self._store_folder()):
            final.mkdir(exist_ok=True)
            posterior = getattr(round_result, "posterior", None)
            if posterior is not None:
                self._save_posterior(posterior, final)
            for name in ("posterior_samples", "theta", "x"):
                value = getattr(round_result, name, None)
                if value is not None:
                    _save_npy_atomic(final / f"{name}.npy", _to_numpy(value))
        return final

    def _save_posterior(self, posterior: Any, folder: Path) -> None:
        """``posterior.save`` to ``folder/posterior.pt`` through a temporary name.

        torch reports a full disk as a RuntimeError without an errno: a failed save
        with (almost) no free space left on the disk is taken as a full disk.
        """
        tmp = folder / f"posterior.pt.tmp{os.getpid()}"
        with _removed_on_failure(tmp):
            try:
                posterior.save(tmp)
            except OSError:
                raise  # translated by the caller, errno and all
            except Exception as err:
                if _free_bytes(folder) < _FULL_BELOW_BYTES:  # measured before the half-written file goes
                    raise StoreUnavailable(self._store_folder(), FULL) from err
                raise
            os.replace(tmp, folder / "posterior.pt")

    def rounds_saved(self, run_id: str) -> list[int]:
        """Indices of the rounds with saved artifacts, ascending."""
        base = self.artifacts_root / run_id
        if not base.is_dir():
            return []
        out = []
        for p in base.iterdir():
            if p.is_dir() and p.name.startswith("round_"):
                try:
                    out.append(int(p.name[len("round_") :]))
                except ValueError:
                    pass
        return sorted(out)

    def posterior_path(self, run_id: str, round: int = -1) -> Path:
        """The saved posterior of round ``round`` (negative counts from the last)."""
        rounds = [i for i in self.rounds_saved(run_id) if (self.round_dir(run_id, i) / "posterior.pt").is_file()]
        if not rounds:
            raise ArtifactMissing("This run has no trained posterior yet (no round has finished).")
        if round < 0:
            if -round > len(rounds):
                raise ArtifactMissing(f"This run has only {len(rounds)} saved round(s).")
            index = rounds[round]
        else:
            if round not in rounds:
                raise ArtifactMissing(f"Round {round + 1} of this run has no saved posterior.")
            index = round
        return self.round_dir(run_id, index) / "posterior.pt"

    def load_posterior(self, run_id: str, round: int = -1) -> Any:
        """The :class:`~sbi_core.posteriors.posterior.Posterior` of a round (default: the last saved one)."""
        from sbi_core.posteriors.files import load_posterior  # torch: deferred, the store itself loads none

        importlib.import_module("sbi_core.simulators")  # registers the built-in models' hand-made summaries
        return load_posterior(self.posterior_path(run_id, round))

    def round_samples(self, run_id: str) -> list[np.ndarray]:
        """Posterior samples at the observation, one ``(m, D)`` array per finished round, in order.

        Taken from the saved ``.npy`` where present, else from the ``round`` events.
        """
        by_round: dict[int, np.ndarray] = {}
        for _, ev in self.events(run_id, types=("round",)):
            samples = ev.get("posterior_samples")
            idx = ev.get("round")
            if samples is not None and isinstance(idx, int):
                arr = np.asarray(samples, dtype=float)
                by_round[idx] = arr.reshape(len(arr), -1) if arr.size else arr.reshape(0, 0)
        for idx in self.rounds_saved(run_id):
            path = self.round_dir(run_id, idx) / "posterior_samples.npy"
            if path.is_file():
                try:
                    by_round[idx] = np.load(path, allow_pickle=False)
                except (OSError, ValueError):
                    pass  # being written or damaged: the event copy (if any) stands
        return [by_round[i] for i in sorted(by_round)]

    def round_parameters(self, run_id: str, max_rows: int = 1000) -> list[np.ndarray]:
        """The parameters each saved round simulated (``theta.npy``), in round order.

        At most ``max_rows`` evenly spaced rows per round (the draws are in
        random order, so every stride is a fair subsample); a round whose file
        is missing or being written is left out.
        """
        out = []
        for idx in self.rounds_saved(run_id):
            path = self.round_dir(run_id, idx) / "theta.npy"
            try:
                theta = np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                continue
            out.append(theta[:: max(1, math.ceil(len(theta) / max_rows))])
        return out

    def round_simulations(self, run_id: str) -> list[np.ndarray]:
        """The simulations ``x (N_r, K)`` each saved round trained on (``x.npy``; finite rows), in round order.

        A round whose file is missing or being written is left out.
        """
        out = []
        for idx in self.rounds_saved(run_id):
            try:
                x = np.load(self.round_dir(run_id, idx) / "x.npy", allow_pickle=False)
            except (OSError, ValueError):
                continue
            out.append(x[np.isfinite(x).all(1)] if x.ndim == 2 else x)
        return out

"""Going on with a run that stopped: Resume after a failure, and recovery when the app restarts.

A run's finished rounds are kept in the store with their checkpoints
(:mod:`sbi_core.run.checkpoint`). A run can go on from round ``k + 1`` when round
``k`` is *finished*: its ``round`` event is in the log and its checkpoint on
disk (a worker killed between the two leaves round ``k`` unfinished, and the
run goes on from ``k``). With no finished round it starts again from round 1.

* :func:`resume_run`: a ``failed`` or ``cancelled`` run (a SIGKILLed worker, a
  crash, a cancel) is reopened in place (:meth:`RunStore.reopen_run`: same id,
  same link, its finished rounds untouched) and handed to the executor again.
  The worker loads the checkpoint and draws exactly what the uninterrupted run
  would have drawn.
* :func:`recover_runs`: when the app server starts, runs it had left active
  whose worker or holding process is gone (its local Dask cluster died with it)
  are carried on: a queued run is handed to the executor again; a running one
  is reopened from its last finished round (``reason="restart"``). A run whose
  cancel had been asked is left for the reaper, which marks it cancelled. Runs
  whose worker still lives (worker processes outlive the server; tasks on a
  cluster of your own go on) are left alone.
"""

from __future__ import annotations

from typing import Any, Optional

from sbi_core.errors import SBIError
from sbi_core.jobs.executor import RUN
from sbi_core.run.checkpoint import checkpoint_rounds

__all__ = ["finished_rounds", "resume_from", "why_not_resumable", "resume_run", "recover_runs", "RESUMABLE"]

RESUMABLE = ("failed", "cancelled")


def finished_rounds(store: Any, run_id: str) -> list[int]:
    """Rounds (0-based, ascending) with both a ``round`` event and a checkpoint, counted from the
    first round without a gap."""
    logged = {int(ev.get("round", -1)) for _, ev in store.events(run_id, types=["round"])}
    saved = set(checkpoint_rounds(store, run_id))
    done = []
    for r in range(len(logged | saved) + 1):
        if r not in logged or r not in saved:
            break
        done.append(r)
    return done


def resume_from(store: Any, run_id: str) -> int:
    """The round (0-based) a resumed run would go on from."""
    done = finished_rounds(store, run_id)
    return done[-1] + 1 if done else 0


def why_not_resumable(store: Any, info: Any) -> Optional[str]:
    """Why ``info``'s run cannot be resumed, in plain words; None if it can."""
    if info is None:
        return "There is no such run."
    if info.status not in RESUMABLE:
        return f"Only a failed or cancelled run can be resumed; this one is {info.status}."
    if info.spec.simulator_ref.get("kind") == "table":
        return "A run on a table of simulations has a single round: start it again instead."
    if resume_from(store, info.id) >= info.spec.rounds:
        return "Every round of this run is finished; there is nothing left to resume."
    return None


def resume_run(manager: Any, run_id: str) -> int:
    """Reopen a failed or cancelled run and hand it to ``manager``'s executor; returns the round
    (0-based) it goes on from. Raises :class:`SBIError` (plain words) if it cannot be resumed."""
    store = manager.store
    info = store.get_run(run_id)
    reason = why_not_resumable(store, info)
    if reason is not None:
        raise SBIError(reason)
    start = resume_from(store, run_id)
    if not store.reopen_run(run_id, start, reason="resume"):
        raise SBIError("The run changed meanwhile (it is no longer failed or cancelled); reload the page.")
    manager.backend.submit(RUN, run_id, info.spec)
    return start


def recover_runs(manager: Any) -> dict[str, str]:
    """Carry on the runs a previous app server left active (see the module docstring);
    returns ``{run_id: "requeued" | "resumed from round N"}``."""
    store = manager.store
    done: dict[str, str] = {}
    orphans = [info for info in store.orphaned_runs() if not store.cancel_requested(info.id)]
    orphans.sort(key=lambda info: (info.status != "running", info.created))  # running ones were ahead
    for info in orphans:
        if info.status == "running":
            start = resume_from(store, info.id)
            if not store.reopen_run(info.id, start, reason="restart"):
                continue
            done[info.id] = f"resumed from round {start + 1}"
        else:
            done[info.id] = "requeued"
        manager.backend.submit(RUN, info.id, info.spec)
    return done

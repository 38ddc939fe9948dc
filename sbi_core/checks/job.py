"""The background check job: what ``python -m sbi_core.jobs.worker --checks RUN_ID`` does.

1. wait while the run itself is still queued or training (the checks need its
   final posterior); a run that ends failed or cancelled ends the checks too,
   with a message saying so;
2. wait for a worker slot (check jobs share the runs' slots:
   :meth:`~sbi_core.store.check_records.CheckRecords.claim_check_slot`);
3. :func:`~.compute.run_checks`, recording progress in the store as it goes
   and consulting the cancel flag;
4. save the results under ``artifacts/<run_id>/checks/`` and record the end:
   ``done``, ``cancelled``, or ``failed`` with a plain message (an
   :class:`~sbi_core.errors.SBIError`'s own, e.g. an uploaded simulator's
   :class:`~sbi_core.simulators.uploaded.SimulatorError`) and, for a bug, the
   traceback as detail.

Whatever happens, the job ends with a terminal status: it never raises.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from typing import Any, Callable, Optional

from sbi_core.checks import compute as computing  # run_checks looked up per job: a test may replace it
from sbi_core.checks.options import CheckOptions
from sbi_core.checks.results import checks_dir, save_results
from sbi_core.errors import Cancelled, SBIError

__all__ = ["run_check_job", "POLL_S", "PROGRESS_EVERY_S"]

POLL_S = 0.5  # waiting for the run or a slot
PROGRESS_EVERY_S = 0.25  # progress writes at most this often (the store is shared)
CANCEL_EVERY_S = 0.2


def _throttled(read: Callable[[], bool]) -> Callable[[], bool]:
    last = [0.0, False]

    def check() -> bool:
        now = time.monotonic()
        if not last[1] and now - last[0] >= CANCEL_EVERY_S:
            last[0], last[1] = now, bool(read())
        return last[1]

    return check


def _progress(store: Any, run_id: str, stopped: Optional[Callable[[], bool]] = None) -> Callable[[float, str], None]:
    """The checks' progress reporter (throttled); once ``stopped()`` (cancelled, or no longer
    this task's checks) nothing more is written."""
    last = [0.0, ""]

    def report(fraction: float, step: str) -> None:
        if stopped is not None and stopped():
            return
        now = time.monotonic()
        if step != last[1] or now - last[0] >= PROGRESS_EVERY_S or fraction >= 1.0:
            last[0], last[1] = now, step
            store.set_check_progress(run_id, fraction, step)

    return report


def _wait_for_run(store: Any, run_id: str, poll_s: float) -> Optional[tuple[str, str]]:
    """Wait until the run is done; ``None`` then, else ``(status, message)`` the checks end with."""
    while True:
        if store.check_cancel_requested(run_id):
            return "cancelled", ""
        info = store.get_run(run_id)
        if info is None:
            return "failed", "The run was deleted, so there is nothing to check."
        if info.status == "done":
            return None
        if info.is_terminal:
            return "failed", (f"The run ended {info.status} before it finished training, so there is no final "
                              "posterior to check.")
        step = "Waiting for the run to finish training" if info.status == "running" else "Waiting for the run to start"
        store.set_check_progress(run_id, 0.0, step)
        time.sleep(poll_s)


def _wait_for_slot(store: Any, run_id: str, max_running: int, poll_s: float) -> bool:
    """Hold a worker slot (True), or False when the checks were cancelled while waiting."""
    pid, said = os.getpid(), False
    while not store.claim_check_slot(run_id, pid, max_running):
        if store.check_cancel_requested(run_id):
            return False
        if not said:
            store.set_check_progress(run_id, 0.0, "Waiting for a free worker (other runs or checks are busy)")
            said = True
        store.reap_stale()
        time.sleep(poll_s)
    return True


def run_check_job(store: Any, run_id: str, max_running: int = 1, poll_s: float = POLL_S,
                  compute: Optional[Callable] = None) -> str:
    """Carry out the queued checks of ``run_id``; returns how they ended (``done``, ``failed``, ``cancelled``).

    ``store``: a :class:`~sbi_core.store.runs.RunStore`; ``compute`` replaces
    :func:`~.compute.run_checks` (same signature; for tests).
    """
    check = store.get_check(run_id)
    if check is None:
        return "missing"
    if check.is_terminal:
        return check.status
    store.set_check_pid(run_id, os.getpid())
    claim: Optional[float] = None
    try:
        ended = _wait_for_run(store, run_id, poll_s)
        if ended is not None:
            store.finish_check(run_id, ended[0], message=ended[1] or None)
            return ended[0]
        if not _wait_for_slot(store, run_id, max_running, poll_s):
            store.finish_check(run_id, "cancelled")
            return "cancelled"
        claimed = store.get_check(run_id)
        claim = claimed.started if claimed is not None else None
        cancel = _throttled(lambda: store.check_cancel_requested(run_id) or not _still_ours(store, run_id, claim))
        results = (compute or computing.run_checks)(store, run_id, CheckOptions.from_dict(check.options),
                                          on_progress=_progress(store, run_id, cancel), cancel=cancel)
        if store.get_run(run_id) is None:
            store.finish_check(run_id, "failed", message="The run was deleted while it was being checked.")
            return "failed"
        if not _still_ours(store, run_id, claim):  # cancelled past its grace time (Dask): discard the results
            now = store.get_check(run_id)
            return now.status if now is not None else "missing"
        save_results(checks_dir(store, run_id), results)
    except BaseException as err:  # noqa: BLE001 - every ending is recorded
        return _record_failure(store, run_id, err, claim)
    store.finish_check(run_id, "done", claim=claim)
    return "done"


def _still_ours(store: Any, run_id: str, claim: Optional[float]) -> bool:
    """Whether the checks are still ``running`` under the claim stamped ``claim`` (None: nothing to compare).

    The job manager ends a check task that ignored its cancel past the grace time without
    stopping its Dask worker (shared with other runs); that task's work is then discarded.
    """
    if claim is None:
        return True
    check = store.get_check(run_id)
    return check is not None and check.status == "running" and check.started == claim


def _record_failure(store: Any, run_id: str, err: BaseException, claim: Optional[float] = None) -> str:
    requested = False
    try:
        requested = bool(store.check_cancel_requested(run_id))
    except Exception:  # noqa: BLE001
        pass
    if isinstance(err, Cancelled) or (requested and not isinstance(err, SBIError)):
        store.finish_check(run_id, "cancelled", claim=claim)
        return "cancelled"
    detail = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    if isinstance(err, SBIError):
        message = str(err) or type(err).__name__
    elif isinstance(err, (KeyboardInterrupt, SystemExit)) or type(err).__name__ == "_Terminated":
        message = "The checks were stopped from outside (their worker process was terminated). Start them again."
    else:
        message = (f"Something went wrong while checking this run ({type(err).__name__}). "
                   "The details below help a developer.")
    store.finish_check(run_id, "failed", message=message, detail=detail, claim=claim)
    sys.stderr.write(detail)
    return "failed"

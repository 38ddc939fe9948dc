"""A run's calibration checks as a Dask task, like the run itself: no process of their own.

The check job (:func:`sbi_core.checks.job.run_check_job`) waits for its run to
finish training. On a cluster a waiting task would hold a worker thread -- on a
one-worker cluster the very one the run needs -- so the job manager's process
holds the queued check instead (its pid is the check's, like a queued Dask run's)
and one small thread, shared by all such checks, submits :func:`check_task` once the run has
ended, however it ended (the task records a failed or cancelled run's ending itself). A check
whose task ends without ending the check (its worker was killed) is failed with
:data:`CHECK_LOST_MESSAGE`. A running one that ignores its cancel past the grace time
is recorded cancelled and its own sandbox processes killed, as for a run; its worker,
shared with other runs, is never killed, and what the task does afterwards is discarded.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from typing import Any, Optional
from sbi_core.checks.job import run_check_job
from sbi_core.jobs.dask_executor import dask_setup, sandbox_label
from sbi_core.sandbox.runner import owned_by
from sbi_core.store.runs import RunStore

__all__ = ["check_task", "submit_checks_when_trained", "forget_checks", "CHECK_LOST_MESSAGE", "checks_key"]

CHECK_LOST_MESSAGE = ("The worker carrying out these checks stopped before they ended (it was killed or ran out "
                      "of memory). Start the checks again.")
_NO_LIMIT = 1 << 30  # the cluster's worker threads are the slots
_POLL_S = 0.5

_log = logging.getLogger(__name__)
_futures: dict[str, Any] = {}  # held until done: an unreferenced future is released
_lock = threading.Lock()
_waiting: dict[tuple[str, str], tuple[Any, Any]] = {}  # (store root, run id) -> (executor, store)
_waiter: Optional[threading.Thread] = None  # the one thread that waits for their runs to end


def checks_key(run_id: str) -> str:
    """The Dask key of a run's check task."""
    return f"sbi-checks-{run_id}"


def check_task(store_root: str, run_id: str) -> str:
    """The task: carry out the queued checks of ``run_id`` in ``store_root``'s store; returns how they ended."""
    dask_setup()
    store = RunStore(store_root)
    try:
        with owned_by(sandbox_label(run_id, checks=True)):
            return run_check_job(store, run_id, max_running=_NO_LIMIT)
    finally:
        store.close()


def submit_checks_when_trained(executor: Any, store: Any, run_id: str) -> None:
    """Hold the queued checks of ``run_id`` in this process until their run has ended, then submit them.

    One thread of this process waits for all such checks (:func:`_wait_loop`), not one per run: a
    class that starts its checks while its runs train costs the server one thread and one round of
    store reads per :data:`_POLL_S`, however many runs there are."""
    global _waiter
    store.set_check_pid(run_id, os.getpid())
    with _lock:
        _waiting[(str(store.root), run_id)] = (executor, store)
        if _waiter is None:
            _waiter = threading.Thread(target=_wait_loop, name="checks-waiter", daemon=True)
            _waiter.start()


def waiting_checks() -> int:
    """How many runs' checks this process holds until their run ends (tests, benchmarks)."""
    with _lock:
        return len(_waiting)


def _wait_loop() -> None:
    """The waiter: every :data:`_POLL_S`, submit the checks whose run has ended and drop the cancelled
    ones; it ends when none is left (the next :func:`submit_checks_when_trained` starts another)."""
    global _waiter
    while True:
        with _lock:
            if not _waiting:
                _waiter = None
                return
            items = list(_waiting.items())
        for key, (executor, store) in items:
            if _wait_step(executor, store, key[1]):
                with _lock:
                    if _waiting.get(key, (None, None))[1] is store:
                        del _waiting[key]
        time.sleep(_POLL_S)


def _wait_step(executor: Any, store: Any, run_id: str) -> bool:
    """One look at a waiting check: ``True`` once it is settled (submitted, failed, or ended while it
    waited), ``False`` while its run goes on."""
    try:
        check = store.get_check(run_id)
        if check is None or check.is_terminal:
            return True  # cancelled (or deleted) while waiting
        run = store.get_run(run_id)
        if run is not None and not run.is_terminal:
            return False
        future = executor.client.submit(check_task, str(store.root), run_id, pure=False,
                                        key=f"{checks_key(run_id)}-{uuid.uuid4().hex[:8]}")  # one per attempt
    except Exception as err:  # noqa: BLE001 - no cluster: the checks fail with a plain message
        _log.exception("could not submit the checks of %s", run_id)
        try:
            store.finish_check(run_id, "failed", message=f"The checks could not be started: the Dask cluster is "
                               f"not available ({err}).", detail=repr(err))
        except Exception:  # noqa: BLE001 - the store itself failed: the stale-check reaper ends it later
            _log.exception("could not record that the checks of %s failed", run_id)
        return True
    with _lock:
        _futures[run_id] = future
    future.add_done_callback(lambda fut: _on_done(store, run_id, fut))
    return True


def forget_checks(run_id: str) -> None:
    """Cancel the Dask task of the run's checks and disown it: the checks were ended from outside
    (cancelled past their grace time, deleted); however that task ends, it changes nothing."""
    with _lock:
        future = _futures.pop(run_id, None)
    if future is not None:
        future.cancel()


def _on_done(store: Any, run_id: str, future: Any) -> None:
    with _lock:
        if _futures.get(run_id) is not future:
            return  # disowned (forget_checks) or replaced by a later attempt: not this task's to end
        del _futures[run_id]
    try:
        check = store.get_check(run_id)
        if check is None or check.is_terminal:
            return
        if store.check_cancel_requested(run_id):
            store.finish_check(run_id, "cancelled")
        else:
            detail = f"The Dask task {future.key} ended with {future.exception()!r}." if future.status == "error" else None
            store.finish_check(run_id, "failed", message=CHECK_LOST_MESSAGE, detail=detail)
    except Exception:  # noqa: BLE001 - a callback must not raise; the pid check remains
        _log.exception("could not record the end of the checks of %s", run_id)

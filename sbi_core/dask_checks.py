"""A run's calibration checks as a Dask task, like the run itself: no process of their own.

The check job (:func:`sbi_core.checks.job.run_check_job`) waits for its run to
finish training. On a cluster a waiting task would hold a worker thread -- on a
one-worker cluster the very one the run needs -- so the job manager's process
holds the queued check instead (its pid is the check's, like a queued Dask run's)
and a small thread submits :func:`check_task` once the run has ended, however it
ended (the task records a failed or cancelled run's ending itself). A check
whose task ends without ending the check (its worker was killed) is failed with
:data:`CHECK_LOST_MESSAGE`; cancelling a running one past its grace time kills its
worker, as for a run (:func:`sbi_core.dask_executor.kill_worker`, never this process).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

__all__ = ["check_task", "submit_checks_when_trained", "CHECK_LOST_MESSAGE", "checks_key"]

CHECK_LOST_MESSAGE = ("The worker carrying out these checks stopped before they ended (it was killed or ran out "
                      "of memory). Start the checks again.")
_NO_LIMIT = 1 << 30  # the cluster's worker threads are the slots
_POLL_S = 0.5

_log = logging.getLogger(__name__)
_futures: dict[str, Any] = {}  # held until done: an unreferenced future is released
_lock = threading.Lock()


def checks_key(run_id: str) -> str:
    """The Dask key of a run's check task."""
    return f"sbi-checks-{run_id}"


def check_task(store_root: str, run_id: str) -> str:
    """The task: carry out the queued checks of ``run_id`` in ``store_root``'s store; returns how they ended."""
    from .checks.job import run_check_job
    from .dask_executor import WORKER_THREADS, dask_setup
    from .store import RunStore
    from .threads import set_threads

    dask_setup()
    store = RunStore(store_root)
    try:
        return run_check_job(store, run_id, max_running=_NO_LIMIT)
    finally:
        set_threads(WORKER_THREADS)
        store.close()


def submit_checks_when_trained(executor: Any, store: Any, run_id: str) -> None:
    """Hold the queued checks of ``run_id`` in this process until their run has ended, then submit them."""
    store.set_check_pid(run_id, os.getpid())
    threading.Thread(target=_wait_then_submit, args=(executor, store, run_id), name=f"checks-{run_id}",
                     daemon=True).start()


def _wait_then_submit(executor: Any, store: Any, run_id: str) -> None:
    try:
        while True:
            check = store.get_check(run_id)
            if check is None or check.is_terminal:
                return  # cancelled (or deleted) while waiting
            run = store.get_run(run_id)
            if run is None or run.is_terminal:
                break
            time.sleep(_POLL_S)
        future = executor.client.submit(check_task, str(store.root), run_id, key=checks_key(run_id), pure=False)
    except Exception as err:  # noqa: BLE001 - no cluster: the checks fail with a plain message
        _log.exception("could not submit the checks of %s", run_id)
        store.finish_check(run_id, "failed", message=f"The checks could not be started: the Dask cluster is not "
                           f"available ({err}).", detail=repr(err))
        return
    with _lock:
        _futures[run_id] = future
    future.add_done_callback(lambda fut: _on_done(store, run_id, fut))


def _on_done(store: Any, run_id: str, future: Any) -> None:
    with _lock:
        _futures.pop(run_id, None)
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

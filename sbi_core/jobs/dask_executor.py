"""Running store jobs on a Dask cluster: a queued run is a task, not a process.

Why
    The process executor (:mod:`sbi_core.jobs.worker`) starts one Python process per
    run, and each imports torch (seconds, hundreds of MB) while it still waits for
    a slot. Here a run is one task on a pool of warm Dask workers: torch is
    imported once per worker, a queued run is a task waiting in the scheduler, and
    the same code runs on a laptop or on an existing cluster of any size.

The cluster
    :func:`shared_executor` gives this process's one :class:`DaskExecutor` (the app
    server makes it once, for every session). With ``$SBI_DASK_SCHEDULER``
    (``tcp://host:port``) it connects to that scheduler; otherwise, on first use, it
    starts a ``LocalCluster`` of ``max(1, cores - 1)`` worker processes with one
    thread each and no dashboard. Every worker preloads this module (for a cluster
    of your own: ``dask worker --preload sbi_core.jobs.dask_executor``): :func:`dask_setup`
    imports torch and the run loop and limits torch to one thread, once per worker.
    The local workers are started with multiprocessing's *spawn*, which re-imports
    the main module: a script that uses the local cluster must guard its entry
    point (``if __name__ == "__main__":``); the app under ``streamlit run`` is safe.

A run
    :meth:`DaskExecutor.submit` submits :func:`run_task` (``pure=False``, key
    :func:`task_key` and a suffix of its own). The task claims the run in the store -- only a queued run
    whose cancel was not asked can start, so a task that Dask re-runs after its
    worker died does nothing -- which records the worker's pid, then calls
    :func:`sbi_core.jobs.worker.carry_out`, the body the worker process runs. The store
    stays the single source of truth. While queued, a run's pid is the process that
    holds its future (the app): if that process dies, its futures die with it and
    the store reaps its queued runs like those of any dead worker.

Simulations fan out
    Inside its task a run simulates through :class:`sbi_core.simulators.fanout.DaskFanOut`:
    with two or more workers, a round's batches of a built-in simulator become
    tasks of their own (key ``sbi-run-<id>-batch-...``), spread over the cluster
    while the run's thread secedes from its worker's pool, and are gathered in
    order. Each batch is seeded from the run's ``"simulate"`` stream
    (:mod:`sbi_core.simulators.sources`), so the run draws exactly what it draws locally.
    Uploaded simulators and single batches stay in the run's task;
    ``SBI_FANOUT=0`` keeps every batch there.

Faults
    The embedded scheduler retries nothing (``allowed-failures`` 0; for a scheduler
    of your own set ``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0`` -- a retried
    task finds its run no longer queued and returns anyway). When a run's future
    ends while the run has not -- its worker was killed (``KilledWorker``), the task
    could not import, the store could not be written -- a done-callback records it
    with :func:`record_lost`: ``failed`` with :data:`LOST_MESSAGE`, or with
    :data:`STORE_FULL_MESSAGE` / :data:`STORE_UNWRITABLE_MESSAGE` when the task met a
    store it could not write (``cancelled`` if a cancel was asked); the rounds it
    finished stay in the store. When even that record cannot be written (the disk
    is still full), the ending is kept here, by the task's state and not by its
    worker's liveness (the worker lives on, carrying other runs), and recorded as
    soon as the store takes writes again: retried every :data:`RETRY_S` seconds and
    on each :meth:`~sbi_core.jobs.manager.JobManager.list`; meanwhile
    :meth:`DaskExecutor.unrecorded` says why. The job manager's pid check
    (:meth:`~sbi_core.store.runs.RunStore.reap_stale`) catches a dead worker as well.

Stopping
    Cancel and stop-and-keep are the store's flags, read by the run between batches
    and epochs. A task cannot be interrupted inside its thread (cancelling a running
    future does not stop it), and its worker is shared with other runs, so it is
    never killed for a cancel: a run that ignores its cancel past the job manager's
    grace time is recorded ``cancelled`` at once, its own sandbox processes (an
    uploaded simulator's, :func:`stop_run_processes`) are killed, and whatever its
    task does afterwards is discarded (the run's claim,
    :meth:`~sbi_core.store.runs.RunStore.finish_run`). Liveness by pid assumes the
    workers run on the store's machine (SQLite wants a local disk anyway).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
import uuid
from typing import Any, Callable, Optional

from sbi_core.errors import SBIError
from sbi_core.events import cancelled_event, failed_event
from sbi_core.jobs.worker import carry_out, load_execute
from sbi_core.processes import pid_alive
from sbi_core.sandbox.runner import owned_by, stop_owned
from sbi_core.store.errors import FULL, StoreUnavailable
from sbi_core.store.runs import RunStore
from sbi_core.threads import set_threads, thread_env

# _HEAVY: the app's process imports this module to talk to the cluster and never trains; the run loop
# and the simulators' fan-out (torch, the methods) are imported by the cluster's workers only, in
# dask_setup and run_task.

__all__ = [
    "DaskExecutor",
    "shared_executor",
    "start_local_cluster",
    "default_n_workers",
    "run_task",
    "dask_setup",
    "record_lost",
    "kill_worker",
    "stop_run_processes",
    "sandbox_label",
    "task_key",
    "SCHEDULER_ENV",
    "LOST_MESSAGE",
    "STORE_FULL_MESSAGE",
    "STORE_UNWRITABLE_MESSAGE",
]

SCHEDULER_ENV = "SBI_DASK_SCHEDULER"
WORKER_THREADS = 1  # torch threads per Dask worker (one worker per core)
_NO_LIMIT = 1 << 30  # claim_slot without a limit: the cluster's worker threads are the slots
_CONNECT_TIMEOUT_S = 30

LOST_MESSAGE = (
    "The worker carrying out this run stopped before the run ended (it was killed or ran out "
    "of memory). The rounds it finished are kept: press Resume to go on from the last one."
)

STORE_FULL_MESSAGE = (
    "The run could not save its results: the disk holding the run store was full. The rounds it "
    "finished are kept: press Resume to go on from the last one."
)
STORE_UNWRITABLE_MESSAGE = (
    "The run could not save its results: the run store could not be written (read-only or permission "
    "denied). The rounds it finished are kept: press Resume to go on from the last one."
)
RETRY_S = 1.0  # an ending the store refused is tried again this often

_log = logging.getLogger(__name__)


def default_n_workers(cpu_count: Optional[int] = None) -> int:
    """Workers of the local cluster: one per core, less one for the app (at least one)."""
    n = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    return max(1, n - 1)


def task_key(run_id: str) -> str:
    """The Dask key of a run's task."""
    return f"sbi-run-{run_id}"


def dask_setup(worker: Any = None) -> None:
    """Warm a Dask worker (the ``--preload`` hook; idempotent): one torch thread, the run loop imported."""
    set_threads(WORKER_THREADS)
    import sbi_core.run.loop  # noqa: F401 - torch, the flows and the methods: deferred, see _HEAVY; imported once per worker


def sandbox_label(run_id: str, checks: bool = False) -> str:
    """The label of the sandbox processes a run's task (or its checks' task) starts (:func:`sbi_core.sandbox.runner.owned_by`)."""
    return f"checks:{run_id}" if checks else f"run:{run_id}"


def run_task(store_root: str, run_id: str, execute_ref: Optional[str] = None) -> str:
    """The task of one run: claim it in ``store_root``'s store and carry it out; returns its final status.

    A run that is no longer queued (cancelled meanwhile, or claimed by a task whose
    worker died) is left alone: its current status is returned. The sandboxes of
    uploaded simulators it starts are labelled as the run's (:func:`stop_run_processes`).
    """
    from sbi_core.simulators import fanout  # torch: deferred, see _HEAVY
    dask_setup()
    store = RunStore(store_root)
    try:
        if not store.claim_slot(run_id, os.getpid(), _NO_LIMIT):
            info = store.get_run(run_id)
            return "missing" if info is None else info.status
        execute = load_execute(execute_ref) if execute_ref else None
        with fanout.use(fanout.DaskFanOut(name=task_key(run_id))), owned_by(sandbox_label(run_id)):
            return carry_out(store, run_id, execute)
    finally:
        set_threads(WORKER_THREADS)  # a spec's num_threads holds for its own run only
        store.close()


def lost_message(error: Optional[BaseException]) -> str:
    """What a run whose task ended with ``error`` (None: no error of its own) without ending it is failed with."""
    if isinstance(error, StoreUnavailable) and error.writes_blocked:
        return STORE_FULL_MESSAGE if error.kind == FULL else STORE_UNWRITABLE_MESSAGE
    return LOST_MESSAGE


def record_lost(store: Any, run_id: str, detail: Optional[str] = None,
                error: Optional[BaseException] = None) -> bool:
    """End a run whose task ended without ending it: ``cancelled`` if asked, else ``failed``
    with :func:`lost_message` of the task's ``error``. Returns whether it was still active.
    Raises :class:`~sbi_core.store.errors.StoreUnavailable` when the store cannot take the record."""
    info = store.get_run(run_id)
    if info is None or info.is_terminal:
        return False
    if info.cancel_requested:
        return store.finish_run(run_id, "cancelled", event=cancelled_event())
    message = lost_message(error)
    return store.finish_run(run_id, "failed", message=message, detail=detail,
                            event=failed_event(message, detail))


def stop_run_processes(label: str) -> int:
    """Kill the sandbox processes labelled ``label`` in this process (run on each worker by
    :meth:`DaskExecutor.stop_processes`); returns how many. Nothing else is touched."""
    return stop_owned(label)


def kill_worker(pid: Optional[int], start: Optional[str] = None) -> bool:
    """SIGKILL one Dask worker process (never this one); returns whether a signal was sent.

    Every run on that worker dies with it: the job manager never does this to stop one run
    (see "Stopping" above); it is for an operator or a test that means to kill the worker."""
    if pid is None or int(pid) == os.getpid() or not pid_alive(pid, start):
        return False
    try:
        os.kill(int(pid), signal.SIGKILL)
    except OSError:
        return False
    return True


def start_local_cluster(n_workers: Optional[int] = None) -> Any:
    """A ``LocalCluster`` of warm worker processes (one thread each, no dashboard, no retries)."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        return LocalCluster(
            n_workers=n_workers or default_n_workers(),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            preload=[__name__],
            env=thread_env(WORKER_THREADS),
        )


class DaskExecutor:
    """Runs carried out as tasks on one Dask cluster, connected (or started) on first use.

    Args:
        address: a scheduler's ``tcp://host:port``; ``None``: start a local cluster.
        n_workers: workers of that local cluster (default :func:`default_n_workers`).
        client: an existing ``distributed.Client`` to use instead (not closed here).
    """

    def __init__(self, address: Optional[str] = None, n_workers: Optional[int] = None,
                 client: Any = None) -> None:
        self.address = address
        self.n_workers = n_workers
        self._client = client
        self._owns_client = client is None
        self._cluster: Any = None
        self._futures: dict[str, Any] = {}  # held until done: an unreferenced future is released
        self._unrecorded: dict[str, tuple[Any, Optional[str], Optional[BaseException], str]] = {}
        # run id -> (store, detail, the task's error, why the store refused): tasks that ended while
        # the ending could not be stored; recorded by record_pending as soon as the store takes it
        self._retrying = False
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` (connecting, or starting the local cluster, the first time)."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Any:
        from distributed import Client

        if not self.address:
            self._cluster = start_local_cluster(self.n_workers)
            return Client(self._cluster, set_as_default=False)
        try:
            return Client(self.address, set_as_default=False, timeout=_CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as err:
            raise SBIError(
                f"The Dask scheduler at {self.address} cannot be reached ({err}). Start it "
                f"(`dask scheduler`), or unset {SCHEDULER_ENV} to use the built-in local cluster."
            ) from err

    def submit(self, store: Any, run_id: str, execute_ref: Optional[str] = None,
               on_done: Optional[Callable[[str], None]] = None) -> Any:
        """Submit the run's task; returns its future (held here until it is done).

        ``on_done(run_id)`` is called (in a client thread) once the task has ended, however it ended.
        """
        # a key of its own per submission: a resumed run's task must not meet the task of its
        # cancelled attempt that may still be running past its cancel (see "Stopping")
        future = self.client.submit(run_task, str(store.root), run_id, execute_ref,
                                    key=f"{task_key(run_id)}-{uuid.uuid4().hex[:8]}", pure=False)
        with self._lock:
            self._futures[run_id] = future
        future.add_done_callback(lambda fut: self._on_done(store, run_id, fut, on_done))
        return future

    def _on_done(self, store: Any, run_id: str, future: Any, on_done: Optional[Callable[[str], None]]) -> None:
        with self._lock:
            current = self._futures.get(run_id) is future
            if current:
                del self._futures[run_id]
        if current:  # else disowned (forget: the run was ended from outside) or a later attempt's: not ours
            self._record_ending(store, run_id, future)
        if on_done is not None:
            try:
                on_done(run_id)
            except Exception:  # noqa: BLE001
                _log.exception("the end-of-run hook of %s failed", run_id)

    def _record_ending(self, store: Any, run_id: str, future: Any) -> None:
        """:func:`record_lost` for the run of a finished task; kept for :meth:`record_pending`
        when the store refuses it (full, read-only)."""
        detail = error = None
        try:
            if future.status == "error":
                error = future.exception()
                detail = f"The Dask task {future.key} ended with {error!r}."
            record_lost(store, run_id, detail, error)
        except StoreUnavailable as refused:  # kept here, recorded once the store takes writes again
            with self._lock:
                self._unrecorded[run_id] = (store, detail, error, str(refused))
            self._start_retrying()
        except Exception:  # noqa: BLE001 - a callback must not raise; the pid check remains
            _log.exception("could not record the end of run %s", run_id)

    def unrecorded(self, run_id: str) -> Optional[str]:
        """Why the ending of ``run_id``'s finished task is not stored yet (the store's plain message), or None."""
        with self._lock:
            pending = self._unrecorded.get(run_id)
        return pending[3] if pending is not None else None

    def record_pending(self) -> list[str]:
        """Store the endings the store refused before (:func:`record_lost`); returns the run ids now
        recorded (or found ended meanwhile). Those the store still refuses stay, with the new reason."""
        with self._lock:
            pending = list(self._unrecorded.items())
        settled = []
        for run_id, (store, detail, error, _) in pending:
            try:
                record_lost(store, run_id, detail, error)
            except StoreUnavailable as refused:
                with self._lock:
                    if run_id in self._unrecorded:
                        self._unrecorded[run_id] = (store, detail, error, str(refused))
                continue
            except Exception:  # noqa: BLE001 - not a store fault: leave it to the pid check
                _log.exception("could not record the end of run %s", run_id)
            with self._lock:
                self._unrecorded.pop(run_id, None)
            settled.append(run_id)
        return settled

    def _start_retrying(self) -> None:
        """A daemon thread calling :meth:`record_pending` every :data:`RETRY_S` until nothing is left."""
        with self._lock:
            if self._retrying:
                return
            self._retrying = True

        def retry() -> None:
            while True:
                time.sleep(RETRY_S)
                try:
                    self.record_pending()
                except Exception:  # noqa: BLE001 - keep retrying
                    _log.exception("retrying the endings of runs failed")
                with self._lock:
                    if not self._unrecorded:
                        self._retrying = False
                        return

        threading.Thread(target=retry, name="sbi-record-endings", daemon=True).start()

    def stop_processes(self, label: str) -> int:
        """Kill the sandbox processes labelled ``label`` (:func:`sandbox_label`) on every worker; the
        workers themselves and every other run go on. Returns how many were killed (0 if the cluster
        cannot be asked)."""
        try:
            counts = self.client.run(stop_run_processes, label, on_error="return")
        except Exception:  # noqa: BLE001 - no cluster: nothing of the run's can be running there
            _log.exception("could not stop the processes of %s", label)
            return 0
        return sum(n for n in counts.values() if isinstance(n, int))

    def forget(self, run_id: str) -> None:
        """Cancel the run's task and disown it: a queued run cancelled in the store, or a running
        one ended from outside (cancelled past its grace time, deleted). A task that has started
        goes on in its thread until it notices (a thread cannot be interrupted), but whatever it
        does no longer changes the run."""
        with self._lock:
            future = self._futures.pop(run_id, None)
        if future is not None:
            future.cancel()

    def pending(self) -> list[str]:
        """Run ids whose tasks are not done yet."""
        with self._lock:
            return list(self._futures)

    def worker_pids(self) -> dict[str, int]:
        """``{worker address: pid}`` of the cluster's workers."""
        return self.client.run(os.getpid)

    def close(self) -> None:
        """Close the client and the local cluster started here (queued tasks are dropped)."""
        with self._lock:
            client, cluster = self._client, self._cluster
            self._client = self._cluster = None
            self._futures.clear()
        for thing in ((client if self._owns_client else None), cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # noqa: BLE001 - closing at exit: nothing left to tell
                    pass


_SHARED: dict[str, DaskExecutor] = {}
_SHARED_LOCK = threading.Lock()


def shared_executor() -> DaskExecutor:
    """This process's executor for ``$SBI_DASK_SCHEDULER`` (or the local cluster); made once, closed at exit."""
    address = os.environ.get(SCHEDULER_ENV, "").strip() or None
    with _SHARED_LOCK:
        executor = _SHARED.get(address or "")
        if executor is None:
            executor = _SHARED[address or ""] = DaskExecutor(address=address)
            atexit.register(executor.close)
        return executor

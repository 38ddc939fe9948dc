"""Running store jobs on a Dask cluster: a queued run is a task, not a process.

Why
    The process executor (:mod:`sbi_core.worker`) starts one Python process per
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
    of your own: ``dask worker --preload sbi_core.dask_executor``): :func:`dask_setup`
    imports torch and the run loop and limits torch to one thread, once per worker.
    The local workers are started with multiprocessing's *spawn*, which re-imports
    the main module: a script that uses the local cluster must guard its entry
    point (``if __name__ == "__main__":``); the app under ``streamlit run`` is safe.

A run
    :meth:`DaskExecutor.submit` submits :func:`run_task` (``pure=False``, key
    :func:`task_key`). The task claims the run in the store -- only a queued run
    whose cancel was not asked can start, so a task that Dask re-runs after its
    worker died does nothing -- which records the worker's pid, then calls
    :func:`sbi_core.worker.carry_out`, the body the worker process runs. The store
    stays the single source of truth. While queued, a run's pid is the process that
    holds its future (the app): if that process dies, its futures die with it and
    the store reaps its queued runs like those of any dead worker.

Simulations fan out
    Inside its task a run simulates through :class:`sbi_core.fanout.DaskFanOut`:
    with two or more workers, a round's batches of a built-in simulator become
    tasks of their own (key ``sbi-run-<id>-batch-...``), spread over the cluster
    while the run's thread secedes from its worker's pool, and are gathered in
    order. Each batch is seeded from the run's ``"simulate"`` stream
    (:mod:`sbi_core.simulation`), so the run draws exactly what it draws locally.
    Uploaded simulators and single batches stay in the run's task;
    ``SBI_FANOUT=0`` keeps every batch there.

Faults
    The embedded scheduler retries nothing (``allowed-failures`` 0; for a scheduler
    of your own set ``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0`` -- a retried
    task finds its run no longer queued and returns anyway). When a run's future
    ends while the run has not -- its worker was killed (``KilledWorker``), the task
    could not import -- a done-callback records it with :func:`record_lost`:
    ``failed`` with :data:`LOST_MESSAGE` (``cancelled`` if a cancel was asked); the
    rounds it finished stay in the store. The job manager's pid check
    (:meth:`~sbi_core.store.RunStore.reap_stale`) catches a dead worker as well.

Stopping
    Cancel and stop-and-keep are the store's flags, read by the run between batches
    and epochs. A task cannot be interrupted inside its thread (cancelling a running
    future does not stop it), so for a run that ignores its cancel the job manager
    kills the worker process (:func:`kill_worker`); its nanny starts a fresh one.
    Liveness by pid assumes the workers run on the store's machine (SQLite wants a
    local disk anyway).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from typing import Any, Callable, Optional

from .errors import SBIError
from .events import cancelled_event, failed_event
from .processes import pid_alive
from .threads import thread_env

__all__ = [
    "DaskExecutor",
    "shared_executor",
    "start_local_cluster",
    "default_n_workers",
    "run_task",
    "dask_setup",
    "record_lost",
    "kill_worker",
    "task_key",
    "SCHEDULER_ENV",
    "LOST_MESSAGE",
]

SCHEDULER_ENV = "SBI_DASK_SCHEDULER"
WORKER_THREADS = 1  # torch threads per Dask worker (one worker per core)
_NO_LIMIT = 1 << 30  # claim_slot without a limit: the cluster's worker threads are the slots
_CONNECT_TIMEOUT_S = 30

LOST_MESSAGE = (
    "The worker carrying out this run stopped before the run ended (it was killed or ran out "
    "of memory). The rounds it finished are kept: press Resume to go on from the last one."
)

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
    from .threads import set_threads

    set_threads(WORKER_THREADS)
    import sbi_core.runs  # noqa: F401 - torch, the flows and the methods: imported once per worker


def run_task(store_root: str, run_id: str, execute_ref: Optional[str] = None) -> str:
    """The task of one run: claim it in ``store_root``'s store and carry it out; returns its final status.

    A run that is no longer queued (cancelled meanwhile, or claimed by a task whose
    worker died) is left alone: its current status is returned.
    """
    from . import fanout
    from .store import RunStore
    from .threads import set_threads
    from .worker import carry_out, load_execute

    dask_setup()
    store = RunStore(store_root)
    try:
        if not store.claim_slot(run_id, os.getpid(), _NO_LIMIT):
            info = store.get_run(run_id)
            return "missing" if info is None else info.status
        execute = load_execute(execute_ref) if execute_ref else None
        with fanout.use(fanout.DaskFanOut(name=task_key(run_id))):
            return carry_out(store, run_id, execute)
    finally:
        set_threads(WORKER_THREADS)  # a spec's num_threads holds for its own run only
        store.close()


def record_lost(store: Any, run_id: str, detail: Optional[str] = None) -> bool:
    """End a run whose task ended without ending it: ``cancelled`` if asked, else ``failed``
    with :data:`LOST_MESSAGE`. Returns whether it was still active."""
    info = store.get_run(run_id)
    if info is None or info.is_terminal:
        return False
    if info.cancel_requested:
        return store.finish_run(run_id, "cancelled", event=cancelled_event())
    return store.finish_run(run_id, "failed", message=LOST_MESSAGE, detail=detail,
                            event=failed_event(LOST_MESSAGE, detail))


def kill_worker(pid: Optional[int], start: Optional[str] = None) -> bool:
    """SIGKILL one Dask worker process (never this one); returns whether a signal was sent."""
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
        future = self.client.submit(run_task, str(store.root), run_id, execute_ref,
                                    key=task_key(run_id), pure=False)
        with self._lock:
            self._futures[run_id] = future
        future.add_done_callback(lambda fut: self._on_done(store, run_id, fut, on_done))
        return future

    def _on_done(self, store: Any, run_id: str, future: Any, on_done: Optional[Callable[[str], None]]) -> None:
        with self._lock:
            self._futures.pop(run_id, None)
        try:
            detail = None
            if future.status == "error":
                detail = f"The Dask task {future.key} ended with {future.exception()!r}."
            record_lost(store, run_id, detail)
        except Exception:  # noqa: BLE001 - a callback must not raise; the pid check remains
            _log.exception("could not record the end of run %s", run_id)
        if on_done is not None:
            try:
                on_done(run_id)
            except Exception:  # noqa: BLE001
                _log.exception("the end-of-run hook of %s failed", run_id)

    def forget(self, run_id: str) -> None:
        """Cancel the run's task if it has not started (a queued run cancelled in the store)."""
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

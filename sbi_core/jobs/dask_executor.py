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
    starts a ``LocalCluster`` of one worker process per core (:func:`default_n_workers`) with one
    thread each and no dashboard. Every worker preloads this module (for a cluster
    of your own: ``dask worker --preload sbi_core.jobs.dask_executor``): :func:`dask_setup`
    imports torch and the run loop and limits torch to one thread, once per worker.
    The local workers are started with multiprocessing's *spawn*, which re-imports
    the main module: a script that uses the local cluster must guard its entry
    point (``if __name__ == "__main__":``). Under ``streamlit run`` the main module is
    ``app.py``, which draws nothing when it runs as ``__mp_main__``.
    The job manager talks to the cluster through a :class:`DaskTaskExecutor` of its own
    (the :class:`~sbi_core.jobs.executor.Executor` protocol), which also holds back an
    owner's later runs while one of theirs is on the cluster.

A run
    :meth:`DaskExecutor.submit` submits :func:`run_task` (``pure=False``, key
    :func:`task_key` and a suffix of its own). The task claims the run in the store -- only a queued run
    whose cancel was not asked can start, so a task that Dask re-runs after its
    worker died does nothing -- which records the worker's pid, then calls
    :func:`sbi_core.jobs.worker.carry_out`, the body the worker process runs. The store
    stays the single source of truth. While queued, a run's pid is the process that
    holds its future (the app): if that process dies, its futures die with it and
    the store reaps its queued runs like those of any dead worker.

Taking turns
    A run's task carries it out one turn at a time (:mod:`sbi_core.jobs.turns`):
    while another run is queued it returns after a round with the run ``queued``
    again, and the done-callback submits its next task at once. Tasks are submitted
    with priority ``-turn`` (the round they start with; Dask runs higher priorities
    first, and among equals the earlier submission), so every queued run's first
    round comes before anyone's second -- the store's line (:mod:`sbi_core.store.turns`)
    in Dask's own terms. A round's C2ST against the exact posterior is not measured
    while others wait: the run records it deferred, and once a run's task ends with
    no run left in line, this process submits :func:`reference_task` for one deferred
    round at a time (:meth:`DaskExecutor.measure_deferred`), so a run that arrives
    meanwhile waits for one C2ST at most. (A task of lowest priority submitted from
    the run's task would not do: Dask queues only large groups of tasks by priority,
    and a lone task goes to a worker at once, ahead of the queued runs.)

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
from sbi_core.jobs.executor import CHECKS, RUN, JobKind, holder_alive
from sbi_core.jobs.turns import TakingTurns, score_deferred_reference
from sbi_core.jobs.worker import carry_out, load_execute
from sbi_core.processes import pid_alive
from sbi_core.sandbox.runner import owned_by, stop_owned
from sbi_core.store.errors import FULL, StoreUnavailable
from sbi_core.store.runs import RunStore
from sbi_core.threads import set_threads, thread_env

# _HEAVY: the app's process imports this module to talk to the cluster and never trains; the run loop
# and the simulators' fan-out (torch, the methods) are imported by the cluster's workers only, in
# dask_setup and run_task. DaskTaskExecutor loads sbi_core.jobs.dask_checks (the check job, torch) only
# when checks are submitted or forgotten: starting, listing and cancelling runs loads none of it.

__all__ = [
    "DaskExecutor",
    "DaskTaskExecutor",
    "shared_executor",
    "start_local_cluster",
    "default_n_workers",
    "WORKERS_ENV",
    "run_task",
    "reference_task",
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
SLOTS_TTL_S = 10.0  # how long DaskTaskExecutor.slots trusts its last count of the cluster's workers

_log = logging.getLogger(__name__)


WORKERS_ENV = "SBI_DASK_WORKERS"  # the local cluster's workers, overriding default_n_workers
MAX_WORKERS_PER_CORE = 4  # more would only swap: each worker holds torch (~300 MB)


def default_n_workers(cpu_count: Optional[int] = None) -> int:
    """Workers of the local cluster: ``$SBI_DASK_WORKERS`` if set (1 to 4 per core), else one per core.

    Measured on 2 cores with 30 students each starting a different run (bench/RESULTS.md,
    "Classroom load"): two workers gave first clouds at p50 / p95 20 / 33 s and every run done
    at 40 s, one worker 41 / 73 s and 83 s; the app's server, mostly waiting on its sessions,
    shares a core well. The cost is memory: each worker holds torch and the methods (about
    0.4 GB after training; the C2STs train in torch too, :mod:`sbi_core.diagnostics.c2st`)."""
    n = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    text = os.environ.get(WORKERS_ENV, "").strip()
    if text:
        limit = MAX_WORKERS_PER_CORE * n
        try:
            value = int(text)
        except ValueError:
            value = 0
        if not 1 <= value <= limit:
            raise SBIError(f"{WORKERS_ENV}={text!r}: give a whole number of workers from 1 to {limit} "
                           f"({MAX_WORKERS_PER_CORE} per core on this machine), or unset it.")
        return value
    return max(1, n)


def task_key(run_id: str) -> str:
    """The Dask key of a run's task."""
    return f"sbi-run-{run_id}"


def dask_setup(worker: Any = None) -> None:
    """Warm a Dask worker (the ``--preload`` hook; idempotent): one torch thread, the run loop imported,
    and torch's optimizers made ready.

    torch builds its first optimizer only after importing ``torch._dynamo`` (and, through its list of
    libraries to skip, sympy, pandas and scikit-learn's package): about a second on a busy core that
    the first run on each worker would otherwise spend before its first epoch."""
    global _WARM
    set_threads(WORKER_THREADS)
    if _WARM:
        return
    import torch

    import sbi_core.run.loop  # noqa: F401 - torch, the flows and the methods: deferred, see _HEAVY; imported once per worker

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # a throwaway parameter: no state anywhere
    _WARM = True


_WARM = False  # this process ran dask_setup


def sandbox_label(run_id: str, checks: bool = False) -> str:
    """The label of the sandbox processes a run's task (or its checks' task) starts (:func:`sbi_core.sandbox.runner.owned_by`)."""
    return f"checks:{run_id}" if checks else f"run:{run_id}"


def run_task(store_root: str, run_id: str, execute_ref: Optional[str] = None,
             measuring: Optional[list[str]] = None) -> str:
    """The task of one run: claim it in ``store_root``'s store and carry it out; returns its final status.

    ``measuring``: the addresses of the workers that measure deferred C2STs
    (:meth:`DaskExecutor._measuring_worker`; None: every worker measures its own while nobody waits).
    On any other worker the run hands each round's C2ST to them (:class:`TakingTurns`).

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
        turns = TakingTurns(store, run_id, defer=lambda index: True,  # measured later: DaskExecutor.measure_deferred
                            measures_here=measuring is None or _worker_address() in measuring)
        with fanout.use(fanout.DaskFanOut(name=task_key(run_id))), owned_by(sandbox_label(run_id)):
            return carry_out(store, run_id, execute, turns=turns)
    finally:  # a spec's num_threads held for its own run only (run_sequential gives the count back)
        store.close()


def reference_task(store_root: str, run_id: str, index: int) -> Optional[float]:
    """The task measuring a deferred C2ST (:func:`sbi_core.jobs.turns.score_deferred_reference`)."""
    dask_setup()
    store = RunStore(store_root)
    try:
        return score_deferred_reference(store, run_id, index)
    finally:
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


MEASURE_POLL_S = 1.0  # while runs are followed: look for a deferred C2ST to measure at most this often


def _worker_address() -> Optional[str]:
    """The address of the Dask worker running this task (None outside a worker)."""
    from distributed import get_worker

    try:
        return get_worker().address
    except ValueError:  # not in a worker's task
        return None


# Dask's periodic housekeeping, at intervals for a cluster that mostly waits (Dask's defaults in
# brackets): the event-loop latency tick (20 ms; a loop blocked for ``tick.limit``, 3 s, is still
# reported), the memory monitor that pauses and restarts workers over their limit (100 ms) and the
# system monitor that feeds the dashboard and the heartbeats (500 ms). Measured in
# start_local_cluster's docstring.
IDLE_HOUSEKEEPING = {
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
}


def start_local_cluster(n_workers: Optional[int] = None) -> Any:
    """A ``LocalCluster`` of warm worker processes (one thread each, no dashboard, no retries, no
    statistical profiler: it samples the worker's threads every 10 ms for a dashboard nobody
    opens here, about 4 % of a worker's CPU while it trains, measured with py-spy in
    ``bench/classroom.py``).

    No work stealing either: it moved the deferred C2STs, whose restriction to the measuring worker
    is loose (:meth:`DaskExecutor._measuring_worker`), to whichever worker was idle, so every worker
    loaded scikit-learn, SciPy and pandas for them (about 145 MB each; a class of thirty peaked at
    1.50 GB with it, 1.37 GB without). Without it a run's task stays with the worker the scheduler
    gave it on submission (the one with the least work queued); thirty different runs saw their
    first clouds as soon as with it (p95 16.5 s against 15.2-17.0 s, the same hour). (Measured while the
    C2ST was scikit-learn's; it now trains its folds in torch and loads no library of its own.)

    And slower housekeeping (:data:`IDLE_HOUSEKEEPING`): an idle cluster of one worker cost 1.8
    CPU-seconds every 30 s (6 % of a core, all day on a classroom server, and the GIL of the
    process that hosts the scheduler and nannies taken 50 times a second) with Dask's defaults,
    0.3 with these."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 0, "distributed.worker.profile.enabled": False,
                          "distributed.scheduler.work-stealing": False, **IDLE_HOUSEKEEPING}):
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
        self._measuring: Optional[Any] = None  # the future of the deferred C2ST being measured
        self._measure_asked = 0.0  # when measure_deferred last looked for one (monotonic)
        self._measurer: Optional[tuple[float, list[str]]] = None  # (when asked, _measuring_worker's answer)
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
        """Submit the run's task for its next turn; returns its future (held here until it is done).

        ``on_done(run_id)`` is called (in a client thread) once the run has left the cluster,
        however it ended; a task that hands its worker over (see "Taking turns") is followed
        by the next one, and ``on_done`` waits for that.
        """
        line = store.line_key(run_id) if hasattr(store, "line_key") else None
        turn = line[1] if line is not None else 0
        # a key of its own per submission: a resumed run's task must not meet the task of its
        # cancelled attempt that may still be running past its cancel (see "Stopping")
        future = self.client.submit(run_task, str(store.root), run_id, execute_ref, self._measuring_worker(),
                                    priority=-turn,
                                    key=f"{task_key(run_id)}-{uuid.uuid4().hex[:8]}", pure=False)
        with self._lock:
            self._futures[run_id] = future
        future.add_done_callback(lambda fut: self._on_done(store, run_id, fut, on_done, execute_ref))
        return future

    def _on_done(self, store: Any, run_id: str, future: Any, on_done: Optional[Callable[[str], None]],
                 execute_ref: Optional[str] = None) -> None:
        with self._lock:
            current = self._futures.get(run_id) is future
        if current and _handed_over(store, run_id, future):
            try:  # its next turn: back in line, held by this process again
                store.set_pid(run_id, os.getpid())
                self.submit(store, run_id, execute_ref, on_done)
                return
            except Exception:  # noqa: BLE001 - no cluster or store: recorded as lost below
                _log.exception("could not give run %s its next turn", run_id)
        with self._lock:
            current = self._futures.get(run_id) is future
            if current:
                del self._futures[run_id]
        self.measure_deferred(store)
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

    def measure_deferred(self, store: Any, every_s: float = 0.0) -> Optional[tuple[str, int]]:
        """Submit :func:`reference_task` for one deferred C2ST of ``store``'s runs when no run is
        queued and none is being measured; the next follows when it is done. Returns the
        ``(run id, round)`` submitted, or None.

        Called when a task ends and, at most every ``every_s`` seconds, while the job manager follows
        its runs (:meth:`DaskTaskExecutor.reap`): a lone run on a worker that does not measure
        hands its rounds' C2STs over as it goes (:func:`run_task`), and they are measured beside it."""
        with self._lock:
            if self._measuring is not None:
                return None
            now = time.monotonic()
            if every_s and now - self._measure_asked < every_s:
                return None
            self._measure_asked = now
            self._measuring = True  # taken: one at a time
        try:
            if store.list_runs(limit=1, status="queued"):
                todo = []
            else:
                todo = store.deferred_references(limit=1)
            if not todo:
                with self._lock:
                    self._measuring = None
                return None
            run_id, index = todo[0]
            future = self.client.submit(reference_task, str(store.root), run_id, index, pure=False,
                                        key=f"sbi-reference-{run_id}-{index}-{uuid.uuid4().hex[:8]}",
                                        workers=self._measuring_worker(), allow_other_workers=True)
        except Exception:  # noqa: BLE001 - no cluster or store now: tried again when a run ends
            _log.exception("could not measure a deferred C2ST")
            with self._lock:
                self._measuring = None
            return None
        with self._lock:
            self._measuring = future

        def next_one(_fut: Any) -> None:
            with self._lock:
                if self._measuring is future:
                    self._measuring = None
            self.measure_deferred(store)

        future.add_done_callback(next_one)
        return run_id, index

    def _measuring_worker(self) -> Optional[list[str]]:
        """The one worker that measures the deferred C2STs (the first by address), or None (any).

        They come one at a time, so one worker loses nothing, and a worker that only trains (its runs
        hand every C2ST over, :func:`run_task`) never pauses its runs for one. The restriction is loose: were that worker gone,
        another takes the task (work stealing, which would also move it to an idle worker, is off in
        the app's own cluster: :func:`start_local_cluster`). Asked of the scheduler (a round trip) at
        most every :data:`SLOTS_TTL_S`: every run's task carries the answer (:meth:`submit`)."""
        now = time.monotonic()
        known = self._measurer
        if known is not None and now - known[0] < SLOTS_TTL_S:
            return known[1]
        try:
            workers = sorted(self.client.scheduler_info().get("workers", {}))
        except Exception:  # noqa: BLE001 - any worker then
            return None
        if not workers:
            return None
        self._measurer = (now, workers[:1])
        return workers[:1]

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


def _handed_over(store: Any, run_id: str, future: Any) -> bool:
    """Whether ``future``'s task ended its turn with the run back in line (see "Taking turns")."""
    try:
        if future.status != "finished" or future.result(timeout=5) != "queued":
            return False
        info = store.get_run(run_id)
    except Exception:  # noqa: BLE001 - an unreadable result or store: not a turn to give
        return False
    return info is not None and info.status == "queued" and not info.cancel_requested


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


class DaskTaskExecutor:
    """The :class:`~sbi_core.jobs.executor.Executor` of Dask tasks: a run, or a run's checks, is a
    task on the cluster of a :class:`DaskExecutor` (:func:`run_task`; for checks
    :func:`sbi_core.jobs.dask_checks.check_task`, submitted once the run has trained).

    One per job manager (and so per store); the cluster may be shared by many. It holds back an
    owner's later runs while one of theirs is on the cluster (:meth:`held`). A worker carries
    other jobs too, so it is never killed for one of them: a job that ignores its cancel is
    recorded cancelled, its task disowned and its own sandbox processes killed
    (:meth:`enforce_cancel`, and "Stopping" above).

    Args:
        store: the :class:`~sbi_core.store.runs.RunStore` the jobs are recorded in.
        cluster: the :class:`DaskExecutor` to run on (default: this process's, :func:`shared_executor`,
            made on first use).
        execute: ``"module:function"`` that replaces :func:`sbi_core.run.loop.execute` (tests).
    """

    name = "dask"

    def __init__(self, store: Any, cluster: Optional[DaskExecutor] = None, execute: Optional[str] = None) -> None:
        self.store = store
        self.execute = execute
        self._cluster = cluster
        self._owner_active: dict[str, str] = {}  # owner -> their run on the cluster
        self._owner_held: dict[str, list[str]] = {}  # owner -> their runs waiting for it
        self._slots: Optional[tuple[float, int]] = None  # (when asked, the cluster's worker threads)
        self._lock = threading.Lock()

    @property
    def cluster(self) -> DaskExecutor:
        """The :class:`DaskExecutor` (this process's shared one unless given); its cluster starts on first use."""
        if self._cluster is None:
            self._cluster = shared_executor()
        return self._cluster

    # ---- starting ---------------------------------------------------------
    def submit(self, kind: JobKind, run_id: str, spec: Any) -> None:
        """A run: submit its task, or hold it here while its owner has a run on the cluster. Checks:
        hold them in this process until their run has ended, then submit their task
        (:func:`sbi_core.jobs.dask_checks.submit_checks_when_trained`). Either way this process is
        recorded as the holder until a worker claims the job."""
        if kind is CHECKS:
            from sbi_core.jobs.dask_checks import submit_checks_when_trained  # torch: deferred, see _HEAVY

            submit_checks_when_trained(self.cluster, self.store, run_id)
            return
        self._submit_run(run_id)

    def _submit_run(self, run_id: str) -> None:
        """Submit the run's task, or hold it here while its owner has a run on the cluster.

        At most one run per owner is on the cluster at a time (one student cannot fill every
        worker); the owner's later runs stay queued in the store, with their place in the
        queue, and the next is submitted when the last one's task ends. Runs without an
        owner are never held. No cluster: the run fails with a plain message.
        """
        # while queued the run is held by this process (its future lives here): set before the
        # task can claim it, which records the worker's pid
        self.store.set_pid(run_id, os.getpid())
        info = self.store.get_run(run_id)
        owner = info.owner if info is not None else None
        with self._lock:
            if owner and owner in self._owner_active:
                self._owner_held.setdefault(owner, []).append(run_id)
                return
            if owner:
                self._owner_active[owner] = run_id
        try:
            self.cluster.submit(self.store, run_id, self.execute, on_done=lambda rid: self._owner_done(owner, rid))
        except Exception as err:  # noqa: BLE001 - no cluster: the run fails with a plain message
            message = f"The run could not be started: the Dask cluster is not available ({err})."
            RUN.finish(self.store, run_id, "failed", message=message, detail=repr(err))
            self._owner_done(owner, run_id)

    def _owner_done(self, owner: Optional[str], run_id: str) -> None:
        """The owner's run ``run_id`` left the cluster (or was ended from outside): submit their next
        held run still queued. Called again for a run no longer the owner's active one, it does nothing."""
        if not owner:
            return
        with self._lock:
            if self._owner_active.get(owner) == run_id:
                del self._owner_active[owner]
            elif owner in self._owner_active:
                return  # their next run is on the cluster already
            held = self._owner_held.get(owner, [])
        while held:
            with self._lock:
                nxt = held.pop(0) if held else None
            if nxt is None:
                return
            info = self.store.get_run(nxt)
            if info is not None and info.status == "queued" and not self.store.cancel_requested(nxt):
                self._submit_run(nxt)
                return

    def held(self) -> list[str]:
        """Run ids held back because their owner already has a run on the cluster."""
        with self._lock:
            return [rid for runs in self._owner_held.values() for rid in runs]

    def slots(self) -> int:
        """The cluster's worker threads (asked at most every :data:`SLOTS_TTL_S` seconds); before the
        cluster is up, the workers a local cluster will have (:func:`default_n_workers`)."""
        now = time.monotonic()
        if self._slots is not None and now - self._slots[0] < SLOTS_TTL_S:
            return self._slots[1]
        cluster = self._cluster
        try:
            if cluster is not None and cluster._client is not None:
                n = sum(cluster._client.nthreads().values())
            else:
                n = default_n_workers()
        except Exception:  # noqa: BLE001 - a cluster that cannot be asked: the last answer, or one
            n = self._slots[1] if self._slots is not None else 1
        self._slots = (now, max(1, int(n)))
        return self._slots[1]

    # ---- following --------------------------------------------------------
    def alive(self, kind: JobKind, run_id: str) -> Optional[bool]:
        """Whether the job's holder lives: this process while it is queued, then its worker."""
        return holder_alive(self.store, kind, run_id)

    def collect(self) -> None:
        """Nothing to collect: no process is started here for a job."""

    def reap(self, kind: JobKind) -> None:
        """Runs: store the endings the store refused before (:meth:`DaskExecutor.record_pending`) and
        end running runs whose worker died (:func:`record_lost`). Checks record their own lost
        endings when their task ends (:mod:`sbi_core.jobs.dask_checks`)."""
        if kind is not RUN:
            return
        if self._cluster is not None:
            self._cluster.record_pending()
            self._cluster.measure_deferred(self.store, every_s=MEASURE_POLL_S)
        for info in self.store.list_runs(limit=None, status="running"):
            if not self.store.worker_alive(info.id):
                record_lost(self.store, info.id)

    def unrecorded(self, kind: JobKind, run_id: str) -> Optional[str]:
        """Why the ending of a run whose task has ended is not stored yet (:meth:`DaskExecutor.unrecorded`)."""
        if kind is not RUN or self._cluster is None:
            return None
        return self._cluster.unrecorded(run_id)

    # ---- stopping ---------------------------------------------------------
    def _forget(self, kind: JobKind, run_id: str) -> None:
        """Cancel and disown the job's task: whatever it still does changes nothing."""
        if kind is CHECKS:
            from sbi_core.jobs.dask_checks import forget_checks  # torch: deferred, see _HEAVY

            forget_checks(run_id)
        else:
            self.cluster.forget(run_id)

    def release(self, kind: JobKind, run_id: str) -> None:
        """A queued run's task is cancelled and disowned; queued checks are held by this process's
        waiter, which drops them once it reads them cancelled."""
        if kind is RUN:
            self.cluster.forget(run_id)

    def enforce_cancel(self, kind: JobKind, run_id: str, grace_s: float) -> None:
        """Give the job ``grace_s`` seconds to stop by itself; then record it cancelled, disown and
        cancel its task, and kill its own sandbox processes. Its worker and the other jobs on it go
        on; the task's later doings are discarded (the claim it was carried out under is gone). A
        run's owner may then start their next run. A store that cannot take the record is retried
        for up to ten minutes."""
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            job = kind.record(self.store, run_id)
            if job is None or job.is_terminal:
                return
            time.sleep(0.2)
        give_up = time.monotonic() + 600.0
        while True:
            try:
                kind.finish(self.store, run_id, "cancelled", only_from=("running",))
                break
            except StoreUnavailable:
                if time.monotonic() > give_up:
                    break
                time.sleep(1.0)
        self._forget(kind, run_id)
        self.cluster.stop_processes(sandbox_label(run_id, checks=kind is CHECKS))
        if kind is RUN:
            info = self.store.get_run(run_id)
            if info is not None and info.owner:
                self._owner_done(info.owner, run_id)

    def end_now(self, kind: JobKind, run_id: str, job: Any) -> None:
        """Record the job cancelled, disown its task and, if it was running, kill its sandbox
        processes; the shared worker is left alone (:class:`~sbi_core.jobs.worker._Claim`)."""
        kind.finish(self.store, run_id, "cancelled")
        self._forget(kind, run_id)
        if job.status == "running":
            self.cluster.stop_processes(sandbox_label(run_id, checks=kind is CHECKS))
        if kind is RUN and job.owner:
            self._owner_done(job.owner, run_id)

    def discard(self, run_id: str) -> None:
        """Nothing kept: the run's tasks were disowned when it was ended (:meth:`end_now`)."""

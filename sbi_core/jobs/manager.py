"""Background jobs: each run, and each run's calibration checks, is carried out by an executor that
writes to the store.

:class:`JobManager` records a job in the :class:`RunStore` (``queued``), hands it to its one
executor (the :class:`~sbi_core.jobs.executor.Executor` protocol) and returns at once; the job
queues for a slot (at most ``max_running`` at a time), runs, and records every event and its
outcome in the store, so anything that can read the store can follow it. Two executors implement
the protocol (``JobManager(executor=...)``, default ``$SBI_EXECUTOR``, else ``"dask"``):

* ``"dask"``: one task per job on a Dask cluster of warm workers
  (:class:`~sbi_core.jobs.dask_executor.DaskTaskExecutor`: queued runs cost no process, torch is
  imported once per worker; the app starts a local cluster by itself, ``$SBI_DASK_SCHEDULER``
  names an existing one);
* ``"process"``: one detached ``python -m sbi_core.jobs.worker`` per job
  (:class:`~sbi_core.jobs.process_executor.WorkerProcessExecutor`); workers live in their own
  session, so they outlive the script (or Streamlit rerun) that started them.

Both carry out a run with the same body (:func:`sbi_core.jobs.worker.carry_out`). The manager
never asks which executor it holds: runs and checks go through one lifecycle -- start, follow
(and wait), cancel, reap -- written once and parametrised by the job's kind
(:data:`~sbi_core.jobs.executor.RUN`, :data:`~sbi_core.jobs.executor.CHECKS`); what differs
between executors is behind the protocol's operations.

A run can be stopped two ways: :meth:`JobManager.cancel` (at once, the round in progress is
dropped) and :meth:`JobManager.stop` (after the epoch in progress, keeping its best network as
that round's posterior). Cancelling a job never stops anything but that job: a worker process of
its own is killed if it ignores the cancel past the grace time, but a Dask worker, shared with
other jobs, never is -- the job is recorded cancelled, its own sandbox processes are killed and
its task's later doings are discarded (:meth:`Executor.enforce_cancel
<sbi_core.jobs.executor.Executor.enforce_cancel>`).

A run's calibration checks (:mod:`sbi_core.checks`) wait for the run to finish training, then
for a slot (checks and runs share the slots); :meth:`JobManager.start_checks` starts them,
:meth:`~JobManager.cancel_checks` stops them, and their status and progress are in the store
(:mod:`sbi_core.store.check_records`).

A failed or cancelled run goes on from its last finished round with :meth:`JobManager.resume`;
a manager made with ``recover=True`` (the app's) carries on the runs a previous server left
active (:mod:`sbi_core.jobs.resume`).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Optional, Sequence

from sbi_core.errors import SBIError
from sbi_core.jobs.dask_executor import DaskTaskExecutor
from sbi_core.jobs.executor import CHECKS, RUN, Executor, JobKind
from sbi_core.jobs.process_executor import WorkerProcessExecutor
from sbi_core.jobs.resume import recover_runs, resume_run
from sbi_core.run.spec import RunSpec
from sbi_core.store.check_records import CheckInfo
from sbi_core.store.errors import StoreUnavailable
from sbi_core.store.runs import RunInfo, RunStore
from sbi_core.store.turns import PlaceInLine

# _HEAVY: the job manager starts, lists and cancels runs without torch (the store, the executors and
# resuming need none); check jobs (sbi_core.checks, built on torch) load it when checks are started.

__all__ = ["JobManager", "make_executor", "default_max_running", "EXECUTOR_ENV", "EXECUTORS", "CANCEL_GRACE_S"]

EXECUTOR_ENV = "SBI_EXECUTOR"
EXECUTORS = ("process", "dask")
DEFAULT_EXECUTOR = "dask"  # measured: ~2 s less per run to its first epoch, ~15 MB instead of ~100 MB per queued run

CANCEL_GRACE_S = 10.0  # a running job that ignores its cancel this long is stopped from outside (see cancel)
PIDLESS_GRACE_S = 60.0  # a queued job with no holder recorded yet is being started (as the store's reapers)


def default_max_running(cpu_count: Optional[int] = None) -> int:
    """Runs at a time: 1 on machines with up to 2 cores, else half the cores."""
    n = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    return 1 if n <= 2 else n // 2


def default_threads_per_run(cpu_count: int, max_running: int) -> int:
    """Torch threads per worker: the cores left after one for the app, shared by the running workers.

    On a 2-core laptop that is one thread: the web server and the browser
    need the other core, and an oversubscribed torch spins its threads and
    trains many times slower (the small networks here gain little from a
    second thread anyway).
    """
    return max(1, (cpu_count - 1) // max(1, max_running))


def make_executor(choice: Any, store: RunStore, max_running: int, threads_per_run: int,
                  execute: Optional[str] = None) -> Executor:
    """The executor that ``JobManager``'s ``executor`` argument names, made for ``store``.

    ``choice``: an :class:`~sbi_core.jobs.executor.Executor` (used as it is); a
    :class:`~sbi_core.jobs.dask_executor.DaskExecutor` (Dask, on that cluster); ``"process"`` or
    ``"dask"`` (None: ``$SBI_EXECUTOR``, else ``"dask"``); or, its older meaning, a
    ``"module:function"`` string: worker processes running that function. ``execute``:
    ``"module:function"`` that replaces :func:`sbi_core.run.loop.execute` (tests). Raises
    :class:`SBIError` naming the choices for an unknown name.
    """
    if isinstance(choice, Executor):
        return choice
    if choice is not None and not isinstance(choice, str):  # a DaskExecutor of the caller's (a cluster of one's own)
        return DaskTaskExecutor(store, cluster=choice, execute=execute)
    if isinstance(choice, str) and ":" in choice:  # the older meaning: the run function
        return WorkerProcessExecutor(store, max_running, threads_per_run, execute=choice)
    name = (choice or os.environ.get(EXECUTOR_ENV, "") or DEFAULT_EXECUTOR).strip().lower()
    if name not in EXECUTORS:
        raise SBIError(f"Unknown executor {name!r} (from {EXECUTOR_ENV} or the job manager): "
                       f"use one of {', '.join(EXECUTORS)}.")
    if name == "dask":
        return DaskTaskExecutor(store, execute=execute)
    return WorkerProcessExecutor(store, max_running, threads_per_run, execute=execute)


class JobManager:
    """Start, follow and cancel runs and their checks, carried out in the background by one executor."""

    def __init__(
        self,
        store: RunStore,
        max_running: Optional[int] = None,
        threads_per_run: Optional[int] = None,
        executor: Any = None,
        cancel_grace_s: float = CANCEL_GRACE_S,
        execute: Optional[str] = None,
        recover: bool = False,
    ) -> None:
        """Args:
            executor: what carries out the jobs (:func:`make_executor`): ``"process"`` or ``"dask"``
                (default ``$SBI_EXECUTOR``, else ``"dask"``), a
                :class:`~sbi_core.jobs.dask_executor.DaskExecutor` (dask, on that cluster), or any
                :class:`~sbi_core.jobs.executor.Executor`. A ``"module:function"`` string keeps its
                older meaning: ``execute`` for processes.
            execute: ``"module:function"`` that replaces :func:`sbi_core.run.loop.execute` (tests).
            recover: carry on the runs a previous server left active (:func:`sbi_core.jobs.resume.recover_runs`;
                the app's one manager does) instead of marking them failed.

        ``max_running`` and ``threads_per_run`` hold for worker processes (and checks); on
        Dask the cluster's worker threads are the slots and each worker has one torch thread.
        """
        cpus = os.cpu_count() or 1
        self.store = store
        self.max_running = max(1, int(max_running)) if max_running is not None else default_max_running(cpus)
        self.threads_per_run = (
            max(1, int(threads_per_run)) if threads_per_run is not None else default_threads_per_run(cpus, self.max_running)
        )
        self.backend: Executor = make_executor(executor, store, self.max_running, self.threads_per_run, execute)
        self.cancel_grace_s = float(cancel_grace_s)
        self.recovered: dict[str, str] = {}
        try:  # runs left behind by a previous server go on, or are failed (not "running" forever)
            if recover:
                self.recovered = recover_runs(self)
            self.store.reap_stale()
        except Exception:
            pass

    @property
    def executor(self) -> str:
        """The name of the executor carrying out the jobs (``"process"``, ``"dask"``, or a custom one's)."""
        return self.backend.name

    # ---- starting ---------------------------------------------------------
    def start_or_reuse(self, spec: RunSpec, title: str = "", owner: Optional[str] = None) -> tuple[str, bool]:
        """``(run_id, reused)``: an identical run (same spec and seed) that is queued, running or
        done (:meth:`RunStore.create_or_reuse`), or a new one, started like :meth:`start`."""
        self.backend.collect()
        run_id, reused = self.store.create_or_reuse(spec, title, owner=owner)
        if not reused:
            self.backend.submit(RUN, run_id, spec)
        return run_id, reused

    def start(self, spec: RunSpec, title: str = "", owner: Optional[str] = None) -> str:
        """Queue a run of ``spec`` (owned by ``owner``, see :class:`RunStore`) and hand it to the
        executor; returns the run id at once (a run that could not start is recorded failed)."""
        self.backend.collect()
        run_id = self.store.create_run(spec, title, owner=owner)
        self.backend.submit(RUN, run_id, spec)
        return run_id

    def dask(self) -> Any:
        """The :class:`~sbi_core.jobs.dask_executor.DaskExecutor` whose cluster carries the jobs (the
        process's shared one unless given; its cluster starts on first use), or None when the
        executor has no cluster (worker processes)."""
        return getattr(self.backend, "cluster", None)

    def held(self) -> list[str]:
        """Run ids the executor holds back on purpose (Dask: their owner already has a run on the cluster)."""
        return self.backend.held()

    def ending_unrecorded(self, run_id: str) -> Optional[str]:
        """Why the ending of a run whose Dask task has ended is not in the store yet (the store's
        plain message: the disk is full, ...), or None. It is recorded as soon as the store takes writes."""
        return self.backend.unrecorded(RUN, run_id)

    # ---- following --------------------------------------------------------
    def _follow(self, kind: JobKind, run_id: str) -> Any:
        """The job's current record; an active job whose carrier has ended without recording its
        ending (its task ended, its worker died) is recorded ended first (:meth:`_reap`)."""
        self.backend.collect()
        job = kind.record(self.store, run_id)
        if job is None or not job.is_active:
            return job
        if self.backend.unrecorded(kind, run_id) is not None:  # its task has ended: reaped by that, not by its worker
            self._reap(kind)
            return kind.record(self.store, run_id)
        alive = self.backend.alive(kind, run_id)
        if alive is None:  # no holder recorded: being started, unless it runs or has waited too long
            if job.status == "running" or time.time() - job.created > PIDLESS_GRACE_S:
                self._reap(kind)
                return kind.record(self.store, run_id)
            return job
        if not alive:
            time.sleep(0.05)  # the worker may have just finished: give its last write a moment
            job = kind.record(self.store, run_id)
            if job is not None and job.is_active:
                self._reap(kind)
                job = kind.record(self.store, run_id)
        return job

    def _reap(self, kind: JobKind = RUN) -> None:
        """Mark active jobs of ``kind`` whose carrier has ended without an ending stored: first those the
        executor knows of (:meth:`Executor.reap <sbi_core.jobs.executor.Executor.reap>`), then those
        whose holding process is gone (the store's plain message). A store that cannot be written
        (full, read-only) keeps them as they are: reading goes on, and the next call tries again."""
        try:
            self.backend.reap(kind)
            kind.reap_stale(self.store)
        except StoreUnavailable:
            pass

    def _wait(self, kind: JobKind, run_id: str, timeout: Optional[float], poll_s: float) -> Any:
        """Block until the job ends; returns its record. Raises KeyError if there is no such job,
        TimeoutError after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self._follow(kind, run_id)
            if job is None:
                raise KeyError(kind.missing(run_id))
            if job.is_terminal:
                self.backend.collect()
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(kind.still(run_id, job.status, timeout))
            time.sleep(poll_s)

    def status(self, run_id: str) -> Optional[RunInfo]:
        """The run's current record (a run whose worker died is marked failed first)."""
        return self._follow(RUN, run_id)

    def list(self, limit: Optional[int] = 50, status: str | Sequence[str] | None = None,
             owner: Optional[str] = None) -> list[RunInfo]:
        """Runs, newest first (stale active runs are marked failed first); ``owner``: that owner's
        runs and everyone's (:meth:`RunStore.list_runs`)."""
        self.backend.collect()
        self._reap(RUN)
        return self.store.list_runs(limit=limit, status=status, owner=owner)

    def queue_position(self, run_id: str) -> Optional[int]:
        """1-based place in the queue, or None if the run is not queued."""
        return self.store.queue_position(run_id)

    def place_in_line(self, run_id: str) -> Optional[PlaceInLine]:
        """Where the queued run stands (its position, the runs ahead and the expected wait, with as
        many runs training at once as the executor has slots), or None if it is not queued
        (:meth:`RunStore.place_in_line <sbi_core.store.turns.RunTurns.place_in_line>`)."""
        return self.store.place_in_line(run_id, workers=self.backend.slots())

    def wait(self, run_id: str, timeout: Optional[float] = None, poll_s: float = 0.1) -> RunInfo:
        """Block until the run ends; returns its record. Raises TimeoutError after ``timeout`` s."""
        return self._wait(RUN, run_id, timeout, poll_s)

    def resume(self, run_id: str) -> int:
        """Carry on a failed or cancelled run from its last finished round, under the same id
        (:func:`sbi_core.jobs.resume.resume_run`); returns that round (0-based). Raises
        :class:`~sbi_core.errors.SBIError` saying why when it cannot."""
        self.backend.collect()
        return resume_run(self, run_id)

    # ---- stopping ---------------------------------------------------------
    def _cancel(self, kind: JobKind, run_id: str) -> Any:
        """Ask the job to cancel: a queued one is recorded cancelled at once and released by the
        executor; a running one stops by itself within a step, or is stopped from outside after
        ``cancel_grace_s`` (:meth:`Executor.enforce_cancel <sbi_core.jobs.executor.Executor.enforce_cancel>`,
        in a background thread). Returns the job's record; a job that has ended is left alone."""
        job = kind.record(self.store, run_id)
        if job is None or job.is_terminal:
            return job
        kind.request_cancel(self.store, run_id)
        if kind.finish(self.store, run_id, "cancelled", only_from=("queued",)):
            self.backend.release(kind, run_id)
        else:
            threading.Thread(target=self.backend.enforce_cancel, args=(kind, run_id, self.cancel_grace_s),
                             name=kind.thread_name("cancel", run_id), daemon=True).start()
        return kind.record(self.store, run_id)

    def cancel(self, run_id: str) -> Optional[RunInfo]:
        """Stop a run: a queued one is cancelled at once; a running one stops within an epoch.

        A run still running after ``cancel_grace_s`` is stopped from outside, from a
        background thread, and marked cancelled -- only what belongs to that run alone:
        with processes, its worker process (and group); on Dask its task is cancelled and
        its sandbox processes killed, never the worker, which carries other runs.
        """
        return self._cancel(RUN, run_id)

    def stop(self, run_id: str) -> Optional[RunInfo]:
        """Stop a run and keep what is trained (the button "Stop and keep what is trained").

        A running run ends after the epoch in progress: that round's best network
        so far becomes its posterior and the run is recorded ``done`` with
        ``stopped_by_request`` (:mod:`sbi_core.run.loop`). Asked while round 1 still
        simulates, nothing is trained yet and the run ends cancelled. A queued
        run has nothing to keep: it is cancelled at once. Unlike :meth:`cancel`,
        the worker is never killed: it may take the rest of an epoch.
        """
        info = self.store.get_run(run_id)
        if info is None or info.is_terminal:
            return info
        if info.status == "queued":
            return self.cancel(run_id)
        self.store.request_stop(run_id)
        return self.store.get_run(run_id)

    def delete(self, run_id: str) -> None:
        """Stop the run and its checks if active, then remove them and the run's artifacts.

        The executor ends each active job at once (:meth:`Executor.end_now
        <sbi_core.jobs.executor.Executor.end_now>`): with processes its worker process is killed;
        on Dask its task is cancelled and disowned, its sandbox processes killed, and the shared
        worker left alone: whatever the task still does is discarded
        (:class:`~sbi_core.jobs.worker._Claim`)."""
        for kind in (CHECKS, RUN):
            job = kind.record(self.store, run_id)
            if job is not None and job.is_active:
                kind.request_cancel(self.store, run_id)
                self.backend.end_now(kind, run_id, job)
        self.store.delete_run(run_id)
        self.backend.discard(run_id)

    # ---- calibration checks (sbi_core.checks) ------------------------------------
    def start_checks(self, run_id: str, options: Optional[dict] = None) -> CheckInfo:
        """Queue the calibration checks of ``run_id`` and hand them to the executor; returns their record at once.

        ``options``: :class:`~sbi_core.checks.CheckOptions` fields (the seed defaults to
        the run's ``"checks"`` stream). A run still queued or training is waited for.
        Raises :class:`SBIError` for a run that does not exist or ended without a
        posterior, bad options, or checks already under way.
        """
        from sbi_core.checks.options import CheckOptions  # torch: deferred, see _HEAVY

        info = self.status(run_id)
        if info is None:
            raise SBIError(f"There is no run {run_id} in this run store.")
        if info.status in ("failed", "cancelled"):
            raise SBIError(f"This run ended {info.status} before it finished training: it has no posterior to check.")
        opts = CheckOptions.from_dict(options).resolved(info.spec.seed)
        self.store.create_check(run_id, opts.to_dict())
        self.backend.submit(CHECKS, run_id, info.spec)
        return self.store.get_check(run_id)

    def check_status(self, run_id: str) -> Optional[CheckInfo]:
        """The run's check job (one whose worker died is marked failed first), or ``None`` if never started."""
        return self._follow(CHECKS, run_id)

    def cancel_checks(self, run_id: str) -> Optional[CheckInfo]:
        """Stop the run's checks: queued ones at once, running ones within a step (stopped from
        outside after the grace time, as for :meth:`cancel`)."""
        return self._cancel(CHECKS, run_id)

    def wait_checks(self, run_id: str, timeout: Optional[float] = None, poll_s: float = 0.1) -> CheckInfo:
        """Block until the run's checks end; returns their record. Raises TimeoutError after ``timeout`` s."""
        return self._wait(CHECKS, run_id, timeout, poll_s)

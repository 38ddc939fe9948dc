"""Background runs: each run is carried out by an executor that writes to the store.

Two executors carry out runs (``JobManager(executor=...)``, default
``$SBI_EXECUTOR``, else ``"dask"``): ``"dask"``, one task per run on a Dask
cluster of warm workers (:mod:`sbi_core.jobs.dask_executor`: queued runs cost no
process, torch is imported once per worker; the app starts a local cluster by
itself, ``$SBI_DASK_SCHEDULER`` names an existing one), and ``"process"``, one
detached worker process per run (below). Both carry out a run with the same body
(:func:`sbi_core.jobs.worker.carry_out`) and record everything in the store, so
following, stopping and reaping a run are the same for both.

A run can be stopped two ways: :meth:`JobManager.cancel` (at once, the round
in progress is dropped) and :meth:`JobManager.stop` (after the epoch in
progress, keeping its best network as that round's posterior). Cancelling a
run never stops anything but that run: a worker process of its own (the process
executor) is killed if it ignores the cancel past the grace time, but a Dask
worker, shared with other runs, never is -- the run is recorded cancelled, its
own sandbox processes are killed and its task's later doings are discarded.

:class:`JobManager` starts ``python -m sbi_core.jobs.worker`` for a run
(:mod:`sbi_core.jobs.process_executor`) and returns at once; the worker queues for a slot (at most ``max_running`` runs at a time),
runs, and records every event and the outcome in the :class:`RunStore`. Worker
processes live in their own session, so they outlive the script (or Streamlit
rerun) that started them; anything that can read the store can follow them.

A run's calibration checks (:mod:`sbi_core.checks`) are a job of the same kind:
on Dask, a task submitted once the run has trained (:mod:`sbi_core.jobs.dask_checks`);
with processes, :meth:`JobManager.start_checks` starts ``python -m sbi_core.jobs.worker
--checks``, which waits for the run to finish training, then for a slot (checks and
runs share the ``max_running`` slots). Both record status and progress in the store
(:mod:`sbi_core.store.check_records`); :meth:`~JobManager.cancel_checks` stops them.

A failed or cancelled run goes on from its last finished round with
:meth:`JobManager.resume`; a manager made with ``recover=True`` (the app's) carries
on the runs a previous server left active (:mod:`sbi_core.jobs.resume`).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Optional, Sequence

from sbi_core.errors import SBIError
from sbi_core.events import cancelled_event, failed_event
from sbi_core.jobs.dask_executor import record_lost, sandbox_label, shared_executor
from sbi_core.jobs.process_executor import WorkerProcesses, worker_command
from sbi_core.jobs.resume import recover_runs, resume_run
from sbi_core.run.spec import RunSpec
from sbi_core.store.check_records import CheckInfo
from sbi_core.store.errors import StoreUnavailable
from sbi_core.store.runs import RunInfo, RunStore, pid_alive

# _HEAVY: the job manager starts, lists and cancels runs without torch (the store, the executors and
# resuming need none); check jobs (sbi_core.checks, built on torch) load it when checks are started.

__all__ = ["JobManager", "default_max_running", "EXECUTOR_ENV", "EXECUTORS", "CANCEL_GRACE_S"]

EXECUTOR_ENV = "SBI_EXECUTOR"
EXECUTORS = ("process", "dask")
DEFAULT_EXECUTOR = "dask"  # measured: ~2 s less per run to its first epoch, ~15 MB instead of ~100 MB per queued run

CANCEL_GRACE_S = 10.0  # a running run that ignores its cancel this long is stopped from outside (see cancel)


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


def _executor_choice(executor: Any, execute: Optional[str]) -> tuple[str, Optional[str], Any]:
    """``(kind, run function reference, DaskExecutor or None)`` from ``JobManager``'s arguments."""
    if executor is not None and not isinstance(executor, str):
        return "dask", execute, executor  # a DaskExecutor of the caller's (tests, a cluster of one's own)
    if isinstance(executor, str) and ":" in executor:  # the older meaning: the run function
        return "process", executor, None
    kind = (executor or os.environ.get(EXECUTOR_ENV, "") or DEFAULT_EXECUTOR).strip().lower()
    if kind not in EXECUTORS:
        raise SBIError(f"Unknown executor {kind!r} (from {EXECUTOR_ENV} or the job manager): "
                       f"use one of {', '.join(EXECUTORS)}.")
    return kind, execute, None


class JobManager:
    """Start, follow and cancel runs carried out in the background (worker processes or Dask tasks)."""

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
            executor: ``"process"`` or ``"dask"`` (default ``$SBI_EXECUTOR``, else ``"dask"``),
                or a :class:`~sbi_core.jobs.dask_executor.DaskExecutor` (dask, on that cluster). A
                ``"module:function"`` string keeps its older meaning: ``execute`` for processes.
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
        self.executor, self.execute, self._dask = _executor_choice(executor, execute)
        self.cancel_grace_s = float(cancel_grace_s)
        self._workers = WorkerProcesses()
        self._owner_active: dict[str, str] = {}  # owner -> their run on the Dask cluster
        self._owner_held: dict[str, list[str]] = {}  # owner -> their runs waiting for it
        self._lock = threading.Lock()
        self.recovered: dict[str, str] = {}
        try:  # runs left behind by a previous server go on, or are failed (not "running" forever)
            if recover:
                self.recovered = recover_runs(self)
            self.store.reap_stale()
        except Exception:
            pass

    # ---- starting ---------------------------------------------------------
    def _threads_for(self, spec: RunSpec) -> int:
        wanted = getattr(spec, "num_threads", None)
        return max(1, int(wanted)) if wanted else self.threads_per_run

    def start_or_reuse(self, spec: RunSpec, title: str = "", owner: Optional[str] = None) -> tuple[str, bool]:
        """``(run_id, reused)``: an identical run (same spec and seed) that is queued, running or
        done (:meth:`RunStore.create_or_reuse`), or a new one, started like :meth:`start`."""
        self._reap_children()
        run_id, reused = self.store.create_or_reuse(spec, title, owner=owner)
        return (run_id, True) if reused else (self._launch(run_id, spec), False)

    def start(self, spec: RunSpec, title: str = "", owner: Optional[str] = None) -> str:
        """Queue a run of ``spec`` (owned by ``owner``, see :class:`RunStore`) and start its worker;
        returns the run id at once."""
        self._reap_children()
        return self._launch(self.store.create_run(spec, title, owner=owner), spec)

    def _launch(self, run_id: str, spec: RunSpec) -> str:
        """Hand the queued run ``run_id`` to the executor; returns ``run_id``."""
        if self.executor == "dask":
            return self._submit_to_dask(run_id)
        threads = self._threads_for(spec)
        cmd = worker_command(self.store.root, run_id, self.max_running, threads, self.execute)
        try:
            pid = self._workers.spawn(run_id, cmd, threads, self.store.artifact_dir(run_id) / "worker.log")
        except OSError as err:
            message = f"The run could not be started: the worker process failed to launch ({err})."
            self.store.finish_run(
                run_id, "failed", message=message, event=failed_event(message, repr(err))
            )
            return run_id
        self.store.set_pid(run_id, pid)
        return run_id

    def dask(self) -> Any:
        """The :class:`~sbi_core.jobs.dask_executor.DaskExecutor` of a dask job manager (the process's
        shared one unless given); its cluster starts on first use. None for processes."""
        if self.executor != "dask":
            return None
        if self._dask is None:
            self._dask = shared_executor()
        return self._dask

    def _submit_to_dask(self, run_id: str) -> str:
        """Submit the run's task, or hold it here while its owner has a run on the cluster.

        At most one run per owner is on the cluster at a time (one student cannot fill every
        worker); the owner's later runs stay queued in the store, with their place in the
        queue, and the next is submitted when the last one's task ends. Runs without an
        owner are never held.
        """
        # while queued the run is held by this process (its future lives here): set before the
        # task can claim it, which records the worker's pid
        self.store.set_pid(run_id, os.getpid())
        info = self.store.get_run(run_id)
        owner = info.owner if info is not None else None
        with self._lock:
            if owner and owner in self._owner_active:
                self._owner_held.setdefault(owner, []).append(run_id)
                return run_id
            if owner:
                self._owner_active[owner] = run_id
        try:
            self.dask().submit(self.store, run_id, self.execute, on_done=lambda rid: self._owner_done(owner, rid))
        except Exception as err:  # noqa: BLE001 - no cluster: the run fails with a plain message
            message = f"The run could not be started: the Dask cluster is not available ({err})."
            self.store.finish_run(run_id, "failed", message=message, event=failed_event(message, repr(err)))
            self._owner_done(owner, run_id)
        return run_id

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
                self._submit_to_dask(nxt)
                return

    def held(self) -> list[str]:
        """Run ids held back because their owner already has a run on the cluster (dask only)."""
        with self._lock:
            return [rid for runs in self._owner_held.values() for rid in runs]

    def _kill_worker(self, pid: int, start: Optional[str]) -> None:
        """Kill the worker process of one run or check (the process executor: it and its group belong
        to that job alone). A Dask worker carries other runs too: it is never killed for one of them
        (see :meth:`_end_dask_job`)."""
        if self.executor != "dask":
            self._workers.kill_group(pid, start)

    def _stop_dask_processes(self, run_id: str, checks: bool = False) -> None:
        """Kill the sandbox processes of the run's (or its checks') Dask task: they belong to it alone."""
        self.dask().stop_processes(sandbox_label(run_id, checks=checks))

    def ending_unrecorded(self, run_id: str) -> Optional[str]:
        """Why the ending of a run whose Dask task has ended is not in the store yet (the store's
        plain message: the disk is full, ...), or None. It is recorded as soon as the store takes writes."""
        if self.executor != "dask" or self._dask is None:
            return None
        return self._dask.unrecorded(run_id)

    # ---- following --------------------------------------------------------
    def _reap_children(self) -> None:
        """Collect exited worker processes started here (no zombies), forget them."""
        self._workers.reap()

    def _check(self, info: Optional[RunInfo]) -> Optional[RunInfo]:
        """If an active run's worker has died without recording an ending, record it now."""
        if info is None or not info.is_active:
            return info
        self._reap_children()
        if self.ending_unrecorded(info.id) is not None:  # its task has ended: reaped by that, not by its worker
            self._reap()
            return self.store.get_run(info.id)
        pid, start = self.store.worker_process(info.id)
        if pid is None:
            if info.status == "running" or time.time() - info.created > 60:
                self._reap()
                return self.store.get_run(info.id)
            return info
        if not pid_alive(pid, start):
            # the worker may have just finished: give its last write a moment
            time.sleep(0.05)
            fresh = self.store.get_run(info.id)
            if fresh is not None and fresh.is_active:
                self._reap()
                fresh = self.store.get_run(info.id)
            return fresh
        return info

    def _reap(self) -> None:
        """Mark active runs whose task has ended without an ending stored (Dask: by the task's state,
        :meth:`~sbi_core.jobs.dask_executor.DaskExecutor.record_pending`) or whose worker is gone: a Dask
        worker's with :data:`~sbi_core.jobs.dask_executor.LOST_MESSAGE`, any other with the store's own
        message. A store that cannot be written (full, read-only) keeps them as they are: reading goes
        on, and the next call tries again."""
        try:
            if self.executor == "dask":
                if self._dask is not None:
                    self._dask.record_pending()
                for info in self.store.list_runs(limit=None, status="running"):
                    if not self.store.worker_alive(info.id):
                        record_lost(self.store, info.id)
            self.store.reap_stale()
        except StoreUnavailable:
            pass

    def status(self, run_id: str) -> Optional[RunInfo]:
        """The run's current record (a run whose worker died is marked failed first)."""
        return self._check(self.store.get_run(run_id))

    def list(self, limit: Optional[int] = 50, status: str | Sequence[str] | None = None,
             owner: Optional[str] = None) -> list[RunInfo]:
        """Runs, newest first (stale active runs are marked failed first); ``owner``: that owner's
        runs and everyone's (:meth:`RunStore.list_runs`)."""
        self._reap_children()
        self._reap()
        return self.store.list_runs(limit=limit, status=status, owner=owner)

    def queue_position(self, run_id: str) -> Optional[int]:
        """1-based place in the queue, or None if the run is not queued."""
        return self.store.queue_position(run_id)

    def wait(self, run_id: str, timeout: Optional[float] = None, poll_s: float = 0.1) -> RunInfo:
        """Block until the run ends; returns its record. Raises TimeoutError after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = self.status(run_id)
            if info is None:
                raise KeyError(f"no run {run_id!r}")
            if info.is_terminal:
                self._reap_children()
                return info
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {info.status} after {timeout} s")
            time.sleep(poll_s)

    def resume(self, run_id: str) -> int:
        """Carry on a failed or cancelled run from its last finished round, under the same id
        (:func:`sbi_core.jobs.resume.resume_run`); returns that round (0-based). Raises
        :class:`~sbi_core.errors.SBIError` saying why when it cannot."""
        self._reap_children()
        return resume_run(self, run_id)

    # ---- stopping ---------------------------------------------------------
    def cancel(self, run_id: str) -> Optional[RunInfo]:
        """Stop a run: a queued one is cancelled at once; a running one stops within an epoch.

        A run still running after ``cancel_grace_s`` is stopped from outside, from a
        background thread, and marked cancelled -- only what belongs to that run alone:
        with processes, its worker process (and group); on Dask its task is cancelled and
        its sandbox processes killed, never the worker, which carries other runs
        (:meth:`_end_dask_job`).
        """
        info = self.store.get_run(run_id)
        if info is None or info.is_terminal:
            return info
        self.store.request_cancel(run_id)
        if self.store.finish_run(
            run_id,
            "cancelled",
            event=cancelled_event(),
            only_from=("queued",),
        ):
            if self.executor == "dask":
                self.dask().forget(run_id)
            return self.store.get_run(run_id)
        if self.executor == "dask":
            threading.Thread(target=self._end_dask_job, args=(run_id, False), name=f"cancel-{run_id}",
                             daemon=True).start()
            return self.store.get_run(run_id)
        pid, start = self.store.worker_process(run_id)
        if pid is not None:
            threading.Thread(
                target=self._enforce_cancel, args=(run_id, pid, start), name=f"cancel-{run_id}", daemon=True
            ).start()
        return self.store.get_run(run_id)

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

    def _end_dask_job(self, run_id: str, checks: bool, grace: Optional[float] = None) -> None:
        """The Dask side of a cancel: give the run (or its checks) ``grace`` seconds (default
        ``cancel_grace_s``) to stop by itself; then record it cancelled, disown and cancel its task,
        and kill its own sandbox processes. Its worker and the other runs on it go on; the task's
        later doings are discarded (the claim it was carried out under is gone). The run's owner
        may then start their next run. A store that cannot take the record is retried for a while.
        """
        deadline = time.monotonic() + (self.cancel_grace_s if grace is None else grace)
        while time.monotonic() < deadline:
            job = self.store.get_check(run_id) if checks else self.store.get_run(run_id)
            if job is None or job.is_terminal:
                return
            time.sleep(0.2)
        give_up = time.monotonic() + 600.0
        while True:
            try:
                if checks:
                    self.store.finish_check(run_id, "cancelled", only_from=("running",))
                else:
                    self.store.finish_run(run_id, "cancelled", event=cancelled_event(), only_from=("running",))
                break
            except StoreUnavailable:
                if time.monotonic() > give_up:
                    break
                time.sleep(1.0)
        if checks:
            from sbi_core.jobs.dask_checks import forget_checks  # torch: deferred, see _HEAVY

            forget_checks(run_id)
        else:
            self.dask().forget(run_id)
        self._stop_dask_processes(run_id, checks=checks)
        if not checks:
            info = self.store.get_run(run_id)
            if info is not None and info.owner:
                self._owner_done(info.owner, run_id)

    def _enforce_cancel(self, run_id: str, pid: int, start: Optional[str]) -> None:
        deadline = time.monotonic() + self.cancel_grace_s
        while time.monotonic() < deadline:
            info = self.store.get_run(run_id)
            if info is None or info.is_terminal or not pid_alive(pid, start):
                break
            time.sleep(0.2)
        else:
            self._kill_worker(pid, start)
        self._reap_children()
        info = self.store.get_run(run_id)
        if info is not None and info.is_active and not pid_alive(pid, start):
            self.store.finish_run(run_id, "cancelled", event=cancelled_event())

    def delete(self, run_id: str) -> None:
        """Stop the run if active, then remove it and its artifacts.

        With processes its worker process is killed; on Dask its task (and its checks' task) is
        cancelled and disowned, its sandbox processes killed, and the shared worker left alone:
        whatever the task still does is discarded (:class:`~sbi_core.jobs.worker._Claim`)."""
        check = self.store.get_check(run_id)
        if check is not None and check.is_active:
            self.store.request_check_cancel(run_id)
            if self.executor == "dask":
                from sbi_core.jobs.dask_checks import forget_checks  # torch: deferred, see _HEAVY

                self.store.finish_check(run_id, "cancelled")
                forget_checks(run_id)
                if check.status == "running":
                    self._stop_dask_processes(run_id, checks=True)
            else:
                pid, start = self.store.check_worker_process(run_id)
                if pid is not None:
                    self._kill_worker(pid, start)
        info = self.store.get_run(run_id)
        if info is not None and info.is_active:
            self.store.request_cancel(run_id)
            if self.executor == "dask":
                self.store.finish_run(run_id, "cancelled", event=cancelled_event())
                self.dask().forget(run_id)
                if info.status == "running":
                    self._stop_dask_processes(run_id)
                if info.owner:
                    self._owner_done(info.owner, run_id)
            else:
                pid, start = self.store.worker_process(run_id)
                if pid is not None:
                    self._kill_worker(pid, start)
        self.store.delete_run(run_id)
        self._workers.forget(run_id)

    # ---- calibration checks (sbi_core.checks) ------------------------------------
    def start_checks(self, run_id: str, options: Optional[dict] = None) -> CheckInfo:
        """Queue the calibration checks of ``run_id`` and start their worker; returns their record at once.

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
        if self.executor == "dask":  # a task on the cluster once the run has trained, no process of its own
            from sbi_core.jobs.dask_checks import submit_checks_when_trained  # torch: deferred, see _HEAVY

            submit_checks_when_trained(self.dask(), self.store, run_id)
            return self.store.get_check(run_id)
        cmd = worker_command(self.store.root, run_id, self.max_running, self.threads_per_run, self.execute,
                             checks=True)
        try:
            pid = self._workers.spawn(f"checks:{run_id}", cmd, self.threads_per_run,
                                      self.store.artifact_dir(run_id) / "checks_worker.log")
        except OSError as err:
            self.store.finish_check(run_id, "failed", message=f"The checks could not be started: the worker process "
                                    f"failed to launch ({err}).", detail=repr(err))
            return self.store.get_check(run_id)
        self.store.set_check_pid(run_id, pid)
        return self.store.get_check(run_id)

    def check_status(self, run_id: str) -> Optional[CheckInfo]:
        """The run's check job (one whose worker died is marked failed first), or ``None`` if never started."""
        self._reap_children()
        check = self.store.get_check(run_id)
        if check is not None and check.is_active:
            self.store.reap_stale_checks()
            check = self.store.get_check(run_id)
        return check

    def cancel_checks(self, run_id: str) -> Optional[CheckInfo]:
        """Stop the run's checks: queued ones at once, running ones within a step (killed after the grace time)."""
        check = self.store.get_check(run_id)
        if check is None or check.is_terminal:
            return check
        self.store.request_check_cancel(run_id)
        if self.store.finish_check(run_id, "cancelled", only_from=("queued",)):
            pid, start = self.store.check_worker_process(run_id)
            if pid is not None and self.executor != "dask":  # a queued Dask check is held here: no process
                threading.Thread(target=self._kill_worker, args=(pid, start), daemon=True).start()
            return self.store.get_check(run_id)
        if self.executor == "dask":  # never its (shared) worker: see _end_dask_job
            threading.Thread(target=self._end_dask_job, args=(run_id, True), name=f"cancel-checks-{run_id}",
                             daemon=True).start()
            return self.store.get_check(run_id)
        pid, start = self.store.check_worker_process(run_id)
        if pid is not None:
            threading.Thread(target=self._enforce_check_cancel, args=(run_id, pid, start),
                             name=f"cancel-checks-{run_id}", daemon=True).start()
        return self.store.get_check(run_id)

    def _enforce_check_cancel(self, run_id: str, pid: int, start: Optional[str]) -> None:
        deadline = time.monotonic() + self.cancel_grace_s
        while time.monotonic() < deadline:
            check = self.store.get_check(run_id)
            if check is None or check.is_terminal or not pid_alive(pid, start):
                break
            time.sleep(0.2)
        else:
            self._kill_worker(pid, start)
        if not pid_alive(pid, start):
            self.store.finish_check(run_id, "cancelled")

    def wait_checks(self, run_id: str, timeout: Optional[float] = None, poll_s: float = 0.1) -> CheckInfo:
        """Block until the run's checks end; returns their record. Raises TimeoutError after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            check = self.check_status(run_id)
            if check is None:
                raise KeyError(f"no checks for run {run_id!r}")
            if check.is_terminal:
                self._reap_children()
                return check
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"checks of {run_id} still {check.status} after {timeout} s")
            time.sleep(poll_s)

"""Worker processes: one detached ``python -m sbi_core.jobs.worker`` per run (or per run's checks).

The older of the two executors (``SBI_EXECUTOR=process``; the other is Dask,
:mod:`sbi_core.jobs.dask_executor`). A worker is started in its own session
(``start_new_session``), so it outlives the script or Streamlit rerun that
started it and can be killed as a process group; its output goes to the run's
``worker.log`` (``checks_worker.log`` for checks). The thread limits are in the
environment the interpreter starts with, because importing :mod:`sbi_core`
imports torch before the worker's own code runs. :class:`WorkerProcesses`
remembers the processes it started, to collect them when they exit (no zombies);
:class:`WorkerProcessExecutor` is the job manager's
:class:`~sbi_core.jobs.executor.Executor` built on them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

from sbi_core.jobs.executor import CHECKS, RUN, JobKind, holder_alive
from sbi_core.processes import pid_alive
from sbi_core.threads import thread_env

__all__ = ["WorkerProcessExecutor", "WorkerProcesses", "worker_command", "worker_env", "TERM_GRACE_S"]

TERM_GRACE_S = 3.0  # between SIGTERM and SIGKILL


def worker_command(store_root: Path, run_id: str, max_running: int, threads: int,
                   execute: Optional[str] = None, checks: bool = False) -> list[str]:
    """The command line of the worker of ``run_id`` (its checks with ``checks``)."""
    cmd = [sys.executable, "-m", "sbi_core.jobs.worker", "--store", str(store_root), run_id,
           "--max-running", str(max_running), "--threads", str(threads)]
    if execute:
        cmd += ["--execute", execute]
    if checks:
        cmd.append("--checks")
    return cmd


def code_root() -> Path:
    """The folder that holds the ``sbi_core`` package this process runs."""
    return Path(sys.modules["sbi_core"].__file__).resolve().parent.parent


def worker_env(threads: int) -> dict[str, str]:
    """This process's environment (``SBI_TRUSTED_UPLOADS`` and all) with ``threads`` torch/BLAS threads.

    :func:`code_root` comes first on ``PYTHONPATH``: a worker runs the very code of the server that
    started it, whether or not (and wherever) the project is installed.
    """
    env = dict(os.environ)
    env.update(thread_env(threads))
    rest = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join([str(code_root())] + ([rest] if rest else []))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class WorkerProcesses:
    """The worker processes this process started, by key (a run id, or ``checks:<run id>``)."""

    def __init__(self) -> None:
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def spawn(self, key: str, cmd: list[str], threads: int, log_path: Path) -> int:
        """Start ``cmd`` detached, appending its output to ``log_path``; returns its pid (raises OSError)."""
        with open(log_path, "ab", buffering=0) as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=worker_env(threads), start_new_session=True, close_fds=True)
        with self._lock:
            self._procs[key] = proc
        return proc.pid

    def reap(self) -> None:
        """Collect exited workers (no zombies) and forget them."""
        with self._lock:
            for key, proc in list(self._procs.items()):
                if proc.poll() is not None:
                    del self._procs[key]

    def forget(self, key: str) -> None:
        with self._lock:
            self._procs.pop(key, None)

    def kill_group(self, pid: int, start: Optional[str]) -> None:
        """SIGTERM, then SIGKILL, a worker's process group (only while ``pid`` is still that worker:
        ``start`` is its recorded start time, :func:`sbi_core.processes.pid_alive`)."""
        for sig, grace in ((signal.SIGTERM, TERM_GRACE_S), (signal.SIGKILL, 1.0)):
            if not pid_alive(pid, start):
                return
            try:
                os.killpg(pid, sig)  # start_new_session: the group id is the worker's pid
            except ProcessLookupError:
                return
            except PermissionError:
                try:
                    os.kill(pid, sig)
                except OSError:
                    return
            end = time.monotonic() + grace
            while time.monotonic() < end:
                self.reap()
                if not pid_alive(pid, start):
                    return
                time.sleep(0.1)


class WorkerProcessExecutor:
    """The :class:`~sbi_core.jobs.executor.Executor` of worker processes: one detached
    ``python -m sbi_core.jobs.worker`` per run (``--checks`` for a run's checks).

    The worker queues for one of ``max_running`` slots in the store (runs and checks
    share them), runs with ``threads`` torch threads (a spec's ``num_threads``, else
    ``threads_per_run``) and records every event and its ending itself. Its process and
    group belong to that job alone, so a cancel that is ignored past the grace time kills
    them (:meth:`enforce_cancel`).

    Args:
        store: the :class:`~sbi_core.store.runs.RunStore` the jobs are recorded in.
        max_running: runs (and checks) at a time.
        threads_per_run: torch threads of a worker whose spec names none.
        execute: ``"module:function"`` that replaces :func:`sbi_core.run.loop.execute` (tests).
    """

    name = "process"

    def __init__(self, store: Any, max_running: int, threads_per_run: int, execute: Optional[str] = None) -> None:
        self.store = store
        self.max_running = int(max_running)
        self.threads_per_run = int(threads_per_run)
        self.execute = execute
        self.workers = WorkerProcesses()

    def _threads(self, kind: JobKind, spec: Any) -> int:
        """A run's ``spec.num_threads`` if set, else ``threads_per_run`` (always for checks)."""
        wanted = getattr(spec, "num_threads", None) if kind is RUN else None
        return max(1, int(wanted)) if wanted else self.threads_per_run

    def submit(self, kind: JobKind, run_id: str, spec: Any) -> None:
        """Start the job's worker and record its pid; a worker that cannot be started (OSError) ends
        the job ``failed`` with a plain message."""
        threads = self._threads(kind, spec)
        cmd = worker_command(self.store.root, run_id, self.max_running, threads, self.execute,
                             checks=kind is CHECKS)
        log = self.store.artifact_dir(run_id) / ("checks_worker.log" if kind is CHECKS else "worker.log")
        try:
            pid = self.workers.spawn(kind.key(run_id), cmd, threads, log)
        except OSError as err:
            kind.finish(self.store, run_id, "failed", detail=repr(err),
                        message=f"{kind.noun.capitalize()} could not be started: the worker process failed "
                                f"to launch ({err}).")
            return
        kind.set_holder(self.store, run_id, pid)

    def alive(self, kind: JobKind, run_id: str) -> Optional[bool]:
        """Whether the job's recorded worker process still runs (None: none recorded yet)."""
        return holder_alive(self.store, kind, run_id)

    def release(self, kind: JobKind, run_id: str) -> None:
        """A queued run's worker sees its cancel within a queue poll and leaves by itself; a queued
        check's worker may wait long for its run to train, so it is killed (in a thread)."""
        if kind is not CHECKS:
            return
        pid, start = kind.holder(self.store, run_id)
        if pid is not None:
            threading.Thread(target=self.workers.kill_group, args=(pid, start), daemon=True).start()

    def enforce_cancel(self, kind: JobKind, run_id: str, grace_s: float) -> None:
        """Wait up to ``grace_s`` for the job to end or its worker to exit; then kill the worker's process
        group (SIGTERM, then SIGKILL) and, once it is gone, record the job ``cancelled`` if it has not
        recorded an ending itself."""
        pid, start = kind.holder(self.store, run_id)
        if pid is None:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            job = kind.record(self.store, run_id)
            if job is None or job.is_terminal or not pid_alive(pid, start):
                break
            time.sleep(0.2)
        else:
            self.workers.kill_group(pid, start)
        self.workers.reap()
        if not pid_alive(pid, start):
            kind.finish(self.store, run_id, "cancelled")

    def end_now(self, kind: JobKind, run_id: str, job: Any) -> None:
        """Kill the job's worker process group at once (it is being deleted)."""
        pid, start = kind.holder(self.store, run_id)
        if pid is not None:
            self.workers.kill_group(pid, start)

    def discard(self, run_id: str) -> None:
        """Forget the run's worker (its exit status is no longer wanted)."""
        self.workers.forget(RUN.key(run_id))

    def collect(self) -> None:
        """Collect exited workers started here (no zombies)."""
        self.workers.reap()

    def reap(self, kind: JobKind) -> None:
        """Nothing to add: a worker records its own ending, and the store's pid check
        (:meth:`JobKind.reap_stale`) catches one that died."""

    def unrecorded(self, kind: JobKind, run_id: str) -> Optional[str]:
        """Always None: a worker's ending is written by the worker, or found by the pid check."""
        return None

    def held(self) -> list[str]:
        """Always empty: every run gets its worker at once and queues in the store."""
        return []

    def slots(self) -> int:
        """``max_running``: the store's queue lets that many workers run at once."""
        return self.max_running

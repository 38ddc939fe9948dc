"""Worker processes: one detached ``python -m sbi_core.jobs.worker`` per run (or per run's checks).

The older of the two executors (``SBI_EXECUTOR=process``; the other is Dask,
:mod:`sbi_core.jobs.dask_executor`). A worker is started in its own session
(``start_new_session``), so it outlives the script or Streamlit rerun that
started it and can be killed as a process group; its output goes to the run's
``worker.log`` (``checks_worker.log`` for checks). The thread limits are in the
environment the interpreter starts with, because importing :mod:`sbi_core`
imports torch before the worker's own code runs. :class:`WorkerProcesses`
remembers the processes it started, to collect them when they exit (no zombies).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

from sbi_core.processes import pid_alive
from sbi_core.threads import thread_env

__all__ = ["WorkerProcesses", "worker_command", "worker_env", "TERM_GRACE_S"]

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

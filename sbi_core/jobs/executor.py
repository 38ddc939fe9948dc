"""What the job manager asks of whatever carries out its jobs: the :class:`Executor` protocol.

The job manager (:class:`sbi_core.jobs.manager.JobManager`) follows two kinds of
job through one lifecycle -- a run, and a run's calibration checks -- and leaves
the carrying out to one executor object, which it never asks the type of. Two
implement the protocol:

* :class:`sbi_core.jobs.process_executor.WorkerProcessExecutor`: one detached
  ``python -m sbi_core.jobs.worker`` process per job;
* :class:`sbi_core.jobs.dask_executor.DaskTaskExecutor`: one task per job on a
  Dask cluster of warm workers.

The lifecycle, and which operation carries each step::

    start   manager: record the job queued   -> executor.submit(kind, run_id, spec)
    follow  manager: read the record          -> executor.collect(), alive(), unrecorded(), reap()
    cancel  manager: ask, end a queued job    -> executor.release()   (it was queued)
                                              -> executor.enforce_cancel()   (it runs: after the grace time)
    delete  manager: ask, then drop the rows  -> executor.end_now(), discard()

The store stays the single source of truth: an executor records in it who holds a
job (its pid), and how a job ended when the job could not record that itself (it
could not start, its worker died, it ignored its cancel). :class:`JobKind` gives the
store's operations for each kind (:data:`RUN`, :data:`CHECKS`) under one set of
names, so that the manager and the executors write each step once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Optional, Protocol, Sequence, runtime_checkable

from sbi_core.events import cancelled_event, failed_event
from sbi_core.processes import pid_alive

__all__ = ["Executor", "JobKind", "RUN", "CHECKS", "JOB_KINDS", "holder_alive"]


class JobKind(ABC):
    """One kind of job in the store, a run or a run's checks, seen through one set of names.

    A run's record is a :class:`~sbi_core.store.runs.RunInfo` (table ``runs``), its
    checks' a :class:`~sbi_core.store.check_records.CheckInfo` (table ``checks``); both
    are keyed by the run id and share the statuses ``queued``, ``running``, ``done``,
    ``failed`` and ``cancelled``. Use the two instances :data:`RUN` and :data:`CHECKS`.
    """

    name: str = ""  # "run" or "checks"
    noun: str = ""  # what a message calls the job: "the run", "the checks"

    def __repr__(self) -> str:
        return f"JobKind({self.name!r})"

    @abstractmethod
    def key(self, run_id: str) -> str:
        """The job's key among an executor's helpers (``<run id>`` or ``checks:<run id>``)."""
        ...

    @abstractmethod
    def thread_name(self, action: str, run_id: str) -> str:
        """The name of a helper thread doing ``action`` for this job (``cancel-<id>``, ``cancel-checks-<id>``)."""
        ...

    @abstractmethod
    def record(self, store: Any, run_id: str) -> Any:
        """The job's record in ``store`` (its ``status``, ``is_active``, ``is_terminal``), or None."""
        ...

    @abstractmethod
    def holder(self, store: Any, run_id: str) -> tuple[Optional[int], Optional[str]]:
        """``(pid, start time)`` of the process recorded as holding the job (None, None: none yet)."""
        ...

    @abstractmethod
    def set_holder(self, store: Any, run_id: str, pid: int) -> None:
        """Record ``pid`` as the process that holds the job."""
        ...

    @abstractmethod
    def request_cancel(self, store: Any, run_id: str) -> None:
        """Set the job's cancel flag, which the job reads between its steps."""
        ...

    @abstractmethod
    def finish(self, store: Any, run_id: str, status: str, message: Optional[str] = None,
               detail: Optional[str] = None, only_from: Optional[Sequence[str]] = None) -> bool:
        """End the job with the terminal ``status`` once, atomically, if its status is in ``only_from``
        (default: any active one); a run also gets the matching event. Returns whether it did."""
        ...

    @abstractmethod
    def reap_stale(self, store: Any) -> list[str]:
        """End the active jobs of this kind whose holding process is gone (the store's plain message)."""
        ...

    @abstractmethod
    def missing(self, run_id: str) -> str:
        """What a :class:`KeyError` says when there is no such job."""
        ...

    @abstractmethod
    def still(self, run_id: str, status: str, timeout: Optional[float]) -> str:
        """What a :class:`TimeoutError` says when the job has not ended in ``timeout`` seconds."""
        ...


class _Run(JobKind):
    name, noun = "run", "the run"

    def key(self, run_id: str) -> str:
        return run_id

    def thread_name(self, action: str, run_id: str) -> str:
        return f"{action}-{run_id}"

    def record(self, store: Any, run_id: str) -> Any:
        return store.get_run(run_id)

    def holder(self, store: Any, run_id: str) -> tuple[Optional[int], Optional[str]]:
        return store.worker_process(run_id)

    def set_holder(self, store: Any, run_id: str, pid: int) -> None:
        store.set_pid(run_id, pid)

    def request_cancel(self, store: Any, run_id: str) -> None:
        store.request_cancel(run_id)

    def finish(self, store: Any, run_id: str, status: str, message: Optional[str] = None,
               detail: Optional[str] = None, only_from: Optional[Sequence[str]] = None) -> bool:
        if status == "cancelled":
            event: Optional[dict] = cancelled_event()
        elif status == "failed":
            event = failed_event(message or "", detail)
        else:
            event = None
        extra = {} if only_from is None else {"only_from": tuple(only_from)}
        return store.finish_run(run_id, status, message=message, detail=detail, event=event, **extra)

    def reap_stale(self, store: Any) -> list[str]:
        return store.reap_stale()

    def missing(self, run_id: str) -> str:
        return f"no run {run_id!r}"

    def still(self, run_id: str, status: str, timeout: Optional[float]) -> str:
        return f"run {run_id} still {status} after {timeout} s"


class _Checks(JobKind):
    name, noun = "checks", "the checks"

    def key(self, run_id: str) -> str:
        return f"checks:{run_id}"

    def thread_name(self, action: str, run_id: str) -> str:
        return f"{action}-checks-{run_id}"

    def record(self, store: Any, run_id: str) -> Any:
        return store.get_check(run_id)

    def holder(self, store: Any, run_id: str) -> tuple[Optional[int], Optional[str]]:
        return store.check_worker_process(run_id)

    def set_holder(self, store: Any, run_id: str, pid: int) -> None:
        store.set_check_pid(run_id, pid)

    def request_cancel(self, store: Any, run_id: str) -> None:
        store.request_check_cancel(run_id)

    def finish(self, store: Any, run_id: str, status: str, message: Optional[str] = None,
               detail: Optional[str] = None, only_from: Optional[Sequence[str]] = None) -> bool:
        extra = {} if only_from is None else {"only_from": tuple(only_from)}
        return store.finish_check(run_id, status, message=message, detail=detail, **extra)

    def reap_stale(self, store: Any) -> list[str]:
        return store.reap_stale_checks()

    def missing(self, run_id: str) -> str:
        return f"no checks for run {run_id!r}"

    def still(self, run_id: str, status: str, timeout: Optional[float]) -> str:
        return f"checks of {run_id} still {status} after {timeout} s"


RUN: JobKind = _Run()
CHECKS: JobKind = _Checks()
JOB_KINDS = (RUN, CHECKS)


def holder_alive(store: Any, kind: JobKind, run_id: str) -> Optional[bool]:
    """Whether the process recorded as holding the job still runs; None when none is recorded yet.

    A recorded pid counts only while it is the same process (its start time matches,
    :func:`sbi_core.processes.pid_alive`), so a reused pid never keeps a dead job alive.
    """
    pid, start = kind.holder(store, run_id)
    return None if pid is None else pid_alive(pid, start)


@runtime_checkable
class Executor(Protocol):
    """What carries out the job manager's jobs (runs and their checks) and what it guarantees.

    Every operation takes the job's ``kind`` (:data:`RUN` or :data:`CHECKS`) and its run id;
    the job's record is in the store the executor was made for. None raises for a failure of
    the job itself: how a job ended is recorded in the store.
    """

    name: str
    """A short name (``"process"``, ``"dask"``), for messages and :attr:`JobManager.executor`."""

    def submit(self, kind: JobKind, run_id: str, spec: Any) -> None:
        """Hand the queued job to be carried out and return at once.

        Guarantees: when it returns, either a process holding the job is recorded
        (:meth:`JobKind.set_holder`) or the job is recorded ``failed`` with a plain message
        saying why it could not start. The job waits for a slot, then runs, by itself.
        ``spec``: the run's :class:`~sbi_core.run.spec.RunSpec`.
        """
        ...

    def alive(self, kind: JobKind, run_id: str) -> Optional[bool]:
        """Whether what holds the job still lives (None: nothing recorded yet, it is being started).
        A job that is active while this is False has ended without recording it."""
        ...

    def release(self, kind: JobKind, run_id: str) -> None:
        """The queued job was just recorded ``cancelled``: let go of whatever held it (a waiting
        process, a task) so that it never starts. Returns at once."""
        ...

    def enforce_cancel(self, kind: JobKind, run_id: str, grace_s: float) -> None:
        """The running job was asked to cancel: give it ``grace_s`` seconds to stop by itself, then
        stop it from outside and record it ``cancelled``. Only what belongs to that job alone is
        stopped (never a worker that carries other jobs). Blocks; the manager calls it in a thread."""
        ...

    def end_now(self, kind: JobKind, run_id: str, job: Any) -> None:
        """The active job (``job``: its record before) is being deleted: stop what belongs to it now,
        without a grace time. What it still does afterwards changes nothing."""
        ...

    def discard(self, run_id: str) -> None:
        """The run and its checks were deleted from the store: forget what is kept about them."""
        ...

    def collect(self) -> None:
        """Collect helpers that have exited (no zombie processes). Cheap: called on every look."""
        ...

    def reap(self, kind: JobKind) -> None:
        """Record the endings this executor knows of and the store does not yet: jobs whose task
        ended, or whose worker died, without ending them. May raise
        :class:`~sbi_core.store.errors.StoreUnavailable` (the manager retries on its next look)."""
        ...

    def unrecorded(self, kind: JobKind, run_id: str) -> Optional[str]:
        """Why the ending of a job whose carrier has ended is not in the store yet (the store's
        plain message: the disk is full, ...), or None."""
        ...

    def held(self) -> list[str]:
        """Run ids this executor holds back on purpose (one run per owner on a shared cluster)."""
        ...

    def slots(self) -> int:
        """How many jobs it carries out at once (what a queued run's wait is divided by)."""
        ...

"""The status of a run's calibration checks in the run store: one row per run in table ``checks``.

A check job (:mod:`sbi_core.checks`) goes ``queued`` -> ``running`` ->
``done`` | ``failed`` | ``cancelled``, like a run, and records its progress
(a fraction and the step in words) as it works. The row lives in the same
SQLite database as the runs, so the status survives a page reload, a server
restart (a job whose worker died is marked failed by :meth:`reap_stale_checks`)
and is readable by every process that opens the store. Starting the checks of
a run again replaces its finished row; the results themselves are files in
``artifacts/<run_id>/checks/`` (:mod:`sbi_core.checks.results`).

Check jobs share the runs' worker slots: a check job holds a slot while it
computes, and :meth:`claim_check_slot` counts running runs, running checks and
runs queued before it.

:class:`CheckRecords` is the part of :class:`~sbi_core.store.runs.RunStore` that
handles this table (it needs the store's ``_conn()`` and ``_write()``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Optional

from sbi_core.errors import SBIError
from sbi_core.processes import pid_alive, process_start_time

__all__ = ["CheckInfo", "CheckRecords", "CheckBusy", "CHECKS_SCHEMA", "CHECK_STALE_MESSAGE"]

CHECKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS checks (
    run_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    options_json TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    pid INTEGER,
    pid_start TEXT,
    progress REAL NOT NULL DEFAULT 0,
    step TEXT NOT NULL DEFAULT '',
    message TEXT,
    detail TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
)
"""

CHECK_STALE_MESSAGE = (
    "The checks stopped unexpectedly (their worker process ended; the server may have restarted). "
    "Start the checks again."
)
_PIDLESS_GRACE_S = 60.0  # a queued check without a pid is being started
_ACTIVE = ("queued", "running")
_TERMINAL = ("done", "failed", "cancelled")
_COLUMNS = ("run_id, status, options_json, created, started, finished, pid, progress, step, message, detail,"
            " cancel_requested")


class CheckBusy(SBIError):
    """The run's checks are already queued or running."""


@dataclass(frozen=True)
class CheckInfo:
    """One row of the ``checks`` table: where a run's check job stands."""

    run_id: str
    status: str
    options: dict = field(default_factory=dict)
    created: float = 0.0
    started: Optional[float] = None
    finished: Optional[float] = None
    pid: Optional[int] = None
    progress: float = 0.0  # 0..1
    step: str = ""  # what the job is doing now, in words
    message: Optional[str] = None  # why it failed (plain words)
    detail: Optional[str] = None  # technical detail of a failure
    cancel_requested: bool = False

    @property
    def is_active(self) -> bool:
        return self.status in _ACTIVE

    @property
    def is_terminal(self) -> bool:
        return self.status in _TERMINAL

    @property
    def seconds(self) -> Optional[float]:
        if self.started is None:
            return None
        return max(0.0, (self.finished if self.finished is not None else time.time()) - self.started)


def _row(row: tuple) -> CheckInfo:
    rid, status, options, created, started, finished, pid, progress, step, message, detail, cancel = row
    return CheckInfo(run_id=rid, status=status, options=json.loads(options or "{}"), created=created,
                     started=started, finished=finished, pid=pid, progress=float(progress or 0.0),
                     step=step or "", message=message, detail=detail, cancel_requested=bool(cancel))


class CheckRecords:
    """Check-job methods of the run store (mixed into :class:`~sbi_core.store.runs.RunStore`)."""

    def create_check(self, run_id: str, options: dict) -> CheckInfo:
        """Queue the checks of ``run_id`` with ``options`` (replacing a finished row).

        Raises :class:`CheckBusy` if its checks are queued or running already.
        """
        with self._write() as c:
            row = c.execute("SELECT status FROM checks WHERE run_id = ?", (run_id,)).fetchone()
            if row is not None and row[0] in _ACTIVE:
                raise CheckBusy("The checks of this run are already under way; wait for them or cancel them.")
            c.execute("DELETE FROM checks WHERE run_id = ?", (run_id,))
            c.execute(
                "INSERT INTO checks (run_id, status, options_json, created, step) VALUES (?, 'queued', ?, ?, ?)",
                (run_id, json.dumps(options), time.time(), "Waiting to start"),
            )
        return self.get_check(run_id)

    def get_check(self, run_id: str) -> Optional[CheckInfo]:
        """The run's check job, or ``None`` if its checks were never started."""
        row = self._conn().execute(f"SELECT {_COLUMNS} FROM checks WHERE run_id = ?", (run_id,)).fetchone()
        return _row(row) if row else None

    def set_check_pid(self, run_id: str, pid: int) -> None:
        with self._write() as c:
            c.execute("UPDATE checks SET pid = ?, pid_start = ? WHERE run_id = ? AND status IN ('queued', 'running')",
                      (int(pid), process_start_time(pid), run_id))

    def set_check_progress(self, run_id: str, fraction: float, step: str) -> None:
        """Record how far an active check job is (``fraction`` in 0..1) and what it is doing."""
        with self._write() as c:
            c.execute("UPDATE checks SET progress = ?, step = ? WHERE run_id = ? AND status IN ('queued', 'running')",
                      (min(1.0, max(0.0, float(fraction))), str(step), run_id))

    def claim_check_slot(self, run_id: str, pid: int, max_running: int) -> bool:
        """Atomically move the queued check job to ``running`` if a worker slot is free.

        Busy slots: running runs, running check jobs, and runs queued before this job.
        """
        with self._write() as c:
            row = c.execute("SELECT status, cancel_requested, created, pid FROM checks WHERE run_id = ?",
                            (run_id,)).fetchone()
            if row is None:
                return False
            status, cancel, created, owner = row
            if status == "running":
                return owner == int(pid)
            if status != "queued" or cancel:
                return False
            busy = c.execute(
                "SELECT (SELECT COUNT(*) FROM runs WHERE status = 'running')"
                " + (SELECT COUNT(*) FROM checks WHERE status = 'running')"
                " + (SELECT COUNT(*) FROM runs WHERE status = 'queued' AND cancel_requested = 0 AND created < ?)",
                (created,),
            ).fetchone()[0]
            if busy >= max(1, int(max_running)):
                return False
            c.execute("UPDATE checks SET status = 'running', started = ?, pid = ?, pid_start = ? WHERE run_id = ?",
                      (time.time(), int(pid), process_start_time(pid), run_id))
        return True

    def finish_check(self, run_id: str, status: str, message: Optional[str] = None, detail: Optional[str] = None,
                     only_from: tuple = _ACTIVE, claim: Optional[float] = None) -> bool:
        """End the check job with a terminal ``status`` if it is in ``only_from``; True if it did.

        ``claim``: the ``started`` time of the claim the caller carried the checks out under
        (:meth:`claim_check_slot`); checks cancelled and started again since are left alone.
        """
        if status not in _TERMINAL:
            raise ValueError(f"not a terminal status: {status!r}")
        with self._write() as c:
            cur = c.execute(
                f"UPDATE checks SET status = ?, finished = ?, message = ?, detail = ?,"
                f" progress = CASE WHEN ? = 'done' THEN 1.0 ELSE progress END"
                f" WHERE run_id = ? AND status IN ({','.join('?' * len(only_from))})"
                f" AND (? IS NULL OR started = ?)",
                (status, time.time(), message, detail, status, run_id, *only_from, claim, claim),
            )
            return cur.rowcount > 0

    def request_check_cancel(self, run_id: str) -> None:
        with self._write() as c:
            c.execute("UPDATE checks SET cancel_requested = 1 WHERE run_id = ? AND status IN ('queued', 'running')",
                      (run_id,))

    def check_cancel_requested(self, run_id: str) -> bool:
        """Whether a cancel was asked for (True also when the row is gone: the run was deleted)."""
        row = self._conn().execute("SELECT cancel_requested FROM checks WHERE run_id = ?", (run_id,)).fetchone()
        return True if row is None else bool(row[0])

    def check_worker_process(self, run_id: str) -> tuple[Optional[int], Optional[str]]:
        row = self._conn().execute("SELECT pid, pid_start FROM checks WHERE run_id = ?", (run_id,)).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def reap_stale_checks(self) -> list[str]:
        """Mark active check jobs whose worker is gone as failed (cancelled if asked); returns their run ids."""
        rows = self._conn().execute(
            "SELECT run_id, status, pid, pid_start, created, cancel_requested FROM checks"
            " WHERE status IN ('queued', 'running')").fetchall()
        reaped = []
        for rid, status, pid, pid_start, created, cancel in rows:
            if pid is None and status == "queued" and time.time() - created < _PIDLESS_GRACE_S:
                continue
            if pid is not None and pid_alive(pid, pid_start):
                continue
            ended = (self.finish_check(rid, "cancelled") if cancel
                     else self.finish_check(rid, "failed", message=CHECK_STALE_MESSAGE))
            if ended:
                reaped.append(rid)
        return reaped

    def delete_check(self, run_id: str) -> None:
        with self._write() as c:
            c.execute("DELETE FROM checks WHERE run_id = ?", (run_id,))

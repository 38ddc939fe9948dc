"""The run store: every run's spec, status, events and artifacts on disk.

Layout under ``root`` (default: ``$SBI_STORE_DIR``, else
``~/.local/share/sbi-dashboard``)::

    runs.sqlite3              runs and their events (SQLite, WAL mode)
    artifacts/<run_id>/       worker.log, round_<i>/posterior.pt, round_<i>/*.npy

The store is safe to share between threads and processes (the database layer,
:mod:`sbi_core.store.db`): every thread of every process opens its own SQLite
connection lazily (a connection never crosses a ``fork``), writers take the
database lock up front (``BEGIN IMMEDIATE``) and wait for it (``busy_timeout``),
and readers never block writers (WAL). A statement SQLite still refuses as busy
("database is locked": it can give up at once, e.g. while another connection
recovers or checkpoints the WAL) is tried again with jittered backoff, for a
bounded window, before the store gives up with a plain
:class:`~sbi_core.store.errors.StoreUnavailable` ("The run store ... is busy").
A :class:`RunStore` pickles as just its root, so it can be handed to
``multiprocessing`` children.

Faults of the disk become :class:`~sbi_core.store.errors.StoreUnavailable`
too, with a message that names the folder and what to do: a full disk
(``SQLITE_FULL``, ``ENOSPC``), a read-only or forbidden folder
(``SQLITE_READONLY``, ``EROFS``, ``EACCES``). A failed write changes nothing
(its transaction is rolled back) and reads keep working, so the app keeps
showing the runs it has. Opening a store writes nothing when its schema is
already up to date, so a full or read-only store still opens.

Artifact files are handled by :mod:`sbi_core.store.artifacts` (``RunStore`` inherits
its methods), calibration-check jobs by :mod:`sbi_core.store.check_records` (table
``checks``; results in ``artifacts/<run_id>/checks/``), process liveness by
:mod:`sbi_core.processes`.

Every run may have an **owner**: an opaque token of the browser that started
it (:mod:`sbi_ui.owner`), or NULL. A run without an owner (every run made
before owners existed, and runs started outside the app) belongs to everyone:
:meth:`RunStore.list_runs` lists it for every owner, and the app lets anyone
control it. The store keeps the token and filters by it; what a token may do
is the app's business.

Run ids (:mod:`sbi_core.run.ids`) are 25 lower-case letters and digits drawn
with :mod:`secrets`; ids of older stores (12 hex digits) still open.

Statuses: ``queued`` -> ``running`` -> ``done`` | ``failed`` | ``cancelled``
(a queued run may also go straight to ``cancelled`` or ``failed``). Times are
Unix seconds (floats).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import threading
import time
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from sbi_core.events import TERMINAL_TYPES, cancelled_event, failed_event, fold_reference, resumed_event
from sbi_core.processes import pid_alive, process_start_time
from sbi_core.run.ids import RUN_ID_LENGTH, is_run_id, new_run_id
from sbi_core.run.spec import RunSpec
from sbi_core.store.artifacts import ArtifactMissing, RunArtifacts
from sbi_core.store.check_records import CHECKS_SCHEMA, CheckRecords
from sbi_core.store.db import SQLiteStore
from sbi_core.store.errors import translate_store_errors
from sbi_core.store.turns import AHEAD, TURN_COLUMNS, TURN_INDEX, RunTurns

__all__ = [
    "RunStore",
    "RunInfo",
    "RUN_ID_LENGTH",
    "is_run_id",
    "new_run_id",
    "ArtifactMissing",
    "STATUSES",
    "ACTIVE_STATUSES",
    "TERMINAL_STATUSES",
    "STALE_MESSAGE",
    "default_root",
    "process_start_time",
    "pid_alive",
]

STATUSES = ("queued", "running", *TERMINAL_TYPES)
ACTIVE_STATUSES = ("queued", "running")
TERMINAL_STATUSES = TERMINAL_TYPES  # a run ends exactly as its terminal event says

STALE_MESSAGE = (
    "The worker process stopped unexpectedly (it was killed, or the server restarted). The rounds it "
    "finished are kept: press Resume to go on from the last one."
)

# A queued run without a pid is being started right now (create_run, then the
# spawn stores the pid); only after this many seconds is it considered lost.
_PIDLESS_GRACE_S = 60.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    spec_json TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    pid INTEGER,
    pid_start TEXT,
    message TEXT,
    detail TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    owner TEXT
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status, created);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    json TEXT NOT NULL,
    time REAL NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"""


def default_root() -> Path:
    """``$SBI_STORE_DIR`` if set, else ``~/.local/share/sbi-dashboard``."""
    env = os.environ.get("SBI_STORE_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".local" / "share" / "sbi-dashboard"


# ---------------------------------------------------------------------------
# records
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RunInfo:
    """One row of the run table."""

    id: str
    title: str
    spec: RunSpec
    status: str
    created: float
    started: Optional[float]
    finished: Optional[float]
    pid: Optional[int]
    message: Optional[str]
    detail: Optional[str]
    cancel_requested: bool
    owner: Optional[str] = None  # the starting browser's token; None: everyone's (see the module docstring)
    began: Optional[float] = None  # its first start (``started`` is its latest turn's, sbi_core.store.turns)

    @property
    def is_active(self) -> bool:
        """Queued or running."""
        return self.status in ACTIVE_STATUSES

    @property
    def is_terminal(self) -> bool:
        """Done, failed or cancelled."""
        return self.status in TERMINAL_STATUSES

    @property
    def seconds(self) -> Optional[float]:
        """Time since it first started (its waits for a turn included), until it finished; None if
        never started."""
        start = self.began if self.began is not None else self.started
        if start is None:
            return None
        end = self.finished if self.finished is not None else time.time()
        return max(0.0, end - start)


def _spec_from_json(text: str) -> RunSpec:
    """The stored spec; a spec that no longer validates (older code) is kept as stored."""
    data = json.loads(text)
    try:
        return RunSpec.from_dict(data)
    except Exception:  # keep old runs viewable even if the spec rules changed
        spec = object.__new__(RunSpec)
        for f in fields(RunSpec):
            if f.name in data:
                value = data[f.name]
            elif f.default_factory is not MISSING:
                value = f.default_factory()
            else:
                value = None if f.default is MISSING else f.default
            object.__setattr__(spec, f.name, value)
        return spec


def _insert_run(c: sqlite3.Connection, spec: RunSpec, title: str, owner: Optional[str]) -> str:
    """Insert a queued run for ``spec`` inside the write transaction ``c``; returns its new id."""
    spec_json = json.dumps(spec.to_dict(), default=_json_default)
    title = title or getattr(spec, "title", "") or ""
    owner = str(owner) if owner else None
    while True:
        run_id = new_run_id()
        if c.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:  # a collision: astronomically rare
            break
    c.execute("INSERT INTO runs (id, title, spec_json, status, created, cancel_requested, owner)"
              " VALUES (?, ?, ?, 'queued', ?, 0, ?)", (run_id, title, spec_json, time.time(), owner))
    return run_id


def _identity(spec: dict) -> str:
    """What makes two runs compute the same thing: the spec without its title and thread count."""
    return json.dumps({k: v for k, v in spec.items() if k not in ("title", "num_threads")},
                      sort_keys=True, default=_json_default)


def _json_default(obj: Any) -> Any:
    """Make numpy/torch values JSON-serialisable."""
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # torch tensor
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"event field of type {type(obj).__name__} is not JSON-serialisable")


def _dumps(event: dict) -> str:
    return json.dumps(event, default=_json_default, allow_nan=True, separators=(",", ":"))


_RUN_COLUMNS = (
    "id, title, spec_json, status, created, started, finished, pid, message, detail, cancel_requested, owner, began"
)


def _row_to_info(row: tuple) -> RunInfo:
    (rid, title, spec_json, status, created, started, finished, pid, message, detail, cancel, owner, began) = row
    return RunInfo(
        id=rid,
        title=title or "",
        spec=_spec_from_json(spec_json),
        status=status,
        created=created,
        started=started,
        finished=finished,
        pid=pid,
        message=message,
        detail=detail,
        cancel_requested=bool(cancel),
        owner=owner or None,
        began=began,
    )


# Columns added to a table after stores with that table existed: (table, column, declaration).
# _ensure_schema adds those an older store lacks.
_ADDED_COLUMNS = (
    ("runs", "pid_start", "TEXT"),  # stores made before the pid-reuse guard
    ("runs", "stop_requested", "INTEGER NOT NULL DEFAULT 0"),  # before "stop and keep what is trained"
    ("runs", "owner", "TEXT"),  # before private runs: their runs stay everyone's
    *TURN_COLUMNS,  # before runs took turns (sbi_core.store.turns)
)
# made once the added columns exist
_LATE_SCHEMA = "CREATE INDEX IF NOT EXISTS runs_owner ON runs(owner, created)"

class RunStore(SQLiteStore, RunArtifacts, CheckRecords, RunTurns):
    """Runs, their events and artifacts, in ``<root>/runs.sqlite3`` and ``<root>/artifacts/``."""

    SCHEMA = (_SCHEMA, CHECKS_SCHEMA)  # runs and events; calibration-check jobs (sbi_core.store.check_records)
    ADDED_COLUMNS = _ADDED_COLUMNS
    LATE_SCHEMA = (_LATE_SCHEMA, TURN_INDEX)

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.root = self.root.resolve()
        self.db_path = self.root / "runs.sqlite3"
        self.artifacts_root = self.root / "artifacts"
        with translate_store_errors(self.root):  # a folder that cannot be made: the store's plain message
            self.root.mkdir(parents=True, exist_ok=True)
            self.artifacts_root.mkdir(exist_ok=True)
        self._local = threading.local()
        self._ensure_schema()

    # ---- pickling: only the root travels ----------------------------------
    def __getstate__(self) -> dict:
        return {"root": str(self.root)}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["root"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    # ---- runs -------------------------------------------------------------
    def create_run(self, spec: RunSpec, title: str = "", owner: Optional[str] = None) -> str:
        """Add a queued run for ``spec``; returns its id (:func:`new_run_id`).

        ``owner``: the token of whoever starts it (None or "": a run of everyone).
        """
        with self._write() as c:
            return _insert_run(c, spec, title, owner)

    def create_or_reuse(self, spec: RunSpec, title: str = "", owner: Optional[str] = None) -> tuple[str, bool]:
        """``(run_id, reused)``: an identical run that is queued, running or done, else a new queued run.

        Identical means the same RunSpec apart from its title and thread count, seed included: the
        run would compute exactly the same posterior (thirty students pressing *Start demo*). The
        look-up and the insert are one write transaction, so two requests arriving together
        still make one run.
        """
        key = _identity(spec.to_dict())
        with self._write() as c:
            rows = c.execute("SELECT id, spec_json FROM runs WHERE status IN ('queued', 'running', 'done')"
                             " ORDER BY created DESC LIMIT 500").fetchall()
            for run_id, text in rows:
                try:
                    same = _identity(json.loads(text)) == key
                except ValueError:
                    continue
                if same:
                    return run_id, True
            return _insert_run(c, spec, title, owner), False

    def get_run(self, run_id: str) -> Optional[RunInfo]:
        """The run, or None if there is no such run."""
        row = (
            self._conn()
            .execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
            .fetchone()
        )
        return _row_to_info(row) if row else None

    def list_runs(self, limit: Optional[int] = 50, status: str | Sequence[str] | None = None,
                  owner: Optional[str] = None, include_unowned: bool = True) -> list[RunInfo]:
        """Runs, newest first (at most ``limit``; None: all); ``status`` filters by one status or several.

        ``owner`` (a token) keeps that owner's runs and, unless ``include_unowned``
        is False, the runs without an owner (everyone's); None: every run.
        """
        sql = f"SELECT {_RUN_COLUMNS} FROM runs"
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            params += statuses
        if owner is not None:
            where.append("(owner = ? OR owner IS NULL)" if include_unowned else "owner = ?")
            params.append(str(owner))
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [_row_to_info(r) for r in self._conn().execute(sql, params).fetchall()]

    def set_status(
        self,
        run_id: str,
        status: str,
        message: Optional[str] = None,
        detail: Optional[str] = None,
        pid: Optional[int] = None,
    ) -> None:
        """Set a run's status (stamping ``started``/``finished``); ``message``/``detail``/``pid`` if given."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {STATUSES}")
        now = time.time()
        sets = ["status = ?"]
        params: list[Any] = [status]
        if status == "running":
            sets.append("started = COALESCE(started, ?)")
            params.append(now)
            sets.append("began = COALESCE(began, ?)")
            params.append(now)
        if status in TERMINAL_STATUSES:
            sets.append("finished = COALESCE(finished, ?)")
            params.append(now)
        if message is not None:
            sets.append("message = ?")
            params.append(message)
        if detail is not None:
            sets.append("detail = ?")
            params.append(detail)
        if pid is not None:
            sets += ["pid = ?", "pid_start = ?"]
            params += [int(pid), process_start_time(pid)]
        with self._write() as c:
            c.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?", params + [run_id])

    def set_pid(self, run_id: str, pid: int) -> None:
        """Record the worker process of a run (its start time too, against pid reuse)."""
        with self._write() as c:
            c.execute(
                "UPDATE runs SET pid = ?, pid_start = ? WHERE id = ?",
                (int(pid), process_start_time(pid), run_id),
            )

    def finish_run(
        self,
        run_id: str,
        status: str,
        message: Optional[str] = None,
        detail: Optional[str] = None,
        event: Optional[dict] = None,
        only_from: Sequence[str] = ACTIVE_STATUSES,
        claim: Optional[float] = None,
    ) -> bool:
        """Move a run to a terminal ``status`` once, atomically, appending ``event`` if given.

        Does nothing (returns False) unless the run's status is in ``only_from``,
        so a run never gets two terminal events or flips from done to cancelled.
        ``claim``: the ``started`` time of the claim the caller carried the run out
        under (:meth:`claim_slot`); a run since ended, resumed and claimed again
        is not the caller's to end, and is left alone (a cancelled Dask task that
        ran on past its cancel must not end the run's next attempt).
        """
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"finish_run needs a terminal status, got {status!r}")
        with self._write() as c:
            row = c.execute("SELECT status, started FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None or row[0] not in only_from:
                return False
            if claim is not None and row[1] != claim:
                return False
            c.execute(
                "UPDATE runs SET status = ?, finished = ?, message = COALESCE(?, message),"
                " detail = COALESCE(?, detail) WHERE id = ?",
                (status, time.time(), message, detail, run_id),
            )
            if event is not None:
                self._append_event_tx(c, run_id, event)
        return True

    def claim_slot(self, run_id: str, pid: int, max_running: int) -> bool:
        """Start a queued run if a slot is free; True if the run is now running (as ``pid``).

        Atomic across processes. Slots go in the order of the line
        (:mod:`sbi_core.store.turns`: fewer finished rounds first, then the earlier
        arrival): the run starts only if fewer than ``max_running`` runs are running
        *and* the runs ahead of it in line would not fill the free slots. A run whose
        cancel was requested is never started.
        """
        max_running = max(1, int(max_running))
        with self._write() as c:
            row = c.execute(
                "SELECT status, cancel_requested, turn, COALESCE(queued, created), rowid, pid FROM runs WHERE id = ?",
                (run_id,),
            ).fetchone()
            if row is None:
                return False
            status, cancel, turn, joined, rowid, holder = row
            if status == "running":
                return holder is not None and holder == int(pid)
            if status != "queued" or cancel:
                return False
            running = c.execute("SELECT (SELECT COUNT(*) FROM runs WHERE status = 'running')"
                                " + (SELECT COUNT(*) FROM checks WHERE status = 'running')").fetchone()[0]
            ahead = c.execute(f"SELECT COUNT(*) FROM runs WHERE {AHEAD}",
                              (turn, turn, joined, joined, rowid)).fetchone()[0]
            if running + ahead >= max_running:
                return False
            c.execute(
                "UPDATE runs SET status = 'running', started = ?1, began = COALESCE(began, ?1), pid = ?2,"
                " pid_start = ?3 WHERE id = ?4",
                (time.time(), int(pid), process_start_time(pid), run_id),
            )
        return True

    def queue_position(self, run_id: str) -> Optional[int]:
        """1-based place in the line of queued runs (:mod:`sbi_core.store.turns`), or None if the run
        is not queued."""
        place = self.place_in_line(run_id, timed=False)
        return None if place is None else place.position

    def request_cancel(self, run_id: str) -> None:
        """Ask the run's worker to stop (a no-op for finished runs)."""
        with self._write() as c:
            c.execute(
                "UPDATE runs SET cancel_requested = 1 WHERE id = ? AND status IN ('queued', 'running')",
                (run_id,),
            )

    def cancel_requested(self, run_id: str) -> bool:
        """Whether a cancel was requested (True also for a run that no longer exists)."""
        row = self._conn().execute("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return True if row is None else bool(row[0])

    def request_stop(self, run_id: str) -> None:
        """Ask the run's worker to stop and keep what is trained (see :mod:`sbi_core.run.loop`)."""
        with self._write() as c:
            c.execute(
                "UPDATE runs SET stop_requested = 1 WHERE id = ? AND status IN ('queued', 'running')",
                (run_id,),
            )

    def stop_requested(self, run_id: str) -> bool:
        """Whether a stop-and-keep was requested (False for a run that no longer exists)."""
        row = self._conn().execute("SELECT stop_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row[0])

    def delete_run(self, run_id: str) -> None:
        """Remove the run, its events and its artifacts."""
        with self._write() as c:
            c.execute("DELETE FROM events WHERE run_id = ?", (run_id,))
            c.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            c.execute("DELETE FROM checks WHERE run_id = ?", (run_id,))
        shutil.rmtree(self.artifacts_root / run_id, ignore_errors=True)

    def orphaned_runs(self) -> list[RunInfo]:
        """Queued or running runs whose worker (or, for a queued Dask run, holding app) process is
        gone, oldest first. A queued run without a pid is left out for a minute (its worker is
        being started)."""
        now = time.time()
        orphans = []
        for info in reversed(self.list_runs(limit=None, status=list(ACTIVE_STATUSES))):
            pid, pid_start = self.worker_process(info.id)
            if pid is None:
                if info.status == "queued" and now - info.created < _PIDLESS_GRACE_S:
                    continue
            elif pid_alive(pid, pid_start):
                continue
            orphans.append(info)
        return orphans

    def reap_stale(self) -> list[str]:
        """Mark :meth:`orphaned_runs` failed (cancelled if a cancel was asked); returns their ids."""
        reaped = []
        for info in self.orphaned_runs():
            rid = info.id
            if self.cancel_requested(rid):
                ok = self.finish_run(rid, "cancelled", event=cancelled_event())
            else:
                detail = self._log_tail(rid)
                ok = self.finish_run(
                    rid,
                    "failed",
                    message=STALE_MESSAGE,
                    detail=detail,
                    event=failed_event(STALE_MESSAGE, detail),
                )
            if ok:
                reaped.append(rid)
        return reaped

    def _log_tail(self, run_id: str, chars: int = 4000) -> Optional[str]:
        """The end of the run's ``worker.log`` (what a crashed worker printed), if any."""
        path = self.artifacts_root / run_id / "worker.log"
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - chars))
                text = f.read().decode("utf-8", "replace").strip()
        except OSError:
            return None
        return f"Last lines of the worker's log ({path}):\n{text}" if text else None

    def worker_alive(self, run_id: str) -> bool:
        """Whether the run's recorded worker process still runs."""
        row = self._conn().execute("SELECT pid, pid_start FROM runs WHERE id = ?", (run_id,)).fetchone()
        return row is not None and pid_alive(row[0], row[1])

    def worker_process(self, run_id: str) -> tuple[Optional[int], Optional[str]]:
        """``(pid, start time)`` recorded for the run's worker."""
        row = self._conn().execute("SELECT pid, pid_start FROM runs WHERE id = ?", (run_id,)).fetchone()
        return (row[0], row[1]) if row else (None, None)

    # ---- events -----------------------------------------------------------
    @staticmethod
    def _append_event_tx(c: sqlite3.Connection, run_id: str, event: dict) -> int:
        if "type" not in event:
            raise ValueError("an event needs a 'type'")
        if "time" not in event:
            event = {**event, "time": time.time()}
        seq = c.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE run_id = ?", (run_id,)
        ).fetchone()[0]
        t = event.get("time")
        t = float(t) if isinstance(t, (int, float)) and math.isfinite(t) else time.time()
        c.execute(
            "INSERT INTO events (run_id, seq, type, json, time) VALUES (?, ?, ?, ?, ?)",
            (run_id, seq, str(event["type"]), _dumps(event), t),
        )
        if event["type"] == "reference":  # the C2ST measured after its round's event: fold it in there
            row = c.execute("SELECT seq, json FROM events WHERE run_id = ? AND type = 'round' AND"
                            " json_extract(json, '$.round') = ? ORDER BY seq DESC LIMIT 1",
                            (run_id, int(event.get("round", -1)))).fetchone()
            if row is not None:
                c.execute("UPDATE events SET json = ? WHERE run_id = ? AND seq = ?",
                          (_dumps(fold_reference(json.loads(row[1]), event)), run_id, row[0]))
        return int(seq)

    def append_event(self, run_id: str, event: dict) -> int:
        """Append ``event`` to the run's log; returns its sequence number (1, 2, ... per run)."""
        with self._write() as c:
            return self._append_event_tx(c, run_id, event)

    def events(
        self, run_id: str, after: int = 0, types: Optional[Sequence[str]] = None
    ) -> list[tuple[int, dict]]:
        """``(seq, event)`` pairs with ``seq > after`` in order, optionally only of ``types``."""
        sql = "SELECT seq, json FROM events WHERE run_id = ? AND seq > ?"
        params: list[Any] = [run_id, int(after)]
        if types is not None:
            types = [types] if isinstance(types, str) else list(types)
            if not types:
                return []
            sql += f" AND type IN ({','.join('?' * len(types))})"
            params += types
        sql += " ORDER BY seq"
        return [(int(s), json.loads(j)) for s, j in self._conn().execute(sql, params).fetchall()]

    def last_event(self, run_id: str, types: Optional[Sequence[str]] = None) -> Optional[tuple[int, dict]]:
        """The latest ``(seq, event)`` (of ``types``, if given), or None."""
        sql = "SELECT seq, json FROM events WHERE run_id = ?"
        params: list[Any] = [run_id]
        if types is not None:
            types = [types] if isinstance(types, str) else list(types)
            sql += f" AND type IN ({','.join('?' * len(types))})"
            params += types
        row = self._conn().execute(sql + " ORDER BY seq DESC LIMIT 1", params).fetchone()
        return (int(row[0]), json.loads(row[1])) if row else None

    # ---- resuming ---------------------------------------------------------
    def reopen_run(self, run_id: str, from_round: int, reason: str = "resume") -> bool:
        """Queue an ended (``failed``/``cancelled``) or orphaned active run again, to go on from
        round ``from_round`` (0-based); returns whether it was reopened.

        In one transaction: the events after the last finished round before
        ``from_round`` (the unfinished round's progress and the ending) are dropped,
        a ``resumed`` event is appended with the next sequence number (so followers
        that had read the dropped events still see everything new), and the run is
        ``queued`` again with its cancel and stop flags, ending and pid cleared. Its
        finished rounds' events and artifacts stay as they are.
        """
        with self._write() as c:
            row = c.execute("SELECT status, message FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return False
            status, message = row
            if status not in ("failed", "cancelled") and not (reason == "restart" and status in ACTIVE_STATUSES):
                return False
            last_seq = c.execute("SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?", (run_id,)).fetchone()[0]
            keep = 0
            for seq, text in c.execute("SELECT seq, json FROM events WHERE run_id = ? AND type IN ('run_started', 'round')"
                                       " ORDER BY seq", (run_id,)).fetchall():
                event = json.loads(text)
                if event.get("type") == "run_started" or int(event.get("round", -1)) < int(from_round):
                    keep = int(seq)
            c.execute("DELETE FROM events WHERE run_id = ? AND seq > ?", (run_id, keep))
            event = resumed_event(from_round, reason, status, message)
            c.execute("INSERT INTO events (run_id, seq, type, json, time) VALUES (?, ?, ?, ?, ?)",
                      (run_id, int(last_seq) + 1, event["type"], _dumps(event), event["time"]))
            c.execute("UPDATE runs SET status = 'queued', finished = NULL, message = NULL, detail = NULL,"
                      " cancel_requested = 0, stop_requested = 0, pid = NULL, pid_start = NULL, turn = ?,"
                      " queued = ? WHERE id = ?", (int(from_round), time.time(), run_id))
        return True

    def resume_point(self, run_id: str) -> int:
        """The round a ``resumed`` run goes on from (0: from the start; also for a run never resumed)."""
        last = self.last_event(run_id, types=["resumed"])
        return int(last[1].get("from_round") or 0) if last else 0

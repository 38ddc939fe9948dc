"""The run store's SQLite database: one connection per thread and process, waits, faults, schema.

Every thread of every process opens its own connection lazily (a connection
never crosses a ``fork``: one inherited is parked, never closed or used).
Writers take the database lock up front (``BEGIN IMMEDIATE``) and SQLite waits
for it (``busy_timeout``); a statement SQLite still refuses as busy is tried
again with jittered exponential backoff -- full jitter, the ``k``-th wait a
uniform draw below ``min(BACKOFF_MAX, BACKOFF_FIRST * 2^k)`` -- for a bounded
window, where that is safe (outside a transaction, and ``COMMIT``). Readers
never block writers (WAL). A full disk, a read-only file or folder and a store
that stays busy past the window raise
:class:`~sbi_core.store.errors.StoreUnavailable` with a message that says
what to fix; a failed transaction is always rolled back, so the lock is never
left held.

:class:`SQLiteStore` is the base of :class:`~sbi_core.store.runs.RunStore`: a
subclass names its ``db_path``, ``root``, its tables (:attr:`SCHEMA`), the
columns added after older databases existed (:attr:`ADDED_COLUMNS`) and what
needs them (:attr:`LATE_SCHEMA`); :meth:`SQLiteStore._ensure_schema` creates
or upgrades them, taking the write lock only when something is missing.
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import threading
import time
import urllib.parse
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from sbi_core.store.errors import BUSY, StoreUnavailable, is_busy, store_unavailable

__all__ = ["SQLiteStore"]

# How long one statement waits for a lock inside SQLite (its busy handler), and how long the store
# keeps trying a statement that SQLite still refuses as busy before raising StoreUnavailable.
_BUSY_TIMEOUT_MS = 30_000
_BUSY_WINDOW_S = 30.0
_BACKOFF_FIRST_S = 0.005  # the first retry waits up to this; each later one up to twice as long ...
_BACKOFF_MAX_S = 0.25  # ... but never more than this (full jitter: a uniform draw below the cap)

_SCHEMA_NAME = re.compile(r"CREATE\s+(?:TABLE|INDEX)\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.IGNORECASE)


def _statements(parts: Sequence[str]) -> list[str]:
    """The SQL statements of ``parts`` (each a ``;``-separated script)."""
    return [st for part in parts for st in part.split(";") if st.strip()]


# connections made in a parent process are never closed (or used) in a forked
# child: closing them there could disturb the parent's locks. They are parked here.
_ABANDONED: list = []


class _StoreConnection(sqlite3.Connection):
    """A connection of the run store: waits out a busy database, and reports disk faults plainly.

    :meth:`execute` runs a statement; one that SQLite refuses as busy is tried
    again with jittered backoff, for at most :data:`_BUSY_WINDOW_S`, where that
    is safe: outside a transaction (a read, ``BEGIN IMMEDIATE``) and for
    ``COMMIT``. A busy statement inside a transaction, a busy statement past
    the window, and every disk fault are raised as
    :class:`~sbi_core.store.errors.StoreUnavailable` (from SQLite's error);
    other errors pass unchanged.
    """

    store_root: Path  # the store's folder, named in the messages

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        started = time.monotonic()
        cap = _BACKOFF_FIRST_S
        while True:
            try:
                return super().execute(sql, parameters)
            except sqlite3.Error as err:
                waited = time.monotonic() - started
                retry = (is_busy(err) and (not self.in_transaction or sql.strip().upper() == "COMMIT")
                         and waited < _BUSY_WINDOW_S)
                if not retry:
                    translated = store_unavailable(err, self.store_root, waited_s=waited)
                    if translated is None:
                        raise
                    raise translated from err
            time.sleep(min(random.uniform(0.0, cap), max(0.0, _BUSY_WINDOW_S - waited)))
            cap = min(_BACKOFF_MAX_S, cap * 2)


def _open_connection(db_path: Path, root: Path, read_only: bool = False) -> _StoreConnection:
    """A new :class:`_StoreConnection` to the database ``db_path`` of the store at ``root``.

    ``read_only`` opens it with SQLite's ``mode=ro`` (every write then fails with
    SQLite's own "attempt to write a readonly database"). Failing to open at
    all (e.g. a folder that may not be written) raises StoreUnavailable.
    """
    uri = "file:" + urllib.parse.quote(str(db_path)) + ("?mode=ro" if read_only else "")
    try:
        conn = sqlite3.connect(
            uri,
            uri=True,
            timeout=_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,  # autocommit; transactions are explicit
            check_same_thread=True,
            factory=_StoreConnection,
        )
    except sqlite3.Error as err:
        translated = store_unavailable(err, root)
        if translated is None:
            raise
        raise translated from err
    conn.store_root = root
    return conn


class SQLiteStore:
    """A database at ``self.db_path`` (store folder ``self.root``) with per-thread connections."""

    SCHEMA: Sequence[str] = ()  # CREATE ... IF NOT EXISTS scripts
    ADDED_COLUMNS: Sequence[tuple[str, str, str]] = ()  # (table, column, declaration) added after release
    LATE_SCHEMA: Sequence[str] = ()  # scripts that need the added columns
    db_path: Path
    root: Path
    _local: threading.local

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection in this process (opened on first use; see :class:`_StoreConnection`)."""
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            return conn
        if conn is not None:  # inherited through fork: leave it alone
            _ABANDONED.append(conn)
            local.conn = None
        conn = _open_connection(self.db_path, self.root)
        try:
            conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA synchronous=NORMAL")  # durable enough in WAL mode, and fast
        except BaseException:
            conn.close()
            raise
        local.conn = conn
        local.pid = os.getpid()
        return conn

    def _drop_conn(self) -> None:
        """Close and forget this thread's connection (one left in an unknown state); the next use opens anew."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._local.conn = None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the database lock from its start; all of it, or nothing, is stored.

        Waiting for the lock and a busy ``COMMIT`` are retried (:class:`_StoreConnection`);
        a full or unwritable store raises :class:`~sbi_core.store.errors.StoreUnavailable`.
        Whatever fails, the transaction is rolled back, so the lock is never left held.
        """
        c = self._conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
            c.execute("COMMIT")
        except BaseException:
            self._rollback(c)
            raise

    def _rollback(self, c: sqlite3.Connection) -> None:
        """End ``c``'s open transaction, if any (SQLite may have rolled it back already, e.g. on a full disk)."""
        if not c.in_transaction:
            return
        try:
            sqlite3.Connection.execute(c, "ROLLBACK")  # no retries: never wait while unwinding
        except sqlite3.Error:
            self._drop_conn()  # closing a connection rolls its transaction back

    def _ensure_schema(self) -> None:
        """Create or upgrade the tables, in WAL mode; writes nothing when all is in place.

        The tables and indexes are those of :attr:`SCHEMA` and :attr:`LATE_SCHEMA`;
        a column added to a table after databases with it existed belongs in
        :attr:`ADDED_COLUMNS`. Only a missing table, index or
        column takes the write lock, so a store that is full or read-only still
        opens (for reading) as long as its schema is current.
        """
        c = self._conn()
        # WAL is a property of the database file: set once, kept by every connection. Switching a new
        # file needs its lock; a store opened by many processes at once may find it taken.
        started = time.monotonic()
        while str(c.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            if str(c.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower() == "wal":
                break
            if time.monotonic() - started > _BUSY_WINDOW_S:
                raise StoreUnavailable(self.root, BUSY, "could not switch the database to WAL mode")
            time.sleep(random.uniform(0.0, _BACKOFF_MAX_S))
        if self._schema_current(c):
            return
        with self._write() as c:
            for statement in _statements(self.SCHEMA):
                c.execute(statement)
            for table, column, declaration in self.ADDED_COLUMNS:
                if column not in {r[1] for r in c.execute(f"PRAGMA table_info({table})")}:
                    c.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            for statement in _statements(self.LATE_SCHEMA):
                c.execute(statement)

    def _schema_current(self, c: sqlite3.Connection) -> bool:
        """Whether every table, index and column :meth:`_ensure_schema` makes is already there (reads only)."""
        names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
        if not set(_SCHEMA_NAME.findall(";".join((*self.SCHEMA, *self.LATE_SCHEMA)))) <= names:
            return False
        for table, column, _ in self.ADDED_COLUMNS:
            if column not in {r[1] for r in c.execute(f"PRAGMA table_info({table})")}:
                return False
        return True

    def journal_mode(self) -> str:
        """The database's journal mode (``"wal"`` normally)."""
        return str(self._conn().execute("PRAGMA journal_mode").fetchone()[0]).lower()

    def close(self) -> None:
        """Close this thread's connection (others close when their thread/process ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local = threading.local()

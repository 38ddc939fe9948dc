"""What the run store says when it cannot do its work: a full disk, a folder it may not write, too busy.

The store (:mod:`sbi_core.store.runs`, :mod:`sbi_core.store.artifacts`) raises
:class:`StoreUnavailable` for every fault of the disk or the database that a
person can fix, instead of SQLite's or the operating system's own error. Its
message names the store's folder, says what is wrong in plain words and what
to do about it, and that the runs already stored can still be viewed: reads
keep working while writes fail, so the app keeps showing what it has.

:func:`store_unavailable` decides which errors those are:

* the disk is full: SQLite's ``SQLITE_FULL`` ("database or disk is full"), an
  ``OSError`` with ``ENOSPC`` or ``EDQUOT`` (a quota);
* the store cannot be written: ``SQLITE_READONLY``, ``SQLITE_PERM``,
  ``SQLITE_CANTOPEN`` (its files cannot be opened), ``SQLITE_IOERR`` (the disk
  fails), an ``OSError`` with ``EROFS``, ``EACCES`` or ``EPERM``;
* the store is busy: ``SQLITE_BUSY`` / ``SQLITE_LOCKED`` ("database is
  locked") still refused after the store waited and retried for a bounded time
  (:func:`is_busy` tells the store which errors to wait out first).

Any other error (a bug, a bad SQL statement) is not translated.
"""

from __future__ import annotations

import errno
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from sbi_core.errors import SBIError

__all__ = ["StoreUnavailable", "store_unavailable", "translate_store_errors", "is_busy",
           "FULL", "UNWRITABLE", "BUSY"]

# the kinds of StoreUnavailable
FULL = "full"
UNWRITABLE = "unwritable"
BUSY = "busy"

# SQLite's primary result codes (an extended code carries one in its low byte)
_SQLITE_PERM = 3
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14

_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_READ_ONLY_ERRNOS = {errno.EROFS}
_DENIED_ERRNOS = {errno.EACCES, errno.EPERM}

# what a message says when SQLite's error has no code (the texts of sqlite3_errstr)
_SQLITE_TEXTS = (
    ("database or disk is full", _SQLITE_FULL),
    ("readonly database", _SQLITE_READONLY),
    ("database is locked", _SQLITE_BUSY),
    ("database table is locked", _SQLITE_LOCKED),
    ("unable to open database file", _SQLITE_CANTOPEN),
    ("disk i/o error", _SQLITE_IOERR),
    ("access permission denied", _SQLITE_PERM),
)

_STILL_VIEWABLE = "the runs already stored can still be viewed"
_MOVE_HINT = "set SBI_STORE_DIR to a writable folder and restart the app"


class StoreUnavailable(SBIError):
    """The run store cannot write (or, rarely, read) right now; the message says why and what to do.

    ``kind`` is :data:`FULL` (no space left), :data:`UNWRITABLE` (read-only,
    permission denied, a failing disk) or :data:`BUSY` (too many writers at
    once, for longer than the store waits); ``path`` is the store's folder.
    A full or unwritable store stays so until someone fixes it: the app keeps
    showing the stored runs, and every change (starting, cancelling,
    deleting a run) fails with this message meanwhile.
    """

    def __init__(self, path: str | Path, kind: str, reason: str = "") -> None:
        self.path = str(path)
        self.kind = kind
        self.reason = reason
        super().__init__(_message(self.path, kind, reason))

    def __reduce__(self) -> tuple:
        """Pickled with its own arguments: a Dask task that met the fault hands it back to the app intact."""
        return (type(self), (self.path, self.kind, self.reason))

    @property
    def writes_blocked(self) -> bool:
        """Whether no change can be stored until someone acts (full or unwritable, not merely busy)."""
        return self.kind in (FULL, UNWRITABLE)


def _message(path: str, kind: str, reason: str) -> str:
    if kind == FULL:
        return (f"The run store at {path} is full: the disk has no space left{f' ({reason})' if reason else ''}. "
                f"Free some space on that disk, or {_MOVE_HINT}; {_STILL_VIEWABLE}.")
    if kind == BUSY:
        return (f"The run store at {path} is busy: many changes arrived at once and this one did not get its "
                f"turn{f' ({reason})' if reason else ''}. Nothing was changed; try again in a moment.")
    return (f"The run store at {path} cannot be written ({reason or 'read-only or permission denied'}). "
            f"Make that folder writable, or {_MOVE_HINT}; {_STILL_VIEWABLE}.")


def _sqlite_code(err: sqlite3.Error) -> Optional[int]:
    """SQLite's primary result code of ``err`` (from its code, else from its text), or None."""
    code = getattr(err, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    text = str(err).lower()
    for fragment, primary in _SQLITE_TEXTS:
        if fragment in text:
            return primary
    return None


def is_busy(err: BaseException) -> bool:
    """Whether ``err`` is SQLite refusing because another connection holds a lock ("database is locked")."""
    return isinstance(err, sqlite3.Error) and _sqlite_code(err) in (_SQLITE_BUSY, _SQLITE_LOCKED)


def store_unavailable(err: BaseException, path: str | Path, waited_s: Optional[float] = None
                      ) -> Optional[StoreUnavailable]:
    """The :class:`StoreUnavailable` that ``err`` means for the store at ``path``, or None (not a store fault).

    ``waited_s``: how long the store waited out a busy database before giving up (said in the message).
    """
    if isinstance(err, StoreUnavailable):
        return err
    if isinstance(err, sqlite3.Error):
        code = _sqlite_code(err)
        if code == _SQLITE_FULL:
            return StoreUnavailable(path, FULL)
        if code == _SQLITE_READONLY:
            return StoreUnavailable(path, UNWRITABLE, "read-only: SQLite says it may not write the database")
        if code == _SQLITE_PERM:
            return StoreUnavailable(path, UNWRITABLE, "permission denied")
        if code == _SQLITE_CANTOPEN:
            return StoreUnavailable(path, UNWRITABLE, "its database files cannot be opened: "
                                                      "read-only or permission denied")
        if code == _SQLITE_IOERR:
            return StoreUnavailable(path, UNWRITABLE, f"the disk reported an error: {err}")
        if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return StoreUnavailable(path, BUSY, f"waited {waited_s:.0f} s" if waited_s is not None else "")
        return None
    if isinstance(err, OSError):
        where = f" at {err.filename}" if err.filename else ""
        if err.errno in _FULL_ERRNOS:
            return StoreUnavailable(path, FULL, "over the disk quota" if err.errno != errno.ENOSPC else "")
        if err.errno in _READ_ONLY_ERRNOS:
            return StoreUnavailable(path, UNWRITABLE, f"read-only file system{where}")
        if err.errno in _DENIED_ERRNOS:
            return StoreUnavailable(path, UNWRITABLE, f"permission denied{where}")
    return None


@contextmanager
def translate_store_errors(path: str | Path) -> Iterator[None]:
    """Raise :class:`StoreUnavailable` (from the original) for store faults in the block; other errors pass."""
    try:
        yield
    except (sqlite3.Error, OSError) as err:
        translated = store_unavailable(err, path)
        if translated is None or translated is err:
            raise
        raise translated from err

"""Process liveness from ``/proc``: is a worker still running, and is it still the same process?

A pid alone is not an identity (pids are reused), so a worker is recorded as
its pid plus its start time in clock ticks since boot (field 22 of
``/proc/<pid>/stat``); a zombie counts as gone.
"""

from __future__ import annotations

import os
from typing import Optional

__all__ = ["process_start_time", "pid_alive"]


def _proc_stat(pid: int) -> Optional[list[str]]:
    """Fields of ``/proc/<pid>/stat`` after the command name, or None."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # the command name is in parentheses and may itself contain spaces/parens
    end = raw.rfind(")")
    if end < 0:
        return None
    return raw[end + 2 :].split()


def process_start_time(pid: int) -> Optional[str]:
    """The process's start time (clock ticks since boot, from ``/proc``), or None if unknown.

    Together with the pid it identifies a process even after the pid is reused.
    """
    rest = _proc_stat(pid)
    # rest[0] is field 3 (state); starttime is field 22 -> rest[19]
    if rest is None or len(rest) < 20:
        return None
    return rest[19]


def pid_alive(pid: Optional[int], start_time: Optional[str] = None) -> bool:
    """Whether process ``pid`` still runs (and, if ``start_time`` is given, is the same process).

    A zombie (exited, not yet reaped by its parent) counts as gone.
    """
    if pid is None or int(pid) <= 0:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    except OSError:
        return False
    rest = _proc_stat(pid)
    if rest is not None:
        if rest[0] in ("Z", "X", "x"):
            return False
        if start_time is not None and len(rest) >= 20 and rest[19] != str(start_time):
            return False  # the pid now belongs to another process
    return True

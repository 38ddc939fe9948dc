"""The line of queued runs, and runs taking turns on the workers one round at a time.

A class of thirty students who each start a run at once would otherwise be served
first come, first served: the last student waits for twenty-nine whole runs before
seeing a first cloud. Instead, a run that finishes a round while another run waits
for a worker *hands the worker over* (:meth:`RunTurns.hand_over`): it goes back in
line, ``queued``, and goes on later from the checkpoint of that round, drawing
exactly what it would have drawn uninterrupted (:mod:`sbi_core.run.checkpoint`).
A run alone goes straight on.

The line is ordered by two columns of table ``runs``:

``turn``
    the round (0-based) the run starts with when it next holds a worker: 0 for a
    new run, ``k`` for one that handed over after its round ``k - 1``.
``queued``
    when it last joined the line (NULL: when it was created).

Fewer finished rounds go first, then the earlier arrival (round robin across runs:
every first round comes before any second round). :meth:`RunStore.claim_slot
<sbi_core.store.runs.RunStore.claim_slot>` and :meth:`RunStore.queue_position
<sbi_core.store.runs.RunStore.queue_position>` use :data:`LINE_ORDER`; the Dask
executor submits a run's task with priority ``-turn``, the same order
(:mod:`sbi_core.jobs.dask_executor`). How the app tells a student where they are:
:meth:`RunTurns.place_in_line`.

:class:`RunTurns` is the part of :class:`~sbi_core.store.runs.RunStore` that handles
this (it needs the store's ``_conn()``, ``_write()`` and ``_append_event_tx``).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from typing import Optional

from sbi_core.events import REFERENCE_DEFERRED, resumed_event

__all__ = ["RunTurns", "PlaceInLine", "TURN_REASON", "LINE_ORDER", "TURN_COLUMNS", "TURN_INDEX", "DEFAULT_ROUND_S"]

TURN_REASON = "turn"  # the ``reason`` of the ``resumed`` event of a run that handed its worker over
DEFAULT_ROUND_S = 5.0  # a round's seconds, guessed, before this store has timed any
_RECENT_ROUNDS = 30  # the rounds whose times the wait is estimated from

# the columns a store made before runs took turns lacks (:attr:`SQLiteStore.ADDED_COLUMNS`)
TURN_COLUMNS = (
    ("runs", "turn", "INTEGER NOT NULL DEFAULT 0"),
    ("runs", "queued", "REAL"),
    ("runs", "began", "REAL"),  # its first claim: ``started`` is each turn's (the claim's token)
)
TURN_INDEX = "CREATE INDEX IF NOT EXISTS events_type_time ON events(type, time)"  # recent rounds' times
# a queued run's key in the line, as SQL over table runs; smaller goes first
LINE_KEY = "turn, COALESCE(queued, created), rowid"
LINE_ORDER = f"ORDER BY {LINE_KEY}"
# queued runs ahead of the run whose (turn, joined, rowid) are bound as 5 parameters (turn, turn, joined, joined, rowid)
AHEAD = ("status = 'queued' AND cancel_requested = 0 AND (turn < ? OR (turn = ? AND"
         " (COALESCE(queued, created) < ? OR (COALESCE(queued, created) = ? AND rowid < ?))))")


@dataclass(frozen=True)
class PlaceInLine:
    """Where a queued run stands.

    Attributes:
        position: 1-based place among the queued runs (1: next to get a worker).
        ahead_first: runs ahead of it that wait for their first round.
        ahead_later: runs ahead of it that wait for a later round (they handed over).
        running: runs holding a worker now.
        turn: the round (0-based) this run starts with when its turn comes.
        round_s: the typical seconds of one round in this store (median of recent rounds).
        workers: how many runs train at once.
    """

    position: int
    ahead_first: int
    ahead_later: int
    running: int
    turn: int
    round_s: float
    workers: int

    @property
    def ahead(self) -> int:
        return self.ahead_first + self.ahead_later

    @property
    def wait_s(self) -> float:
        """Seconds until this run holds a worker: every run ahead takes one round, and the runs
        holding the workers are taken as half way through theirs."""
        return (self.ahead + 0.5 * self.running) * self.round_s / max(1, self.workers)


class RunTurns:
    """Queued runs in line, and runs handing their worker over between rounds (see the module docstring)."""

    def line_key(self, run_id: str) -> Optional[tuple[str, int, float, int]]:
        """``(status, turn, joined, rowid)`` of a run, or None if there is no such run."""
        row = self._conn().execute(
            "SELECT status, turn, COALESCE(queued, created), rowid FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        return None if row is None else (row[0], int(row[1] or 0), float(row[2]), int(row[3]))

    def others_waiting(self, run_id: str) -> int:
        """Queued runs that wait for the worker ``run_id`` holds: not ``run_id``, no cancel asked, held
        by a process (its worker process, or the app that submitted its task: a run merely written
        to the store waits for nobody's worker) and not its owner's (an owner's next run waits for
        their current one to end anyway)."""
        row = self._conn().execute(
            "SELECT COUNT(*) FROM runs WHERE status = 'queued' AND cancel_requested = 0 AND id != ?1 AND"
            " pid IS NOT NULL AND (owner IS NULL OR owner != COALESCE((SELECT owner FROM runs WHERE id = ?1), ''))",
            (run_id,)
        ).fetchone()
        return int(row[0])

    def hand_over(self, run_id: str, next_round: int, claim: Optional[float] = None) -> bool:
        """Put a running run back in line to go on from round ``next_round`` (0-based) on its next turn.

        In one transaction, only while the run is ``running`` under ``claim`` (its
        ``started`` when it was claimed; None: any) and no cancel or stop was asked: a
        ``resumed`` event with reason :data:`TURN_REASON` is appended (nothing is dropped:
        its rounds so far are finished and kept), and the run becomes ``queued`` at the
        end of the line for round ``next_round``. Its recorded worker stays (the process
        that holds it until it is claimed again). Returns whether it was put back.
        """
        with self._write() as c:
            row = c.execute("SELECT status, started, cancel_requested, stop_requested FROM runs WHERE id = ?",
                            (run_id,)).fetchone()
            if row is None or row[0] != "running" or row[2] or row[3]:
                return False
            if claim is not None and row[1] != claim:
                return False
            self._append_event_tx(c, run_id, resumed_event(next_round, TURN_REASON, "running"))
            c.execute("UPDATE runs SET status = 'queued', turn = ?, queued = ? WHERE id = ?",
                      (int(next_round), time.time(), run_id))
        return True

    def deferred_references(self, limit: int = 10) -> list[tuple[str, int]]:
        """``(run id, round)`` of rounds whose C2ST was deferred and is not measured yet, oldest first."""
        rows = self._conn().execute(
            "SELECT run_id, json_extract(json, '$.round') FROM events WHERE type = 'round' AND"
            " json_extract(json, '$.reference_c2st_reason') = ? ORDER BY time LIMIT ?",
            (REFERENCE_DEFERRED, int(limit)),
        ).fetchall()
        return [(str(rid), int(r)) for rid, r in rows]

    def reference_deferred(self, run_id: str, index: int) -> bool:
        """Whether round ``index`` of the run waits for its deferred C2ST."""
        row = self._conn().execute(
            "SELECT 1 FROM events WHERE run_id = ? AND type = 'round' AND json_extract(json, '$.round') = ? AND"
            " json_extract(json, '$.reference_c2st_reason') = ? LIMIT 1", (run_id, int(index), REFERENCE_DEFERRED),
        ).fetchone()
        return row is not None

    def recent_round_seconds(self, limit: int = _RECENT_ROUNDS) -> float:
        """The median seconds of the last ``limit`` rounds trained in this store (proposal, simulation,
        training and sampling: what a run ahead in line holds the worker for), or :data:`DEFAULT_ROUND_S`."""
        rows = self._conn().execute(
            "SELECT json_extract(json, '$.seconds') FROM events WHERE type = 'round' ORDER BY time DESC LIMIT ?",
            (int(limit),),
        ).fetchall()  # the index events_type_time; json_extract leaves the posterior samples unparsed
        spent = []
        for (text,) in rows:
            seconds = json.loads(text) if text else {}
            total = sum(float(v) for k, v in seconds.items() if k != "reference" and isinstance(v, (int, float)))
            if total > 0:
                spent.append(total)
        return statistics.median(spent) if spent else DEFAULT_ROUND_S

    def place_in_line(self, run_id: str, workers: int = 1, timed: bool = True) -> Optional[PlaceInLine]:
        """Where the queued run ``run_id`` stands (None: it is not queued), with ``workers`` runs
        training at once; ``timed=False`` leaves out the recent rounds' times (``round_s`` is then
        :data:`DEFAULT_ROUND_S`)."""
        key = self.line_key(run_id)
        if key is None or key[0] != "queued":
            return None
        _, turn, joined, rowid = key
        c = self._conn()
        params = (turn, turn, joined, joined, rowid)
        first, later = c.execute(
            f"SELECT COALESCE(SUM(turn = 0), 0), COALESCE(SUM(turn > 0), 0) FROM runs WHERE {AHEAD}", params
        ).fetchone()
        running = c.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0]
        return PlaceInLine(position=int(first) + int(later) + 1, ahead_first=int(first), ahead_later=int(later),
                           running=int(running), turn=turn, round_s=self.recent_round_seconds() if timed else DEFAULT_ROUND_S,
                           workers=max(1, int(workers)))

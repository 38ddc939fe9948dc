"""The worker process that carries out one stored run.

    python -m sbi_core.jobs.worker --store DIR RUN_ID [--max-running N] [--threads T] [--checks]

It limits torch's threads (before torch is imported), waits in the queue until
a slot is free (leaving early, as cancelled, if a cancel is requested), then
runs :func:`sbi_core.run.loop.execute`, appending every event to the store and
saving each round's artifacts. A stop-and-keep request (``RunStore.request_stop``)
is handed to the run as its ``stop`` check: the run ends early keeping what is
trained, and is recorded ``done`` with ``stopped_by_request`` in the ``done``
event. The run always ends with a terminal status and
event: ``done``, ``cancelled``, or ``failed`` with a plain message (and, for a
bug, the traceback as detail) -- even when an import fails.

With ``--checks`` it carries out the run's calibration checks instead
(:func:`sbi_core.checks.job.run_check_job`), recording their status in the
store's ``checks`` table, never in the run's own record.

Runs take turns (:mod:`sbi_core.jobs.turns`): while another run waits for a
slot, a run hands its slot over after each round and waits in line again, going
on later from that round's checkpoint; a run alone goes straight on.

The body of one run (events, artifacts, the cancel and stop flags, how it
ended) is :func:`carry_out`: this process calls it once its run holds a slot,
and a Dask task calls it too (:mod:`sbi_core.jobs.dask_executor`).

``--execute MODULE:FUNCTION`` swaps in another executor with the signature of
``execute`` (for tests and debugging); one without a ``stop`` argument treats a
stop-and-keep request as a cancel.
"""

from __future__ import annotations

# Only the standard library at module level: the thread limits must be in the
# environment before torch (or numpy's BLAS) is first imported.
import argparse
import inspect
import os
import signal
import sys
import time
import traceback
from typing import Any, Callable, Optional, Sequence

from sbi_core.errors import Cancelled, SBIError
from sbi_core.events import cancelled_event, done_event, failed_event
from sbi_core.jobs.turns import TakingTurns
from sbi_core.run.checkpoint import load_checkpoint, save_checkpoint
from sbi_core.store.errors import StoreUnavailable
from sbi_core.store.runs import RunStore
from sbi_core.threads import set_threads

# _HEAVY: the worker imports the run loop and check jobs (torch, the flow library, the methods:
# about 1.5 s) inside the functions that use them: torch must start after set_threads has limited
# its threads, and a worker that only waits in the queue, is cancelled there or runs a scripted
# executor never loads them.

__all__ = ["main", "run_worker", "carry_out", "load_execute", "bug_message", "POLL_S", "CANCEL_CHECK_S"]

POLL_S = 0.2  # queue polling interval
CANCEL_CHECK_S = 0.2  # read the cancel flag at most this often
REAP_EVERY_S = 5.0  # while queued, clear runs whose workers died (they hold up the queue)

def bug_message(err: BaseException) -> str:
    """The plain message shown for an unexpected error (a bug)."""
    return (
        f"Something went wrong while running ({type(err).__name__}). "
        "The details below help a developer."
    )


class _Terminated(BaseException):
    """SIGTERM arrived (e.g. the job manager stopping a run that ignored its cancel)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: let the ending be recorded in peace
    raise _Terminated()


def _parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sbi_core.jobs.worker", description="Carry out one stored run.")
    p.add_argument("--store", required=True, help="the run store's folder")
    p.add_argument("run_id")
    p.add_argument("--max-running", type=int, default=1, help="runs allowed at once (queue slots)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the spec's, else all)")
    p.add_argument("--execute", default="sbi_core.run.loop:execute", help=argparse.SUPPRESS)
    p.add_argument("--checks", action="store_true", help="run the calibration checks of the (finished) run")
    return p.parse_args(argv)


def load_execute(ref: str) -> Callable:
    """The run function named ``"module:function"`` (``"module"`` alone: its ``execute``)."""
    import importlib

    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name or "execute")


def _takes(name: str, execute: Callable) -> bool:
    """Whether an executor accepts the keyword ``name`` (the default one accepts ``stop`` and ``resume``)."""
    try:
        params = inspect.signature(execute).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _takes_stop(execute: Callable) -> bool:
    return _takes("stop", execute)


def _is_cancelled_error(err: BaseException) -> bool:
    return isinstance(err, Cancelled)


def _wait_for_slot(store: Any, run_id: str, pid: int, max_running: int, poll_s: float) -> Optional[str]:
    """Wait in the queue until the run holds a slot (``None``), or return the status it ended with while queued.

    A cancel requested while queued ends the run as ``cancelled``; runs whose workers
    died are cleared every ``REAP_EVERY_S`` so they do not hold up the queue.
    """
    last_reap = 0.0
    while not store.claim_slot(run_id, pid, max_running):
        info = store.get_run(run_id)
        if info is None:
            return "missing"
        if info.is_terminal:  # e.g. cancelled while queued by the job manager
            return info.status
        if info.cancel_requested:
            store.finish_run(run_id, "cancelled", event=cancelled_event())
            return "cancelled"
        now = time.monotonic()
        if now - last_reap > REAP_EVERY_S:
            last_reap = now
            store.reap_stale()
        time.sleep(poll_s)
    return None


def _flag(read: Callable[[str], bool], run_id: str) -> Callable[[], bool]:
    """``read(run_id)`` at most every CANCEL_CHECK_S; once true it stays true."""
    last = [0.0, False]

    def check() -> bool:
        if last[1]:
            return True
        now = time.monotonic()
        if now - last[0] >= CANCEL_CHECK_S:
            last[0] = now
            last[1] = bool(read(run_id))
        return last[1]

    return check


class _Claim:
    """Whether the run is still this worker's to carry out: ``running`` under the claim it started with.

    A run that ignored its cancel past the grace time is ended by the job manager
    while its Dask task goes on (a task cannot be interrupted); the run may even be
    resumed and claimed again by another task. From then on what the old task
    does is discarded: its events and rounds are not stored, it reads as cancelled,
    and its ending changes nothing (:meth:`~sbi_core.store.runs.RunStore.finish_run`'s
    ``claim``). The claim is the run's ``started`` time, stamped when it was
    claimed; read at most every :data:`CANCEL_CHECK_S`, and once lost it stays lost.
    ``started`` None (a store without it): always held.
    """

    def __init__(self, store: Any, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        info = store.get_run(run_id)
        self.started = getattr(info, "started", None) if info is not None else None
        self._last = 0.0
        self._lost = False

    def lost(self) -> bool:
        if self._lost or self.started is None:
            return self._lost
        now = time.monotonic()
        if now - self._last >= CANCEL_CHECK_S:
            self._last = now
            info = self.store.get_run(self.run_id)
            self._lost = info is None or info.status != "running" or info.started != self.started
        return self._lost


class _EventRecorder:
    """The run's ``on_event``: appends events to the store, except ``done`` / ``failed`` (the worker
    alone ends the run), and remembers whether the run itself reported ``cancelled``.
    Once the run is no longer this worker's (:class:`_Claim`), events are dropped."""

    def __init__(self, store: Any, run_id: str, claim: Optional[_Claim] = None) -> None:
        self.store, self.run_id = store, run_id
        self.claim = claim
        self.saw_cancelled = False

    def __call__(self, event: dict) -> None:
        if event.get("type") in ("done", "failed"):
            return  # the worker alone ends the run
        if self.claim is not None and self.claim.lost():
            return  # ended from outside (cancelled past its grace time, deleted): not ours to write
        if event.get("type") == "cancelled":
            self.saw_cancelled = True
        self.store.append_event(self.run_id, event)


def _execute_run(store: Any, run_id: str, execute: Optional[Callable], on_event: Callable,
                 cancel: Callable[[], bool], stop: Callable[[], bool], claim: Optional[_Claim] = None,
                 turns: Optional[TakingTurns] = None) -> Any:
    """Load the run's spec and call ``execute`` (default :func:`sbi_core.run.loop.execute`) with the
    cancel and stop-and-keep checks; an executor without ``stop`` gets a stop as a cancel, one
    without ``hand_over`` runs to its end whoever waits.

    Each finished round is saved with its checkpoint (:mod:`sbi_core.run.checkpoint`). A resumed
    run (:meth:`~sbi_core.store.runs.RunStore.reopen_run`) goes on from the checkpoint of the round
    before its ``from_round``."""
    def on_round(round_result: Any) -> None:
        if claim is not None and claim.lost():
            return  # the run was ended from outside: its files are not this worker's to write
        store.save_round(run_id, round_result)
        data = getattr(round_result, "checkpoint", None)
        if data:
            save_checkpoint(store.round_dir(run_id, round_result.index), data)

    if execute is None:
        from sbi_core.run.loop import execute as _execute  # torch and the methods: deferred, see _HEAVY

        execute = _execute
    info = store.get_run(run_id)
    extra = _resume_argument(store, run_id, execute)
    if turns is not None and _takes("hand_over", execute):
        extra.update(hand_over=turns.others_waiting, defer_reference=turns.defer_reference)
    if _takes_stop(execute):
        return execute(info.spec, on_event=on_event, cancel=cancel, on_round=on_round, stop=stop, **extra)
    # an executor that cannot keep a partial round: a stop request cancels it
    return execute(info.spec, on_event=on_event, cancel=lambda: cancel() or stop(), on_round=on_round, **extra)


def _resume_argument(store: Any, run_id: str, execute: Callable) -> dict:
    """``{"resume": checkpoint}`` for a run resumed after a finished round, else ``{}``."""
    from_round = store.resume_point(run_id) if hasattr(store, "resume_point") else 0
    if from_round <= 0:
        return {}
    # a run that handed its worker over goes on from the round after its last one, like a resumed one
    checkpoint = load_checkpoint(store.round_dir(run_id, from_round - 1))
    if checkpoint is None:
        raise SBIError(f"Round {from_round} cannot be resumed: the saved state of round {from_round - 1} "
                       "is missing or damaged. Start the run again.")
    if not _takes("resume", execute):
        raise SBIError("This run's executor cannot resume a run; start the run again.")
    return {"resume": checkpoint}


def run_worker(
    store: Any,
    run_id: str,
    max_running: int = 1,
    execute: Optional[Callable] = None,
    poll_s: float = POLL_S,
) -> str:
    """Wait for a slot, carry out the run, record how it ended; returns the final status.

    ``store`` is a :class:`~sbi_core.store.runs.RunStore`; ``execute`` defaults to
    :func:`sbi_core.run.loop.execute`. Never raises for a failure of the run itself.
    """
    pid = os.getpid()
    info = store.get_run(run_id)
    if info is None:
        print(f"worker: no run {run_id} in {store}", file=sys.stderr)
        return "missing"
    if info.is_terminal:
        return info.status
    store.set_pid(run_id, pid)
    while True:  # a turn at a time (sbi_core.jobs.turns): back in the queue while others wait
        ended = _wait_for_slot(store, run_id, pid, max_running, poll_s)
        if ended is not None:
            return ended
        status = carry_out(store, run_id, execute, turns=TakingTurns(store, run_id))
        if status != "queued":
            return status


def carry_out(store: Any, run_id: str, execute: Optional[Callable] = None,
              turns: Optional[TakingTurns] = None) -> str:
    """Carry out a run that holds its slot (status ``running``); record how it ended; returns that status.

    The body of every executor: this worker process after its queue, and a Dask
    task (:mod:`sbi_core.jobs.dask_executor`). Appends the run's events, saves each
    round's artifacts, hands it the cancel and stop-and-keep flags read from the
    store, and ends it ``done``, ``cancelled`` or ``failed`` (plain message). Never
    raises for a failure of the run itself; installs no signal handler (a Dask
    task runs in a worker thread).

    With ``turns`` the run hands its slot over between rounds while another run
    waits (:mod:`sbi_core.jobs.turns`): it is then ``queued`` again, and so is the
    status returned; whoever carries it out gives it its next turn.
    """
    started = time.perf_counter()
    claim = _Claim(store, run_id)
    on_event = _EventRecorder(store, run_id, claim)
    cancel = _flag(lambda rid: store.cancel_requested(rid) or claim.lost(), run_id)
    stop = _flag(getattr(store, "stop_requested", lambda _rid: False), run_id)
    try:
        result = _execute_run(store, run_id, execute, on_event, cancel, stop, claim, turns)
    except BaseException as err:  # noqa: BLE001 - every ending is recorded
        return _record_failure(store, run_id, err, on_event.saw_cancelled, claim.started)
    seconds = _seconds_since_began(store, run_id, time.perf_counter() - started)
    stopped = bool(getattr(result, "stopped_by_request", False))
    next_round = getattr(result, "handed_over_before", None)
    if next_round is not None:
        if store.hand_over(run_id, next_round, claim=claim.started):
            return "queued"
        if store.cancel_requested(run_id):  # asked as it handed over: the finished rounds stay
            ended = store.finish_run(run_id, "cancelled", event=cancelled_event(next_round), **_claimed(claim.started))
            return "cancelled" if ended else _status_now(store, run_id)
        stopped = True  # a stop-and-keep asked as it handed over: its finished rounds are the result
    if not store.finish_run(run_id, "done", event=done_event(seconds, stopped), **_claimed(claim.started)):
        return _status_now(store, run_id)  # ended from outside meanwhile (cancelled past its grace): that stands
    return "done"


def _seconds_since_began(store: Any, run_id: str, this_turn: float) -> float:
    """The run's seconds since it first started (turns and waits between them included), else
    ``this_turn``'s."""
    info = store.get_run(run_id)
    began = getattr(info, "began", None)
    return max(this_turn, time.time() - began) if began is not None else this_turn


def _status_now(store: Any, run_id: str) -> str:
    info = store.get_run(run_id)
    return info.status if info is not None else "missing"


def _claimed(started: Optional[float]) -> dict:
    """``finish_run``'s ``claim`` argument for a run claimed at ``started`` (none for stores without one)."""
    return {} if started is None else {"claim": started}


def _record_failure(store: Any, run_id: str, err: BaseException, saw_cancelled: bool,
                    claim: Optional[float] = None) -> str:
    guard = _claimed(claim)

    requested = False
    try:
        requested = bool(store.cancel_requested(run_id))
    except Exception:
        pass
    if _is_cancelled_error(err) or (isinstance(err, (_Terminated, KeyboardInterrupt)) and requested):
        event = None if saw_cancelled else cancelled_event()
        store.finish_run(run_id, "cancelled", event=event, **guard)
        return "cancelled"
    detail = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    if isinstance(err, SBIError):
        message = str(err) or type(err).__name__
    elif isinstance(err, (_Terminated, KeyboardInterrupt)):
        message = ("The run was stopped from outside (its worker process was terminated). The rounds it "
                   "finished are kept: press Resume to go on from the last one.")
    else:
        message = bug_message(err)
    try:
        store.finish_run(run_id, "failed", message=message, detail=detail, event=failed_event(message, detail),
                         **guard)
    except StoreUnavailable:  # a nearly full disk may still take the short record without the traceback
        store.finish_run(run_id, "failed", message=message, event=failed_event(message, None), **guard)
    try:
        sys.stderr.write(detail)
    except OSError:  # worker.log lives on the same (full) disk
        pass
    return "failed"


def _record_failure_raw(store_dir: str, run_id: str, err: BaseException) -> None:
    """Last resort when even the store cannot be used normally: plain sqlite3 and stderr."""
    import json
    import sqlite3

    detail = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    try:
        sys.stderr.write(detail)
    except OSError:
        pass
    message = str(err) if isinstance(err, SBIError) and str(err) else bug_message(err)
    try:
        conn = sqlite3.connect(os.path.join(store_dir, "runs.sqlite3"), timeout=30, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute(
            "UPDATE runs SET status = 'failed', finished = ?, message = ?, detail = ?"
            " WHERE id = ? AND status IN ('queued', 'running')",
            (time.time(), message, detail, run_id),
        )
        if cur.rowcount:
            seq = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
            now = time.time()
            event = failed_event(message, detail)
            conn.execute(
                "INSERT INTO events (run_id, seq, type, json, time) VALUES (?, ?, 'failed', ?, ?)",
                (run_id, seq, json.dumps(event), now),
            )
        conn.execute("COMMIT")
        conn.close()
    except Exception:  # nothing more can be done; stderr (worker.log) has it
        traceback.print_exc()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m sbi_core.jobs.worker``; returns the exit code."""
    args = _parse(argv)
    set_threads(args.threads)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        store = RunStore(args.store)
    except BaseException as err:  # noqa: BLE001
        _record_failure_raw(args.store, args.run_id, err)
        return 1
    if args.checks:  # the checks record their own ending (sbi_core.checks.job never raises)
        from sbi_core.checks.job import run_check_job  # torch: deferred, see _HEAVY

        return 0 if run_check_job(store, args.run_id, max_running=args.max_running) in ("done", "cancelled") else 1
    try:
        threads = args.threads
        if threads is None:
            info = store.get_run(args.run_id)
            threads = getattr(info.spec, "num_threads", None) if info is not None else None
        set_threads(threads)
        execute = None if args.execute == "sbi_core.run.loop:execute" else load_execute(args.execute)
        status = run_worker(store, args.run_id, max_running=args.max_running, execute=execute)
    except BaseException as err:  # noqa: BLE001 - e.g. torch or runs failing to import
        try:
            _record_failure(store, args.run_id, err, saw_cancelled=False)
        except BaseException as err2:  # noqa: BLE001
            _record_failure_raw(args.store, args.run_id, err2)
        return 1
    return 0 if status in ("done", "cancelled") else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

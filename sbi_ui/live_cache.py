"""What every session watching a run shares: the run's record, its events folded once, and its figures.

A class of 30 that presses **Start demo** watches one run (identical requests share
it, :meth:`~sbi_core.store.runs.RunStore.create_or_reuse`), and each of the 30 live views
reruns every poll. Done per session, every poll re-read the run and its new events
(a few queries and a worker liveness check each) and rebuilt the same Plotly figures
(20-25 ms each), 30 times over, on the one Python thread the server has. Here one
server process keeps, per run (:class:`RunFeed`):

* the run's record (:meth:`JobManager.status`) and whether a stop was asked, read at
  most once per :data:`STATUS_TTL_S` for all its watchers;
* one :class:`~sbi_ui.tracker.RunTracker` of its events, brought up to date at most
  once per :data:`EVENTS_TTL_S`. It is a snapshot: an update folds the new events
  into a copy and then swaps it in, so a session that is drawing the previous one
  never sees half an update;
* its figures, each built once per change of what it shows (:func:`figure`: the
  caller names what the figure depends on, e.g. the tracker's last event) and
  handed to every watcher; the latest version per figure is kept;
* who watches it (:func:`watchers`), which sets how often the live views poll
  (:func:`poll_interval`): the more watchers, the longer the interval, so the server
  does at most about :data:`RERUNS_PER_S` live-view reruns a second in all.
* what the store itself says now, read past the tracker and the record
  (:func:`store_progress`), so that a live view can tell that it has fallen behind
  (:class:`ViewWatch`): shown as "This view stopped updating" with a Reload button.

Nothing here belongs to a session, so nothing here may depend on one: a figure's
key must name every setting it depends on (the true parameter shown, projector mode).
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Hashable, Optional

from sbi_ui.tracker import RunTracker

__all__ = ["EVENTS_TTL_S", "STATUS_TTL_S", "RERUNS_PER_S", "WATCH_WINDOW_S", "MAX_RUNS", "RunFeed", "feed",
           "run_status", "stop_requested", "drop", "shared_tracker", "figure", "watch", "watchers", "poll_interval",
           "build_count", "clear", "PROBE_TTL_S", "STALE_POLLS", "STALE_MIN_S", "store_progress", "ViewWatch"]

EVENTS_TTL_S = 0.4  # a run's new events are read at most this often, for all its watchers together
STATUS_TTL_S = 0.4  # and its record
RERUNS_PER_S = 20.0  # live-view reruns a second the server aims at, all runs and sessions together
WATCH_WINDOW_S = 10.0  # a session that polled a run within this window watches it
MAX_RUNS = 64  # runs kept (least recently watched dropped first)
PROBE_TTL_S = 2.0  # the store's own latest event and status, read at most this often per run
STALE_POLLS = 4  # a view the store has been ahead of for this many poll periods has stopped updating
STALE_MIN_S = 8.0  # and for at least this long (a busy server polls late)


@dataclasses.dataclass
class RunFeed:
    """One run as all its watchers see it (see the module docstring)."""

    run_id: str
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    tracker: Optional[RunTracker] = None
    events_at: float = float("-inf")
    info: Any = None
    stop_asked: bool = False
    status_at: float = float("-inf")
    figures: dict = dataclasses.field(default_factory=dict)  # name -> (version, figure)
    sessions: dict = dataclasses.field(default_factory=dict)  # session id -> last poll (monotonic)
    probe: tuple = (0, None)  # (latest event seq, status) as the store has them
    probe_at: float = float("-inf")
    probe_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


_feeds: "OrderedDict[str, RunFeed]" = OrderedDict()
_feeds_lock = threading.Lock()
_builds: dict = {}  # (run id, figure name) -> figures built (for tests and benchmarks)


def _key(store, run_id: str) -> tuple:
    return (str(getattr(store, "root", "")), run_id)


def feed(store, run_id: str) -> RunFeed:
    """The shared feed of ``run_id`` in ``store`` (made on first use; the least recently used beyond
    :data:`MAX_RUNS` go)."""
    key = _key(store, run_id)
    with _feeds_lock:
        f = _feeds.get(key)
        if f is None:
            f = _feeds[key] = RunFeed(run_id)
            while len(_feeds) > MAX_RUNS:
                _feeds.popitem(last=False)
        else:
            _feeds.move_to_end(key)
        return f


def drop(store, run_id: str) -> None:
    """Forget ``run_id``'s feed (its tracker, record and figures): the next watcher reads it anew.
    A live view's Reload does this, in case the shared copy is what stopped it."""
    with _feeds_lock:
        _feeds.pop(_key(store, run_id), None)


def clear() -> None:
    """Forget every run (tests)."""
    with _feeds_lock:
        _feeds.clear()
        _builds.clear()


# ---- the run's record ----------------------------------------------------------------------
def _refresh_status(f: RunFeed, jobs, store, fresh: bool) -> None:
    asked = time.monotonic()
    if not fresh and asked - f.status_at < STATUS_TTL_S:
        return
    with f.lock:
        if f.status_at >= asked or (not fresh and time.monotonic() - f.status_at < STATUS_TTL_S):
            return  # another watcher has just read it
        info = jobs.status(f.run_id)
        f.stop_asked = bool(info is not None and info.status == "running" and store.stop_requested(f.run_id))
        f.info = info
        f.status_at = time.monotonic()


def run_status(run_id: str, jobs, store, fresh: bool = False):
    """``jobs.status(run_id)``, read at most once per :data:`STATUS_TTL_S` for all sessions
    (``fresh``: read now, for a page drawn anew)."""
    f = feed(store, run_id)
    _refresh_status(f, jobs, store, fresh)
    return f.info


def stop_requested(run_id: str, jobs, store) -> bool:
    """Whether a stop-and-keep was asked for the running run (read with its record)."""
    f = feed(store, run_id)
    _refresh_status(f, jobs, store, False)
    return f.stop_asked


# ---- the run's events ------------------------------------------------------------------------
def _copy(tr: RunTracker) -> RunTracker:
    """A copy whose lists and dicts are new (their items, events and sample arrays, are shared:
    folding appends or replaces, it never changes them)."""
    out = copy.copy(tr)
    for fld in dataclasses.fields(tr):
        v = getattr(tr, fld.name)
        if isinstance(v, (list, dict, set)):
            setattr(out, fld.name, type(v)(v))
    return out


def shared_tracker(run_id: str, store, fresh: bool = False) -> RunTracker:
    """The run's events folded once for all sessions, read at most once per :data:`EVENTS_TTL_S`
    (``fresh``: read now); a snapshot that no one changes after it is handed out."""
    f = feed(store, run_id)
    asked = time.monotonic()
    if f.tracker is not None and not fresh and asked - f.events_at < EVENTS_TTL_S:
        return f.tracker
    with f.lock:
        if f.tracker is None or (f.events_at < asked if fresh else time.monotonic() - f.events_at >= EVENTS_TTL_S):
            new = _copy(f.tracker) if f.tracker is not None else RunTracker(run_id)
            if new.update(store) or f.tracker is None:
                f.tracker = new
            f.events_at = time.monotonic()
        return f.tracker


# ---- figures ------------------------------------------------------------------------------------
def figure(store, run_id: str, name: str, version: Hashable, build: Callable[[], Any]) -> Any:
    """The run's figure ``name`` for ``version`` (everything it shows depends on: events seen,
    settings), built by ``build()`` once for every session; a new version replaces the old one.

    The figure is shared: draw it, never change it.
    """
    f = feed(store, run_id)
    got = f.figures.get(name)
    if got is not None and got[0] == version:
        return got[1]
    with f.lock:  # one session builds it, the others of this run wait for it
        got = f.figures.get(name)
        if got is not None and got[0] == version:
            return got[1]
        fig = build()
        f.figures[name] = (version, fig)
        _builds[(run_id, name)] = _builds.get((run_id, name), 0) + 1
        return fig


def build_count(run_id: str, name: str) -> int:
    """How many times figure ``name`` of ``run_id`` was built in this process (any store)."""
    return _builds.get((run_id, name), 0)


# ---- who watches, and how often the live views poll -------------------------------------------
def watch(store, run_id: str, session_id: Optional[str]) -> None:
    """Note that ``session_id`` polls ``run_id`` now."""
    if session_id:
        feed(store, run_id).sessions[session_id] = time.monotonic()


def watchers(store=None, run_id: Optional[str] = None) -> int:
    """Sessions that polled ``run_id`` of ``store`` (every run: None) within :data:`WATCH_WINDOW_S`."""
    now = time.monotonic()
    with _feeds_lock:
        if run_id is None:
            feeds = list(_feeds.values())
        else:
            feeds = [f for k, f in _feeds.items() if k == _key(store, run_id)]
    seen = set()
    for f in feeds:
        for sid, at in list(f.sessions.items()):
            if now - at <= WATCH_WINDOW_S:
                seen.add(sid)
            else:
                f.sessions.pop(sid, None)
    return len(seen)


def poll_interval(base_s: float) -> float:
    """The live views' poll interval: ``base_s``, longer once the sessions watching runs (all of
    them) would rerun more than :data:`RERUNS_PER_S` times a second at it."""
    n = watchers()
    return max(base_s, round(n / RERUNS_PER_S, 2))


# ---- has a live view kept up with the store? ------------------------------------------------
def store_progress(store, run_id: str) -> tuple[int, Optional[str]]:
    """``(latest event seq, status)`` of the run as the store has them now, read straight from it (not
    through the shared tracker or record, which are what may be stuck), at most once per
    :data:`PROBE_TTL_S` for all its watchers. Never waits: while another session reads, the
    previous reading is returned."""
    f = feed(store, run_id)
    if time.monotonic() - f.probe_at >= PROBE_TTL_S and f.probe_lock.acquire(blocking=False):
        try:
            last = store.last_event(run_id)
            run = store.get_run(run_id)
            f.probe = (int(last[0]) if last else 0, run.status if run is not None else None)
            f.probe_at = time.monotonic()
        finally:
            f.probe_lock.release()
    return f.probe


@dataclasses.dataclass
class ViewWatch:
    """One session's live view of one run: when what it draws last changed, and since when the store
    has been ahead of it.

    A view has *stopped updating* when the store has had newer events, or a different ending, than
    the view shows, for :data:`STALE_POLLS` poll periods (at least :data:`STALE_MIN_S`) while the view
    drew nothing new. Being ahead for a moment is normal (an event lands between two polls), and a
    run may write nothing for minutes while it simulates: neither counts.
    """

    drawn: tuple = (-1, None)  # (event seq, status) drawn last
    advanced_at: float = float("-inf")  # when that last changed (monotonic)
    ahead_since: Optional[float] = None  # since when the store is ahead of the view (None: it is not)
    failed: Optional[str] = None  # why the view's last update failed (None: it did not)

    def observe(self, seq: int, status: Optional[str], store_seq: int, store_status: Optional[str],
                now: float, poll_s: float) -> Optional[str]:
        """Note what the view just drew (``seq``, ``status``) and what the store has; returns why the
        view has stopped updating, in words, or ``None`` while it keeps up."""
        self.failed = None
        ahead = store_seq > seq or (store_status is not None and store_status != status)
        if (seq, status) != self.drawn:
            self.drawn, self.advanced_at = (seq, status), now
            self.ahead_since = now if ahead else None
        elif not ahead:
            self.ahead_since = None
        elif self.ahead_since is None:
            self.ahead_since = now
        if self.ahead_since is None or now - self.ahead_since < max(STALE_MIN_S, STALE_POLLS * poll_s):
            return None
        if store_status is not None and store_status != status:
            news = f"the run is {store_status} but this view still shows it {status}"
        else:
            news = f"the run has {store_seq - seq:,} newer update{'s' if store_seq - seq != 1 else ''}"
        return f"{news}; nothing new was drawn for {_seconds(now - self.advanced_at)}"

    def fail(self, err: BaseException) -> str:
        """Note that the view's update raised ``err``; returns why, in words."""
        self.failed = f"its last update failed: {type(err).__name__}: {err}"[:300]
        return self.failed


def _seconds(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s} s" if s < 120 else f"{s // 60} min {s % 60:02d} s"

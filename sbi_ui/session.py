"""The current run of a session, kept in step with the URL, and starting, choosing and following runs.

The run a page shows lives in ``?run=<id>`` (it survives a refresh and can be
shared); whether the true parameter is hidden lives in ``?truth=hidden``. A
session keeps one :class:`~sbi_ui.tracker.RunTracker` per run it has looked at.
"""

from __future__ import annotations

from typing import Callable, Optional

import streamlit as st

from sbi_core import RunSpec
from sbi_core.store.runs import RunInfo

from sbi_ui import keys as K
from sbi_ui.messages import flash
from sbi_ui.naming import run_label
from sbi_ui.navigation import TRAIN
from sbi_ui.owner import owner_token
from sbi_ui.resources import jobs, store
from sbi_ui.tracker import RunTracker

__all__ = ["POLL_S", "WATCH_S", "sync_current_run", "current_run_id", "current_run", "set_current_run",
           "forget_current_run", "open_run", "start_run", "reveal_true", "sync_reveal_true", "reveal_toggled",
           "hide_truth_for_class", "url_params",
           "tracker", "drop_tracker", "pick_run", "watch_run"]

POLL_S = 0.75  # live view refresh while a run is active
WATCH_S = 1.5  # other pages: check for a new round / the end of a run


# ---- the current run: session state <-> ?run= in the URL -----------------------
def sync_current_run() -> None:
    """Called first on every run: the URL wins; otherwise the URL gets the session's run."""
    qp = st.query_params.get(K.QP_RUN)
    if qp:
        st.session_state[K.S_CURRENT_RUN] = qp
    elif st.session_state.get(K.S_CURRENT_RUN):
        st.query_params[K.QP_RUN] = st.session_state[K.S_CURRENT_RUN]


def current_run_id() -> Optional[str]:
    return st.session_state.get(K.S_CURRENT_RUN) or None


def current_run() -> tuple[Optional[str], Optional[RunInfo]]:
    """``(run id, its RunInfo)`` of the current run (``None`` where there is none or it is gone)."""
    rid = current_run_id()
    return rid, (jobs().status(rid) if rid else None)


def set_current_run(run_id: Optional[str]) -> None:
    if run_id:
        st.session_state[K.S_CURRENT_RUN] = run_id
        st.query_params[K.QP_RUN] = run_id
    else:
        forget_current_run()


def forget_current_run() -> None:
    st.session_state[K.S_CURRENT_RUN] = None
    if K.QP_RUN in st.query_params:
        del st.query_params[K.QP_RUN]


def open_run(run_id: str, page: str = TRAIN) -> None:
    """Make ``run_id`` current and go to ``page`` with ``?run=`` in the URL (does not return)."""
    st.session_state[K.S_CURRENT_RUN] = run_id
    st.switch_page(page, query_params=url_params(run_id))


def start_run(spec: RunSpec, title: str = "", page: Optional[str] = TRAIN, reuse: bool = False) -> str:
    """Start ``spec`` in a background worker, make it current, and open ``page`` (if given).

    ``reuse``: show an identical run (same setup and seed) that is queued, running or done
    instead of computing it again (the demo that a whole class starts at once).
    """
    title = title or spec.title
    if reuse:
        run_id, reused = jobs().start_or_reuse(spec, title=title, owner=owner_token())
    else:
        run_id, reused = jobs().start(spec, title=title, owner=owner_token()), False
    if reused:
        flash("info", f"This exact setup (same seed) was already started, so you see run `{run_id}` "
              "instead of computing it again: the same simulations would give the same posterior.")
    else:
        flash("success", f"Started run `{run_id}`. Its progress appears below as it happens.")
    if page is None:
        set_current_run(run_id)
        return run_id
    open_run(run_id, page)
    return run_id  # pragma: no cover - open_run does not return


# ---- the true parameter: shown or hidden, in the URL as ?truth=hidden -------------
def reveal_true() -> bool:
    """Whether plots and the Model page show the true parameter (sidebar toggle)."""
    return bool(st.session_state.get(K.S_REVEAL_TRUE, True))


def sync_reveal_true() -> None:
    """Keep "Show the true parameter" in the URL (``?truth=hidden`` while it is off).

    A new session (a reload, a new tab, a shared link) takes the setting from
    the URL; within a session the toggle wins and the URL follows it, also
    after a page change, which starts the new page with only the parameters
    its link gave. So a refresh on the projector never reveals a quiz's answer.

    The setting lives in a plain key (:data:`keys.S_REVEAL_TRUE`): the toggle is
    set from it before it is drawn and writes back to it (:func:`reveal_toggled`),
    so it never depends on the widget surviving a rerun.
    """
    if K.S_REVEAL_TRUE not in st.session_state:
        st.session_state[K.S_REVEAL_TRUE] = st.query_params.get(K.QP_TRUTH) != K.QP_TRUTH_HIDDEN
    if st.session_state[K.S_REVEAL_TRUE]:
        if K.QP_TRUTH in st.query_params:
            del st.query_params[K.QP_TRUTH]
    elif st.query_params.get(K.QP_TRUTH) != K.QP_TRUTH_HIDDEN:
        st.query_params[K.QP_TRUTH] = K.QP_TRUTH_HIDDEN


def reveal_toggled() -> None:
    """The sidebar toggle's callback: keep its new value and the URL in step."""
    st.session_state[K.S_REVEAL_TRUE] = bool(st.session_state[K.W_REVEAL_TRUE])
    sync_reveal_true()


def hide_truth_for_class() -> None:
    """The first time a session opens a lesson, the true parameter starts hidden (the teacher reveals it
    with the sidebar toggle); reruns once so the toggle is drawn hidden."""
    if st.session_state.get(K.S_LESSONS_SEEN):
        return
    st.session_state[K.S_LESSONS_SEEN] = True
    if reveal_true():
        st.session_state[K.S_REVEAL_TRUE] = False
        st.rerun()  # the sidebar toggle, already drawn in this run, is drawn again from the new value


def url_params(run_id: Optional[str] = None) -> dict:
    """Query parameters for a link to another page: the run (if any) and the truth setting, so a
    link opened in a new tab keeps the true parameter hidden too."""
    params = {K.QP_RUN: run_id} if run_id else {}
    if not reveal_true():
        params[K.QP_TRUTH] = K.QP_TRUTH_HIDDEN
    return params


# ---- a run's events, folded incrementally (sbi_ui.tracker) ------------------------
def tracker(run_id: str) -> RunTracker:
    """The session's tracker of ``run_id``, brought up to date."""
    trackers = st.session_state.setdefault(K.S_TRACKERS, {})
    tr = trackers.get(run_id)
    if tr is None:
        tr = trackers[run_id] = RunTracker(run_id)
    tr.update(store())
    return tr


def drop_tracker(run_id: str) -> None:
    st.session_state.get(K.S_TRACKERS, {}).pop(run_id, None)


# ---- choosing and following a run on a page -----------------------------------------
def pick_run(key: str, label: str = "Run", filter_fn: Optional[Callable[[RunInfo], bool]] = None,
             help: str = "Which run to show. The current run (in the sidebar and the URL) is chosen first.",
             ) -> Optional[RunInfo]:
    """A select box of runs (the current one first); choosing one makes it current."""
    from sbi_ui.owner import listing_owner  # owner imports this module's neighbours

    runs = jobs().list(limit=200, owner=listing_owner())
    cur = current_run_id()
    if cur and cur not in {r.id for r in runs}:  # a shared link's run (read-only) stays pickable
        shared = jobs().status(cur)
        runs = ([shared] if shared is not None else []) + runs
    runs = [r for r in runs if filter_fn is None or filter_fn(r)]
    if not runs:
        return None
    ids = [r.id for r in runs]
    by_id = {r.id: r for r in runs}
    if cur in ids:
        st.session_state[key] = cur  # follow the current run (set elsewhere: sidebar, URL, Runs)
    elif st.session_state.get(key) not in ids:
        st.session_state[key] = ids[0]

    def _picked() -> None:
        set_current_run(st.session_state[key])

    chosen = st.selectbox(label, ids, key=key, format_func=lambda i: run_label(by_id[i]), help=help,
                          on_change=_picked)
    return by_id.get(chosen)


def watch_run(run_id: str, info: Optional[RunInfo]) -> None:
    """While ``run_id`` is active, check it every few seconds and redraw the page when a
    round finishes or the run ends (a small polling fragment that stops with the run)."""
    if info is None or not info.is_active:
        return
    last = store().last_event(run_id, types=("round",))
    seen = (info.status, last[0] if last else 0)

    @st.fragment(run_every=WATCH_S)
    def _watch() -> None:
        now = jobs().status(run_id)
        ev = store().last_event(run_id, types=("round",))
        sig = (now.status if now else None, ev[0] if ev else 0)
        if sig != seen:
            st.rerun()
        st.caption(":material/autorenew: The run is still going: this page updates when a round finishes.")

    _watch()

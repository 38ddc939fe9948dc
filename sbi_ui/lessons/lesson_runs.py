"""The real runs a lesson starts: one per lesson step that needs one, kept for the session.

A step calls :func:`lesson_run` with a RunSpec: before the run exists it draws
a Start button (an identical run already queued, running or done on the server
is reused rather than computed again) (a real background run through the job manager, the same one
the Train page uses); after, the run's status and progress, refreshed while
it trains. The run is also the session's current run, so every page of the
app (Train, Rounds, Explore, Check) opens on it.
"""

from __future__ import annotations

from typing import Optional

import streamlit as st

from sbi_core import RunSpec, SBIError
from sbi_core.store.runs import RunInfo

from sbi_ui import keys as K
from sbi_ui.messages import flash
from sbi_ui.naming import status_badge
from sbi_ui.owner import owner_token
from sbi_ui.resources import jobs
from sbi_ui.session import POLL_S, set_current_run, tracker
from sbi_ui.user_text import plain

__all__ = ["lesson_run"]


def _runs() -> dict:
    return st.session_state.setdefault(K.S_LESSON_RUNS, {})


def _start(name: str, spec: RunSpec) -> None:
    """Start the step's run, or reuse an identical one (same spec and seed) that a classmate started:
    a class doing the lesson together computes each step's run once."""
    try:
        rid, reused = jobs().start_or_reuse(spec, title=spec.title, owner=owner_token())
    except SBIError as err:
        flash("error", plain(err))
        return
    if reused:
        flash("info", "Someone on this server already started this step's run (same setup and seed), so you "
                      "follow that one: the same simulations would give the same posterior.")
    _runs()[name] = rid
    set_current_run(rid)


def _status(run_id: str, active: bool) -> None:
    @st.fragment(run_every=POLL_S if active else None)  # a finished run is not polled
    def line() -> None:
        info = jobs().status(run_id)
        if info is None:
            return
        status_badge(info)
        if info.is_active:
            fraction, text, _ = tracker(run_id).progress(info)
            st.progress(min(max(fraction, 0.0), 1.0), text=text)
        elif st.session_state.get(K.s_lesson_seen(run_id)) != info.status:
            st.session_state[K.s_lesson_seen(run_id)] = info.status
            if info.status == "done":
                st.rerun(scope="app")  # the run ended: draw the step's picture

    line()


def lesson_run(name: str, spec: RunSpec, label: str, key: str) -> Optional[RunInfo]:
    """The session's run ``name`` (started from ``spec`` by a button labelled ``label``), or None before it."""
    rid = _runs().get(name)
    info = jobs().status(rid) if rid else None
    if info is None:
        st.button(label, key=f"{key}_start", type="primary", icon=":material/play_arrow:",
                  on_click=_start, args=(name, spec))
        return None
    _status(rid, info.is_active)
    return info

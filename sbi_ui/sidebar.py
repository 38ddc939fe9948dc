"""The shared sidebar: the current run (title, status, progress, links) and app-wide settings."""

from __future__ import annotations

from typing import Optional

import streamlit as st

from sbi_ui import keys as K
from sbi_ui.naming import method_title, model_title_of, run_title, status_badge
from sbi_ui.navigation import CHECK, ROUNDS, TRAIN
from sbi_ui.projector import projector_toggle
from sbi_ui.user_text import plain

from sbi_ui.resources import jobs
from sbi_ui.session import (WATCH_S, current_run_id, forget_current_run, reveal_toggled, reveal_true, tracker,
                             url_params)

__all__ = ["sidebar"]


def sidebar(live_page: bool = False) -> None:
    """The current run (title, status, progress, links) and app-wide settings.

    ``live_page``: the page drawn is Train, whose live view follows the current run and redraws
    the whole page when its status changes; the card then does not poll at all (it says that the
    page shows the progress) and is drawn anew with the page. Two polling fragments on one page
    raced: a poll of the card that came while the live view's "the run has ended" redraw of the
    whole page ran replaced that redraw, and the page stopped half drawn, without its polls
    (``bench/classroom.py``: one student in thirty, in two demo runs of nine). It also halves the
    server's fragment reruns with thirty students on Train."""
    with st.sidebar:
        rid = current_run_id()
        info = jobs().status(rid) if rid else None
        _sidebar_run(rid, info is not None and info.is_active, followed=live_page)
        st.divider()
        st.session_state[K.W_REVEAL_TRUE] = reveal_true()  # from ?truth= or this session (sync_reveal_true)
        st.toggle(
            "Show the true parameter",
            key=K.W_REVEAL_TRUE,
            on_change=reveal_toggled,
            help="Mark the parameter the observation was simulated from (when it is known) in the plots. "
            "Turn off to keep it hidden, e.g. for a classroom quiz.",
        )
        projector_toggle()
        with st.container(key="sidebar_store_note"):
            # the folder's path is the server's business (it is in the server log), not every student's
            st.caption("Runs are kept in this app's run store, on the server.")


def _sidebar_run(rid: Optional[str], was_active: bool, followed: bool = False) -> None:
    """The current-run card; it refreshes itself while the run is queued or running, except where
    the page's live view follows the run (``followed``) and redraws everything when it ends."""

    @st.fragment(run_every=WATCH_S if was_active and not followed else None)
    def card() -> None:
        st.markdown("#### Current run")
        info = jobs().status(rid) if rid else None
        if was_active and not followed and (info is None or info.is_terminal):
            st.rerun()  # the run just ended: redraw everything once (polling stops)
        if rid and info is None:
            st.warning(f"No run {plain(rid)} in this run store (it may have been deleted).")  # rid: from the URL

            if st.button("Forget it", key=K.W_SIDEBAR_FORGET):
                forget_current_run()
                st.rerun()
            return
        if info is None:
            st.caption("No run selected yet. Start the demo on **Home**, or set one up on **Train**.")
            return
        st.markdown(f"**{plain(run_title(info))}**")
        status_badge(info)
        tr = tracker(rid)
        total = tr.num_rounds or info.spec.rounds
        progress = ("Its progress is shown live on this page" if followed and info.is_active
                    else f"Rounds finished: {tr.rounds_done} of {total}")  # the card does not poll there
        st.caption(
            f"{plain(model_title_of(info.spec))} · {method_title(info.spec.method)}  \n"
            f"{progress} · id `{rid}`"
        )
        st.page_link(TRAIN, label="Live view (Train)", icon=":material/monitoring:",
                     query_params=url_params(rid))
        st.page_link(ROUNDS, label="Round by round", icon=":material/animation:",
                     query_params=url_params(rid))
        if info.status == "done":
            st.page_link(CHECK, label="Check (can I trust it?)", icon=":material/fact_check:",
                         query_params=url_params(rid))
        if st.button("Forget this run", key=K.W_SIDEBAR_FORGET,
                     help="Stop following this run here. It stays in the Runs list."):
            forget_current_run()
            st.rerun()

    card()

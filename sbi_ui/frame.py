"""What surrounds every page: the run in the URL, the sidebar, messages; and the guard that
makes a page run inside that frame even when Streamlit routes ``pages/`` the legacy way."""

from __future__ import annotations

import threading
from typing import Optional

import streamlit as st

from sbi_ui import keys as K
from sbi_ui.messages import show_error, show_flash
from sbi_ui.navigation import PAGE_CONFIG, TRAIN_PATH, navigation_pages
from sbi_ui.owner import remember_owner
from sbi_ui.session import sync_current_run, sync_reveal_true
from sbi_ui.projector import apply_projector, sync_projector
from sbi_ui.sidebar import sidebar
from sbi_ui.spec_link import show_link_notice, sync_spec_link

__all__ = ["entry", "frame", "page_guard"]

_ENTRY = threading.local()


def entry(active: bool) -> None:
    """``app.py`` marks the script run it is routing (pages check it with :func:`page_guard`)."""
    _ENTRY.active = active


def frame(page_path: Optional[str] = None) -> None:
    """What surrounds every page: the run in the URL, the sidebar, messages. ``page_path``: the URL
    path of the page drawn (``st.navigation``'s page), where it is known."""
    st.session_state[K.S_BOOTED] = True
    # a little less empty space above each page's title
    st.html("<style>[data-testid='stMainBlockContainer']{padding-top:2.5rem}</style>")
    sync_current_run()
    remember_owner()
    sync_spec_link()
    sync_reveal_true()
    sync_projector()
    apply_projector()
    try:
        sidebar(live_page=page_path == TRAIN_PATH)
    except Exception as err:  # the sidebar must never take the page down
        with st.sidebar:
            show_error(err, "reading the current run")
    show_flash()
    show_link_notice()


def page_guard(page_path: Optional[str] = None) -> None:
    """First line of every page: make sure the page runs inside ``app.py``'s frame.

    Until some session has called ``st.navigation``, Streamlit treats a
    ``pages/`` folder the old way and runs a requested page file (``/train``)
    on its own, without ``app.py``: no wide layout, no sidebar, no run from
    the URL. That happens to the first visitor after a server start who opens
    a bookmarked page. On a session's first run (no clicks to lose) the page
    calls ``st.navigation``, which switches the server to ``app.py``'s routing
    for good, and reruns. Otherwise (``AppTest`` runs every script run that
    old way) the page draws the frame itself. ``page_path``: the page's URL path,
    for a frame that depends on it (Train's: :func:`frame`).
    """
    if getattr(_ENTRY, "active", False):
        return
    if not st.session_state.get(K.S_BOOTED):
        st.session_state[K.S_BOOTED] = True
        st.navigation(navigation_pages(), position="hidden")
        st.rerun()
    st.set_page_config(**PAGE_CONFIG)
    try:  # the same error boundary as app.py's: a failing frame is a message, not a traceback
        frame(page_path)
    except Exception as err:
        show_error(err, "drawing this page")
        st.stop()
    entry(True)

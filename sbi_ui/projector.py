"""Projector mode: larger fonts, high contrast and fewer controls, for a room looking at one screen.

Switched from the sidebar or by URL (``?projector=on``); like ``?truth=hidden``
it lives in the URL, so a refresh or a shared lesson link keeps it. It is CSS
(and the sidebar's page config) only: the pages draw the same things, the
projector sees them bigger, darker, one chart per row, without the sidebar,
the help expanders and the footnotes.
"""

from __future__ import annotations

import streamlit as st

from sbi_ui import keys as K

__all__ = ["projector_on", "sync_projector", "projector_toggle", "apply_projector"]

# hidden in projector mode: help text a room does not read, and settings a lesson does not need
_HIDDEN = (f".st-key-{K.C_GLOSSARY}", ".st-key-sidebar_store_note", ".st-key-train_advanced")

_CSS = """
<style>
html, body, [data-testid="stApp"] { font-size: 20px; }
[data-testid="stApp"] { background: #ffffff; color: #000000; }
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li { font-size: 1.2rem; line-height: 1.5; color: #000; }
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p { color: #111 !important; font-size: 1.0rem; }
h1 { font-size: 2.8rem !important; } h2, h3 { font-size: 1.9rem !important; color: #000; }
[data-testid="stWidgetLabel"] p { font-size: 1.1rem !important; font-weight: 600; color: #000; }
button[kind="primary"] { font-size: 1.15rem; background: #0b3d91; border-color: #0b3d91; }
button[kind="primary"], button[kind="primary"] * { color: #fff !important; }
.js-plotly-plot .main-svg text { fill: #000 !important; }
HIDDEN { display: none !important; }
/* charts side by side get one full-width row each: at 1024 px two columns squeeze a posterior to a sliver */
[data-testid="stHorizontalBlock"]:has(.stPlotlyChart) { flex-wrap: wrap !important; }
[data-testid="stHorizontalBlock"]:has(.stPlotlyChart) > [data-testid="stColumn"] {
  flex: 1 1 100% !important; width: 100% !important; min-width: 100% !important; }
/* buttons and page links in narrow columns were cut off mid-word ("See it round by"): such a column takes
   the width of its label, and the row wraps when the labels do not fit side by side */
[data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] .stButton, > [data-testid="stColumn"] [data-testid="stPageLink"]) {
  flex-wrap: wrap !important; }
[data-testid="stHorizontalBlock"] > [data-testid="stColumn"]:has(.stButton, [data-testid="stPageLink"]):not(:has(.stPlotlyChart)) {
  flex: 0 1 auto !important; width: auto !important; min-width: min(max-content, 100%) !important; }
</style>
"""


def projector_on() -> bool:
    return bool(st.session_state.get(K.S_PROJECTOR))


def sync_projector() -> None:
    """A new session takes projector mode from the URL; afterwards the toggle wins and the URL follows it.

    The state lives in a plain key (:data:`keys.S_PROJECTOR`) that the toggle is set from before it is
    drawn and writes back to when flipped, so it never depends on the widget surviving a rerun.
    """
    if K.S_PROJECTOR not in st.session_state:
        st.session_state[K.S_PROJECTOR] = st.query_params.get(K.QP_PROJECTOR) == K.QP_PROJECTOR_ON
    if st.session_state[K.S_PROJECTOR]:
        st.query_params[K.QP_PROJECTOR] = K.QP_PROJECTOR_ON
    elif K.QP_PROJECTOR in st.query_params:
        del st.query_params[K.QP_PROJECTOR]


def _flipped() -> None:
    st.session_state[K.S_PROJECTOR] = bool(st.session_state[K.W_PROJECTOR])
    sync_projector()


def projector_toggle() -> None:
    """The sidebar switch."""
    st.session_state[K.W_PROJECTOR] = projector_on()
    st.toggle("Projector mode", key=K.W_PROJECTOR, on_change=_flipped,
              help="Larger fonts, high contrast and fewer controls for a room. Also by link: ?projector=on.")


def apply_projector() -> None:
    """Inject the projector style and collapse the sidebar (when on).

    The sidebar takes a quarter of a 1024-pixel projector; collapsed, the page gets the whole width and
    the toggle stays one click away (the arrow at the top left). The page config only sets the sidebar's
    *initial* state, so a browser where the user opened or closed the sidebar by hand keeps that choice."""
    if projector_on():
        st.set_page_config(initial_sidebar_state="collapsed")
        st.html(_CSS.replace("HIDDEN", ", ".join(_HIDDEN)))

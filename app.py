"""SBI dashboard: the entry point (``streamlit run app.py``).

It sets the page up, keeps the current run in the URL (``?run=<id>``), draws
the shared sidebar and runs the page the user chose with ``st.navigation``.
"""

from __future__ import annotations

import streamlit as st

st.set_page_config(
    page_title="SBI dashboard",
    page_icon=":material/scatter_plot:",
    layout="wide",
    initial_sidebar_state="expanded",
)

from pages import ui_common as ui  # noqa: E402  (after set_page_config)

PAGES = {
    "Learn": [
        st.Page(ui.HOME, title="Home", icon=":material/home:", default=True),
    ],
    "Infer": [
        st.Page(ui.MODEL, title="Model", icon=":material/tune:", url_path="model"),
        st.Page(ui.TRAIN, title="Train", icon=":material/monitoring:", url_path="train"),
        st.Page(ui.ROUNDS, title="Rounds", icon=":material/animation:", url_path="rounds"),
        st.Page(ui.EXPLORE, title="Explore", icon=":material/explore:", url_path="explore"),
    ],
    "Manage": [
        st.Page(ui.RUNS, title="Runs", icon=":material/list_alt:", url_path="runs"),
    ],
}

page = st.navigation(PAGES)
# a little less empty space above each page's title
st.html("<style>[data-testid='stMainBlockContainer']{padding-top:2.5rem}</style>")
ui.sync_current_run()
try:
    ui.sidebar()
except Exception as err:  # the sidebar must never take the page down
    with st.sidebar:
        ui.show_error(err, "reading the current run")
ui.show_flash()
try:
    page.run()
except Exception as err:  # a bug: friendly message, detail on demand, never a raw traceback
    ui.show_error(err, f"drawing the {page.title} page")

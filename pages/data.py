"""Your model & data: upload simulator code or a table of simulations, ask an amortized
posterior about many observations at once, and import or export priors and RunSpecs as JSON.

Every upload is checked before it replaces anything: the last *valid* upload of each
kind stays in session state (``ui_state.S_DATA_*``), and a rejected one only adds a
message that says what to fix. The tabs live in ``data_simulator``, ``data_table`` and
``data_json``; what they share in ``data_common``.
"""

from __future__ import annotations

import streamlit as st

from pages import ui_common as ui
from pages import ui_state as K
from pages.data_common import TABS
from pages.data_json import observations_section, prior_section, spec_section
from pages.data_simulator import simulator_tab
from pages.data_table import table_tab

ui.page_guard()

# ---------------------------------------------------------------------------
# the page
# ---------------------------------------------------------------------------
st.title("Your model & data")
st.markdown(
    "Bring your own **simulator code**, or a **table of simulations** you already have, and infer its "
    "parameters. An amortized posterior then answers a whole file of **observations** at once. "
    "A rejected upload never replaces the last good one: fix what the message says and upload again."
)
tab_sim, tab_table, tab_json = st.tabs(TABS, key=K.W_DATA_TABS)
with tab_sim:
    simulator_tab()
with tab_table:
    table_tab()
with tab_json:
    observations_section()
    st.divider()
    prior_section()
    st.divider()
    spec_section()

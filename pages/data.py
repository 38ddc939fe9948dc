"""Your model & data: upload simulator code or a table of simulations, ask an amortized
posterior about many observations at once, and import or export priors and RunSpecs as JSON.

Every upload is checked before it replaces anything: the last *valid* upload of each
kind stays in session state (``sbi_ui.keys.S_DATA_*``), and a rejected one only adds a
message that says what to fix. The tabs live in :mod:`sbi_ui.data` (``simulator``, ``table``
and ``json``; what they share in ``common``).
"""

from __future__ import annotations

import streamlit as st

from sbi_ui import keys as K
from sbi_ui.data.common import TABS
from sbi_ui.data.json import observations_section, prior_section, spec_section
from sbi_ui.data.simulator import simulator_tab
from sbi_ui.data.table import table_tab
from sbi_ui.frame import page_guard

page_guard()

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

"""SBI dashboard: the entry point (``streamlit run app.py``).

It sets the page up, keeps the current run in the URL (``?run=<id>``), draws
the shared sidebar and runs the page the user chose with ``st.navigation``.
"""

from __future__ import annotations

import streamlit as st

import sbi_ui.preload  # noqa: F401 - first: every page's modules loaded once, before any page runs
from sbi_ui.frame import entry, frame
from sbi_ui.messages import show_error
from sbi_ui.navigation import PAGE_CONFIG, navigation_pages

st.set_page_config(**PAGE_CONFIG)
page = st.navigation(navigation_pages())
entry(True)
try:  # the error boundary holds the whole page, its frame (URL, link, sidebar) included
    frame()
    page.run()
except Exception as err:  # a bug: friendly message, never a raw traceback
    show_error(err, f"drawing the {page.title} page")
finally:
    entry(False)

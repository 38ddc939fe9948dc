"""SBI dashboard: the entry point (``streamlit run app.py``).

It sets the page up, keeps the current run in the URL (``?run=<id>``), draws
the shared sidebar and runs the page the user chose with ``st.navigation``.
"""

from __future__ import annotations

import streamlit as st

from pages import ui_common as ui

st.set_page_config(**ui.PAGE_CONFIG)
page = st.navigation(ui.navigation_pages())
ui.frame()
ui.entry(True)
try:
    page.run()
except Exception as err:  # a bug: friendly message, detail on demand, never a raw traceback
    ui.show_error(err, f"drawing the {page.title} page")
finally:
    ui.entry(False)

"""Compare: race several methods on one model, prior and observation, and see why they differ."""

from __future__ import annotations

import streamlit as st

from sbi_ui.compare_form import compare_form
from sbi_ui.compare_state import comparison_ids
from sbi_ui.compare_texts import INTRO, why_they_differ
from sbi_ui.compare_view import compare_view, comparison_methods
from sbi_ui.frame import page_guard
from sbi_ui.model_choice import ModelChoice
from sbi_ui import keys as K

page_guard()

st.title("Compare")
ids = comparison_ids()
if not ids:
    st.markdown(INTRO)
with st.expander("Set up a comparison", expanded=not ids, icon=":material/add_circle:"):
    compare_form(ModelChoice.current())

compare_view(ids)

with st.expander("Why do the methods differ?", expanded=True, icon=":material/school:"):
    st.markdown(why_they_differ(comparison_methods(ids) or st.session_state.get(K.W_COMPARE_METHODS) or []))

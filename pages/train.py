"""Train: set up and start a run, then follow it live (progress, losses, posterior clouds)."""

from __future__ import annotations

import streamlit as st

from sbi_ui import keys as K
from sbi_ui.export_view import show_code
from sbi_ui.frame import page_guard
from sbi_ui.glossary import GLOSSARY
from sbi_ui.navigation import TRAIN_PATH
from sbi_ui.live_view import live_view, run_header
from sbi_ui.model_choice import ModelChoice
from sbi_ui.run_context import run_not_found
from sbi_ui.session import current_run
from sbi_ui.spec_link import keep_in_url, share_setup, url_setup
from sbi_ui.train_settings import model_label, settings_form
from sbi_ui.train_start import start_controls

page_guard(TRAIN_PATH)

st.title("Train")
run_id, info = current_run()
if info is None:  # with a run on screen, its charts come first (a 768-pixel projector)
    st.markdown(
        "Set up a run and press **Start**: a background worker simulates, trains a normalizing flow and "
        "reports every epoch here as it happens. The run keeps going if you leave or refresh the page. "
        "Try a sequential run with 3-4 rounds and watch each new cloud shrink."
    )
choice = ModelChoice.current()
# the label names the model, so it shows even while a run's charts keep the form closed
with st.expander(f"Set up a new run: {model_label(choice)}", expanded=info is None, icon=":material/add_circle:"):
    spec = settings_form(choice)
    start_controls(spec, choice)
    if spec is not None:
        share_setup(spec)
# the address holds the run on screen's own setup (until the form is changed), else the form's
shown_setup = url_setup(spec, run_id if info is not None else None, info.spec if info is not None else None)
if shown_setup is not None:
    keep_in_url(shown_setup)

if run_id is None:
    st.info("No run yet. Set one up above, or start the guided demo on **Home**.", icon=":material/info:")
elif info is None:
    run_not_found([run_id])  # a link's unknown run: said in words, with a way to Runs
else:
    run_header(run_id, info)
    live_view(run_id, info.status)
    with st.expander("Show code: rerun this in Python", icon=":material/code:"):
        show_code(info.spec, K.W_CODE_TRAIN)
with st.expander("What the words on this page mean", icon=":material/help:", key=K.C_GLOSSARY):
    st.markdown(GLOSSARY)

"""Starting a run from the Train page's form: the time estimate and queue position in words,
a confirmation for a long run, and Start (the run opens in the live view)."""

from __future__ import annotations

from typing import Optional

import streamlit as st

from sbi_core import RunSpec, SBIError

from sbi_ui import keys as K
from sbi_ui.estimate import calibration, estimate, queue_words
from sbi_ui.format import fmt_duration
from sbi_ui.messages import show_error
from sbi_ui.model_choice import ModelChoice
from sbi_ui.navigation import TRAIN
from sbi_ui.session import start_run

__all__ = ["LONG_RUN_S", "start_controls"]

LONG_RUN_S = 300.0  # a run expected to take longer asks for confirmation first


def start_controls(spec: Optional[RunSpec], choice: ModelChoice) -> None:
    """Start for ``spec`` (the form's, None while it has errors): an expected long run, or one that
    would wait long in the queue, asks "Yes, start this long run" first."""
    if spec is None:
        st.session_state.pop(K.S_START_PENDING, None)
        st.button("Start", key=K.W_START, type="primary", icon=":material/play_arrow:", disabled=True,
                  help="Fix the settings marked in red first.")
        st.caption(":material/error: Fix the settings marked in red to start a run.")
        return
    try:
        seconds, text = estimate(spec, choice)
        queue_text, wait = queue_words(calibration())
    except Exception as err:  # an estimate must never block starting a run
        seconds, text, queue_text, wait = 0.0, "", "", 0.0
        show_error(err, "estimating the run's time")
    if text:
        st.markdown(f":material/schedule: {text} {queue_text}")
    pending = st.session_state.get(K.S_START_PENDING)
    if pending is not None and pending != spec.to_dict():
        st.session_state.pop(K.S_START_PENDING, None)  # the settings changed: that confirmation is void
        pending = None
    if pending is not None:
        with st.container(border=True, key=K.C_START_CONFIRM):
            st.warning(
                f"This run should take **about {fmt_duration(seconds)}**"
                + (f", after waiting about {fmt_duration(wait)} for the runs ahead of it" if wait > 0 else "")
                + f". {queue_text} Start it anyway?",
                icon=":material/hourglass_top:",
            )
            b1, b2, _ = st.columns([1, 1, 2])
            if b1.button("Yes, start this long run", key=K.W_START_CONFIRM, type="primary"):
                st.session_state.pop(K.S_START_PENDING, None)
                _start(spec)
            if b2.button("No, change the settings", key=K.W_START_BACK):
                st.session_state.pop(K.S_START_PENDING, None)
                st.rerun()
        return
    if st.button("Start", key=K.W_START, type="primary", icon=":material/play_arrow:",
                 help="Start the run in the background; its live view opens below."):
        if seconds > LONG_RUN_S or wait > LONG_RUN_S:
            st.session_state[K.S_START_PENDING] = spec.to_dict()
            st.rerun()
        _start(spec)


def _start(spec: RunSpec) -> None:
    try:
        start_run(spec, page=TRAIN)
    except SBIError as err:
        st.error(str(err), icon=":material/error:")
    except Exception as err:
        show_error(err, "starting the run")

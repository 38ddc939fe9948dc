"""Starting a run: the time estimate and queue position in words, a confirmation for a long run,
and Start (the run opens in the live view on Train).

The one way a page starts a RunSpec that a person set up: the Train page's form and a RunSpec
imported on *Your model & data* both call :func:`start_controls` (with their own widget keys,
:class:`StartKeys`), so every such run gets the same estimate and the same confirmation."""

from __future__ import annotations

from dataclasses import dataclass
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

__all__ = ["LONG_RUN_S", "StartKeys", "TRAIN_KEYS", "IMPORT_KEYS", "start_controls"]

LONG_RUN_S = 300.0  # a run expected to take longer asks for confirmation first


@dataclass(frozen=True)
class StartKeys:
    """The widget and state keys of one page's start controls (two pages may not share them)."""

    start: str = K.W_START
    confirm: str = K.W_START_CONFIRM
    back: str = K.W_START_BACK
    pending: str = K.S_START_PENDING
    box: str = K.C_START_CONFIRM
    label: str = "Start"


TRAIN_KEYS = StartKeys()
IMPORT_KEYS = StartKeys(start=K.W_DATA_SPEC_START, confirm=K.W_DATA_SPEC_CONFIRM, back=K.W_DATA_SPEC_BACK,
                        pending=K.S_DATA_SPEC_PENDING, box=K.C_DATA_SPEC_CONFIRM, label="Start this run")


def start_controls(spec: Optional[RunSpec], choice: Optional[ModelChoice] = None,
                   keys: StartKeys = TRAIN_KEYS) -> None:
    """Start for ``spec`` (the form's, None while it has errors): an expected long run, or one that
    would wait long in the queue, asks "Yes, start this long run" first. ``choice`` is not needed
    (the estimate reads the spec); ``keys`` name the widgets (the Train page's by default)."""
    if spec is None:
        st.session_state.pop(keys.pending, None)
        st.button(keys.label, key=keys.start, type="primary", icon=":material/play_arrow:", disabled=True,
                  help="Fix the settings marked in red first.")
        st.caption(":material/error: Fix the settings marked in red to start a run.")
        return
    try:
        seconds, text = estimate(spec)
        queue_text, wait = queue_words(calibration())
    except Exception as err:  # an estimate must never block starting a run
        seconds, text, queue_text, wait = 0.0, "", "", 0.0
        show_error(err, "estimating the run's time")
    if text:
        st.markdown(f":material/schedule: {text} {queue_text}")
    pending = st.session_state.get(keys.pending)
    if pending is not None and pending != spec.to_dict():
        st.session_state.pop(keys.pending, None)  # the settings changed: that confirmation is void
        pending = None
    if pending is not None:
        with st.container(border=True, key=keys.box):
            st.warning(
                f"This run should take **about {fmt_duration(seconds)}**"
                + (f", after waiting about {fmt_duration(wait)} for the runs ahead of it" if wait > 0 else "")
                + f". {queue_text} Start it anyway?",
                icon=":material/hourglass_top:",
            )
            b1, b2, _ = st.columns([1, 1, 2])
            if b1.button("Yes, start this long run", key=keys.confirm, type="primary"):
                st.session_state.pop(keys.pending, None)
                _start(spec)
            if b2.button("No, change the settings", key=keys.back):
                st.session_state.pop(keys.pending, None)
                st.rerun()
        return
    if st.button(keys.label, key=keys.start, type="primary", icon=":material/play_arrow:",
                 help="Start the run in the background; its live view opens below."):
        if seconds > LONG_RUN_S or wait > LONG_RUN_S:
            st.session_state[keys.pending] = spec.to_dict()
            st.rerun()
        _start(spec)


def _start(spec: RunSpec) -> None:
    try:
        start_run(spec, page=TRAIN)
    except SBIError as err:
        st.error(str(err), icon=":material/error:")
    except Exception as err:
        show_error(err, "starting the run")

"""Messages in plain words: a toast for the next page drawn, errors, a failed run."""

from __future__ import annotations

import traceback
from typing import Optional

import streamlit as st

from sbi_core import SBIError

from sbi_ui import keys as K

__all__ = ["flash", "show_flash", "show_error", "show_failure", "show_run_failure"]

FLASH_ICONS = {"success": ":material/check_circle:", "info": ":material/info:",
               "warning": ":material/warning:", "error": ":material/error:"}


def flash(kind: str, message: str) -> None:
    """A message to show once, at the top of the next page drawn."""
    st.session_state[K.S_FLASH] = (kind, message)


def show_flash() -> None:
    item = st.session_state.pop(K.S_FLASH, None)
    if item:
        kind, message = item
        st.toast(message, icon=FLASH_ICONS.get(kind))


def show_error(err: BaseException, doing: str = "drawing this page") -> None:
    """A user-fixable error as its message; anything else as a friendly note + detail on demand."""
    if isinstance(err, SBIError):
        st.error(str(err), icon=":material/error:")
        return
    st.error(
        f"Something went wrong while {doing}. This is not caused by anything you did; "
        "try again, and if it keeps happening, the detail below helps a developer.",
        icon=":material/error:",
    )
    with st.expander("Technical detail"):
        st.code("".join(traceback.format_exception(type(err), err, err.__traceback__)), language="text")


def show_failure(message: Optional[str], detail: Optional[str]) -> None:
    """How a failed run is shown: the plain message, the detail behind an expander."""
    st.error(message or "The run failed.", icon=":material/error:")
    if detail:
        with st.expander("Show technical detail"):
            st.code(detail, language="text")


def show_run_failure(info, tr) -> None:
    """:func:`show_failure` of a failed run: its stored message, else its ``failed`` event's."""
    term = tr.terminal or {}
    show_failure(info.message or term.get("message"), info.detail or term.get("detail"))

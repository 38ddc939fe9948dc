"""Messages in plain words: a toast for the next page drawn, errors, a failed run."""

from __future__ import annotations

import logging
import secrets
from typing import Optional

import streamlit as st

from sbi_core import SBIError

from sbi_ui import keys as K
from sbi_ui.user_text import plain


__all__ = ["flash", "show_flash", "show_error", "show_failure", "show_run_failure"]

_LOG = logging.getLogger("sbi_ui")

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
    """A user-fixable error as its message; anything else as a friendly note + a short detail on demand.

    A page never shows a traceback or an unexpected error's text (they are code, not help, and may show
    the server's paths): they go to the server's log under a short reference, which the note gives."""
    if isinstance(err, SBIError):
        st.error(plain(err), icon=":material/error:")  # its message may quote a file name or parameter
        return
    ref = secrets.token_hex(4)
    _LOG.error("error %s while %s", ref, doing,
               exc_info=(type(err), err, err.__traceback__))
    st.error(
        f"Something went wrong while {doing}. This is not caused by anything you did; "
        "try again, and if it keeps happening, the detail below helps a developer.",
        icon=":material/error:",
    )
    with st.expander("Technical detail"):  # the kind of error only: its text may hold the server's paths
        st.text(f"{type(err).__name__}. Reference {ref}: the server's log has the full detail under it.")


def show_failure(message: Optional[str], detail: Optional[str]) -> None:
    """How a failed run is shown: the plain message, the detail behind an expander."""
    st.error(plain(message) if message else "The run failed.", icon=":material/error:")  # it may quote the upload
    if detail:
        with st.expander("Show technical detail"):
            st.code(detail, language="text")


def show_run_failure(info, tr) -> None:
    """:func:`show_failure` of a failed run: its stored message, else its ``failed`` event's."""
    term = tr.terminal or {}
    show_failure(info.message or term.get("message"), info.detail or term.get("detail"))

"""Who is looking: this browser's owner token, what it may do with a run, and teacher mode.

**Ownership without accounts.** The browser that starts a run owns it. On a
browser's first visit the app draws an owner token (``secrets.token_urlsafe(16)``,
128 random bits), keeps it in ``st.session_state`` for the session, and writes it
into the cookie ``sbi_owner`` (``Path=/; SameSite=Lax``, one year) with a tiny
script on the page (:func:`remember_owner`; ``st.html`` runs it in the page itself,
where ``document.cookie`` is this site's). Streamlit gives the script the cookies
the browser sent when the page connected (``st.context.cookies``), so a reload, a
tab opened later or a visit next week reads the same token back: that browser
still owns its runs. Where there is no cookie (Streamlit's ``AppTest``, a browser
that refuses cookies) the token of the session still works, for that session.

**What a token allows** (:func:`can_control`): the owner of a run, and a teacher,
see its Cancel, Stop, Delete and Start-again controls; anyone else who has its link
(``?run=<id>``) sees it read-only. A run without an owner (made before owners
existed, or started outside the app) belongs to everyone: it is listed for every
browser and anyone may control it.

**Limits.** A cookie is not a password: anyone who uses that browser, or copies
the cookie, owns its runs; clearing cookies or a private window makes a new owner
(the old runs stay reachable, read-only, through their links). The script sets
the cookie, so it cannot be ``HttpOnly``, and over plain http it travels in clear.
Two tabs opened at the same moment in a browser without the cookie may draw two
tokens; the last one written wins. This keeps a class from cancelling each other's
runs by accident or mischief; it is no defence against someone who wants in.

**Teacher mode.** The operator sets ``SBI_TEACHER_KEY``; a teacher types it into a
password box in the sidebar of the Runs and Class gallery pages
(:func:`teacher_key_box`). It is compared in constant time
(``hmac.compare_digest``) and unlocks only that session: it is never put in the
URL or a cookie. A teacher sees and controls every run on the server, and the
Class gallery.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
from typing import Optional

import streamlit as st

from sbi_core.store import RunInfo

from sbi_ui import keys as K
from sbi_ui.messages import flash

__all__ = ["OWNER_COOKIE", "TEACHER_ENV", "COOKIE_MAX_AGE_S", "READ_ONLY_TEXT", "owner_token", "remember_owner",
           "teacher_mode_available", "is_teacher", "unlock_teacher", "leave_teacher_mode", "teacher_key_box",
           "can_control", "listing_owner", "read_only_notice"]

OWNER_COOKIE = "sbi_owner"
TEACHER_ENV = "SBI_TEACHER_KEY"
COOKIE_MAX_AGE_S = 365 * 24 * 3600
READ_ONLY_TEXT = "You are viewing someone else's run (read-only)."
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")  # what token_urlsafe makes; anything else in a cookie is ignored


# ---- the owner token ------------------------------------------------------------------
def _cookie_token() -> Optional[str]:
    """The token of the ``sbi_owner`` cookie the browser sent, if well formed."""
    try:
        value = st.context.cookies.get(OWNER_COOKIE)
    except Exception:  # no browser behind this session (AppTest, a bare script)
        return None
    return value if isinstance(value, str) and _TOKEN.fullmatch(value) else None


def owner_token() -> str:
    """This browser's owner token: the session's, else the cookie's, else a new one."""
    token = st.session_state.get(K.S_OWNER)
    if not (isinstance(token, str) and _TOKEN.fullmatch(token)):
        token = _cookie_token() or secrets.token_urlsafe(16)
        st.session_state[K.S_OWNER] = token
    return token


def remember_owner() -> None:
    """Write the token into the browser's cookie, unless the browser already sent it.

    Draws an invisible script (nothing when the cookie is there). Call it while a
    page is drawn, not in a callback or before ``st.switch_page``: the script must
    reach the browser.
    """
    token = owner_token()
    if _cookie_token() == token:
        return
    cookie = f"{OWNER_COOKIE}={token}; Max-Age={COOKIE_MAX_AGE_S}; Path=/; SameSite=Lax"
    script = (f"<style>.st-key-{K.C_OWNER_COOKIE}{{display:none}}</style>"  # takes no room on the page
              f"<script>document.cookie = {json.dumps(cookie)}"
              " + (location.protocol === 'https:' ? '; Secure' : '');</script>")
    with st.container(key=K.C_OWNER_COOKIE):
        st.html(script, unsafe_allow_javascript=True)


# ---- teacher mode -----------------------------------------------------------------------
def _teacher_key() -> str:
    return os.environ.get(TEACHER_ENV, "").strip()


def teacher_mode_available() -> bool:
    """Whether the operator set a teacher key (``$SBI_TEACHER_KEY``)."""
    return bool(_teacher_key())


def is_teacher() -> bool:
    """Whether this session entered the teacher key (and the server still has one)."""
    return bool(st.session_state.get(K.S_TEACHER)) and teacher_mode_available()


def unlock_teacher(entered: str) -> bool:
    """Turn teacher mode on for this session if ``entered`` is the key; True if it was."""
    key = _teacher_key()
    ok = bool(key) and hmac.compare_digest(str(entered or "").strip().encode(), key.encode())
    st.session_state[K.S_TEACHER] = ok
    return ok


def leave_teacher_mode() -> None:
    st.session_state[K.S_TEACHER] = False


def _key_entered() -> None:
    entered = st.session_state.get(K.W_TEACHER_KEY, "")
    st.session_state[K.W_TEACHER_KEY] = ""  # the key is not kept in the session
    if entered and not unlock_teacher(entered):
        flash("error", "That is not the teacher key. Ask whoever started the server (it is $SBI_TEACHER_KEY).")


def teacher_key_box() -> None:
    """The sidebar's teacher key box (a password field), or "Teacher mode is on" and a way out."""
    if not teacher_mode_available():
        return
    with st.sidebar:
        if is_teacher():
            st.caption(":material/school: **Teacher mode is on**: every run of the server is listed, with its "
                       "controls, and the Class gallery is open.")
            st.button("Leave teacher mode", key=K.W_TEACHER_LEAVE, on_click=leave_teacher_mode,
                      icon=":material/logout:")
        else:
            st.text_input("Teacher key", key=K.W_TEACHER_KEY, type="password", on_change=_key_entered,
                          help="The key set by whoever started the server ($SBI_TEACHER_KEY). It shows every run "
                               "on the server and the Class gallery, in this browser tab only.")


# ---- what this viewer may do -----------------------------------------------------------
def can_control(info: RunInfo) -> bool:
    """Whether this viewer may cancel, stop, delete or restart ``info``: its owner, a teacher,
    or anyone for a run without an owner."""
    return info.owner is None or info.owner == owner_token() or is_teacher()


def listing_owner() -> Optional[str]:
    """The owner whose runs lists show: this browser's token, or None (every run) for a teacher."""
    return None if is_teacher() else owner_token()


def read_only_notice(info: RunInfo) -> bool:
    """Say so when ``info`` is someone else's run; True if it is (then draw no controls)."""
    if can_control(info):
        return False
    with st.container(key=K.C_READ_ONLY):
        st.info(READ_ONLY_TEXT + " Its owner's browser can stop or delete it; you can look, download and "
                "start a copy of your own on **Train**.", icon=":material/visibility:")
    return True

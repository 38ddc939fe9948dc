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

**Guessing the key is slowed down** (:class:`KeyThrottle`): a browser may type
:data:`KEY_FREE_TRIES` wrong keys; after that each wrong key makes it wait twice
as long as the one before (2 s, 4 s, 8 s, ... up to :data:`KEY_MAX_WAIT_S`), and
a key typed while it must wait is refused without being compared ("Wrong key.
Try again in 8 s."). Since a new browser (or cleared cookies) is a new owner,
wrong keys from all browsers together are counted too: past
:data:`KEY_GLOBAL_FREE_TRIES` of them everyone waits (at most
:data:`KEY_GLOBAL_MAX_WAIT_S`). Nothing sleeps on the server: a refused try
costs nothing, and other users are never held up. Counts are forgotten after
:data:`KEY_FORGET_S` without a wrong key, and a right key clears its browser's.
"""

from __future__ import annotations

import hmac
import json
import math
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

import streamlit as st

from sbi_core.store.runs import RunInfo

from sbi_ui import keys as K
from sbi_ui.messages import flash

__all__ = ["OWNER_COOKIE", "TEACHER_ENV", "COOKIE_MAX_AGE_S", "READ_ONLY_TEXT", "owner_token", "remember_owner",
           "teacher_mode_available", "is_teacher", "unlock_teacher", "leave_teacher_mode", "teacher_key_box",
           "can_control", "listing_owner", "read_only_notice", "KeyThrottle", "KEY_FREE_TRIES",
           "KEY_GLOBAL_FREE_TRIES", "KEY_MAX_WAIT_S", "KEY_GLOBAL_MAX_WAIT_S", "KEY_FORGET_S"]

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
KEY_FREE_TRIES = 3  # wrong teacher keys a browser may type before it must wait
KEY_GLOBAL_FREE_TRIES = 20  # wrong keys from all browsers together before everyone must wait
KEY_MAX_WAIT_S = 300.0  # the longest a browser waits after a wrong key
KEY_GLOBAL_MAX_WAIT_S = 30.0  # the longest everyone waits (a student cannot lock the teacher out for long)
KEY_FORGET_S = 900.0  # wrong keys are forgotten after this long without another


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0  # when the last wrong key came (clock seconds)
    until: float = 0.0  # no try is compared before this time


class KeyThrottle:
    """Wrong teacher keys, per browser owner and in all, and how long each must wait before the next try.

    Thread-safe and process-wide (one per server). ``clock`` is injectable for tests.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._owners: dict[str, _Failures] = {}
        self._all = _Failures()

    def _fresh(self, f: _Failures, now: float) -> _Failures:
        return _Failures() if f.count and now - f.last > KEY_FORGET_S else f

    def wait_s(self, owner: str) -> float:
        """Seconds before ``owner`` may try a key again (0: now)."""
        with self._lock:
            now = self._clock()
            mine = self._fresh(self._owners.get(owner, _Failures()), now)
            return max(0.0, mine.until - now, self._fresh(self._all, now).until - now)

    @staticmethod
    def _wrong(f: _Failures, now: float, free: int, most: float) -> None:
        f.count += 1
        f.last = now
        if f.count > free:
            f.until = now + min(2.0 ** (f.count - free), most)

    def failed(self, owner: str) -> float:
        """Count a wrong key of ``owner``; returns the seconds it must now wait."""
        with self._lock:
            now = self._clock()
            if len(self._owners) > 10_000:  # forget quiet owners (new tokens cost an attacker nothing)
                self._owners = {k: f for k, f in self._owners.items() if now - f.last <= KEY_FORGET_S}
            mine = self._owners[owner] = self._fresh(self._owners.get(owner, _Failures()), now)
            self._all = self._fresh(self._all, now)
            self._wrong(mine, now, KEY_FREE_TRIES, KEY_MAX_WAIT_S)
            self._wrong(self._all, now, KEY_GLOBAL_FREE_TRIES, KEY_GLOBAL_MAX_WAIT_S)
            return max(0.0, mine.until - now, self._all.until - now)

    def succeeded(self, owner: str) -> None:
        """The right key: ``owner``'s wrong keys are forgotten."""
        with self._lock:
            self._owners.pop(owner, None)

    def reset(self) -> None:
        """Forget every wrong key (a server restart does the same)."""
        with self._lock:
            self._owners.clear()
            self._all = _Failures()


_THROTTLE = KeyThrottle()


def _seconds(wait: float) -> str:
    return f"{max(1, math.ceil(wait))} s"


def _teacher_key() -> str:
    return os.environ.get(TEACHER_ENV, "").strip()


def teacher_mode_available() -> bool:
    """Whether the operator set a teacher key (``$SBI_TEACHER_KEY``)."""
    return bool(_teacher_key())


def is_teacher() -> bool:
    """Whether this session entered the teacher key (and the server still has one)."""
    return bool(st.session_state.get(K.S_TEACHER)) and teacher_mode_available()


def _try_key(entered: str) -> tuple[bool, str]:
    """``(unlocked, message)``: compare ``entered`` with the key, unless this browser (or everyone) must
    wait after wrong keys (:class:`KeyThrottle`); the message says what happened, in words."""
    owner = owner_token()
    wait = _THROTTLE.wait_s(owner)
    if wait > 0:  # refused without comparing: guessing costs time, the server nothing
        st.session_state[K.S_TEACHER] = False
        return False, f"Too many wrong keys. Try again in {_seconds(wait)}."
    key = _teacher_key()
    ok = bool(key) and hmac.compare_digest(str(entered or "").strip().encode(), key.encode())
    st.session_state[K.S_TEACHER] = ok
    if ok:
        _THROTTLE.succeeded(owner)
        return True, ""
    wait = _THROTTLE.failed(owner)
    if wait > 0:
        return False, f"Wrong key. Try again in {_seconds(wait)}."
    return False, "That is not the teacher key. Ask whoever started the server (it is $SBI_TEACHER_KEY)."


def unlock_teacher(entered: str) -> bool:
    """Turn teacher mode on for this session if ``entered`` is the key; True if it was. After wrong keys
    a try is refused uncompared until the wait is over (see :class:`KeyThrottle`)."""
    return _try_key(entered)[0]


def leave_teacher_mode() -> None:
    st.session_state[K.S_TEACHER] = False


def _key_entered() -> None:
    entered = st.session_state.get(K.W_TEACHER_KEY, "")
    st.session_state[K.W_TEACHER_KEY] = ""  # the key is not kept in the session
    if entered:
        ok, message = _try_key(entered)
        if not ok:
            flash("error", message)


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
            wait = _THROTTLE.wait_s(owner_token())
            if wait > 0:
                st.caption(f":material/timer: Too many wrong keys: a key is checked again in about "
                           f"{_seconds(wait)}.")


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

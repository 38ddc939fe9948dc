"""The Rounds page's view in the URL: ``?round=<k>`` and ``?axes=<x name>,<y name>``.

Next to ``?run=`` (:mod:`sbi_ui.session`), two query parameters say what the
Rounds page shows, so a shared link, a bookmark or a reload opens that view:

* ``round=k`` -- the round of "One round in detail", 1-based as the page names
  rounds; the select box :data:`keys.W_CORNER_ROUND` holds the 0-based index
  ``k - 1``.
* ``axes=x,y`` -- the parameters on the animation's axes, by the prior's
  parameter *name*, not position, so a link means the same after the
  parameters are reordered; the select boxes :data:`keys.W_AXIS_X` and
  :data:`keys.W_AXIS_Y` hold positions.

Reading (``sync_*``, called before the widgets are drawn): a valid value in
the URL wins over the session's widget state, as ``?run=`` does. Within a
session the two agree, because the widgets' ``on_change`` callbacks
(``write_*``) put every choice in the URL at once, so the URL only differs
from the widgets on the first run of a new URL (a link, a bookmark, a reload).
A value that does not fit the run shown (not a number, a round it does not
have, a name its prior lacks) is removed from the URL and the widget keeps its
value or default; it is never an error.

Only the Rounds page reads these parameters; other pages ignore them, and a
page change through the navigation drops them from the URL.

>>> round_from_query("2", 3), round_from_query("4", 3), round_from_query("two", 3)
(1, None, None)
>>> axes_from_query("theta2,theta1", ["theta1", "theta2"])
(1, 0)
"""

from __future__ import annotations

import re
from typing import Callable, Optional, Sequence

import streamlit as st

from sbi_ui import keys as K

__all__ = ["round_from_query", "axes_from_query", "axes_to_query", "sync_round", "write_round", "sync_axes",
           "axes_writer"]

_WHOLE = re.compile(r"[0-9]{1,6}")  # a round number as typed in a URL (no sign, no huge numbers)


# ---- the values: URL text <-> widget positions (pure) ----------------------------
def round_from_query(value: Optional[str], n_rounds: int) -> Optional[int]:
    """The 0-based round index that ``?round=value`` (1-based) names in a run of ``n_rounds`` rounds;
    ``None`` when it names none (missing, not a whole number, 0 or more than ``n_rounds``)."""
    if value is None or not _WHOLE.fullmatch(value.strip()):
        return None
    k = int(value.strip())
    return k - 1 if 1 <= k <= n_rounds else None


def axes_from_query(value: Optional[str], names: Sequence[str]) -> Optional[tuple[int, int]]:
    """``(ix, iy)``: the positions in ``names`` (the D parameter names) of ``?axes=x,y``; ``None`` when
    it is not two of these names separated by a comma. The same name twice is allowed (a histogram)."""
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2 or not all(p in names for p in parts):
        return None
    return list(names).index(parts[0]), list(names).index(parts[1])


def axes_to_query(names: Sequence[str], ix: int, iy: int) -> str:
    """The ``?axes=`` value of parameters ``ix`` (x-axis) and ``iy`` (y-axis) of ``names``."""
    return f"{names[ix]},{names[iy]}"


# ---- the round of "One round in detail" ---------------------------------------------
def sync_round(n_rounds: int) -> None:
    """Before the round select box is drawn for a run with ``n_rounds`` finished rounds: a valid
    ``?round=`` becomes its value; an invalid one leaves the URL, and a kept choice the run does
    not have (after changing to a run with fewer rounds) falls back to the last round."""
    raw = st.query_params.get(K.QP_ROUND)
    k = round_from_query(raw, n_rounds)
    if k is not None:
        _set_state(K.W_CORNER_ROUND, k)
        return
    if raw is not None:
        del st.query_params[K.QP_ROUND]
    kept = st.session_state.get(K.W_CORNER_ROUND)
    if K.W_CORNER_ROUND in st.session_state and not (isinstance(kept, int) and 0 <= kept < n_rounds):
        st.session_state[K.W_CORNER_ROUND] = n_rounds - 1


def write_round() -> None:
    """``on_change`` of the round select box: the chosen round into ``?round=`` (1-based)."""
    k = st.session_state.get(K.W_CORNER_ROUND)
    if isinstance(k, int):
        st.query_params[K.QP_ROUND] = str(k + 1)


# ---- the axes of the animation ---------------------------------------------------------
def sync_axes(names: Sequence[str]) -> None:
    """Before the axis select boxes are drawn for parameters ``names`` (D of them): a valid
    ``?axes=`` becomes their values; an invalid one (or any, with fewer than two parameters,
    where there are no axis choices) leaves the URL."""
    raw = st.query_params.get(K.QP_AXES)
    if raw is None:
        return
    picked = axes_from_query(raw, names) if len(names) >= 2 else None
    if picked is None:
        del st.query_params[K.QP_AXES]
        return
    _set_state(K.W_AXIS_X, picked[0])
    _set_state(K.W_AXIS_Y, picked[1])


def axes_writer(names: Sequence[str]) -> Callable[[], None]:
    """The ``on_change`` of both axis select boxes: the chosen pair into ``?axes=`` by name."""
    names = list(names)

    def _write() -> None:
        ix = st.session_state.get(K.W_AXIS_X, 0)
        iy = st.session_state.get(K.W_AXIS_Y, min(1, len(names) - 1))
        if 0 <= ix < len(names) and 0 <= iy < len(names):
            st.query_params[K.QP_AXES] = axes_to_query(names, ix, iy)

    return _write


def _set_state(key: str, value: int) -> None:
    """Set a widget's value from the URL, only when it differs (so an unchanged widget is left alone)."""
    if st.session_state.get(key) != value:
        st.session_state[key] = value

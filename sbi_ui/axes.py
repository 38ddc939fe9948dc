"""Choosing which two parameters a 2-D posterior plot shows (a pair of select boxes)."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import streamlit as st

__all__ = ["axis_pickers"]


def axis_pickers(dim: int, labels: Sequence[str], key_x: str, key_y: str, *, from_dim: int = 3,
                 widths: Sequence[float] = (1, 1, 2), help_x: Optional[str] = None,
                 help_y: Optional[str] = None, on_change: Optional[Callable[[], None]] = None) -> tuple[int, int]:
    """``(ix, iy)``: the parameters on the x- and y-axis, chosen by two select boxes once there are
    ``from_dim`` parameters or more; with fewer, the first two (the first twice for one).
    ``on_change`` runs when either box changes (e.g. to put the choice in the URL)."""
    if dim < from_dim:
        return 0, min(1, dim - 1)
    change = on_change or "rerun"
    c1, c2, _ = st.columns(list(widths))
    ix = c1.selectbox("x-axis", range(dim), index=0, format_func=lambda k: labels[k], key=key_x, help=help_x,
                      on_change=change)
    # the default only for a fresh box: one whose value is in session state (from the URL) takes it from there
    iy = c2.selectbox("y-axis", range(dim), index=0 if key_y in st.session_state else 1,
                      format_func=lambda k: labels[k], key=key_y, help=help_y, on_change=change)
    return min(ix, dim - 1), min(iy, dim - 1)

"""Every plotly chart of the app goes through :func:`chart`, so projector mode can enlarge its text.

:func:`shared_chart` draws a figure that every session watching a run shares: built once per
change (:mod:`sbi_ui.live_cache`), not once per session and poll.
"""

from __future__ import annotations

from typing import Callable, Hashable

import plotly.graph_objects as go
import streamlit as st

from sbi_core.plots import scaled_fonts

from sbi_ui import live_cache
from sbi_ui.projector import projector_on
from sbi_ui.resources import store

__all__ = ["chart", "shared_chart", "projected", "PROJECTOR_FONT_SCALE"]

PROJECTOR_FONT_SCALE = 1.4


def projected(fig: go.Figure) -> go.Figure:
    """``fig``, or a copy with all text 1.4 times larger in projector mode."""
    return scaled_fonts(fig, PROJECTOR_FONT_SCALE) if projector_on() else fig


def chart(fig: go.Figure, **kwargs):
    """``st.plotly_chart(fig, **kwargs)``, with all text 1.4 times larger in projector mode."""
    return st.plotly_chart(projected(fig), **kwargs)


def shared_chart(run_id: str, name: str, version: Hashable, build: Callable[[], go.Figure], **kwargs):
    """:func:`chart` of ``build()``, the figure built once per ``version`` for every session that draws
    ``name`` of ``run_id`` (projector mode is a figure of its own). ``name`` must tell apart every
    session setting the figure depends on; ``version`` everything of the run it shows."""
    if projector_on():
        fig = live_cache.figure(store(), run_id, name + "@projector", version,
                                lambda: scaled_fonts(build(), PROJECTOR_FONT_SCALE))
    else:
        fig = live_cache.figure(store(), run_id, name, version, build)
    return st.plotly_chart(fig, **kwargs)

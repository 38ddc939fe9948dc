"""Every plotly chart of the app goes through :func:`chart`, so projector mode can enlarge its text."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from sbi_core.plots import scaled_fonts

from sbi_ui.projector import projector_on

__all__ = ["chart", "PROJECTOR_FONT_SCALE"]

PROJECTOR_FONT_SCALE = 1.4


def chart(fig: go.Figure, **kwargs):
    """``st.plotly_chart(fig, **kwargs)``, with all text 1.4 times larger in projector mode."""
    return st.plotly_chart(scaled_fonts(fig, PROJECTOR_FONT_SCALE) if projector_on() else fig, **kwargs)

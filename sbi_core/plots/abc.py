"""ABC figures: the tolerance (epsilon) and acceptance rate of each generation.

ABC trains no network, so its Train page shows no loss. What it shows is the
tolerance ``epsilon_t``: a simulation is accepted when its distance to the
observation (on z-scored data) is below ``epsilon_t``. SMC-ABC lowers
``epsilon_t`` generation by generation, and the acceptance rate (accepted /
simulated) falls with it: the price of a sharper posterior.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go

from sbi_core.plots._arrays import _np
from sbi_core.plots.style import COLORS, _base_layout, _empty

__all__ = ["EPSILON_TITLE", "epsilon_figure"]

EPSILON_TITLE = "ABC tolerance per generation"


def epsilon_figure(epsilon: Sequence[Optional[float]], acceptance: Sequence[Optional[float]],
                   title: str = EPSILON_TITLE) -> go.Figure:
    """``epsilon (R,)`` (left axis) and ``acceptance (R,)`` fractions (right axis, in %) per generation."""
    eps = _np([np.nan if v is None else v for v in epsilon]).reshape(-1)
    acc = _np([np.nan if v is None else v for v in acceptance]).reshape(-1)
    if len(eps) == 0:
        return _empty(title, "ABC draws its first generation of simulations...", 320)
    gen = np.arange(1, len(eps) + 1)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=gen, y=eps, mode="lines+markers", name="tolerance ε",
                             line=dict(color=COLORS["primary"], width=2.5), marker=dict(size=9),
                             hovertemplate="generation %{x}: ε %{y:.3g}<extra></extra>"))
    fig.add_trace(go.Scatter(x=gen, y=100 * acc, mode="lines+markers", name="accepted (%)", yaxis="y2",
                             line=dict(color=COLORS["val"], width=2, dash="dot"), marker=dict(size=7),
                             hovertemplate="generation %{x}: %{y:.2g} % accepted<extra></extra>"))
    _base_layout(fig, title, 380, legend="bottom")
    fig.update_layout(
        xaxis=dict(title_text="generation", tickmode="array", tickvals=gen, range=[0.5, len(gen) + 0.5]),
        yaxis=dict(title_text="tolerance ε (z-scored distance)", rangemode="tozero"),
        yaxis2=dict(title_text="accepted (%)", overlaying="y", side="right", showgrid=False,
                    **_percent_ticks(float(np.nanmax(100 * acc)) if np.isfinite(acc).any() else 1.0)),
    )
    return fig


def _percent_ticks(top: float) -> dict:
    """Round ticks from 0 for the acceptance axis (1, 2 or 5 times a power of ten apart, about four of them);
    left to itself, the overlaid axis lines its ticks up with the tolerance axis at values like 4.72."""
    top = max(top, 1e-3) * 1.15
    raw = top / 4
    power = 10 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return dict(range=[0, top], tickmode="linear", tick0=0, dtick=float(step))

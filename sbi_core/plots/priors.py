"""Prior figures: the density of one prior marginal over its plotting range (a line for a fixed value).

For the skewed families (lognormal, gamma, half-normal, beta), whose numbers do
not say where the mass is, the figure also marks the median ``F^{-1}(0.5)`` and
shades the central 90 % ``[F^{-1}(0.05), F^{-1}(0.95)]``, in the parameter's own units
(named on hover; the legend keeps to the density, so it fits a small chart).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import plotly.graph_objects as go

from sbi_core.plots._arrays import _text
from sbi_core.plots.style import COLORS, _base_layout


__all__ = ["marginal_figure"]

SKEWED = ("lognormal", "gamma", "halfnormal", "beta")


def marginal_figure(marginal, label: Optional[str] = None, title: Optional[str] = None,
                    height: int = 200, points: int = 240) -> go.Figure:
    """Density of one prior marginal (:class:`sbi_core.stats.priors.Marginal`) over its plotting range."""
    import torch

    lab = _text(label or marginal.name)  # the user's parameter name, as plotly text
    ttl = title or f"Prior of {lab}"
    lo, hi = marginal.plot_bounds()
    fig = go.Figure()
    if marginal.is_fixed:
        v = float(marginal.params["value"])
        fig.add_trace(go.Scatter(x=[v, v], y=[0, 1], mode="lines", name=f"fixed at {v:g}",
                                 line=dict(color=COLORS["primary"], width=3)))
        ytitle = "held constant"
    else:
        pad = 0.05 * (hi - lo)
        grid = np.linspace(lo - pad, hi + pad, points)
        with torch.no_grad():
            dens = np.exp(marginal.log_prob(torch.as_tensor(grid, dtype=torch.float32)).numpy().astype(float))
        dens[~np.isfinite(dens)] = 0.0
        fig.add_trace(go.Scatter(
            x=grid, y=dens, mode="lines", name=f"{marginal.dist} density", fill="tozeroy",
            line=dict(color=COLORS["primary"], width=2, shape="linear"),
            fillcolor="rgba(59,91,219,0.18)",
            hovertemplate=f"{lab} = %{{x:.3g}}<br>density %{{y:.3g}}<extra></extra>",
        ))
        ytitle = "density"
        if marginal.dist in SKEWED:
            q05, med, q95 = (float(marginal.icdf(q)) for q in (0.05, 0.5, 0.95))
            inner = (grid >= q05) & (grid <= q95)
            fig.add_trace(go.Scatter(
                x=grid[inner], y=dens[inner], mode="lines", fill="tozeroy", line=dict(width=0),
                fillcolor="rgba(59,91,219,0.28)", name=f"90 %: {q05:.3g} to {q95:.3g}", showlegend=False,
                hovertemplate=f"90 % of the prior: {q05:.3g} to {q95:.3g}<extra></extra>",
            ))
            fig.add_trace(go.Scatter(
                x=[med, med], y=[0, float(np.interp(med, grid, dens))], mode="lines", name=f"median {med:.3g}",
                showlegend=False,
                line=dict(color=COLORS["primary"], width=2, dash="dot"),
                hovertemplate=f"median {lab} = {med:.3g}<extra></extra>",
            ))
    _base_layout(fig, ttl, height, showlegend=True)
    fig.update_layout(margin=dict(l=50, r=10, t=60, b=40), title=dict(font=dict(size=13)),
                      legend=dict(font=dict(size=11), y=1.0, yanchor="bottom", x=1, xanchor="right"))
    fig.update_xaxes(title=dict(text=lab, font=dict(size=12)))
    fig.update_yaxes(title=dict(text=ytitle, font=dict(size=12)), rangemode="tozero")
    return fig

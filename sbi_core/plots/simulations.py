"""Figures in observation space: simulated data (with the observation overlaid; also the
model gallery's small thumbnails) and the posterior predictive check.

The observation is red; simulations are light indigo.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go

from ._arrays import _label, _np
from .style import COLORS, _base_layout, _empty

__all__ = ["simulations_figure", "predictive_figure"]


def simulations_figure(
    x,
    obs_labels: Optional[Sequence[str]] = None,
    x_obs=None,
    title: str = "Simulations at prior draws",
    name: str = "simulations at prior draws",
    height: int = 300,
    compact: bool = False,
) -> go.Figure:
    """A picture of simulated data ``x (n, K)``: a histogram (K=1), a scatter (K=2) or lines over components.

    ``x_obs (K,)`` is overlaid in red as "observation" when given.
    """
    a = _np(x, 2)
    a = a[np.isfinite(a).all(1)]
    k = a.shape[1]
    obs = None if x_obs is None else _np(x_obs).reshape(-1)
    labs = [_label(obs_labels, c, "x") for c in range(k)]
    fig = go.Figure()
    if k == 1:
        fig.add_trace(go.Histogram(x=a[:, 0], name=name, marker_color=COLORS["sims"], opacity=0.85, nbinsx=25))
        if obs is not None:
            fig.add_vline(x=float(obs[0]), line=dict(color=COLORS["observation"], width=3))
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="observation",
                                     line=dict(color=COLORS["observation"], width=3)))
        xt, yt = labs[0], "count"
    elif k == 2:
        fig.add_trace(go.Scatter(x=a[:, 0], y=a[:, 1], mode="markers", name=name,
                                   marker=dict(color=COLORS["sims"], size=4 if compact else 5, opacity=0.6)))
        if obs is not None:
            fig.add_trace(go.Scatter(x=[obs[0]], y=[obs[1]], mode="markers", name="observation",
                                     marker=dict(symbol="x", size=13, color=COLORS["observation"],
                                                 line=dict(width=1.5, color="white"))))
        xt, yt = labs[0], labs[1]
    else:
        comp = list(range(1, k + 1))
        xs, ys = [], []
        for row in a:
            xs += comp + [None]
            ys += row.tolist() + [None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=name,
                                   line=dict(color=COLORS["sims"], width=1), opacity=0.45))
        if obs is not None:
            fig.add_trace(go.Scatter(x=comp, y=obs.tolist(), mode="lines+markers", name="observation",
                                     line=dict(color=COLORS["observation"], width=2.5), marker=dict(size=6)))
        if compact:  # small picture: number the components instead of naming them
            fig.update_xaxes(dtick=1 if k <= 6 else 2, tick0=1 if k <= 6 else 2)
            xt = f"component (1-{k})"
        else:
            fig.update_xaxes(tickmode="array", tickvals=comp, ticktext=[str(s) for s in labs],
                             tickangle=-30 if k > 5 else 0)
            xt = "observation component"
        yt = "value"
    _base_layout(fig, title, height, hovermode="closest")
    if compact:
        fig.update_layout(
            margin=dict(l=45, r=8, t=58, b=40), title=dict(font=dict(size=13)),
            legend=dict(font=dict(size=11), y=1.0, yanchor="bottom", x=0, xanchor="left"),
            font=dict(size=11),
        )
    fig.update_xaxes(title=dict(text=xt, font=dict(size=12 if compact else 13)))
    fig.update_yaxes(title=dict(text=yt, font=dict(size=12 if compact else 13)))
    return fig


def predictive_figure(
    x_pred,
    x_obs,
    obs_labels: Optional[Sequence[str]] = None,
    title: str = "Posterior predictive check",
    max_histograms: int = 6,
    height: Optional[int] = None,
) -> go.Figure:
    """Simulations at posterior samples ``x_pred (n, K)`` against the observation ``x_obs (K,)``.

    Up to ``max_histograms`` components: one histogram per component with the
    observation as a red line. More: a ribbon (median, 50 % and 90 % bands) over
    the components with the observation as red points.
    """
    a = _np(x_pred, 2)
    a = a[np.isfinite(a).all(1)]
    obs = _np(x_obs).reshape(-1)
    k = obs.shape[0]
    labs = [_label(obs_labels, c, "x") for c in range(k)]
    if len(a) == 0:
        return _empty(title, "No finite simulations to compare.", height or 320)
    if k <= max_histograms:
        # a grid of panels, one per component, laid out by hand (cheap to build: it redraws
        # with every slider move on the Explore page)
        cols = min(k, 3)
        rows = math.ceil(k / cols)
        gap_x, gap_y = 0.07, (0.3 / rows if rows > 1 else 0.0)
        w = (1 - gap_x * (cols - 1)) / cols
        h = (1 - gap_y * (rows - 1)) / rows
        data, shapes, axes = [], [], {}
        for c in range(k):
            rr, cc = c // cols, c % cols
            n = "" if c == 0 else str(c + 1)
            x0 = cc * (w + gap_x)
            y1 = 1 - rr * (h + gap_y)
            data.append(go.Histogram(
                x=a[:, c], name="simulated from the posterior", marker_color=COLORS["sims"], opacity=0.85,
                nbinsx=30, showlegend=c == 0, legendgroup="sim", xaxis=f"x{n}", yaxis=f"y{n}",
            ))
            shapes.append(dict(type="line", x0=float(obs[c]), x1=float(obs[c]), y0=0, y1=1, xref=f"x{n}",
                               yref=f"y{n} domain", line=dict(color=COLORS["observation"], width=3)))
            axes[f"xaxis{n}"] = dict(domain=[max(0.0, x0), min(1.0, x0 + w)], anchor=f"y{n}",
                                     title=dict(text=labs[c]))
            axes[f"yaxis{n}"] = dict(domain=[max(0.0, y1 - h), min(1.0, y1)], anchor=f"x{n}",
                                     title=dict(text="count" if cc == 0 else ""))
        data.append(go.Scatter(x=[None], y=[None], mode="lines", name="observation",
                               line=dict(color=COLORS["observation"], width=3)))
        fig = go.Figure(data=data, layout=dict(shapes=shapes, **axes))
        _base_layout(fig, title, height or 290 * rows + 90, bargap=0.05)
        return fig
    q = np.quantile(a, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    comp = list(range(1, k + 1))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=comp + comp[::-1], y=q[4].tolist() + q[0][::-1].tolist(), fill="toself",
                             name="90 % of simulations", line=dict(width=0), fillcolor="rgba(116,143,252,0.22)",
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=comp + comp[::-1], y=q[3].tolist() + q[1][::-1].tolist(), fill="toself",
                             name="50 % of simulations", line=dict(width=0), fillcolor="rgba(116,143,252,0.45)",
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=comp, y=q[2].tolist(), mode="lines", name="median simulation",
                             line=dict(color=COLORS["primary"], width=2)))
    fig.add_trace(go.Scatter(x=comp, y=obs.tolist(), mode="markers+lines", name="observation",
                             marker=dict(color=COLORS["observation"], size=8),
                             line=dict(color=COLORS["observation"], width=1, dash="dot")))
    _base_layout(fig, title, height or 400, hovermode="x unified")
    fig.update_xaxes(title=dict(text="observation component"), tickmode="array", tickvals=comp,
                     ticktext=labs, tickangle=-30 if k > 6 else 0)
    fig.update_yaxes(title=dict(text="value"))
    return fig

"""Figures in observation space: simulated data (with the observation overlaid; also the
model gallery's small thumbnails) and the posterior predictive check.

The observation is red; simulations are light indigo.

Several components share one value axis only when they live on comparable
scales: with ``q_c`` the central 98 % interval of component ``c``, the lines
over components are drawn when

    (max_c q_c.high - min_c q_c.low) / min_c |q_c| <= SHARED_SCALE_RATIO,

that is, when no component's spread is a small sliver of the common axis
(a time series, repeated measurements in one unit). Otherwise (SIR's peak day
in days next to fractions of the town; Lotka-Volterra's log means next to
correlations) each component gets its own small panel, a histogram with the
observation as a red line, and the figure says so.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go

from sbi_core.plots._arrays import _label, _np, _thin
from sbi_core.plots.style import COLORS, _base_layout, _empty

__all__ = ["SHARED_SCALE_RATIO", "PANELS_NOTE", "simulations_figure", "predictive_figure", "shares_one_axis"]

SHARED_SCALE_RATIO = 5.0
MAX_LINES, MAX_LINES_COMPACT = 150, 50  # simulations drawn as lines (more only blur into a band)
COMPACT_LABEL_CHARS = 10  # a thumbnail numbers its panels when a component's name is longer
PANELS_NOTE = "One panel per component: their scales differ too much to share an axis."


def shares_one_axis(x) -> bool:
    """Whether the components of ``x (n, K)`` can share one value axis (see the module docstring)."""
    a = _np(x, 2)
    a = a[np.isfinite(a).all(1)]
    if len(a) < 2:
        return True
    q_lo, q_hi = np.quantile(a, [0.01, 0.99], axis=0)
    own = q_hi - q_lo
    span = float(q_hi.max() - q_lo.min())
    if span <= 0:
        return True
    return bool(own.min() > 0 and span / own.min() <= SHARED_SCALE_RATIO)


def _histogram_panels(a: np.ndarray, obs: Optional[np.ndarray], labs: Sequence[str], name: str,
                      cols: int, compact: bool = False, nbins: int = 30) -> tuple[list, dict]:
    """One histogram per component of ``a (n, K)`` on a grid of ``cols`` columns, laid out by hand.

    Returns ``(data, layout)``: the traces (a legend entry for the first panel
    and, with ``obs``, an "observation" entry) and the axes, shapes (the red
    observation lines) and, when ``compact``, the panel names as annotations.
    Built by hand rather than with ``make_subplots``: it is cheap enough to
    rebuild on every slider move of the Explore page.
    """
    k = a.shape[1]
    rows = math.ceil(k / cols)
    numbered = compact and max(len(str(s)) for s in labs) > COMPACT_LABEL_CHARS
    gap_x = 0.05 if compact else 0.1
    gap_y = (0.3 if compact else 0.36) / rows if rows > 1 else 0.0
    w = (1 - gap_x * (cols - 1)) / cols
    h = (1 - gap_y * (rows - 1) - (0.1 if compact else 0.0)) / rows
    data, shapes, annotations, axes = [], [], [], {}
    for c in range(k):
        rr, cc = c // cols, c % cols
        n = "" if c == 0 else str(c + 1)
        x0 = cc * (w + gap_x)
        y1 = 1 - rr * (h + gap_y) - (0.1 if compact else 0.0)
        data.append(go.Histogram(
            x=a[:, c], name=name, marker_color=COLORS["sims"], opacity=0.85, nbinsx=nbins,
            showlegend=c == 0 and not (compact and obs is None), legendgroup="sim", xaxis=f"x{n}", yaxis=f"y{n}",
            hovertemplate=f"{labs[c]}: %{{x}}<br>%{{y}} simulations<extra></extra>",
        ))
        xdom = [max(0.0, x0), min(1.0, x0 + w)]
        ydom = [max(0.0, y1 - h), min(1.0, y1)]
        if obs is not None:
            shapes.append(dict(type="line", x0=float(obs[c]), x1=float(obs[c]), y0=0, y1=1, xref=f"x{n}",
                               yref=f"y{n} domain", line=dict(color=COLORS["observation"], width=3 if not compact
                                                              else 2)))
        if compact:
            annotations.append(dict(text=str(c + 1) if numbered else str(labs[c]), x=(xdom[0] + xdom[1]) / 2, y=ydom[1], xref="paper",
                                    yref="paper", xanchor="center", yanchor="bottom", showarrow=False,
                                    font=dict(size=10)))
            axes[f"xaxis{n}"] = dict(domain=xdom, anchor=f"y{n}", showticklabels=False)
            axes[f"yaxis{n}"] = dict(domain=ydom, anchor=f"x{n}", showticklabels=False)
        else:
            axes[f"xaxis{n}"] = dict(domain=xdom, anchor=f"y{n}", title=dict(text=labs[c]))
            axes[f"yaxis{n}"] = dict(domain=ydom, anchor=f"x{n}", title=dict(text="count" if cc == 0 else ""))
    if obs is not None:
        data.append(go.Scatter(x=[None], y=[None], mode="lines", name="observation",
                               line=dict(color=COLORS["observation"], width=3)))
    return data, dict(shapes=shapes, annotations=annotations, **axes)


def _sims_histogram(fig: go.Figure, a: np.ndarray, obs, labs: Sequence[str], name: str) -> tuple[str, str]:
    """One component: a histogram of ``a (n, 1)``, the observation (``obs (1,)`` or None) a red line.
    Returns the axis titles."""
    fig.add_trace(go.Histogram(x=a[:, 0], name=name, marker_color=COLORS["sims"], opacity=0.85, nbinsx=25))
    if obs is not None:
        fig.add_vline(x=float(obs[0]), line=dict(color=COLORS["observation"], width=3))
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="observation",
                                 line=dict(color=COLORS["observation"], width=3)))
    return labs[0], "count"


def _sims_scatter(fig: go.Figure, a: np.ndarray, obs, labs: Sequence[str], name: str,
                  compact: bool) -> tuple[str, str]:
    """Two components: a scatter of ``a (n, 2)``, the observation (``obs (2,)`` or None) a red cross.
    Returns the axis titles."""
    fig.add_trace(go.Scatter(x=a[:, 0], y=a[:, 1], mode="markers", name=name,
                             marker=dict(color=COLORS["sims"], size=4 if compact else 5, opacity=0.6)))
    if obs is not None:
        fig.add_trace(go.Scatter(x=[obs[0]], y=[obs[1]], mode="markers", name="observation",
                                 marker=dict(symbol="x", size=13, color=COLORS["observation"],
                                             line=dict(width=1.5, color="white"))))
    return labs[0], labs[1]


def _sims_lines(fig: go.Figure, a: np.ndarray, obs, labs: Sequence[str], name: str,
                compact: bool) -> tuple[str, str]:
    """K >= 3 components on one scale: each (thinned) row of ``a (n, K)`` a line over the components,
    the observation (``obs (K,)`` or None) a red line with markers. Returns the axis titles."""
    k = a.shape[1]
    comp = list(range(1, k + 1))
    xs, ys = [], []
    for row in _thin(a, MAX_LINES_COMPACT if compact else MAX_LINES):
        xs += comp + [None]
        ys += row.tolist() + [None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=name,
                             line=dict(color=COLORS["sims"], width=1), opacity=0.45))
    if obs is not None:
        fig.add_trace(go.Scatter(x=comp, y=obs.tolist(), mode="lines+markers", name="observation",
                                 line=dict(color=COLORS["observation"], width=2.5), marker=dict(size=6)))
    if compact:  # small picture: number the components instead of naming them
        fig.update_xaxes(dtick=1 if k <= 6 else 2, tick0=1 if k <= 6 else 2)
        return f"component (1-{k})", "value"
    fig.update_xaxes(tickmode="array", tickvals=comp, ticktext=[str(s) for s in labs],
                     tickangle=-30 if k > 5 else 0)
    return "observation component", "value"


def _sims_panels_figure(a: np.ndarray, obs, labs: Sequence[str], name: str, title: str, height: int,
                        compact: bool) -> go.Figure:
    """K >= 3 components on different scales: one histogram panel per column of ``a (n, K)``, with
    the observation (``obs (K,)`` or None) as red lines and :data:`PANELS_NOTE` (or a short form)."""
    k = a.shape[1]
    cols = min(k, 3)
    rows = math.ceil(k / cols)
    data, layout = _histogram_panels(a, obs, labs, name, cols, compact, nbins=15 if compact else 25)
    fig = go.Figure(data=data, layout=layout)
    full = height if compact else max(height, 170 * rows + 130)
    _base_layout(fig, title, full, bargap=0.05, hovermode="closest")
    numbered = compact and max(len(str(s)) for s in labs) > COMPACT_LABEL_CHARS
    note = (f"one panel per component (1-{k})" if numbered else "one panel per component") if compact \
        else PANELS_NOTE
    fig.update_layout(title=dict(subtitle=dict(text=note, font=dict(size=11 if compact else 12))))
    if compact:
        fig.update_layout(margin=dict(l=8, r=8, t=52, b=8), title=dict(font=dict(size=13)), font=dict(size=11),
                          legend=dict(font=dict(size=11), y=1.0, yanchor="bottom", x=1, xanchor="right"))
    else:
        fig.update_layout(margin=dict(t=110))
    return fig


def simulations_figure(
    x,
    obs_labels: Optional[Sequence[str]] = None,
    x_obs=None,
    title: str = "Simulations at prior draws",
    name: str = "simulations at prior draws",
    height: int = 300,
    compact: bool = False,
) -> go.Figure:
    """A picture of simulated data ``x (n, K)``: a histogram (K=1), a scatter (K=2), and for K >= 3
    lines over components when they share a scale (:func:`shares_one_axis`), else one
    histogram panel per component (the subtitle says so, :data:`PANELS_NOTE`).

    ``x_obs (K,)`` is overlaid in red as "observation" when given. ``compact``
    draws a small gallery thumbnail.
    """
    a = _np(x, 2)
    a = a[np.isfinite(a).all(1)]
    k = a.shape[1]
    obs = None if x_obs is None else _np(x_obs).reshape(-1)
    labs = [_label(obs_labels, c, "x") for c in range(k)]
    fig = go.Figure()
    if k == 1:
        xt, yt = _sims_histogram(fig, a, obs, labs, name)
    elif k == 2:
        xt, yt = _sims_scatter(fig, a, obs, labs, name, compact)
    elif not shares_one_axis(a):
        return _sims_panels_figure(a, obs, labs, name, title, height, compact)
    else:
        xt, yt = _sims_lines(fig, a, obs, labs, name, compact)
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
        cols = min(k, 3)
        rows = math.ceil(k / cols)
        data, layout = _histogram_panels(a, obs, labs, "simulated from the posterior", cols)
        fig = go.Figure(data=data, layout=layout)
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

"""Posterior clouds for one posterior at a time: a cloud with marginal histograms, the pair plot,
and the small multiples (one panel per observation, for an amortized posterior).

One parameter (or the same parameter on both axes) gives histograms instead of
clouds. The prior's plotting box is a dashed grey rectangle and the true
parameter a red star. A cloud much smaller than the prior's box is zoomed to,
with an inset showing where it sits in the whole box (:mod:`.zoom`).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sbi_core.plots._arrays import _label, _np, _thin
from sbi_core.plots.style import COLORS, _base_layout, _box_trace, _truth_trace, round_colors
from sbi_core.plots.zoom import _add_prior_inset, _zoom_ranges

__all__ = ["SMALL_MULTIPLES_TITLE", "posterior_figure", "pair_plot_figure", "small_multiples_figure"]

SMALL_MULTIPLES_TITLE = "Amortized posterior for each observation"


def _add_1d_references(fig: go.Figure, i: int, bounds, truth) -> None:
    """On a histogram of parameter ``i``: the true value (``truth (D,)`` or None) as a red line and
    the prior's range (``bounds (D, 2)`` or None) as dashed grey lines, each with a legend entry."""
    if truth is not None:
        fig.add_vline(x=float(truth[i]), line=dict(color=COLORS["truth"], width=2.5))
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="true parameter",
                                 line=dict(color=COLORS["truth"], width=2.5)))
    if bounds is not None:
        for v in bounds[i]:
            fig.add_vline(x=float(v), line=dict(color=COLORS["prior"], dash="dash", width=1.5))
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="prior range",
                                 line=dict(color=COLORS["prior"], dash="dash", width=1.5)))


def _cloud_1d(arrays, labels, i, bounds, truth, title, height, names) -> go.Figure:
    colors = round_colors(len(arrays))
    fig = go.Figure()
    for k, a in enumerate(arrays):
        fig.add_trace(go.Histogram(
            x=a[:, i], name=names[k], marker_color=colors[k], opacity=0.6,
            histnorm="probability density", nbinsx=40,
        ))
    _add_1d_references(fig, i, bounds, truth)
    _base_layout(fig, title, height, legend="right", barmode="overlay")
    fig.update_xaxes(title=dict(text=_label(labels, i)))
    fig.update_yaxes(title=dict(text="density"))
    # a narrow posterior on the prior's whole range is a sliver: fit the axis to the samples, as a
    # cloud does (:func:`_zoom_ranges`), and say the prior's range in words under the legend
    xr, _, zoomed = _zoom_ranges([a for a in arrays if len(a)], bounds, i, i, truth)
    if zoomed:
        lo, hi = (float(v) for v in bounds[i])
        fig.update_xaxes(range=xr)
        fig.add_annotation(text=f"zoomed: the prior's range<br>is {lo:.3g} to {hi:.3g}", xref="paper",
                           yref="paper", x=1.02, y=0.55, xanchor="left", yanchor="top", showarrow=False,
                           align="left", font=dict(size=11, color=COLORS["prior"]))
    return fig


def posterior_figure(
    samples,
    i: int = 0,
    j: int = 1,
    labels: Optional[Sequence[str]] = None,
    bounds=None,
    true_theta=None,
    title: str = "Posterior at the chosen observation",
    name: str = "posterior samples",
    max_points: int = 2000,
    height: int = 520,
) -> go.Figure:
    """One posterior over parameters ``i``, ``j``: a cloud with marginal histograms.

    ``samples``: ``(m, D)``. One parameter gives a single histogram.
    """
    a = _np(samples, 2)
    truth = None if true_theta is None else _np(true_theta).reshape(-1)
    b = None if bounds is None else _np(bounds).reshape(-1, 2)
    color = round_colors(1)[0]
    if a.shape[1] == 1 or i == j:
        return _cloud_1d([a], labels, i, b, truth, title, height, [name])
    xt, yt = _label(labels, i), _label(labels, j)
    xr, yr, zoomed = _zoom_ranges([a], b, i, j, truth)
    pts = _thin(a, max_points)
    # main cloud on (x, y); its marginals on (x2, y2) above and (x3, y3) to the right
    data = [
        go.Scatter(
            x=pts[:, i], y=pts[:, j], mode="markers", name=name,
            marker=dict(color=color, size=4, opacity=0.55),
            hovertemplate=f"{xt}: %{{x:.3g}}<br>{yt}: %{{y:.3g}}<extra></extra>",
        ),
        go.Histogram(x=a[:, i], marker_color=color, showlegend=False, nbinsx=50, name=f"{xt} marginal",
                     xaxis="x2", yaxis="y2"),
        go.Histogram(y=a[:, j], marker_color=color, showlegend=False, nbinsy=50, name=f"{yt} marginal",
                     xaxis="x3", yaxis="y3"),
    ]
    if b is not None:
        data.append(_box_trace(b, i, j))
    if truth is not None:
        data.append(_truth_trace(float(truth[i]), float(truth[j])))
    fig = go.Figure(data=data, layout=dict(
        xaxis=dict(domain=[0, 0.8], anchor="y", range=xr, title=dict(text=xt)),
        yaxis=dict(domain=[0, 0.78], anchor="x", range=yr, title=dict(text=yt)),
        xaxis2=dict(domain=[0, 0.8], anchor="y2", matches="x", showticklabels=False),
        yaxis2=dict(domain=[0.8, 1.0], anchor="x2", nticks=3, title=dict(text="count", font=dict(size=11))),
        xaxis3=dict(domain=[0.82, 1.0], anchor="y3", nticks=3, title=dict(text="count", font=dict(size=11))),
        yaxis3=dict(domain=[0, 0.78], anchor="x3", matches="y", showticklabels=False),
    ))
    _base_layout(fig, title, height, hovermode="closest", bargap=0.05)
    if zoomed:  # the empty corner above the right-hand marginal
        _add_prior_inset(fig, b, i, j, xr, yr, domain_x=[0.88, 1.0], domain_y=[0.85, 0.96],
                         note="shaded: the part<br>of the prior shown")
    return fig


def _pair_diagonal(fig: go.Figure, a: np.ndarray, c: int, labs: list, color: str, t) -> None:
    """Diagonal panel ``c`` of the pair plot: the histogram of ``a (m, D)``'s column ``c``, and
    the true value (``t (D,)`` or None) as a line."""
    fig.add_trace(go.Histogram(
        x=a[:, c], marker_color=color, nbinsx=30, name=f"{labs[c]} marginal", showlegend=False,
        hovertemplate=f"{labs[c]}: %{{x}}<br>%{{y}} samples<extra></extra>",
    ), row=c + 1, col=c + 1)
    if t is not None:
        fig.add_vline(x=float(t[c]), line=dict(color=COLORS["truth"], width=2), row=c + 1, col=c + 1)


def _pair_cloud(fig: go.Figure, pts: np.ndarray, r: int, c: int, labs: list, color: str, t, name: str) -> None:
    """Panel (``r``, ``c``) below the diagonal: thinned samples ``pts (m, D)``, column ``c`` against
    ``r``, and the true parameter (``t (D,)`` or None) as a star; the first panel carries the legend."""
    first = r == 1 and c == 0
    fig.add_trace(go.Scatter(
        x=pts[:, c], y=pts[:, r], mode="markers", name=name, legendgroup="samples",
        showlegend=first, marker=dict(color=color, size=3, opacity=0.45),
        hovertemplate=f"{labs[c]}: %{{x:.3g}}<br>{labs[r]}: %{{y:.3g}}<extra></extra>",
    ), row=r + 1, col=c + 1)
    if t is not None:
        tr = _truth_trace(float(t[c]), float(t[r]))
        tr.update(showlegend=first, legendgroup="truth",
                  marker=dict(size=12 if len(labs) <= 4 else 9))
        fig.add_trace(tr, row=r + 1, col=c + 1)


def _pair_axes(fig: go.Figure, d: int) -> None:
    """Pair-plot axes for ``d`` parameters: no grid, no counts on the diagonal, no upper triangle."""
    fig.update_xaxes(showgrid=False)
    fig.update_yaxes(showgrid=False)
    for r in range(1, d):  # a diagonal histogram's counts would sit on the panel to its left
        fig.update_yaxes(showticklabels=False, ticks="", row=r + 1, col=r + 1)
    for r in range(d):  # hide the empty upper triangle
        for c in range(r + 1, d):
            fig.update_xaxes(visible=False, row=r + 1, col=c + 1)
            fig.update_yaxes(visible=False, row=r + 1, col=c + 1)


def pair_plot_figure(
    samples,
    labels: Optional[Sequence[str]] = None,
    true_theta=None,
    title: str = "Pair plot",
    name: str = "posterior samples",
    max_points: int = 1000,
    height: Optional[int] = None,
) -> go.Figure:
    """Scatter matrix of ``samples (m, D)``: histograms on the diagonal, pairs below it.

    Plain SVG subplots (no WebGL), so it draws in every browser; zoom and hover
    work per panel.
    """
    a = _np(samples, 2)
    d = a.shape[1]
    labs = [_label(labels, k) for k in range(d)]
    t = None if true_theta is None else _np(true_theta).reshape(-1)
    pts = _thin(a, max(150, min(max_points, 3000 // max(1, d * (d - 1) // 2))))
    color = round_colors(1)[0]
    fig = make_subplots(rows=d, cols=d, shared_xaxes=True, horizontal_spacing=0.03 if d > 3 else 0.07,
                        vertical_spacing=0.03 if d > 3 else 0.05)
    for r in range(d):
        for c in range(r + 1):
            if r == c:
                _pair_diagonal(fig, a, c, labs, color, t)
            else:
                _pair_cloud(fig, pts, r, c, labs, color, t, name)
            if r == d - 1:
                fig.update_xaxes(title=dict(text=labs[c]), row=r + 1, col=c + 1)
            if c == 0 and r > 0:
                fig.update_yaxes(title=dict(text=labs[r]), row=r + 1, col=c + 1)
    if d == 1:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=name,
                                 marker=dict(color=color, size=8)))
        fig.update_yaxes(title=dict(text="samples"), row=1, col=1)
    h = height or int(min(1000, max(420, 150 * d + 120)))
    _base_layout(fig, title, h, hovermode="closest", bargap=0.05)
    _pair_axes(fig, d)
    return fig


def small_multiples_figure(samples: list, titles: list, i: int, j: int, labels, bounds,
                           title: str = SMALL_MULTIPLES_TITLE, columns: int = 4,
                           name: str = "posterior samples", color: Optional[str] = None) -> go.Figure:
    """One panel per set of samples (an observation, a round): a cloud over parameters ``i``, ``j``
    (a histogram of parameter ``i`` when there is one parameter). ``samples``: list of
    ``(m, D)`` arrays, or ``None`` where sampling failed; ``bounds``: ``(D, 2)``; ``name``:
    what the points are, for the legend."""
    n = len(samples)
    cols = max(1, min(columns, n))
    rows = max(1, math.ceil(n / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.06,
                        vertical_spacing=min(0.12, 0.35 / rows) if rows > 1 else 0.1)
    color = color or round_colors(1)[0]
    b = np.asarray(bounds, dtype=float).reshape(-1, 2)
    one_d = b.shape[0] == 1 or i == j
    for k, a in enumerate(samples):
        r, c = k // cols + 1, k % cols + 1
        if a is None or len(a) == 0:
            fig.add_annotation(text="no samples", showarrow=False, x=0.5, y=0.5, xref="x domain",
                               yref="y domain", row=r, col=c, font=dict(color="#868E96"))
            continue
        if one_d:
            fig.add_trace(go.Histogram(x=a[:, i], marker_color=color, nbinsx=30, showlegend=k == 0,
                                       name=name), row=r, col=c)
        else:
            fig.add_trace(go.Scatter(
                x=a[:, i], y=a[:, j], mode="markers", marker=dict(color=color, size=3, opacity=0.45),
                name=name, legendgroup="samples", showlegend=k == 0,
                hovertemplate=f"{_label(labels, i)}: %{{x:.3g}}<br>{_label(labels, j)}: %{{y:.3g}}<extra></extra>",
            ), row=r, col=c)
            fig.update_yaxes(range=list(b[j]), row=r, col=c)
        fig.update_xaxes(range=list(b[i]), row=r, col=c)
    for k in range(max(0, n - cols), n):  # the lowest panel of each column names the x-axis
        fig.update_xaxes(title=dict(text=_label(labels, i), font=dict(size=11)), row=k // cols + 1,
                         col=k % cols + 1)
    fig.update_yaxes(title=dict(text="samples" if one_d else _label(labels, j), font=dict(size=11)), col=1)

    fig.update_annotations(font=dict(size=12))
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left", font=dict(size=16)), height=80 + 250 * rows,
        margin=dict(l=60, r=20, t=90, b=50), plot_bgcolor="white", hovermode="closest",
        # above the two-line panel titles
        legend=dict(orientation="h", yanchor="bottom", y=1.0 + 0.24 / rows, xanchor="right", x=1),
    )
    fig.update_xaxes(showgrid=True, gridcolor=COLORS["grid"], showline=True, linecolor="#ADB5BD")
    fig.update_yaxes(showgrid=True, gridcolor=COLORS["grid"], showline=True, linecolor="#ADB5BD")
    return fig

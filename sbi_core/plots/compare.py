"""The Compare page's figures: each method's final posterior side by side on shared axes, and the
"C2ST against simulations" curve.

Shared axes are the point of the side-by-side clouds: every panel gets the same
x- and y-range (computed once over all the clouds, the prior's box and the true
parameter, zoomed as the other cloud figures zoom, :mod:`.zoom`), so a tighter
cloud *looks* tighter. One parameter gives histograms on a shared x-range.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sbi_core.plots._arrays import _label, _np, _thin
from sbi_core.plots.style import COLORS, _base_layout, _box_trace, _empty, _truth_trace
from sbi_core.plots.zoom import _zoom_ranges

__all__ = ["COMPARE_CLOUDS_TITLE", "COMPARE_C2ST_TITLE", "compare_clouds_figure", "compare_c2st_figure",
           "method_colors"]

COMPARE_CLOUDS_TITLE = "Each method's final posterior, on the same axes"
COMPARE_C2ST_TITLE = "C2ST against simulations: how close to the exact posterior"
_PALETTE = ("#3B5BDB", "#F08C00", "#2B8A3E", "#AE3EC9", "#0C8599", "#E8590C", "#5C940D", "#C2255C")


def method_colors(n: int) -> list[str]:
    """``n`` distinct colours, one per run of a comparison (the same in both figures)."""
    return [_PALETTE[k % len(_PALETTE)] for k in range(max(0, n))]


def _shared_ranges(arrays: list[np.ndarray], bounds: Optional[np.ndarray], i: int, j: int,
                   truth: Optional[np.ndarray]) -> tuple[list[float], list[float]]:
    """One x- and one y-range for every panel (the zoom rule of :func:`~.zoom._zoom_ranges`)."""
    filled = [a for a in arrays if a is not None and len(a)]
    xr, yr, _ = _zoom_ranges(filled, bounds, i, j, truth)
    return xr, yr


def compare_clouds_figure(
    samples: Sequence[Optional[np.ndarray]],
    titles: Sequence[str],
    i: int = 0,
    j: int = 1,
    labels: Optional[Sequence[str]] = None,
    bounds=None,
    true_theta=None,
    notes: Optional[Sequence[str]] = None,
    title: str = COMPARE_CLOUDS_TITLE,
    columns: int = 3,
    max_points: int = 1000,
) -> go.Figure:
    """One panel per run: its final samples ``(m, D)`` (``None``/empty: "no samples yet", or
    ``notes[k]``) over parameters ``i``, ``j``, all panels on the same ranges; the prior's box
    ``bounds (D, 2)`` and the true parameter ``true_theta (D,)`` (or None) in every panel.

    Traces: per drawn panel one cloud (named ``titles[k]``), then its box and star; the
    legend lists the kinds of mark once.
    """
    arrays = [None if a is None or len(a) == 0 else _np(a, 2) for a in samples]
    n = max(1, len(arrays))
    cols = max(1, min(columns, n))
    rows = math.ceil(n / cols)
    b = None if bounds is None else _np(bounds).reshape(-1, 2)
    t = None if true_theta is None else _np(true_theta).reshape(-1)
    dim = next((a.shape[1] for a in arrays if a is not None), b.shape[0] if b is not None else 2)
    one_d = dim == 1 or i == j
    xt, yt = _label(labels, i), _label(labels, j)
    colors = method_colors(len(arrays))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles) or [""], horizontal_spacing=0.05,
                        vertical_spacing=min(0.14, 0.4 / rows) if rows > 1 else 0.1)
    xr, yr = _shared_ranges(arrays, b, i, i if one_d else j, t)
    shown: set = set()
    for k, a in enumerate(arrays):
        r, c = k // cols + 1, k % cols + 1
        if a is None:
            note = notes[k] if notes is not None and k < len(notes) and notes[k] else "no samples yet"
            fig.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="x domain", yref="y domain",
                               row=r, col=c, font=dict(size=13, color="#868E96"))
        elif one_d:
            fig.add_trace(go.Histogram(x=a[:, i], name=str(titles[k]), marker_color=colors[k], nbinsx=40,
                                       histnorm="probability density", showlegend=False), row=r, col=c)
        else:
            pts = _thin(a, max_points)
            fig.add_trace(go.Scatter(
                x=pts[:, i], y=pts[:, j], mode="markers", name=str(titles[k]), showlegend=False,
                marker=dict(color=colors[k], size=4, opacity=0.5),
                hovertemplate=f"{titles[k]}<br>{xt}: %{{x:.3g}}<br>{yt}: %{{y:.3g}}<extra></extra>",
            ), row=r, col=c)
        _panel_marks(fig, r, c, b, t, i, j, one_d, shown)
        fig.update_xaxes(range=xr, row=r, col=c)
        if not one_d:
            fig.update_yaxes(range=yr, row=r, col=c)
    for k in range(max(0, n - cols), n):  # the lowest panel of each column names the x-axis
        fig.update_xaxes(title=dict(text=xt), row=k // cols + 1, col=k % cols + 1)
    fig.update_yaxes(title=dict(text="density" if one_d else yt), col=1)
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="posterior samples (one panel per method)",
                             marker=dict(color="#495057", size=8), hoverinfo="skip"))
    _base_layout(fig, title, 150 + 330 * rows, legend="bottom", hovermode="closest", bargap=0.05)
    fig.update_layout(legend=dict(y=-0.12 / rows - 0.08), margin=dict(t=105))
    fig.update_annotations(selector=dict(xref="paper"), font=dict(size=13))
    return fig


def _panel_marks(fig: go.Figure, r: int, c: int, b, t, i: int, j: int, one_d: bool, shown: set) -> None:
    """The prior's range and the true parameter in panel (``r``, ``c``); each named in the legend once."""
    if one_d:
        if t is not None and math.isfinite(float(t[i])):
            fig.add_vline(x=float(t[i]), line=dict(color=COLORS["truth"], width=2.5), row=r, col=c)
        return
    if b is not None:
        box = _box_trace(b, i, j)
        box.update(showlegend="box" not in shown, legendgroup="box")
        fig.add_trace(box, row=r, col=c)
        shown.add("box")
    if t is not None:
        star = _truth_trace(float(t[i]), float(t[j]))
        star.update(showlegend="truth" not in shown, legendgroup="truth")
        fig.add_trace(star, row=r, col=c)
        shown.add("truth")


def compare_c2st_figure(
    curves: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    title: str = COMPARE_C2ST_TITLE,
    colors: Optional[Sequence[str]] = None,
    height: int = 420,
) -> go.Figure:
    """C2ST accuracy against cumulative simulations, one line per run.

    ``curves``: ``(name, simulations (R,), c2st (R,))`` per run, a point per round
    (one point for a one-round run). 0.5 is the goal; the band 0.5-0.6 is "close".
    ``colors``: one per curve (default :func:`method_colors`).
    """
    if not curves or all(len(x) == 0 for _, x, _ in curves):
        return _empty(title, "No C2ST yet: it appears when a round finishes.", height,
                      "simulations used", "C2ST accuracy")
    colors = list(colors) if colors is not None else method_colors(len(curves))
    fig = go.Figure()
    fig.add_hrect(y0=0.5, y1=0.6, fillcolor="rgba(43, 138, 62, 0.12)", line_width=0, layer="below")
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="close (0.5 to 0.6)", hoverinfo="skip",
                             marker=dict(symbol="square", size=12, color="rgba(43, 138, 62, 0.25)")))
    top = 0.5
    for k, (name, xs, ys) in enumerate(curves):
        x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        if not len(x):
            continue
        top = max(top, float(np.nanmax(y)))
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="lines+markers", name=str(name), line=dict(color=colors[k % len(colors)], width=2.5),
            marker=dict(size=10), hovertemplate=f"{name}<br>%{{x:,}} simulations: C2ST %{{y:.2f}}<extra></extra>",
        ))
    _base_layout(fig, title, height, legend="right")
    fig.update_xaxes(title_text="simulations used (cumulative, after each round)", rangemode="tozero",
                     tickformat=",d")
    fig.update_yaxes(title_text="C2ST accuracy (0.5 = indistinguishable)", range=[0.45, max(1.02, top + 0.02)])
    return fig

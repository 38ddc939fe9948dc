"""Round-by-round posterior figures: every finished round's cloud in one picture, and the animation.

Rounds go from light to dark (the latest darkest); the prior's plotting box is
a dashed grey rectangle and the true parameter a red star. One parameter gives
overlaid histograms instead of clouds. When the clouds cover only a small part
of the prior's box, the axes zoom to them and an inset shows the whole box
(:mod:`.zoom`).

The animation redraws every frame (``redraw=True``): a plotly scatter
*transition* without a redraw moves the points it has but never removes any,
so a frame that empties the later rounds' traces would leave their points on
screen.
"""

from __future__ import annotations

from typing import Optional, Sequence

import plotly.graph_objects as go

from ._arrays import _label, _np, _thin
from .clouds import _cloud_1d
from .style import COLORS, _base_layout, _box_trace, _empty, _truth_trace, round_colors
from .zoom import _add_prior_inset, _zoom_ranges

__all__ = ["CLOUD_TITLE", "ANIMATION_TITLE", "posterior_rounds_figure", "rounds_animation_figure"]

# Stable titles: browser tests find the charts by them.
CLOUD_TITLE = "Posterior after each round"
ANIMATION_TITLE = "Posterior round by round"


def posterior_rounds_figure(
    samples_by_round: Sequence,
    i: int = 0,
    j: int = 1,
    labels: Optional[Sequence[str]] = None,
    bounds=None,
    true_theta=None,
    title: str = CLOUD_TITLE,
    max_points: int = 800,
    height: int = 440,
) -> go.Figure:
    """All finished rounds' posterior samples over parameters ``i`` (x) and ``j`` (y).

    ``samples_by_round``: one ``(m, D)`` array per round. ``bounds``: ``(D, 2)``
    prior plotting box. ``true_theta``: ``(D,)`` or None. One parameter
    (``D == 1`` or ``i == j``) gives overlaid histograms.
    """
    arrays = [_np(a, 2) for a in samples_by_round]
    truth = None if true_theta is None else _np(true_theta).reshape(-1)
    b = None if bounds is None else _np(bounds).reshape(-1, 2)
    xt, yt = _label(labels, i), _label(labels, j)
    if not arrays:
        return _empty(title, "The first posterior cloud appears when round 1 ends.", height, xt, yt)
    dim = arrays[0].shape[1]
    names = [f"round {k + 1}" for k in range(len(arrays))]
    if dim == 1 or i == j:
        return _cloud_1d(arrays, labels, i, b, truth, title, height, names)
    colors = round_colors(len(arrays))
    fig = go.Figure()
    if b is not None:
        fig.add_trace(_box_trace(b, i, j))
    for k, a in enumerate(arrays):
        a = _thin(a, max_points)
        last = k == len(arrays) - 1
        fig.add_trace(go.Scatter(
            x=a[:, i], y=a[:, j], mode="markers", name=names[k],
            marker=dict(color=colors[k], size=5 if last else 4, opacity=0.85 if last else 0.5),
            hovertemplate=f"{names[k]}<br>{xt}: %{{x:.3g}}<br>{yt}: %{{y:.3g}}<extra></extra>",
        ))
    if truth is not None:
        fig.add_trace(_truth_trace(float(truth[i]), float(truth[j])))
    _base_layout(fig, title, height, legend="right", hovermode="closest")
    _fit_axes(fig, arrays, b, i, j, truth, xt, yt)
    return fig


def _fit_axes(fig: go.Figure, arrays, b, i: int, j: int, truth, xt: str, yt: str) -> None:
    """Axis titles and ranges; zoomed to the clouds, with the prior inset, when they are small."""
    xr, yr, zoomed = _zoom_ranges(arrays, b, i, j, truth)
    fig.update_layout(xaxis=dict(title=dict(text=xt), range=xr), yaxis=dict(title=dict(text=yt), range=yr))
    if zoomed:
        fig.update_layout(xaxis=dict(domain=[0, 0.76]), legend=dict(x=0.8, xanchor="left"))
        _add_prior_inset(fig, b, i, j, xr, yr, domain_x=[0.8, 1.0], domain_y=[0.0, 0.3])


def rounds_animation_figure(
    samples_by_round: Sequence,
    i: int = 0,
    j: int = 1,
    labels: Optional[Sequence[str]] = None,
    bounds=None,
    true_theta=None,
    title: str = ANIMATION_TITLE,
    max_points: int = 800,
    frame_ms: int = 900,
    height: int = 560,
) -> go.Figure:
    """Animated posterior clouds: frame ``r`` draws rounds 1..r only (earlier ones faded), never later ones.

    Has **Play** / **Pause** buttons and a round slider; it opens on the last
    round, so the still picture tells the whole story. Axes are fixed across
    frames (the prior box and every round's samples, zoomed when the clouds are
    small), so the cloud shrinks in place. Every frame is redrawn (see the
    module docstring).
    """
    arrays = [_np(a, 2) for a in samples_by_round]
    truth = None if true_theta is None else _np(true_theta).reshape(-1)
    b = None if bounds is None else _np(bounds).reshape(-1, 2)
    xt, yt = _label(labels, i), _label(labels, j)
    if not arrays:
        return _empty(title, "No finished round yet.", height, xt, yt)
    n = len(arrays)
    one_d = arrays[0].shape[1] == 1 or i == j
    colors = round_colors(n)
    names = [f"round {k + 1}" for k in range(n)]
    thin = [_thin(a, max_points) for a in arrays]

    def round_trace(k: int, upto: int):
        visible = k <= upto
        current = k == upto
        opacity = 0.85 if current else 0.35
        if one_d:
            return go.Histogram(
                x=thin[k][:, i] if visible else [], name=names[k], marker_color=colors[k],
                opacity=0.75 if current else 0.25, histnorm="probability density", nbinsx=40,
            )
        return go.Scatter(
            x=thin[k][:, i] if visible else [], y=thin[k][:, j] if visible else [], mode="markers",
            name=names[k], marker=dict(color=colors[k], size=5 if current else 4, opacity=opacity),
            hovertemplate=f"{names[k]}<br>{xt}: %{{x:.3g}}<br>{yt}: %{{y:.3g}}<extra></extra>",
        )

    last = n - 1
    fig = go.Figure(data=[round_trace(k, last) for k in range(n)])
    if one_d:
        if truth is not None:
            fig.add_vline(x=float(truth[i]), line=dict(color=COLORS["truth"], width=2.5))
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="true parameter",
                                     line=dict(color=COLORS["truth"], width=2.5)))
        if b is not None:
            for v in b[i]:
                fig.add_vline(x=float(v), line=dict(color=COLORS["prior"], dash="dash", width=1.5))
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="prior range",
                                     line=dict(color=COLORS["prior"], dash="dash", width=1.5)))
    else:
        if b is not None:
            fig.add_trace(_box_trace(b, i, j))
        if truth is not None:
            fig.add_trace(_truth_trace(float(truth[i]), float(truth[j])))
    fig.frames = [
        go.Frame(data=[round_trace(k, r) for k in range(n)], traces=list(range(n)), name=str(r + 1))
        for r in range(n)
    ]
    # redraw=True on every frame: without it plotly keeps the emptied rounds' points on screen
    play = dict(frame=dict(duration=frame_ms, redraw=True), transition=dict(duration=0),
                fromcurrent=False, mode="immediate")
    pause = dict(frame=dict(duration=0, redraw=False), transition=dict(duration=0), mode="immediate")
    fig.update_layout(
        # the buttons sit left of the slider, which is padded by their width in pixels (not a share
        # of the plot's width), so they never cover its label on a narrow screen
        updatemenus=[dict(
            type="buttons", direction="left", showactive=False, x=0, xanchor="left", y=-0.17,
            yanchor="top", pad=dict(r=8, t=0),
            buttons=[
                dict(label="Play", method="animate", args=[None, play]),
                dict(label="Pause", method="animate", args=[[None], pause]),
            ],
        )],
        sliders=[dict(
            active=last, x=0, len=1.0, y=-0.12, yanchor="top", pad=dict(t=10, b=0, l=140, r=10),
            currentvalue=dict(prefix="Showing up to round ", font=dict(size=13)),
            steps=[
                dict(label=str(r + 1), method="animate",
                     args=[[str(r + 1)], dict(frame=dict(duration=0, redraw=True), mode="immediate",
                                              transition=dict(duration=0))])
                for r in range(n)
            ],
        )],
    )
    _base_layout(fig, title, height, legend="right", hovermode="closest")
    fig.update_layout(margin=dict(l=60, r=20, t=60, b=160))
    if one_d:
        fig.update_layout(barmode="overlay")
        fig.update_xaxes(title=dict(text=xt))
        fig.update_yaxes(title=dict(text="density"))
    else:
        _fit_axes(fig, arrays, b, i, j, truth, xt, yt)
    return fig

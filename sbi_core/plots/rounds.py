"""Round-by-round posterior figures: every finished round's cloud in one picture, and the animation.

Rounds go from light to dark, green to dark purple (the latest darkest, drawn on top); the prior's plotting box is
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

from dataclasses import dataclass
from typing import Optional, Sequence

import plotly.graph_objects as go

from sbi_core.plots._arrays import _label, _np, _thin
from sbi_core.plots.clouds import _add_1d_references, _cloud_1d
from sbi_core.plots.style import _base_layout, _box_trace, _empty, _truth_trace, round_colors
from sbi_core.plots.zoom import _add_prior_inset, _zoom_ranges

__all__ = ["CLOUD_TITLE", "ANIMATION_TITLE", "posterior_rounds_figure", "rounds_animation_figure"]

# Stable titles: browser tests find the charts by them.
CLOUD_TITLE = "Posterior after each round"
ANIMATION_TITLE = "Posterior round by round"


def _round_inputs(samples_by_round: Sequence, labels, bounds, true_theta, i: int, j: int):
    """Normalise the round figures' inputs.

    Returns ``(arrays, truth, b, xt, yt)``: one ``(m, D)`` array per round, ``truth (D,)`` or
    None, the plotting box ``b (D, 2)`` or None, and the two axis titles.
    """
    arrays = [_np(a, 2) for a in samples_by_round]
    truth = None if true_theta is None else _np(true_theta).reshape(-1)
    b = None if bounds is None else _np(bounds).reshape(-1, 2)
    return arrays, truth, b, _label(labels, i), _label(labels, j)


def _round_scatter(a, i: int, j: int, name: str, color: str, current: bool, faded_opacity: float,
                   xt: str, yt: str) -> go.Scatter:
    """One round's cloud: columns ``i``, ``j`` of ``a (m, D)`` (or empty lists), larger and more opaque
    when it is the ``current`` round. Earlier rounds keep a thin white rim, so where a later cloud
    is drawn over them each of their points still stands out."""
    return go.Scatter(
        x=a[:, i] if a is not None else [], y=a[:, j] if a is not None else [], mode="markers",
        name=name, marker=dict(color=color, size=6 if current else 5,
                               opacity=0.9 if current else faded_opacity,
                               line=dict(width=0 if current else 0.5, color="white")),
        hovertemplate=f"{name}<br>{xt}: %{{x:.3g}}<br>{yt}: %{{y:.3g}}<extra></extra>",
    )



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
    arrays, truth, b, xt, yt = _round_inputs(samples_by_round, labels, bounds, true_theta, i, j)
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
        fig.add_trace(_round_scatter(_thin(a, max_points), i, j, names[k], colors[k], k == len(arrays) - 1, 0.7,
                                     xt, yt))
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


@dataclass
class _RoundTraces:
    """The animation's per-round traces: ``thin`` holds one thinned ``(m, D)`` array per round."""

    thin: list
    i: int
    j: int
    xt: str
    yt: str
    one_d: bool

    def __post_init__(self) -> None:
        self.colors = round_colors(len(self.thin))
        self.names = [f"round {k + 1}" for k in range(len(self.thin))]

    def trace(self, k: int, upto: int):
        """Round ``k``'s trace in the frame that shows rounds up to ``upto`` (later rounds are empty)."""
        visible = k <= upto
        current = k == upto
        if self.one_d:
            return go.Histogram(
                x=self.thin[k][:, self.i] if visible else [], name=self.names[k], marker_color=self.colors[k],
                opacity=0.75 if current else 0.25, histnorm="probability density", nbinsx=40,
            )
        return _round_scatter(self.thin[k] if visible else None, self.i, self.j, self.names[k], self.colors[k],
                              current, 0.6, self.xt, self.yt)

    def frame(self, upto: int) -> list:
        """Every round's trace in the frame that shows rounds up to ``upto``."""
        return [self.trace(k, upto) for k in range(len(self.thin))]


def _animation_controls(n: int, frame_ms: int) -> dict:
    """The layout's Play / Pause buttons and round slider for ``n`` frames (opening on the last)."""
    # redraw=True on every frame: without it plotly keeps the emptied rounds' points on screen
    play = dict(frame=dict(duration=frame_ms, redraw=True), transition=dict(duration=0),
                fromcurrent=False, mode="immediate")
    pause = dict(frame=dict(duration=0, redraw=False), transition=dict(duration=0), mode="immediate")
    return dict(
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
            active=n - 1, x=0, len=1.0, y=-0.12, yanchor="top", pad=dict(t=10, b=0, l=140, r=10),
            currentvalue=dict(prefix="Showing up to round ", font=dict(size=13)),
            steps=[
                dict(label=str(r + 1), method="animate",
                     args=[[str(r + 1)], dict(frame=dict(duration=0, redraw=True), mode="immediate",
                                              transition=dict(duration=0))])
                for r in range(n)
            ],
        )],
    )


def _add_references(fig: go.Figure, one_d: bool, b, truth, i: int, j: int) -> None:
    """The prior's box / range (``b (D, 2)`` or None) and the true parameter (``truth (D,)`` or None)."""
    if one_d:
        _add_1d_references(fig, i, b, truth)
        return
    if b is not None:
        fig.add_trace(_box_trace(b, i, j))
    if truth is not None:
        fig.add_trace(_truth_trace(float(truth[i]), float(truth[j])))


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
    arrays, truth, b, xt, yt = _round_inputs(samples_by_round, labels, bounds, true_theta, i, j)
    if not arrays:
        return _empty(title, "No finished round yet.", height, xt, yt)
    n = len(arrays)
    one_d = arrays[0].shape[1] == 1 or i == j
    traces = _RoundTraces([_thin(a, max_points) for a in arrays], i, j, xt, yt, one_d)
    fig = go.Figure(data=traces.frame(n - 1))
    _add_references(fig, one_d, b, truth, i, j)
    fig.frames = [go.Frame(data=traces.frame(r), traces=list(range(n)), name=str(r + 1)) for r in range(n)]
    fig.update_layout(**_animation_controls(n, frame_ms))
    _base_layout(fig, title, height, legend="right", hovermode="closest")
    fig.update_layout(margin=dict(l=60, r=20, t=60, b=160))
    if one_d:
        fig.update_layout(barmode="overlay")
        fig.update_xaxes(title=dict(text=xt))
        fig.update_yaxes(title=dict(text="density"))
    else:
        _fit_axes(fig, arrays, b, i, j, truth, xt, yt)
    return fig

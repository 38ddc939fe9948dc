"""The Home page overview: two panels contrasting amortized and sequential inference.

Left: simulations at prior draws and several observations' posteriors from one
network; right: one observation's posterior round by round, light to dark.
"""

from __future__ import annotations

from typing import Optional, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sbi_core.plots._arrays import _label, _np, _thin
from sbi_core.plots.style import _base_layout, _box_trace, _truth_trace, round_colors

__all__ = ["overview_figure"]


def overview_figure(
    prior_samples,
    amortized: Sequence[tuple[str, object]],
    sequential: Sequence[tuple[str, object]],
    bounds,
    labels: Optional[Sequence[str]] = None,
    true_theta=None,
    title: str = "From prior to posterior: amortized and sequential inference",
    height: int = 470,
) -> go.Figure:
    """Two panels over the first two parameters.

    Left (amortized): ``prior_samples`` -- where simulations are made -- and
    ``amortized``: ``[(name, samples)]`` posteriors for several observations,
    all answered by one trained network. Right (sequential): ``sequential``:
    ``[(name, samples)]`` round by round at one observation, light to dark.
    """
    b = _np(bounds).reshape(-1, 2)
    xt, yt = _label(labels, 0), _label(labels, 1)
    fig = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.11,
        subplot_titles=(
            "<b>Amortized (NPE)</b>: simulate on the prior once,<br>then answer any observation",
            "<b>Sequential (SNPE)</b>: each round simulates<br>where the current posterior points",
        ),
    )
    p = _thin(_np(prior_samples, 2), 600)
    fig.add_trace(go.Scatter(x=p[:, 0], y=p[:, 1], mode="markers", name="simulations at prior draws",
                               marker=dict(color="#ADB5BD", size=4, opacity=0.55), legendgroup="prior"),
                  row=1, col=1)
    palette = ["#F08C00", "#2B8A3E", "#AE3EC9", "#1971C2"]
    _add_clouds(fig, amortized, [palette[k % len(palette)] for k in range(len(amortized))], 0.75, col=1)
    _add_clouds(fig, sequential, round_colors(len(sequential)), 0.7, col=2)
    for col in (1, 2):
        box = _box_trace(b, 0, 1)
        box.update(showlegend=col == 1, legendgroup="box")
        fig.add_trace(box, row=1, col=col)
    if true_theta is not None:
        t = _np(true_theta).reshape(-1)
        tr = _truth_trace(float(t[0]), float(t[1]))
        fig.add_trace(tr, row=1, col=2)
    _base_layout(fig, title, height, legend="right", hovermode="closest")
    fig.update_layout(
        legend=dict(orientation="v", yanchor="middle", y=0.5, xanchor="left", x=1.02, font=dict(size=12),
                    itemsizing="constant"),
        margin=dict(l=55, r=15, t=100, b=50),
    )
    fig.update_annotations(font=dict(size=13))
    _box_axes(fig, b, xt, yt)
    return fig


def _add_clouds(fig: go.Figure, named_samples: Sequence[tuple[str, object]], colors: Sequence[str],
                opacity: float, col: int) -> None:
    """One cloud per ``(name, samples (m, D))`` over the first two parameters, in panel ``col``."""
    for k, (name, s) in enumerate(named_samples):
        s = _thin(_np(s, 2), 500)
        fig.add_trace(go.Scatter(x=s[:, 0], y=s[:, 1], mode="markers", name=name,
                                 marker=dict(color=colors[k], size=4, opacity=opacity)),
                      row=1, col=col)


def _box_axes(fig: go.Figure, b, xt: str, yt: str) -> None:
    """Both panels' axes: titled, and ranging over the plotting box ``b (D, 2)`` plus 5% each side."""
    pad = 0.05 * (b[:, 1] - b[:, 0])
    for col in (1, 2):
        fig.update_xaxes(title=dict(text=xt), range=[b[0, 0] - pad[0], b[0, 1] + pad[0]], row=1, col=col)
        fig.update_yaxes(title=dict(text=yt), range=[b[1, 0] - pad[1], b[1, 1] + pad[1]], row=1, col=col)

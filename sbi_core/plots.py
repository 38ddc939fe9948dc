"""Figure builders for the dashboard: arrays in, ``plotly.graph_objects.Figure`` out.

Every builder is a pure function of its arguments (numpy arrays, tensors or
plain lists; no store, no session, no Streamlit), so a notebook draws the same
pictures the app shows. Each figure has a title, axis titles that name the
parameter or observation (with units where the caller passes labels such as
``Simulator.param_labels()``), and a legend entry for every kind of mark.

Conventions (one look across the app):

* rounds go from light to dark (:func:`round_colors`), the latest round darkest;
* the prior's plotting box is a dashed grey rectangle, the true parameter a red
  star, the observation red;
* training loss is indigo, validation loss orange, the best epoch (where early
  stopping restores the network) a pink star.

:func:`corner_png` is the one matplotlib builder: it renders a ``corner`` plot
to PNG bytes (object-oriented matplotlib, no global pyplot state).
"""

from __future__ import annotations

import io
import math
from typing import Mapping, Optional, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

__all__ = [
    "COLORS",
    "round_colors",
    "loss_figure",
    "posterior_rounds_figure",
    "rounds_animation_figure",
    "posterior_figure",
    "pair_plot_figure",
    "marginal_figure",
    "simulations_figure",
    "predictive_figure",
    "overview_figure",
    "corner_png",
    "LOSS_TITLE",
    "CLOUD_TITLE",
    "ANIMATION_TITLE",
]

COLORS = {
    "primary": "#3B5BDB",
    "train": "#3B5BDB",
    "val": "#F08C00",
    "best": "#D6336C",
    "truth": "#E03131",
    "observation": "#E03131",
    "prior": "#868E96",
    "sims": "#748FFC",
    "grid": "#E9ECEF",
    "text": "#1B1F2A",
}

# Stable titles: browser tests find the charts by them.
LOSS_TITLE = "Training and validation loss"
CLOUD_TITLE = "Posterior after each round"
ANIMATION_TITLE = "Posterior round by round"

_FONT = dict(family="Source Sans Pro, Helvetica, Arial, sans-serif", size=13, color=COLORS["text"])


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _np(a, ndim: int | None = None) -> np.ndarray:
    """Float numpy array from a tensor / list / array (``ndim`` 2 reshapes to (n, d))."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    out = np.asarray(a, dtype=float)
    if ndim == 2 and out.ndim == 1:
        out = out.reshape(-1, 1)
    return out


def round_colors(n: int) -> list[str]:
    """``n`` colours from light to dark blue (round 1 lightest, round ``n`` darkest)."""
    if n <= 0:
        return []
    if n == 1:
        return sample_colorscale("Blues", [0.85])
    return sample_colorscale("Blues", list(np.linspace(0.45, 1.0, n)))


def _label(labels: Optional[Sequence[str]], i: int, prefix: str = "theta") -> str:
    if labels is not None and i < len(labels):
        return str(labels[i])
    return f"{prefix}{i + 1}"


def _legend(where: str) -> dict:
    """Legend placement: "top" (a row above the plot), "right" (a column beside it) or
    "inside" (top-right corner of the plot, on a white card)."""
    if where == "right":
        return dict(orientation="v", yanchor="top", y=1.0, xanchor="left", x=1.02, bgcolor="rgba(0,0,0,0)",
                    itemsizing="constant")
    if where == "bottom":
        return dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0, bgcolor="rgba(0,0,0,0)",
                    itemsizing="constant")
    if where == "inside":
        return dict(orientation="v", yanchor="top", y=0.99, xanchor="right", x=0.99,
                    bgcolor="rgba(255,255,255,0.85)", bordercolor="#DEE2E6", borderwidth=1,
                    itemsizing="constant")
    return dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0, bgcolor="rgba(0,0,0,0)",
                itemsizing="constant")


def _base_layout(fig: go.Figure, title: str, height: int, legend: str = "top", **kw) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left", y=0.98, yanchor="top", font=dict(size=16)),
        height=height,
        margin=dict(l=60, r=20, t=90 if legend == "top" else 55, b=110 if legend == "bottom" else 55),
        font=_FONT,
        legend=_legend(legend),
        plot_bgcolor="white",
        **kw,
    )
    fig.update_xaxes(showgrid=True, gridcolor=COLORS["grid"], zeroline=False, showline=True, linecolor="#ADB5BD")
    fig.update_yaxes(showgrid=True, gridcolor=COLORS["grid"], zeroline=False, showline=True, linecolor="#ADB5BD")
    return fig


def _empty(title: str, message: str, height: int, xtitle: str = "", ytitle: str = "") -> go.Figure:
    fig = go.Figure()
    _base_layout(fig, title, height)
    fig.add_annotation(
        text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
        font=dict(size=14, color="#868E96"),
    )
    fig.update_xaxes(title=dict(text=xtitle), showticklabels=False)
    fig.update_yaxes(title=dict(text=ytitle), showticklabels=False)
    return fig


def _thin(samples: np.ndarray, max_points: int) -> np.ndarray:
    """At most ``max_points`` rows, evenly spaced (deterministic)."""
    if len(samples) <= max_points:
        return samples
    idx = np.linspace(0, len(samples) - 1, max_points).astype(int)
    return samples[idx]


def _box_trace(bounds: np.ndarray, i: int, j: int, name: str = "prior range") -> go.Scatter:
    x0, x1 = bounds[i]
    y0, y1 = bounds[j]
    return go.Scatter(
        x=[x0, x1, x1, x0, x0], y=[y0, y0, y1, y1, y0], mode="lines", name=name,
        line=dict(color=COLORS["prior"], dash="dash", width=1.5), hoverinfo="skip",
    )


def _truth_trace(x: float, y: float, name: str = "true parameter") -> go.Scatter:
    return go.Scatter(
        x=[x], y=[y], mode="markers", name=name,
        marker=dict(symbol="star", size=17, color=COLORS["truth"], line=dict(color="white", width=1.5)),
        hovertemplate=f"{name}: (%{{x:.3g}}, %{{y:.3g}})<extra></extra>",
    )


def _ranges(arrays: Sequence[np.ndarray], bounds: Optional[np.ndarray], i: int, j: int,
            truth: Optional[np.ndarray]) -> tuple[list[float], list[float]]:
    """Axis ranges covering the prior box, the samples' central 99.8 % and the truth."""
    out = []
    for k in (i, j):
        lo, hi = math.inf, -math.inf
        if bounds is not None:
            lo, hi = float(bounds[k][0]), float(bounds[k][1])
        for a in arrays:
            if len(a):
                col = a[:, k][np.isfinite(a[:, k])]
                if len(col):
                    lo = min(lo, float(np.quantile(col, 0.001)))
                    hi = max(hi, float(np.quantile(col, 0.999)))
        if truth is not None and np.isfinite(truth[k]):
            lo, hi = min(lo, float(truth[k])), max(hi, float(truth[k]))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            lo, hi = -1.0, 1.0
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        pad = 0.04 * (hi - lo)
        out.append([lo - pad, hi + pad])
    return out[0], out[1]


# ---------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------
def loss_figure(
    round_index: Sequence[int],
    epoch: Sequence[int],
    train_loss: Sequence[float],
    val_loss: Sequence[float],
    best_epochs: Optional[Mapping[int, int]] = None,
    title: str = LOSS_TITLE,
    height: int = 440,
) -> go.Figure:
    """Loss per epoch on one continuous x-axis across rounds, round boundaries marked.

    Args:
        round_index, epoch, train_loss, val_loss: one entry per epoch event
            (``round`` 0-based, ``epoch`` 1-based within its round).
        best_epochs: ``{round: best epoch (1-based)}`` -- the early-stopping
            point, drawn as a star on the validation curve.
    """
    r = np.asarray(round_index, dtype=int)
    e = np.asarray(epoch, dtype=int)
    tr, va = _np(train_loss), _np(val_loss)
    xtitle = "epoch (counted across all rounds)"
    ytitle = "loss (lower is better)"
    if len(r) == 0:
        return _empty(title, "Waiting for the first epoch...", height, xtitle, ytitle)
    order = np.lexsort((e, r))
    r, e, tr, va = r[order], e[order], tr[order], va[order]
    rounds = list(dict.fromkeys(r.tolist()))
    # continuous x: each round starts where the previous one ended
    offset, start_of = 0, {}
    x = np.empty(len(r), dtype=float)
    for rd in rounds:
        m = r == rd
        start_of[rd] = offset
        x[m] = offset + e[m]
        offset += int(e[m].max())
    xs_t, ys_t, xs_v, ys_v, hover = [], [], [], [], []
    for rd in rounds:
        m = r == rd
        xs_t += x[m].tolist() + [None]
        ys_t += tr[m].tolist() + [None]
        xs_v += x[m].tolist() + [None]
        ys_v += va[m].tolist() + [None]
        hover += [f"round {rd + 1}, epoch {k}" for k in e[m]] + [""]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=xs_t, y=ys_t, mode="lines", name="training loss", line=dict(color=COLORS["train"], width=2),
        text=hover, hovertemplate="%{text}<br>training loss %{y:.4g}<extra></extra>",
    ))
    fig.add_trace(go.Scatter(
        x=xs_v, y=ys_v, mode="lines", name="validation loss", line=dict(color=COLORS["val"], width=2),
        text=hover, hovertemplate="%{text}<br>validation loss %{y:.4g}<extra></extra>",
    ))
    if best_epochs:
        bx, by, bt = [], [], []
        for rd, be in best_epochs.items():
            m = (r == int(rd)) & (e == int(be))
            if m.any():
                k = int(np.flatnonzero(m)[0])
                bx.append(x[k])
                by.append(va[k])
                bt.append(f"round {int(rd) + 1}: best epoch {int(be)}")
        if bx:
            fig.add_trace(go.Scatter(
                x=bx, y=by, mode="markers", name="best epoch (early stopping)", text=bt,
                marker=dict(symbol="star", size=15, color=COLORS["best"], line=dict(color="white", width=1)),
                hovertemplate="%{text}<br>validation loss %{y:.4g}<extra></extra>",
            ))
    if len(rounds) > 1 or rounds[0] > 0:
        for rd in rounds:
            if start_of[rd] > 0:
                fig.add_vline(x=start_of[rd] + 0.5, line=dict(color="#ADB5BD", dash="dot", width=1.5))
            fig.add_annotation(
                x=start_of[rd] + 0.5, y=1.0, yref="paper", xanchor="left", yanchor="top", showarrow=False,
                text=f"round {rd + 1}", font=dict(size=12, color="#495057"),
            )
    _base_layout(fig, title, height, legend="bottom", hovermode="closest")
    fig.update_xaxes(title=dict(text=xtitle), rangemode="tozero")
    fig.update_yaxes(title=dict(text=ytitle))
    return fig


# ---------------------------------------------------------------------------
# posterior clouds
# ---------------------------------------------------------------------------
def _cloud_1d(arrays, labels, i, bounds, truth, title, height, names) -> go.Figure:
    colors = round_colors(len(arrays))
    fig = go.Figure()
    for k, a in enumerate(arrays):
        fig.add_trace(go.Histogram(
            x=a[:, i], name=names[k], marker_color=colors[k], opacity=0.6,
            histnorm="probability density", nbinsx=40,
        ))
    if truth is not None:
        fig.add_vline(x=float(truth[i]), line=dict(color=COLORS["truth"], width=2.5))
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="true parameter",
                                 line=dict(color=COLORS["truth"], width=2.5)))
    if bounds is not None:
        for v in bounds[i]:
            fig.add_vline(x=float(v), line=dict(color=COLORS["prior"], dash="dash", width=1.5))
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="prior range",
                                 line=dict(color=COLORS["prior"], dash="dash", width=1.5)))
    _base_layout(fig, title, height, legend="right", barmode="overlay")
    fig.update_xaxes(title=dict(text=_label(labels, i)))
    fig.update_yaxes(title=dict(text="density"))
    return fig


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
    xr, yr = _ranges(arrays, b, i, j, truth)
    _base_layout(fig, title, height, legend="right", hovermode="closest")
    fig.update_xaxes(title=dict(text=xt), range=xr)
    fig.update_yaxes(title=dict(text=yt), range=yr)
    return fig


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
    """Animated posterior clouds: frame ``r`` shows rounds 1..r (earlier ones faded).

    Has **Play** / **Pause** buttons and a round slider; it opens on the last
    round, so the still picture tells the whole story. Axes are fixed to the
    prior box and every round's samples, so the cloud shrinks in place.
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
    play = dict(frame=dict(duration=frame_ms, redraw=one_d), transition=dict(duration=300),
                fromcurrent=False, mode="immediate")
    pause = dict(frame=dict(duration=0, redraw=False), transition=dict(duration=0), mode="immediate")
    fig.update_layout(
        updatemenus=[dict(
            type="buttons", direction="left", showactive=False, x=0, xanchor="left", y=-0.17,
            yanchor="top", pad=dict(r=8, t=0),
            buttons=[
                dict(label="Play", method="animate", args=[None, play]),
                dict(label="Pause", method="animate", args=[[None], pause]),
            ],
        )],
        sliders=[dict(
            active=last, x=0.2, len=0.8, y=-0.12, yanchor="top", pad=dict(t=10, b=0),
            currentvalue=dict(prefix="Showing up to round ", font=dict(size=13)),
            steps=[
                dict(label=str(r + 1), method="animate",
                     args=[[str(r + 1)], dict(frame=dict(duration=0, redraw=one_d), mode="immediate",
                                              transition=dict(duration=200))])
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
        xr, yr = _ranges(arrays, b, i, j, truth)
        fig.update_xaxes(title=dict(text=xt), range=xr)
        fig.update_yaxes(title=dict(text=yt), range=yr)
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
    xr, yr = _ranges([a], b, i, j, truth)
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
        yaxis2=dict(domain=[0.8, 1.0], anchor="x2", showticklabels=False),
        xaxis3=dict(domain=[0.82, 1.0], anchor="y3", showticklabels=False),
        yaxis3=dict(domain=[0, 0.78], anchor="x3", matches="y", showticklabels=False),
    ))
    _base_layout(fig, title, height, hovermode="closest", bargap=0.05)
    return fig


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
                fig.add_trace(go.Histogram(
                    x=a[:, c], marker_color=color, nbinsx=30, name=f"{labs[c]} marginal", showlegend=False,
                    hovertemplate=f"{labs[c]}: %{{x}}<br>%{{y}} samples<extra></extra>",
                ), row=r + 1, col=c + 1)
                if t is not None:
                    fig.add_vline(x=float(t[c]), line=dict(color=COLORS["truth"], width=2), row=r + 1, col=c + 1)
            else:
                fig.add_trace(go.Scatter(
                    x=pts[:, c], y=pts[:, r], mode="markers", name=name, legendgroup="samples",
                    showlegend=(r == 1 and c == 0), marker=dict(color=color, size=3, opacity=0.45),
                    hovertemplate=f"{labs[c]}: %{{x:.3g}}<br>{labs[r]}: %{{y:.3g}}<extra></extra>",
                ), row=r + 1, col=c + 1)
                if t is not None:
                    tr = _truth_trace(float(t[c]), float(t[r]))
                    tr.update(showlegend=(r == 1 and c == 0), legendgroup="truth",
                              marker=dict(size=12 if d <= 4 else 9))
                    fig.add_trace(tr, row=r + 1, col=c + 1)
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
    fig.update_xaxes(showgrid=False)
    fig.update_yaxes(showgrid=False)
    for r in range(d):  # hide the empty upper triangle
        for c in range(r + 1, d):
            fig.update_xaxes(visible=False, row=r + 1, col=c + 1)
            fig.update_yaxes(visible=False, row=r + 1, col=c + 1)
    return fig


# ---------------------------------------------------------------------------
# model page
# ---------------------------------------------------------------------------
def marginal_figure(marginal, label: Optional[str] = None, title: Optional[str] = None,
                    height: int = 200, points: int = 240) -> go.Figure:
    """Density of one prior marginal (:class:`sbi_core.priors.Marginal`) over its plotting range."""
    import torch

    lab = label or marginal.name
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
    _base_layout(fig, ttl, height, showlegend=True)
    fig.update_layout(margin=dict(l=50, r=10, t=60, b=40), title=dict(font=dict(size=13)),
                      legend=dict(font=dict(size=11), y=1.0, yanchor="bottom", x=1, xanchor="right"))
    fig.update_xaxes(title=dict(text=lab, font=dict(size=12)))
    fig.update_yaxes(title=dict(text=ytitle, font=dict(size=12)), rangemode="tozero")
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


# ---------------------------------------------------------------------------
# explore
# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
# home
# ---------------------------------------------------------------------------
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
    for k, (name, s) in enumerate(amortized):
        s = _thin(_np(s, 2), 500)
        fig.add_trace(go.Scatter(x=s[:, 0], y=s[:, 1], mode="markers", name=name,
                                   marker=dict(color=palette[k % len(palette)], size=4, opacity=0.75)),
                      row=1, col=1)
    colors = round_colors(len(sequential))
    for k, (name, s) in enumerate(sequential):
        s = _thin(_np(s, 2), 500)
        fig.add_trace(go.Scatter(x=s[:, 0], y=s[:, 1], mode="markers", name=name,
                                   marker=dict(color=colors[k], size=4, opacity=0.7)),
                      row=1, col=2)
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
    pad = 0.05 * (b[:, 1] - b[:, 0])
    for col in (1, 2):
        fig.update_xaxes(title=dict(text=xt), range=[b[0, 0] - pad[0], b[0, 1] + pad[0]], row=1, col=col)
        fig.update_yaxes(title=dict(text=yt), range=[b[1, 0] - pad[1], b[1, 1] + pad[1]], row=1, col=col)
    return fig


# ---------------------------------------------------------------------------
# corner (matplotlib)
# ---------------------------------------------------------------------------
def corner_png(
    samples,
    labels: Optional[Sequence[str]] = None,
    true_theta=None,
    title: Optional[str] = None,
    color: str = "#1C3D8F",
    dpi: int = 110,
) -> bytes:
    """A ``corner`` plot of ``samples (m, D)`` as PNG bytes (truths in red when given)."""
    import corner
    from matplotlib.figure import Figure

    a = _np(samples, 2)
    a = a[np.isfinite(a).all(1)]
    d = a.shape[1]
    labs = [_label(labels, k) for k in range(d)]
    # corner cannot draw a constant column (a fixed parameter): nudge it by a hair
    span = a.max(0) - a.min(0) if len(a) else np.ones(d)
    const = span <= 0
    if const.any():
        a = a.copy()
        a[:, const] += np.linspace(-1e-6, 1e-6, len(a))[:, None]
    size = max(3.2, min(2.4 * d, 14.0))
    fig = Figure(figsize=(size, size), dpi=dpi)
    fig.subplots(d, d)
    truths = None if true_theta is None else _np(true_theta).reshape(-1).tolist()
    corner.corner(
        a, labels=labs, truths=truths if d > 1 else None, truth_color=COLORS["truth"], color=color, fig=fig,
        show_titles=True, title_fmt=".3g", quantiles=[0.16, 0.5, 0.84],
        plot_datapoints=len(a) <= 5000, fill_contours=True, smooth=0.8,
        label_kwargs=dict(fontsize=11), title_kwargs=dict(fontsize=10),
    )
    if truths is not None and d == 1:  # corner cannot draw truths in 1-D
        fig.axes[0].axvline(truths[0], color=COLORS["truth"])
    if title:
        fig.suptitle(title, fontsize=13, y=1.0 + 0.12 / d)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    return buf.getvalue()

"""Trust at one observation: the misspecification test's components and the local P–P plot of L-C2ST.

* :func:`misspecification_figure` -- how far each number of the observation lies from what the
  model simulates, in the model's own typical spreads (``|z|``), most responsible first; bars in
  red where that number alone is already unusual (its own conformal p-value below ``alpha``).
* :func:`lc2st_pp_figure` -- L-C2ST's local P–P plot (Linhart et al. 2023,
  https://arxiv.org/abs/2306.03580): the empirical CDF of the classifier's predicted
  probabilities ``d(theta, x_o)`` over posterior draws at ``x_o``. A posterior that is right at
  ``x_o`` leaves the classifier unable to tell its draws from the truth, so every probability is
  close to 0.5 and the CDF steps up near 0.5 inside the band the null classifiers (trained where
  the posterior is right by construction) draw; a CDF outside the band means the classifier tells
  them apart: the posterior is wrong at ``x_o``.
* :func:`ensemble_figure` -- the ensemble's members (the run's estimator and others trained with
  other seeds) side by side: one panel per parameter, each member's marginal posterior density at
  ``x_o`` as a line (a Gaussian kernel density estimate with Silverman's bandwidth,
  ``h = 0.9 min(sd, IQR / 1.34) S^{-1/5}``); the run's own in the app's blue, the others dashed;
  a parameter the members disagree on is named so in its panel's title.
"""

from __future__ import annotations

from typing import Optional, Sequence

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sbi_core.plots._arrays import _label, _np, _text
from sbi_core.plots.style import COLORS, _base_layout, _empty

__all__ = ["MISSPECIFICATION_TITLE", "LC2ST_TITLE", "ENSEMBLE_TITLE", "misspecification_figure", "lc2st_pp_figure",
           "ensemble_figure"]

MISSPECIFICATION_TITLE = "Could the model have made your data?"
LC2ST_TITLE = "Local P-P plot at your observation (L-C2ST)"
ENSEMBLE_TITLE = "Estimators trained with other seeds, at your observation"
_MEMBER_COLORS = ("#F08C00", "#2B8A3E", "#AE3EC9", "#E03131", "#1098AD")  # the others; the run's own is primary
_GRID = 200  # points per density line
_BAND_FILL = "rgba(134, 142, 150, 0.22)"
_UNUSUAL = "#E03131"
_USUAL = "#3B5BDB"


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    _base_layout(fig, title, height, legend="bottom")
    fig.update_layout(legend=dict(yref="container", y=0.01, yanchor="bottom"), margin=dict(l=60, r=20, t=55, b=110))
    return fig


def misspecification_figure(features: Sequence[dict], p_value: float, alpha: float = 0.05, top: int = 10,
                            title: str = MISSPECIFICATION_TITLE) -> go.Figure:
    """Bars of ``|z|`` for the ``top`` most responsible components of the observation, the farthest on top.

    features: the ``features`` of :func:`sbi_core.check_misspecification` (most responsible
        first), each with ``label``, ``value``, ``z`` (the observation's number standardised by the
        model's simulations) and ``marginal_p_value`` (that number alone, against the model's).
    p_value: the test's p-value for the whole observation (in the subtitle).
    """
    rows = [f for f in features if isinstance(f, dict) and np.isfinite(f.get("z", np.nan))][:max(1, int(top))]
    if not rows:
        return _empty(title, "No components to draw.", 360)
    rows = sorted(rows, key=lambda f: abs(float(f["z"])))  # the farthest on top of a horizontal bar chart
    labels = [_text(f.get("label", f.get("index", ""))) for f in rows]  # names the user chose: as text
    z = np.abs(np.array([float(f["z"]) for f in rows]))
    unusual = [float(f.get("marginal_p_value", 1.0)) < alpha for f in rows]
    fig = go.Figure()
    for flag, name, color in ((True, f"unusual on its own (p < {alpha:g})", _UNUSUAL),
                              (False, "usual on its own", _USUAL)):
        idx = [i for i, u in enumerate(unusual) if u == flag]
        fig.add_trace(go.Bar(
            x=z[idx], y=[labels[i] for i in idx], orientation="h", name=name, marker_color=color,
            text=[f"{z[i]:.1f}" for i in idx], textposition="outside", cliponaxis=False,
            customdata=[[rows[i].get("value"), rows[i].get("marginal_p_value")] for i in idx],
            hovertemplate="%{y}: your value %{customdata[0]:.4g}, %{x:.2f} typical spreads from the model's "
                          "simulations<br>alone: p = %{customdata[1]:.3f}<extra></extra>",
        ))
    fig.add_vline(x=2, line=dict(color=COLORS["prior"], dash="dot", width=1.5))
    _layout(fig, title, max(320, 150 + 34 * len(rows)))
    fig.update_layout(barmode="overlay", bargap=0.35, yaxis=dict(categoryorder="array", categoryarray=labels))
    fig.update_xaxes(title_text=f"|z|: distance in the model's typical spreads (whole observation: p = {p_value:.3g})",
                     rangemode="tozero", range=[0, max(3.0, float(z.max()) * 1.18)])
    return fig


def lc2st_pp_figure(levels, cdf, null_low, null_high, p_value: Optional[float] = None,
                    title: str = LC2ST_TITLE) -> go.Figure:
    """The local P–P plot: ``cdf (A,)`` of the predicted probabilities at ``levels (A,)`` in ``[0, 1]``,
    with the null classifiers' band ``[null_low, null_high]`` (each ``(A,)``)."""
    a, c = _np(levels).reshape(-1), _np(cdf).reshape(-1)
    lo, hi = _np(null_low).reshape(-1), _np(null_high).reshape(-1)
    if len(a) == 0 or len(c) != len(a):
        return _empty(title, "No local P–P curve to draw.", 420)
    fig = go.Figure()
    if len(lo) == len(a) and len(hi) == len(a):
        fig.add_trace(go.Scatter(x=np.concatenate([a, a[::-1]]), y=np.concatenate([hi, lo[::-1]]), fill="toself",
                                 mode="lines", line=dict(width=0), fillcolor=_BAND_FILL,
                                 name="where a right posterior's curve falls (null classifiers)", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[0, 0.5, 0.5, 1], y=[0, 0, 1, 1], mode="lines",
                             name="exactly right (every probability 0.5)",
                             line=dict(color=COLORS["prior"], dash="dash", width=1.2), hoverinfo="skip"))
    name = "your posterior at x_o" + ("" if p_value is None else f" (p = {p_value:.3g})")
    fig.add_trace(go.Scatter(x=a, y=c, mode="lines", name=name, line=dict(color=COLORS["primary"], width=2.5),
                             hovertemplate="probability ≤ %{x:.2f}: %{y:.0%} of the draws<extra></extra>"))
    _layout(fig, title, 440)
    fig.update_xaxes(title_text="classifier's probability that a draw is the truth", range=[0, 1])
    fig.update_yaxes(title_text="share of posterior draws (CDF)", range=[0, 1], tickformat=".0%")
    return fig


def _density(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """A Gaussian kernel density estimate of ``values (S,)`` on ``grid (G,)``, Silverman's bandwidth."""
    v = values[np.isfinite(values)]
    if len(v) < 2:
        return np.zeros_like(grid)
    iqr = float(np.subtract(*np.percentile(v, [75, 25])))
    spread = min(float(v.std(ddof=1)), iqr / 1.34) or float(v.std(ddof=1)) or 1e-3 * (abs(float(v.mean())) + 1.0)
    h = 0.9 * spread * len(v) ** (-0.2)
    z = (grid[:, None] - v[None, :]) / h
    return np.exp(-0.5 * z * z).sum(1) / (len(v) * h * math.sqrt(2 * math.pi))


def ensemble_figure(draws, member, labels: Optional[Sequence[str]] = None,
                    disagree: Optional[Sequence[bool]] = None, seeds: Optional[Sequence[int]] = None,
                    title: str = ENSEMBLE_TITLE, columns: int = 3) -> go.Figure:
    """The members' marginal posteriors at ``x_o``, one panel per parameter.

    draws: ``(M, D)`` every member's draws, stacked; member: ``(M,)`` which member drew each row
        (0: the run's own estimator, 1 .. K-1: the others).
    labels: ``D`` parameter names (passed to plotly as text); disagree: ``D`` flags, the
        parameters the members disagree on; seeds: ``K`` training seeds, for the legend.
    """
    a, who = _np(draws, ndim=2), np.asarray(member).reshape(-1).astype(int)
    if a.size == 0 or len(who) != len(a):
        return _empty(title, "No draws to compare.", 360)
    d, ks = a.shape[1], sorted(set(who.tolist()))
    cols = max(1, min(columns, d))
    rows = math.ceil(d / cols)
    flags = list(disagree) if disagree is not None and len(disagree) == d else [False] * d
    titles = [_label(labels, i) + (" · they disagree" if flags[i] else "") for i in range(d)]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.07,
                        vertical_spacing=0.16 / max(1, rows - 1) if rows > 1 else 0.0)
    for i in range(d):
        col = a[:, i]
        finite = col[np.isfinite(col)]
        lo, hi = (np.percentile(finite, [0.5, 99.5]) if len(finite) else (0.0, 1.0))
        pad = 0.1 * (hi - lo) or 0.5
        grid = np.linspace(lo - pad, hi + pad, _GRID)
        for k in ks:
            own = k == 0
            seed = f", seed {seeds[k]}" if seeds is not None and k < len(seeds) else ""
            name = f"your run's estimator{seed}" if own else f"estimator {k + 1}{seed}"
            fig.add_trace(go.Scatter(
                x=grid, y=_density(col[who == k], grid), mode="lines", name=name, legendgroup=f"m{k}",
                showlegend=i == 0,
                line=dict(color=COLORS["primary"] if own else _MEMBER_COLORS[(k - 1) % len(_MEMBER_COLORS)],
                          width=2.6 if own else 1.8, dash="solid" if own else "dash"),
                hovertemplate=f"{name}<br>{_label(labels, i)} = %{{x:.3g}}: density %{{y:.3g}}<extra></extra>",
            ), row=i // cols + 1, col=i % cols + 1)
        fig.update_xaxes(title=dict(text=_label(labels, i), font=dict(size=11)), row=i // cols + 1,
                         col=i % cols + 1)
    _layout(fig, title, 150 + 260 * rows)
    fig.update_yaxes(title=dict(text="posterior density", font=dict(size=11)), col=1)
    fig.update_yaxes(rangemode="tozero")
    fig.update_annotations(font=dict(size=12))
    return fig

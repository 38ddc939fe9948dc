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
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go

from sbi_core.plots._arrays import _np, _text
from sbi_core.plots.style import COLORS, _base_layout, _empty

__all__ = ["MISSPECIFICATION_TITLE", "LC2ST_TITLE", "misspecification_figure", "lc2st_pp_figure"]

MISSPECIFICATION_TITLE = "Could the model have made your data?"
LC2ST_TITLE = "Local P-P plot at your observation (L-C2ST)"
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

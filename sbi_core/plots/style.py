"""The shared look of every figure: colours, fonts, legend placement and the common marks.

Nothing here draws a whole figure. It holds the palette (:data:`COLORS`,
:func:`round_colors`: rounds light to dark, green to dark purple), the base layout every builder
applies (title, font, white background, light grid, legend placement), the
placeholder figure shown before there is data, and the two marks several
figures share: the prior's dashed plotting box and the true parameter's red star.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

# The underscored helpers are package-private: the sibling modules import them by name.
__all__ = ["COLORS", "round_colors", "scaled_fonts"]

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

_FONT = dict(family="Source Sans Pro, Helvetica, Arial, sans-serif", size=13, color=COLORS["text"])


def round_colors(n: int) -> list[str]:
    """``n`` colours from light to dark (round 1 lightest, round ``n`` darkest); one round: the app's blue.

    Several rounds run along viridis from green to dark purple (its yellow end left out: pale on
    white). Each step changes hue as well as lightness, so round 1 stays visible next to the last
    round and one round is told from the next without a legend lookup, also by colour-blind
    readers; pale blues on white (the old scale) made the earlier rounds near invisible."""
    if n <= 0:
        return []
    if n == 1:
        return sample_colorscale("Blues", [0.85])
    return sample_colorscale("Viridis", list(np.linspace(0.8, 0.0, n)))


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


def _scale_fonts(node, factor: float):
    """``node`` (a layout's plain JSON) with every ``font.size`` / ``tickfont.size`` multiplied by ``factor``."""
    if isinstance(node, list):
        return [_scale_fonts(v, factor) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k in ("font", "tickfont") and isinstance(v, dict) and isinstance(v.get("size"), (int, float)):
            v = {**v, "size": v["size"] * factor}
        out[k] = _scale_fonts(v, factor)
    return out


def scaled_fonts(fig: go.Figure, factor: float = 1.4) -> go.Figure:
    """A copy of ``fig`` with all its text ``factor`` times larger (projector mode): the global font, titles,
    ticks, legends and annotations, and the top margin and height grown to hold them."""
    out = go.Figure(fig)
    layout = _scale_fonts(out.layout.to_plotly_json(), factor)
    layout.setdefault("font", {}).setdefault("size", 12 * factor)  # plotly's default is 12
    margin = layout.get("margin") or {}
    if isinstance(margin.get("t"), (int, float)):
        margin["t"] = margin["t"] * factor
    layout["margin"] = margin
    if isinstance(layout.get("height"), (int, float)):
        layout["height"] = layout["height"] * min(factor, 1.25)
    out.update_layout(layout)
    return out

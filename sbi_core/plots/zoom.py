"""Zooming a posterior cloud: axis ranges that fit the cloud, and an inset that keeps the prior in view.

A narrow posterior drawn on the prior's whole box is a blob nobody can read.
:func:`_zoom_ranges` fits each axis to the samples instead whenever they span
less than :data:`ZOOM_BELOW` of the prior's range on it (otherwise the whole
box is shown, as before); :func:`_add_prior_inset` then draws a small panel with
the prior's whole box and, as a solid rectangle, the part of it the main panel
shows, so the reader still sees how much of the prior is left.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go

from sbi_core.plots._arrays import _ranges
from sbi_core.plots.style import COLORS

# Package-private helpers for the cloud builders.
__all__: list[str] = []

ZOOM_BELOW = 0.6  # zoom an axis when the samples span less than this share of the prior's range
INSET_AXES = ("x9", "y9")  # axis ids of the inset (no builder uses that many subplots)


def _zoom_ranges(arrays: Sequence[np.ndarray], bounds: Optional[np.ndarray], i: int, j: int,
                 truth: Optional[np.ndarray]) -> tuple[list[float], list[float], bool]:
    """``(x range, y range, zoomed)``: the samples' central 99.8 % and the truth, padded; an axis
    on which they cover most of the prior's box keeps the whole box."""
    full_x, full_y = _ranges(arrays, bounds, i, j, truth)
    if bounds is None:
        return full_x, full_y, False
    fit_x, fit_y = _ranges(arrays, None, i, j, truth)
    out, zoomed = [], False
    for k, full, fit in ((i, full_x, fit_x), (j, full_y, fit_y)):
        box = float(bounds[k][1] - bounds[k][0])
        span = fit[1] - fit[0]
        if math.isfinite(box) and box > 0 and span < ZOOM_BELOW * box:
            pad = 0.06 * span
            out.append([fit[0] - pad, fit[1] + pad])
            zoomed = True
        else:
            out.append(full)
    return out[0], out[1], zoomed


def _add_prior_inset(fig: go.Figure, bounds: np.ndarray, i: int, j: int, xr: Sequence[float],
                     yr: Sequence[float], domain_x: Sequence[float], domain_y: Sequence[float],
                     note: str = "zoomed: the shaded part<br>of the prior's range") -> None:
    """A small panel at ``domain_x`` x ``domain_y`` (paper coordinates): the prior's whole box
    (dashed) and the window ``xr`` x ``yr`` that the main panel shows (solid), under ``note``."""
    (x0, x1), (y0, y1) = bounds[i], bounds[j]
    ax, ay = INSET_AXES
    fig.add_trace(go.Scatter(
        x=[x0, x1, x1, x0, x0], y=[y0, y0, y1, y1, y0], mode="lines", xaxis=ax, yaxis=ay,
        line=dict(color=COLORS["prior"], dash="dash", width=1.2), showlegend=False, hoverinfo="skip",
        name="whole prior range",
    ))
    wx0, wx1 = max(xr[0], x0), min(xr[1], x1)
    wy0, wy1 = max(yr[0], y0), min(yr[1], y1)
    fig.add_trace(go.Scatter(
        x=[wx0, wx1, wx1, wx0, wx0], y=[wy0, wy0, wy1, wy1, wy0], mode="lines", xaxis=ax, yaxis=ay,
        fill="toself", fillcolor="rgba(59,91,219,0.18)", line=dict(color=COLORS["primary"], width=1.5),
        showlegend=False, hoverinfo="skip", name="zoomed view",
    ))
    px, py = 0.06 * (x1 - x0), 0.06 * (y1 - y0)
    axis = dict(showgrid=False, zeroline=False, showline=True, linecolor="#ADB5BD", ticks="",
                tickfont=dict(size=9, color="#868E96"), nticks=3, fixedrange=True)
    fig.update_layout(**{
        "xaxis9": dict(axis, domain=list(domain_x), anchor=ay, range=[x0 - px, x1 + px]),
        "yaxis9": dict(axis, domain=list(domain_y), anchor=ax, range=[y0 - py, y1 + py]),
    })
    fig.add_annotation(
        text=note, showarrow=False, xref="paper", yref="paper",
        x=domain_x[1], y=domain_y[1], xanchor="right", yanchor="bottom", align="right",
        font=dict(size=11, color="#495057"),
    )

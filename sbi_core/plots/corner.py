"""The corner plot: a ``corner`` (matplotlib) figure of posterior samples, rendered to PNG bytes.

The package's one matplotlib builder; it uses object-oriented matplotlib, so
no global pyplot state is touched. True parameters are drawn in red.

Each diagonal panel shades its parameter's 90 % highest-density interval(s)
(:func:`sbi_core.stats.concentration.hdr_intervals`) and names them in its title. A
"median +- quantiles" title would mislead for a posterior with two modes (two
moons'): its median falls in the empty gap between them and its quantile
range spans nearly the whole prior, although each mode is narrow.
"""

from __future__ import annotations

import io
from typing import Optional, Sequence

import numpy as np

from sbi_core.plots._arrays import _label, _np
from sbi_core.plots.style import COLORS
from sbi_core.stats.concentration import HDR_MASS, format_intervals, hdr_intervals

__all__ = ["corner_png"]


def corner_png(
    samples,
    labels: Optional[Sequence[str]] = None,
    true_theta=None,
    title: Optional[str] = None,
    color: str = "#1C3D8F",
    dpi: int = 110,
) -> bytes:
    """A ``corner`` plot of ``samples (m, D)`` as PNG bytes (truths in red when given), each
    marginal titled and shaded with its 90 % highest-density interval(s)."""
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
        show_titles=False, plot_datapoints=len(a) <= 5000, fill_contours=True, smooth=0.8,
        label_kwargs=dict(fontsize=11),
    )
    lines = 1
    for k in range(d):
        ax = fig.axes[k * d + k]
        intervals = [] if const[k] else hdr_intervals(a[:, k], HDR_MASS)
        for lo, hi in intervals:
            ax.axvspan(lo, hi, color=color, alpha=0.12, lw=0)
        text = f"{labs[k]}: fixed at {a[0, k]:.3g}" if const[k] else _marginal_title(labs[k], intervals)
        ax.set_title(text, fontsize=9)
        lines = max(lines, text.count("\n") + 1)
    if truths is not None and d == 1:  # corner cannot draw truths in 1-D
        fig.axes[0].axvline(truths[0], color=COLORS["truth"])
    if title:
        fig.suptitle(title, fontsize=13, y=1.0 + (11 * lines + 8) / (72 * size))  # above the panel titles
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def _marginal_title(label: str, intervals) -> str:
    """``"theta1, 90 % in\\n-0.94 to -0.48 or\\n0.37 to 0.95"``: one line per interval."""
    return f"{label}, {HDR_MASS * 100:.0f} % in\n" + format_intervals(intervals).replace(" or ", " or\n")

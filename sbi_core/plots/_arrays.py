"""Input helpers shared by the figure builders (draws nothing).

Coerce tensors / lists to float arrays, name a parameter or observation
component when the caller gave no label, thin a sample cloud to a plottable
number of points, and choose axis ranges that cover the prior box, the samples
and the true parameter.
"""

from __future__ import annotations

import html
import math

from typing import Optional, Sequence

import numpy as np

# Package-private: the sibling modules import these helpers by name; nothing here is public.
__all__: list[str] = []


def _np(a, ndim: int | None = None) -> np.ndarray:
    """Float numpy array from a tensor / list / array (``ndim`` 2 reshapes to (n, d))."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    out = np.asarray(a, dtype=float)
    if ndim == 2 and out.ndim == 1:
        out = out.reshape(-1, 1)
    return out


def _text(value) -> str:
    """A name the user chose (a parameter, a CSV column) as plotly text: plotly reads a little HTML in
    titles, labels and hover text (links, styles), so ``&``, ``<`` and ``>`` become entities, which it
    shows as the characters (the same rule as :func:`sbi_ui.user_text.plot_text`)."""
    return html.escape(str(value), quote=False)


def _label(labels: Optional[Sequence[str]], i: int, prefix: str = "theta") -> str:
    """Label ``i`` of ``labels`` as plotly text (:func:`_text`), or ``"theta3"`` when there is none."""
    if labels is not None and i < len(labels):
        return _text(labels[i])
    return f"{prefix}{i + 1}"


def _thin(samples: np.ndarray, max_points: int) -> np.ndarray:
    """At most ``max_points`` rows, evenly spaced (deterministic)."""
    if len(samples) <= max_points:
        return samples
    idx = np.linspace(0, len(samples) - 1, max_points).astype(int)
    return samples[idx]


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

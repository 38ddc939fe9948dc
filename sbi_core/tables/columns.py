"""Helping the user map a table: guess which columns are parameters and which data, and propose a prior."""

from __future__ import annotations

import math
import re
from typing import Sequence

import numpy as np

from sbi_core.tables.reading import _numeric

# ---------------------------------------------------------------------------
# helping the user map a table
# ---------------------------------------------------------------------------
_THETA_RE = re.compile(r"^(theta|param|parameter|p|th|t)[\s_\-\[\(]*\d*[\]\)]?$|^(theta|param)", re.I)
_X_RE = re.compile(r"^(x|obs|observation|y|data|out|output|s|summary|stat)[\s_\-\[\(]*\d*[\]\)]?$|^(obs|x_|y_)",
                   re.I)


_INDEXED_RE = re.compile(r"^(.*?)[\s_\-\[\(]*(\d+)[\]\)]?$")


def series_columns(columns: Sequence[str]) -> list[str]:
    """The columns that belong to a numbered series: two or more names sharing a prefix, with
    index suffixes that count up from 0 or 1 (``resp_0, resp_1, ...``, ``y[1], y[2]``).

    Such a series is almost always a simulator's output (a time course, a dose-response curve);
    a lone name that happens to end in digits (``ec50``) is not a series."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for c in columns:
        m = _INDEXED_RE.match(str(c))
        if m and m.group(1):
            groups.setdefault(m.group(1).lower(), []).append((int(m.group(2)), str(c)))
    series = set()
    for members in groups.values():
        idx = sorted(i for i, _ in members)
        if len(idx) >= 2 and idx[0] in (0, 1) and idx == list(range(idx[0], idx[0] + len(idx))):
            series.update(c for _, c in members)
    return [str(c) for c in columns if str(c) in series]


def guess_columns(df) -> tuple[list[str], list[str]]:
    """A first mapping of numeric columns, for the user to confirm: ``theta*``/``param*`` columns
    are parameters, ``x*``/``obs*``/``y*`` columns simulated data. Without such names, a numbered
    series (``resp_0 ... resp_9``, :func:`series_columns`) is the simulated data and the other
    columns before it the parameters (``ec50, hill, resp_0 ...``: parameters ``ec50, hill``);
    failing that, the first numeric column is the parameter and the rest the data."""
    numeric = [str(c) for c in df.columns if _numeric(df[c]).notna().mean() >= 0.5]
    theta = [c for c in numeric if _THETA_RE.match(c)]
    x = [c for c in numeric if c not in theta and _X_RE.match(c)]
    if theta and not x:
        x = [c for c in numeric if c not in theta]
    elif x and not theta:
        theta = [c for c in numeric if c not in x]
    elif not theta and not x:
        series = series_columns(numeric)
        first = numeric.index(series[0]) if series else 0
        theta = [c for c in numeric[:first] if c not in series]
        if theta:  # the named columns before the first series; everything after it is data
            x = [c for c in numeric if c not in theta]
        else:
            theta, x = numeric[:1], numeric[1:]
    return theta, x


def default_prior_spec(df, theta_columns: Sequence[str], widen: float = 0.05) -> list[dict]:
    """Uniform priors over each parameter column's range, widened by ``widen`` of it on each side."""
    spec = []
    for c in theta_columns:
        v = _numeric(df[c]).to_numpy(dtype=np.float64, na_value=np.nan)
        v = v[np.isfinite(v)]
        lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
        pad = (hi - lo) * widen if hi > lo else max(abs(lo) * 0.1, 1.0)
        lo, hi = _round_down(lo - pad), _round_up(hi + pad)
        spec.append({"name": str(c), "dist": "uniform", "low": lo, "high": hi})
    return spec


def _round_down(v: float) -> float:
    return _round(v, math.floor)


def _round_up(v: float) -> float:
    return _round(v, math.ceil)


def _round(v: float, fn) -> float:
    """Round to 3 significant digits in the given direction (readable prior bounds)."""
    if v == 0 or not math.isfinite(v):
        return float(v)
    scale = 10 ** (math.floor(math.log10(abs(v))) - 2)
    return float(fn(v / scale) * scale)

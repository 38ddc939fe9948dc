"""Figures of simulations that are not a handful of numbers: a series, an image or a set of repeated
trials (:class:`~sbi_core.stats.shapes.DataShape`).

Every simulation arrives *flat*, ``(N, K)``, and the shape folds it. A chart per number (a hundred
histograms for a hundred days) says little; these say what one simulation looks like:

* :func:`series_fan`: per channel, the median and the middle 50 % and 90 % of the simulations over
  time (quantiles taken time step by time step, NaN left out), the observation one red line on top;
  one row of panels per channel, sharing the time axis;
* :func:`series_lines`: a few individual simulated series as thin lines;
* :func:`image_grid`: the observed image next to a few simulated ones, one colour scale per channel;
* :func:`trials_view`: the observed trials over the simulated trials' distribution (a histogram
  for one number per trial, a scatter for two or more);
* :func:`observation_figure`: one observation on its own (the Explore page's current observation),
  with a reference (the run's observation) behind it;
* :func:`trials_narrowing_figure`: how wide the posterior is as more trials are used;
* :func:`data_preview`: picks one of the above by the shape's kind (``None`` for a vector, whose
  callers keep their chart per number).

Torch-free; arrays (or tensors) in, a ``plotly.graph_objects.Figure`` out. The observation is red,
simulations light indigo, as everywhere (:mod:`.style`).
"""

from __future__ import annotations

import re
import warnings
from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sbi_core.plots._arrays import _np, _text, _thin
from sbi_core.plots.style import COLORS, _base_layout, _empty
from sbi_core.stats.shapes import DataShape

__all__ = [
    "FAN_QUANTILES",
    "series_fan",
    "series_lines",
    "image_grid",
    "trials_view",
    "MAX_LEVELS",
    "observation_figure",
    "trials_narrowing_figure",
    "data_preview",
    "channel_names",
    "time_axis",
    "trial_value_names",
]

FAN_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)  # the 90 % band, the 50 % band and the median
_BAND_90 = "rgba(116,143,252,0.22)"  # COLORS["sims"], light
_BAND_50 = "rgba(116,143,252,0.45)"
MAX_SCATTER_TRIALS = 3000  # simulated trials drawn as points (more only blur into a cloud)
MAX_IMAGE_CHANNELS = 3  # rows of an image grid; further channels are named in a note


# ---- inputs --------------------------------------------------------------------------
def _sims(sims, shape: DataShape) -> np.ndarray:
    """``sims`` as float ``(N, K)`` (``None`` or a single ``(K,)`` accepted), infinities as NaN."""
    if sims is None:
        return np.empty((0, shape.size))
    a = _np(sims)
    if a.ndim == 1:
        a = a.reshape(1, -1) if a.size == shape.size else a.reshape(0, shape.size)
    if a.ndim != 2 or a.shape[1] != shape.size:
        raise ValueError(f"Expected simulations of {shape.size:,} numbers each ({shape.describe()}); "
                         f"got an array of shape {tuple(a.shape)}.")
    return np.where(np.isfinite(a), a, np.nan)


def _obs(observed, shape: DataShape) -> Optional[np.ndarray]:
    """The observation as float ``(K,)``, infinities as NaN, or ``None``."""
    if observed is None:
        return None
    o = _np(observed).reshape(-1)
    if o.size != shape.size:
        raise ValueError(f"The observation has {o.size:,} numbers; {shape.describe()} has {shape.size:,}.")
    return np.where(np.isfinite(o), o, np.nan)


def _quantiles(values: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """``np.nanquantile`` over axis 0 without the warning for all-NaN columns (they stay NaN)."""
    if len(values) == 0:
        return np.full((len(qs), *values.shape[1:]), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanquantile(values, qs, axis=0)


_DIGITS = re.compile(r"\d+")
_INDEX_WORD = re.compile(r"([A-Za-z]+) $")  # "day 3": a word, one space, then the index


def _split_index(a: str, b: str) -> Optional[tuple[str, str, int]]:
    """Where the names ``a`` and ``b`` differ by one index: ``(a without it, the index's word, its value)``.

    ``"x[0][3]"`` vs ``"x[0][4]"``: ``("x[0]", "", 3)``; ``"I_3 [people]"``: ``("I [people]", "", 3)``;
    a word and a space before the number name the index itself (``"day 3 [people]"``:
    ``("[people]", "day", 3)``, ``"trial 2 rt [s]"``: ``("rt [s]", "trial", 2)``). ``None`` when
    they differ otherwise."""
    ra, rb = list(_DIGITS.finditer(a)), list(_DIGITS.finditer(b))
    if len(ra) != len(rb) or _DIGITS.sub("#", a) != _DIGITS.sub("#", b):
        return None
    diff = [i for i, (ma, mb) in enumerate(zip(ra, rb)) if ma.group() != mb.group()]
    if len(diff) != 1:
        return None
    m = ra[diff[0]]
    start, end, word = m.start(), m.end(), ""
    if start > 0 and end < len(a) and a[start - 1] == "[" and a[end] == "]":
        start, end = start - 1, end + 1
    elif (w := _INDEX_WORD.search(a[:start])) is not None:
        start, word = w.start(), w.group(1)
    elif start > 0 and a[start - 1] in "_-":
        start -= 1
    rest = re.sub(r"\s{2,}", " ", (a[:start] + a[end:]).strip())
    return rest, word, int(m.group())


def _stem(a: Optional[str], b: Optional[str]) -> Optional[str]:
    """The name of the values ``a`` and ``b`` (names that differ by one index) hold, or ``None``:
    ``"day 3 [people]"`` gives ``"people"`` (a unit alone is the name)."""
    if not a or not b:
        return None
    split = _split_index(a, b)
    if split is None or not split[0]:
        return None
    unit = re.fullmatch(r"\[([^\[\]]+)\]", split[0])
    return unit.group(1) if unit else split[0]


def channel_names(shape: DataShape, names: Optional[Sequence[str]] = None) -> list[str]:
    """One name per channel of a series or image: ``names`` itself when it has one per channel; when it
    has one per number (a simulator's ``obs_labels()``), each channel's common stem (``"I[5] [people]"``
    gives ``"I [people]"``, ``"day 5 [people]"`` gives ``"people"``); else ``"value"`` (one channel) or
    ``"channel 1"``, ``"channel 2"``..."""
    c = shape.channels
    fallback = ["value"] if c == 1 else [f"channel {i + 1}" for i in range(c)]
    if not names:
        return fallback
    names = [str(n) for n in names]
    if len(names) == c and len(names) != shape.size:
        return names
    if len(names) != shape.size:
        return fallback
    per = shape.size // c
    if per == 1:
        return names
    out = []
    for i in range(c):
        base = i * per
        if shape.kind == "series":
            stem = _stem(names[base], names[base + 1])
        else:  # an image: drop the column's index, then the row's
            w, stem = shape.dims[2], None
            if shape.dims[1] > 1 and w > 1:
                first = _split_index(names[base], names[base + 1])
                second = _split_index(names[base + w], names[base + w + 1])
                stem = _stem(first[0], second[0]) if first and second else None
        out.append(stem or fallback[i])
    return out


def time_axis(shape: DataShape, names: Optional[Sequence[str]] = None) -> tuple[str, np.ndarray]:
    """The x axis of a series: its title and ``T`` values. Names with a word for their index
    (``"day 1"``, ..., ``"day 100"``) give that word and the numbers they count (1 to 100); otherwise
    ``"time step"`` and 0 to ``T - 1``."""
    t = shape.dims[1] if shape.kind == "series" else shape.size
    steps = np.arange(t, dtype=float)
    if not names or len(names) != shape.size or t < 2:
        return "time step", steps
    names = [str(n) for n in names]
    first, last = _split_index(names[0], names[1]), _split_index(names[t - 1], names[0])
    if first is None or last is None or not first[1] or last[2] - first[2] != t - 1:
        return "time step", steps
    return first[1], first[2] + steps


def trial_value_names(shape: DataShape, names: Optional[Sequence[str]] = None) -> list[str]:
    """``D`` names for the numbers of one trial: ``names`` itself when it has ``D``; when it has one per
    number (``K``), trial 1's names without the trial's index (``"trial 1 rt [s]"`` gives ``"rt [s]"``);
    else ``"value"`` (D = 1) or ``"x1"``, ``"x2"``..."""
    d = shape.trial_width
    fallback = ["value"] if d == 1 else [f"x{i + 1}" for i in range(d)]
    if not names:
        return fallback
    names = [str(n) for n in names]
    if len(names) == d:
        return names
    if len(names) == shape.size and shape.max_trials > 1:
        return [_stem(names[i], names[d + i]) or fallback[i] for i in range(d)]
    return fallback


def _times(shape: DataShape, time_values, names=None, time_title: Optional[str] = None) -> tuple[np.ndarray, str]:
    """The x values and title of a series: ``time_values`` (titled ``time_title`` or "time"), else
    :func:`time_axis` of the names (``time_title`` replacing its title when given)."""
    t = shape.dims[1]
    if time_values is None:
        title, values = time_axis(shape, names)
        return values, time_title or title
    tv = _np(time_values).reshape(-1)
    if tv.size != t:
        raise ValueError(f"time_values has {tv.size:,} entries; the series has {t:,} time points.")
    return tv, time_title or "time"


def _series_check(shape: DataShape) -> None:
    if shape.kind != "series":
        raise ValueError(f"Expected a series; got {shape.describe()}.")


def _series_layout(fig: go.Figure, title: str, c: int, names: Sequence[str], xtitle: str,
                   height: Optional[int]) -> go.Figure:
    _base_layout(fig, title, height or (340 if c == 1 else 190 * c + 130), hovermode="x unified")
    for i in range(c):
        fig.update_yaxes(title=dict(text=_text(names[i])), row=i + 1, col=1)
    fig.update_xaxes(title=dict(text=xtitle), row=c, col=1)
    return fig


def _series_figure(c: int) -> go.Figure:
    if c == 1:
        return make_subplots(rows=1, cols=1)
    return make_subplots(rows=c, cols=1, shared_xaxes=True, vertical_spacing=min(0.08, 0.3 / c))


# ---- series ----------------------------------------------------------------------------
def series_fan(
    sims,
    shape: DataShape,
    observed=None,
    title: str = "Simulations over time",
    label: str = "prior predictive",
    time_values=None,
    names: Optional[Sequence[str]] = None,
    time_title: Optional[str] = None,
    height: Optional[int] = None,
) -> go.Figure:
    """A fan chart per channel of the series ``sims (N, K)`` (``K = C * T``, flat as ``shape`` says).

    For every time step the median and the middle 50 % (25-75 % quantiles) and 90 % (5-95 %) of the
    ``N`` simulations, NaN left out (a time step where every simulation is NaN has no band there);
    each band is two traces (its lower edge, then its upper edge filled down to it). ``observed (K,)``
    is one red line on top. ``C > 1``: one panel per channel, stacked, sharing the time axis.
    ``time_values (T,)`` replace the time step on the x axis (titled ``time_title``, "time" by
    default); ``names``: one per channel or one per number (:func:`channel_names`, :func:`time_axis`) title
    the y axes (and, where they count time in words, the x axis).
    """
    _series_check(shape)
    a = shape.fold(_sims(sims, shape))  # (N, C, T)
    obs = _obs(observed, shape)
    c = shape.channels
    t, xtitle = _times(shape, time_values, names, time_title)
    labs = channel_names(shape, names)
    if len(a) == 0 and obs is None:
        return _empty(title, "No simulations to show.", height or 320, xtitle, labs[0])
    q = _quantiles(a, FAN_QUANTILES)  # (5, C, T)
    fig = _series_figure(c)
    for i in range(c):
        first = i == 0
        row = dict(row=i + 1, col=1)
        for lo, hi, fill, band in ((0, 4, _BAND_90, "middle 90 %"), (1, 3, _BAND_50, "middle 50 %")):
            ok = np.isfinite(q[lo, i]) & np.isfinite(q[hi, i])
            xs = t[ok].tolist()
            fig.add_trace(go.Scatter(x=xs, y=q[lo, i][ok].tolist(), mode="lines", line=dict(width=0),
                                     showlegend=False, legendgroup=band, hoverinfo="skip", name=band), **row)
            fig.add_trace(go.Scatter(x=xs, y=q[hi, i][ok].tolist(), mode="lines", line=dict(width=0),
                                     fill="tonexty", fillcolor=fill, name=f"{label}, {band}" if label else band,
                                     legendgroup=band,
                                     showlegend=first, hoverinfo="skip"), **row)
        fig.add_trace(go.Scatter(x=t.tolist(), y=q[2, i].tolist(), mode="lines",
                                 name=f"{label}, median" if label else "median",
                                 line=dict(color=COLORS["primary"], width=2), legendgroup="median",
                                 showlegend=first, hovertemplate="median %{y:.3g}<extra></extra>"), **row)
        if obs is not None:
            o = obs.reshape(shape.dims)[i]
            fig.add_trace(go.Scatter(x=t.tolist(), y=o.tolist(), mode="lines", name="observation",
                                     line=dict(color=COLORS["observation"], width=3), legendgroup="obs",
                                     showlegend=first, hovertemplate="observation %{y:.3g}<extra></extra>"),
                          **row)
    return _series_layout(fig, title, c, labs, xtitle, height)


def series_lines(
    sims,
    shape: DataShape,
    n: int = 8,
    observed=None,
    title: str = "A few simulated series",
    label: str = "simulation",
    time_values=None,
    names: Optional[Sequence[str]] = None,
    time_title: Optional[str] = None,
    height: Optional[int] = None,
) -> go.Figure:
    """``n`` of the series ``sims (N, K)`` (evenly spaced rows, so the same ones every time) as thin
    lines, one trace per channel (the series joined with gaps), and ``observed (K,)`` red on top."""
    _series_check(shape)
    a = shape.fold(_thin(_sims(sims, shape), max(int(n), 1)))  # (n, C, T)
    obs = _obs(observed, shape)
    c = shape.channels
    t, xtitle = _times(shape, time_values, names, time_title)
    labs = channel_names(shape, names)
    if len(a) == 0 and obs is None:
        return _empty(title, "No simulations to show.", height or 320, xtitle, labs[0])
    fig = _series_figure(c)
    for i in range(c):
        row = dict(row=i + 1, col=1)
        xs, ys, which = [], [], []
        for j, s in enumerate(a[:, i]):
            xs += t.tolist() + [None]
            ys += s.tolist() + [None]
            which += [j + 1] * len(t) + [None]
        if len(a):
            fig.add_trace(go.Scatter(x=xs, y=ys, customdata=which, mode="lines",
                                     name=f"{len(a)} {label}{'s' if len(a) != 1 else ''}",
                                     line=dict(color=COLORS["sims"], width=1.2), opacity=0.75,
                                     legendgroup="sims", showlegend=i == 0,
                                     hovertemplate=f"{label} %{{customdata}}: %{{y:.3g}}<extra></extra>"), **row)
        if obs is not None:
            fig.add_trace(go.Scatter(x=t.tolist(), y=obs.reshape(shape.dims)[i].tolist(), mode="lines",
                                     name="observation", line=dict(color=COLORS["observation"], width=3),
                                     legendgroup="obs", showlegend=i == 0,
                                     hovertemplate="observation %{y:.3g}<extra></extra>"), **row)
    fig = _series_layout(fig, title, c, labs, xtitle, height)
    fig.update_layout(hovermode="closest")
    return fig


# ---- images ----------------------------------------------------------------------------
def image_grid(
    sims,
    shape: DataShape,
    observed=None,
    n: int = 5,
    title: str = "The observation next to simulated images",
    names: Optional[Sequence[str]] = None,
    colorscale: str = "Viridis",
    height: Optional[int] = None,
) -> go.Figure:
    """The observed image (framed in red) next to ``n`` of the simulated images ``sims (N, K)``
    (evenly spaced rows): heatmaps with equal aspect and no ticks, row 0 at the top. Each channel is
    one row of panels with its own colour scale, shared across that row (so the observation and the
    simulations compare by colour); at most :data:`MAX_IMAGE_CHANNELS` channels are drawn."""
    if shape.kind != "image":
        raise ValueError(f"Expected an image; got {shape.describe()}.")
    a = shape.fold(_thin(_sims(sims, shape), max(int(n), 0)) if n > 0 else np.empty((0, shape.size)))
    obs = _obs(observed, shape)
    tiles = ([("observation", obs.reshape(shape.dims))] if obs is not None else []) + \
        [(f"simulation {j + 1}", a[j]) for j in range(len(a))]
    if not tiles:
        return _empty(title, "No images to show.", height or 300)
    c = min(shape.channels, MAX_IMAGE_CHANNELS)
    labs = channel_names(shape, names)
    cols = len(tiles)
    h, w = shape.dims[1], shape.dims[2]
    fig = make_subplots(rows=c, cols=cols, horizontal_spacing=0.02, vertical_spacing=0.06 if c > 1 else 0.0,
                        subplot_titles=[t for t, _ in tiles] + [""] * (cols * (c - 1)))
    for i in range(c):
        values = np.stack([img[i] for _, img in tiles])
        finite = values[np.isfinite(values)]
        zmin, zmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if zmax <= zmin:
            zmin, zmax = zmin - 0.5, zmax + 0.5
        axis = "coloraxis" if i == 0 else f"coloraxis{i + 1}"
        top = 1 - i / c
        fig.update_layout({axis: dict(
            colorscale=colorscale, cmin=zmin, cmax=zmax,
            colorbar=dict(title=dict(text=_text(labs[i]), side="right"), len=0.9 / c, y=top - 0.5 / c,
                          yanchor="middle", thickness=14),
        )})
        for j, (name, img) in enumerate(tiles):
            fig.add_trace(go.Heatmap(z=img[i], coloraxis=axis, name=name,
                                     hovertemplate=f"{name}<br>row %{{y}}, column %{{x}}: %{{z:.3g}}<extra></extra>"),
                          row=i + 1, col=j + 1)
    _base_layout(fig, title, height or (230 * c + 90))
    fig.update_xaxes(showticklabels=False, showgrid=False, ticks="", showline=False, constrain="domain",
                     range=[-0.5, w - 0.5])
    fig.update_yaxes(showticklabels=False, showgrid=False, ticks="", showline=False, autorange="reversed",
                     constrain="domain")
    for k in range(c * cols):  # equal aspect: each y axis follows its x axis
        suffix = "" if k == 0 else str(k + 1)
        fig.update_layout({f"yaxis{suffix}": dict(scaleanchor=f"x{suffix}", scaleratio=1)})
    if obs is not None:
        for i in range(c):
            k = i * cols
            ref = "" if k == 0 else str(k + 1)
            fig.add_shape(type="rect", xref=f"x{ref}", yref=f"y{ref}", x0=-0.5, x1=w - 0.5, y0=-0.5, y1=h - 0.5,
                          line=dict(color=COLORS["observation"], width=3))
        fig.layout.annotations[0].font.color = COLORS["observation"]
    if shape.channels > c:
        fig.update_layout(title=dict(subtitle=dict(
            text=f"The first {c} of {shape.channels} channels.", font=dict(size=12))))
    return fig


# ---- trials ----------------------------------------------------------------------------
def _present(t: np.ndarray) -> np.ndarray:
    """Rows ``(n, D)`` with every number finite (missing trials and broken ones left out)."""
    return t[np.isfinite(t).all(axis=1)] if len(t) else t


MAX_LEVELS = 6  # a number of a trial with at most this many values is drawn as levels (a choice)


def _discrete_column(trials: np.ndarray) -> Optional[tuple[int, np.ndarray]]:
    """The first number of the trials ``(n, D)`` that takes at most :data:`MAX_LEVELS` values (and at
    least 2) while another takes more, with its values; ``None`` when there is none."""
    if len(trials) == 0:
        return None
    distinct = [np.unique(trials[:, j]) for j in range(trials.shape[1])]
    few = [j for j, v in enumerate(distinct) if 2 <= len(v) <= MAX_LEVELS]
    many = [j for j, v in enumerate(distinct) if len(v) > MAX_LEVELS]
    if not few or not many:
        return None
    return few[0], distinct[few[0]]


def _trials_by_level(sim_trials, obs_trials, cont: int, disc: int, values, labs, title: str, label: str,
                     obs_name: str, height: Optional[int]) -> go.Figure:
    """One panel per value of the discrete number ``disc``: densities of the number ``cont`` of the
    simulated (light indigo) and observed (red) trials with that value, on shared bins; each panel's
    bars are scaled by that value's share of all trials (so the panels' areas add up to 1)."""
    pooled = np.concatenate([sim_trials[:, cont], obs_trials[:, cont]])
    lo = float(pooled.min())
    hi = float(max(np.quantile(sim_trials[:, cont], 0.995) if len(sim_trials) else pooled.max(),
                   obs_trials[:, cont].max() if len(obs_trials) else -np.inf))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, 31)
    width = edges[1] - edges[0]
    centres = (edges[:-1] + edges[1:]) / 2
    rows = len(values)
    def shares(v) -> str:
        parts = [f"{np.mean(t[:, disc] == v):.0%} of {what}" for t, what in
                 ((sim_trials, "simulated trials"), (obs_trials, "observed")) if len(t)]
        return f"{_text(labs[disc])} = {v:g}: " + ", ".join(parts)

    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=min(0.12, 0.4 / rows),
                        subplot_titles=[shares(v) for v in values])
    for a, v in zip(fig.layout.annotations, values):  # a thumbnail's short title (_compact)
        a.name = f"{_text(labs[disc])} = {v:g}"
    for r, v in enumerate(values):
        for trials, name, color, opacity, group in ((sim_trials, label, COLORS["sims"], 0.7, "sims"),
                                                    (obs_trials, obs_name, COLORS["observation"], 0.6, "obs")):
            if len(trials) == 0:
                continue
            at = trials[trials[:, disc] == v, cont]
            counts, _ = np.histogram(at, bins=edges)  # the slowest 0.5 % may lie beyond
            share = len(at) / len(trials)
            fig.add_trace(go.Bar(x=centres, y=counts / (len(trials) * width), width=width, name=name,
                                 marker=dict(color=color, line=dict(width=0.5, color="white")), opacity=opacity,
                                 legendgroup=group, showlegend=r == 0,
                                 hovertemplate=f"{name}: {share:.0%} of trials here<br>"
                                               "%{x:.3g}: density %{y:.3g}<extra></extra>"),
                          row=r + 1, col=1)
        fig.update_yaxes(title=dict(text="density"), row=r + 1, col=1)
    _base_layout(fig, title, height or max(340, 170 * rows + 150), barmode="overlay", bargap=0)
    fig.update_annotations(x=1, xanchor="right", font=dict(size=13))  # panel titles clear of the legend
    fig.update_layout(margin=dict(t=105))
    fig.update_xaxes(title=dict(text=_text(labs[cont])), row=rows, col=1)
    return fig


def trials_view(
    sims,
    shape: DataShape,
    observed=None,
    names: Optional[Sequence[str]] = None,
    title: str = "The observed trials among simulated ones",
    label: str = "simulated trials",
    height: Optional[int] = None,
) -> go.Figure:
    """Repeated trials: every trial of the simulations ``sims (N, K)`` (``None`` for none) pooled, and
    the trials of ``observed (K,)``; missing trials (NaN rows) are left out.

    One number per trial: overlaid histograms on shared bins, both as densities (the simulated trials
    light indigo, the observed red). Two: a scatter, simulated trials faint, observed ones red on top;
    but where one of the numbers takes at most :data:`MAX_LEVELS` values (a choice, an outcome), one
    panel per value with the histograms of the first other number (a drift-diffusion model's response
    times per choice), each scaled by its share of the trials. More: the same with the first two (or
    the first continuous and discrete one), and a subtitle that says so.
    """
    if shape.kind != "trials":
        raise ValueError(f"Expected repeated trials; got {shape.describe()}.")
    d = shape.trial_width
    sim_trials = _present(_sims(sims, shape).reshape(-1, d))
    obs = _obs(observed, shape)
    obs_trials = _present(obs.reshape(-1, d)) if obs is not None else np.empty((0, d))
    labs = trial_value_names(shape, names)
    obs_name = f"observation ({len(obs_trials)} trial{'s' if len(obs_trials) != 1 else ''})"
    if len(sim_trials) == 0 and len(obs_trials) == 0:
        return _empty(title, "No trials to show.", height or 320, _text(labs[0]))
    fig = go.Figure()
    if d == 1:
        both = np.concatenate([sim_trials[:, 0], obs_trials[:, 0]])
        lo, hi = float(both.min()), float(both.max())
        size = (hi - lo) / 30 if hi > lo else 1.0
        bins = dict(start=lo - size / 2 if hi <= lo else lo, end=hi + size, size=size)
        if len(sim_trials):
            fig.add_trace(go.Histogram(x=sim_trials[:, 0], xbins=bins, histnorm="probability density",
                                       name=label, marker_color=COLORS["sims"], opacity=0.7,
                                       hovertemplate="%{x}: density %{y:.3g}<extra></extra>"))
        if len(obs_trials):
            fig.add_trace(go.Histogram(x=obs_trials[:, 0], xbins=bins, histnorm="probability density",
                                       name=obs_name, marker_color=COLORS["observation"], opacity=0.6,
                                       hovertemplate="%{x}: density %{y:.3g}<extra></extra>"))
        _base_layout(fig, title, height or 340, barmode="overlay", bargap=0.03)
        fig.update_xaxes(title=dict(text=_text(labs[0])))
        fig.update_yaxes(title=dict(text="density"))
        return fig
    levels = _discrete_column(np.concatenate([sim_trials, obs_trials]))
    if levels is not None:
        disc, values = levels
        cont = next(j for j in range(d) if j != disc)
        fig = _trials_by_level(sim_trials, obs_trials, cont, disc, values, labs, title, label, obs_name, height)
        if d > 2:
            fig.update_layout(title=dict(subtitle=dict(
                text=f"Each trial has {d} numbers; {_text(labs[cont])} per {_text(labs[disc])} is shown.",
                font=dict(size=12))), margin=dict(t=110))
        return fig
    shown = _thin(sim_trials, MAX_SCATTER_TRIALS)
    if len(shown):
        fig.add_trace(go.Scatter(x=shown[:, 0], y=shown[:, 1], mode="markers", name=label,
                                 marker=dict(color=COLORS["sims"], size=5, opacity=0.3),
                                 hovertemplate="(%{x:.3g}, %{y:.3g})<extra></extra>"))
    if len(obs_trials):
        fig.add_trace(go.Scatter(x=obs_trials[:, 0], y=obs_trials[:, 1], mode="markers", name=obs_name,
                                 marker=dict(color=COLORS["observation"], size=9,
                                             line=dict(color="white", width=1)),
                                 hovertemplate="observed trial (%{x:.3g}, %{y:.3g})<extra></extra>"))
    _base_layout(fig, title, height or 420, hovermode="closest")
    fig.update_xaxes(title=dict(text=_text(labs[0])))
    fig.update_yaxes(title=dict(text=_text(labs[1])))
    if d > 2:
        fig.update_layout(title=dict(subtitle=dict(
            text=f"Each trial has {d} numbers; the first two are shown.", font=dict(size=12))),
            margin=dict(t=110))
    return fig


# ---- one observation ----------------------------------------------------------------------
def observation_figure(
    observed,
    shape: DataShape,
    reference=None,
    title: str = "The observation",
    names: Optional[Sequence[str]] = None,
    reference_label: str = "the run's observation",
    time_values=None,
    height: Optional[int] = None,
) -> go.Figure:
    """One observation ``observed (K,)`` on its own: a series as a red line per channel (``reference
    (K,)`` a dashed grey line behind it), an image as a heatmap (the reference beside it), trials as
    :func:`trials_view` (the reference's trials in place of simulations)."""
    obs = _obs(observed, shape)
    ref = _obs(reference, shape)
    if shape.kind == "series":
        c = shape.channels
        t, xtitle = _times(shape, time_values, names)
        fig = _series_figure(c)
        for i in range(c):
            row = dict(row=i + 1, col=1)
            if ref is not None:
                fig.add_trace(go.Scatter(x=t.tolist(), y=ref.reshape(shape.dims)[i].tolist(), mode="lines",
                                         name=reference_label, legendgroup="ref", showlegend=i == 0,
                                         line=dict(color=COLORS["prior"], width=2, dash="dash"),
                                         hovertemplate=f"{reference_label} %{{y:.3g}}<extra></extra>"), **row)
            fig.add_trace(go.Scatter(x=t.tolist(), y=obs.reshape(shape.dims)[i].tolist(), mode="lines",
                                     name="observation", legendgroup="obs", showlegend=i == 0,
                                     line=dict(color=COLORS["observation"], width=3),
                                     hovertemplate="observation %{y:.3g}<extra></extra>"), **row)
        return _series_layout(fig, title, c, channel_names(shape, names), xtitle,
                              height or (300 if c == 1 else None))
    if shape.kind == "image":
        sims = None if ref is None else ref.reshape(1, -1)
        fig = image_grid(sims, shape, observed=obs, n=1, title=title, names=names, height=height)
        if ref is not None and len(fig.layout.annotations) > 1:
            fig.layout.annotations[1].text = _text(reference_label)
        return fig
    if shape.kind == "trials":
        sims = None if ref is None else ref.reshape(1, -1)
        return trials_view(sims, shape, observed=obs, names=names, title=title, label=reference_label,
                           height=height)
    raise ValueError("observation_figure draws a series, an image or trials; a vector has its own charts.")


def trials_narrowing_figure(
    counts: Sequence[int],
    widths,
    labels: Optional[Sequence[str]] = None,
    current: Optional[int] = None,
    title: str = "The posterior narrows as more trials are used",
    height: int = 300,
) -> go.Figure:
    """The posterior's width (``widths (n, D)``: e.g. its standard deviation per parameter) at each
    number of trials in ``counts (n,)``, one line per parameter, relative to its width with the fewest
    trials (so parameters of any scale share the axis); ``current`` marks the number in use."""
    counts = [int(v) for v in counts]
    w = _np(widths, 2)
    if len(counts) == 0 or w.shape[0] != len(counts):
        return _empty(title, "No widths to show.", height, "trials used", "posterior width")
    base = np.where(np.abs(w[0]) > 0, w[0], 1.0)
    rel = w / base
    palette = [COLORS["primary"], COLORS["val"], "#2F9E44", "#AE3EC9", "#0C8599", "#5C940D"]
    fig = go.Figure()
    for j in range(w.shape[1]):
        lab = _text(labels[j]) if labels is not None and j < len(labels) else f"theta{j + 1}"
        fig.add_trace(go.Scatter(x=counts, y=rel[:, j].tolist(), mode="lines+markers", name=lab,
                                 line=dict(color=palette[j % len(palette)], width=2.5), marker=dict(size=8),
                                 customdata=w[:, j].tolist(),
                                 hovertemplate=f"{lab}: %{{x}} trials, width %{{customdata:.3g}}"
                                               "<extra></extra>"))
    if current is not None:
        fig.add_vline(x=int(current), line=dict(color=COLORS["observation"], width=2, dash="dot"))
        fig.add_annotation(x=int(current), y=0, yref="paper", text=f" {int(current)} in use", showarrow=False,
                           xanchor="left", yanchor="bottom", font=dict(color=COLORS["observation"], size=13),
                           bgcolor="rgba(255,255,255,0.8)")
    _base_layout(fig, title, height, legend="right", hovermode="closest")
    fig.update_xaxes(title=dict(text="trials used"))
    fig.update_yaxes(title=dict(text=f"width vs. {counts[0]} trial{'s' if counts[0] != 1 else ''}"),
                     rangemode="tozero")
    return fig


# ---- dispatch ------------------------------------------------------------------------------
def data_preview(
    sims,
    shape: DataShape,
    observed=None,
    names: Optional[Sequence[str]] = None,
    title: Optional[str] = None,
    label: str = "prior predictive",
    height: Optional[int] = None,
    compact: bool = False,
) -> Optional[go.Figure]:
    """The chart for simulations ``sims (N, K)`` of ``shape`` with ``observed (K,)``: a fan chart
    (series), an image grid (image), the trials view (trials); ``None`` for a vector (callers keep
    their chart per number). ``names``: per channel / per number of a trial, or per number (``K``).
    ``compact``: a small gallery thumbnail (small text and margins, short legend, 3 images)."""
    if shape.kind == "vector":
        return None
    if shape.kind == "series":
        fig = series_fan(sims, shape, observed=observed, names=names, label="" if compact else label,
                         height=height, title=title or "The observation among simulations over time")
    elif shape.kind == "image":
        fig = image_grid(sims, shape, observed=observed, names=names, height=height, n=3 if compact else 5,
                         title=title or "The observation next to simulated images")
    else:
        fig = trials_view(sims, shape, observed=observed, names=names, height=height,
                          label=f"{label} trials" if label else "simulated trials",
                          title=title or "The observed trials among simulated ones")
    return _compact(fig, height or 230) if compact else fig


def _compact(fig: go.Figure, height: int) -> go.Figure:
    """``fig`` as a small thumbnail (the look of ``simulations_figure(compact=True)``): no legend (a
    thumbnail has no observation, and its marks are the full chart's), short panel titles."""
    fig.update_layout(
        height=height, margin=dict(l=45, r=8, t=40, b=40), title=dict(font=dict(size=13), subtitle=None),
        font=dict(size=11), showlegend=False,
    )
    for a in fig.layout.annotations:
        if a.name:
            a.text = a.name
        elif str(a.text).startswith("simulation "):  # an image grid's tiles: too narrow for their names
            a.text = ""
        a.font = dict(size=11, color=a.font.color) if a.font and a.font.color else dict(size=11)
    fig.update_xaxes(title=dict(font=dict(size=12)))
    fig.update_yaxes(title=dict(font=dict(size=12)))
    return fig


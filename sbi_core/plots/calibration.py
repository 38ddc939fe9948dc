"""Calibration figures: is the posterior right on average over many test datasets?

Every builder takes the arrays a check job saved (:mod:`sbi_core.checks`) and
returns a figure; what to expect of a calibrated posterior is drawn in grey
(a band, or a dashed diagonal), what the run produced in colour, one colour
per parameter (:data:`PARAM_COLORS`), so a reader compares the two by eye:

* :func:`sbc_rank_figure` -- SBC rank histograms, one panel per parameter, with
  the 99 % band of counts a uniform rank gives (binomial quantiles,
  :func:`sbi_core.stats.bands.histogram_band`);
* :func:`sbc_ecdf_figure` -- the rank ECDF minus the uniform CDF, with its
  simultaneous 99 % band (:func:`~sbi_core.stats.bands.ecdf_band`);
* :func:`coverage_figure` -- empirical against nominal coverage of the
  highest-density regions (with a 2-standard-error band) and of each
  parameter's central intervals, against the diagonal;
* :func:`tarp_figure` -- TARP's expected coverage curve against the diagonal,
  with the pointwise 99 % binomial band;
* :func:`zscore_contraction_figure` -- posterior z-score against contraction;
* :func:`recovery_figure` -- posterior mean (± one posterior standard deviation)
  against the true value, with the identity line;
* :func:`predictive_check_figure` -- each observation component against its
  90 % posterior predictive band (in its own units when the components share a
  scale, otherwise rescaled so every band runs from -1 to +1);
* :func:`reference_c2st_figure` -- the C2ST of each round's posterior against
  the exact one (0.5: indistinguishable).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sbi_core.plots._arrays import _label, _np
from sbi_core.plots.simulations import shares_one_axis
from sbi_core.plots.style import COLORS, _base_layout, _empty
from sbi_core.stats.bands import (
    binomial_band,
    default_num_bins,
    ecdf_band,
    ecdf_difference,
    histogram_band,
    rank_bins,
    rank_histogram,
)

__all__ = [
    "PARAM_COLORS", "SBC_RANKS_TITLE", "SBC_ECDF_TITLE", "COVERAGE_TITLE", "TARP_TITLE", "ZSCORE_TITLE",
    "RECOVERY_TITLE", "PREDICTIVE_CHECK_TITLE", "REFERENCE_C2ST_TITLE", "sbc_rank_figure", "sbc_ecdf_figure",
    "coverage_figure", "tarp_figure", "zscore_contraction_figure", "recovery_figure", "predictive_check_figure",
    "reference_c2st_figure",
]

PARAM_COLORS = ["#3B5BDB", "#F08C00", "#2B8A3E", "#AE3EC9", "#0B7285", "#C2255C", "#5C940D", "#862E9C"]
BAND_FILL = "rgba(134, 142, 150, 0.22)"
BAND_NAME = "99 % band of a calibrated posterior"
MAX_COLS = 4

SBC_RANKS_TITLE = "SBC rank histograms"
SBC_ECDF_TITLE = "SBC: rank ECDF minus the uniform CDF"
COVERAGE_TITLE = "Expected coverage"
TARP_TITLE = "TARP expected coverage"
ZSCORE_TITLE = "Posterior z-score against contraction"
RECOVERY_TITLE = "Parameter recovery"
PREDICTIVE_CHECK_TITLE = "Posterior predictive check at the observation"
REFERENCE_C2ST_TITLE = "Distance to the exact posterior, round by round"


def _layout(fig: go.Figure, title: str, height: int, **kw) -> go.Figure:
    """The base layout with the legend in rows at the very bottom, below the x-axis titles (these figures are
    often drawn half-width, beside a broken twin, where a legend at the side or the top covers the plots)."""
    _base_layout(fig, title, height, legend="bottom", **kw)
    fig.update_layout(legend=dict(yref="container", y=0.01, yanchor="bottom"),
                      margin=dict(l=60, r=20, t=55, b=125))
    return fig


def _color(d: int) -> str:
    return PARAM_COLORS[d % len(PARAM_COLORS)]


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, MAX_COLS)
    return math.ceil(n / cols), cols


def _panels(n: int, titles: Sequence[str], vertical_spacing: float = 0.16):
    rows, cols = _grid(n)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles), horizontal_spacing=0.07,
                        vertical_spacing=vertical_spacing / max(1, rows - 1) if rows > 1 else 0.0)
    return fig, rows, cols


def _band_polygon(x_lo: np.ndarray, x_hi: np.ndarray, low: np.ndarray, high: np.ndarray):
    """``(xs, ys)`` of a closed step-shaped band over bins ``[x_lo_b, x_hi_b]``."""
    xs = np.ravel(np.column_stack([x_lo, x_hi]))
    top = np.repeat(high, 2)
    bottom = np.repeat(low, 2)
    return np.concatenate([xs, xs[::-1], xs[:1]]), np.concatenate([top, bottom[::-1], top[:1]])


# ---------------------------------------------------------------------------
# SBC
# ---------------------------------------------------------------------------
def sbc_rank_figure(
    ranks,
    num_posterior_samples: int,
    labels: Optional[Sequence[str]] = None,
    num_bins: Optional[int] = None,
    level: float = 0.99,
    title: str = SBC_RANKS_TITLE,
) -> go.Figure:
    """One histogram per parameter of SBC ``ranks (N, D)`` (integers ``0..L``), with the ``level`` band.

    Bars: how many test datasets had their true value at that rank among the
    ``L`` posterior draws. Grey band: where the counts of a calibrated
    posterior fall (binomial quantiles per bin); dashed: the expected count.
    """
    r = _np(ranks, 2)
    n, dim = r.shape
    L = int(num_posterior_samples)
    if n == 0:
        return _empty(title, "No ranks to draw.", 320)
    bins = int(num_bins or default_num_bins(n, L))
    groups = rank_bins(L, bins)
    x_lo = np.array([g[0] for g in groups], dtype=float) - 0.5
    x_hi = np.array([g[-1] for g in groups], dtype=float) + 0.5
    low, expected, high = histogram_band(n, L, bins, level)
    labs = [_label(labels, d) for d in range(dim)]
    fig, rows, cols = _panels(dim, labs)
    bx, by = _band_polygon(x_lo, x_hi, low, high)
    ex, ey = _band_polygon(x_lo, x_hi, expected, expected)
    for d in range(dim):
        row, col = d // cols + 1, d % cols + 1
        fig.add_trace(go.Scatter(x=bx, y=by, fill="toself", mode="lines", line=dict(width=0), fillcolor=BAND_FILL,
                                 name=BAND_NAME, legendgroup="band", showlegend=d == 0, hoverinfo="skip"),
                      row=row, col=col)
        counts = rank_histogram(r[:, d], L, bins)
        fig.add_trace(go.Bar(
            x=(x_lo + x_hi) / 2, y=counts, width=(x_hi - x_lo) * 0.92, name=f"ranks of {labs[d]}",
            marker=dict(color=_color(d), opacity=0.85), legendgroup=f"p{d}",
            customdata=np.column_stack([x_lo + 0.5, x_hi - 0.5]),
            hovertemplate="ranks %{customdata[0]:.0f}-%{customdata[1]:.0f}: %{y} datasets<extra></extra>",
        ), row=row, col=col)
        fig.add_trace(go.Scatter(x=ex[: 2 * bins], y=ey[: 2 * bins], mode="lines", name="expected count",
                                 line=dict(color=COLORS["prior"], dash="dash", width=1.2), legendgroup="expected",
                                 showlegend=d == 0, hoverinfo="skip"), row=row, col=col)
        fig.update_xaxes(title_text=f"rank among {L} draws", range=[-0.5, L + 0.5], row=row, col=col)
        fig.update_yaxes(title_text="test datasets" if col == 1 else None, rangemode="tozero", row=row, col=col)
    _layout(fig, title, 300 * rows + 150, bargap=0)
    return fig


def sbc_ecdf_figure(
    ranks,
    num_posterior_samples: int,
    labels: Optional[Sequence[str]] = None,
    level: float = 0.99,
    title: str = SBC_ECDF_TITLE,
) -> go.Figure:
    """The ECDF of the ranks' fractions minus the uniform CDF, one line per parameter, with the band.

    A calibrated parameter's line stays inside the grey band (all of it, with
    probability ``level``); a line that dips then rises (an S) is overconfident,
    one that rises then dips underconfident, one bowed to one side biased.
    """
    r = _np(ranks, 2)
    n, dim = r.shape
    L = int(num_posterior_samples)
    if n == 0:
        return _empty(title, "No ranks to draw.", 360)
    z, diff = ecdf_difference(r, L)
    _, low, high = ecdf_band(n, L, level)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=np.concatenate([z, z[::-1]]), y=np.concatenate([high, low[::-1]]), fill="toself",
                             mode="lines", line=dict(width=0), fillcolor=BAND_FILL, name=BAND_NAME, hoverinfo="skip"))
    for d in range(dim):
        lab = _label(labels, d)
        fig.add_trace(go.Scatter(x=z, y=diff[:, d], mode="lines", name=lab, line=dict(color=_color(d), width=2),
                                 hovertemplate=f"{lab}: %{{y:+.3f}} at %{{x:.2f}}<extra></extra>"))
    fig.add_hline(y=0, line=dict(color=COLORS["prior"], width=1, dash="dash"))
    _layout(fig, title, 420)
    fig.update_xaxes(title_text="fractional rank (rank + 1) / (draws + 1)", range=[0, 1])
    fig.update_yaxes(title_text="ECDF minus uniform", zeroline=False)
    return fig


# ---------------------------------------------------------------------------
# coverage
# ---------------------------------------------------------------------------
def coverage_figure(
    levels,
    hpd,
    hpd_stderr=None,
    central=None,
    labels: Optional[Sequence[str]] = None,
    title: str = COVERAGE_TITLE,
) -> go.Figure:
    """Empirical coverage against credibility ``levels (C,)``: joint HPD ``hpd (C,)`` (± 2 ``hpd_stderr``)
    and each parameter's central intervals ``central (C, D)``, with the diagonal.

    Below the diagonal: the regions hold the true value less often than they
    claim (overconfident); above: more often (underconfident).
    """
    lv, cov = _np(levels).reshape(-1), _np(hpd).reshape(-1)
    if len(lv) == 0:
        return _empty(title, "No coverage to draw.", 420)
    lv0 = np.concatenate([[0.0], lv, [1.0]])
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated (diagonal)",
                             line=dict(color=COLORS["prior"], dash="dash", width=1.5), hoverinfo="skip"))
    if hpd_stderr is not None:
        se = _np(hpd_stderr).reshape(-1)
        hi = np.clip(cov + 2 * se, 0, 1)
        lo = np.clip(cov - 2 * se, 0, 1)
        fig.add_trace(go.Scatter(x=np.concatenate([lv, lv[::-1]]), y=np.concatenate([hi, lo[::-1]]), fill="toself",
                                 mode="lines", line=dict(width=0), fillcolor="rgba(27, 31, 42, 0.12)",
                                 name="± 2 standard errors", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=lv0, y=np.concatenate([[0.0], cov, [1.0]]), mode="lines+markers",
                             name="highest-density regions (all parameters)",
                             line=dict(color=COLORS["text"], width=2.5), marker=dict(size=5),
                             hovertemplate="%{x:.0%} region held the truth in %{y:.0%}<extra></extra>"))
    if central is not None:
        c = _np(central, 2)
        for d in range(c.shape[1]):
            lab = _label(labels, d)
            fig.add_trace(go.Scatter(
                x=lv0, y=np.concatenate([[0.0], c[:, d], [1.0]]), mode="lines", name=f"central intervals of {lab}",
                line=dict(color=_color(d), width=1.6, dash="dot"),
                hovertemplate=f"{lab}: %{{x:.0%}} interval held the truth in %{{y:.0%}}<extra></extra>"))
    _layout(fig, title, 500)
    fig.update_xaxes(title_text="credibility level (what the posterior claims)", range=[0, 1], tickformat=".0%")
    fig.update_yaxes(title_text="share of test datasets covered", range=[0, 1], tickformat=".0%")
    return fig


def tarp_figure(alpha, ecp, num_datasets: int, level: float = 0.99, title: str = TARP_TITLE) -> go.Figure:
    """TARP's expected coverage ``ecp (A,)`` at credibility ``alpha (A,)`` over ``num_datasets``, with the band.

    The band: where ``Binomial(N, alpha) / N`` falls with probability ``level``
    at each ``alpha`` (pointwise).
    """
    a, e = _np(alpha).reshape(-1), _np(ecp).reshape(-1)
    if len(a) == 0:
        return _empty(title, "No TARP curve to draw.", 420)
    lo, hi = (b / num_datasets for b in binomial_band(num_datasets, a, level))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=np.concatenate([a, a[::-1]]), y=np.concatenate([hi, lo[::-1]]), fill="toself",
                             mode="lines", line=dict(width=0), fillcolor=BAND_FILL, name=BAND_NAME,
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated (diagonal)",
                             line=dict(color=COLORS["prior"], dash="dash", width=1.5), hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=a, y=e, mode="lines", name="TARP coverage", line=dict(color=COLORS["primary"], width=2.5),
                             hovertemplate="credibility %{x:.0%}: coverage %{y:.0%}<extra></extra>"))
    _layout(fig, title, 460)
    fig.update_xaxes(title_text="credibility level", range=[0, 1], tickformat=".0%")
    fig.update_yaxes(title_text="expected coverage", range=[0, 1], tickformat=".0%")
    return fig


# ---------------------------------------------------------------------------
# z-scores, contraction, recovery
# ---------------------------------------------------------------------------
def zscore_contraction_figure(zscore, contraction, labels: Optional[Sequence[str]] = None,
                              title: str = ZSCORE_TITLE, z_limit: float = 6.0) -> go.Figure:
    """One point per test dataset and parameter: contraction ``(N, D)`` across, z-score ``(N, D)`` up.

    Good: points on the right (the data shrink the posterior) and inside the
    shaded ``|z| < 2`` strip. Far above or below it: overconfident or biased.
    Points beyond ``± z_limit`` are drawn on the edge (their value in the hover).
    """
    z, c = _np(zscore, 2), _np(contraction, 2)
    if z.size == 0:
        return _empty(title, "No z-scores to draw.", 420)
    fig = go.Figure()
    fig.add_hrect(y0=-2, y1=2, fillcolor=BAND_FILL, line_width=0, layer="below")
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="|z| < 2 (where most points belong)",
                             marker=dict(symbol="square", size=12, color=BAND_FILL)))
    for d in range(z.shape[1]):
        ok = np.isfinite(z[:, d]) & np.isfinite(c[:, d])
        lab = _label(labels, d)
        fig.add_trace(go.Scatter(
            x=np.clip(c[ok, d], -0.5, 1.0), y=np.clip(z[ok, d], -z_limit, z_limit), mode="markers", name=lab,
            marker=dict(color=_color(d), size=6, opacity=0.6), customdata=np.column_stack([c[ok, d], z[ok, d]]),
            hovertemplate=f"{lab}: contraction %{{customdata[0]:.2f}}, z %{{customdata[1]:.2f}}<extra></extra>"))
    _layout(fig, title, 460)
    fig.update_xaxes(title_text="posterior contraction (1: pinned down, 0: nothing learnt)",
                     range=[-0.55, 1.05])
    fig.update_yaxes(title_text="posterior z-score", range=[-z_limit - 0.3, z_limit + 0.3])
    return fig


def recovery_figure(theta, post_mean, post_std=None, labels: Optional[Sequence[str]] = None,
                    title: str = RECOVERY_TITLE) -> go.Figure:
    """Posterior mean ``post_mean (N, D)`` (bars: ± ``post_std``) against the true ``theta (N, D)``, per parameter.

    Points on the dashed identity line: the posterior finds the true value.
    """
    t, m = _np(theta, 2), _np(post_mean, 2)
    s = _np(post_std, 2) if post_std is not None else None
    if t.size == 0:
        return _empty(title, "No test datasets to draw.", 360)
    dim = t.shape[1]
    labs = [_label(labels, d) for d in range(dim)]
    fig, rows, cols = _panels(dim, labs)
    for d in range(dim):
        row, col = d // cols + 1, d % cols + 1
        lo = float(np.nanmin([t[:, d].min(), m[:, d].min()]))
        hi = float(np.nanmax([t[:, d].max(), m[:, d].max()]))
        pad = 0.05 * (hi - lo or 1.0)
        fig.add_trace(go.Scatter(x=[lo - pad, hi + pad], y=[lo - pad, hi + pad], mode="lines",
                                 name="posterior mean = true value", legendgroup="identity", showlegend=d == 0,
                                 line=dict(color=COLORS["prior"], dash="dash", width=1.5), hoverinfo="skip"),
                      row=row, col=col)
        err = dict(type="data", array=s[:, d], color="rgba(59, 91, 219, 0.25)", thickness=1, width=0) if s is not None \
            else None
        fig.add_trace(go.Scatter(x=t[:, d], y=m[:, d], mode="markers", name=labs[d], error_y=err,
                                 marker=dict(color=_color(d), size=6, opacity=0.7), legendgroup=f"p{d}",
                                 hovertemplate="true %{x:.3g}, posterior mean %{y:.3g}<extra></extra>"),
                      row=row, col=col)
        fig.update_xaxes(title_text="true value", row=row, col=col)
        fig.update_yaxes(title_text="posterior mean" if col == 1 else None, row=row, col=col)
    _layout(fig, title, 320 * rows + 150)
    return fig


# ---------------------------------------------------------------------------
# at the observation
# ---------------------------------------------------------------------------
def predictive_check_figure(x_obs, lower, upper, obs_labels: Optional[Sequence[str]] = None,
                            simulations=None, level: float = 0.9,
                            title: str = PREDICTIVE_CHECK_TITLE) -> go.Figure:
    """Each component of ``x_obs (K,)`` against its ``level`` predictive band ``[lower, upper]`` (each ``(K,)``).

    ``simulations (m, K)`` (the predictive draws) decide whether the components
    share one axis (:func:`~.simulations.shares_one_axis`); when they do not,
    each band is rescaled to run from -1 to +1 and the observation with it.
    """
    obs, lo, hi = _np(x_obs).reshape(-1), _np(lower).reshape(-1), _np(upper).reshape(-1)
    k = obs.shape[0]
    if k == 0:
        return _empty(title, "No observation to compare.", 360)
    labs = [_label(obs_labels, c, "x") for c in range(k)]
    shared = shares_one_axis(simulations) if simulations is not None else True
    if shared:
        base, length, y_obs = lo, hi - lo, obs
        ytitle = "value"
    else:
        mid, half = (lo + hi) / 2, np.where(hi > lo, (hi - lo) / 2, 1.0)
        base, length, y_obs = -np.ones(k), 2 * np.ones(k), (obs - mid) / half
        ytitle = "place in its band (±1: edges)"
    inside = (obs >= lo) & (obs <= hi)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=labs, y=length, base=base, name=f"{level:.0%} predictive band".replace("%", " %"),
                         marker=dict(color="rgba(116, 143, 252, 0.35)", line=dict(color=COLORS["sims"], width=1)),
                         customdata=np.column_stack([lo, hi]),
                         hovertemplate="%{x}: band %{customdata[0]:.3g} to %{customdata[1]:.3g}<extra></extra>"))
    for mask, name, symbol in ((inside, "observation (inside its band)", "circle"),
                               (~inside, "observation (outside its band)", "x")):
        fig.add_trace(go.Scatter(
            x=[l for l, m in zip(labs, mask) if m], y=y_obs[mask], mode="markers", name=name,
            marker=dict(color=COLORS["observation"], size=11, symbol=symbol, line=dict(color="white", width=1)),
            customdata=obs[mask], hovertemplate="%{x}: observed %{customdata:.3g}<extra></extra>"))
    _layout(fig, title, 430, bargap=0.35)
    fig.update_xaxes(title_text="observation component", type="category")
    fig.update_yaxes(title_text=ytitle)
    return fig


def reference_c2st_figure(c2st_by_round, title: str = REFERENCE_C2ST_TITLE) -> go.Figure:
    """C2ST accuracy ``(R,)`` of each round's posterior against the exact posterior (0.5 is the goal)."""
    v = _np(c2st_by_round).reshape(-1)
    if len(v) == 0:
        return _empty(title, "No round to compare.", 320)
    rounds = np.arange(1, len(v) + 1)
    fig = go.Figure()
    fig.add_hrect(y0=0.5, y1=0.6, fillcolor="rgba(43, 138, 62, 0.12)", line_width=0, layer="below")
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="close to exact (0.5 to 0.6)",
                             marker=dict(symbol="square", size=12, color="rgba(43, 138, 62, 0.25)")))
    fig.add_trace(go.Scatter(x=rounds, y=v, mode="lines+markers", name="C2ST accuracy",
                             line=dict(color=COLORS["primary"], width=2.5), marker=dict(size=9),
                             hovertemplate="round %{x}: C2ST %{y:.2f}<extra></extra>"))
    _layout(fig, title, 380)
    fig.update_xaxes(title_text="round", tickmode="array", tickvals=rounds, range=[0.5, len(v) + 0.5])
    fig.update_yaxes(title_text="C2ST accuracy", range=[0.45, 1.02])
    return fig

"""The Rounds page's views of a run: where each round simulated, the round-by-round tables,
and one round in detail (corner and pair plots)."""

from __future__ import annotations

import json
from typing import Optional

import numpy as np
import pandas as pd
import streamlit as st

from sbi_core import Prior, plots
from sbi_core.stats.concentration import HDR_MASS, format_intervals, hdr_intervals, samples_hdr_size
from sbi_core.store.runs import RunInfo

from sbi_ui import keys as K
from sbi_ui.charts import chart
from sbi_ui.reference_view import C2ST_HELP, reference_c2st_view
from sbi_ui.sampling_view import sampling_line, sampling_notes
from sbi_ui.resources import store
from sbi_ui.run_context import RunContext
from sbi_ui.tracker import RunTracker
from sbi_ui.view_state import sync_round, write_round

__all__ = ["PROPOSALS_TITLE", "proposals_view", "round_tables", "round_detail", "round_region_sizes",
           "region_sentence", "fmt_share"]

PROPOSALS_TITLE = "Where each round simulated"
# the round-by-round table's number columns: column -> (heading, number format, what it means)
ROUND_NUMBER_COLUMNS = {
    "round": ("round", None, "Round number (1 = simulated from the prior)."),
    "± (error)": ("±", "percent", "How far off the 90 % region's size may be: it is measured by drawing random "
                  "parameter values, and this is its typical error (one standard error)."),
    "simulations": ("simulations", None, "Simulations made in this round."),
    "invalid": ("invalid", None, "Simulations that produced no usable number (NaN or infinity); they are left out."),
    "epochs": ("epochs", None, "How many times the network went through all the simulations while learning."),
    "best epoch": ("best epoch", None, "After each epoch the network is tested on simulations it did not learn "
                   "from; the epoch that did best is the network kept."),
    "propose (s)": ("propose (s)", "%.2f", "Seconds spent choosing where to simulate: round 1 picks parameters at "
                    "random from the prior; later rounds pick them from the previous round's posterior (TSNPE "
                    "first works out the region of the prior it lives in)."),
    "simulate (s)": ("simulate (s)", "%.2f", "Seconds spent running the simulator."),
    "train (s)": ("train (s)", "%.2f", "Seconds spent training the network."),
    "total (s)": ("total (s)", "%.2f", "The whole round, including drawing the posterior samples."),
    "acceptance": ("acceptance", "percent", "The network sometimes suggests parameter values the prior rules out "
                   "(outside its range); those are thrown away. This is the share it kept: close to 100 % is good, "
                   "a low value means the network still puts weight where no simulation could be."),
    "vs exact (C2ST)": ("vs exact (C2ST)", "%.2f", C2ST_HELP),
    "drawn from": ("drawn from", "percent", "TSNPE: the share of the prior that this round's parameters were drawn "
                   "from (the region holding 99.99 % of the previous posterior). 100 % = the whole prior."),
}


@st.cache_data(show_spinner=False, max_entries=32)
def _corner(run_id: str, round_index: int, samples: np.ndarray, labels: tuple, truth, title: str) -> bytes:
    return plots.corner_png(samples, list(labels), truth, title=title)



@st.cache_data(show_spinner=False, max_entries=16)
def _round_parameters(run_id: str, num_rounds: int) -> list:
    """Up to 600 simulated parameters per saved round (``num_rounds`` keys the cache as rounds finish)."""
    return store().round_parameters(run_id, max_rows=600)


@st.cache_data(show_spinner=False, max_entries=64)
def _stored_hdr_size(run_id: str, round_index: int, samples: np.ndarray, prior_spec: str) -> dict:
    """The 90 % region's size for a round saved before its event carried one (from its samples)."""
    prior = Prior.from_spec(json.loads(prior_spec))
    return samples_hdr_size(samples, prior, seed=round_index).to_dict()


@st.cache_data(show_spinner=False, max_entries=64)
def _intervals(run_id: str, round_index: int, samples: np.ndarray) -> list:
    """Each parameter's 90 % highest-density interval(s) in one round, as text."""
    return [format_intervals(hdr_intervals(samples[:, k], HDR_MASS)) for k in range(samples.shape[1])]


def round_region_sizes(run_id: str, tr: RunTracker, prior: Prior) -> tuple[list[Optional[dict]], bool]:
    """Each finished round's 90 % region size (:mod:`sbi_core.stats.concentration`: ``{fraction, stderr, ...}``,
    the prior mass of the smallest region holding 90 % of that round's posterior), and whether any had
    to be estimated from stored samples (a round saved before its event carried the size; ``None`` where
    neither is at hand). The one measure of how much a cloud shrank that every page and lesson uses:
    a standard deviation stays near the prior's for a posterior with two far-apart modes."""
    sizes, estimated = [], False
    prior_spec = json.dumps(prior.to_spec(), sort_keys=True)
    for k, ev in enumerate(tr.rounds):
        size = ev.get("hdr_size")
        if not size and k < len(tr.samples):
            size = _stored_hdr_size(run_id, k, tr.samples[k], prior_spec)
            estimated = True
        sizes.append(size or None)
    return sizes, estimated


def fmt_share(fraction: float, num_prior: int = 0) -> str:
    """A share of the prior in words: ``0.428 -> "43 %"``, ``0.0146 -> "1.5 %"``, 0 -> "under 0.01 %"``
    (a measured 0 means below one prior draw in ``num_prior``)."""
    if fraction <= 0:
        return f"under {100 / num_prior:.2g} %" if num_prior else "0 %"
    return f"{100 * fraction:.2g} %" if fraction < 0.1 else f"{100 * fraction:.0f} %"


def region_sentence(sizes: list) -> str:
    """What the rounds bought, read from the run: the 90 % region's share of the prior after round 1
    and after the last round, and how many times smaller it got (``""`` before two rounds have a size)."""
    known = [(k, s) for k, s in enumerate(sizes) if s]
    if len(known) < 2 or known[0][0] != 0:
        return ""
    (_, first), (k_last, last) = known[0], known[-1]
    a, b = float(first["fraction"]), float(last["fraction"])
    text = (f"The 90 % region covered {fmt_share(a, first.get('num_prior', 0))} of the prior after round 1 and "
            f"{fmt_share(b, last.get('num_prior', 0))} after round {k_last + 1}")
    if b <= 0 or a / b >= 1.5:
        ratio = a / b if b > 0 else None
        return text + (f": {ratio:.0f} times smaller." if ratio is not None else ": too small to measure.")
    if b / a >= 1.5:
        return text + ": it grew, so the later rounds did not sharpen this posterior."
    return text + ": about the same size, so the later rounds barely sharpened it."


def _tables(tr, ctx, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """The per-round and per-parameter tables, and whether a region size had to be estimated."""
    overview, params = [], []
    sizes, estimated = round_region_sizes(run_id, tr, ctx.prior)
    for k, ev in enumerate(tr.rounds):
        r = int(ev["round"]) + 1
        secs = ev.get("seconds") or {}
        size = sizes[k]
        overview.append({
            "round": r,
            "90 % region": size["fraction"] if size else float("nan"),
            "± (error)": size["stderr"] if size else float("nan"),
            "simulations": int(ev.get("num_simulations") or 0),
            "invalid": int(ev.get("num_invalid") or 0),
            "epochs": int(ev.get("epochs") or 0),
            "best epoch": ev.get("best_epoch"),
            "stopped early": bool(ev.get("stopped_early")),
            "propose (s)": float(secs.get("propose", 0.0)),
            "simulate (s)": float(secs.get("simulate", 0.0)),
            "train (s)": float(secs.get("train", 0.0)),
            "total (s)": float(sum(secs.values())),
            "acceptance": float(ev.get("acceptance_rate") or 1.0),
            "drawn from": ev.get("proposal_fraction"),
            "vs exact (C2ST)": ev.get("reference_c2st"),
            "sampling": sampling_line(ev.get("sampling")),
        })
        if k < len(tr.samples):
            for j, text in enumerate(_intervals(run_id, k, tr.samples[k])):
                lo, hi = ctx.bounds[j] if j < len(ctx.bounds) else (float("nan"), float("nan"))
                params.append({
                    "round": r,
                    "parameter": ctx.labels[j] if j < len(ctx.labels) else f"theta{j + 1}",
                    "90 % of the posterior lies in": text,
                    "prior range": f"{lo:.3g} to {hi:.3g}",
                })
    overview = pd.DataFrame(overview)
    if overview["drawn from"].iloc[1:].isna().all():  # APT and amortized runs: no region after round 1
        overview = overview.drop(columns="drawn from")
    if overview["sampling"].isna().all():  # flow posteriors: sampled directly, nothing to report
        overview = overview.drop(columns="sampling")
    if overview["vs exact (C2ST)"].isna().all():  # models without an exact posterior, custom priors
        overview = overview.drop(columns="vs exact (C2ST)")
    return overview, pd.DataFrame(params), estimated


def _round_columns() -> dict:
    """The round-by-round table's column configuration (headings, formats, help on hover)."""
    config = {name: st.column_config.NumberColumn(heading, format=fmt, help=text)
              for name, (heading, fmt, text) in ROUND_NUMBER_COLUMNS.items()}
    config["90 % region"] = st.column_config.ProgressColumn(
        "90 % region", format="percent", min_value=0.0, max_value=1.0,
        help="The share of the prior covered by the smallest region that holds 90 % of this round's "
             "posterior. About 90 % = nothing learned yet; smaller = the data narrowed the answer down.")
    config["stopped early"] = st.column_config.CheckboxColumn(
        "stopped early", help="Training stopped before the epoch limit because the test on held-out "
                              "simulations had stopped improving (more epochs would only memorise).")
    return config


def proposals_view(info: RunInfo, tr: RunTracker, ctx: RunContext, ix: int, iy: int, labels: list) -> None:
    """Small multiples of the parameters each round simulated (a sequential run with 2+ rounds)."""
    if info.spec.is_sequential and len(tr.samples) > 1:
        drawn = _round_parameters(info.id, len(tr.samples))
        if len(drawn) > 1:
            fractions = [ev.get("proposal_fraction") for ev in tr.rounds]
            titles = [  # two short lines, so neighbouring titles never run into each other
                f"round {k + 1}<br>" + ("from the prior" if k == 0 else
                                        f"from {fractions[k]:.1%} of prior" if k < len(fractions) and fractions[k]
                                        else f"from posterior {k}")
                for k in range(len(drawn))
            ]
            chart(
                plots.small_multiples_figure(drawn, titles, ix, iy, labels, ctx.bounds, title=PROPOSALS_TITLE,
                                             columns=min(5, len(drawn)), name="simulated parameters",
                                             color=plots.COLORS["prior"]),
                key="rounds_proposals",
            )
            st.caption(
                "The parameters each round simulated. Round 1 draws from the prior; later rounds draw where the "
                "previous posterior points: SNPE from that posterior itself, so its draws crowd onto the cloud; "
                "TSNPE evenly from the part of the prior that holds 99.99 % of it, a region that shrinks round by "
                "round. Either way the simulations go where they teach the network most about this observation."
            )


def round_tables(info: RunInfo, tr: RunTracker, ctx: RunContext) -> None:
    """The per-round table (90 % region, simulations, epochs, timings) and the per-parameter one."""
    st.subheader("Round by round")
    reference_c2st_view(tr, ctx, key="rounds_c2st_chart")
    sampling_notes(tr)
    overview, params, estimated = _tables(tr, ctx, info.id)
    st.markdown(
        "**90 % region**: the smallest set of parameter values that holds 90 % of the posterior covers this "
        "share of the prior (for a flat prior, of its area); it starts near 90 % when nothing is learned and "
        "the smaller it gets, the more the observation pins the parameters down, even when the cloud splits "
        "into separate pieces. Hover over a column's name for what it means."
    )
    if estimated:
        st.caption(":material/info: This run was saved before the app measured the 90 % region, so it is estimated "
                   "here from each round's stored samples (smoothed, which makes it somewhat too large).")
    st.dataframe(
        overview, hide_index=True, key="rounds_overview_table",
        column_config=_round_columns(),
    )
    st.dataframe(
        params, hide_index=True, key="rounds_param_table",
        column_config={
            "90 % of the posterior lies in": st.column_config.TextColumn(
                help="This parameter's 90 % highest-density interval: the shortest stretch (or stretches, when "
                     "the posterior has several separate peaks) holding 90 % of its samples."),
            "prior range": st.column_config.TextColumn(help="The range of values the prior allows (or its "
                                                            "central 99.9 % when it has no edges)."),
        },
    )


def round_detail(info: RunInfo, tr: RunTracker, ctx: RunContext, labels: list, truth) -> None:
    """One round chosen by a select box: its corner plot (PNG, downloadable) and its pair plot."""
    st.subheader("One round in detail")
    n_rounds = len(tr.samples)
    sync_round(n_rounds)  # ?round= in the URL; the default (the last round) only for a fresh box
    r = st.selectbox("Round", range(n_rounds), index=0 if K.W_CORNER_ROUND in st.session_state else n_rounds - 1,
                     format_func=lambda k: f"round {k + 1}", key=K.W_CORNER_ROUND, on_change=write_round,
                     help="Which round's posterior the corner and pair plots show.")
    r = min(r, n_rounds - 1)
    samples = tr.samples[r]
    left, right = st.columns([1, 1.15])
    with left:
        title = f"{ctx.model_title}, round {r + 1} posterior"
        png = _corner(info.id, r, samples, tuple(labels), None if truth is None else tuple(truth), title)
        st.image(png, caption=f"Corner plot of round {r + 1}: each parameter's histogram on the diagonal, with the "
                 "shaded stretch(es) holding 90 % of it; below, where pairs of values fall together (darker = "
                 "more likely).", width="stretch")
        st.download_button(
            "Download corner plot (PNG)", data=png, file_name=f"corner_{info.id}_round{r + 1}.png",
            mime="image/png", key=K.W_CORNER_DOWNLOAD, icon=":material/download:",
            help="Save this corner plot as a PNG image.",
        )
    with right:
        chart(
            plots.pair_plot_figure(samples, labels, truth, title=f"Pair plot, round {r + 1} (interactive)"),
            key="rounds_pair_plot",
        )
        st.caption("Diagonal: each parameter's histogram; below it: every pair. Hover for values, drag to zoom.")

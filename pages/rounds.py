"""Rounds: the sequential story, round by round (animation, table, corner and pair plots)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from sbi_core import plots

from pages import ui_common as ui
from pages import ui_state as K

ui.page_guard()


@st.cache_data(show_spinner=False, max_entries=32)
def _corner(run_id: str, round_index: int, samples: np.ndarray, labels: tuple, truth, title: str) -> bytes:
    return plots.corner_png(samples, list(labels), truth, title=title)


PROPOSALS_TITLE = "Where each round simulated"


@st.cache_data(show_spinner=False, max_entries=16)
def _round_parameters(run_id: str, num_rounds: int) -> list:
    """Up to 600 simulated parameters per saved round (``num_rounds`` keys the cache as rounds finish)."""
    return ui.store().round_parameters(run_id, max_rows=600)


def _tables(tr, ctx) -> tuple[pd.DataFrame, pd.DataFrame]:
    overview, params = [], []
    for ev in tr.rounds:
        r = int(ev["round"]) + 1
        secs = ev.get("seconds") or {}
        overview.append({
            "round": r,
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
        })
        means, stds = ev.get("mean") or [], ev.get("std") or []
        prior_stds = ev.get("prior_std") or [None] * len(means)
        for k, (m, s) in enumerate(zip(means, stds)):
            ps = prior_stds[k] if k < len(prior_stds) else None
            ratio = float(s) / float(ps) if ps else float("nan")
            params.append({
                "round": r,
                "parameter": ctx.labels[k] if k < len(ctx.labels) else f"theta{k + 1}",
                "posterior mean": float(m),
                "posterior std": float(s),
                "prior std": float(ps) if ps else float("nan"),
                "std ratio": ratio,
                "shrinkage": max(0.0, 1.0 - ratio) if np.isfinite(ratio) else float("nan"),
            })
    overview = pd.DataFrame(overview)
    if overview["drawn from"].iloc[1:].isna().all():  # APT and amortized runs: no region after round 1
        overview = overview.drop(columns="drawn from")
    return overview, pd.DataFrame(params)


st.title("Rounds")
st.markdown(
    "How the posterior sharpened, round by round. Each sequential round simulates where the previous "
    "posterior points (SNPE draws from that posterior; TSNPE from the part of the prior where it lives), "
    "so the cloud narrows around the parameters that explain the observation. "
    "Press **Play**, drag the round slider, or pick other parameters for the axes."
)

info = ui.pick_run(K.W_ROUNDS_RUN)
if info is None:
    st.info("No runs yet. Start the demo on **Home** or a run on **Train**.", icon=":material/info:")
    st.stop()

tr = ui.tracker(info.id)
ctx = ui.run_context(info)
ui.watch_run(info.id, info)
if info.status == "failed":
    term = tr.terminal or {}
    ui.show_failure(info.message or term.get("message"), info.detail or term.get("detail"))
if not tr.samples:
    if info.is_active:
        st.info("No round has finished yet. The first cloud appears here when round 1 ends.",
                icon=":material/hourglass_top:")
    else:
        st.info("This run has no finished round to show.", icon=":material/info:")
    st.page_link(ui.TRAIN, label="Open the live view", icon=":material/monitoring:", query_params={K.QP_RUN: info.id})
    st.stop()

if info.spec.method == "npe":
    st.caption(":material/info: This run is amortized: it has a single round. Sequential (SNPE) runs tell "
               "a longer story here; amortized ones shine on the **Explore** page.")

dim = tr.samples[-1].shape[1]
labels = ctx.labels if len(ctx.labels) == dim else [f"theta{k + 1}" for k in range(dim)]
truth = ui.shown_truth(ctx)

# ---- the animation -----------------------------------------------------------
if dim > 1:
    c1, c2, _ = st.columns([1, 1, 2])
    ix = c1.selectbox("x-axis", range(dim), index=0, format_func=lambda k: labels[k], key=K.W_AXIS_X,
                      help="Parameter on the horizontal axis.")
    iy = c2.selectbox("y-axis", range(dim), index=1, format_func=lambda k: labels[k], key=K.W_AXIS_Y,
                      help="Parameter on the vertical axis (the same as x shows its histogram).")
    ix, iy = min(ix, dim - 1), min(iy, dim - 1)
else:
    ix = iy = 0
st.plotly_chart(
    plots.rounds_animation_figure(tr.samples, ix, iy, labels, ctx.bounds, truth),
    key="rounds_animation",
)
st.caption("Light to dark: round 1 to the last round. The dashed box is the prior's range"
           + (", the red star the true parameter." if truth is not None else "."))

# ---- where each round simulated -------------------------------------------------
if info.spec.method != "npe" and len(tr.samples) > 1:
    drawn = _round_parameters(info.id, len(tr.samples))
    if len(drawn) > 1:
        fractions = [ev.get("proposal_fraction") for ev in tr.rounds]
        titles = [
            f"round {k + 1}: " + ("the prior" if k == 0 else
                                  f"{fractions[k]:.1%} of the prior" if k < len(fractions) and fractions[k]
                                  else "the last posterior")
            for k in range(len(drawn))
        ]
        st.plotly_chart(
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

# ---- the tables --------------------------------------------------------------
st.subheader("Round by round")
overview, params = _tables(tr, ctx)
st.dataframe(
    overview, hide_index=True, key="rounds_overview_table",
    column_config={
        "round": st.column_config.NumberColumn("round", help="Round number (1 = simulated from the prior)."),
        "simulations": st.column_config.NumberColumn("simulations", help="Simulations made in this round."),
        "invalid": st.column_config.NumberColumn("invalid", help="Simulations with NaN/inf output, left out."),
        "epochs": st.column_config.NumberColumn("epochs", help="Training epochs this round."),
        "best epoch": st.column_config.NumberColumn("best epoch", help="The epoch whose network was kept."),
        "stopped early": st.column_config.CheckboxColumn("stopped early", help="Early stopping ended training."),
        "propose (s)": st.column_config.NumberColumn(
            "propose (s)", format="%.2f",
            help="Drawing this round's parameters (for TSNPE, finding the region first)."),
        "simulate (s)": st.column_config.NumberColumn("simulate (s)", format="%.2f"),
        "train (s)": st.column_config.NumberColumn("train (s)", format="%.2f"),
        "total (s)": st.column_config.NumberColumn("total (s)", format="%.2f"),
        "acceptance": st.column_config.NumberColumn(
            "acceptance", format="percent",
            help="Share of the network's samples inside the prior's support."),
        "drawn from": st.column_config.NumberColumn(
            "drawn from", format="percent",
            help="TSNPE: the share of the prior that this round's parameters were drawn from (the region "
                 "holding 99.99 % of the previous posterior). 100 % = the whole prior."),
    },
)
st.dataframe(
    params, hide_index=True, key="rounds_param_table",
    column_config={
        "posterior mean": st.column_config.NumberColumn(format="%.4g"),
        "posterior std": st.column_config.NumberColumn(format="%.4g"),
        "prior std": st.column_config.NumberColumn(format="%.4g"),
        "std ratio": st.column_config.NumberColumn(
            format="%.3f", help="Posterior standard deviation divided by the prior's: 1 = nothing learned."),
        "shrinkage": st.column_config.ProgressColumn(
            "shrinkage", format="percent", min_value=0.0, max_value=1.0,
            help="How much narrower than the prior the posterior is (1 - std ratio)."),
    },
)

# ---- corner and pair plots ---------------------------------------------------
st.subheader("One round in detail")
n_rounds = len(tr.samples)
r = st.selectbox("Round", range(n_rounds), index=n_rounds - 1, format_func=lambda k: f"round {k + 1}",
                 key=K.W_CORNER_ROUND, help="Which round's posterior the corner and pair plots show.")
r = min(r, n_rounds - 1)
samples = tr.samples[r]
left, right = st.columns([1, 1.15])
with left:
    title = f"{ctx.model_title}, round {r + 1} posterior"
    png = _corner(info.id, r, samples, tuple(labels), None if truth is None else tuple(truth), title)
    st.image(png, caption=f"Corner plot of round {r + 1}: marginals with 16/50/84 % quantiles and pairwise "
             "densities.", width="stretch")
    st.download_button(
        "Download corner plot (PNG)", data=png, file_name=f"corner_{info.id}_round{r + 1}.png",
        mime="image/png", key=K.W_CORNER_DOWNLOAD, icon=":material/download:",
        help="Save this corner plot as a PNG image.",
    )
with right:
    st.plotly_chart(
        plots.pair_plot_figure(samples, labels, truth, title=f"Pair plot, round {r + 1} (interactive)"),
        key="rounds_pair_plot",
    )
    st.caption("Diagonal: each parameter's histogram; below it: every pair. Hover for values, drag to zoom.")

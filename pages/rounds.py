"""Rounds: the sequential story, round by round (animation, table, corner and pair plots)."""

from __future__ import annotations

import streamlit as st

from sbi_core import plots

from sbi_ui import keys as K
from sbi_ui.axes import axis_pickers
from sbi_ui.charts import chart
from sbi_ui.export_view import downloads, figure_downloads, show_code
from sbi_ui.frame import page_guard
from sbi_ui.messages import show_run_failure
from sbi_ui.navigation import TRAIN
from sbi_ui.rounds_view import proposals_view, region_sentence, round_detail, round_region_sizes, round_tables
from sbi_ui.run_context import missing_current_run, run_context, shown_truth
from sbi_ui.session import pick_run, tracker, watch_run
from sbi_ui.view_state import axes_writer, sync_axes

page_guard()

st.title("Rounds")
st.markdown(
    "How the posterior sharpened, round by round: each round simulates where the previous posterior "
    "points, so the cloud narrows around the parameters that explain the observation."
)

if missing_current_run():  # a link's unknown run: say so, and show no other run in its place
    st.stop()
info = pick_run(K.W_ROUNDS_RUN)
if info is None:
    st.info("No runs yet. Start the demo on **Home** or a run on **Train**.", icon=":material/info:")
    st.stop()

tr = tracker(info.id)
ctx = run_context(info)
watch_run(info.id, info)
if info.status == "failed":
    show_run_failure(info, tr)
if not tr.samples:
    if info.is_active:
        st.info("No round has finished yet. The first cloud appears here when round 1 ends.",
                icon=":material/hourglass_top:")
    else:
        st.info("This run has no finished round to show.", icon=":material/info:")
    st.page_link(TRAIN, label="Open the live view", icon=":material/monitoring:", query_params={K.QP_RUN: info.id})
    st.stop()

if not info.spec.is_sequential:
    st.caption(":material/info: This run is amortized: it has a single round. Sequential (SNPE) runs tell "
               "a longer story here; amortized ones shine on the **Explore** page.")

dim = tr.samples[-1].shape[1]
labels = ctx.labels if len(ctx.labels) == dim else [f"theta{k + 1}" for k in range(dim)]
truth = shown_truth(ctx)

# ---- the animation (its axes in the URL as ?axes=<x name>,<y name>) ------------
names = list(ctx.prior.names) if len(ctx.prior.names) == dim else labels
sync_axes(names)
ix, iy = axis_pickers(dim, labels, K.W_AXIS_X, K.W_AXIS_Y, from_dim=2, on_change=axes_writer(names),
                      help_x="Parameter on the horizontal axis.",
                      help_y="Parameter on the vertical axis (the same as x shows its histogram).")
chart(
    plots.rounds_animation_figure(tr.samples, ix, iy, labels, ctx.bounds, truth),
    key="rounds_animation",
)
st.caption("Press **Play** to watch the rounds one by one, or drag the slider: it shows rounds 1 to the "
           "chosen one, earlier rounds lighter and underneath, later ones not yet drawn. Light to dark (green to "
           "purple): round 1 to the last. The dashed box is the prior's range"
           + (", the red star the true parameter." if truth is not None else "."))
shrank = region_sentence(round_region_sizes(info.id, tr, ctx.prior)[0])  # the run's own numbers
if shrank:
    st.markdown(f":material/compress: {shrank}")

proposals_view(info, tr, ctx, ix, iy, labels)
round_tables(info, tr, ctx)
round_detail(info, tr, ctx, labels, truth)

# ---- take it away --------------------------------------------------------------
st.subheader("Take it away")
shown = min(int(st.session_state.get(K.W_CORNER_ROUND, len(tr.samples) - 1)), len(tr.samples) - 1)
downloads(info, tr.samples[shown], labels, shown)
st.caption("Every round's cloud in one picture, for a slide or a paper:")
figure_downloads(lambda: plots.posterior_rounds_figure(tr.samples, ix, iy, labels, ctx.bounds, truth),
                 f"rounds_{info.id}", K.W_ROUNDS_FIGURE)
with st.expander("Show code: rerun this in Python", icon=":material/code:"):
    show_code(info.spec, K.W_CODE_ROUNDS)

"""Explore: an amortized posterior answers new observations at once; a predictive check."""

from __future__ import annotations

import numpy as np
import streamlit as st

from sbi_core import SBIError

from sbi_ui import keys as K
from sbi_ui.explorer import explorer, slider_ranges, start_amortized
from sbi_ui.series_explore import data_shape_of
from sbi_ui.frame import page_guard
from sbi_ui.messages import show_run_failure
from sbi_ui.naming import is_amortized, run_title
from sbi_ui.resources import posterior, store_root
from sbi_ui.run_context import missing_current_run, run_context
from sbi_ui.session import current_run, pick_run, tracker, watch_run
from sbi_ui.user_text import plain

page_guard()

st.title("Explore")
st.markdown(
    "An **amortized** posterior is trained once on simulations from the whole prior; afterwards it answers "
    "for *any* observation in milliseconds, without simulating or training again. Move the sliders to "
    "change the observation (a series, an image or a set of trials: change it as a whole) and watch the "
    "posterior follow; the predictive check below shows whether data simulated from the posterior look like "
    "the observation."
)

if missing_current_run():  # a link's unknown run: say so, and show no other run in its place
    st.stop()
_, cur_info = current_run()
if cur_info is not None and cur_info.spec.is_sequential:
    st.info(
        f"The current run (*{plain(run_title(cur_info))}*) is **sequential**: its posterior is tuned to one "

        "observation, so it is not shown here. Pick an amortized run below, or train one.",
        icon=":material/info:",
    )

info = pick_run(K.W_EXPLORE_RUN, "Amortized run", filter_fn=lambda r: is_amortized(r.spec),
                help="Runs trained with amortized NPE. The current run is chosen first if it is one.")
if info is None:
    st.info("There is no amortized run yet. Train one (on the model set on the **Model** page) in about a "
            "minute:", icon=":material/info:")
    if st.button("Train an amortized posterior", key=K.W_EXPLORE_START, type="primary",
                 icon=":material/play_arrow:", help="Starts amortized NPE with 2,000 simulations."):
        start_amortized()
    st.stop()

if info.status != "done":
    if info.is_active:
        st.info("This run is still training; the explorer opens when it has finished.",
                icon=":material/hourglass_top:")
        watch_run(info.id, info)
    elif info.status == "failed":
        show_run_failure(info, tracker(info.id))
    else:
        st.warning("This run was cancelled before it finished, so it has no posterior to explore.")
    st.stop()

ctx = run_context(info)
try:
    post = posterior(store_root(), info.id)
    obs_key = None if ctx.x_obs is None else tuple(float(v) for v in np.asarray(ctx.x_obs).reshape(-1))
    # a series, an image or trials is changed as a whole (sbi_ui.series_explore), not a slider per number
    ranges = slider_ranges(store_root(), info.id, obs_key, tuple(ctx.obs_labels)) \
        if data_shape_of(ctx).is_vector else None
except SBIError as err:
    st.error(str(err), icon=":material/error:")
    st.stop()

explorer(info, ctx, post, ranges)

"""Check: can I trust this posterior? Calibration checks of a finished run, computed in the background,
kept with the run, drawn and explained (and, for teaching, beside the same run trained badly)."""

from __future__ import annotations

import streamlit as st

from sbi_core.checks import broken_twin

from sbi_ui import keys as K
from sbi_ui.check_job_view import break_it_button, check_controls, run_plan, twin_status
from sbi_ui.check_texts import INTRO
from sbi_ui.check_view import plan_view, results_view, run_results
from sbi_ui.frame import page_guard
from sbi_ui.resources import store
from sbi_ui.run_context import missing_current_run, run_context
from sbi_ui.session import pick_run

page_guard()

st.title("Check")
st.markdown(INTRO)

if missing_current_run():  # a link's unknown run: say so, and check no other run in its place
    st.stop()
info = pick_run(K.W_CHECK_RUN, "Run to check",
                help="Which run's posterior to check. The current run (in the sidebar and the URL) is chosen first.")
if info is None:
    st.info("No runs yet. Start the demo on **Home** or a run on **Train**, then check it here.",
            icon=":material/info:")
    st.stop()

ctx = run_context(info)
plan = run_plan(info)
plan_view(plan)
results = run_results(info.id)
check = check_controls(info, results is not None, plan)

twin = broken_twin(store(), info.id)
columns = [("This run", results)]
if twin is not None:
    columns.append(("Broken on purpose (40 simulations, 3 epochs)", run_results(twin)))
    twin_status(twin)
elif results is not None:
    break_it_button(info)

if results is None and info.status == "done" and not (check is not None and check.is_active):
    st.info("No checks yet for this run. Press **Run the checks** above: they take from a few seconds to a "
            "minute, in the background.", icon=":material/info:")
names_to_labels = dict(zip(ctx.prior.names, ctx.labels))
results_view(columns, names_to_labels, list(ctx.obs_labels))

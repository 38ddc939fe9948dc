"""Runs: every run in the store; open, cancel, delete, re-run, and its RunSpec."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from sbi_core import RunSpec

from pages import ui_common as ui
from pages import ui_state as K

ui.page_guard()


def _delete(run_id: str) -> None:
    ui.jobs().delete(run_id)
    ui.drop_tracker(run_id)
    if ui.current_run_id() == run_id:
        ui.forget_current_run()
    st.session_state.pop(K.W_RUNS_SELECT, None)
    st.session_state.pop(K.W_RUNS_DELETE_CONFIRM, None)
    ui.flash("success", f"Deleted run `{run_id}` and its files.")


def _cancel(run_id: str) -> None:
    ui.jobs().cancel(run_id)
    ui.flash("info", f"Cancel requested for run `{run_id}`: it stops within an epoch.")


st.title("Runs")
st.markdown(
    "Every run in the store, newest first: it is all kept on disk, so nothing is lost when you close the "
    "tab. Pick a run below to open it, stop it, delete it, start it again, or take its **RunSpec**: the "
    "JSON that describes it completely (`python -m sbi_core spec.json` re-runs it without the app)."
)

runs = ui.jobs().list(limit=500)
if not runs:
    st.info("No runs yet. Start the demo on **Home** or set one up on **Train**.", icon=":material/info:")
    st.stop()

table = pd.DataFrame([
    {
        "title": ui.run_title(r),
        "status": ui.STATUS_BADGE.get(r.status, (r.status,))[0],
        "method": ui.METHOD_NAMES.get(r.spec.method, r.spec.method),
        "model": ui.model_title_of(r.spec),
        "created": pd.Timestamp.fromtimestamp(r.created),
        "duration": ui.fmt_duration(r.seconds),
        "id": r.id,
    }
    for r in runs
])
st.dataframe(
    table, hide_index=True, key="runs_table",
    column_config={
        "title": st.column_config.TextColumn("title", width="medium"),
        "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
        "id": st.column_config.TextColumn("id", help="The run id, as in the URL (?run=...)."),
    },
)

st.subheader("Manage a run")
info = ui.pick_run(K.W_RUNS_SELECT, "Run", help="The run to manage. Choosing one makes it the current run.")
if info is None:
    st.stop()
ui.watch_run(info.id, info)

with st.container(border=True):
    head, badge = st.columns([4, 1], vertical_alignment="center")
    head.markdown(f"**{ui.run_title(info)}**  \n`{info.id}` · created {ui.fmt_time(info.created)} · "
                  f"ran {ui.fmt_duration(info.seconds)}")
    with badge:
        ui.status_badge(info)
    if info.status == "failed":
        tr = ui.tracker(info.id)
        term = tr.terminal or {}
        ui.show_failure(info.message or term.get("message"), info.detail or term.get("detail"))
    elif info.status == "queued":
        st.caption(f"Position {ui.jobs().queue_position(info.id) or 1} in the queue.")

    c1, c2, c3, c4 = st.columns(4)
    c1.page_link(ui.TRAIN, label="Open live view", icon=":material/monitoring:", query_params={K.QP_RUN: info.id})
    c2.page_link(ui.ROUNDS, label="Open rounds", icon=":material/animation:", query_params={K.QP_RUN: info.id})
    if info.spec.method == "npe" and info.status == "done":
        c3.page_link(ui.EXPLORE, label="Explore", icon=":material/explore:", query_params={K.QP_RUN: info.id})
    b1, b2, b3, b4 = st.columns([1, 1.3, 1.3, 1])
    b1.button("Cancel", key=K.W_RUNS_CANCEL, disabled=not info.is_active, on_click=_cancel, args=(info.id,),
              icon=":material/stop_circle:", help="Stop this run (only while it is queued or running).",
              width="stretch")
    if b2.button("Start again with this spec", key=K.W_RUNS_RERUN, icon=":material/replay:", width="stretch",
                 help="Start a new run from exactly this RunSpec (same seed: same result)."):
        try:
            ui.start_run(RunSpec.from_dict(info.spec.to_dict()), title=ui.run_title(info), page=ui.TRAIN)
        except Exception as err:
            ui.show_error(err, "starting the run again")
    confirm = b3.checkbox("Yes, delete this run", key=K.W_RUNS_DELETE_CONFIRM,
                          help="Tick to enable Delete. Deleting removes the run, its events and files.")
    b4.button("Delete", key=K.W_RUNS_DELETE, disabled=not confirm, on_click=_delete, args=(info.id,),
              type="primary", icon=":material/delete:", width="stretch",
              help="Delete this run for good (a running one is stopped first).")

    st.markdown("**RunSpec**")
    spec_json = info.spec.to_json()
    st.code(spec_json, language="json")
    st.download_button(
        "Download RunSpec (JSON)", data=spec_json, file_name=f"runspec_{info.id}.json",
        mime="application/json", key=K.W_RUNS_DOWNLOAD, icon=":material/download:",
        help="Save this run's complete description; re-run it with `python -m sbi_core <file>`.",
    )

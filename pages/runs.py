"""Runs: this browser's runs (a teacher's: every run); open, cancel, delete, re-run, and its RunSpec.

The list holds the runs this browser owns and the runs without an owner
(everyone's, see :mod:`sbi_ui.owner`). A run link (``?run=<id>``) opens any run
here: someone else's run is shown read-only, without Cancel or Delete (its
owner's browser, or a teacher, has them). The teacher key box is in the sidebar.

A confirmation belongs to one run and one action: the box "Yes, delete this
run" is keyed by the run's id (:func:`sbi_ui.keys.w_runs_confirm`), so the
run shown next never finds it ticked, and the Delete action itself checks the
box of the run it deletes. The RunSpec shown and downloaded here is the
portable one (:mod:`sbi_ui.spec_view`): an uploaded file travels inside it,
never a path of this server.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from sbi_core import RunSpec, SBIError

from sbi_ui import keys as K
from sbi_ui.export_view import report_download
from sbi_ui.format import fmt_duration, fmt_time
from sbi_ui.frame import page_guard
from sbi_ui.live_view import place_words
from sbi_ui.messages import flash, show_error, show_run_failure
from sbi_ui.resume_view import resume_button, resumed_note
from sbi_ui.naming import is_amortized, method_title, model_title_of, run_title, status_badge, status_word
from sbi_ui.navigation import CHECK, EXPLORE, ROUNDS, TRAIN
from sbi_ui.owner import can_control, listing_owner, read_only_notice, teacher_key_box
from sbi_ui.resources import jobs
from sbi_ui.session import current_run_id, drop_tracker, forget_current_run, pick_run, start_run, tracker
from sbi_ui.session import WATCH_S, url_params, watch_run
from sbi_ui.user_text import plain

from sbi_ui.spec_view import runspec_view

page_guard()


def _allowed(run_id: str) -> bool:
    """Checked again when an action arrives: only the run's owner (or a teacher) may change it."""
    info = jobs().status(run_id)
    if info is not None and not can_control(info):
        flash("error", "This is someone else's run: only the browser that started it can stop or delete it.")
        return False
    return True


def _delete(run_id: str) -> None:
    if not _allowed(run_id):
        return
    confirm = K.w_runs_confirm("delete", run_id)
    if not st.session_state.pop(confirm, False):  # a tick for this run, and this action only
        flash("info", "Tick \"Yes, delete this run\" first to delete it.")
        return
    try:
        jobs().delete(run_id)
    except SBIError as err:  # a callback's exception would show as a traceback: say it plainly
        flash("error", plain(err))
        return
    drop_tracker(run_id)
    if current_run_id() == run_id:
        forget_current_run()
    st.session_state.pop(K.W_RUNS_SELECT, None)
    flash("success", f"Deleted run `{run_id}` and its files.")


def _cancel(run_id: str) -> None:
    if not _allowed(run_id):
        return
    try:
        jobs().cancel(run_id)
    except SBIError as err:
        flash("error", plain(err))
        return
    flash("info", f"Cancel requested for run `{run_id}`: it stops within an epoch.")


@st.fragment(run_every=WATCH_S)
def _place_in_line(run_id: str) -> None:
    """Where the queued run stands in line, redrawn as the line moves (the page itself is drawn anew
    when the run leaves it, :func:`~sbi_ui.session.watch_run`)."""
    place = jobs().place_in_line(run_id)
    if place is not None:
        st.caption(f":material/hourglass_top: {place_words(place)}")


teacher_key_box()
owner = listing_owner()
st.title("Runs")
st.markdown(
    ("Every run on this server" if owner is None else "The runs this browser started") + ", newest first: "
    "it is all kept on disk, so nothing is lost when you close the tab (this browser stays their owner). Pick a "
    "run below to open it, stop it, delete it, start it again, or take its **RunSpec**: the JSON that describes "
    "it completely (`python -m sbi_core spec.json` re-runs it without the app)."
)

runs = jobs().list(limit=500, owner=owner)
linked = current_run_id()
if not runs and not linked:
    st.info("No runs yet. Start the demo on **Home** or set one up on **Train**.", icon=":material/info:")
    st.stop()

if runs:
    table = pd.DataFrame([
        {
            "title": run_title(r),
            "status": status_word(r.status),
            "method": method_title(r.spec.method),
            "model": model_title_of(r.spec),
            "created": pd.Timestamp.fromtimestamp(r.created),
            "duration": fmt_duration(r.seconds),
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
else:
    st.caption("This browser has not started a run yet; below is the run of the link you opened.")

st.subheader("Manage a run")
listed = {r.id for r in runs}
info = pick_run(K.W_RUNS_SELECT, "Run", filter_fn=lambda r: r.id in listed or r.id == linked,
                help="The run to manage. Choosing one makes it the current run.")
if info is None:
    st.stop()
watch_run(info.id, info)

with st.container(border=True):
    head, badge = st.columns([4, 1], vertical_alignment="center")
    head.markdown(f"**{plain(run_title(info))}**  \n`{info.id}` · created {fmt_time(info.created)} · "
                  f"ran {fmt_duration(info.seconds)}")
    with badge:
        status_badge(info)
    resumed_note(info)
    if info.status == "failed":
        show_run_failure(info, tracker(info.id))
    if info.status in ("failed", "cancelled"):
        resume_button(info, K.W_RUNS_RESUME, where=st.columns([1.3, 3])[0])
    elif info.status == "queued":
        _place_in_line(info.id)

    c1, c2, c3, c4 = st.columns(4)
    c1.page_link(TRAIN, label="Open live view", icon=":material/monitoring:", query_params=url_params(info.id))
    c2.page_link(ROUNDS, label="Open rounds", icon=":material/animation:", query_params=url_params(info.id))
    if is_amortized(info.spec) and info.status == "done":
        c3.page_link(EXPLORE, label="Explore", icon=":material/explore:", query_params=url_params(info.id))
    if info.status == "done":
        c4.page_link(CHECK, label="Check", icon=":material/fact_check:", query_params=url_params(info.id))
        report_download(info, K.W_RUNS_REPORT)
    read_only = read_only_notice(info)
    b1, b2, b3, b4 = st.columns([1, 1.3, 1.3, 1])
    if not read_only:
        b1.button("Cancel", key=K.W_RUNS_CANCEL, disabled=not info.is_active, on_click=_cancel, args=(info.id,),
                  icon=":material/stop_circle:", help="Stop this run (only while it is queued or running).",
                  width="stretch")
    if b2.button("Start a copy of my own" if read_only else "Start again with this spec", key=K.W_RUNS_RERUN,
                 icon=":material/replay:", width="stretch",
                 help="Start a new run (yours) from exactly this RunSpec (same seed: same result)."):
        try:
            start_run(RunSpec.from_dict(info.spec.to_dict()), title=run_title(info), page=TRAIN)
        except Exception as err:
            show_error(err, "starting the run again")
    if not read_only:
        confirm = b3.checkbox("Yes, delete this run", key=K.w_runs_confirm("delete", info.id),
                              help="Tick to enable Delete for this run. Deleting removes the run, its events and "
                                   "files.")
        b4.button("Delete", key=K.W_RUNS_DELETE, disabled=not confirm, on_click=_delete, args=(info.id,),
                  type="primary", icon=":material/delete:", width="stretch",
                  help="Delete this run for good (a running one is stopped first).")

    st.markdown("**RunSpec**")
    runspec_view(info)

"""The Resume button of a failed or cancelled run, and the note on a run that was resumed.

Resuming (:mod:`sbi_core.jobs.resume`) reopens the run under the same id: its
finished rounds stay, the next round starts from their saved state, and the
live view follows it again. Only the run's owner (or a teacher) sees the button;
the click is checked again on arrival.
"""

from __future__ import annotations

import streamlit as st

from sbi_core import SBIError
from sbi_core.jobs.resume import resume_from, why_not_resumable
from sbi_core.store.runs import RunInfo
from sbi_core.store.turns import TURN_REASON

from sbi_ui.messages import flash
from sbi_ui.owner import can_control
from sbi_ui.resources import jobs, store
from sbi_ui.session import drop_tracker
from sbi_ui.user_text import plain

__all__ = ["resume_button", "resumed_note"]


def _resume(run_id: str) -> None:
    info = jobs().status(run_id)
    if info is not None and not can_control(info):
        flash("error", "This is someone else's run: only the browser that started it can resume it.")
        return
    try:
        start = jobs().resume(run_id)
    except SBIError as err:
        flash("error", plain(err))
        return
    drop_tracker(run_id)  # the unfinished round's events are gone from the log: read it afresh
    flash("success", f"Resumed: the run goes on from round {start + 1}; "
                     + ("nothing had finished, so it starts from the beginning." if start == 0
                        else f"round{'s 1-' + str(start) if start > 1 else ' 1'} {'are' if start > 1 else 'is'} kept."))


def resume_button(info: RunInfo, key: str, where=st) -> None:
    """``Resume from round k`` for the owner of a resumable run (nothing otherwise)."""
    if not can_control(info) or why_not_resumable(store(), info) is not None:
        return
    start = resume_from(store(), info.id)
    label = f"Resume from round {start + 1}" if start else "Run it again from round 1"
    where.button(label, key=key, icon=":material/play_circle:", on_click=_resume, args=(info.id,),
                 type="primary", width="stretch",
                 help="Go on with this run under the same id and link: the finished rounds are kept and the "
                      "next one starts from their saved state, drawing exactly what the run would have drawn.")


def resumed_note(info: RunInfo) -> None:
    """A caption on a run that was resumed: from which round, and why it had stopped.

    A run that handed its worker over to a waiting run between rounds (reason
    :data:`~sbi_core.store.turns.TURN_REASON`) was not stopped: those turns are not resumes.
    """
    resumes = [ev for _, ev in store().events(info.id, types=["resumed"]) if ev.get("reason") != TURN_REASON]
    if not resumes:
        return
    ev = resumes[-1]
    r = int(ev.get("from_round") or 0)
    why = ("the app server restarted while it was active" if ev.get("reason") == "restart"
           else f"it had {ev.get('previous') or 'stopped'}")
    kept = "nothing had finished yet" if r == 0 else ("round 1 was kept" if r == 1 else f"rounds 1-{r} were kept")
    st.caption(f":material/play_circle: Resumed from round {r + 1} ({why}; {kept}).")

"""The Check page's job controls: start and cancel a run's checks, follow their progress, and "break it".

The checks run in a background worker (:meth:`sbi_core.jobs.manager.JobManager.start_checks`);
their status and progress live in the run store, so a reload, or anyone else
with the store, sees the same. While a check job is active a small fragment
polls it and redraws the page once when it ends.
"""

from __future__ import annotations

from typing import Optional

import streamlit as st

from sbi_core import SBIError
from sbi_core.checks import CheckOptions, CheckPlan, plan_checks, start_broken_twin
from sbi_core.checks.options import DATASETS_RANGE, ENSEMBLE_RANGE, SAMPLES_RANGE
from sbi_core.store.check_records import CheckInfo
from sbi_core.store.runs import RunInfo

from sbi_ui import keys as K
from sbi_ui.check_texts import BREAK_IT
from sbi_ui.format import fmt_duration
from sbi_ui.messages import flash, show_failure
from sbi_ui.naming import run_title
from sbi_ui.owner import can_control
from sbi_ui.resources import jobs, store
from sbi_ui.session import POLL_S, tracker
from sbi_ui.user_text import plain

__all__ = ["run_plan", "check_controls", "twin_status", "break_it_button"]


def run_plan(info: RunInfo) -> CheckPlan:
    """The checks that apply to the run as stored (a stopped sequential run with one round is amortized)."""
    saved = [i for i in store().rounds_saved(info.id) if (store().round_dir(info.id, i) / "posterior.pt").is_file()]
    return plan_checks(info.spec, rounds_done=len(saved) if info.is_terminal and saved else None)


def _ensemble_words(k: int) -> str:
    return "Off" if k == 0 else f"{k} (the run's and {k - 1} more)"


def _options(plan: Optional[CheckPlan] = None) -> dict:
    """The number inputs: test datasets and posterior draws per dataset; the ensemble's size (off by default,
    and not offered where it does not apply)."""
    c1, c2, c3, _ = st.columns([1, 1, 1, 1])
    n = c1.number_input("Test datasets", min_value=DATASETS_RANGE[0], max_value=DATASETS_RANGE[1],
                        value=CheckOptions().num_datasets, step=50, key=K.W_CHECK_DATASETS,
                        help="How many datasets to simulate and check the posterior on. More: sharper verdicts, "
                        "longer checks (200 take seconds for a small model).")
    m = c2.number_input("Posterior draws per dataset", min_value=SAMPLES_RANGE[0], max_value=SAMPLES_RANGE[1],
                        value=CheckOptions().num_posterior_samples, step=50, key=K.W_CHECK_SAMPLES,
                        help="Samples drawn from the posterior at each test dataset; the ranks run from 0 to this.")
    ensemble_ok = plan is None or plan.applies("ensemble")
    k = c3.selectbox("Estimators to compare", [0, *range(ENSEMBLE_RANGE[0], ENSEMBLE_RANGE[1] + 1)],
                     index=0, format_func=_ensemble_words, key=K.W_CHECK_ENSEMBLE, disabled=not ensemble_ok,
                     help=("A second opinion at your observation: train the run's method again on its own "
                           "simulations with other seeds and see whether the estimators agree. Each extra one "
                           "takes about as long as the run's training." if ensemble_ok
                           else plan.item("ensemble").reason))
    return {"num_datasets": int(n), "num_posterior_samples": int(m),
            "ensemble_members": int(k) if ensemble_ok else 0}


def _progress(run_id: str, was_active: bool) -> None:
    """The progress bar of the run's check job, polled while it is active."""

    @st.fragment(run_every=POLL_S if was_active else None)
    def bar() -> None:
        check = jobs().check_status(run_id)
        if was_active and (check is None or check.is_terminal):
            st.rerun()  # once: draw the results (or the failure) with the whole page
        if check is not None and check.is_active:
            st.progress(check.progress, text=f"{check.step} · {check.progress:.0%}")

    bar()


def _ended(check: CheckInfo) -> None:
    if check.status == "failed":
        show_failure(check.message or "The checks failed.", check.detail)
    elif check.status == "cancelled":
        st.info("The last checks were cancelled before they finished.", icon=":material/cancel:")


def check_controls(info: RunInfo, has_results: bool, plan: Optional[CheckPlan] = None) -> Optional[CheckInfo]:
    """Options, Start (or Check again) and Cancel, the progress bar and how the last job ended (``plan``:
    the run's, :func:`run_plan`, which says whether the ensemble is offered)."""
    check = jobs().check_status(info.id)
    active = check is not None and check.is_active
    if info.status in ("failed", "cancelled"):
        st.warning(f"This run ended {info.status} before it finished training, so it has no posterior to check.",
                   icon=":material/block:")
        return check
    with st.container(key=K.C_CHECK_STATUS):
        options = _options(plan)
        label = "Check again" if has_results else "Run the checks"
        if info.is_active:
            label = "Check when training ends"
            st.caption(":material/hourglass_top: This run is still training. The checks need its final posterior: "
                       "start them now and they begin by themselves when training ends.")
        b1, b2, _ = st.columns([1, 1, 2])
        if not can_control(info):
            st.caption(":material/visibility: Only the browser that started this run can start or cancel its checks.")
        elif b1.button(label, key=K.W_CHECK_START, type="primary", icon=":material/fact_check:", disabled=active,
                     width="stretch", help="Simulate test datasets and run every check that applies, in the "
                     "background. You can leave the page; the results are kept with the run."):
            try:
                jobs().start_checks(info.id, options)
            except SBIError as err:
                st.error(str(err), icon=":material/error:")
            else:
                flash("success", "Checks started. Their progress appears below.")
                st.rerun()
        if active and can_control(info) and b2.button("Cancel the checks", key=K.W_CHECK_CANCEL, icon=":material/stop_circle:",
                                width="stretch"):
            jobs().cancel_checks(info.id)
            flash("info", "Cancel requested: the checks stop within a step.")
            st.rerun()
        _progress(info.id, active)
        if check is not None and check.is_terminal:
            _ended(check)
    return check


def _twin_line(twin: str) -> str:
    """Where the broken twin stands: training, checking, done, or how it ended."""
    info = jobs().status(twin)
    if info is None:
        return "The broken run is gone (deleted)."
    check = jobs().check_status(twin)
    if info.is_active:
        return f"Training the broken run: {tracker(twin).progress(info)[1]}"
    if check is None:
        return f"The broken run ended {info.status}."
    if check.is_active:
        return f"Checking the broken run: {check.step} · {check.progress:.0%}"
    if check.status == "done":
        return f"The broken run is checked (trained in {fmt_duration(info.seconds)})."
    return f"The broken run's checks {check.status}: {plain(check.message or '')}"


def twin_status(twin: str) -> None:
    """A line on the broken twin while it trains and is checked; the page redraws when its checks end."""
    check = jobs().check_status(twin)
    run = jobs().status(twin)
    was_active = (check is not None and check.is_active) or (run is not None and run.is_active)

    @st.fragment(run_every=POLL_S * 2 if was_active else None)
    def line() -> None:
        now = jobs().check_status(twin)
        if was_active and (now is None or now.is_terminal):
            st.rerun()
        st.caption(f":material/science: {_twin_line(twin)}")
        if now is not None and now.status == "failed":
            show_failure(now.message, now.detail)

    line()
    if was_active and run is not None and can_control(run) and st.button("Cancel the broken run", key=K.W_CHECK_TWIN_CANCEL, icon=":material/stop_circle:"):
        jobs().cancel(twin)
        jobs().cancel_checks(twin)
        st.rerun()


def break_it_button(info: RunInfo) -> None:
    """The "break it" button: train the same spec badly, check it with the same options, show it beside this run."""
    st.markdown(BREAK_IT)
    if not can_control(info):
        return
    if st.button("Break it: train it badly and compare", key=K.W_CHECK_BREAK, icon=":material/science:",
                 help=f"Starts a new run of {plain(run_title(info))} with a tiny budget and a few epochs, then "
                      "checks it."):

        try:
            check = jobs().check_status(info.id)
            opts = {k: v for k, v in (check.options if check else {}).items() if k != "seed"}
            start_broken_twin(jobs(), info.id, opts)
        except SBIError as err:
            st.error(str(err), icon=":material/error:")
        else:
            flash("success", "Started the broken run; its checks follow when it has trained.")
            st.rerun()

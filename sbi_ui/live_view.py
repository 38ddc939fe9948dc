"""The Train page's live view of a run: its header (title, settings, Stop / Cancel), status and
progress, and the loss curves and posterior clouds, redrawn from the store while the run is active."""

from __future__ import annotations

import logging
import time

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from sbi_core import plots
from sbi_core.store.runs import RunInfo

from sbi_ui import keys as K
from sbi_ui import live_cache
from sbi_ui.charts import shared_chart
from sbi_ui.estimate import calibration
from sbi_ui.format import fmt_duration, fmt_time, plural
from sbi_ui.messages import flash, show_run_failure
from sbi_ui.naming import is_abc, is_amortized, method_title, model_title_of, rounds_text, run_title, status_badge
from sbi_ui.navigation import CHECK, EXPLORE, ROUNDS
from sbi_ui.ood_view import ood_warning
from sbi_ui.owner import read_only_notice
from sbi_ui.reference_view import reference_c2st_view
from sbi_ui.sampling_view import abc_series, sampling_notes
from sbi_ui.resources import jobs, store
from sbi_ui.resume_view import resume_button, resumed_note
from sbi_ui.run_context import run_context, shown_truth
from sbi_ui.session import POLL_S, url_params
from sbi_ui.user_text import plain


__all__ = ["ESTIMATOR_WORDS", "run_header", "live_view"]

_log = logging.getLogger(__name__)

ESTIMATOR_WORDS = {"nsf": "neural spline flow (NSF)", "maf": "masked autoregressive flow (MAF)"}


def _spec_line(info) -> str:
    s = info.spec
    network = ("no network (keeps the closest simulations)" if is_abc(s) else
               f"{ESTIMATOR_WORDS.get(s.density_estimator, s.density_estimator)} "
               f"of {plural(s.num_transforms, 'layer')}, {s.hidden_features} units wide")
    return (f"{plain(model_title_of(s))} · {method_title(s.method)} · {rounds_text(s)} × "
            f"{s.simulations_per_round:,} simulations · {network} · seed {s.seed}")


def _cancelled_text(info, tr, total: int) -> str:
    """What a cancelled run kept, in words that are true for it."""
    if not tr.sims and not tr.ep_round and not tr.rounds:
        return "This run was cancelled before it started: nothing was simulated or trained."
    kept = tr.rounds_done
    r = tr.current_round
    if r < kept:  # the cancel came between rounds
        where = f"after round {kept} of {total} had finished"
    else:
        ep = tr.epochs_in(r)
        where = (f"during round {r + 1} of {total}, after {plural(ep, 'epoch')} of training" if ep
                 else f"during round {r + 1} of {total}, while it was simulating")
    if kept == 0:
        text = (f"This run was cancelled {where}, before any round had finished, so it has no posterior: "
                "a cancel drops the round in progress.")
        if store().stop_requested(info.id):
            text += (" You asked to stop and keep what is trained, but round 1 was still simulating: no "
                     "network had been trained yet.")
        else:
            text += " To keep a partly trained network, use **Stop and keep what is trained** instead."
        return text
    done = "round 1 had finished and is" if kept == 1 else f"rounds 1-{kept} had finished and are"
    dropped = "" if r < kept else f"; the unfinished round {r + 1} was dropped"
    return f"This run was cancelled {where}. Before that, {done} kept, shown below{dropped}."


def _status(info, tr, total: int) -> None:
    if info.status == "queued":
        pos = jobs().queue_position(info.id)
        st.info(
            f"Queued: **position {pos or 1}** in line. It starts by itself as soon as a worker is free "
            f"(this machine trains {plural(jobs().max_running, 'run')} at a time).",
            icon=":material/hourglass_top:",
        )
        st.progress(0.0, text="Waiting for a free worker...")
    elif info.status == "running":
        refused = jobs().ending_unrecorded(info.id)
        if refused:  # its task has ended, but the store would not take the ending (a full disk, ...)
            st.error("This run has stopped: it could not save its results. " + plain(refused)
                     + " The run is marked failed as soon as the store can be written again.",
                     icon=":material/error:")
            return
        frac, text, _ = tr.progress(info, calibration())
        st.progress(frac, text=text)
        if store().stop_requested(info.id):
            r = tr.current_round
            st.info(f"Stopping: round {r + 1} ends after the epoch in progress, and its best network so far "
                    "becomes its posterior.", icon=":material/pause_circle:")
    elif info.status == "done":
        _, text, _ = tr.progress(info)
        st.success(text, icon=":material/check_circle:")
    elif info.status == "failed":
        show_run_failure(info, tr)
    elif info.status == "cancelled":
        st.warning(_cancelled_text(info, tr, total), icon=":material/cancel:")


def _summary(info, tr, total: int) -> str:
    """The run's numbers on one line (four tiles cut their values off on a 1024-pixel projector)."""
    epochs = ("" if is_abc(info.spec)  # ABC trains nothing: no epochs to count
              else f" &nbsp;·&nbsp; :material/model_training: **{tr.epochs_done:,}** epochs trained")
    return (f":material/replay: **{tr.rounds_done} / {total}** rounds finished"
            f" &nbsp;·&nbsp; :material/casino: **{tr.simulations_done:,}** simulations{epochs}"
            f" &nbsp;·&nbsp; :material/timer: **{fmt_duration(info.seconds).replace(' ', '&nbsp;')}**")


def live_view(run_id: str, was_status: str) -> None:
    """The live part: polls the store while the run is active, stops when it ends."""
    was_active = was_status in ("queued", "running")

    drawn = {"fresh": True}  # the page's own run reads the store now; the fragment's reruns share reads
    interval = live_cache.poll_interval(POLL_S) if was_active else None

    @st.fragment(run_every=interval)
    def live() -> None:
        shown = {"reload": False}  # the Reload button, drawn at most once per update
        try:
            update(shown)
        except Exception as err:  # noqa: BLE001 - say so on the page; the next poll may well succeed
            _log.warning("the live view of run %s failed", run_id, exc_info=True)
            _stopped_updating(run_id, _view_watch(run_id).fail(err), shown)

    def update(shown: dict) -> None:
        fresh, drawn["fresh"] = drawn["fresh"], False
        live_cache.watch(store(), run_id, _session_id())
        info = live_cache.run_status(run_id, jobs(), store(), fresh=fresh)  # shared by the run's watchers
        if info is None:
            st.warning(f"Run `{run_id}` is no longer in the store.")
            return
        if was_active and info.status != was_status:
            st.rerun()  # once: redraw the whole page (its buttons too) for the new status
        tr = live_cache.shared_tracker(run_id, store(), fresh=fresh)  # one copy of the events for all watchers
        behind = _view_watch(run_id).observe(tr.after, info.status, *live_cache.store_progress(store(), run_id),
                                             now=time.monotonic(), poll_s=interval or POLL_S)
        if behind:
            _stopped_updating(run_id, behind, shown)
        ctx = run_context(info)
        total = tr.num_rounds or info.spec.rounds
        _status(info, tr, total)
        with st.container(key=K.C_METRICS):
            st.markdown(_summary(info, tr, total),
                        help="A round simulates, then trains the network on all simulations so far; an epoch "
                        "is one pass of training over them. The time counts from the start of the run "
                        "(waiting in the queue not included).")
        invalid = sum(bad for _, _, bad in tr.sims.values())
        if invalid:
            st.caption(f":material/warning: {invalid:,} simulation{'s' if invalid != 1 else ''} returned NaN or "
                       "infinity and {} left out of training.".format("were" if invalid != 1 else "was"))
        if len(tr.samples):
            ood_warning(run_id, ctx.x_obs, ctx.obs_labels)  # before the posterior it concerns
        left, right = st.columns([1, 1])
        rounds = _rounds_version(tr)
        with left:  # the figures are built once per change for all the run's watchers (live_cache)
            if is_abc(info.spec):
                shared_chart(run_id, "epsilon", rounds, lambda: plots.epsilon_figure(*abc_series(tr)),
                             key="train_epsilon_chart")
            else:
                shared_chart(run_id, "loss", (tr.after, rounds), lambda: plots.loss_figure(
                    tr.ep_round, tr.ep_epoch, tr.ep_train, tr.ep_val, tr.best_epochs()), key="train_loss_chart")
        with right:
            if info.is_terminal and not len(tr.samples):
                st.info("No round finished, so there is no posterior cloud to show.", icon=":material/info:")
            else:
                truth = shown_truth(ctx)
                shared_chart(run_id, "cloud" if truth is None else "cloud+truth", rounds,
                             lambda: plots.posterior_rounds_figure(tr.samples, 0, 1, ctx.labels, ctx.bounds, truth),
                             key="train_cloud_chart")
                reference_c2st_view(tr, ctx, key="train_c2st_chart")
                sampling_notes(tr)
        stopped = [int(r["round"]) + 1 for r in tr.rounds if r.get("stopped_by_request")]
        st.caption(
            "Left: the loss on training and held-out validation data after every epoch; a star marks the "
            "best epoch of each round, whose network is kept (early stopping). The loss jumps up when a new "
            "round starts: the network meets new simulations (and SNPE's later rounds use the contrastive "
            "loss), so compare losses within a round, not across rounds. Right: samples of the posterior at "
            "the observation after each round, light to dark. The words are explained at the bottom of the page."
            + (" The dashed box is the prior's range." if ctx.prior.dim > 1 else "")
            + (f" Round {stopped[0]} was stopped early at your request: its posterior is the best network "
               "trained until then." if stopped else "")
        )
        if info.status == "done":
            c1, c2, c3, _ = st.columns([1, 1, 1, 1])
            c1.page_link(ROUNDS, label="See it round by round", icon=":material/animation:",
                         query_params=url_params(run_id))
            c2.page_link(CHECK, label="Can I trust it? Check", icon=":material/fact_check:",
                         query_params=url_params(run_id))
            if is_amortized(info.spec):
                c3.page_link(EXPLORE, label="Explore other observations", icon=":material/explore:",
                             query_params=url_params(run_id))

    live()


def _view_watch(run_id: str) -> live_cache.ViewWatch:
    """This session's :class:`~sbi_ui.live_cache.ViewWatch` of ``run_id``'s live view."""
    watches = st.session_state.setdefault(K.S_LIVE_WATCH, {})
    if run_id not in watches:
        watches[run_id] = live_cache.ViewWatch()
    return watches[run_id]


def _stopped_updating(run_id: str, why: str, shown: dict) -> None:
    """The notice that this live view has stopped updating, and why, with a Reload button that draws
    the whole page anew from the store (and drops the run's shared feed, which may be what is stuck)."""
    st.warning(f"This view stopped updating ({plain(why)}). Press **Reload** to catch up.",
               icon=":material/sync_problem:")
    if shown["reload"]:
        return
    shown["reload"] = True
    if st.button("Reload", key=K.W_LIVE_RELOAD, icon=":material/refresh:",
                 help="Draw this page again from the run store."):
        live_cache.drop(store(), run_id)
        st.session_state.get(K.S_LIVE_WATCH, {}).pop(run_id, None)
        st.rerun(scope="app")


def _rounds_version(tr) -> tuple:
    """What the round clouds of ``tr`` depend on: each finished round's number and time (a run that is
    resumed drops rounds and adds them again, so their count alone would not do)."""
    return tuple((r.get("round"), r.get("time")) for r in tr.rounds)


def _session_id() -> str | None:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else None


def _actions(run_id: str, info) -> None:
    """Stop-and-keep and Cancel side by side (a running run), or Cancel alone (a queued one)."""
    b1, b2, _ = st.columns([1.3, 1, 1])
    if info.status == "running":
        asked = store().stop_requested(run_id)
        if b1.button("Stop and keep what is trained", key=K.W_STOP_KEEP, icon=":material/pause_circle:",
                     width="stretch", disabled=asked,
                     help="End the run after the epoch in progress. The best network trained so far becomes "
                     "this round's posterior, shown like any round; finished rounds are kept too."):
            jobs().stop(run_id)
            flash("info", "Stop requested: the run ends after this epoch and keeps what is trained.")
            st.rerun()
    if (b2 if info.status == "running" else b1).button(
            "Cancel run", key=K.W_CANCEL, icon=":material/stop_circle:", width="stretch",
                 help="Stop this run at once. Rounds that already finished are kept; the round in "
                 "progress is dropped."):
        jobs().cancel(run_id)
        flash("info", "Cancel requested: the run stops within an epoch.")
        st.rerun()


def run_header(run_id: str, info: RunInfo) -> None:
    """The run's title, status badge and settings on one line; Stop and Cancel while it is active."""
    with st.container(key=K.C_RUN_HEADER):
        head, badge = st.columns([5, 1], vertical_alignment="center")
        head.subheader(plain(run_title(info)))
        with badge:
            status_badge(info)
        st.caption(f"{_spec_line(info)} · id `{run_id}` · created {fmt_time(info.created)}")
        resumed_note(info)
        if info.is_active:
            if not read_only_notice(info):
                _actions(run_id, info)
        elif info.status in ("failed", "cancelled"):
            b1, _, _ = st.columns([1.3, 1, 1])
            resume_button(info, K.W_RESUME, where=b1)

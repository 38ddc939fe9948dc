"""The Train page's live view of a run: its header (title, settings, Stop / Cancel), status and
progress, and the loss curves and posterior clouds, redrawn from the store while the run is active
(and, for a while after it ended, until every round's C2ST against the exact posterior has come).

A queued run says where it stands in line and about how long it waits
(:meth:`JobManager.place_in_line <sbi_core.jobs.manager.JobManager.place_in_line>`). Runs
take turns on the workers one round at a time (:mod:`sbi_core.store.turns`), so a queued
run may already have finished rounds: they stay drawn while it waits for its next turn."""

from __future__ import annotations

import logging
import time
from typing import Optional

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from sbi_core import plots
from sbi_core.methods.catalogue import loss_smoothing, method_info
from sbi_core.run.summary import summary_short
from sbi_core.store.runs import RunInfo
from sbi_core.store.turns import TURN_REASON, PlaceInLine

from sbi_ui import keys as K
from sbi_ui import live_cache
from sbi_ui.charts import shared_chart
from sbi_ui.estimate import calibration
from sbi_ui.format import fmt_duration, fmt_time, plural
from sbi_ui.messages import flash, show_run_failure
from sbi_ui.naming import is_abc, is_amortized, method_title, model_title_of, rounds_text, run_title, status_badge
from sbi_ui.navigation import CHECK, EXPLORE, ROUNDS
from sbi_ui.ood_view import model_check_view, ood_warning
from sbi_ui.owner import read_only_notice
from sbi_ui.reference_view import awaits_reference, reference_c2st_view
from sbi_ui.sampling_view import abc_series, sampling_notes
from sbi_ui.resources import jobs, store
from sbi_ui.resume_view import resume_button, resumed_note
from sbi_ui.run_context import run_context, shown_truth
from sbi_ui.session import POLL_S, url_params
from sbi_ui.user_text import plain


__all__ = ["ESTIMATOR_WORDS", "network_words", "REFERENCE_WAIT_S", "run_header", "live_view", "wait_words", "place_words"]

_log = logging.getLogger(__name__)

ESTIMATOR_WORDS = {"nsf": "neural spline flow (NSF)", "maf": "masked autoregressive flow (MAF)"}
# an ended run's view redraws this long after its end while a round's C2ST is still to come (one put
# off while others waited comes when the workers are free; one lost on the way is not awaited forever)
REFERENCE_WAIT_S = 600.0


def network_words(spec) -> str:
    """What the run's method trains, in words: the flow, the vector field or the classifier, and its size.

    Only the settings the method reads are named (catalogue's ``network``): a vector field has residual
    blocks and no flow kind; NRE's classifier has a width only."""
    kind = method_info(spec.method).network
    if kind == "none":
        return "no network (keeps the closest simulations)"
    if kind == "vector_field":
        return (f"a vector field (residual network) of {plural(spec.num_transforms, 'block')}, "
                f"{spec.hidden_features} units wide")
    if kind == "classifier":
        return f"a classifier (ratio network), {spec.hidden_features} units wide"
    return (f"{ESTIMATOR_WORDS.get(spec.density_estimator, spec.density_estimator)} "
            f"of {plural(spec.num_transforms, 'layer')}, {spec.hidden_features} units wide")


def _spec_line(info) -> str:
    s = info.spec
    network = network_words(s)
    summary = None if is_abc(s) else summary_short(s)  # a series, an image, trials: what the network reads
    return (f"{plain(model_title_of(s))} · {method_title(s.method)} · {rounds_text(s)} × "
            f"{s.simulations_per_round:,} simulations · {network}" + (f" · {summary}" if summary else "")
            + f" · seed {s.seed}")


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


def wait_words(seconds: float) -> str:
    """``"about 40 s"``, ``"about 2 min"``, ``"about 1 h 10 min"``; under 10 s ``"a few seconds"``
    (an estimate: never "0 s", and rounded as coarsely as it is known)."""
    s = float(seconds)
    if s < 10:
        return "a few seconds"
    if s < 60:
        return f"about {int(5 * round(s / 5))} s"
    if s < 3600:
        return f"about {max(1, round(s / 60))} min"
    h, m = divmod(int(round(s / 60)), 60)
    return f"about {h} h" + (f" {m} min" if m else "")


def place_words(place: PlaceInLine) -> str:
    """The short form: ``"Position 13 in line, about 40 s."`` (``"... in line for round 2, ..."`` for a
    run that has finished rounds)."""
    which = f" for round {place.turn + 1}" if place.turn else ""
    return f"Position {place.position} in line{which}, {wait_words(place.wait_s)}."


def _ahead_words(place: PlaceInLine) -> str:
    """``"12 runs ahead of yours get their first round first"``."""
    n = place.ahead
    return (f"{plural(n, 'run')} ahead of yours {'gets its' if n == 1 else 'get their'} first round first"
            if place.turn == 0 else f"{plural(n, 'run')} ahead {'takes' if n == 1 else 'take'} a round")


def _queued_text(info, place: Optional[PlaceInLine], total: int) -> str:
    """Where the queued run stands and about how long it waits, in words (only numbers computed here:
    nothing a user typed)."""
    if place is None:  # it left the line between two reads: the next poll shows it running
        return "Queued: it is starting now."
    wait = wait_words(place.wait_s)
    workers = f"this machine trains {plural(place.workers, 'run')} at a time"
    if place.turn == 0:
        if place.ahead == 0:
            return f"Next in line: it starts as soon as a worker is free, in {wait} ({workers})."
        return (f"Queued: **position {place.position}** in line. {wait[0].upper()}{wait[1:]}: "
                f"{_ahead_words(place)} ({workers}).")
    when = "as soon as a worker is free" if place.ahead == 0 else f"after {_ahead_words(place)}"
    round_words = f"round {place.turn + 1} of {total}"
    last = store().last_event(info.id, types=["resumed"])
    if last is not None and last[1].get("reason") == TURN_REASON:
        return (f"Waiting for its turn: {round_words} starts {when}, in {wait}. Runs take turns one round "
                "at a time so that every student sees a first cloud soon.")
    return f"Queued to go on: {round_words} starts {when}, in {wait} ({workers})."


def _status(info, tr, total: int) -> None:
    if info.status == "queued":
        place = jobs().place_in_line(info.id)
        st.info(_queued_text(info, place, total), icon=":material/hourglass_top:")
        done = tr.rounds_done
        if done:  # it took turns (or was resumed): its finished rounds are real progress
            st.progress(min(1.0, done / max(total, 1)),
                        text=f"{done} of {plural(total, 'round')} finished · waiting for a free worker for "
                        f"round {min(done + 1, total)}")
        else:
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


def _polls(info, tr) -> bool:
    """Whether the live view keeps redrawing: while the run is active, and for
    :data:`REFERENCE_WAIT_S` after it ended while a round's C2ST is still to come."""
    if info.is_active:
        return True
    return (info.finished is not None and time.time() - info.finished < REFERENCE_WAIT_S
            and awaits_reference(tr))


def _awaits_late_reference(run_id: str) -> bool:
    """Whether the view of the ended run ``run_id`` keeps redrawing for a C2ST still to come
    (:func:`_polls`); False when the store cannot be read now (the live view says why)."""
    try:
        info = live_cache.run_status(run_id, jobs(), store(), fresh=True)
        return info is not None and _polls(info, live_cache.shared_tracker(run_id, store(), fresh=True))
    except Exception:  # noqa: BLE001 - the live view's own update reports what fails
        _log.warning("could not tell whether run %s awaits a C2ST", run_id, exc_info=True)
        return False


def live_view(run_id: str, was_status: str) -> None:
    """The live part: polls the store while the run is active (or an ended run's C2ST is still to
    come, :func:`_polls`), stops when it ends; the page is drawn anew when either changes."""
    was_active = was_status in ("queued", "running")

    # the page's own run reads the store now (an ended run's just did, for _awaits_late_reference);
    # the fragment's reruns share reads
    drawn = {"fresh": was_active}
    polling = was_active or _awaits_late_reference(run_id)
    interval = live_cache.poll_interval(POLL_S) if polling else None

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
        # once the status changes, the whole page is drawn anew (its buttons too); a run that has
        # just ended first shows its last cloud here, so the student sees it a full page draw sooner
        changed = was_active and info.status != was_status
        if changed and not info.is_terminal:
            st.rerun()
        tr = live_cache.shared_tracker(run_id, store(), fresh=fresh)  # one copy of the events for all watchers
        if polling and not was_active and (info.status != was_status or not _polls(info, tr)):
            st.rerun()  # the late C2ST came (or is no longer awaited), or the run was resumed: redraw once
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
        # before the posterior it concerns: the run's own test of the observation (as soon as the first
        # simulations are done), else (a run from before that test) the older out-of-range warning
        if not model_check_view(tr.model_check) and len(tr.samples):
            ood_warning(run_id, ctx.x_obs, ctx.obs_labels)
        if info.status == "queued" and not changed and not tr.rounds and not tr.ep_epoch:
            # nothing trained yet: two empty charts would cost a class of thirty queued students two
            # plotly figures per poll each, on the server the runs ahead of theirs need
            st.caption("The loss curve and the posterior cloud appear here as soon as this run starts.")
            return
        left, right = st.columns([1, 1])
        rounds = _rounds_version(tr)
        with left:  # the figures are built once per change for all the run's watchers (live_cache)
            if is_abc(info.spec):
                shared_chart(run_id, "epsilon", rounds, lambda: plots.epsilon_figure(*abc_series(tr)),
                             key="train_epsilon_chart")
            else:
                shared_chart(run_id, "loss", (tr.after, rounds), lambda: plots.loss_figure(
                    tr.ep_round, tr.ep_epoch, tr.ep_train, tr.ep_val, tr.best_epochs(),
                    smooth=loss_smoothing(info.spec.method)), key="train_loss_chart")
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
        if changed and not _polls(info, tr):  # it ended: its last cloud is drawn above
            # with a C2ST still to come, this view keeps polling and the whole page is drawn anew once,
            # when it arrives (a shared run's thirty watchers drew their pages twice in three seconds)
            st.rerun()

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

"""Train: set up and start a run, then follow it live (progress, losses, posterior clouds)."""

from __future__ import annotations

import streamlit as st

from sbi_core import RunSpec, SBIError, plots

from pages import ui_common as ui
from pages import ui_state as K

ui.page_guard()

OBS_TEXT = {
    "default": "the model's example observation",
    "simulate": "simulated at a chosen (hidden) parameter",
    "typed": "typed values",
    "upload": "set on Your model & data",
}
ESTIMATORS = {"nsf": "Neural spline flow (NSF)", "maf": "Masked autoregressive flow (MAF)"}


def _settings() -> None:
    """The form for a new run; Start writes it to the store and opens it here."""
    cfg = ui.model_config()
    ref = cfg.get("simulator_ref")  # an uploaded simulator (Your model & data page), else a built-in
    sim = ui.model_view(cfg)
    dim = len(cfg["prior"]) if cfg["prior"] else sim.theta_dim
    st.markdown(
        f"**Model:** {sim.title} · **prior:** {cfg.get('prior_text') or ('your edited prior' if cfg['prior'] else 'the model default')} "
        f"({dim} parameters) · **observation:** {OBS_TEXT.get(cfg.get('obs_source'), 'default')}"
    )
    st.page_link(ui.MODEL, label="Change the model, prior or observation", icon=":material/tune:")
    c1, c2, c3, c4 = st.columns([1.5, 1, 1, 1])
    method = c1.radio(
        "Method",
        ["snpe", "tsnpe", "npe"],
        format_func=ui.METHOD_NAMES.get,
        key=K.W_METHOD,
        horizontal=True,
        help="Sequential methods refine the posterior for this one observation round by round. "
        "SNPE (APT) simulates from the last posterior and corrects for it with a contrastive loss; "
        "TSNPE simulates from the prior cut down to where the last posterior lives and trains with the plain "
        "loss: about 2-3x less computing per round, equally accurate on two moons (bench/RESULTS.md). "
        "Amortized NPE trains once on the prior and then answers any observation instantly (see Explore).",
        persist_state="session",
    )
    sims = c2.number_input(
        "Simulations per round", min_value=100, max_value=100_000, value=1000, step=100, key=K.W_SIMS,
        help="How many (parameter, data) pairs each round simulates. More is more accurate and slower.",
        persist_state="session",
    )
    rounds = c3.number_input(
        "Rounds", min_value=1, max_value=20, value=4, step=1, key=K.W_ROUNDS, disabled=method == "npe",
        help="Sequential rounds: each one simulates where the previous posterior points. "
        "Amortized NPE always uses one round.",
        persist_state="session",
    )
    seed = c4.number_input(
        "Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key=K.W_SEED,
        help="Same settings and seed give the same result.", persist_state="session",
    )
    with st.expander("Advanced", icon=":material/settings:"):
        a1, a2, a3, a4, a5 = st.columns(5)
        estimator = a1.selectbox(
            "Estimator", list(ESTIMATORS), format_func=ESTIMATORS.get, key=K.W_ESTIMATOR,
            help="The normalizing flow that learns the posterior. NSF is more flexible; MAF is simpler.",
            persist_state="session",
        )
        hidden = a2.number_input(
            "Hidden units", min_value=8, max_value=512, value=50, step=8, key=K.W_HIDDEN,
            help="Width of the flow's neural networks (its size).", persist_state="session",
        )
        transforms = a3.number_input(
            "Flow layers", min_value=1, max_value=12, value=4, step=1, key=K.W_TRANSFORMS,
            help="Number of transforms stacked in the flow (its depth).", persist_state="session",
        )
        max_epochs = a4.number_input(
            "Max epochs", min_value=5, max_value=2000, value=100, step=5, key=K.W_MAX_EPOCHS,
            help="Upper limit on training passes over the data per round.", persist_state="session",
        )
        patience = a5.number_input(
            "Patience", min_value=2, max_value=200, value=10, step=1, key=K.W_PATIENCE,
            help="Early stopping: stop a round after this many epochs without a better validation loss "
            "and keep the best network.", persist_state="session",
        )
        title = st.text_input(
            "Run title (optional)", key=K.W_TITLE, placeholder=f"{sim.title}, {ui.METHOD_NAMES[method]}",
            help="A name for this run in the lists.",
        )
    if st.button("Start", key=K.W_START, type="primary", icon=":material/play_arrow:",
                 help="Start the run in the background; its live view opens below."):
        try:
            spec = RunSpec(
                simulator=ref or cfg["simulator"],
                prior=cfg["prior"],
                observation=cfg["observation"],
                true_theta=cfg["true_theta"],
                method=method,
                num_rounds=1 if method == "npe" else int(rounds),
                simulations_per_round=int(sims),
                density_estimator=estimator,
                hidden_features=int(hidden),
                num_transforms=int(transforms),
                max_epochs=int(max_epochs),
                patience=int(patience),
                seed=int(seed),
                title=title.strip() or f"{sim.title}, {ui.METHOD_NAMES[method]}",
            )
            ui.start_run(spec, page=ui.TRAIN)
        except SBIError as err:
            st.error(str(err), icon=":material/error:")
        except Exception as err:
            ui.show_error(err, "starting the run")


def _spec_line(info) -> str:
    s = info.spec
    rounds = "1 round" if s.method == "npe" else f"{s.num_rounds} rounds"
    return (
        f"{ui.model_title_of(s)} · {ui.METHOD_NAMES.get(s.method, s.method)} · {rounds} × "
        f"{s.simulations_per_round:,} simulations · {str(s.density_estimator).upper()} "
        f"({s.num_transforms} layers, {s.hidden_features} units) · seed {s.seed}"
    )


def _status(info, tr) -> None:
    if info.status == "queued":
        pos = ui.jobs().queue_position(info.id)
        st.info(
            f"Queued: **position {pos or 1}** in line. It starts by itself as soon as a worker is free "
            "(this machine trains one run at a time).",
            icon=":material/hourglass_top:",
        )
        st.progress(0.0, text="Waiting for a free worker...")
    elif info.status == "running":
        frac, text, _ = tr.progress(info)
        st.progress(frac, text=text)
    elif info.status == "done":
        _, text, _ = tr.progress(info)
        st.success(text, icon=":material/check_circle:")
    elif info.status == "failed":
        term = tr.terminal or {}
        ui.show_failure(info.message or term.get("message"), info.detail or term.get("detail"))
    elif info.status == "cancelled":
        st.warning(
            "This run was cancelled. Rounds that finished before are kept and shown below.",
            icon=":material/cancel:",
        )


def _live(run_id: str, was_active: bool) -> None:
    """The live part: polls the store while the run is active, stops when it ends."""

    @st.fragment(run_every=ui.POLL_S if was_active else None)
    def live() -> None:
        info = ui.jobs().status(run_id)
        if info is None:
            st.warning(f"Run `{run_id}` is no longer in the store.")
            return
        if was_active and info.is_terminal:
            st.rerun()  # once: redraw the whole page in its final state, and stop polling
        tr = ui.tracker(run_id)
        ctx = ui.run_context(info)
        _status(info, tr)
        total = tr.num_rounds or (1 if info.spec.method == "npe" else info.spec.num_rounds)
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Rounds finished", f"{tr.rounds_done} / {total}", border=True)
        m2.metric("Simulations", f"{tr.simulations_done:,}", border=True)
        m3.metric("Epochs trained", f"{tr.epochs_done}", border=True)
        m4.metric("Time", ui.fmt_duration(info.seconds), border=True)
        invalid = sum(bad for _, _, bad in tr.sims.values())
        if invalid:
            st.caption(f":material/warning: {invalid:,} simulation{'s' if invalid != 1 else ''} returned NaN or "
                       "infinity and {} left out of training.".format("were" if invalid != 1 else "was"))
        left, right = st.columns([1, 1])
        with left:
            st.plotly_chart(
                plots.loss_figure(tr.ep_round, tr.ep_epoch, tr.ep_train, tr.ep_val, tr.best_epochs()),
                key="train_loss_chart",
            )
        with right:
            st.plotly_chart(
                plots.posterior_rounds_figure(
                    tr.samples, 0, 1, ctx.labels, ctx.bounds, ui.shown_truth(ctx)
                ),
                key="train_cloud_chart",
            )
        st.caption(
            "Left: the loss on training and held-out validation data after every epoch; a star marks the "
            "best epoch of each round, whose network is kept (early stopping). Right: samples of the "
            "posterior at the observation after each round, light to dark."
            + (" The dashed box is the prior's range." if ctx.prior.dim > 1 else "")
        )
        if info.status == "done":
            c1, c2, _ = st.columns([1, 1, 2])
            c1.page_link(ui.ROUNDS, label="See it round by round", icon=":material/animation:",
                         query_params={K.QP_RUN: run_id})
            if info.spec.method == "npe":
                c2.page_link(ui.EXPLORE, label="Explore other observations", icon=":material/explore:",
                             query_params={K.QP_RUN: run_id})

    live()


st.title("Train")
st.markdown(
    "Set up a run and press **Start**: a background worker simulates, trains a normalizing flow and "
    "reports every epoch here as it happens. The run keeps going if you leave or refresh the page; its id "
    "stays in the URL. Try a sequential run with 3-4 rounds and watch each new cloud shrink."
)

run_id = ui.current_run_id()
info = ui.jobs().status(run_id) if run_id else None
with st.expander("Set up a new run", expanded=info is None, icon=":material/add_circle:"):
    _settings()

if run_id is None:
    st.info("No run yet. Set one up above, or start the guided demo on **Home**.", icon=":material/info:")
elif info is None:
    st.warning(f"There is no run `{run_id}` in this run store. It may have been deleted; start a new one above.")
else:
    head, actions = st.container(key="train_run_header").columns([4, 1], vertical_alignment="center")
    with head:
        st.subheader(ui.run_title(info))
        st.caption(f"{_spec_line(info)} · id `{run_id}` · created {ui.fmt_time(info.created)}")
    with actions:
        if info.is_active:
            if st.button("Cancel run", key=K.W_CANCEL, icon=":material/stop_circle:", width="stretch",
                         help="Stop this run. Rounds that already finished are kept."):
                ui.jobs().cancel(run_id)
                ui.flash("info", "Cancel requested: the run stops within an epoch.")
                st.rerun()
        else:
            ui.status_badge(info)
    _live(run_id, info.is_active)

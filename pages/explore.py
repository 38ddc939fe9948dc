"""Explore: an amortized posterior answers new observations at once; a predictive check."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st
import torch

from sbi_core import RunSpec, SBIError, plots

from pages import ui_common as ui
from pages import ui_state as K

ui.page_guard()

NUM_SAMPLES = 2000
CLOUD_POINTS = 500  # markers drawn in the cloud (the histograms use every sample): keeps a redraw fast
SAMPLE_SEED = 0


@st.cache_resource(show_spinner="Loading the trained posterior...", max_entries=8)
def _posterior(root: str, run_id: str):
    """The run's final posterior, loaded once per run (shared by all sessions)."""
    return ui.store().load_posterior(run_id)


@st.cache_data(show_spinner=False, max_entries=16)
def _slider_ranges(root: str, run_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Per observation component, the 1 % and 99 % quantiles of the run's training simulations."""
    path = ui.store().round_dir(run_id, 0) / "x.npy"
    x = None
    if path.is_file():
        try:
            x = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            x = None
    if x is None or len(x) == 0:  # no saved simulations: simulate from the prior
        info = ui.store().get_run(run_id)
        ctx = ui.run_context(info)
        theta = ctx.prior.sample((2000,), generator=torch.Generator().manual_seed(0))
        x = ctx.simulator.simulate(theta, seed=0).numpy()
    x = x[np.isfinite(x).all(1)]
    return np.quantile(x, 0.01, axis=0), np.quantile(x, 0.99, axis=0)


def _reset(run_id: str, k: int) -> None:
    for c in range(k):
        st.session_state.pop(K.w_explore_x(run_id, c), None)


def _start_amortized() -> None:
    cfg = ui.model_config()
    sim = ui.model_view(cfg)
    spec = RunSpec(
        simulator=cfg.get("simulator_ref") or cfg["simulator"], prior=cfg["prior"], observation=cfg["observation"],
        true_theta=cfg["true_theta"], method="npe", num_rounds=1, simulations_per_round=2000,
        hidden_features=50, num_transforms=4, max_epochs=100, patience=10, seed=0,
        title=f"{sim.title}, amortized",
    )
    ui.start_run(spec, page=ui.TRAIN)


st.title("Explore")
st.markdown(
    "An **amortized** posterior is trained once on simulations from the whole prior; afterwards it answers "
    "for *any* observation in milliseconds, without simulating or training again. Move the sliders to "
    "change the observation and watch the posterior follow; the predictive check below shows whether "
    "data simulated from the posterior look like the observation."
)

current = ui.current_run_id()
cur_info = ui.jobs().status(current) if current else None
if cur_info is not None and cur_info.spec.method != "npe":
    st.info(
        f"The current run (*{ui.run_title(cur_info)}*) is **sequential**: its posterior is tuned to one "
        "observation, so it is not shown here. Pick an amortized run below, or train one.",
        icon=":material/info:",
    )

info = ui.pick_run(K.W_EXPLORE_RUN, "Amortized run", filter_fn=lambda r: r.spec.method == "npe",
                   help="Runs trained with amortized NPE. The current run is chosen first if it is one.")
if info is None:
    st.info("There is no amortized run yet. Train one (on the model set on the **Model** page) in about a "
            "minute:", icon=":material/info:")
    if st.button("Train an amortized posterior", key="explore_start_npe", type="primary",
                 icon=":material/play_arrow:", help="Starts amortized NPE with 2,000 simulations."):
        _start_amortized()
    st.stop()

if info.status != "done":
    tr = ui.tracker(info.id)
    if info.is_active:
        st.info("This run is still training; the explorer opens when it has finished.",
                icon=":material/hourglass_top:")
        ui.watch_run(info.id, info)
    elif info.status == "failed":
        term = tr.terminal or {}
        ui.show_failure(info.message or term.get("message"), info.detail or term.get("detail"))
    else:
        st.warning("This run was cancelled before it finished, so it has no posterior to explore.")
    st.stop()

ctx = ui.run_context(info)
try:
    posterior = _posterior(ui.store_root(), info.id)
    lo, hi = _slider_ranges(ui.store_root(), info.id)
except SBIError as err:
    st.error(str(err), icon=":material/error:")
    st.stop()
x_ref = ctx.x_obs if ctx.x_obs is not None else (lo + hi) / 2
lo, hi = np.minimum(lo, x_ref), np.maximum(hi, x_ref)
same = hi <= lo
hi = np.where(same, lo + 1.0, hi)
dim = ctx.prior.dim
labels = ctx.labels


@st.fragment
def explorer() -> None:
    """Sliders, posterior and predictive check: moving a slider reruns only this part."""
    left, right = st.columns([1, 2.3], gap="large")
    x = []
    with left:
        st.markdown("**Observation**")
        st.caption("Ranges: 1 % to 99 % of the simulations the network was trained on.")
        for k, lab in enumerate(ctx.obs_labels):
            key = K.w_explore_x(info.id, k)
            step = float((hi[k] - lo[k]) / 200)
            x.append(st.slider(
                lab, min_value=float(lo[k]), max_value=float(hi[k]), value=float(x_ref[k]), step=step,
                format="%.3g", key=key, help=f"Observation component {lab}. Starts at the run's observation.",
            ))
        st.button("Back to the run's observation", key=K.W_EXPLORE_RESET, on_click=_reset,
                  args=(info.id, len(ctx.obs_labels)), icon=":material/restart_alt:",
                  help="Put every slider back to the observation the run was set up with.")
    x_t = torch.tensor(x, dtype=torch.float32)
    with right:
        if dim > 2:
            c1, c2, _ = st.columns([1, 1, 1])
            ix = c1.selectbox("x-axis", range(dim), index=0, format_func=lambda k: labels[k],
                              key=K.W_EXPLORE_X, help="Parameter on the horizontal axis.")
            iy = c2.selectbox("y-axis", range(dim), index=1, format_func=lambda k: labels[k],
                              key=K.W_EXPLORE_Y, help="Parameter on the vertical axis.")
        else:
            ix, iy = 0, min(1, dim - 1)
        t0 = time.perf_counter()
        try:
            samples = posterior.sample((NUM_SAMPLES,), x=x_t, seed=SAMPLE_SEED).numpy()
        except SBIError as err:
            st.warning(str(err), icon=":material/warning:")
            return
        ms = 1000 * (time.perf_counter() - t0)
        is_ref = ctx.x_obs is not None and np.allclose(x, ctx.x_obs, rtol=1e-4, atol=1e-6)
        truth = ui.shown_truth(ctx) if is_ref else None
        st.plotly_chart(
            plots.posterior_figure(samples, ix, iy, labels, ctx.bounds, truth,
                                   title="Posterior at the observation on the sliders",
                                   max_points=CLOUD_POINTS),
            key="explore_posterior",
        )
        st.caption(f"{NUM_SAMPLES:,} posterior samples drawn in {ms:.0f} ms (fixed seed, so the same "
                   "observation always gives the same picture)."
                   + (" The red star is the true parameter of the run's observation." if truth is not None
                      else ""))
    st.subheader("Posterior predictive check")
    if ctx.simulator is None:
        st.info("The predictive check needs the simulator, which is not available for this run.")
        return
    n = st.select_slider(
        "Simulations from the posterior", options=[100, 200, 300, 500, 1000], value=200, key=K.W_PPC_SIMS,
        help="How many posterior samples to run through the simulator for the check.",
    )
    x_pred = ctx.simulator.simulate(torch.as_tensor(samples[:n], dtype=torch.float32), seed=0).numpy()
    st.plotly_chart(
        plots.predictive_figure(x_pred, np.asarray(x), ctx.obs_labels,
                                title="Posterior predictive check: simulated data vs the observation"),
        key="explore_predictive",
    )
    st.caption("If the posterior is right, the observation (red) looks like a typical draw from the blue "
               "simulations. An observation far in a tail points to a poor fit or an unusual observation.")


explorer()

"""The Explore page's explorer: sliders for an observation, the amortized posterior at it
(redrawn as a slider moves, after a warning when the observation lies outside what the network was
trained on) and a posterior predictive check."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st
import torch

from sbi_core import RunSpec, SBIError, plots
from sbi_core.simulators.prior_predictive import check_observation, observation_ranges
from sbi_core.store.runs import RunInfo

from sbi_ui import keys as K
from sbi_ui.axes import axis_pickers
from sbi_ui.charts import chart
from sbi_ui.model_choice import ModelChoice
from sbi_ui.navigation import TRAIN
from sbi_ui.ood_view import ood_warning
from sbi_ui.resources import store
from sbi_ui.run_context import RunContext, run_context, shown_truth
from sbi_ui.session import start_run
from sbi_ui.user_text import plain

__all__ = ["AMORTIZED_DEFAULTS", "slider_ranges", "explorer", "start_amortized"]

NUM_SAMPLES = 2000
CLOUD_POINTS = 500  # markers drawn in the cloud (the histograms use every sample): keeps a redraw fast
SAMPLE_SEED = 0
SLIDER_COVERAGE = 0.98  # sliders span the central 98 % of the training simulations (and the observation)
# the run "Train an amortized posterior" starts on the current model
AMORTIZED_DEFAULTS = dict(method="npe", num_rounds=1, simulations_per_round=2000, hidden_features=50,
                          num_transforms=4, max_epochs=100, patience=10, seed=0)


@st.cache_data(show_spinner=False, max_entries=16)
def _training_simulations(root: str, run_id: str) -> np.ndarray:
    """The finite simulations the run was trained on (simulated from its prior when none were saved)."""
    path = store().round_dir(run_id, 0) / "x.npy"
    x = None
    if path.is_file():
        try:
            x = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            x = None
    if x is None or len(x) == 0:  # no saved simulations: simulate from the prior
        info = store().get_run(run_id)
        ctx = run_context(info)
        theta = ctx.prior.sample((2000,), generator=torch.Generator().manual_seed(0))
        x = ctx.simulator.simulate(theta, seed=0).numpy()
    return x[np.isfinite(x).all(1)]


@st.cache_data(show_spinner=False, max_entries=16)
def slider_ranges(root: str, run_id: str, x_obs: tuple[float, ...] | None,
                   labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, list, list]:
    """Slider ranges per observation component, and the labels of the components where the run's
    observation lies beyond every training simulation, and in their outer 1 % (the ranges hold it)."""
    x = _training_simulations(root, run_id)
    lo, hi = observation_ranges(x, x_obs, coverage=SLIDER_COVERAGE)
    outside, tail = [], []
    if x_obs is not None:
        check = check_observation(x, np.asarray(x_obs), obs_labels=labels)
        outside, tail = [c.label for c in check.outside], [c.label for c in check.tail]
    return lo, hi, outside, tail


def _reset(run_id: str, k: int) -> None:
    for c in range(k):
        st.session_state.pop(K.w_explore_x(run_id, c), None)


def start_amortized() -> None:
    """Start amortized NPE on the current model (:class:`~sbi_ui.model_choice.ModelChoice`) and open Train."""
    choice = ModelChoice.current()
    spec = RunSpec(**choice.to_spec_fields(), **AMORTIZED_DEFAULTS, title=f"{choice.view.title}, amortized")
    start_run(spec, page=TRAIN)


def _component_notes(outside: list, tail: list, said: bool) -> None:
    """Where the run's observation falls among the training simulations, component by component
    (nothing when ``said``: the warning before the posterior already names those components)."""
    if said:
        return
    if tail and not outside:
        st.info(f"The run's observation lies in the outer 1 % of the training simulations for "
                f"{plain(', '.join(tail))}: the network saw few data like it, so its answer there is less sure.",
                icon=":material/info:")
    if outside:
        st.warning(
            f"The run's observation lies beyond every training simulation for {plain(', '.join(outside))}. "
            "The network never saw data like it, so its posterior there is a guess (an extrapolation). "
            "Widen the prior on the Model page and train again, or move these sliders back inside.",
            icon=":material/warning:",
        )


@st.fragment
def explorer(info: RunInfo, ctx: RunContext, posterior, ranges: tuple) -> None:
    """Sliders, posterior and predictive check: moving a slider reruns only this part.

    ``ranges`` is :func:`slider_ranges`' ``(lo, hi, outside, tail)``.
    """
    lo, hi, outside, tail = ranges
    x_ref = np.asarray(ctx.x_obs, dtype=float).reshape(-1) if ctx.x_obs is not None else (lo + hi) / 2
    dim = ctx.prior.dim
    labels = ctx.labels
    notice = st.container()  # the run's observation per component (filled below, once the sliders are read)
    left, right = st.columns([1, 2.3], gap="large")
    x = []
    with left:
        st.markdown("**Observation**")
        st.caption("Sliders start at the run's observation and span the middle 98 % of the training "
                   "simulations, with room beyond the observation.")
        for k, lab in enumerate(ctx.obs_labels):
            key = K.w_explore_x(info.id, k)
            step = float((hi[k] - lo[k]) / 200)
            x.append(st.slider(
                plain(lab), min_value=float(lo[k]), max_value=float(hi[k]), value=float(x_ref[k]), step=step,
                format="%.3g", key=key, help=f"Observation component {plain(lab)}. Starts at the run's observation.",

            ))
        st.button("Back to the run's observation", key=K.W_EXPLORE_RESET, on_click=_reset,
                  args=(info.id, len(ctx.obs_labels)), icon=":material/restart_alt:",
                  help="Put every slider back to the observation the run was set up with.")
    x_t = torch.tensor(x, dtype=torch.float32)
    is_ref = ctx.x_obs is not None and np.allclose(x, ctx.x_obs, rtol=1e-4, atol=1e-6)
    with right:
        ix, iy = axis_pickers(dim, labels, K.W_EXPLORE_X, K.W_EXPLORE_Y, widths=(1, 1, 1),
                              help_x="Parameter on the horizontal axis.", help_y="Parameter on the vertical axis.")
        ood = ood_warning(info.id, x, ctx.obs_labels)  # the observation on the sliders, before its posterior
        with notice:
            _component_notes(outside, tail, said=is_ref and ood is not None and ood.warn)
        t0 = time.perf_counter()
        try:
            samples = posterior.sample((NUM_SAMPLES,), x=x_t, seed=SAMPLE_SEED).numpy()
        except SBIError as err:
            st.warning(str(err), icon=":material/warning:")
            return
        ms = 1000 * (time.perf_counter() - t0)
        truth = shown_truth(ctx) if is_ref else None
        chart(
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
    chart(
        plots.predictive_figure(x_pred, np.asarray(x), ctx.obs_labels,
                                title="Posterior predictive check: simulated data vs the observation"),
        key="explore_predictive",
    )
    st.caption("If the posterior is right, the observation (red) looks like a typical draw from the blue "
               "simulations. An observation far in a tail points to a poor fit or an unusual observation.")

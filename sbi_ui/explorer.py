"""The Explore page's explorer: sliders for an observation, the amortized posterior at it
(redrawn as a slider moves, after a warning when the observation lies outside what the network was
trained on) and a posterior predictive check.

A model whose simulation is a series, an image or a set of repeated trials gets no slider per number:
its observation is built from a few moves (:mod:`sbi_ui.series_explore`), drawn as one chart, and its
predictive check is the chart of its shape (:func:`sbi_core.plots.shapes.data_preview`); for trials
a chart shows how the posterior narrows as more of them are used."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st
import torch

from sbi_core import RunSpec, SBIError, plots
from sbi_core.plots.shapes import data_preview, observation_figure, trials_narrowing_figure
from sbi_core.simulators.prior_predictive import check_observation, observation_ranges
from sbi_core.stats.shapes import DataShape
from sbi_core.store.runs import RunInfo

from sbi_ui import keys as K
from sbi_ui.axes import axis_pickers
from sbi_ui.charts import chart
from sbi_ui.messages import show_error
from sbi_ui.model_choice import ModelChoice
from sbi_ui.navigation import TRAIN
from sbi_ui.ood_view import ood_warning
from sbi_ui.resources import store, store_root
from sbi_ui.run_context import RunContext, run_context, shown_truth
from sbi_ui.series_explore import (
    Moves,
    data_shape_of,
    shape_words,
    shaped_observation,
    trial_counts_to_try,
    truth_shown,
    use_trials,
)
from sbi_ui.session import start_run
from sbi_ui.user_text import plain

__all__ = ["AMORTIZED_DEFAULTS", "slider_ranges", "explorer", "start_amortized", "training_simulations"]

NUM_SAMPLES = 2000
CLOUD_POINTS = 500  # markers drawn in the cloud (the histograms use every sample): keeps a redraw fast
NARROWING_SAMPLES = 500  # posterior samples per number of trials in the "narrows with more trials" chart
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
    shape = data_shape_of(run_context(store().get_run(run_id)))
    if shape.is_vector or shape.size != x.shape[1]:
        return x[np.isfinite(x).all(1)]
    return x[shape.valid_rows(x)]  # repeated trials: a set with missing trials (NaN rows) is kept


def training_simulations(root: str, run_id: str) -> np.ndarray:
    """The usable simulations the run was trained on, ``(n, K)`` (cached per run)."""
    return _training_simulations(root, run_id)


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

    ``ranges`` is :func:`slider_ranges`' ``(lo, hi, outside, tail)`` (``None`` for a series, an image or
    trials, whose observation is built otherwise: :func:`_shaped_explorer`).
    """
    shape = data_shape_of(ctx)
    if not shape.is_vector:
        _shaped_explorer(info, ctx, posterior, shape)
        return
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


# ---- a series, an image or repeated trials ---------------------------------------------------------
def _draw_samples(posterior, x: np.ndarray, n: int):
    """``n`` posterior samples at the flat observation ``x`` (fixed seed), or ``None`` after saying why not."""
    try:
        return posterior.sample((n,), x=torch.as_tensor(x, dtype=torch.float32), seed=SAMPLE_SEED).numpy()
    except SBIError as err:
        st.warning(str(err), icon=":material/warning:")
    except Exception as err:  # a network that cannot read this observation: a message, not a traceback
        show_error(err, "drawing the posterior at this observation")
    return None


@st.cache_data(show_spinner=False, max_entries=32)
def _narrowing(_posterior, run_id: str, x_bytes: bytes, shape: DataShape, counts: tuple[int, ...]) -> np.ndarray:
    """The posterior's standard deviation per parameter ``(len(counts), D)`` at the observation
    ``x_bytes`` (float64) using its first ``counts[i]`` trials."""
    x = np.frombuffer(x_bytes, dtype=np.float64)
    widths = []
    for m in counts:
        xm = torch.as_tensor(use_trials(x, shape, m), dtype=torch.float32)
        widths.append(_posterior.sample((NARROWING_SAMPLES,), x=xm, seed=SAMPLE_SEED).numpy().std(axis=0))
    return np.asarray(widths)


def _narrowing_chart(info: RunInfo, ctx: RunContext, posterior, shape: DataShape, base: np.ndarray,
                     moves: Moves) -> None:
    """How wide the posterior is with 1, 2, 5... of the observation's trials, the number in use marked."""
    counts = tuple(trial_counts_to_try(moves.available or 1))
    if len(counts) < 2:
        return
    try:
        widths = _narrowing(posterior, info.id, np.ascontiguousarray(base, dtype=np.float64).tobytes(), shape,
                            counts)
    except Exception as err:
        show_error(err, "measuring the posterior with fewer trials")
        return
    chart(trials_narrowing_figure(counts, widths, ctx.labels, current=moves.trials), key="explore_narrowing")
    last = widths[-1] / np.where(widths[0] > 0, widths[0], 1.0)
    st.caption(f"The posterior's spread (its standard deviation) with more of the observation's trials, relative "
               f"to its spread with {counts[0]} trial{'s' if counts[0] != 1 else ''}: with all {counts[-1]} it is "
               f"{float(np.mean(last)):.0%} of that, on average over the parameters.")


def _shaped_explorer(info: RunInfo, ctx: RunContext, posterior, shape: DataShape) -> None:
    """:func:`explorer` for a series, an image or trials: the moves on the left, the observation, the
    posterior (and, for trials, how it narrows) on the right, and the predictive check in its shape."""
    train_x = _training_simulations(store_root(), info.id)
    reference = np.asarray(ctx.x_obs, dtype=float).reshape(-1) if ctx.x_obs is not None else (
        train_x[0] if len(train_x) else None)
    if reference is None:
        st.info("This run has no observation and no saved simulations to start from.", icon=":material/info:")
        return
    dim = ctx.prior.dim
    left, right = st.columns([1, 2.3], gap="large")
    with left:
        st.markdown("**Observation**")
        st.caption(f"Each observation is {shape.describe()}: rather than a slider per number, start from one "
                   "and change it as a whole.")
        moves = shaped_observation(info.id, ctx, shape, train_x, reference)
    x = moves.x
    with right:
        chart(observation_figure(x, shape, reference=None if moves.is_reference else reference,
                                 names=ctx.obs_labels, title="The observation the posterior answers"),
              key="explore_observation")
        st.caption(shape_words(shape, moves) if not moves.is_reference
                   else f"Each observation is {shape.describe()}; this is the run's observation, unchanged.")
        ix, iy = axis_pickers(dim, ctx.labels, K.W_EXPLORE_X, K.W_EXPLORE_Y, widths=(1, 1, 1),
                              help_x="Parameter on the horizontal axis.", help_y="Parameter on the vertical axis.")
        if shape.kind != "trials":  # the test reads missing trials (NaN) as broken numbers
            ood_warning(info.id, x, ctx.obs_labels)
        t0 = time.perf_counter()
        samples = _draw_samples(posterior, x, NUM_SAMPLES)
        if samples is None:
            return
        ms = 1000 * (time.perf_counter() - t0)
        truth = truth_shown(moves)
        chart(
            plots.posterior_figure(samples, ix, iy, ctx.labels, ctx.bounds, truth,
                                   title="Posterior at this observation", max_points=CLOUD_POINTS),
            key="explore_posterior",
        )
        st.caption(f"{NUM_SAMPLES:,} posterior samples drawn in {ms:.0f} ms (fixed seed, so the same "
                   "observation always gives the same picture)."
                   + (" Red marks the parameter this observation was simulated at." if truth is not None
                      else ""))
        if shape.kind == "trials" and moves.all_trials is not None:
            _narrowing_chart(info, ctx, posterior, shape, moves.all_trials, moves)
    st.subheader("Posterior predictive check")
    if ctx.simulator is None:
        st.info("The predictive check needs the simulator, which is not available for this run.")
        return
    n = st.select_slider(
        "Simulations from the posterior", options=[100, 200, 300, 500, 1000], value=200, key=K.W_PPC_SIMS,
        help="How many posterior samples to run through the simulator for the check.",
    )
    x_pred = ctx.simulator.simulate(torch.as_tensor(samples[:n], dtype=torch.float32), seed=0).numpy()
    chart(data_preview(x_pred, shape, observed=x, names=ctx.obs_labels, label="posterior predictive",
                       title="Posterior predictive check: simulated data vs the observation"),
          key="explore_predictive")
    st.caption("If the posterior is right, the observation (red) looks like a typical draw from the blue "
               "simulations at posterior samples. An observation far outside them points to a poor fit or an "
               "unusual observation.")

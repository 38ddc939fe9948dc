"""Explore's observation when one simulation is a series, an image or a set of repeated trials.

A slider per number makes no sense for a hundred time points (or a thousand pixels). Instead the
observation is built from a few meaningful moves, each of which gives back the flat observation
(``K`` numbers, as the posterior takes it):

* where it starts: the run's observation, the model's example observation, or a fresh simulation at
  a parameter chosen with sliders (and a seed);
* a series: *scale* it, *shift* it and *add noise* (seeded, in units of the data's spread);
* an image: add noise;
* repeated trials: *use the first m of its trials* (1 to all), to see the posterior narrow as trials
  are added.

The moves themselves are plain functions (:func:`transform`, :func:`use_trials`); the widgets are in
:func:`shaped_observation`. Widget keys carry the run's id, like the vector sliders'
(``explore_x_<run>_<k>``), so each run keeps its own; "Back to the run's observation" forgets them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import streamlit as st
import torch

from sbi_core.stats.shapes import DataShape

from sbi_ui.session import reveal_true
from sbi_ui.user_text import plain

__all__ = [
    "BASES",
    "NOISE_MAX",
    "Moves",
    "data_shape_of",
    "present_trials",
    "use_trials",
    "transform",
    "value_spread",
    "trial_counts_to_try",
    "w_explore_base",
    "w_explore_theta",
    "w_explore_sim_seed",
    "w_explore_scale",
    "w_explore_shift",
    "w_explore_noise",
    "w_explore_noise_seed",
    "w_explore_trials",
    "W_EXPLORE_SHAPED_RESET",
    "forget_moves",
    "shaped_observation",
    "shape_words",
    "truth_shown",
]

BASES = {
    "run": "The run's observation",
    "example": "The model's example observation",
    "simulate": "A simulation at a parameter I choose",
}
_STARTS = {"run": "the run's observation", "example": "the model's example observation",
           "simulate": "a simulation at the parameter on the sliders"}
NOISE_MAX = 1.0  # the noise slider's end, in units of the data's spread
SCALE_RANGE = (0.25, 3.0)
SHIFT_SPREADS = 2.0  # the shift slider spans this many spreads either way


# ---- widget keys (one set per run; to move into sbi_ui.keys with the other widget keys) ------------
def w_explore_base(run_id: str) -> str:
    """Radio: where the observation starts (:data:`BASES`)."""
    return f"explore_obs_base_{run_id}"


def w_explore_theta(run_id: str, i: int) -> str:
    """Slider: parameter ``i`` of the simulation the observation starts from."""
    return f"explore_obs_theta_{run_id}_{i}"


def w_explore_sim_seed(run_id: str) -> str:
    return f"explore_obs_sim_seed_{run_id}"


def w_explore_scale(run_id: str) -> str:
    return f"explore_obs_scale_{run_id}"


def w_explore_shift(run_id: str) -> str:
    return f"explore_obs_shift_{run_id}"


def w_explore_noise(run_id: str) -> str:
    return f"explore_obs_noise_{run_id}"


def w_explore_noise_seed(run_id: str) -> str:
    return f"explore_obs_noise_seed_{run_id}"


def w_explore_trials(run_id: str, available: int) -> str:
    """Slider: how many of the ``available`` trials to use (the number is in the key: another start
    with another number of trials gets a fresh slider)."""
    return f"explore_obs_trials_{run_id}_{available}"


W_EXPLORE_SHAPED_RESET = "explore_obs_reset"


# ---- the moves, as plain functions ------------------------------------------------------------
def data_shape_of(ctx) -> DataShape:
    """The shape of a run's data (:class:`~sbi_ui.run_context.RunContext`): its simulator's, when that
    fits the run's observation; a vector otherwise (an upload that cannot be loaded, a table)."""
    k = len(ctx.x_obs) if ctx.x_obs is not None else len(ctx.obs_labels or ())
    shape = getattr(ctx.simulator, "data_shape", None)
    if isinstance(shape, DataShape) and (k == 0 or shape.size == k):
        return shape
    return DataShape.vector(max(k, 1))


def present_trials(x, shape: DataShape) -> np.ndarray:
    """The trials ``(m, D)`` of the flat observation ``x (K,)`` that are present (not NaN rows)."""
    rows = np.asarray(x, dtype=float).reshape(shape.dims)
    return rows[~np.isnan(rows).all(axis=1)]


def use_trials(x, shape: DataShape, m: int) -> np.ndarray:
    """The flat observation ``x (K,)`` with only its first ``m`` present trials (the rest missing)."""
    rows = present_trials(x, shape)
    return shape.pad_trials(rows[: max(int(m), 1)])


def value_spread(x) -> float:
    """The standard deviation of every finite number in ``x`` (1 when there is none or no spread): the
    unit of the shift and noise sliders."""
    a = np.asarray(x, dtype=float)
    a = a[np.isfinite(a)]
    sd = float(a.std()) if a.size > 1 else 0.0
    return sd if sd > 0 else 1.0


def transform(base, scale: float = 1.0, shift: float = 0.0, noise: float = 0.0, seed: int = 0,
              spread: float = 1.0) -> np.ndarray:
    """``base (K,)`` times ``scale``, plus ``shift``, plus Gaussian noise of standard deviation
    ``noise * spread`` (seeded: the same seed gives the same noise). Missing numbers (NaN: missing
    trials) stay missing."""
    x = np.asarray(base, dtype=float).reshape(-1)
    missing = np.isnan(x)
    out = x * float(scale) + float(shift)
    if noise > 0:
        out = out + float(noise) * float(spread) * np.random.default_rng(int(seed)).standard_normal(x.size)
    out[missing] = np.nan
    return out


def trial_counts_to_try(m: int) -> list[int]:
    """A handful of trial counts from 1 to ``m`` (1, 2, 5, 10, 20, 50... and ``m``) for the chart of
    how the posterior narrows."""
    counts = {1, int(m)}
    for decade in (1, 10, 100, 1000, 10_000):
        counts.update(c * decade for c in (1, 2, 5))
    return sorted(c for c in counts if 1 <= c <= m)


@dataclass
class Moves:
    """What :func:`shaped_observation` set: the flat observation ``x (K,)``, the parameter it was simulated
    at when that is known and it was not changed since (``truth``), where it started (``base``), whether
    it was scaled, shifted or noised (``changed``), and, for trials only, the trials used (``trials``) of
    those there are (``available``, all of them in ``all_trials``)."""

    x: np.ndarray
    truth: Optional[np.ndarray]
    base: str
    changed: bool
    trials: Optional[int] = None
    available: Optional[int] = None
    all_trials: Optional[np.ndarray] = None  # trials: the observation with every one of its trials

    @property
    def is_reference(self) -> bool:
        """Whether this is the run's own observation, untouched."""
        return self.base == "run" and not self.changed and self.trials == self.available


def forget_moves(run_id: str) -> None:
    """Forget this run's observation widgets (the "Back to the run's observation" button)."""
    prefixes = tuple(f"explore_obs_{what}_{run_id}" for what in
                     ("base", "theta", "sim_seed", "scale", "shift", "noise", "noise_seed", "trials"))
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(prefixes)]:
        del st.session_state[key]


# ---- widgets ---------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=64)
def _simulated(_sim, run_id: str, theta: tuple[float, ...], seed: int) -> np.ndarray:
    """One simulation of the run's model at ``theta`` (cached per run, parameter and seed)."""
    return _sim.simulate(torch.tensor(theta, dtype=torch.float32), seed=int(seed)).numpy().astype(float)


def _parameter_sliders(run_id: str, ctx) -> tuple[np.ndarray, int]:
    """Sliders over the prior's range for the parameter to simulate at, starting at the run's true
    parameter (or the middle of the range); a fixed parameter is said, not slid. Returns the
    parameter and the simulation's seed."""
    bounds = np.asarray(ctx.bounds, dtype=float)
    start = ctx.true_theta if ctx.true_theta is not None else bounds.mean(axis=1)
    theta = []
    for i, lab in enumerate(ctx.labels):
        lo, hi = float(bounds[i][0]), float(bounds[i][1])
        if not hi > lo:
            theta.append(lo)
            st.caption(f"{plain(lab)}: fixed at {lo:g}")
            continue
        theta.append(st.slider(
            plain(lab), min_value=lo, max_value=hi, value=float(np.clip(start[i], lo, hi)), step=(hi - lo) / 200,
            format="%.3g", key=w_explore_theta(run_id, i),
            help="The parameter to simulate the observation at; its range is the run's prior.",
        ))
    seed = st.number_input("Simulation seed", min_value=0, max_value=2**31 - 1, value=0, step=1,
                           key=w_explore_sim_seed(run_id), help="Same parameter and seed give the same observation.")
    return np.asarray(theta, dtype=float), int(seed)


def _start(run_id: str, ctx, reference: np.ndarray) -> tuple[str, np.ndarray, Optional[np.ndarray]]:
    """``(base, observation (K,), its true parameter or None)`` as the start widgets set them."""
    sim = ctx.simulator
    options = ["run"] + (["example", "simulate"] if sim is not None else [])
    base = st.radio("Start from", options, format_func=BASES.get, key=w_explore_base(run_id),
                    help="The observation the moves below change. The run's observation is the one it was "
                         "set up with.")
    if base == "example":
        return base, sim.default_observation.numpy().astype(float), sim.true_theta.numpy().astype(float)
    if base == "simulate":
        theta, seed = _parameter_sliders(run_id, ctx)
        return base, _simulated(sim, run_id, tuple(float(v) for v in theta), seed), theta
    return base, np.asarray(reference, dtype=float).reshape(-1), ctx.true_theta


def _noise(run_id: str, what: str) -> tuple[float, int]:
    noise = st.slider(f"Add noise to the {what} (1 = the spread of the training data)", min_value=0.0, max_value=NOISE_MAX, value=0.0, step=0.01,
                      key=w_explore_noise(run_id),
                      help="Gaussian noise on every number, its standard deviation this many times the spread "
                           "of the training simulations.")
    seed = 0
    if noise > 0:
        seed = int(st.number_input("Noise seed", min_value=0, max_value=2**31 - 1, value=0, step=1,
                                   key=w_explore_noise_seed(run_id),
                                   help="The same seed adds the same noise; another seed, other noise."))
    return float(noise), seed


def shaped_observation(run_id: str, ctx, shape: DataShape, train_x: np.ndarray,
                       reference: np.ndarray) -> Moves:
    """The Explore page's controls for an observation of ``shape`` (not a vector): where it starts
    (the run's ``reference``, the model's example, a simulation) and the moves its kind allows.
    ``train_x (n, K)``: the run's training simulations (their spread is the unit of shift and noise).
    Returns the :class:`Moves`, whose ``x`` is the flat observation for the posterior."""
    base, x, truth = _start(run_id, ctx, reference)
    spread = value_spread(train_x if len(train_x) else x)
    changed, trials, available, full = False, None, None, None
    if shape.kind == "series":
        scale = st.slider("Scale (multiply every value by)", min_value=SCALE_RANGE[0], max_value=SCALE_RANGE[1],
                          value=1.0, step=0.05, key=w_explore_scale(run_id),
                          help="1 leaves the series as it is; 2 doubles every value.")
        reach = round(SHIFT_SPREADS * spread, 12)
        shift = st.slider("Shift (add to every value)", min_value=-reach, max_value=reach, value=0.0,
                          step=reach / 100, format="%.3g", key=w_explore_shift(run_id),
                          help="Moves the whole series up or down; the range is two spreads of the training "
                               "simulations either way.")
        noise, seed = _noise(run_id, "series")
        x = transform(x, scale=scale, shift=shift, noise=noise, seed=seed, spread=spread)
        changed = scale != 1.0 or shift != 0.0 or noise > 0
    elif shape.kind == "image":
        noise, seed = _noise(run_id, "image")
        x = transform(x, noise=noise, seed=seed, spread=spread)
        changed = noise > 0
    elif shape.kind == "trials":
        available = len(present_trials(x, shape))
        trials = available
        if available > 1:
            trials = st.slider("Trials used", min_value=1, max_value=available, value=available, step=1,
                               key=w_explore_trials(run_id, available),
                               help=f"Use only the first trials of the observation ({available} in all). "
                                    "With more trials the posterior is more certain.")
        else:
            st.caption("This observation has one trial.")
        full, x = x, use_trials(x, shape, trials)
    st.button("Back to the run's observation", key=W_EXPLORE_SHAPED_RESET, on_click=forget_moves, args=(run_id,),
              icon=":material/restart_alt:", help="Start from the run's observation again, unchanged.")
    return Moves(x=x, truth=None if changed else truth, base=base, changed=changed, trials=trials,
                 available=available, all_trials=full)


def shape_words(shape: DataShape, moves: Moves) -> str:
    """A caption for the observation chart: what the observation is and what was done to it."""
    text = f"Each observation is {shape.describe()}. This one starts from {_STARTS[moves.base]}"
    if moves.trials is not None and moves.available:
        text += f", using {moves.trials} of its {moves.available} trials"
    if moves.changed:
        text += ", changed by the sliders"
    return text + (". The dashed grey line is the run's observation." if shape.kind == "series" else ".")


def truth_shown(moves: Moves) -> Optional[np.ndarray]:
    """The true parameter of the observation, when known, unchanged and the sidebar shows it."""
    return moves.truth if moves.truth is not None and reveal_true() else None

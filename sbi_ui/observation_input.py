"""Where a built-in model's observation comes from (the Model page's step 4): its example, one
simulated at a parameter set by sliders (the run's hidden true value), or typed numbers."""

from __future__ import annotations

from typing import Optional

import numpy as np
import streamlit as st
import torch

from sbi_core import Prior
from sbi_core.tables import TableError
from sbi_core.tables.observations import parse_typed_observation

from sbi_ui import keys as K
from sbi_ui.model_choice import ModelChoice
from sbi_ui.session import reveal_true

__all__ = ["OBS_SOURCES", "observation_input"]

OBS_SOURCES = {
    "default": "The model's example observation",
    "simulate": "Simulate one at a parameter I choose",
    "typed": "Type the numbers",
}


def _slider_start(sim, i: int, lo: float, hi: float) -> tuple[float, str]:
    """Where the true-parameter slider ``i`` starts, and a note when the model's default was clipped."""
    value = float(sim.true_theta[i].item())
    start = float(np.clip(value, lo, hi))
    if start == value:
        return start, ""
    lab = sim.param_labels()[i]
    side = f"above its upper end {hi:g}" if value > hi else f"below its lower end {lo:g}"
    return start, (f"The model's default {lab} = {value:g} is {side} in your prior, so its slider starts at "
                   f"{start:g} (the nearest value the prior allows). Widen the prior to simulate at {value:g}.")


def observation_input(sim, prior: Prior) -> tuple[str, np.ndarray, Optional[np.ndarray]]:
    """``(source, observation, true parameter or None)`` as the widgets set them; an invalid typed
    observation keeps the last valid one (or the model's example) in use and says so."""
    source = st.radio(
        "Where does the observation come from?",
        list(OBS_SOURCES),
        format_func=OBS_SOURCES.get,
        key=K.W_OBS_SOURCE,
        horizontal=True,
        help="The data the posterior should explain. A simulated one has a known true parameter, "
        "so you can check whether inference finds it.",
        persist_state="session",
    )
    truth = None
    obs = None
    if source == "default":
        obs = sim.default_observation.numpy()
        truth = sim.true_theta.numpy()
        st.caption("The model's example: one simulation at its default parameter, with a fixed seed.")
    elif source == "simulate":
        bounds = prior.bounds.numpy()
        show = reveal_true()
        box = st.container(border=True) if show else st.expander("Set the hidden true parameter", expanded=False)
        theta = []
        with box:
            cols = st.columns(min(sim.theta_dim, 4))
            clipped = []
            for i, lab in enumerate(sim.param_labels()):
                lo, hi = float(bounds[i][0]), float(bounds[i][1])
                if prior.marginals[i].is_fixed:
                    theta.append(lo + (hi - lo) / 2)
                    cols[i % len(cols)].caption(f"{lab}: fixed at {theta[-1]:g}")
                    continue
                default, note = _slider_start(sim, i, lo, hi)
                if note:
                    clipped.append(note)
                theta.append(cols[i % len(cols)].slider(
                    lab, min_value=lo, max_value=hi, value=default, step=(hi - lo) / 200, format="%.3g",
                    key=K.w_obs_theta(sim.name, i) + f"_{lo:.6g}_{hi:.6g}",
                    help="The parameter to simulate the observation at; it becomes the run's hidden true value. "
                         f"Its range is your prior's: {lo:g} to {hi:g}.",
                ))
            for note in clipped:
                st.info(note, icon=":material/vertical_align_center:")
            seed = st.number_input("Simulation seed", min_value=0, max_value=2**31 - 1, value=0, step=1,
                                   key=K.W_OBS_SEED, help="Same parameter and seed give the same observation.",
                                   persist_state="session")
        truth = np.asarray(theta, dtype=float)
        obs = sim.simulate(torch.tensor(theta, dtype=torch.float32), seed=int(seed)).numpy()
        if show:
            st.caption("True parameter (hidden in plots when *Show the true parameter* is off): "
                       + ", ".join(f"{lab} = {v:.4g}" for lab, v in zip(sim.param_labels(), truth)))
        else:
            st.caption(":material/visibility_off: The true parameter is hidden. Turn on "
                       "*Show the true parameter* in the sidebar to reveal it.")
    else:
        default_text = ", ".join(f"{v:.4g}" for v in sim.default_observation.tolist())
        text = st.text_input(
            f"{sim.x_dim} numbers, separated by commas ({', '.join(sim.obs_labels())})",
            value=default_text, key=K.W_OBS_TYPED,
            help="Your measured data, in the order of the observation components.",
            persist_state="session",
        )
        try:
            obs = parse_typed_observation(text, sim.x_dim, sim.obs_labels())
        except TableError as err:
            st.error(str(err), icon=":material/error:")
            previous = ModelChoice.current()
            if previous.obs_source == "typed" and previous.observation is not None \
                    and previous.simulator == sim.name:
                obs = np.asarray(previous.observation, dtype=float)
                st.warning("Until this is fixed, the last valid typed observation is used.")
            else:
                obs = sim.default_observation.numpy()
                st.warning("Until this is fixed, the model's example observation is used.")
        truth = None
    return source, obs, truth

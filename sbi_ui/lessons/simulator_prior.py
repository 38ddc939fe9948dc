"""Lesson 1: what a simulator and a prior are (the projectile: launch speed and angle in, landing distances out)."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from sbi_core import plots

from sbi_ui.charts import chart
from sbi_ui.lessons.steps import Lesson, Step
from sbi_ui.resources import simulator

__all__ = ["LESSON"]

MODEL = "projectile"
REPEATS = 40  # simulations drawn at the chosen parameters: the spread is the model's noise


def _at_parameters(key: str) -> None:
    sim = simulator(MODEL)
    bounds = sim.prior.bounds.numpy()
    cols = st.columns(sim.theta_dim)
    theta = [cols[i].slider(label, float(lo), float(hi), float(sim.true_theta[i]), key=f"{key}_theta{i}")
             for i, (label, (lo, hi)) in enumerate(zip(sim.param_labels(), bounds))]
    t = torch.tensor([theta] * REPEATS, dtype=torch.float32)
    x = sim.simulate(t, seed=0).numpy()
    chart(plots.simulations_figure(x, sim.obs_labels(), title=f"{REPEATS} simulated throws at these "
                                             "parameters", name="simulated throws", height=340),
                    key=f"{key}_chart")


def _prior_predictive(key: str) -> None:
    sim = simulator(MODEL)
    n = st.select_slider("Prior draws", [50, 200, 1000], value=200, key=f"{key}_n")
    theta = sim.prior.sample((n,), generator=torch.Generator().manual_seed(1))
    x = sim.simulate(theta, seed=1).numpy()
    c1, c2 = st.columns(2)
    with c1:
        chart(plots.posterior_figure(theta.numpy(), 0, 1, sim.param_labels(), sim.prior.bounds.numpy(),
                                               title="Parameters drawn from the prior", name="prior draws",
                                               height=380), key=f"{key}_theta")
    with c2:
        chart(plots.simulations_figure(x, sim.obs_labels(), x_obs=sim.default_observation.numpy(),
                                                 title="What the prior predicts, and the observation",
                                                 name="simulations at prior draws", height=380),
                        key=f"{key}_x")
    inside = float(np.mean(np.abs(x - sim.default_observation.numpy()).max(1) < 2.0))
    st.caption(f"{100 * inside:.0f} % of these simulations land within 2 m of every measured distance.")


LESSON = Lesson(
    slug="simulator",
    title="1. A simulator and a prior",
    summary="Move the parameters and see the data change; see what the prior allows before any data.",
    steps=(
        Step(
            title="The simulator: parameters in, data out",
            text="A **simulator** is a program that turns parameters into data. Here a ball is thrown with a "
                 "launch speed and an angle, and we measure where it lands, three times, plus the highest "
                 "point. Real throws wobble, so the same parameters give slightly different data each time. "
                 "Move the sliders and watch the simulated data move.",
            draw=_at_parameters,
            question="Which angle throws the ball farthest for a fixed speed?",
            answer="About 45 degrees: without air resistance the range is v0² sin(2·angle) / g, largest at "
                   "2·angle = 90°. Steeper throws fly higher, flatter ones land sooner.",
        ),
        Step(
            title="The prior: what is plausible before the data",
            text="Inference starts from a **prior**: the range of parameters we believe possible before "
                 "looking at the data. Each dot on the left is one draw from it; on the right, the data the "
                 "simulator makes at each of them, with the real observation in red. Inference asks which "
                 "of these parameters could have made the red data.",
            draw=_prior_predictive,
            question="If the red observation fell outside every simulation on the right, what would that tell you?",
            answer="That no parameter the prior allows can explain the data: the prior is too narrow or the "
                   "model is wrong (misspecified). Widen the prior or fix the model before trusting any posterior.",
        ),
    ),
)

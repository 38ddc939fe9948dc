"""Lesson 2: rejection ABC by hand on two moons: accept simulations close to the observation, shrink epsilon."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from sbi_core import plots
from sbi_core.methods.abc.by_hand import AbcBank, epsilon_for_fraction, scaled_distances

from sbi_ui.charts import chart
from sbi_ui.lessons.steps import Lesson, Step
from sbi_ui.resources import simulator
from sbi_ui.session import reveal_true

__all__ = ["LESSON", "abc_bank"]

MODEL = "two_moons"
NUM_DRAWS = 20_000


@st.cache_data(show_spinner="Simulating 20,000 prior draws ...", max_entries=2)
def abc_bank(name: str = MODEL, n: int = NUM_DRAWS, seed: int = 0) -> AbcBank:
    """``n`` prior draws of model ``name``, one simulation each, and their distances to its observation."""
    sim = simulator(name)
    theta = sim.prior.sample((n,), generator=torch.Generator().manual_seed(seed))
    x = sim.simulate(theta, seed=seed).numpy()
    return AbcBank(theta.numpy(), x, scaled_distances(x, sim.default_observation.numpy()))


def _cloud(key: str, bank: AbcBank, epsilon: float, title: str) -> int:
    sim = simulator(MODEL)
    kept = bank.accepted(epsilon)
    truth = sim.true_theta.numpy() if reveal_true() else None
    if len(kept) < 2:
        st.warning("Fewer than two simulations are this close: make epsilon a little larger.",
                   icon=":material/warning:")
        return len(kept)
    chart(plots.posterior_figure(kept, 0, 1, sim.param_labels(), sim.prior.bounds.numpy(), truth,
                                           title=title, name="accepted prior draws", height=460),
                    key=f"{key}_cloud")
    return len(kept)


def _by_hand(key: str) -> None:
    bank = abc_bank()
    d = bank.distances[np.isfinite(bank.distances)]
    lo, hi = float(np.quantile(d, 0.001)), float(np.quantile(d, 0.5))
    eps = st.slider("Tolerance epsilon: how close a simulation must land to the observation", lo, hi,
                    value=hi, step=(hi - lo) / 200, format="%.3f", key=f"{key}_eps")
    n = _cloud(key, bank, eps, f"Prior draws whose simulation landed within epsilon = {eps:.3f}")
    st.caption(f"Accepted {n:,} of {len(bank.theta):,} simulations ({100 * n / len(bank.theta):.2f} %). "
               "Distances count each data component in units of its spread across the simulations.")


def _budget(key: str) -> None:
    bank = abc_bank()
    keep = st.select_slider("Keep the closest", [0.1, 0.02, 0.005, 0.001], value=0.005,
                            format_func=lambda f: f"{100 * f:g} %", key=f"{key}_keep")
    eps = epsilon_for_fraction(bank.distances, keep)
    n = _cloud(key, bank, eps, f"The closest {100 * keep:g} % of 20,000 simulations (epsilon = {eps:.3f})")
    st.caption(f"{n:,} accepted draws: each one cost a simulation, and {len(bank.theta) - n:,} were thrown away.")


LESSON = Lesson(
    slug="abc",
    title="2. Rejection ABC by hand",
    summary="Simulate from the prior, keep what lands near the observation, and watch the posterior form.",
    steps=(
        Step(
            title="Keep the simulations that look like the data",
            text="The simplest inference needs no neural network. Draw parameters from the prior, simulate "
                 "each once, and **keep** the parameters whose data land within a distance epsilon of the "
                 "observation. Start with a large epsilon, then slide it down and watch the cloud of kept "
                 "parameters take shape.",
            draw=_by_hand,
            question="Why does the cloud look like the prior when epsilon is large?",
            answer="With a large epsilon almost every simulation is 'close enough', so almost every prior draw "
                   "is kept: we learn nothing from the data. Only a small epsilon lets the data choose.",
        ),
        Step(
            title="The price of precision",
            text="A smaller epsilon gives a sharper, more faithful posterior, but keeps fewer draws: most "
                 "simulations are thrown away. Choose how many to keep and compare the clouds. This waste is "
                 "what neural methods avoid: they learn from every simulation.",
            draw=_budget,
            question="To keep 1,000 draws with the closest 0.1 %, how many simulations would you need?",
            answer="About a million (1,000 / 0.001). Rejection ABC's cost grows fast as epsilon shrinks, and "
                   "faster still with more data dimensions: the reason for neural posterior estimation.",
        ),
    ),
)

"""Lesson 3: amortized NPE: one network, trained once on prior simulations, answers many observations."""

from __future__ import annotations

import streamlit as st

from sbi_core import RunSpec, plots

from sbi_ui.charts import chart
from sbi_ui.lessons.lesson_runs import lesson_run
from sbi_ui.lessons.steps import Lesson, Step
from sbi_ui.navigation import EXPLORE
from sbi_ui.resources import posterior, simulator, store_root
from sbi_ui.session import reveal_true, tracker, url_params

__all__ = ["LESSON", "SPEC", "RUN_NAME"]

MODEL = "two_moons"
RUN_NAME = "amortized"
SPEC = RunSpec(simulator=MODEL, method="npe", num_rounds=1, simulations_per_round=2000, hidden_features=32,
               num_transforms=3, max_epochs=60, patience=8, seed=0, title="Lesson: amortized NPE on two moons")


def _train(key: str) -> None:
    info = lesson_run(RUN_NAME, SPEC, "Train it: 2,000 simulations, about 20 s", key)
    if info is None or info.status != "done":
        st.caption("The posterior at the observation appears here when the network has trained.")
        return
    sim = simulator(MODEL)
    truth = sim.true_theta.numpy() if reveal_true() else None
    chart(plots.posterior_figure(tracker(info.id).samples[-1], 0, 1, sim.param_labels(),
                                           sim.prior.bounds.numpy(), truth, title="The posterior at the observation",
                                           height=440), key=f"{key}_cloud")


def _many(key: str) -> None:
    info = lesson_run(RUN_NAME, SPEC, "Train the network first (step 1): start it here", key)
    if info is None or info.status != "done":
        st.caption("This step needs the trained network of step 1.")
        return
    sim = simulator(MODEL)
    obs = sim.default_observation.clone()
    shift = st.slider("Move the observation's first number", -0.6, 0.6, 0.0, 0.05, key=f"{key}_shift")
    obs[0] += shift
    post = posterior(store_root(), info.id)
    samples = post.sample((1000,), x=obs, seed=0).numpy()
    chart(plots.posterior_figure(samples, 0, 1, sim.param_labels(), sim.prior.bounds.numpy(),
                                           title=f"The posterior at x = ({obs[0]:.2f}, {obs[1]:.2f}), no new "
                                           "training", height=440), key=f"{key}_cloud")
    st.page_link(EXPLORE, label="Open it on Explore: one slider per number", icon=":material/explore:",
                 query_params=url_params(info.id))


LESSON = Lesson(
    slug="amortized",
    title="3. Amortized inference (NPE)",
    summary="Train one network on prior simulations, then ask it about any observation instantly.",
    steps=(
        Step(
            title="Train a network on simulations from the prior",
            text="Instead of throwing simulations away, **neural posterior estimation** trains a network on "
                 "all of them: it learns, for any data x, the distribution of the parameters that make such "
                 "data. Start the training: a real run, in the background, the same as on the Train page.",
            draw=_train,
            question="Why does the two-moons posterior have a crescent shape, or two?",
            answer="The model is symmetric: two different parameter regions make the same data, so both stay "
                   "plausible. A posterior is a whole distribution, not one best guess.",
        ),
        Step(
            title="One network, many observations",
            text="The trained network is **amortized**: the cost of training is paid once, and every new "
                 "observation gets its posterior in a fraction of a second, with no new simulations. Move "
                 "the observation and watch the posterior follow.",
            draw=_many,
            question="When is amortized inference worth it, and when is a sequential method better?",
            answer="Amortized pays off when many observations must be analysed (many patients, many "
                   "experiments) or explored interactively. For one observation that matters, sequential "
                   "rounds spend the budget where that posterior lives and get more accuracy per simulation.",
        ),
    ),
)

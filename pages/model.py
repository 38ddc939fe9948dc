"""Model: pick a built-in simulator, edit its prior, and choose the observation."""

from __future__ import annotations

import streamlit as st

from sbi_ui import keys as K
from sbi_ui import prior_editor as pe
from sbi_ui.frame import page_guard
from sbi_ui.model_choice import ModelChoice
from sbi_ui.model_gallery import gallery
from sbi_ui.navigation import DATA
from sbi_ui.observation_input import observation_input
from sbi_ui.prior_predictive_view import observation_view
from sbi_ui.resources import simulator
from sbi_ui.user_text import plain

page_guard()


def _reset_prior(name: str) -> None:
    pe.forget_prior_edits(name)
    choice = ModelChoice.current()
    if choice.simulator == name:
        choice.replace(prior=None).save()


st.title("Model")
st.markdown(
    "Pick the **simulator** whose parameters you want to infer, say what you believe about them "
    "beforehand (the **prior**), and choose the **observation** to explain. "
    "Everything here is used by the next run you start on **Train**. Try a physics model like the "
    "*projectile*, or make a prior narrower and watch its density change."
)

choice = ModelChoice.current()
st.subheader("1 · Choose a simulator")
gallery(choice)

if choice.is_upload:  # the current model is an upload (set on the Your model & data page)
    st.info(
        f"The current model is **{plain(choice.title or 'your upload')}**, uploaded on **Your model & data**; "

        "its prior and observation are set there. Pick a built-in model above to switch back.",
        icon=":material/upload_file:",
    )
    st.page_link(DATA, label="Your model & data", icon=":material/upload_file:")
    st.stop()

sim = simulator(choice.simulator)
st.subheader(f"2 · {sim.title}")
st.markdown(sim.description)
with st.container(border=True):
    st.markdown(
        f"**Parameters ({sim.theta_dim}):** {', '.join(sim.param_labels())}  \n"
        + (f"**Observation ({sim.x_dim} numbers):** {', '.join(sim.obs_labels())}" if sim.data_shape.is_vector
           else f"**Observation:** {sim.data_shape.describe()} ({sim.x_dim:,} numbers)")
    )
    st.latex(sim.equations)


@st.fragment
def _setup() -> None:
    """Prior and observation; a fragment, so editing them redraws only this part."""
    sim = simulator(ModelChoice.current().simulator)
    st.subheader("3 · Prior")
    st.caption(
        "One row per parameter. Change the family or its numbers and the density on the right follows. "
        "An invalid entry shows what to fix and the last valid prior stays in use."
    )
    prior = pe.prior_editor(sim.name, sim.prior, sim.param_labels())
    st.button("Reset to the model's default prior", key=K.W_PRIOR_RESET, on_click=_reset_prior,
              args=(sim.name,), help="Forget your edits of this model's prior.", icon=":material/restart_alt:")

    st.subheader("4 · Observation")
    source, obs, truth = observation_input(sim, prior)
    choice = ModelChoice(
        simulator=sim.name,
        prior=None if prior == sim.prior else prior.to_spec(),
        observation=None if source == "default" else [float(v) for v in obs],
        true_theta=None if truth is None or source == "default" else [float(v) for v in truth],
        obs_source=source,
    ).save()
    observation_view(sim, choice, obs)


_setup()

"""The Model page's look at the observation: simulations at prior draws around it, and a
prior predictive check of it in words (cached per model, prior and observation)."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st
import torch

from sbi_core import Prior, plots
from sbi_core.plots.simulations import shares_one_axis
from sbi_core.simulators.prior_predictive import check_observation

from sbi_ui.charts import chart
from sbi_ui.messages import show_error
from sbi_ui.model_choice import ModelChoice
from sbi_ui.navigation import TRAIN
from sbi_ui.resources import simulator

__all__ = ["PREDICTIVE_SIMULATIONS", "prior_predictive", "check_message", "observation_view"]

PREDICTIVE_SIMULATIONS = 300  # prior draws behind the observation chart and the prior predictive check


@st.cache_data(show_spinner=False)
def prior_predictive(name: str, prior_key: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(theta (n, D), x (n, K))``: simulations at draws from the prior (spec as JSON; "" = the default)."""
    sim = simulator(name)
    prior = Prior.from_spec(json.loads(prior_key)) if prior_key else sim.prior
    theta = prior.sample((n,), generator=torch.Generator().manual_seed(0))
    return theta.numpy(), sim.simulate(theta, seed=1).numpy()


@st.cache_data(show_spinner=False, max_entries=64)
def _predictive_check(name: str, prior_key: str, obs: tuple[float, ...]):
    """The prior predictive check of ``obs`` (cached per model, prior and observation)."""
    sim = simulator(name)
    prior = Prior.from_spec(json.loads(prior_key)) if prior_key else sim.prior
    theta, x = prior_predictive(name, prior_key, PREDICTIVE_SIMULATIONS)
    return check_observation(x, np.asarray(obs), theta, prior, sim.obs_labels(), sim.param_labels())


def check_message(sim, prior_key: str, obs: np.ndarray) -> None:
    """The prior predictive check of the observation, in words (nothing when the observation is typical)."""
    try:
        check = _predictive_check(sim.name, prior_key, tuple(float(v) for v in obs))
    except Exception as err:  # the simulator itself failed: say so, do not block the page
        show_error(err, "checking the observation against the prior")
        return
    if check.level == "outside":
        st.warning(check.message(), icon=":material/warning:")
    elif check.level == "unusual":
        st.info(check.message(), icon=":material/info:")
    elif check.level == "unknown":
        st.caption(f":material/help: {check.message()}")
    else:
        st.caption(f":material/check_circle: The observation is among what this prior's "
                   f"{check.n_simulations} simulations produce (a quick prior predictive check).")


def observation_view(sim, choice: ModelChoice, obs: np.ndarray) -> None:
    """The observation among simulations at draws from ``choice``'s prior, its check, and its numbers."""
    prior_key = "" if choice.prior is None else json.dumps(choice.prior)
    try:
        _, x = prior_predictive(sim.name, prior_key, PREDICTIVE_SIMULATIONS)
    except Exception as err:
        show_error(err, "simulating from the prior")
        x = np.empty((0, sim.x_dim))
    if len(x):
        check_message(sim, prior_key, obs)
    # one panel per component needs the page's full width; lines or a scatter share it with the table
    panels = sim.x_dim >= 3 and len(x) > 1 and not shares_one_axis(x)
    left, right = (st.container(), st.columns([1.6, 1])[0]) if panels else st.columns([1.6, 1])
    with left:
        chart(
            plots.simulations_figure(x, sim.obs_labels(), x_obs=obs, title="The observation among simulations "
                                     "at prior draws", height=340),
            key="model_observation_plot",
        )
    with right:
        st.markdown("**Observation in use**")
        st.dataframe(
            {"component": sim.obs_labels(), "value": [float(v) for v in obs]},
            hide_index=True, height=min(38 + 35 * sim.x_dim, 330),
        )
        st.page_link(TRAIN, label="Next: train on this model", icon=":material/arrow_forward:")

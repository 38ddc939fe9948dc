"""The Model page's look at the observation: simulations at prior draws around it, and a
prior predictive check of it in words (cached per model, prior and observation).

A model whose simulation is a series, an image or a set of repeated trials
(:attr:`Simulator.data_shape <sbi_core.simulators.base.Simulator.data_shape>`) gets one chart of
what a simulation looks like (:func:`sbi_core.plots.shapes.data_preview`: a fan chart, an image
grid, the trials) instead of a chart per number, with a caption that says the shape in words.
"""

from __future__ import annotations

import json

import numpy as np
import streamlit as st
import torch

from sbi_core import Prior, plots
from sbi_core.plots.shapes import channel_names, data_preview, series_lines, trial_value_names
from sbi_core.plots.simulations import shares_one_axis
from sbi_core.simulators.prior_predictive import check_observation
from sbi_core.stats.shapes import DataShape

from sbi_ui.charts import chart
from sbi_ui.messages import show_error
from sbi_ui.model_choice import ModelChoice
from sbi_ui.navigation import TRAIN
from sbi_ui.resources import simulator

__all__ = ["PREDICTIVE_SIMULATIONS", "prior_predictive", "check_message", "observation_view", "shape_caption",
           "shaped_preview", "observation_table", "W_MODEL_SERIES_VIEW"]

PREDICTIVE_SIMULATIONS = 300  # prior draws behind the observation chart and the prior predictive check
SERIES_LINES = 8  # simulations drawn one by one in "A few simulations"
# the Model page's choice between the bands and a few simulated series (a series model only);
# to move into sbi_ui.keys with the other widget keys
W_MODEL_SERIES_VIEW = "model_series_view"
SERIES_VIEWS = {"bands": "Bands over all simulations", "lines": f"{SERIES_LINES} simulations, one by one"}


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


def shape_caption(shape: DataShape, n: int, what: str = "draws from the prior", lines: bool = False) -> str:
    """What the chart of :func:`shaped_preview` shows, in words (``n`` simulations at ``what``)."""
    one = f"Each simulation is {shape.describe()}."
    if shape.kind == "series":
        if lines:
            return (f"{one} Thin lines: {min(n, SERIES_LINES)} of {n} simulations at {what}; the red line is the "
                    "observation.")
        return (f"{one} At every time step the dark band holds the middle half of {n} simulations at {what}, "
                "the light band the middle 90 % and the blue line their median; the red line is the observation.")
    if shape.kind == "image":
        return (f"{one} The observation (framed in red) next to a few of {n} simulations at {what}, on one "
                "colour scale per channel.")
    if shape.kind == "trials":
        how = (" Two numbers of a trial are drawn as a scatter or, where one takes only a few values (a "
               "choice), as one panel per value." if shape.trial_width > 1 else "")
        return (f"{one} Red: the observation's trials; blue: every trial of {n} simulations at {what}, "
                f"pooled.{how} Missing trials are left out.")
    return one


def shaped_preview(x: np.ndarray, shape: DataShape, obs, names, key: str, title: str,
                   what: str = "draws from the prior", view_key: str = "") -> bool:
    """The chart of simulations ``x (n, K)`` of a series, image or trials model with the observation
    ``obs (K,)``, and its caption (:func:`shape_caption`); ``False`` (nothing drawn) for a vector, whose
    callers keep their chart per number. A series offers bands or a few lines (``view_key``: the
    widget's key; none: bands only)."""
    if shape.is_vector:
        return False
    lines = False
    if shape.kind == "series" and view_key and len(x) > 1:
        lines = st.radio("Show", list(SERIES_VIEWS), format_func=SERIES_VIEWS.get, key=view_key,
                         horizontal=True, label_visibility="collapsed",
                         help="Bands summarise every simulation; single lines show what one simulation "
                              "looks like.") == "lines"
    if lines:
        fig = series_lines(x, shape, n=SERIES_LINES, observed=obs, names=names, title=title)
    else:
        fig = data_preview(x, shape, observed=obs, names=names, title=title)
    chart(fig, key=key)
    st.caption(shape_caption(shape, len(x), what, lines))
    return True


def observation_table(shape: DataShape, obs, names) -> dict:
    """The observation ``obs (K,)`` as table columns in its shape: a series one row per time step and
    a column per channel, trials one row per present trial, an image (first channel) its pixel rows;
    a vector one row per component (``names``)."""
    obs = np.asarray(obs, dtype=float).reshape(-1)
    if shape.kind == "series":
        a = obs.reshape(shape.dims)
        cols = {"time step": list(range(shape.dims[1]))}
        for c, name in enumerate(channel_names(shape, names)):
            cols[name if name not in cols else f"{name} ({c + 1})"] = [float(v) for v in a[c]]
        return cols
    if shape.kind == "trials":
        a = obs.reshape(shape.dims)
        a = a[~np.isnan(a).all(axis=1)]
        cols = {"trial": list(range(1, len(a) + 1))}
        for d, name in enumerate(trial_value_names(shape, names)):
            cols[name if name not in cols else f"{name} ({d + 1})"] = [float(v) for v in a[:, d]]
        return cols
    if shape.kind == "image":
        a = obs.reshape(shape.dims)[0]
        return {f"column {j}": [float(v) for v in a[:, j]] for j in range(shape.dims[2])}
    return {"component": list(names), "value": [float(v) for v in obs]}


def _shaped_observation_view(sim, prior_key: str, x: np.ndarray, obs: np.ndarray) -> None:
    """:func:`observation_view` for a series, an image or trials: one chart of the simulations' shape
    across the page, then the observation's numbers in its shape."""
    shape = sim.data_shape
    if len(x) and shape.kind != "trials":  # the check per number misreads missing trials (NaN) as broken
        check_message(sim, prior_key, obs)
    drawn = shaped_preview(x, shape, obs, sim.obs_labels(), key="model_observation_plot",
                           title="The observation among simulations at prior draws", view_key=W_MODEL_SERIES_VIEW)
    if not drawn:  # pragma: no cover - a vector never comes here
        return
    left, right = st.columns([1.6, 1], vertical_alignment="center")
    with left:
        with st.expander(f"The observation's numbers ({shape.describe()})"):
            table = observation_table(shape, obs, sim.obs_labels())  # a table shows text as it is
            st.dataframe(table, hide_index=True, height=min(38 + 35 * len(next(iter(table.values()))), 330))
    with right:
        st.page_link(TRAIN, label="Next: train on this model", icon=":material/arrow_forward:")


def observation_view(sim, choice: ModelChoice, obs: np.ndarray) -> None:
    """The observation among simulations at draws from ``choice``'s prior, its check, and its numbers."""
    prior_key = "" if choice.prior is None else json.dumps(choice.prior)
    try:
        _, x = prior_predictive(sim.name, prior_key, PREDICTIVE_SIMULATIONS)
    except Exception as err:
        show_error(err, "simulating from the prior")
        x = np.empty((0, sim.x_dim))
    if not sim.data_shape.is_vector:
        _shaped_observation_view(sim, prior_key, x, obs)
        return
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

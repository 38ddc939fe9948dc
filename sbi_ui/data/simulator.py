"""Your model & data, tab 1: upload simulator code, check it against a prior, use it."""

from __future__ import annotations

import json
from typing import Optional

import numpy as np
import streamlit as st

from sbi_core import Prior, PriorSpecError, SimulatorError, plots
from sbi_core.sandbox.runner import sandbox_mode, sandbox_mode_description
from sbi_core.simulators.uploaded import MAX_UPLOAD_BYTES as MAX_CODE_BYTES
from sbi_core.stats.shapes import DataShape
from sbi_core.tables import TableError
from sbi_core.tables.observations import parse_typed_observation
from sbi_core.uploads.files import save_upload
from sbi_core.uploads.paths import UploadError

from sbi_ui import keys as K
from sbi_ui import prior_editor as pe
from sbi_ui.charts import chart
from sbi_ui.data.common import (
    OBS_SOURCES,
    SIM_TIMEOUT_S,
    cached_simulations,
    fmt,
    fmt_names,
    last_valid_upload,
    loaded_simulator,
    reject,
    sha,
    size_text,
    title_from,
    upload_limit_caption,
    upload_mb,
)
from sbi_ui.messages import flash
from sbi_ui.model_choice import ModelChoice
from sbi_ui.navigation import TRAIN
from sbi_ui.owner import owner_token
from sbi_ui.prior_predictive_view import shaped_preview
from sbi_ui.resources import store_root
from sbi_ui.user_text import plain, plain_paragraphs


def _accept_simulator(uploaded) -> None:
    """Save and load a new simulator file; on success it replaces the last one."""
    data = uploaded.getvalue()
    name = uploaded.name
    try:
        path = save_upload(store_root(), data, name, max_bytes=MAX_CODE_BYTES, owner=owner_token())
        with st.spinner(f"Running {name} in the sandbox and trying a few simulations..."):
            try:
                sim, _ = loaded_simulator(str(path), "")
            except SimulatorError as err:
                if err.kind != "no_prior":
                    raise
                sim = None
    except (SimulatorError, UploadError) as err:
        reject(K.S_DATA_SIM_ERROR, name, err)
        return
    state = {"path": str(path), "filename": name, "sha": sha(data), "title": title_from(name),
             "doc": None, "file_prior": None, "observation": None, "k": None, "load_prior": "",
             "mode": None, "typed_obs": None}
    if sim is not None:
        obs = getattr(sim, "_default_observation", None)
        state.update(title=sim.title, doc=sim.description, file_prior=sim.prior.to_spec(), k=sim.x_dim,
                     observation=None if obs is None else [float(f"{v:.7g}") for v in obs.tolist()],
                     mode=getattr(sim.simulate_fn, "call_mode", None))
    st.session_state[K.S_DATA_SIM] = state
    st.session_state[K.S_DATA_SIM_ERROR] = None


def _forget_simulator() -> None:
    st.session_state[K.S_DATA_SIM] = None
    st.session_state[K.S_DATA_SIM_ERROR] = None


def _names_prior(names_text: str) -> tuple[Optional[Prior], Optional[str]]:
    names = [n.strip() for n in names_text.replace(";", ",").split(",") if n.strip()]
    if not names:
        return None, "Name at least one parameter (e.g. rate, or rate, noise)."
    try:
        return Prior.from_spec([{"name": n, "dist": "uniform", "low": 0.0, "high": 1.0} for n in names]), None
    except PriorSpecError as err:
        return None, str(err)


def _check_with_prior(state: dict, prior: Prior) -> None:
    load_prior = json.dumps(prior.to_spec())
    try:
        with st.spinner("Running your file in the sandbox with this prior..."):
            sim, _ = loaded_simulator(state["path"], load_prior)
    except SimulatorError as err:
        reject(K.S_DATA_SIM_ERROR, state["filename"], err)
        return
    obs = getattr(sim, "_default_observation", None)
    new = dict(state, doc=sim.description, k=sim.x_dim, load_prior=load_prior,
               observation=None if obs is None else [float(f"{v:.7g}") for v in obs.tolist()],
               mode=getattr(sim.simulate_fn, "call_mode", None))
    st.session_state[K.S_DATA_SIM] = new
    st.session_state[K.S_DATA_SIM_ERROR] = None


def _use_simulator(choice: ModelChoice) -> None:
    choice.save()
    flash("success", f"{choice.title} is now the current model. Set up a run below.")


def simulator_tab() -> None:
    """Upload a simulator file, set its prior and observation, look at a few simulations, make it current."""
    _sandbox_banner()
    uploaded = st.file_uploader(
        "Simulator file (.py)", type=["py"], key=K.W_DATA_SIM_FILE, disabled=sandbox_mode() == "refused",
        max_upload_size=upload_mb(MAX_CODE_BYTES),
        help="Plain Python; numpy is available. It runs in a separate, limited process, never in the app.",
    )
    upload_limit_caption(MAX_CODE_BYTES, "a simulator is code; keep data it needs small or compute it in "
                                         "the file.")
    state = last_valid_upload(uploaded, K.S_DATA_SIM_SEEN, _accept_simulator, K.S_DATA_SIM, K.S_DATA_SIM_ERROR,
                              "your previous upload, {},")
    if not state:
        st.caption("No simulator uploaded yet.")
        return
    # the choice comes first, right under the upload (a 100-day series draws thousands of pixels below);
    # the container is filled last, once the prior and observation below are known
    top = st.container(key=K.C_DATA_SIM_TOP)
    _upload_header(state)
    choice, waiting = _upload_choice(state)
    with top:
        _use_controls(state, choice, waiting)


def _upload_choice(state: dict) -> tuple[Optional[ModelChoice], str]:
    """The model the upload makes with the prior and observation set below, or ``(None, what is missing)``."""
    chosen = _upload_prior(state)
    if chosen is None:
        return None, "first set its prior below and check the file with it"
    prior, default, model_key = chosen
    k = int(state["k"])
    obs_names = [f"x{i + 1}" for i in range(k)]
    obs = _upload_observation(state, k, obs_names)
    if obs is None:
        return None, "first give an observation below"
    shape, asked = _confirmed_shape(state, k)
    if not _simulations_preview(state, prior, obs, obs_names, shape):
        return None, "the simulator fails with this prior (see below)"
    prior_text = "the file's PRIOR" if state["file_prior"] is not None and prior == default else "your prior"
    ref = {"kind": "upload", "path": state["path"], "name": state["title"], "timeout": SIM_TIMEOUT_S,
           **({"data_shape": shape.to_dict()} if asked else {})}
    return ModelChoice(
        simulator=f"upload:{state['filename']}", simulator_ref=ref, title=state["title"],
        param_names=list(prior.names), obs_names=obs_names, prior=prior.to_spec(),
        observation=[float(v) for v in obs], true_theta=None, obs_source="upload",
        prior_key=model_key, prior_text=prior_text,
    ), ""


def _sandbox_banner() -> None:
    """How uploaded code runs here (sandboxed, trusted or refused), and what a file must define."""
    mode = sandbox_mode()
    text = sandbox_mode_description()
    if mode == "sandboxed":
        st.info(text, icon=":material/shield:")
    elif mode == "trusted":
        st.warning(text, icon=":material/warning:")
    else:
        st.error(text, icon=":material/block:")
    st.markdown(
        "Upload a Python file with a function `simulate(theta)`: it gets a NumPy array of parameters "
        "(one row per simulation, one column per parameter) and returns one row of numbers per simulation. "
        "Optionally define `PRIOR` (a list like `[{\"name\": \"k\", \"dist\": \"uniform\", \"low\": 0, "
        "\"high\": 2}]`) and `OBSERVATION` (a list of numbers); the file's docstring becomes its description. "
        f"Limits: {size_text(MAX_CODE_BYTES)} of code, {SIM_TIMEOUT_S:g} s per batch of simulations, "
        "512 MB of memory. Example: `assets/examples/pendulum.py`."
    )


def _upload_header(state: dict) -> None:
    st.divider()
    head, side = st.columns([4, 1], vertical_alignment="center")
    head.subheader(plain(state["title"]))
    side.button("Forget this upload", key=K.W_DATA_SIM_FORGET, on_click=_forget_simulator,
                icon=":material/delete:", help="Remove it from this page (runs that use it keep working).")
    if state.get("doc"):
        st.markdown(plain_paragraphs(state["doc"]))
    st.caption(f"File {plain(state['filename'])}, saved in the app's upload store")  # never the server path
    if state.get("k"):
        k = int(state["k"])
        params = (f"{len(state['file_prior'])} ({plain(', '.join(m['name'] for m in state['file_prior']))})"
                  if state["file_prior"] is not None else "set below")
        st.markdown(f"**Parameters:** {params} · **Output:** {k} numbers per simulation "
                    f"({fmt_names([f'x{i + 1}' for i in range(k)])})"
                    + (f" · `simulate` takes {'a batch' if state['mode'] == 'batched' else 'one parameter set'} "
                       "at a time" if state.get("mode") else ""))


def _upload_prior(state: dict):
    """``(prior, the file's or the named default prior, prior editor key)`` once the file was checked with it.

    None while the names are invalid or the file still has to be run with a new set of parameter names.
    """
    if state["file_prior"] is not None:
        default = Prior.from_spec(state["file_prior"])
        model_key = f"upload_{state['sha']}"
        st.markdown("**Prior** (from the file's `PRIOR`; edit it here)")
    else:
        st.markdown("**Prior.** The file has no `PRIOR`: name the parameters `simulate` expects, in the order "
                    "of `theta`'s columns, then set each one's prior.")
        names_text = st.text_input("Parameter names (comma-separated)", value="theta1", key=K.W_DATA_SIM_NAMES,
                                   persist_state="session",
                                   help="One name per column of theta, e.g. rate, noise.")
        default, problem = _names_prior(names_text)
        if default is None:
            st.error(plain(problem), icon=":material/error:")
            return None
        model_key = f"upload_{state['sha']}_{sha(','.join(default.names).encode())[:6]}"
    prior = pe.prior_editor(model_key, default)
    checked_names = [m["name"] for m in json.loads(state["load_prior"] or "[]")]
    if state["k"] is None or (state["file_prior"] is None and checked_names != prior.names):
        st.info("Check that the file runs with this prior: it simulates a few draws in the sandbox.",
                icon=":material/science:")
        if st.button("Check the simulator with this prior", key=K.W_DATA_SIM_CHECK, type="primary",
                     icon=":material/play_arrow:"):
            _check_with_prior(state, prior)
            st.rerun()
        return None
    return prior, default, model_key


def _upload_observation(state: dict, k: int, obs_names: list) -> list | None:
    """The observation (the file's ``OBSERVATION`` or typed); while a typed one is invalid, the last valid one."""
    sources = ["file", "typed"] if state["observation"] is not None else ["typed"]
    source = st.radio("Observation", sources, format_func=OBS_SOURCES.get, key=K.W_DATA_SIM_OBS_SOURCE,
                      horizontal=True, help="The data the posterior should explain.", persist_state="session")
    if source == "file" and state["observation"] is not None:
        obs = list(state["observation"])
        st.caption(f"From the file: {fmt(obs)}")
        return obs
    start = state.get("typed_obs") or state["observation"] or [0.0] * k
    text = st.text_input(f"{k} numbers, separated by commas ({plain(fmt_names(obs_names))})", value=fmt(start),
                         key=K.w_data_sim_obs_typed(state['sha']), persist_state="session",
                         help="Your measured data, in the order simulate returns.")
    try:
        obs = [float(v) for v in parse_typed_observation(text, k, obs_names)]
    except TableError as err:
        st.error(plain(err), icon=":material/error:")
        obs = state.get("typed_obs") or state["observation"]

        if obs is not None:
            st.caption(f":material/history: Until this is fixed, the last valid observation is used: {fmt(obs)}")
        return obs
    state["typed_obs"] = obs
    return obs


def _upload_shape(state: dict, k: int) -> tuple[DataShape, bool]:
    """The shape of the upload's simulations (its ``DATA_SHAPE`` or the shape it returns; a vector when
    unknown) and whether the file declared it."""
    try:
        sim = loaded_simulator(state["path"], state["load_prior"])[0]
        shape, declared = sim.data_shape, bool(getattr(sim, "data_shape_declared", False))
    except (SimulatorError, UploadError):
        shape, declared = None, False
    return (shape, declared) if isinstance(shape, DataShape) and shape.size == k else (DataShape.vector(k), False)


def _confirmed_shape(state: dict, k: int) -> tuple[DataShape, bool]:
    """The shape the run reads the upload's simulations as, and whether the person chose it (then the
    run's simulator reference carries it): the file's ``DATA_SHAPE``, else the reading of what
    ``simulate`` returns (or of a flat output of many numbers), asked as a question."""
    shape, declared = _upload_shape(state, k)
    if declared:
        return shape, False
    options = {"vector": DataShape.vector(k)}
    if not shape.is_vector:
        options = {"guess": shape, **options}
    elif k > 1:
        options["series"] = DataShape.series(k)
    if len(options) == 1:
        return shape, False
    words = {key: (f"{s.describe()} (a network learns a summary of it)" if not s.is_vector
                   else f"{k} separate numbers") for key, s in options.items()}
    key = st.radio("Each simulation is", list(options), format_func=words.get, horizontal=True,
                   key=K.w_data_sim_shape(state["sha"]), persist_state="session",
                   help="The file does not say (add DATA_SHAPE = \"series\", \"image\" or \"trials\" to it). "
                        "A series keeps its order: the app draws it as a curve and a small network learns a "
                        "summary of it while the posterior trains. Separate numbers are each taken as they are.")
    return options.get(key, shape), True


def _simulations_preview(state: dict, prior: Prior, obs: list, obs_names: list, shape: DataShape) -> bool:
    """Draw a few simulations at prior draws beside the observation; False when the simulator fails."""
    k = len(obs_names)
    n = 300 if k < 3 else 60 if shape.is_vector else 100  # a series' bands need more than 60
    try:
        x = cached_simulations(state["path"], state["load_prior"], json.dumps(prior.to_spec()), n)
    except SimulatorError as err:
        st.error(f"With this prior the simulator fails: {plain(err)}", icon=":material/error:")
        return False
    valid = shape.valid_rows(x)  # repeated trials: a set with missing trials (NaN rows) is valid
    bad = int((~valid).sum())
    if bad == n:
        st.error(f"With this prior all {n} simulations returned NaN or infinity, so there is nothing to train "
                 "on. Narrow the prior to values the code can handle, or fix the code (a division by zero, a "
                 "log or square root of a negative number, an overflow).", icon=":material/error:")
        return False
    # a series, an image or trials: one chart of its shape (sbi_ui.prior_predictive_view), else one per number
    if not shaped_preview(x[valid], shape, np.asarray(obs, dtype=float), obs_names, key="data_sim_thumbnail",
                          title="Your simulator at prior draws"):
        chart(plots.simulations_figure(x[valid], obs_names, x_obs=np.asarray(obs),
                                       title="Your simulator at prior draws", height=320),
              key="data_sim_thumbnail")
    if bad:
        st.warning(f"{bad} of {n} simulations returned NaN or infinity. Such results are left out of "
                   "training and counted on the Train page; many of them point to parameter values the "
                   "code cannot handle (narrow the prior).", icon=":material/warning:")
    return True


def _use_controls(state: dict, choice: Optional[ModelChoice], waiting: str) -> None:
    """At the top of the tab, right after the upload is accepted: "Use this simulator" (or, when this upload
    is the current model already, that it is, kept in step with the edits below, and a link to Train)."""
    name = plain(state["filename"])
    in_use = (ModelChoice.current().simulator_ref or {}).get("path") == state["path"]
    if in_use and choice is not None:
        choice.save()  # keep the current model in step with the edits here
        st.success(f"**{name}** is the current model: the **Train** page starts runs with it, with the prior "
                   "and observation set below.", icon=":material/check_circle:")
        st.page_link(TRAIN, label="Train on it", icon=":material/arrow_forward:")
        return
    st.success(f"**{name}** was accepted: it ran in the sandbox. To train on it, make it the current model "
               "(the Train page runs the current model).", icon=":material/check_circle:")
    if st.button("Use this simulator", key=K.W_DATA_SIM_USE, type="primary", icon=":material/check:",
                 disabled=choice is None,
                 help="Make it the current model; the Train page then starts runs with it, the prior and the "
                      "observation set below (change them there first if you like)."):
        _use_simulator(choice)
        st.switch_page(TRAIN)
    if choice is None:
        st.caption(f"To use it, {waiting}.")
    else:
        st.caption(f"The Train page uses {plain(ModelChoice.current().view.title)} until you press it. "
                   "Prior, observation and a preview follow below.")


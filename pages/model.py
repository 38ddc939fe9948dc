"""Model: pick a built-in simulator, edit its prior, and choose the observation."""

from __future__ import annotations

import math

import numpy as np
import streamlit as st
import torch

from sbi_core import Prior, PriorSpecError, list_simulators, plots

from pages import ui_common as ui
from pages import ui_prior_editor as pe
from pages import ui_state as K

ui.page_guard()

GALLERY_COLUMNS = 4
FAMILY_HELP, NUMBER_HELP = pe.FAMILY_HELP, pe.NUMBER_HELP
OBS_SOURCES = {
    "default": "The model's example observation",
    "simulate": "Simulate one at a parameter I choose",
    "typed": "Type the numbers",
}


# ---------------------------------------------------------------------------
# cached data
# ---------------------------------------------------------------------------
@st.cache_data(show_spinner=False)
def _prior_predictive(name: str, prior_key: str, n: int) -> np.ndarray:
    """``n`` simulations at draws from the prior (spec as JSON text; "" = the model's default)."""
    import json

    sim = ui.simulator(name)
    prior = Prior.from_spec(json.loads(prior_key)) if prior_key else sim.prior
    theta = prior.sample((n,), generator=torch.Generator().manual_seed(0))
    return sim.simulate(theta, seed=1).numpy()


@st.cache_data(show_spinner=False)
def _thumbnail(name: str):
    sim = ui.simulator(name)
    n = 25 if sim.x_dim >= 3 else 250
    x = _prior_predictive(name, "", n)
    return plots.simulations_figure(x, sim.obs_labels(), title="Simulations at prior draws",
                                    height=230, compact=True)


def _short(text: str, limit: int = 110) -> str:
    first = text.split(". ")[0].strip()
    first = first if first.endswith(".") else first + "."
    return first if len(first) <= limit else first[: limit - 1].rsplit(" ", 1)[0] + "..."


def _select_model(name: str) -> None:
    cfg = ui.default_model_config(name)
    spec = st.session_state.get(K.S_PRIOR_SPECS, {}).get(name)
    cfg["prior"] = spec
    st.session_state[K.S_MODEL_CFG] = cfg


# ---------------------------------------------------------------------------
# prior editor helpers
# ---------------------------------------------------------------------------
_guess_numbers = pe.guess_numbers


def _reset_prior(name: str) -> None:
    pe.forget_prior_edits(name)
    cfg = ui.model_config()
    if cfg["simulator"] == name:
        cfg["prior"] = None


def _prior_editor(sim) -> Prior:
    """One row per parameter: family, numbers, live density. Returns the last valid prior."""
    return pe.prior_editor(sim.name, sim.prior, sim.param_labels())


def _parse_typed(text: str, k: int) -> list[float]:
    parts = [p for p in text.replace(";", ",").replace("\n", ",").split(",") if p.strip()]
    if len(parts) == 1 and " " in parts[0].strip():
        parts = parts[0].split()
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise PriorSpecError("Every entry must be a number, e.g. 0.25, -1.3, 4e-2.") from None
    if len(values) != k:
        raise PriorSpecError(f"This model produces {k} numbers per observation; you typed {len(values)}.")
    if not all(math.isfinite(v) for v in values):
        raise PriorSpecError("The observation must contain only finite numbers (no nan or inf).")
    return values


# ---------------------------------------------------------------------------
# the page
# ---------------------------------------------------------------------------
st.title("Model")
st.markdown(
    "Pick the **simulator** whose parameters you want to infer, say what you believe about them "
    "beforehand (the **prior**), and choose the **observation** to explain. "
    "Everything here is used by the next run you start on **Train**. Try a physics model like the "
    "*projectile*, or make a prior narrower and watch its density change."
)

cfg = ui.model_config()
names = list_simulators()
st.subheader("1 · Choose a simulator")
for start in range(0, len(names), GALLERY_COLUMNS):
    cols = st.columns(GALLERY_COLUMNS)
    for col, name in zip(cols, names[start : start + GALLERY_COLUMNS]):
        sim = ui.simulator(name)
        selected = name == cfg["simulator"]
        with col.container(border=True, height=455):
            st.markdown(f"**{sim.title}**" + ("  :blue-badge[:material/check: selected]" if selected else ""))
            st.plotly_chart(_thumbnail(name), key=f"thumb_{name}", config={"displayModeBar": False})
            st.button(
                "Selected" if selected else "Use this model",
                key=K.w_model_pick(name),
                disabled=selected,
                type="primary" if not selected else "secondary",
                on_click=_select_model,
                args=(name,),
                help=f"Infer the {len(sim.param_names)} parameter(s) of {sim.title}: "
                f"{', '.join(sim.param_labels())}.",
                width="stretch",
            )
            st.caption(_short(sim.description))

if cfg.get("simulator_ref"):  # the current model is an upload (set on the Your model & data page)
    st.info(
        f"The current model is **{cfg.get('title', 'your upload')}**, uploaded on **Your model & data**; "
        "its prior and observation are set there. Pick a built-in model above to switch back.",
        icon=":material/upload_file:",
    )
    st.page_link(ui.DATA, label="Your model & data", icon=":material/upload_file:")
    st.stop()

sim = ui.simulator(cfg["simulator"])
st.subheader(f"2 · {sim.title}")
st.markdown(sim.description)
with st.container(border=True):
    st.markdown(
        f"**Parameters ({sim.theta_dim}):** {', '.join(sim.param_labels())}  \n"
        f"**Observation ({sim.x_dim} numbers):** {', '.join(sim.obs_labels())}"
    )
    st.latex(sim.equations)


@st.fragment
def _setup() -> None:
    """Prior and observation; a fragment, so editing them redraws only this part."""
    sim = ui.simulator(ui.model_config()["simulator"])
    st.subheader("3 · Prior")
    st.caption(
        "One row per parameter. Change the family or its numbers and the density on the right follows. "
        "An invalid entry shows what to fix and the last valid prior stays in use."
    )
    prior = _prior_editor(sim)
    st.button("Reset to the model's default prior", key=K.W_PRIOR_RESET, on_click=_reset_prior,
              args=(sim.name,), help="Forget your edits of this model's prior.", icon=":material/restart_alt:")

    st.subheader("4 · Observation")
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
        show = ui.reveal_true()
        box = st.container(border=True) if show else st.expander("Set the hidden true parameter", expanded=False)
        theta = []
        with box:
            cols = st.columns(min(sim.theta_dim, 4))
            for i, lab in enumerate(sim.param_labels()):
                lo, hi = float(bounds[i][0]), float(bounds[i][1])
                if prior.marginals[i].is_fixed:
                    theta.append(lo + (hi - lo) / 2)
                    cols[i % len(cols)].caption(f"{lab}: fixed at {theta[-1]:g}")
                    continue
                default = float(np.clip(sim.true_theta[i].item(), lo, hi))
                theta.append(cols[i % len(cols)].slider(
                    lab, min_value=lo, max_value=hi, value=default, step=(hi - lo) / 200, format="%.3g",
                    key=K.w_obs_theta(sim.name, i) + f"_{lo:.6g}_{hi:.6g}",
                    help="The parameter to simulate the observation at; it becomes the run's hidden true value.",
                ))
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
            obs = np.asarray(_parse_typed(text, sim.x_dim), dtype=float)
        except PriorSpecError as err:
            st.error(str(err), icon=":material/error:")
            previous = ui.model_config()
            if previous.get("obs_source") == "typed" and previous.get("observation") is not None \
                    and previous["simulator"] == sim.name:
                obs = np.asarray(previous["observation"], dtype=float)
                st.warning("Until this is fixed, the last valid typed observation is used.")
            else:
                obs = sim.default_observation.numpy()
                st.warning("Until this is fixed, the model's example observation is used.")
        truth = None

    new_cfg = {
        "simulator": sim.name,
        "prior": None if prior == sim.prior else prior.to_spec(),
        "observation": None if source == "default" else [float(v) for v in obs],
        "true_theta": None if truth is None or source == "default" else [float(v) for v in truth],
        "obs_source": source,
    }
    st.session_state[K.S_MODEL_CFG] = new_cfg

    import json

    prior_key = "" if new_cfg["prior"] is None else json.dumps(new_cfg["prior"])
    n = 40 if sim.x_dim >= 3 else 400
    try:
        x = _prior_predictive(sim.name, prior_key, n)
    except Exception as err:
        ui.show_error(err, "simulating from the prior")
        x = np.empty((0, sim.x_dim))
    left, right = st.columns([1.6, 1])
    with left:
        st.plotly_chart(
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
        st.page_link(ui.TRAIN, label="Next: train on this model", icon=":material/arrow_forward:")


_setup()

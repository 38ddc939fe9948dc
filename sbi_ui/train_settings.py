"""The Train page's form for a new run: method, budget, seed and network settings, each number
checked against its range (an out-of-range one is shown in red and blocks Start)."""

from __future__ import annotations

from typing import Optional

import streamlit as st

from sbi_core import RunSpec, SBIError
from sbi_core.methods.catalogue import method_info
from sbi_core.methods.registry import METHODS, get_method
from sbi_core.run.spec import BOUNDS
from sbi_core.stats.shapes import AUTO_EMBEDDING, EMBEDDING_FITS, HANDMADE, DataShape, embedding_words

from sbi_ui import keys as K
from sbi_ui.model_choice import ModelChoice
from sbi_ui.naming import method_title
from sbi_ui.navigation import DATA, MODEL
from sbi_ui.spec_link import link_extras
from sbi_ui.user_text import plain


__all__ = ["OBS_TEXT", "ESTIMATORS", "LIMITS", "model_banner", "model_label", "settings_form", "data_shape_of",
           "has_handmade", "embedding_options"]

OBS_TEXT = {
    "default": "the model's example observation",
    "simulate": "simulated at a chosen (hidden) parameter",
    "typed": "typed values",
    "upload": "set on Your model & data",
}
_DEFAULTS = RunSpec()  # every field starts at the RunSpec's default: one source for each default
ESTIMATORS = {"nsf": "Neural spline flow (NSF)", "maf": "Masked autoregressive flow (MAF)"}
# Under Advanced, what the network settings mean for a method that trains no normalizing flow
NETWORK_NOTES = {
    "vector_field": ("FMPE and NPSE train no normalizing flow but a network that moves samples step by step "
                     "(a vector field): the Estimator does not apply; Hidden units is that network's width and "
                     "Flow layers its number of residual blocks."),
    "classifier": ("NRE trains a classifier, not a normalizing flow: the Estimator and the Flow layers do not "
                   "apply; Hidden units is the classifier's width."),
}

# What each number field accepts: the Train form's range of the setting in the RunSpec's one table
# of bounds (sbi_core.run.spec.BOUNDS). The fields take any number, so an out-of-range one is shown as
# an error and blocks Start (a number_input with min/max would silently keep the last valid value).
_FIELDS = {
    K.W_SIMS: "simulations_per_round",
    K.W_ROUNDS: "num_rounds",
    K.W_SEED: "seed",
    K.W_HIDDEN: "hidden_features",
    K.W_TRANSFORMS: "num_transforms",
    K.W_MAX_EPOCHS: "max_epochs",
    K.W_PATIENCE: "patience",
}
LIMITS = {key: BOUNDS[name].form_range for key, name in _FIELDS.items()}


def _number(col, label: str, key: str, default: int, step: int, help: str, disabled: bool = False) -> Optional[int]:
    """A whole-number field with its range written under it; None (and a red message) when out of range."""
    lo, hi = LIMITS[key]
    value = col.number_input(label, value=default, step=step, key=key, help=help, disabled=disabled,
                             persist_state="session")
    if disabled:
        return int(value) if value is not None else default
    if value is None or value != int(value) or not lo <= value <= hi:
        shown = "nothing" if value is None else f"{value:,}"
        col.error(f"Use a whole number from {lo:,} to {hi:,} (you typed {shown}).", icon=":material/error:")
        return None
    col.caption(f"{lo:,} to {hi:,}")
    return int(value)


METHOD_HELP = (
    "Sequential methods refine the posterior for this one observation, round by round; the others simulate "
    "once from the prior. " + " ".join(f"**{m.title}**: {m.summary}" for m in METHODS.values())
    + " The Compare page runs several side by side."
)


def data_shape_of(view) -> DataShape:
    """The shape of one simulation of the chosen model (a vector where the model declares none)."""
    return getattr(view, "data_shape", None) or DataShape.vector(len(view.obs_names))


def has_handmade(view) -> bool:
    """Whether the model carries its own hand-made summary statistics (a built-in model that defines
    them: ``Simulator.handmade_summary``; an upload never does)."""
    return bool(getattr(view, "handmade_summary", None))


def embedding_options(shape: DataShape, handmade: bool = False) -> dict[str, str]:
    """The summaries that can read ``shape``, in words, ``"auto"`` first; with ``handmade`` (the model
    has its own summary statistics) also ``"handmade"``, last."""
    auto = AUTO_EMBEDDING[shape.kind]
    options = {"auto": f"Automatic: {embedding_words(auto)}"}
    if shape.kind != "trials":
        options["none"] = "None: " + embedding_words(None)
    for name in EMBEDDING_FITS[shape.kind]:
        options[name] = embedding_words(name)[0].upper() + embedding_words(name)[1:]
    if handmade:
        options[HANDMADE] = embedding_words(HANDMADE)[0].upper() + embedding_words(HANDMADE)[1:]
    return options


def model_label(choice: ModelChoice) -> str:
    """The model's title as literal markdown (an upload's title is the user's text; :func:`sbi_ui.user_text.plain`)."""
    return plain(choice.view.title)


def model_banner(choice: ModelChoice) -> None:
    """The model Start will run, first and large in the form, with a link to where it is chosen.

    Said up front because everything below (method, budget) is about *how* to train: a student who
    uploaded a simulator but never made it the current model would otherwise train two moons again."""
    prior_text = choice.prior_text or ("your edited prior" if choice.prior else "the model default")
    title = model_label(choice)
    with st.container(border=True, key=K.C_TRAIN_MODEL):
        st.markdown(f"#### Model: {title}")
        shape = data_shape_of(choice.view)
        st.markdown(
            f"Start runs this model · **prior:** {prior_text} ({choice.theta_dim} parameters) · "
            f"**observation:** {OBS_TEXT.get(choice.obs_source, 'default')}"
            + ("" if shape.is_vector else f" · **each simulation:** {shape.describe()}")
        )
        with st.container(horizontal=True, gap="medium"):  # links side by side, wrapping, never cut off
            st.page_link(DATA if choice.is_upload else MODEL, label="Change the model", icon=":material/swap_horiz:",
                         help="Pick a built-in model on **Model**, or upload your own on **Your model & data** "
                              "and press *Use this simulator* there.")
            if not choice.is_upload:
                st.page_link(DATA, label="Use my own simulator", icon=":material/upload_file:")


def settings_form(choice: ModelChoice) -> Optional[RunSpec]:
    """The form for a new run on ``choice``: its RunSpec, or None (and red messages) while a
    setting is out of range or the spec is invalid."""
    sim = choice.view
    model_banner(choice)
    c1, c2, c3, c4 = st.columns([1.5, 1, 1, 1])
    method = c1.radio(
        "Method",
        list(METHODS),
        format_func=method_title,
        key=K.W_METHOD,
        horizontal=True,
        help=METHOD_HELP,
        persist_state="session",
    )
    sims = _number(c2, "Simulations per round", K.W_SIMS, _DEFAULTS.simulations_per_round, 100,
                   "How many (parameter, data) pairs each round simulates. More is more accurate and slower.")
    rounds = _number(c3, "Rounds", K.W_ROUNDS, _DEFAULTS.num_rounds, 1,
                     "Sequential rounds: each one simulates where the previous posterior points. "
                     "Amortized NPE always uses one round.", disabled=not get_method(method).sequential)
    seed = _number(c4, "Seed", K.W_SEED, _DEFAULTS.seed, 1, "Same settings and seed give the same result.")
    network = method_info(method).network  # what the method trains: the settings that apply to it
    no_network = network == "none"
    if no_network:
        st.caption("ABC trains no network: the network settings under Advanced do not apply to it.")
    with st.expander("Advanced", icon=":material/settings:", key="train_advanced"):
        if network in NETWORK_NOTES:
            st.caption(NETWORK_NOTES[network])
        a1, a2, a3, a4, a5 = st.columns(5)
        estimator = a1.selectbox(
            "Estimator", list(ESTIMATORS), format_func=ESTIMATORS.get, key=K.W_ESTIMATOR,
            help="The normalizing flow that learns the posterior: a stack of learned bends that turn a bell "
            "curve into the posterior. NSF bends with smooth curves (more flexible); MAF with shifts and "
            "stretches (simpler, faster). Only methods that train a flow use it.",
            persist_state="session", disabled=network != "flow",
        )
        hidden = _number(a2, "Hidden units", K.W_HIDDEN, _DEFAULTS.hidden_features, 8,
                         "How wide the small neural network inside each layer is. Wider can learn finer "
                         "shapes and trains more slowly.", disabled=no_network)
        transforms = _number(a3, "Flow layers", K.W_TRANSFORMS, _DEFAULTS.num_transforms, 1,
                             "How many learned bends are stacked in the flow (its depth); for FMPE and NPSE "
                             "the residual blocks of their network.", disabled=network in ("none", "classifier"))
        max_epochs = _number(a4, "Max epochs", K.W_MAX_EPOCHS, _DEFAULTS.max_epochs, 5,
                             "Upper limit on training passes over the data per round.", disabled=no_network)
        patience = _number(a5, "Patience", K.W_PATIENCE, _DEFAULTS.patience, 1,
                           "Early stopping: stop a round after this many epochs without a better validation "
                           "loss and keep the best network.", disabled=no_network)
        shape = data_shape_of(sim)
        summaries = embedding_options(shape, has_handmade(sim))
        if st.session_state.get(K.W_EMBEDDING) not in summaries:  # a choice for another model's data
            st.session_state.pop(K.W_EMBEDDING, None)
        embedding = st.selectbox(
            "Learned summary of the data", list(summaries), format_func=summaries.get, key=K.W_EMBEDDING,
            help=f"One simulation of this model is {shape.describe()}. A small network can learn to summarise "
                 "it into a few numbers while the flow trains, so that the flow sees what matters (the shape "
                 "of a series, the spread of the trials) instead of every raw number."
                 + (" Or choose the model's own hand-made summary statistics, fixed numbers a scientist would "
                    f"compute ({', '.join(sim.handmade.labels)}), with nothing to learn."
                    if has_handmade(sim) else ""),
            disabled=no_network, persist_state="session",
        )
        title = st.text_input(
            "Run title (optional)", key=K.W_TITLE, placeholder=f"{sim.title}, {method_title(method)}",
            help="A name for this run in the lists.",
        )
    values = (sims, rounds, seed, hidden, transforms, max_epochs, patience)
    spec = None
    if all(v is not None for v in values):
        try:
            spec = RunSpec(
                **choice.to_spec_fields(),
                method=method,
                num_rounds=get_method(method).rounds(int(rounds)),
                simulations_per_round=int(sims),
                density_estimator=estimator,
                embedding=embedding if not no_network else "auto",
                hidden_features=int(hidden),
                num_transforms=int(transforms),
                max_epochs=int(max_epochs),
                patience=int(patience),
                seed=int(seed),
                title=title.strip() or f"{sim.title}, {method_title(method)}",
                **link_extras(),
            )
        except SBIError as err:
            st.error(plain(err), icon=":material/error:")
    return spec

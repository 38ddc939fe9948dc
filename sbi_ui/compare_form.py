"""The Compare page's form: the methods to race, their budgets, rounds, epochs and seed, and Start.

For a model whose data is not a plain vector (a series, an image, trials) it also asks which
summaries of the data to compare (a learned network, the model's hand-made summary statistics,
the raw numbers); the automatic learned summary alone is the default, as before.

The runs are built by :func:`sbi_core.run.compare.comparison_specs` (one per method,
budget and summary, everything else shared) and started through the job manager in
order: its queue runs them one after another on a small machine.
"""

from __future__ import annotations

from typing import Optional

import streamlit as st

from sbi_core import SBIError
from sbi_core.methods.registry import METHODS, get_method
from sbi_core.run.spec import BOUNDS
from sbi_core.run.compare import (
    DEFAULT_BUDGET,
    DEFAULT_MAX_EPOCHS,
    DEFAULT_ROUNDS,
    SUMMARY_FAMILIES,
    comparison_base,
    comparison_specs,
    parse_budgets,
)
from sbi_core.stats.shapes import AUTO_EMBEDDING, HANDMADE, embedding_short, embedding_words

from sbi_ui import keys as K
from sbi_ui.compare_state import set_comparison
from sbi_ui.compare_texts import SUMMARIES_HELP, SUMMARIES_WORDS
from sbi_ui.estimate import estimate
from sbi_ui.format import fmt_duration, plural
from sbi_ui.messages import flash, show_error
from sbi_ui.model_choice import ModelChoice
from sbi_ui.naming import method_title
from sbi_ui.navigation import MODEL
from sbi_ui.owner import owner_token
from sbi_ui.resources import jobs
from sbi_ui.train_settings import OBS_TEXT, data_shape_of, embedding_options, has_handmade
from sbi_ui.user_text import plain

__all__ = ["DEFAULT_METHODS", "DEFAULT_SUMMARIES", "compare_form", "summary_options"]

DEFAULT_METHODS = ("npe", "snpe")
DEFAULT_SUMMARIES = ("auto",)  # the automatic learned summary: what a comparison used before summaries could vary


def _plan(specs: list) -> str:
    """``"NPE: 1 round of 2,000 · SNPE: 4 rounds of 500"`` (each summary named where several are compared:
    ``"NPE, hand-made summaries: 1 round of 2,000"``)."""
    several = len({s.embedding for s in specs if get_method(s.method).learns in SUMMARY_FAMILIES}) > 1

    def name(s) -> str:
        named = several and get_method(s.method).learns in SUMMARY_FAMILIES
        return method_title(s.method) + (f", {embedding_short(s.embedding)}" if named else "")

    return " · ".join(f"{name(s)}: {plural(s.num_rounds, 'round')} of {s.simulations_per_round:,}" for s in specs)


def summary_options(choice: ModelChoice) -> dict[str, str]:
    """The summaries of the data a comparison on ``choice`` may compare, in words (``{}`` for a plain vector:
    nothing to choose): the automatic learned one first, the networks that read the data, the model's
    hand-made summary statistics where it has them, and the raw numbers where they can be read (not trials)."""
    shape = data_shape_of(choice.view)
    if shape.is_vector:
        return {}
    words = {"auto": f"Automatic: {embedding_words(AUTO_EMBEDDING[shape.kind])}",
             "none": "Raw numbers (no summary)", HANDMADE: "Hand-made summary statistics (the model's own)"}
    names = sorted(embedding_options(shape, has_handmade(choice.view)), key=lambda name: name == "none")  # raw last
    return {name: words.get(name, embedding_words(name)[0].upper() + embedding_words(name)[1:]) for name in names}


def _specs(choice: ModelChoice, methods: list, budgets_text: str, rounds: int, epochs: int, seed: int,
           summaries: list | None = None):
    """The comparison's RunSpecs, or None after showing what to change."""
    if not methods or summaries == []:
        return None
    try:
        base = comparison_base(choice.to_spec_fields(), max_epochs=epochs, seed=seed)
        return comparison_specs(base, methods, parse_budgets(budgets_text), rounds, summaries=summaries)
    except SBIError as err:
        st.error(plain(err), icon=":material/error:")
        return None


def _summaries(choice: ModelChoice) -> list | None:
    """The multiselect of summaries of the data (data that is not a plain vector), or ``None`` (a vector)."""
    options = summary_options(choice)
    if not options:
        return None
    if any(v not in options for v in st.session_state.get(K.W_COMPARE_SUMMARIES) or []):
        st.session_state.pop(K.W_COMPARE_SUMMARIES, None)  # a choice for another model's data
    chosen = st.multiselect(
        "Summaries of the data to compare", list(options), default=[s for s in DEFAULT_SUMMARIES if s in options],
        format_func=options.get, key=K.W_COMPARE_SUMMARIES, placeholder="Pick one or more summaries",
        help=SUMMARIES_HELP)
    if len(chosen) > 1 or HANDMADE in options:
        st.caption(SUMMARIES_WORDS)
    return chosen



def _settings(choice: ModelChoice) -> tuple[list, str, int, int, int]:
    sim = choice.view
    prior = "your edited prior" if choice.prior else "the model default"
    st.markdown(f"**Model:** {plain(sim.title)} · **prior:** {prior} "

                f"· **observation:** {OBS_TEXT.get(choice.obs_source, 'default')}")
    st.page_link(MODEL, label="Change the model, prior or observation", icon=":material/tune:")
    options = list(METHODS)
    methods = st.multiselect(
        "Methods to compare", options, default=[m for m in DEFAULT_METHODS if m in options],
        format_func=method_title, key=K.W_COMPARE_METHODS, placeholder="Pick two or more methods",
        help="Each method runs once per budget, on the same model, prior, observation and seed.")
    c1, c2, c3, c4 = st.columns([1.4, 1, 1, 1])
    budgets = c1.text_input(
        "Budgets: total simulations per method", value=str(DEFAULT_BUDGET), key=K.W_COMPARE_BUDGETS,
        help="One number, or several separated by commas (e.g. 1000, 4000) to see how each method improves "
        "with more simulations. A sequential method splits its budget into rounds.")
    any_seq = any(get_method(m).sequential for m in methods)
    rounds = c2.number_input("Rounds (sequential methods)", *BOUNDS["num_rounds"].form_range, DEFAULT_ROUNDS,
                             key=K.W_COMPARE_ROUNDS, disabled=not any_seq,
                             help="A sequential method spends budget / rounds simulations per round; SMC-ABC's "
                             "rounds are its generations. One-round methods spend the whole budget at once.")
    epochs = c3.number_input("Max epochs per round", *BOUNDS["max_epochs"].form_range, DEFAULT_MAX_EPOCHS,
                             key=K.W_COMPARE_EPOCHS, help="Caps each round's training (early stopping may end it sooner).")
    seed = c4.number_input("Seed", *BOUNDS["seed"].form_range, 0, key=K.W_COMPARE_SEED,
                           help="The same seed for every method: the same settings give the same race.")
    return methods, budgets, int(rounds), int(epochs), int(seed)


def compare_form(choice: ModelChoice) -> None:
    """The form and Start; a started comparison becomes the session's (and the URL's)."""
    methods, budgets, rounds, epochs, seed = _settings(choice)
    summaries = _summaries(choice)
    specs = _specs(choice, methods, budgets, rounds, epochs, seed, summaries)
    if specs:
        try:
            total = sum(estimate(s, choice)[0] for s in specs)
            when = f", about {fmt_duration(total)} in total" if total > 0 else ""
        except Exception:  # an estimate must never block starting
            when = ""
        st.caption(f":material/schedule: {plural(len(specs), 'run')}, one after another{when}: {_plan(specs)}.")
    elif not methods:
        st.caption(":material/info: Pick at least one method (two or more to compare) to start.")
    elif summaries == []:
        st.caption(":material/info: Pick at least one summary of the data to start.")
    if st.button("Start comparison", key=K.W_COMPARE_START, type="primary", icon=":material/play_arrow:",
                 disabled=not specs, help="Queue one run per method and budget; they run one after another."):
        _start(specs)


def _start(specs: Optional[list]) -> None:
    try:
        ids = [jobs().start(s, title=s.title, owner=owner_token()) for s in specs or []]
    except SBIError as err:
        st.error(str(err), icon=":material/error:")
        return
    except Exception as err:
        show_error(err, "starting the comparison")
        return
    set_comparison(ids)
    flash("success", f"Started a comparison of {plural(len(ids), 'run')}: they run one after another.")
    st.rerun()

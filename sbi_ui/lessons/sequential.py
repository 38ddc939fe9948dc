"""Lesson 4: sequential rounds: each round simulates where the last posterior points, and the cloud shrinks."""

from __future__ import annotations

import streamlit as st

from sbi_core import RunSpec, plots

from sbi_ui.charts import chart
from sbi_ui.lessons.lesson_runs import lesson_run
from sbi_ui.lessons.steps import Lesson, Step
from sbi_ui.navigation import ROUNDS
from sbi_ui.resources import simulator
from sbi_ui.rounds_view import region_sentence, round_region_sizes
from sbi_ui.session import reveal_true, tracker, url_params

__all__ = ["LESSON", "SPEC", "RUN_NAME", "START_LABEL"]

RUN_NAME = "sequential"
SPEC = RunSpec.demo()
START_LABEL = f"Start {SPEC.num_rounds} rounds of {SPEC.simulations_per_round} simulations"


def _region_words(info, tr) -> str:
    """The run's own numbers: the 90 % region's share of the prior after round 1 and the last round
    (:func:`sbi_ui.rounds_view.region_sentence`), with the simulations each round made."""
    sizes, estimated = round_region_sizes(info.id, tr, simulator(SPEC.simulator).prior)
    sentence = region_sentence(sizes)
    if not sentence:
        return ""
    note = " (estimated from the stored samples)" if estimated else ""
    return (f"{sentence} Each round made {info.spec.simulations_per_round:,} simulations{note}. The 90 % region "
            "is the smallest part of the parameters holding 90 % of the posterior: about 90 % of the prior "
            "means nothing learned yet.")


def _rounds(key: str) -> None:
    info = lesson_run(RUN_NAME, SPEC, START_LABEL, key)
    tr = tracker(info.id) if info is not None else None
    samples = tr.samples if tr is not None else []
    if not samples:
        st.caption("Each round's cloud appears here as soon as that round has trained.")
        return
    sim = simulator(SPEC.simulator)
    truth = sim.true_theta.numpy() if reveal_true() else None
    chart(plots.posterior_rounds_figure(samples, 0, 1, sim.param_labels(), sim.prior.bounds.numpy(),
                                                  truth, height=460), key=f"{key}_clouds")
    words = _region_words(info, tr)
    st.caption("Round 1 is the lightest (green), the last round the darkest (purple), drawn on top. "
               + (words or "The next rounds' clouds join it as they finish."))
    st.page_link(ROUNDS, label="Watch it round by round (animation)", icon=":material/animation:",
                 query_params=url_params(info.id))


def _why(key: str) -> None:
    info = lesson_run(RUN_NAME, SPEC, "Start the rounds of step 1 here", key)
    samples = tracker(info.id).samples if info is not None else []
    if len(samples) < 2:
        st.caption("This step compares the first and the last round: it needs at least two finished rounds.")
        return
    sim = simulator(SPEC.simulator)
    first, last = samples[0], samples[-1]
    chart(plots.small_multiples_figure([first, last], ["round 1", f"round {len(samples)}"], 0, 1,
                                                 sim.param_labels(), sim.prior.bounds.numpy(),
                                                 title="The first round and the last", columns=2),
                    key=f"{key}_pair")
    words = _region_words(info, tracker(info.id))
    if words:
        st.caption(words)


LESSON = Lesson(
    slug="sequential",
    title="4. Sequential rounds",
    summary="Spend each round's simulations where the last posterior points: watch the cloud shrink.",
    steps=(
        Step(
            title="Round after round",
            text="A **sequential** method trains in rounds. Round 1 simulates from the prior, like before. "
                 "Every later round simulates at parameters drawn from the last posterior, close to where the "
                 "answer is, and trains again. Start the run and watch a new, tighter cloud arrive each round.",
            draw=_rounds,
            question="Why are the later rounds' clouds smaller?",
            answer="Their simulations are spent near the plausible parameters, where the network needs detail, "
                   "instead of across the whole prior: the same budget buys a sharper posterior.",
        ),
        Step(
            title="What the rounds bought",
            text="Compare the first round with the last: the same number of simulations per round, a sharper "
                 "answer (the numbers below are this run's own). The price: the final posterior is only valid for *this* observation, unlike "
                 "the amortized network of lesson 3.",
            draw=_why,
            question="Could you move the observation and reuse this sequential posterior, as in lesson 3?",
            answer="No: its later rounds never simulated far from this observation, so elsewhere it has not "
                   "learned anything reliable. A new observation needs new rounds.",
        ),
    ),
)

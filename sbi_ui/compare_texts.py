"""The Compare page's words for students: why the methods differ, and how to read the charts.

Each method's own title and summary come from the method registry
(:mod:`sbi_core.methods.registry`); only what a *family* of methods learns is
written here, once per value of :attr:`~sbi_core.methods.base.Method.learns`.
"""

from __future__ import annotations

from typing import Sequence

from sbi_core.methods.registry import METHODS

__all__ = ["INTRO", "FAMILY_WORDS", "CLOUDS_CAPTION", "EXACT_C2ST_CAPTION", "FALLBACK_C2ST_CAPTION",
           "SUMMARIES_HELP", "SUMMARIES_WORDS", "why_they_differ"]

INTRO = (
    "Race several inference methods on the same model, prior and observation, with the same budget of "
    "simulations. They run one after another in the background (this page can be closed meanwhile), and "
    "their final posteriors are drawn side by side on the same axes: which one gets closest to the truth "
    "with the fewest simulations, and why?"
)

FAMILY_WORDS = {
    "posterior": (
        "**Learn the posterior directly.** One neural network (a normalizing flow) is trained to turn "
        "simulated data into the parameters that could have made it: give it the observation and it hands "
        "back posterior samples at once. Trained on the prior it works for *any* observation (amortized); "
        "trained round by round near one observation (sequential) it spends the simulations where they matter."
    ),
    "likelihood": (
        "**Learn the likelihood, then sample.** The network learns the other direction: how data arise "
        "from parameters, p(x | θ). Multiplied by the prior that gives the posterior up to a constant, "
        "which MCMC (chains that wander towards likely parameters) then samples: slower to sample, but "
        "often more accurate per simulation. ESS (effective sample size: how many independent draws the "
        "chains are worth) and R-hat (near 1.0 when the chains agree) say whether the chains mixed."
    ),
    "ratio": (
        "**Learn a ratio, then sample.** A classifier is shown matching (parameter, data) pairs and "
        "shuffled ones and learns to tell them apart; how sure it is that a pair matches is the "
        "likelihood-to-evidence ratio, which MCMC turns into posterior samples, as for the likelihood."
    ),
    "nothing": (
        "**Accept close simulations (ABC).** No network at all: simulate many times and keep the "
        "parameters whose simulated data land within a distance ε of the observation. Simple and honest, "
        "but it needs many simulations, and the posterior is only as sharp as ε is small; the acceptance "
        "rate says how many simulations were kept."
    ),
}

CLOUDS_CAPTION = (
    "Each panel is one method's posterior after its last round, on the same axes, so a tighter cloud is "
    "a more certain posterior. The dashed box is the prior's range."
)
EXACT_C2ST_CAPTION = (
    "For this model the exact posterior is known. After every round a small classifier tries to tell the "
    "method's samples from exact ones (C2ST): 0.5 means it cannot (the posterior is right), 1.0 that they do "
    "not overlap. Lower is better; a point per round, at the simulations used so far."
)
FALLBACK_C2ST_CAPTION = (
    "This model (or prior, or observation) has no exact posterior to compare with, so each method's final "
    "samples are compared with those of the most accurate run instead: **{reference}** (rule: a sequential "
    "method with a network first, then the one that used the most simulations). 0.5 means "
    "\"indistinguishable from that run\", not \"exact\"."
)

SUMMARIES_HELP = (
    "How NPE and NRE read one simulation of this model. Each method that learns from the data runs once per "
    "summary and budget; ABC and NLE read the numbers as they are and run once per budget."
)
SUMMARIES_WORDS = (
    "**Learned or hand-made summaries?** A flow does not read a whole series or a set of trials the way you "
    "would: it reads a few numbers that summarise it. A *learned summary* is a small network trained together "
    "with the flow, so it can find whatever in the data tells the parameters apart, even things nobody "
    "thought to measure; but its own weights have to be learnt from the simulations too. *Hand-made summary "
    "statistics* are the numbers a scientist would compute (a mean, an autocorrelation, quantiles of reaction "
    "times): there is nothing to learn, so with a small budget they often win. What they leave out, though, is "
    "lost for good, however many simulations you add, while a learned summary keeps improving. *Raw numbers* "
    "give the flow everything unsummarised, which is fine for short data and hard for long. Compare them at a "
    "small and a large budget to see where the learned summary catches up."
)


def why_they_differ(methods: Sequence[str]) -> str:
    """Markdown: what each family of methods learns, the families of ``methods`` first with each method's
    registry title and summary, then the registry's other families (only families with a registered
    method are named, so a new method's family appears when it registers)."""
    chosen = [m for m in dict.fromkeys(methods) if m in METHODS]
    families = list(dict.fromkeys([METHODS[m].learns for m in chosen] + [m.learns for m in METHODS.values()]))
    blocks = []
    for learns in families:
        words = FAMILY_WORDS.get(learns, f"**Methods that learn: {learns}.**")
        mine = [METHODS[m] for m in chosen if METHODS[m].learns == learns]
        others = [m.title for m in METHODS.values() if m.learns == learns and m.name not in chosen]
        lines = [words] + [f"- *{m.title}*: {m.summary}" for m in mine]
        if others:
            lines.append(f"- {'Also in this family' if mine else 'In this app'}: {', '.join(others)}"
                         + ("" if mine else " (not in this comparison)") + ".")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)

"""The Check page's words: what the checks are, and how to read each plot (two or three sentences each)."""

from __future__ import annotations

__all__ = ["INTRO", "HOW_TO_READ", "PREDICTIVE_BY_SHAPE", "BREAK_IT", "WHERE_WORDS"]

INTRO = (
    "Can you trust this posterior? A posterior that is right should be right *on average*: simulate many "
    "datasets from parameters you know, ask the posterior about each one, and count how often the true "
    "parameters land where the posterior says they are. These checks run in the background (a few seconds "
    "to a minute), are kept with the run, and reopen instantly."
)

HOW_TO_READ = {
    "sbc_ranks": (
        "For each test dataset, the true value's **rank** among the posterior draws: how many draws lie below it. "
        "If the posterior is right, every rank is equally likely, so the bars stay inside the grey band (where "
        "99 % of the bars of a calibrated posterior fall). A **U shape** means the truth often lies outside the "
        "draws (too narrow: overconfident), a **hump** means it sits in the middle too often (too wide), and a "
        "**slope** means the posterior is shifted (biased)."
    ),
    "sbc_ecdf": (
        "The same ranks, accumulated: each line is the share of ranks below a value, minus what a calibrated "
        "posterior gives. A calibrated parameter's line stays inside the grey band all the way along (with 99 % "
        "probability); an S-shaped line that dips first is overconfident, one that rises first is underconfident, "
        "and a line bowed up or down throughout is biased."
    ),
    "coverage": (
        "How often the posterior's credible regions hold the true parameters, against how often they claim to "
        "(a 90 % region should hold it in 90 % of the test datasets). On the dashed diagonal the posterior is "
        "calibrated; **below** it, the regions are too small or misplaced (overconfident); **above**, too "
        "large (underconfident). The black line is the joint highest-density region, the dotted ones each "
        "parameter's central interval."
    ),
    "tarp": (
        "TARP asks the same question as coverage, for all parameters at once, using balls around random "
        "points instead of the posterior's own regions (so it also notices a posterior that is the right width "
        "in the wrong place). A calibrated posterior follows the diagonal inside the grey band; below it is "
        "overconfident, above it underconfident."
    ),
    "zscore": (
        "One dot per test dataset and parameter. Across: **contraction**, how much narrower the posterior is "
        "than the prior (1: the data pin the parameter down; 0: nothing was learnt). Up: the **z-score**, how "
        "many posterior standard deviations the posterior mean is from the truth. Good is right and inside the "
        "grey strip; dots far above or below it come from an overconfident or biased posterior."
    ),
    "recovery": (
        "The posterior mean (with ± one posterior standard deviation) against the true value, per parameter. "
        "Dots on the dashed line: the posterior finds the truth; a flat cloud: the data say little about that "
        "parameter (or the network has not learnt it). Wide bars are fine where the dots scatter widely."
    ),
    "predictive": (
        "Data simulated from the posterior at **your** observation: each bar is the range where 90 % of those "
        "simulations fall, per component, and the red marks are the observation. If the posterior explains the "
        "observation, the red marks sit inside the bars (about 1 in 10 outside happens by chance); many outside "
        "mean the posterior, or the model itself, does not reproduce what you observed."
    ),
    "reference_c2st": (
        "This model's exact posterior is known, so each round's posterior at the observation is compared with "
        "it by a classifier that tries to tell their samples apart. An accuracy of 0.5 means it cannot (the "
        "posterior is as good as exact); 1 means they are completely different. It should fall round by round."
    ),
    "misspecification": (
        "Before trusting any posterior, ask whether the model could have produced your data at all. Your "
        "observation is compared with the model's own simulations from the prior: how far it lies from its "
        "nearest simulations, against how far the model's simulations lie from each other. The p-value is the "
        "share of the model's simulations that lie at least as far out (small: your data are unlike anything the "
        "model makes, and the posterior is an answer to the wrong question). The bars show how far each number "
        "of your observation lies from the model's simulations, in their typical spreads, the farthest on top; "
        "red bars are unusual on their own. When every bar is short but the test fails, it is the combination "
        "of numbers that the model never makes (two sensors that disagree, say)."
    ),
    "lc2st_pp": (
        "The checks above ask whether the posterior is right on average; this one asks at your observation. A "
        "classifier learns to tell the posterior's draws from true parameters on the test datasets, then gives, "
        "for draws at your observation, the probability that each is a true parameter. If the posterior is right "
        "here, it cannot tell: every probability is near 0.5, and the curve (the share of draws below each "
        "probability) rises steeply at 0.5 and stays inside the grey band, where the curves of classifiers "
        "trained on a posterior that is right by construction fall. A curve that rises early or late, outside "
        "the band, means the posterior is wrong at your observation (too narrow, too wide or shifted)."
    ),
    "ensemble": (
        "A second opinion: the run's method was trained again on the very same simulations, changing only the "
        "random seed (the network's starting weights and the order it saw the data in). Each line is one "
        "estimator's posterior for a parameter at your observation; the solid blue one is your run's. If the "
        "lines lie on top of each other, the answer does not depend on the luck of training. If they sit in "
        "different places or have different widths, at least some of them are wrong there, however narrow "
        "each looks: the panel's title says so. Agreement is no proof, though: every estimator learnt from the "
        "same simulations, so they can all be wrong the same way."
    ),
}

# "predictive" for data drawn in their shape (sbi_core.checks.figures: a fan chart, an image grid), by the
# DataShape's kind; trials are checked on their summaries and read as HOW_TO_READ["predictive"] says
PREDICTIVE_BY_SHAPE = {
    "series": (
        "Data simulated from the posterior at **your** observation, over time: at every time step the dark band "
        "holds the middle half of those simulations, the light band the middle 90 % and the blue line their "
        "median; the red line is the observation. If the posterior explains the observation, the red line runs "
        "inside the light band (leaving it at about 1 time step in 10 happens by chance); long stretches outside "
        "mean the posterior, or the model itself, does not reproduce what you observed."
    ),
    "image": (
        "Your observation (framed in red) next to a few images simulated from the posterior at it, on one colour "
        "scale per channel. If the posterior explains the observation, it looks like one of them; the verdict "
        "counts the pixels outside the range where 90 % of the simulations fall (about 1 in 10 outside happens "
        "by chance)."
    ),
}

BREAK_IT = (
    "**Break it, for teaching.** Train the same model again, deliberately badly (40 simulations per round and 3 "
    "epochs), check it with the same settings and see both side by side: what a posterior that fails its checks "
    "looks like."
)

WHERE_WORDS = {
    "prior": "Test data: parameters drawn from the prior, one simulation each.",
    "truncated": "Test data: parameters drawn from the last round's truncated region, one simulation each.",
    "table": "Test data: the table's validation rows (never trained on).",
}

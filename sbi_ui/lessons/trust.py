"""Lesson 6: can I trust it at my observation? Two sensors that disagree (misspecification), and two
estimators of a known posterior, one exact and one overconfident (the local C2ST).

Everything is computed here, in a second or two, with no run: the two-sensor model
``x = (m + e1, m + e2)``, ``e ~ N(0, 0.1^2)``, ``m ~ U(-3, 3)`` (the example of
:mod:`sbi_core.diagnostics.misspecification`), and the conjugate model ``theta ~ N(0, 1)``,
``x = theta + N(0, 0.5^2)``, whose posterior ``N(x / 1.25, 0.2)`` is known, so an estimator can be
exact or wrong by construction (as in ``tests/test_trust.py``).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import streamlit as st
import torch

from sbi_core import plots
from sbi_core.diagnostics.lc2st import run_lc2st
from sbi_core.diagnostics.misspecification import ModelSupport

from sbi_ui import keys as K
from sbi_ui.charts import chart
from sbi_ui.check_view import verdict_lines
from sbi_ui.lessons.steps import Lesson, Step
from sbi_ui.navigation import CHECK
from sbi_ui.session import current_run_id, url_params

__all__ = ["LESSON", "PRESETS", "ESTIMATORS", "OBSERVATIONS", "sensor_simulations", "sensor_check", "local_pp",
           "KnownPosterior"]

SLUG = "trust"

# ---- two sensors of one quantity -----------------------------------------------------------------
NUM_SIMULATIONS = 3000
SENSOR_NOISE = 0.1  # e ~ N(0, 0.1^2) for each sensor
PRIOR_LOW, PRIOR_HIGH = -3.0, 3.0  # m ~ U(-3, 3)
SENSORS = ["sensor 1", "sensor 2"]
FIRST = 0.5  # the first sensor's reading, in every preset
PRESETS = {  # the second sensor's reading
    "Readings agree": 0.6,
    "1.0 apart": 1.5,
    "One beyond the range": 4.0,
}
SECOND_LOW, SECOND_HIGH = -4.5, 4.5  # the slider's range
AXIS = [-4.7, 4.7]

# ---- a known posterior, and two estimators of it ----------------------------------------------------
DATA_NOISE = 0.5  # theta ~ N(0, 1), x = theta + N(0, 0.5^2): the posterior is N(x / 1.25, 0.25 / 1.25)
CALIBRATION_PAIRS = 500
NUM_NULL = 30
NUM_DRAWS = 500
OBSERVATIONS = (-1.0, 0.8, 2.0)
ESTIMATORS = {"A": 1.0, "B": 0.5}  # the spread of each, times the exact one's: B is the overconfident one


def _reading_key() -> str:
    """The plain session key of the second sensor's reading, shared by steps 1 and 2 (not a widget's: a widget's
    value is dropped when its step is not drawn)."""
    return f"{K.w_lesson(SLUG, 0)}_reading"


# ---- the model of two sensors -------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=2)
def sensor_simulations(n: int = NUM_SIMULATIONS, seed: int = 0) -> np.ndarray:
    """``(n, 2)``: the two readings of ``n`` draws of ``m`` from the prior."""
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(n, 1, generator=g) * (PRIOR_HIGH - PRIOR_LOW) + PRIOR_LOW
    return (m + SENSOR_NOISE * torch.randn(n, 2, generator=g)).numpy()


@st.cache_resource(show_spinner="Scoring the model's own simulations ...", max_entries=2)
def _support(n: int = NUM_SIMULATIONS, seed: int = 0) -> ModelSupport:
    """The misspecification test fitted once to the simulations (then each observation takes milliseconds)."""
    return ModelSupport.fit(sensor_simulations(n, seed), seed=seed)


def sensor_check(second: float, first: float = FIRST) -> dict:
    """The misspecification test of the readings ``(first, second)`` (:func:`sbi_core.check_misspecification`)."""
    return _support().check([first, second], labels=SENSORS)


def _second() -> float:
    return float(st.session_state.get(_reading_key(), PRESETS["1.0 apart"]))


def _set_second(value: float) -> None:
    st.session_state[_reading_key()] = float(value)


def _slid(widget: str) -> None:
    _set_second(st.session_state[widget])


def _pick_observation(key: str) -> float:
    """Preset buttons and a slider for the second sensor's reading (the first reads :data:`FIRST`)."""
    cols = st.columns(len(PRESETS))
    for i, (col, (label, value)) in enumerate(zip(cols, PRESETS.items())):
        col.button(f"{label} ({FIRST:g}, {value:g})", key=f"{key}_preset{i}", on_click=_set_second, args=(value,),
                   width="stretch")
    widget = f"{key}_second"
    st.session_state[widget] = _second()  # set before it is drawn: the value the other step left
    return float(st.slider(f"Sensor 2's reading (sensor 1 reads {FIRST:g})", SECOND_LOW, SECOND_HIGH, step=0.05,
                           format="%.2f", key=widget, on_change=_slid, args=(widget,)))


def _range_words(label: str, value: float, low: float, high: float) -> str:
    where = "inside" if low <= value <= high else "beyond"
    return f"{label.capitalize()} reads {value:.2f}: {where} its simulated readings ({low:.2f} to {high:.2f})."


def _sensors(key: str) -> None:
    second = _pick_observation(key)
    x = sensor_simulations()
    fig = plots.simulations_figure(x, SENSORS, x_obs=[FIRST, second], height=480,
                                   title=f"{len(x):,} simulations of the two sensors, and the observation",
                                   name="simulated readings")
    low, high = x.min(0), x.max(0)
    for c, (lo, hi) in enumerate(zip(low, high)):  # each sensor's range on its own
        add = fig.add_vline if c == 0 else fig.add_hline
        for edge in (lo, hi):
            add(float(edge), line=dict(color="#868E96", dash="dot", width=1.2))
    fig.update_xaxes(range=AXIS, constrain="domain")  # square, the diagonal at 45 degrees
    fig.update_yaxes(range=AXIS, scaleanchor="x", scaleratio=1)
    chart(fig, key=f"{key}_chart")
    apart = abs(second - FIRST)
    as_far = int((np.abs(x[:, 0] - x[:, 1]) >= apart).sum())
    st.caption(" ".join(_range_words(s, v, lo, hi) for s, v, lo, hi in zip(SENSORS, (FIRST, second), low, high))
               + f" Dotted lines: the range of each sensor's simulated readings. {as_far:,} of {len(x):,} "
               f"simulations have readings at least {apart:.2f} apart.")


def _test(key: str) -> None:
    second = _pick_observation(key)
    res = sensor_check(second)
    verdict_lines([{"kind": "bad" if res["misspecified"] else "good", "text": res["verdict"]}])
    chart(plots.misspecification_figure(res["features"], res["p_value"], res["alpha"]), key=f"{key}_bars")
    st.caption(f"Readings ({FIRST:.2f}, {second:.2f}) against {res['n_train']:,} simulations of the model; the "
               f"p-value is the share of {res['n_calibration']:,} of them that lie at least as far from the others.")


# ---- a known posterior ------------------------------------------------------------------------------
class KnownPosterior:
    """An estimator of the conjugate model's posterior ``N(x / (1 + s^2), s^2 / (1 + s^2))``, ``s = 0.5``: centred
    right, its spread the exact one times ``scale`` (below 1: overconfident). ``to_base`` maps ``theta`` to its base
    space, ``(theta - mean(x)) / sd``, as a flow's does (L-C2ST-NF)."""

    def __init__(self, scale: float = 1.0):
        self.sd = scale * DATA_NOISE / math.sqrt(1 + DATA_NOISE ** 2)

    def mean(self, x) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32) / (1 + DATA_NOISE ** 2)

    def to_base(self, theta, xs) -> torch.Tensor:
        return (torch.as_tensor(theta, dtype=torch.float32) - self.mean(xs)) / self.sd

    def sample(self, sample_shape, x, seed: Optional[int] = None) -> torch.Tensor:
        g = torch.Generator().manual_seed(int(seed or 0))
        x = torch.as_tensor(x, dtype=torch.float32).reshape(-1)
        return self.mean(x) + self.sd * torch.randn(*sample_shape, x.shape[0], generator=g)

    def sample_batched(self, num: int, xs, generator=None) -> torch.Tensor:
        xs = torch.as_tensor(xs, dtype=torch.float32)
        return self.mean(xs)[:, None, :] + self.sd * torch.randn(xs.shape[0], num, xs.shape[1], generator=generator)

    def log_prob(self, theta, x) -> torch.Tensor:
        z = (torch.as_tensor(theta, dtype=torch.float32) - self.mean(x)) / self.sd
        return (-0.5 * z ** 2 - math.log(self.sd) - 0.5 * math.log(2 * math.pi)).sum(-1)


def _calibration_pairs(n: int = CALIBRATION_PAIRS, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(n, 1, generator=g)
    return theta, theta + DATA_NOISE * torch.randn(n, 1, generator=g)


@st.cache_data(show_spinner="Training the classifiers ...", max_entries=16)
def local_pp(estimator: str, x_obs: float) -> dict:
    """The L-C2ST of estimator ``estimator`` (a key of :data:`ESTIMATORS`) at ``x_obs``: ``p_value``,
    ``rejected``, ``pp`` (the local P-P plot) and ``verdict`` (:func:`sbi_core.run_lc2st`)."""
    theta, x = _calibration_pairs()
    res = run_lc2st(theta, x, KnownPosterior(ESTIMATORS[estimator]), torch.tensor([float(x_obs)]),
                    num_posterior_samples=NUM_DRAWS, num_null=NUM_NULL, seed=0)
    return {k: res[k] for k in ("p_value", "rejected", "pp", "verdict", "num_null", "n_calibration")}


def _local(key: str) -> None:
    x_obs = st.select_slider("The observation x_o", OBSERVATIONS, value=OBSERVATIONS[1], key=f"{key}_obs")
    results = {name: local_pp(name, x_obs) for name in ESTIMATORS}
    cols = st.columns(len(results))
    for col, (name, res) in zip(cols, results.items()):
        with col:
            pp = res["pp"]
            fig = plots.lc2st_pp_figure(pp["levels"], pp["cdf"], pp["null_low"], pp["null_high"], res["p_value"],
                                        title=f"Estimator {name} at x_o = {x_obs:g}")
            chart(fig, key=f"{key}_pp_{name}")
    first = next(iter(results.values()))
    st.caption(f"Each classifier learned from {first['n_calibration']:,} simulated pairs; the grey band is where "
               f"{first['num_null']} classifiers trained on an exact posterior put their curves. "
               + "; ".join(f"{'E' if i == 0 else 'e'}stimator {n}: p = {r['p_value']:.2g}"
                           for i, (n, r) in enumerate(results.items())) + ".")


# ---- what to do -------------------------------------------------------------------------------------
def _what_to_do(key: str) -> None:
    st.markdown("1. **Could the model have made your data?** If not: check the observation's units and order, "
                "then widen the prior or fix the simulator. No estimator can repair a wrong model.\n"
                "2. **Is the posterior right at your observation?** If not: train on more simulations, train "
                "longer or use a more flexible estimator, then check again.")
    rid = current_run_id()
    st.page_link(CHECK, label="Open the Check page: both tests for a real run", icon=":material/fact_check:",
                 query_params=url_params(rid))
    if rid is None:
        st.caption("The Check page checks the session's run: train one first (lesson 3 starts one), then run "
                   "its checks there.")


LESSON = Lesson(
    slug=SLUG,
    title="6. Can I trust it at my observation?",
    summary="Could the model have made your data, and is the posterior right at it? Two tests at one observation.",
    steps=(
        Step(
            title="Two sensors, one quantity",
            text="Two sensors measure the same quantity m, each with a small error: x = (m + e1, m + e2), "
                 "e ~ N(0, 0.1²), and the prior lets m lie anywhere from -3 to 3. Each dot is one simulation of "
                 "the model; the red cross is the observation. Move the second sensor's reading, or pick a preset, "
                 "and watch where the cross falls.",
            draw=_sensors,
            question="With the readings 1.0 apart, each one lies inside its sensor's range. Is this an observation "
                     "the model could have made?",
            answer="Hardly ever. Both sensors read the same m, and their errors differ by only about 0.14, so every "
                   "simulation lies on a thin band along the diagonal. Readings 1.0 apart sit far off that band, "
                   "although each number alone is ordinary.",
        ),
        Step(
            title="Could the model have made these data?",
            text="The **misspecification test** compares the observation with the model's own simulations: how "
                 "far it lies from its nearest simulations, against how far the simulations lie from each other. "
                 "A small p-value means the model rarely makes data like these, so any posterior for them answers "
                 "the wrong question. The bars measure each reading on its own, in its sensor's typical spreads.",
            draw=_test,
            question="With the readings 1.0 apart every bar is short and blue, yet the test fails. How can both "
                     "be true?",
            answer="The bars judge each reading alone, and alone each is ordinary. The test judges the two "
                   "together: no simulation lies near that pair, because the combination is what the model never "
                   "makes. Before computing a posterior, find out why the sensors disagree (a fault, an offset) "
                   "and put it in the model.",
        ),
        Step(
            title="Is the posterior right at my observation?",
            text="A model can be right and the trained estimator still wrong at your observation. Here the exact "
                 "posterior is known (θ ~ N(0, 1), x = θ + N(0, 0.5²)), and estimators A and B both centre on it, "
                 "but one is exact and the other overconfident: its spread is half what it should be. The "
                 "**local C2ST** trains a classifier to tell an estimator's draws from true parameters, and its "
                 "P–P curve stays inside the grey band only when the classifier cannot.",
            draw=_local,
            question="Which estimator is the overconfident one, and what in its curve tells you?",
            answer="Estimator B. Its curve rises well before 0.5 and leaves the grey band: the classifier gives "
                   "most of its draws a probability below 0.5 of being a true parameter, because B crowds them "
                   "near the centre, where the truth is rarer than B claims. Estimator A's curve stays in the band "
                   "(a large p-value): it is exact.",
        ),
        Step(
            title="What to do with a real run",
            text="Ask the two questions in order. If the model could not have made your data, no estimator can "
                 "help: fix the observation, the prior or the simulator first. If it could, but the posterior is "
                 "wrong at your observation, train more or better and check again. The Check page asks both for "
                 "a real run, in its last two sections.",
            draw=_what_to_do,
            question="The misspecification test passes but the local C2ST fails at your observation. Should you "
                     "change the model?",
            answer="No: the model can make data like yours, so the fault is the estimator's. Spend more "
                   "simulations (sequential rounds near your observation help), train longer or use a more "
                   "flexible estimator, then check again. Change the model when the misspecification test fails.",
        ),
    ),
)

"""Home: what simulation-based inference is, the one-click demo, and this browser's recent runs.

"Recent runs" lists the runs this browser started and runs without an owner (everyone's), or every
run for a teacher (:mod:`sbi_ui.owner`); someone else's run opens only through its link.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from sbi_core import RunSpec, plots

from sbi_ui import keys as K
from sbi_ui.charts import chart
from sbi_ui.format import fmt_duration, fmt_time
from sbi_ui.frame import page_guard
from sbi_ui.messages import show_error
from sbi_ui.naming import method_title, model_title_of, run_title, status_badge
from sbi_ui.navigation import TRAIN
from sbi_ui.owner import listing_owner
from sbi_ui.resources import jobs, simulator
from sbi_ui.session import reveal_true, start_run, watch_run
from sbi_ui.user_text import plain


page_guard()

DEMO_LABEL = "Start demo: two moons, 4 sequential rounds"


@st.cache_data(show_spinner=False)
def _overview_data() -> dict:
    """Samples for the picture, from the exact two-moons posterior (a schematic of the rounds)."""
    sim = simulator("two_moons")
    prior = sim.prior.sample((600,), generator=torch.Generator().manual_seed(0)).numpy()
    amortized = []
    for k, theta in enumerate(([0.55, -0.45], [-0.6, 0.55], [0.1, 0.75])):
        x = sim.simulate(torch.tensor(theta), seed=10 + k)
        amortized.append((f"posterior, observation {k + 1}", sim.reference_posterior(x, 400, seed=k).numpy()))
    x_o = sim.default_observation
    post = sim.reference_posterior(x_o, 1500, seed=7).numpy()
    rng = np.random.default_rng(0)
    box = sim.prior.bounds.numpy()
    r2 = np.clip(post[:500] + rng.normal(0, 0.13, (500, 2)), box[:, 0], box[:, 1])
    r3 = np.clip(post[500:1000] + rng.normal(0, 0.045, (500, 2)), box[:, 0], box[:, 1])
    sequential = [
        ("round 1: simulations on the prior", prior[:400]),
        ("round 2: near the first estimate", r2),
        ("round 3: closer still", r3),
        ("final posterior", post[1000:]),
    ]
    return dict(prior=prior, amortized=amortized, sequential=sequential, bounds=box,
                labels=sim.param_labels(), truth=sim.true_theta.numpy())


@st.cache_resource(show_spinner=False, max_entries=2)
def _overview_figure(show_truth: bool):
    """The picture, built once per server for every session (a class opening Home at once built it
    thirty times: a sixth of the server's page time in that minute). Shared read-only:
    ``st.plotly_chart`` and projector mode's enlarged copy only read it."""
    data = _overview_data()
    return plots.overview_figure(data["prior"], data["amortized"], data["sequential"], data["bounds"],
                                 data["labels"], true_theta=data["truth"] if show_truth else None)


st.title("Simulation-based inference, live")

# the one click first: on a 768-pixel projector a box beside the text sat two screens down, its label
# broken mid-word; full width under the title it fits on one line and is seen before any scrolling
with st.container(border=True, key="home_demo"):
    st.markdown(
        "**Try it in one click.** The guided demo infers the two parameters of the *two moons* benchmark in 4 "
        "sequential rounds and opens the live view, where losses and posterior clouds appear as they are "
        "computed. Afterwards, press **Play** on the *Rounds* page."
    )
    if st.button(
        DEMO_LABEL,
        key=K.W_START_DEMO,
        type="primary",
        icon=":material/play_circle:",
        width="content",
        help="Starts a small sequential run in the background (about a minute on a laptop) "
        "and takes you to its live view. You can leave the page: the run keeps going.",
    ):
        try:
            start_run(RunSpec.demo(), page=TRAIN, reuse=True)
        except Exception as err:  # st.switch_page's rerun is not an Exception: it passes
            show_error(err, "starting the demo")
    st.caption("Or bring your own: choose a simulator and prior on **Model**, or upload one on "
               "**Your model & data**, then start on **Train**.")

st.markdown(
    """
Many scientific models are **simulators**: give them parameters and they produce data, but nobody
can write down the probability of the data. **Simulation-based inference (SBI)** still answers
*"which parameters explain what I observed?"*: it runs the simulator many times, trains a neural
network (a normalizing flow) on the pairs *(parameters, data)*, and the network returns the
**posterior**: every parameter value that fits the observation, with its uncertainty.

* **Amortized** inference (NPE) simulates across the whole prior once; afterwards the network
  answers for *any* new observation instantly.
* **Sequential** inference (SNPE) focuses on *one* observation: each round simulates where the
  current posterior points, so the cloud shrinks round by round.
"""
)

chart(_overview_figure(reveal_true()), key="home_overview", config={"displayModeBar": False})
st.caption(
    "Left: one network, trained on simulations spread over the prior (grey), gives the posterior for any "
    "observation (three shown). Right: sequential rounds at one observation, light to dark; the posterior "
    "has two crescent-shaped modes because the model cannot tell the sign of theta1 + theta2 "
    "(a schematic built on the exact two-moons posterior)."
)

st.subheader("Your recent runs")
runs = jobs().list(limit=8, owner=listing_owner())
if not runs:
    st.caption("No runs yet. Start the demo above, or set up your own on **Model** and **Train**.")
else:
    st.caption("Click a run to open its live view; the **Runs** page lists all the runs this browser started.")
    for info in runs:
        c1, c2, c3, c4 = st.columns([3.2, 1, 1.6, 1.4], vertical_alignment="center")
        c1.page_link(
            TRAIN,
            label=f"{plain(run_title(info))}  ·  `{info.id}`",
            icon=":material/open_in_new:",
            query_params={K.QP_RUN: info.id},
            help="Open this run's live view",
        )
        with c2:
            status_badge(info)
        c3.caption(f"{plain(model_title_of(info.spec))} · {method_title(info.spec.method)}")
        c4.caption(f"{fmt_time(info.created)} · {fmt_duration(info.seconds)}")
    active = [r for r in runs if r.is_active]
    if active:
        watch_run(active[0].id, active[0])

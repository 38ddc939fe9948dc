"""Lesson 5: is it calibrated? The amortized run of lesson 3 checked beside a twin trained badly on purpose."""

from __future__ import annotations

import streamlit as st

from sbi_core import SBIError, plots
from sbi_core.checks import broken_twin, start_broken_twin

from sbi_ui.charts import chart
from sbi_ui.check_view import run_results
from sbi_ui.lessons import amortized
from sbi_ui.lessons.lesson_runs import lesson_run
from sbi_ui.lessons.steps import Lesson, Step
from sbi_ui.messages import flash
from sbi_ui.navigation import CHECK
from sbi_ui.resources import jobs, simulator, store
from sbi_ui.session import url_params
from sbi_ui.user_text import plain

__all__ = ["LESSON"]

CHECK_OPTIONS = {"num_datasets": 200, "num_posterior_samples": 100}


def _start_both(run_id: str) -> None:
    try:
        if jobs().check_status(run_id) is None:
            jobs().start_checks(run_id, CHECK_OPTIONS)
        if broken_twin(store(), run_id) is None:
            start_broken_twin(jobs(), run_id, CHECK_OPTIONS)
    except SBIError as err:
        flash("error", plain(err))


def _coverage(results, title: str):
    a = results.arrays
    fig = plots.coverage_figure(a["coverage_levels"], a["coverage_hpd"], a["coverage_hpd_se"],
                                a["coverage_central"], simulator(amortized.MODEL).param_labels())
    fig.update_layout(title=title)
    return fig


def _side_by_side(key: str) -> None:
    info = lesson_run(amortized.RUN_NAME, amortized.SPEC, "Train lesson 3's network first: start it here", key)
    if info is None or info.status != "done":
        st.caption("This step checks the trained network of lesson 3 once it is done.")
        return
    twin = broken_twin(store(), info.id)
    if twin is None or jobs().check_status(info.id) is None:
        st.button("Check it, and a twin trained badly (40 simulations, 3 epochs)", key=f"{key}_check",
                  type="primary", icon=":material/science:", on_click=_start_both, args=(info.id,))
        return
    good, bad = run_results(info.id), run_results(twin)
    cols = st.columns(2)
    for col, results, title in ((cols[0], good, "Well trained"), (cols[1], bad, "Trained badly")):
        with col:
            if results is None or not results.has("coverage"):
                st.info(f"{title}: the checks are running; the coverage curve appears on the Check page and "
                        "here when they finish (reload this step).", icon=":material/hourglass_top:")
            else:
                chart(_coverage(results, f"{title}: expected coverage"), key=f"{key}_{title}")
    st.page_link(CHECK, label="Every check, with how to read it, on the Check page", icon=":material/fact_check:",
                 query_params=url_params(info.id))


LESSON = Lesson(
    slug="calibration",
    title="5. Is it calibrated?",
    summary="Check a good and a deliberately bad posterior side by side: what failed calibration looks like.",
    steps=(
        Step(
            title="A good and a broken posterior, side by side",
            text="A posterior can look convincing and still be wrong. A **calibration check** tests it on "
                 "simulations whose true parameters we know: a 90 % region should contain the truth 90 % of "
                 "the time. Check lesson 3's network, and a twin trained on 40 simulations for 3 epochs.",
            draw=_side_by_side,
            question="The broken run's curve lies below the diagonal. What does that mean?",
            answer="Its credible regions contain the truth less often than they claim: the posterior is "
                   "overconfident, too narrow or in the wrong place. Below the diagonal means: do not trust "
                   "its error bars.",
        ),
    ),
)

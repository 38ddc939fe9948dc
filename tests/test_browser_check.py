"""Browser test of the Check page: a check started from the page runs in the background and its plots are drawn.

The run is tiny and trained with the core (``JobManager``, one torch thread) in the server's store; the
checks are started by pressing **Run the checks** on the page, which follows them with a progress bar and
draws the results when they end. What is drawn is read from the charts' SVG: the rank histogram's bars and
the markers of the z-score and recovery plots, one per test dataset and parameter.

    python -m pytest tests/test_browser_check.py -q
"""

from __future__ import annotations

import pytest

from browser_support import (
    browser_test_marks,
    drawn_points,
    goto,
    new_page,
    page_problems,
    screenshot_on_failure,
    wait_idle,
)

pytestmark = browser_test_marks(600)

PAGE_MS = 60_000
RUN_S = 300
DATASETS, DRAWS = 40, 20  # 4 rank bins per parameter (sbi_core.stats.bands.default_num_bins)


@pytest.fixture(scope="module")
def finished_run(server) -> str:
    from sbi_core import RunSpec
    from sbi_core.jobs.manager import JobManager
    from sbi_core.store.runs import RunStore

    jm = JobManager(RunStore(server.store_dir), max_running=1, threads_per_run=1)
    rid = jm.start(RunSpec(simulator="linear_regression", method="npe", num_rounds=1, simulations_per_round=300,
                           max_epochs=8, hidden_features=16, num_transforms=2, num_posterior_samples=200,
                           num_threads=1, title="Browser test: check page"))
    info = jm.wait(rid, timeout=RUN_S)
    assert info.status == "done", (info.message, info.detail)
    return rid


def _fill(page, key: str, value: int) -> None:
    box = page.locator(f".st-key-{key} input")
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page, PAGE_MS)


def test_checks_started_from_the_page_are_drawn(browser, server, finished_run, tmp_path):
    page = new_page(browser, server.url, PAGE_MS)
    with screenshot_on_failure(page, tmp_path, "check_page"):
        goto(page, f"/check?run={finished_run}", PAGE_MS)
        page.locator("h1").filter(has_text="Check").first.wait_for(timeout=PAGE_MS)
        wait_idle(page, PAGE_MS)
        _fill(page, "check_num_datasets", DATASETS)
        _fill(page, "check_num_samples", DRAWS)
        page.get_by_role("button", name="Run the checks").click()
        page.locator(".st-key-check_sbc_ranks_0 .js-plotly-plot").wait_for(timeout=RUN_S * 1000)
        wait_idle(page, PAGE_MS)
        page.locator(".st-key-check_recovery_0 .scatterlayer path.point").first.wait_for(timeout=PAGE_MS)
        bars = page.locator(".st-key-check_sbc_ranks_0 .barlayer .point").count()
        assert bars == 2 * 4, bars  # two parameters, four rank bins each
        for key in ("check_zscore_0", "check_recovery_0"):
            drawn = drawn_points(page, key)
            per_parameter = {n: c for n, c in zip(drawn["names"], drawn["points"]) if n in ("b0", "b1")}
            assert per_parameter == {"b0": DATASETS, "b1": DATASETS}, (key, drawn)
        for key in ("check_sbc_ecdf_0", "check_coverage_0", "check_tarp_0", "check_predictive_0",
                    "check_reference_c2st_0"):
            assert page.locator(f".st-key-{key} .js-plotly-plot").count() == 1, key
        assert page.get_by_role("button", name="Check again").count() == 1
        assert page.get_by_role("button", name="Break it: train it badly and compare").count() == 1
        problems = page_problems(page)
        assert not problems, problems
    page.context.close()

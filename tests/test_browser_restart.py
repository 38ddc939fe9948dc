"""The app server killed mid-class and started again: queued runs still run, the running one goes on.

Two students in two browser contexts: A starts a 3-round run from a setup link (the demo's shape,
only smaller: Start demo itself is driven by ``test_browser.py``), B a small 2-round run. The two
take turns on the one local worker, a round each
(:mod:`sbi_core.store.turns`): while A's run trains its second round, B's waits in line after its
first. Then the server's whole process group (Streamlit and its local Dask cluster) is SIGKILLed.
A new server on the same store, once a page is opened, carries both on
(:func:`sbi_core.jobs.resume.recover_runs`): A's run resumes from its last finished round under the
same id, B's from its place in line; nothing finished is lost and A's page says it was resumed.
The pages open in the test process's shared Chromium (``tests/conftest.py``), which outlives both servers.

    python -m pytest tests/test_browser_restart.py -q
"""

from __future__ import annotations

import os
import re
import signal
import time

from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore

from browser_support import AppServer, browser_test_marks, drawn_round_points, goto, new_page, wait_idle

pytestmark = browser_test_marks(420)

LONGER = RunSpec(simulator="two_moons", method="snpe", num_rounds=3, simulations_per_round=150, max_epochs=30,
                 hidden_features=16, num_transforms=2, num_posterior_samples=300, seed=0)
SMALL = RunSpec(simulator="two_moons", method="snpe", num_rounds=2, simulations_per_round=200, max_epochs=15,
                hidden_features=16, num_transforms=2, seed=7)  # tiny: it only has to wait its turn


def _run_id(page) -> str:
    page.wait_for_url(re.compile(r".*[?&]run=[a-z0-9]+"), timeout=60_000)
    return re.search(r"[?&]run=([a-z0-9]+)", page.url).group(1)


def _wait(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout} s")


def test_a_killed_server_restarted_carries_on_the_queued_and_the_running_run(shared_browser, tmp_path) -> None:
    store_dir = tmp_path / "store"
    store = RunStore(store_dir)
    first = AppServer(store_dir, log_path=tmp_path / "first.log").start()
    try:
        with shared_browser.lend() as browser:
            a = new_page(browser, first.url, timeout_ms=60_000)
            goto(a, "/train?spec=" + LONGER.to_query())
            a.locator(".st-key-train_start button:not([disabled])").first.click()
            longer = _run_id(a)
            b = new_page(browser, first.url, timeout_ms=60_000)
            goto(b, "/train?spec=" + SMALL.to_query())
            b.locator(".st-key-train_start button:not([disabled])").first.click()
            small = _run_id(b)
            assert small != longer
            for page in (a, b):  # nobody watches while they train: a live view costs about 0.4 of a core
                page.goto("about:blank")
            _wait(lambda: (store.events(small, types=["round"]) and store.get_run(small).status == "queued"
                           and store.get_run(longer).status == "running"), 150,
                  "the longer run's second round, the small run's first behind it")
            os.killpg(first.proc.pid, signal.SIGKILL)  # the server and its cluster, at once
            first.proc.wait(10)
    finally:
        first.stop()
    assert store.get_run(longer).status == "running"  # nobody was left to record anything
    assert store.get_run(small).status == "queued"
    finished_before = [e["round"] for _, e in store.events(longer, types=["round"])]

    with AppServer(store_dir, log_path=tmp_path / "second.log") as second:
        with shared_browser.lend() as browser:
            page = new_page(browser, second.url, timeout_ms=60_000)
            goto(page, "/")  # the first session makes the job manager, which recovers the runs
            done = _wait(lambda: all(store.get_run(r).status in ("done", "failed") for r in (longer, small)),
                         240, "both runs ending")
            assert done
            for rid in (longer, small):
                info = store.get_run(rid)
                assert info.status == "done", (rid, info.message)
            [resumed] = [e for _, e in store.events(longer, types=["resumed"]) if e["reason"] == "restart"]
            assert resumed["previous"] == "running"
            assert resumed["from_round"] >= 1 and resumed["from_round"] >= len(finished_before) - 1
            assert [e["round"] for _, e in store.events(longer, types=["round"])] == [0, 1, 2]
            assert [e["round"] for _, e in store.events(small, types=["round"])] == [0, 1]
            goto(page, f"/train?run={longer}")
            page.get_by_text(re.compile(r"Resumed from round \d \(the app server restarted")).wait_for()
            page.get_by_text("Finished:").first.wait_for()
            wait_idle(page)
            page.locator(".st-key-train_cloud_chart .scatterlayer path.point").first.wait_for()
            drawn = drawn_round_points(page, "train_cloud_chart")
            assert sorted(drawn) == ["round 1", "round 2", "round 3"], drawn
            assert all(n > 0 for n in drawn.values()), drawn

"""Browser tests of the Train page: what it draws, read from the page's SVG and layout.

* "Stop and keep what is trained" during round 1 ends the run with round 1's cloud drawn
  (its markers counted) and the message saying what was kept;
* the loss chart of a two-round run draws the note on why the loss jumps at a new round,
  and its round labels do not overlap;
* at 1024x768 (a projector) the run's numbers (time included) show in full and the
  charts start above the fold;
* an out-of-range "Simulations per round" shows its error and disables Start.

Runs are started with the core (``JobManager``, one torch thread) in the server's store.

    python -m pytest tests/test_browser_train.py -q
"""

from __future__ import annotations

import re

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
RUN_S = 300  # a tiny run on a busy two-core machine


def _jobs(server):
    from sbi_core.jobs.manager import JobManager
    from sbi_core.store.runs import RunStore

    return JobManager(RunStore(server.store_dir), max_running=1, threads_per_run=1)


def _spec(**kw):
    from sbi_core import RunSpec

    base = dict(simulator="two_moons", method="snpe", num_rounds=2, simulations_per_round=300, hidden_features=16,
                num_transforms=2, max_epochs=40, patience=5, num_posterior_samples=500, num_threads=1,
                title="Browser test: train page")
    base.update(kw)
    return RunSpec(**base)


@pytest.fixture(scope="module")
def two_rounds(server) -> str:
    jm = _jobs(server)
    rid = jm.start(_spec())
    info = jm.wait(rid, timeout=RUN_S)
    assert info.status == "done", (info.message, info.detail)
    return rid


def _open(page, path: str) -> None:
    goto(page, path, PAGE_MS)
    page.locator("h1").filter(has_text="Train").first.wait_for(timeout=PAGE_MS)
    wait_idle(page, PAGE_MS)


def _clean(page, where: str) -> None:
    problems = page_problems(page)
    assert not problems, f"{where}: {problems}"


def test_stop_and_keep_draws_round_one(browser, server, tmp_path):
    jm = _jobs(server)
    rid = jm.start(_spec(num_rounds=3, max_epochs=5000, patience=5000, title="Browser test: stop and keep"))
    page = new_page(browser, server.url, PAGE_MS)
    with screenshot_on_failure(page, tmp_path, "stop_and_keep"):
        store = jm.store
        import time

        end = time.monotonic() + RUN_S
        while len(store.events(rid, types=["epoch"])) < 3 and time.monotonic() < end:
            time.sleep(0.2)
        _open(page, f"/train?run={rid}")
        page.get_by_role("button", name="Stop and keep what is trained").click()
        page.get_by_text("Stopped at your request after 1 of 3 planned rounds").wait_for(timeout=RUN_S * 1000)
        wait_idle(page, PAGE_MS)
        page.locator(".st-key-train_cloud_chart .scatterlayer path.point").first.wait_for(timeout=PAGE_MS)
        drawn = drawn_points(page, "train_cloud_chart")
        rounds = {n: c for n, c in zip(drawn["names"], drawn["points"]) if n.startswith("round")}
        assert rounds == {"round 1": 500}, drawn  # round 1's cloud, every sample drawn, nothing more
        assert jm.status(rid).status == "done"
        _clean(page, "after stop and keep")
    page.context.close()


def test_loss_chart_explains_the_jump_and_labels_do_not_overlap(browser, server, two_rounds, tmp_path):
    page = new_page(browser, server.url, PAGE_MS)
    with screenshot_on_failure(page, tmp_path, "loss_chart"):
        _open(page, f"/train?run={two_rounds}")
        page.locator(".st-key-train_loss_chart .annotation").first.wait_for(timeout=PAGE_MS)
        notes = page.evaluate("""() => Array.from(document.querySelectorAll(
            '.st-key-train_loss_chart .annotation')).map(a => {
                const r = a.getBoundingClientRect();
                return {text: a.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom};
            })""")
        assert any("new round" in n["text"] and "restarts" in n["text"] for n in notes), notes
        labels = [n for n in notes if n["text"].startswith("round") or n["text"].isdigit()]
        assert len(labels) == 2, notes
        a, b = labels
        overlap = a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]
        assert not overlap, labels
        # the lines are drawn: both rounds' training-loss segments
        lines = page.locator(".st-key-train_loss_chart .scatterlayer .trace path.js-line")
        assert lines.count() >= 2
    page.context.close()


def test_projector_layout_time_tile_and_charts_above_the_fold(browser, server, two_rounds, tmp_path):
    context = browser.new_context(base_url=server.url, viewport={"width": 1024, "height": 768})
    context.set_default_timeout(PAGE_MS)
    page = context.new_page()
    with screenshot_on_failure(page, tmp_path, "projector"):
        _open(page, f"/train?run={two_rounds}")
        page.locator(".st-key-train_loss_chart .js-plotly-plot").wait_for(timeout=PAGE_MS)
        line = page.evaluate("""() => {
            const el = document.querySelector('.st-key-train_metrics [data-testid="stMarkdownContainer"]');
            const r = el.getBoundingClientRect();
            return {text: el.innerText, scroll: el.scrollWidth, client: el.clientWidth, right: r.right};
        }""")
        # the run's numbers, time included, all on screen: nothing cut off ("2 m...")
        assert line["scroll"] <= line["client"] + 1 and line["right"] <= 1024, line
        assert "…" not in line["text"] and re.search(r"\d+\s(s|min\s\d+\ss)$", line["text"].strip()), line
        top = page.evaluate("() => document.querySelector('.st-key-train_loss_chart').getBoundingClientRect().top")
        assert top < 768 - 250, top  # the charts start on the first screen, most of them visible
    context.close()


def test_out_of_range_budget_is_an_error_and_blocks_start(browser, server, tmp_path):
    page = new_page(browser, server.url, PAGE_MS)
    with screenshot_on_failure(page, tmp_path, "out_of_range"):
        _open(page, "/train")
        page.get_by_text("100 to 100,000").wait_for(timeout=PAGE_MS)
        box = page.get_by_role("spinbutton", name="Simulations per round")
        box.fill("0")
        box.press("Enter")
        wait_idle(page, PAGE_MS)
        page.get_by_text("Use a whole number from 100 to 100,000 (you typed 0).").wait_for(timeout=PAGE_MS)
        # the message can show while the rerun is still replacing the old, enabled button:
        # wait for the page to settle rather than read it mid-redraw
        page.wait_for_function(
            """() => {
                const b = [...document.querySelectorAll('.st-key-train_start button[kind=primary]')];
                return b.length >= 1 && b.every((x) => x.disabled);
            }""",
            timeout=PAGE_MS,
            polling=200,
        )
        wait_idle(page, PAGE_MS)
        starts = page.locator(".st-key-train_start button[kind=primary]")
        assert starts.count() >= 1 and all(b.is_disabled() for b in starts.all())
        _clean(page, "out of range")
    page.context.close()

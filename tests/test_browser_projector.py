"""Browser test: projector mode on a 1024x768 projector (issue 19).

With the sidebar open, the Train page's two charts side by side squeezed the posterior to a sliver
(about 250 px, its title running past the chart's edge) and Home's "Start demo" sat two screens down
with its label broken mid-word. In projector mode the sidebar starts collapsed, charts take one row
each, and the demo button is on the first screen, one line high.

    python -m pytest tests/test_browser_projector.py -q
"""

from __future__ import annotations

import time

import pytest

from sbi_core import RunSpec
from sbi_core.jobs.worker import run_worker
from sbi_core.store.runs import RunStore
from sbi_ui import keys as K

from browser_support import browser_test_marks, goto, page_problems, screenshot_on_failure, wait_idle

pytestmark = browser_test_marks(300)

PAGE_MS = 60_000
PROJECTOR = {"width": 1024, "height": 768}

_BOXES = """(key) => {
  const gd = document.querySelector('.st-key-' + key + ' .js-plotly-plot');
  if (!gd) return null;
  const box = gd.getBoundingClientRect();
  const title = gd.querySelector('.gtitle');
  const t = title ? title.getBoundingClientRect() : null;
  return {left: box.left, right: box.right, width: box.width,
          title: t ? {left: t.left, right: t.right, text: title.textContent} : null};
}"""

_SIDEBAR = """() => {
  const sb = document.querySelector('[data-testid="stSidebar"]');
  return sb ? {width: sb.getBoundingClientRect().width, expanded: sb.getAttribute('aria-expanded')} : null;
}"""


@pytest.fixture(scope="module")
def server(shared_server):
    with shared_server.lend(__name__) as srv:  # the test process's shared server; its runs still active are ended after
        yield srv


@pytest.fixture(scope="module")
def served(server):
    """``(server, run id)``: the app, its store holding a finished 2-round two-moons run (tiny, seconds, trained
    here while the server runs: it reads the runs from the store on every page)."""
    store = RunStore(server.store_dir)
    spec = RunSpec(simulator="two_moons", method="snpe", num_rounds=2, simulations_per_round=150, max_epochs=3,
                   hidden_features=16, num_transforms=2, num_posterior_samples=150, num_threads=1,
                   title="projector")
    rid = store.create_run(spec)
    assert run_worker(store, rid) == "done", store.get_run(rid).message
    return server, rid


@pytest.fixture(scope="module")
def browser(shared_browser, served):
    with shared_browser.lend() as b:
        yield b


def _page(browser, url: str):
    context = browser.new_context(base_url=url, viewport=PROJECTOR)
    context.set_default_timeout(PAGE_MS)
    return context.new_page()


def _collapsed(page) -> bool:
    sidebar = page.evaluate(_SIDEBAR)
    return sidebar is None or sidebar["width"] < 5 or sidebar["expanded"] == "false"


def _wait(page, predicate, timeout_s: float = 30.0):
    """``predicate()`` once it is truthy (the layout settles a moment after the script run)."""
    deadline = time.monotonic() + timeout_s
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(0.3)
        value = predicate()
    return value


def test_train_charts_are_wide_and_titled_in_projector_mode(browser, served, tmp_path):
    server, rid = served
    page = _page(browser, server.url)
    try:
        with screenshot_on_failure(page, tmp_path, "projector_train"):
            goto(page, f"/train?run={rid}&projector=on", PAGE_MS)
            page.locator(".st-key-train_cloud_chart .js-plotly-plot").first.wait_for()
            wait_idle(page)
            assert _wait(page, lambda: _collapsed(page)), page.evaluate(_SIDEBAR)
            for key in ("train_loss_chart", "train_cloud_chart"):
                box = _wait(page, lambda: (b := page.evaluate(_BOXES, key)) and b["title"] and b)
                assert box, key
                assert box["width"] >= 300, (key, box)  # was about 250 px beside the open sidebar
                title = box["title"]
                assert title["left"] >= box["left"] - 1 and title["right"] <= box["right"] + 1, (key, box)
            cloud = page.evaluate(_BOXES, "train_cloud_chart")
            assert cloud["width"] >= 0.6 * PROJECTOR["width"], "one chart per row"
            assert not page_problems(page), page_problems(page)

            # the sidebar is one click away, and the setting stays on
            page.locator('[data-testid="stExpandSidebarButton"], [data-testid="stSidebarCollapsedControl"] button'
                         ).first.click()
            assert _wait(page, lambda: not _collapsed(page)), page.evaluate(_SIDEBAR)
            assert page.locator(f".st-key-{K.W_PROJECTOR} input").first.is_checked()
    finally:
        page.context.close()


def test_home_start_demo_is_on_the_first_screen_in_one_line(browser, served, tmp_path):
    server, _ = served
    page = _page(browser, server.url)
    try:
        with screenshot_on_failure(page, tmp_path, "projector_home"):
            goto(page, "/?projector=on", PAGE_MS)
            button = page.locator(f".st-key-{K.W_START_DEMO} button").first
            button.wait_for()
            assert _wait(page, lambda: _collapsed(page)), page.evaluate(_SIDEBAR)
            box = button.bounding_box()
            assert box["y"] + box["height"] <= PROJECTOR["height"], box  # no scrolling to find it
            line = page.evaluate(
                "(el) => parseFloat(getComputedStyle(el.querySelector('p') || el).lineHeight) || 32", button.element_handle())
            assert box["height"] < 2 * line + 24, (box, line)  # one line of label, not a word per line
            assert not page_problems(page), page_problems(page)
    finally:
        page.context.close()

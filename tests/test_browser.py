"""Browser tests: Debian's Chromium (Playwright) against a real ``streamlit run app.py``.

The test process's shared app server and browser (``tests/conftest.py``: one server for every
module that needs no server of its own, it takes seconds to start), lent to this module; every test
opens a fresh browser context, i.e. a new Streamlit session. The store may hold other modules'
(finished) runs: every check here addresses this module's own runs by id. The tests follow what a visitor does:

1. the home page renders;
2. "Start demo" opens the live view, which grows its loss curve and posterior
   clouds while the run trains, and shows "Finished:" at the end;
3. the Rounds page's Play button and round slider draw rounds 1..k only, frame by
   frame (counted as marker elements in the SVG, not read from the chart's data);
4. a reload of the live view finds the same run (its id is in the URL);
5. every page (the navigation's seven), with and without ``?run=``, renders without an
   exception or traceback;
6. on Explore, moving a slider of an amortized run redraws the posterior.

Runs the tests need but do not start through the UI are started with the core
(``JobManager``) in the same store, one torch thread each (robust on a busy
two-core machine). On failure a full-page screenshot is saved in the test's
``tmp_path`` and named in the assertion message.

    python -m pytest tests/test_browser.py -q
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import time
from urllib.parse import parse_qs, urlparse

import pytest

from browser_support import (
    DEMO_LABEL,
    browser_test_marks,
    drawn_points,
    drawn_round_points,
    goto,
    new_page,
    page_problems,
    screenshot_on_failure,
    wait_idle,
)

pytestmark = browser_test_marks(480)

# Generous bounds; every wait ends as soon as its condition holds.
# The demo started in the browser (4 rounds, the app's default of 2 torch threads on 2 cores): about
# 20-60 s on an otherwise idle 2-core machine, but 3 minutes and more while other processes use
# the cores (two torch threads slow down badly when a core is taken). SBI_BROWSER_DEMO_S overrides.
DEMO_FINISH_S = float(os.environ.get("SBI_BROWSER_DEMO_S", 300))
NPE_FINISH_S = 150
PAGE_MS = 45_000  # one page load incl. its first script run
LIVE_MS = 90_000  # a live-view change (the first epochs, the next epoch)

PAGES = {  # path -> the page's title (its h1)
    "/": "Simulation-based inference, live",
    "/model": "Model",
    "/data": "Your model & data",
    "/train": "Train",
    "/rounds": "Rounds",
    "/explore": "Explore",
    "/runs": "Runs",
}

# In-page snapshot of the live view, from what is drawn: the loss curve's drawn vertices (its
# first line's path), the number of round clouds with markers on screen, the progress text.
LIVE_JS = """() => {
    const plot = (key) => document.querySelector(`.st-key-${key} .js-plotly-plot`);
    const loss = plot('train_loss_chart'), cloud = plot('train_cloud_chart');
    const bar = document.querySelector('[data-testid="stProgress"]');
    // every loss line (one trace per round and curve): their vertices grow with every epoch
    const lines = loss ? Array.from(loss.querySelectorAll('.scatterlayer g.trace path.js-line')) : [];
    const vertices = lines.reduce((n, l) => n + (l.getAttribute('d') || '').split(/[ML]/).filter(p => p.trim()).length, 0);
    let rounds = 0;
    if (cloud) for (const g of cloud.querySelectorAll('.scatterlayer g.trace')) {
        const t = g.__data__ && g.__data__[0] && g.__data__[0].trace;
        if (t && /^round \\d+$/.test(t.name || '') && g.querySelectorAll('path.point').length > 0) rounds++;
    }
    return {
        epochs: vertices,
        rounds: rounds,
        progress: bar ? bar.innerText : null,
    };
}"""

# Fingerprint of what a chart draws: the positions of its first 200 markers on screen.
SIGNATURE_JS = """(key) => {
    const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
    if (!gd) return null;
    const pts = Array.from(gd.querySelectorAll('.scatterlayer path.point')).slice(0, 200);
    return pts.length ? pts.map(p => p.getAttribute('transform')).join(';') : null;
}"""

# Every animation frame of the Rounds chart: the slider's label and each round's drawn markers.
RECORD_FRAMES_JS = """() => {
    window.__frames = [];
    const tick = () => {
        const root = document.querySelector('.st-key-rounds_animation');
        const label = Array.from(root.querySelectorAll('text.slider-label')).map(e => e.textContent)
            .find(s => s.startsWith('Showing up to round'));
        const counts = {};
        for (const g of root.querySelectorAll('.scatterlayer g.trace')) {
            const t = g.__data__ && g.__data__[0] && g.__data__[0].trace;
            if (t && /^round \\d+$/.test(t.name || '')) counts[t.name] = g.querySelectorAll('path.point').length;
        }
        window.__frames.push([label, counts]);
        if (window.__frames.length < 4000) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
}"""


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------
@pytest.fixture
def page(browser, server):
    p = new_page(browser, server.url, timeout_ms=PAGE_MS)
    yield p
    p.context.close()


@pytest.fixture(scope="module")
def shared() -> dict:
    """Run ids handed from one test to the next (``demo``: the run started in the browser)."""
    return {}


def _jobs(server):
    from sbi_core.jobs.manager import JobManager
    from sbi_core.store.runs import RunStore

    return JobManager(RunStore(server.store_dir))


@pytest.fixture
def demo_run(server, shared) -> str:
    """A finished demo run: the one test 2 started in the browser if it finished, else one
    started here with the core (one torch thread: about 20-30 s on two cores)."""
    from sbi_core import RunSpec

    if shared.get("demo_ok"):
        return shared["demo_ok"]
    if shared.get("demo_error"):
        pytest.fail(f"no finished demo run: {shared['demo_error']}")
    jm = _jobs(server)
    old = shared.get("demo")
    if old is not None:
        info = jm.status(old)
        if info is not None and info.status == "done":
            shared["demo_ok"] = old
            return old
        if info is not None and info.is_active:  # test 2 gave up on it: do not let it load the machine
            jm.cancel(old)
            with contextlib.suppress(TimeoutError):
                jm.wait(old, timeout=20)
    rid = jm.start(dataclasses.replace(RunSpec.demo(), num_threads=1, title="Browser test: demo"))
    try:
        info = jm.wait(rid, timeout=DEMO_FINISH_S)
    except TimeoutError as err:
        jm.cancel(rid)
        shared["demo_error"] = str(err)
        raise
    if info.status != "done":
        shared["demo_error"] = f"demo run {rid} ended {info.status}: {info.message}"
        pytest.fail(shared["demo_error"])
    shared["demo_ok"] = rid
    return rid


@pytest.fixture
def npe_run(server, shared) -> str:
    """A finished amortized run (linear regression, 1,000 simulations, at most 30 epochs)."""
    from sbi_core import RunSpec

    jm = _jobs(server)
    rid = shared.get("npe")
    if rid is None:
        spec = RunSpec(simulator="linear_regression", method="npe", num_rounds=1, simulations_per_round=1000,
                       max_epochs=30, seed=0, num_threads=1, title="Browser test: amortized")
        rid = shared["npe"] = jm.start(spec)
    info = jm.wait(rid, timeout=NPE_FINISH_S)
    assert info.status == "done", f"amortized run {rid} ended {info.status}: {info.message}"
    return rid


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def expect():
    from playwright.sync_api import expect as _expect

    return _expect


def assert_clean(page, where: str) -> None:
    problems = page_problems(page)
    text = page.evaluate("() => document.body ? document.body.textContent : ''")
    if "Something went wrong" in text:  # the app's friendly wrapper around an unexpected exception
        k = text.index("Something went wrong")
        problems.append("app error: " + text[k:k + 600])
    assert not problems, f"{where}: " + "\n".join(problems)


def open_page(page, path: str, title: str) -> None:
    """Open ``path``, wait for its title and for the script run to end."""
    goto(page, path, PAGE_MS)
    expect()(page.locator("h1").filter(has_text=title).first).to_be_visible(timeout=PAGE_MS)
    wait_idle(page, PAGE_MS)


def run_of(url: str):
    return (parse_qs(urlparse(url).query).get("run") or [None])[0]


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------
def test_home_renders(page, tmp_path):
    with screenshot_on_failure(page, tmp_path, "home"):
        open_page(page, "/", PAGES["/"])
        expect()(page.get_by_role("button", name=DEMO_LABEL)).to_be_visible()
        expect()(page.locator(".st-key-home_overview .js-plotly-plot")).to_be_visible()
        nav = page.locator('[data-testid="stSidebarNav"]')
        for name in ("Home", "Model", "Your model & data", "Train", "Rounds", "Explore", "Runs"):
            expect()(nav.get_by_text(name, exact=True)).to_be_visible()
        expect()(page.get_by_role("heading", name="Recent runs")).to_be_visible()
        assert_clean(page, "/")


def test_demo_live_view(page, tmp_path, server, shared):
    from sbi_core.store.runs import RunStore

    ex = expect()
    with screenshot_on_failure(page, tmp_path, "demo_live"):
        open_page(page, "/", PAGES["/"])
        # the button joins an identical run that is queued, running or done: on the shared server it
        # must start a new one here, or there would be no live view to watch
        before = {info.id for info in RunStore(server.store_dir).list_runs(limit=None)}
        page.get_by_role("button", name=DEMO_LABEL).click()
        deadline = time.monotonic() + DEMO_FINISH_S

        def left_ms() -> float:
            return max(1000.0, 1000 * (deadline - time.monotonic()))

        page.wait_for_url(re.compile(r"/train\?(.*&)?run=\w+"), timeout=PAGE_MS)
        rid = run_of(page.url)
        assert rid, page.url
        assert rid not in before, f"Start demo joined run {rid}, which was in the shared store before the click"
        shared["demo"] = rid
        ex(page.locator(".st-key-train_run_header")).to_contain_text(rid, timeout=PAGE_MS)
        # .first: while the page redraws itself for the run's new status (queued, then running),
        # Streamlit keeps the old chart on screen (faded) beside the new one until the script ends
        ex(page.locator(".st-key-train_loss_chart .gtitle").first).to_have_text("Training and validation loss")
        ex(page.locator(".st-key-train_cloud_chart .gtitle").first).to_have_text("Posterior after each round")

        # the loss curves grow while the run trains: a snapshot taken mid-run, before the last round
        # (the progress bar says "Round i of 4 · ... · epoch n", i < 4), then a later one with more epochs
        page.wait_for_function(
            f"() => {{ const s = ({LIVE_JS})(); return s.epochs > 0 && s.progress && "
            r"/^Round [1-3] of 4 · simulations [\d,]+\/[\d,]+ · epoch \d+/.test(s.progress); }",
            timeout=min(LIVE_MS, left_ms()), polling=100,
        )
        first = page.evaluate(LIVE_JS)
        page.wait_for_function(f"(n) => ({LIVE_JS})().epochs > n", arg=first["epochs"],
                               timeout=min(LIVE_MS, left_ms()), polling=100)
        # round clouds appear one by one: at least two while we watch
        page.wait_for_function(f"() => ({LIVE_JS})().rounds >= 2", timeout=left_ms(), polling=250)
        # the live view switches to its final state by itself
        ex(page.get_by_text(re.compile(r"^Finished: 4 rounds\b"))).to_be_visible(timeout=left_ms())
        wait_idle(page, PAGE_MS)
        last = page.evaluate(LIVE_JS)
        assert last["rounds"] == 4, last
        # once the page is idle, one of each chart is left
        ex(page.locator(".st-key-train_loss_chart .gtitle")).to_have_count(1)
        ex(page.locator(".st-key-train_cloud_chart .gtitle")).to_have_count(1)
        assert last["epochs"] > first["epochs"], (first, last)
        ex(page.get_by_role("link", name="See it round by round")).to_be_visible()
        assert_clean(page, f"/train?run={rid}")


def _slider_to(page, chart, k: int) -> None:
    """Click the round slider at its label ``k``, as a visitor does."""
    label = chart.locator("g.slider-label-group text.slider-label").filter(has_text=re.compile(rf"^{k}$")).first
    box, rail = label.bounding_box(), chart.locator("rect.slider-rail-rect").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, rail["y"] + rail["height"] / 2)


def _only_rounds_up_to(counts: dict, k: int, n: int) -> bool:
    return (all(counts.get(f"round {r}", 0) > 0 for r in range(1, k + 1))
            and all(counts.get(f"round {r}", 0) == 0 for r in range(k + 1, n + 1)))


def test_rounds_slider_draws_only_rounds_up_to_its_value(page, tmp_path, demo_run):
    with screenshot_on_failure(page, tmp_path, "rounds_slider"):
        open_page(page, f"/rounds?run={demo_run}", PAGES["/rounds"])
        chart = page.locator(".st-key-rounds_animation")
        expect()(chart.locator(".gtitle")).to_have_text("Posterior round by round", timeout=PAGE_MS)
        label = chart.locator("text.slider-label").filter(has_text="Showing up to round")
        expect()(label).to_have_text("Showing up to round 4")  # opens on the last round
        page.wait_for_function("() => document.querySelectorAll('.st-key-rounds_animation path.point').length",
                               timeout=PAGE_MS)
        assert all(c > 0 for c in drawn_round_points(page, "rounds_animation").values())
        for k in (1, 2, 3, 4, 2):
            _slider_to(page, chart, k)
            expect()(label).to_have_text(f"Showing up to round {k}")
            page.wait_for_timeout(600)  # let the frame finish drawing
            counts = drawn_round_points(page, "rounds_animation")
            assert len(counts) == 4 and _only_rounds_up_to(counts, k, 4), (k, counts)
            info = drawn_points(page, "rounds_animation")
            op = dict(zip(info["names"], info["opacity"]))
            assert all(op[f"round {r}"] < op[f"round {k}"] for r in range(1, k)), (k, op)  # earlier: faded
        assert_clean(page, "/rounds")


def test_rounds_play_steps_through_the_rounds(page, tmp_path, demo_run):
    with screenshot_on_failure(page, tmp_path, "rounds_play"):
        open_page(page, f"/rounds?run={demo_run}", PAGES["/rounds"])
        chart = page.locator(".st-key-rounds_animation")
        expect()(chart.locator(".gtitle")).to_have_text("Posterior round by round", timeout=PAGE_MS)
        page.wait_for_function("() => document.querySelectorAll('.st-key-rounds_animation path.point').length",
                               timeout=PAGE_MS)
        page.evaluate(RECORD_FRAMES_JS)
        chart.locator(".updatemenu-button").filter(has_text="Play").click()
        # Play starts from round 1 and steps through to round 4
        page.wait_for_function(
            "() => { const f = window.__frames; const seen = new Set(f.map(x => x[0]));"
            " return seen.has('Showing up to round 1') && f[f.length - 1][0].endsWith('4') && seen.size >= 4; }",
            timeout=30_000, polling=100,
        )
        page.wait_for_timeout(800)
        frames = page.evaluate("() => window.__frames")
        labels = [int(f[0].rsplit(" ", 1)[1]) for f in frames if f[0]]
        order = [v for i, v in enumerate(labels) if i == 0 or v != labels[i - 1]]
        assert order[order.index(1):] == [1, 2, 3, 4], f"the animation did not step 1 -> 4: {order}"
        # what each frame drew once it settled (the last snapshot before the slider moved on)
        settled = {}
        for lab, counts in frames:
            if lab:
                settled[int(lab.rsplit(" ", 1)[1])] = counts
        for k in (1, 2, 3, 4):
            assert _only_rounds_up_to(settled[k], k, 4), (k, settled[k])
        assert_clean(page, "/rounds")


def test_reload_keeps_the_run(page, tmp_path, demo_run):
    with screenshot_on_failure(page, tmp_path, "reload"):
        open_page(page, f"/train?run={demo_run}", PAGES["/train"])
        header = page.locator(".st-key-train_run_header")
        expect()(header).to_contain_text(demo_run)
        title = header.locator("h3").first.inner_text().strip()
        assert title, "the run header has no title"
        page.reload(wait_until="domcontentloaded")
        wait_idle(page, PAGE_MS)
        expect()(page.locator("h1").filter(has_text="Train").first).to_be_visible()
        expect()(header).to_contain_text(demo_run, timeout=PAGE_MS)
        expect()(header.locator("h3").first).to_have_text(title)
        assert run_of(page.url) == demo_run, page.url
        expect()(page.get_by_text(re.compile(r"^Finished:"))).to_be_visible()
        # the sidebar follows the same run
        expect()(page.locator('[data-testid="stSidebar"]')).to_contain_text(demo_run)
        assert_clean(page, "/train after reload")


def test_every_page_without_exceptions(page, tmp_path, demo_run, npe_run):
    """Every page of the real server following a sequential run (the most charts), and the run pages of
    an amortized one. (Each page without a run, with finished runs of both kinds and with an id that
    is not in the store is also opened by tests/test_app.py's AppTests, which see the same exceptions;
    a full page load here costs Chromium 1-3 CPU-s.)"""
    visited = []
    with screenshot_on_failure(page, tmp_path, "every_page"):
        with_run = [(demo_run, list(PAGES)), (npe_run, ["/train", "/rounds", "/explore"])]
        for rid, paths in with_run:
            for path in paths:
                url = f"{path}?run={rid}"
                open_page(page, url, PAGES[path])
                assert_clean(page, url)
                visited.append(url)
    assert len(visited) == len(PAGES) + 3


def test_explore_slider_redraws_posterior(page, tmp_path, npe_run):
    with screenshot_on_failure(page, tmp_path, "explore"):
        open_page(page, f"/explore?run={npe_run}", PAGES["/explore"])
        chart = page.locator(".st-key-explore_posterior .js-plotly-plot")
        expect()(chart).to_be_visible(timeout=PAGE_MS)
        expect()(page.locator(".st-key-explore_predictive .js-plotly-plot")).to_be_visible()
        caption = page.get_by_text(re.compile(r"^2,000 posterior samples drawn in \d+ ms"))
        expect()(caption).to_be_visible()
        star = page.get_by_text("The red star is the true parameter", exact=False)
        expect()(star).to_be_visible()  # at the run's own observation the truth is known
        before = page.evaluate(SIGNATURE_JS, "explore_posterior")
        assert before, "the posterior chart has no data"
        slider = page.locator(f".st-key-explore_x_{npe_run}_0 input[type=range]")
        value = slider.input_value()
        slider.focus()
        slider.press("ArrowRight")
        expect()(slider).not_to_have_value(value, timeout=10_000)
        page.wait_for_function(
            f"(old) => {{ const s = ({SIGNATURE_JS})('explore_posterior'); return s && s !== old; }}",
            arg=before, timeout=30_000, polling=50,
        )
        wait_idle(page, PAGE_MS)
        expect()(caption).to_be_visible()
        # away from the run's observation: the red star of the true parameter is gone
        expect()(star).to_have_count(0)
        assert_clean(page, "/explore after a slider move")

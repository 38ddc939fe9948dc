"""Browser test of the HTML report: opened from disk in Debian's Chromium, it asks for nothing and draws every chart.

The report of a tiny checked run and of a 2-round run with a hostile title (the runs of
``tests/test_report.py``) is written to a file and opened with Playwright. Every request the page
makes is recorded: the only one allowed is the file itself. The charts must be drawn by the inline
plotly.js (``.js-plotly-plot``, with marker paths in the posterior clouds), with no page error, no
console error and no dialog (the hostile title's ``alert`` must not run).

    python -m pytest tests/test_browser_report.py -q
"""

from __future__ import annotations

import pytest

from browser_support import browser_test_marks
from sbi_core import plots
from sbi_core.export.report import run_report_html
from test_report import CHECK_FIGURE_TITLES, HOSTILE, RUN_FIGURES, finished_runs

pytestmark = browser_test_marks(300)

# JavaScript: each chart's title and the number of scatter markers it drew.
_CHARTS_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => ({
    title: (gd.layout && gd.layout.title && gd.layout.title.text) || '',
    points: gd.querySelectorAll('path.point').length,
}))"""


@pytest.fixture(scope="module")
def report_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser_report")
    store, checked, unchecked = finished_runs(root / "store")
    files = {}
    for name, rid in (("checked", checked), ("unchecked", unchecked)):
        files[name] = root / f"{name}.html"
        files[name].write_text(run_report_html(store, rid), encoding="utf-8")
    return files


@pytest.fixture(scope="module")
def browser(shared_browser):
    with shared_browser.lend() as b:  # the test process's Chromium (tests/conftest.py); no app server here
        yield b


def open_report(browser, path):
    """Open ``path``; returns ``(page, requests, problems)`` recorded while it loads and draws."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    requests, problems = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.goto(path.as_uri(), wait_until="load", timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length > 0",
                           timeout=30_000)
    page.wait_for_timeout(500)  # let the last charts finish drawing
    return page, requests, problems


@pytest.mark.parametrize("which, charts", [("checked", RUN_FIGURES + len(CHECK_FIGURE_TITLES)),
                                           ("unchecked", RUN_FIGURES)])
def test_report_opens_offline_and_draws_every_chart(browser, report_files, which, charts):
    path = report_files[which]
    page, requests, problems = open_report(browser, path)
    try:
        assert requests == [path.as_uri()], [u[:120] for u in requests]  # nothing but the file itself
        assert problems == []
        drawn = page.evaluate(_CHARTS_JS)
        assert len(drawn) == charts, drawn
        clouds = [c for c in drawn if c["title"] == plots.CLOUD_TITLE or c["title"].startswith("Pair plot")]
        assert len(clouds) == 2 and all(c["points"] > 0 for c in clouds), clouds
        if which == "checked":
            titles = {c["title"] for c in drawn}
            assert set(CHECK_FIGURE_TITLES) <= titles, titles
        else:
            assert page.title() == HOSTILE  # shown as text, never run
    finally:
        page.context.close()

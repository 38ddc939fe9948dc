"""Browser test: "Show the true parameter" off lasts (it is ``?truth=hidden`` in the URL).

Switched off in the sidebar, the setting must survive what a teacher does in
front of a class: a reload (a new Streamlit session that only has the URL),
a click on another page in the navigation (which starts that page with its own
URL) and the same address opened in a new tab. What is checked is what the
page draws: the toggle's state, and the star marker of the true parameter on
the Home picture (the ``path.point`` elements of its trace in the SVG).

    python -m pytest tests/test_browser_urlstate.py -q
"""

from __future__ import annotations

import time

from urllib.parse import parse_qs, urlparse

from browser_support import (
    browser_test_marks,
    drawn_points,
    goto,
    new_page,
    page_problems,
    screenshot_on_failure,
    wait_idle,
)

pytestmark = browser_test_marks(300)

PAGE_MS = 45_000
TOGGLE = ".st-key-reveal_true"
HOME_CHART = "home_overview"


def truth_param(page) -> list:
    return parse_qs(urlparse(page.url).query).get("truth", [])


def toggle_on(page) -> bool:
    box = page.locator(f'{TOGGLE} input[type="checkbox"]')
    box.wait_for(state="attached")
    return box.is_checked()


def truth_stars_drawn(page) -> int:
    """Markers drawn by the Home picture's "true parameter" trace (0 when it has none)."""
    page.wait_for_selector(f".st-key-{HOME_CHART} .js-plotly-plot .scatterlayer .trace path.point")
    info = drawn_points(page, HOME_CHART) or {"names": [], "points": []}
    return sum(n for name, n in zip(info["names"], info["points"]) if name == "true parameter")


def settled_truth_stars(page, expected: int, timeout_s: float = 15.0) -> int:
    """The drawn star count once it equals ``expected`` or ``timeout_s`` has passed.

    The URL and the toggle change as soon as the server has the new value; the chart is redrawn
    a moment later, so a single read right after a click can still see the previous drawing.
    """
    deadline = time.monotonic() + timeout_s
    drawn = truth_stars_drawn(page)
    while drawn != expected and time.monotonic() < deadline:
        page.wait_for_timeout(250)
        drawn = truth_stars_drawn(page)
    return drawn


def test_truth_hidden_survives_reload_page_change_and_new_tab(browser, server, tmp_path):
    page = new_page(browser, server.url, timeout_ms=PAGE_MS)
    try:
        with screenshot_on_failure(page, tmp_path, "truth_hidden"):
            goto(page, "/")
            assert toggle_on(page) and truth_param(page) == []
            assert settled_truth_stars(page, 1) == 1, "the star is drawn while the toggle is on"

            page.locator(f"{TOGGLE} label").click()
            wait_idle(page)
            page.wait_for_function("() => new URLSearchParams(location.search).get('truth') === 'hidden'")
            assert not toggle_on(page)
            assert settled_truth_stars(page, 0) == 0

            page.reload(wait_until="domcontentloaded")
            page.wait_for_selector('[data-testid="stApp"]')
            wait_idle(page)
            assert truth_param(page) == ["hidden"], page.url
            assert not toggle_on(page), "a reload turned the true parameter back on"
            assert settled_truth_stars(page, 0) == 0, "a reload drew the true parameter again"

            # another page through the navigation, then back home the same way
            page.locator('[data-testid="stSidebarNav"] a', has_text="Model").first.click()
            page.wait_for_url("**/model*")
            wait_idle(page)
            page.wait_for_function("() => new URLSearchParams(location.search).get('truth') === 'hidden'")
            assert not toggle_on(page), "the Model page turned it back on"
            page.locator('[data-testid="stSidebarNav"] a', has_text="Home").first.click()
            wait_idle(page)
            page.wait_for_function("() => new URLSearchParams(location.search).get('truth') === 'hidden'")
            assert not toggle_on(page)
            assert settled_truth_stars(page, 0) == 0
            address = page.url
            assert not page_problems(page), page_problems(page)

        # the same address in a new tab (a new context: a new session, nothing shared but the URL)
        tab = new_page(browser, server.url, timeout_ms=PAGE_MS)
        try:
            with screenshot_on_failure(tab, tmp_path, "truth_hidden_new_tab"):
                goto(tab, address)
                assert not toggle_on(tab), "a new tab turned it back on"
                assert truth_stars_drawn(tab) == 0
                assert truth_param(tab) == ["hidden"]
        finally:
            tab.context.close()

        # and switched on again, the URL forgets it
        with screenshot_on_failure(page, tmp_path, "truth_shown_again"):
            page.locator(f"{TOGGLE} label").click()
            wait_idle(page)
            page.wait_for_function("() => !new URLSearchParams(location.search).has('truth')")
            assert toggle_on(page)
            assert settled_truth_stars(page, 1) == 1
    finally:
        page.context.close()

"""Browser test of the Compare page: a two-method comparison end to end.

Start NPE against SNPE on two moons from the page's form (tiny budgets: 300 simulations each, SNPE
in 2 rounds of 150, at most 20 epochs a round), wait until both runs finish, and check what the page
really draws (read from its SVG): one cloud per method, each with its markers, and a C2ST curve with
a point per round. A full-page screenshot of the finished comparison goes to the test's temporary folder, or to
``assets/screenshots/issue11/compare.png`` with ``SBI_SAVE_SCREENSHOTS=1`` (the tests leave the
checkout as they found it).

    python -m pytest tests/test_browser_compare.py -q
"""

from __future__ import annotations

import os
import time

from browser_support import (
    ROOT,
    browser_test_marks,
    drawn_points,
    goto,
    page_problems,
    screenshot_on_failure,
    wait_idle,
)

pytestmark = browser_test_marks(420)

PAGE_MS = 60_000
RUN_S = 180  # both runs, one after another, on a busy two-core machine
ASSET = ROOT / "assets" / "screenshots" / "issue11" / "compare.png"


def _fill(page, key: str, value: str) -> None:
    box = page.locator(f".st-key-{key} input").first
    box.wait_for(timeout=PAGE_MS)
    box.fill(value)
    box.press("Tab")
    wait_idle(page, PAGE_MS)


def _both_done(page) -> bool:
    status = page.locator(".st-key-compare_status")
    return status.count() > 0 and status.first.inner_text().count("Done") == 2


def test_two_method_comparison_draws_two_clouds_and_a_c2st_curve(browser, server, tmp_path):
    context = browser.new_context(base_url=server.url, viewport={"width": 1400, "height": 2200})
    context.set_default_timeout(PAGE_MS)
    page = context.new_page()
    with screenshot_on_failure(page, tmp_path, "compare"):
        goto(page, "/compare", PAGE_MS)
        page.locator("h1").filter(has_text="Compare").first.wait_for(timeout=PAGE_MS)
        page.locator(".st-key-compare_methods").get_by_text("Sequential SNPE").first.wait_for(timeout=PAGE_MS)
        chosen = page.locator(".st-key-compare_methods").inner_text()
        assert "Amortized NPE" in chosen and "Sequential SNPE" in chosen, chosen
        _fill(page, "compare_budgets", "300")
        _fill(page, "compare_rounds", "2")
        _fill(page, "compare_max_epochs", "20")
        page.get_by_text("Amortized NPE: 1 round of 300 · Sequential SNPE: 2 rounds of 150").wait_for()
        page.get_by_role("button", name="Start comparison").click()
        page.locator(".st-key-compare_status").wait_for(timeout=PAGE_MS)
        assert "compare=" in page.url
        end = time.monotonic() + RUN_S
        while not _both_done(page) and time.monotonic() < end:
            time.sleep(1.0)
        assert _both_done(page), page.locator(".st-key-compare_status").inner_text()
        wait_idle(page, PAGE_MS)
        page.locator(".st-key-compare_c2st_chart .scatterlayer path.point").first.wait_for(timeout=PAGE_MS)
        time.sleep(1.0)  # the last poll's redraw

        clouds = drawn_points(page, "compare_clouds_chart")
        drawn = {n: c for n, c in zip(clouds["names"], clouds["points"]) if "simulations" in n}
        assert len(drawn) == 2 and all(c >= 500 for c in drawn.values()), clouds
        assert any(n.startswith("Amortized NPE") for n in drawn) and any(n.startswith("Sequential SNPE") for n in drawn)
        curve = drawn_points(page, "compare_c2st_chart")
        lines = {n: c for n, c in zip(curve["names"], curve["points"]) if "sims" in n}
        assert sorted(lines.values()) == [1, 2], curve  # NPE: one round; SNPE: a point per round
        assert not page_problems(page), page_problems(page)

        page.reload(wait_until="domcontentloaded")  # the comparison lives in the URL: a reload keeps it
        page.wait_for_selector('[data-testid="stApp"]', timeout=PAGE_MS)
        wait_idle(page, PAGE_MS)
        page.locator(".st-key-compare_clouds_chart .scatterlayer path.point").first.wait_for(timeout=PAGE_MS)
        page.locator(".st-key-compare_c2st_chart .scatterlayer path.point").first.wait_for(timeout=PAGE_MS)
        time.sleep(1.5)
        shot = ASSET if os.environ.get("SBI_SAVE_SCREENSHOTS") == "1" else tmp_path / "compare.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    context.close()

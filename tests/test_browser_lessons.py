"""Browser test: a lesson step in projector mode draws, reacts and keeps its answer hidden until revealed.

Lesson 2 (rejection ABC by hand) is opened by its link with ``?projector=on``:
the text is large, the truth hidden, and moving epsilon down must leave fewer
accepted draws *drawn* (the ``path.point`` markers of the cloud), not just
fewer in the data. Screenshots go to ``$SBI_SCREENSHOTS`` when it is set.

    python -m pytest tests/test_browser_lessons.py -q
"""

from __future__ import annotations

import os
import time
from pathlib import Path

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

PAGE_MS = 60_000
CLOUD = "lesson_abc_0_cloud"


def _accepted_drawn(page) -> int:
    info = drawn_points(page, CLOUD) or {"names": [], "points": []}
    return sum(c for n, c in zip(info["names"], info["points"]) if n == "accepted prior draws")


def _settled(page, before: int, timeout_s: float = 30) -> int:
    """The drawn count once it has changed from ``before`` and stopped changing."""
    deadline, last = time.monotonic() + timeout_s, before
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _accepted_drawn(page)
        if now != before and now == last:
            return now
        last = now
    return last


def _shot(page, name: str) -> None:
    folder = os.environ.get("SBI_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def test_abc_lesson_in_projector_mode(browser, server, tmp_path):
    page = new_page(browser, server.url, PAGE_MS)
    page.set_viewport_size({"width": 1280, "height": 1500})
    with screenshot_on_failure(page, tmp_path, "lesson_abc"):
        goto(page, "/lessons?lesson=abc&step=1&projector=on", PAGE_MS)
        page.locator(f".st-key-{CLOUD} .js-plotly-plot").wait_for(timeout=PAGE_MS)
        wait_idle(page, PAGE_MS)
        # projector mode: larger text; the true parameter starts hidden in a lesson
        size = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector("
                             "'[data-testid=\"stMarkdownContainer\"] p')).fontSize)")
        assert size >= 22, size
        assert not page.locator('.st-key-reveal_true input[type="checkbox"]').is_checked()
        wide = _accepted_drawn(page)
        assert wide > 500, wide  # epsilon starts large: a broad, prior-like cloud
        slider = page.locator(".st-key-lesson_abc_0_eps input[type=range]")
        slider.focus()
        for _ in range(3):  # epsilon down, as a visitor would with the keyboard (Page Down: a tenth of the range)
            slider.press("PageDown")
        slider.press("Home")  # and all the way: the smallest epsilon
        slider.press("ArrowRight")  # an arrow key commits the value (Home alone only moves the thumb)
        narrow = _settled(page, wide)
        assert 0 < narrow < wide / 5, (wide, narrow)
        # the answer is hidden until revealed
        answer = "With a large epsilon almost every simulation"
        assert page.get_by_text(answer).count() == 0
        page.locator(".st-key-lesson_reveal_abc_0 label").click()
        page.get_by_text(answer).wait_for(timeout=PAGE_MS)
        _shot(page, "lesson_projector.png")
        assert not page_problems(page)
    page.context.close()

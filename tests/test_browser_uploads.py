"""Browser tests of uploads (Playwright + Debian's Chromium against a real ``streamlit run``):

* upload ``assets/examples/pendulum.py`` on *Your model & data*, use it, train a small
  amortized run on the Train page and see its posterior cloud;
* upload ``assets/examples/broken_syntax.py`` and see the message with its line number,
  and no Streamlit exception.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("playwright.sync_api")

from browser_support import (  # noqa: E402
    chromium_available,
    goto,
    new_page,
    page_problems,
    plot_info,
    round_traces,
    screenshot_on_failure,
    wait_idle,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.timeout(480),
    pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium"),
]

EXAMPLES = ROOT / "assets" / "examples"
TRAIN_TIMEOUT_MS = 300_000  # a small run, but the machine may be busy


@pytest.fixture
def page(browser, server):
    p = new_page(browser, server.url, timeout_ms=60_000)
    yield p
    p.context.close()


def click_button(page, key: str) -> None:
    """Click the keyed button (a button with a help tooltip also renders a hidden copy)."""
    page.locator(f".st-key-{key}").get_by_role("button").click()


def set_number(page, key: str, value: int) -> None:
    box = page.locator(f".st-key-{key} input")
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def test_upload_pendulum_train_and_see_posterior(page, tmp_path):
    with screenshot_on_failure(page, tmp_path, "upload_pendulum"):
        goto(page, "/data")
        page.locator(".st-key-data_sim_file input[type=file]").set_input_files(str(EXAMPLES / "pendulum.py"))
        page.get_by_role("heading", name="Pendulum").wait_for(timeout=90_000)
        wait_idle(page)
        assert not page.locator('[data-testid="stException"]').count()
        click_button(page, "data_sim_use")
        page.wait_for_url("**/train**", timeout=60_000)
        wait_idle(page)
        page.get_by_text("Model: Pendulum").first.wait_for()

        # a small amortized run: 200 simulations, a tiny flow, 5 epochs
        page.locator(".st-key-train_method").get_by_text("Amortized NPE").click()
        wait_idle(page)
        set_number(page, "train_simulations", 200)
        page.locator('[data-testid="stExpander"] summary').filter(has_text="Advanced").click()
        set_number(page, "train_hidden_features", 16)
        set_number(page, "train_num_transforms", 2)
        set_number(page, "train_max_epochs", 5)
        click_button(page, "train_start")
        page.wait_for_url("**run=**", timeout=60_000)
        done = page.locator('[data-testid="stAlertContentSuccess"]').filter(has_text="Finished: 1 round of")
        done.first.wait_for(timeout=TRAIN_TIMEOUT_MS)
        deadline = time.monotonic() + 60
        info = None
        while time.monotonic() < deadline:
            info = plot_info(page, "train_cloud_chart")
            if round_traces(info):
                break
            time.sleep(0.5)
        assert round_traces(info) >= 1, info
        points = page.evaluate(
            """() => {
                const gd = document.querySelector('.st-key-train_cloud_chart .js-plotly-plot');
                const tr = (gd && gd._fullData || []).find(d => /^round \\d+$/.test(d.name || ''));
                return tr && tr.x ? tr.x.length : 0;
            }"""
        )
        assert points > 0, (points, info)
        assert not page_problems(page), page_problems(page)


def test_broken_upload_shows_its_line(page, tmp_path):
    with screenshot_on_failure(page, tmp_path, "upload_broken"):
        goto(page, "/data")
        page.locator(".st-key-data_sim_file input[type=file]").set_input_files(str(EXAMPLES / "broken_syntax.py"))
        message = page.locator('[data-testid="stAlertContentError"]').filter(has_text="broken_syntax.py")
        message.first.wait_for(timeout=90_000)
        wait_idle(page)
        text = message.first.inner_text()
        assert "was not accepted" in text and "syntax error on line 9" in text, text
        assert page.locator('[data-testid="stException"]').count() == 0
        assert not page_problems(page), page_problems(page)

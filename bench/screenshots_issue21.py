"""Screenshots of a series model for issue 21's closing note (Playwright + Debian's Chromium).

Starts ``streamlit run app.py`` on a free port with a temporary run store (the helpers of
``tests/browser_support.py``) and, as a visitor would, in one browser session:

1. *Your model & data*: uploads ``assets/examples/epidemic_daily.py`` (a series declared with
   ``DATA_SHAPE``) and waits for its shaped preview (a fan chart of the simulations);
2. *Model*: picks the built-in ``sir_series``; *Train*: amortized NPE with a short run's settings,
   the Advanced settings open on "Learned summary of the data"; starts the run and waits for it;
3. *Explore*: the series moves, the observation, the posterior and the predictive fan chart;
4. *Check*: runs the checks and shows the posterior predictive check (a fan chart).

Each page is saved as a PNG of its whole height (the viewport grown to the page) into
``assets/screenshots/issue21/`` (or ``--out``); nothing there is deleted. Prints each file's path.

    python bench/screenshots_issue21.py [--out DIR] [--simulations 1000] [--epochs 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "assets" / "screenshots" / "issue21"
EXAMPLE = ROOT / "assets" / "examples" / "epidemic_daily.py"
PAGE_MS = 120_000
RUN_MS = 600_000

if str(ROOT) not in sys.path:  # sbi_core and sbi_ui, when run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from common import browser_support  # noqa: E402  (bench/ is the script's folder, first on sys.path)


_bs = browser_support()

# the height of the page's scrolling content (Streamlit scrolls its main section, not the document)
_HEIGHT_JS = """() => Math.max(...['[data-testid="stMain"]', '[data-testid="stAppViewContainer"]', 'body']
    .map(s => document.querySelector(s)).filter(Boolean).map(el => el.scrollHeight))"""


def full_page(page, path: Path, max_height: int = 9000) -> Path:
    """A PNG of the whole page: the viewport grown to the content's height, then put back."""
    old = page.viewport_size
    height = min(int(page.evaluate(_HEIGHT_JS)), max_height)
    page.set_viewport_size({"width": old["width"], "height": max(height, old["height"])})
    time.sleep(1.0)  # charts redraw at the new size
    _bs.wait_idle(page, PAGE_MS)
    page.screenshot(path=str(path))
    page.set_viewport_size(old)
    print(path)
    return path


def region(page, path: Path, top_locator, bottom_locator, pad: int = 24) -> Path:
    """A PNG from ``top_locator``'s top to ``bottom_locator``'s bottom, across the main column."""
    old = page.viewport_size
    page.set_viewport_size({"width": old["width"], "height": min(int(page.evaluate(_HEIGHT_JS)), 12000)})
    time.sleep(1.0)
    _bs.wait_idle(page, PAGE_MS)
    top, bottom = top_locator.bounding_box(), bottom_locator.bounding_box()
    main = page.locator('[data-testid="stMain"]').bounding_box()
    y0 = max(top["y"] - pad, 0)
    page.screenshot(path=str(path), clip={"x": main["x"], "y": y0, "width": main["width"],
                                          "height": bottom["y"] + bottom["height"] + pad - y0})
    page.set_viewport_size(old)
    print(path)
    return path


def click(page, key: str) -> None:
    """Click the keyed button (a button with a help tooltip also renders a hidden copy)."""
    page.locator(f".st-key-{key}").get_by_role("button").first.click()


def set_number(page, key: str, value: int) -> None:
    box = page.locator(f".st-key-{key} input")
    box.fill(str(value))
    box.press("Enter")
    _bs.wait_idle(page, PAGE_MS)


def sidebar(page, name: str) -> None:
    """Go to another page through the sidebar (the session, and so the current run, stays)."""
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=name, exact=True).click()
    page.locator("h1").filter(has_text=name).first.wait_for(timeout=PAGE_MS)
    _bs.wait_idle(page, PAGE_MS)


def upload(page, out: Path) -> None:
    _bs.goto(page, "/data", PAGE_MS)
    page.locator(".st-key-data_sim_file input[type=file]").set_input_files(str(EXAMPLE))
    page.locator(".st-key-data_sim_thumbnail .js-plotly-plot").wait_for(timeout=PAGE_MS)
    _bs.wait_idle(page, PAGE_MS)
    _problems(page, "upload")
    full_page(page, out / "upload_epidemic_daily_series_preview.png")


def train(page, out: Path, simulations: int, epochs: int) -> None:
    from sbi_core import get_simulator
    from sbi_ui import keys as K

    sidebar(page, "Model")
    click(page, K.w_model_pick("sir_series"))
    page.get_by_role("heading", name=f"2 · {get_simulator('sir_series').title}").wait_for(timeout=PAGE_MS)
    _bs.wait_idle(page, PAGE_MS)
    sidebar(page, "Train")
    page.locator(f".st-key-{K.W_METHOD}").get_by_text("Amortized NPE").click()
    _bs.wait_idle(page, PAGE_MS)
    set_number(page, K.W_SIMS, simulations)
    page.locator(".st-key-train_advanced summary").click()
    page.locator(f".st-key-{K.W_EMBEDDING}").wait_for(timeout=PAGE_MS)
    set_number(page, K.W_MAX_EPOCHS, epochs)
    _problems(page, "train settings")
    full_page(page, out / "train_sir_series_learned_summary.png")
    click(page, K.W_START)
    confirm = page.locator(f".st-key-{K.W_START_CONFIRM}")
    try:
        confirm.wait_for(timeout=5_000)
        click(page, K.W_START_CONFIRM)
    except Exception:  # noqa: BLE001 - a short run starts without asking
        pass
    page.wait_for_url("**run=**", timeout=PAGE_MS)
    done = page.locator('[data-testid="stAlertContentSuccess"]').filter(has_text="Finished")
    done.first.wait_for(timeout=RUN_MS)
    _bs.wait_idle(page, PAGE_MS)


def explore(page, out: Path) -> None:
    sidebar(page, "Explore")
    page.locator(".st-key-explore_predictive .js-plotly-plot").wait_for(timeout=PAGE_MS)
    _bs.wait_idle(page, PAGE_MS)
    _problems(page, "explore")
    full_page(page, out / "explore_sir_series_after_short_run.png")


def check(page, out: Path) -> None:
    sidebar(page, "Check")
    page.get_by_role("button", name="Run the checks").click()
    chart = page.locator(".st-key-check_predictive_0 .js-plotly-plot")
    chart.wait_for(timeout=RUN_MS)
    _bs.wait_idle(page, PAGE_MS)
    _problems(page, "check")
    heading = page.get_by_role("heading").filter(has_text="redictive").last
    words = page.get_by_text("Data simulated from the posterior at").last  # how to read it, under its verdict
    region(page, out / "check_sir_series_predictive_fan.png", heading, words)
    full_page(page, out / "check_sir_series_full_page.png", max_height=12000)


def _problems(page, where: str) -> None:
    problems = _bs.page_problems(page)
    if problems:
        print(f"{where}: {problems}", file=sys.stderr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--simulations", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args(argv)
    if not _bs.chromium_available():
        print("needs Chromium at /usr/bin/chromium", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shots21_") as tmp:
        with _bs.AppServer(Path(tmp) / "store") as srv, _bs.launch_browser() as browser:
            page = _bs.new_page(browser, srv.url, PAGE_MS)
            try:
                upload(page, args.out)
                train(page, args.out, args.simulations, args.epochs)
                explore(page, args.out)
                check(page, args.out)
            except BaseException:
                page.screenshot(path=str(Path(tmp).parent / "shots21_failure.png"))
                print(f"failed; last page: {Path(tmp).parent / 'shots21_failure.png'}\n{srv.log_tail()}",
                      file=sys.stderr)
                raise
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a user typed never makes a browser fetch anything: every page shows it as text (a real browser).

A run is trained in this process with a hostile title (a markdown image) and hostile prior parameter
names (an HTML ``<img>``, a markdown image), then opened on Runs, Train, Rounds, Check, Compare and,
in teacher mode, the Class gallery; on "Your model & data" a simulator file is uploaded whose name
holds backticks and an image and whose docstring and ``PRIOR`` hold images, and a CSV table whose
header is an image. Every request the page makes is recorded (Playwright's ``page.on("request")``):
none may go to a host other than the app's own (the hostile strings all point at 203.0.113.9, a
documentation address; Streamlit's own icon downloads, the same for every page, are the one exception:
:func:`streamlit_icon`), and the literal text must be visible.

Before ``sbi_ui.user_text`` the title was rendered as markdown by the sidebar, the Runs page and the
live view, so each of these pages asked 203.0.113.9 for the image.

    python -m pytest tests/test_browser_hostile_text.py -q
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import pytest

from sbi_core import RunSpec
from sbi_core.jobs.worker import run_worker
from sbi_core.store.runs import RunStore
from sbi_ui import keys as K
from sbi_ui.owner import TEACHER_ENV
from sbi_ui.user_text import WORD_JOINER

from browser_support import (AppServer, browser_test_marks, goto, new_page, page_problems,
                             screenshot_on_failure, wait_idle)

pytestmark = browser_test_marks(600)

EVIL = "203.0.113.9"
TITLE = f"![i](http://{EVIL}/T.png) my run"
PARAMS = [f"<img src=http://{EVIL}/p.png>", f"b ![p](http://{EVIL}/q.png)"]
FILE_NAME = f"`a` ![f](http:{EVIL}) [l](http:{EVIL}) sim.py"  # no "/" in a file name; Chrome reads http:host
DOC_IMAGE = f"![d](http://{EVIL}/d.png)"
UPLOAD_PARAM = f"k ![u](http://{EVIL}/u.png)"
CSV_HEADER = f"![c](http://{EVIL}/c.png)"
TEACHER_KEY = "hostile-text-teacher"

SIMULATOR = f'''"""A line model. {DOC_IMAGE}"""
import numpy as np

PRIOR = [{json.dumps({"name": UPLOAD_PARAM, "dist": "uniform", "low": 0, "high": 2})}]
OBSERVATION = [1.0, 0.5]


def simulate(theta):
    theta = np.atleast_2d(theta)
    return np.hstack([theta, theta / 2])
'''.encode()
TABLE = ("theta1," + CSV_HEADER + "\n" + "\n".join(f"{i / 10:.1f},{i / 5:.2f}" for i in range(30)) + "\n").encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_text")
    srv = AppServer(root / "store", log_path=root / "streamlit.log")
    base_env = srv.env
    srv.env = lambda: dict(base_env(), **{TEACHER_ENV: TEACHER_KEY})  # type: ignore[method-assign]
    with srv:
        yield srv


@pytest.fixture(scope="module")
def run_id(server):
    """A tiny two-moons run, trained here, titled :data:`TITLE` with parameters :data:`PARAMS`."""
    store = RunStore(server.store_dir)
    prior = [{"name": n, "dist": "uniform", "low": -1, "high": 1} for n in PARAMS]
    rid = store.create_run(RunSpec(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=150,
                                   max_epochs=3, num_posterior_samples=100, hidden_features=16, num_transforms=2,
                                   num_threads=1, prior=prior, title=TITLE))
    assert run_worker(store, rid) == "done", store.get_run(rid).message
    return rid


class Requests:
    """Every URL a page asks for, and those that leave the app's own host."""

    def __init__(self, page, own: str) -> None:
        self.urls: list[str] = []
        self.own = urlsplit(own).netloc
        page.on("request", lambda r: self.urls.append(r.url))

    def foreign(self) -> list[str]:
        return [u for u in self.urls if urlsplit(u).scheme not in ("data", "blob", "about")
                and urlsplit(u).netloc != self.own and not streamlit_icon(u)]


def streamlit_icon(url: str) -> bool:
    """Streamlit 1.67 itself loads the SVG of some ``:material/...:`` icons the app names (``list_alt``,
    ``scatter_plot``) from Google's font server: the app's own icons, the same for every page and user,
    so not something a user's text can add (what it could add would be an image at :data:`EVIL`)."""
    parts = urlsplit(url)
    return parts.netloc == "fonts.gstatic.com" and "/materialsymbols" in parts.path and EVIL not in url


def shown(page) -> str:
    """The page's visible text, word joiners (which :func:`plain` adds) dropped, whitespace as one space."""
    text = page.evaluate("() => document.body.innerText").replace(WORD_JOINER, "")
    return " ".join(text.split())


def wait_shown(page, literal: str, timeout_s: float = 60) -> None:
    """Wait until :func:`shown` holds ``literal`` (the script run that draws it may still be going on)."""
    deadline = time.monotonic() + timeout_s
    while literal not in shown(page):
        assert time.monotonic() < deadline, f"{literal!r} not shown after {timeout_s} s"
        time.sleep(0.5)


def settle(page, seconds: float = 1.5) -> None:
    """Let images and charts start their requests before the requests are counted."""
    wait_idle(page)
    time.sleep(seconds)
    wait_idle(page)


def enter_teacher_mode(page) -> None:
    box = page.locator(f".st-key-{K.W_TEACHER_KEY} input")
    box.fill(TEACHER_KEY)
    box.press("Enter")
    page.get_by_text("Teacher mode is on").first.wait_for()


def test_run_pages_never_fetch_what_a_title_or_parameter_name_points_at(browser, server, run_id, tmp_path):
    page = new_page(browser, server.url, timeout_ms=60_000)
    requests = Requests(page, server.url)
    visits = [("runs", TITLE), ("train", TITLE), ("rounds", PARAMS[0]), ("check", TITLE), ("compare", None)]
    for path, literal in visits:
        with screenshot_on_failure(page, tmp_path, f"hostile_{path}"):
            goto(page, f"/{path}?{K.QP_RUN}={run_id}")
            settle(page)
            assert not page_problems(page), (path, page_problems(page))
            assert not requests.foreign(), (path, requests.foreign())
            if literal is not None:
                assert literal in shown(page), (path, literal)

    with screenshot_on_failure(page, tmp_path, "hostile_gallery"):
        goto(page, "/gallery")
        enter_teacher_mode(page)
        page.get_by_text("Which run is each panel").first.click()
        settle(page)
        assert not page_problems(page), page_problems(page)
        assert TITLE in shown(page)
        assert not requests.foreign(), ("gallery", requests.foreign())
    assert any(urlsplit(u).path.startswith("/_stcore") for u in requests.urls)  # the recording works
    page.context.close()  # the shared Chromium (tests/conftest.py): no session of this test stays open


def test_uploads_never_fetch_what_a_file_name_docstring_or_header_points_at(browser, server, tmp_path):
    page = new_page(browser, server.url, timeout_ms=90_000)
    requests = Requests(page, server.url)
    with screenshot_on_failure(page, tmp_path, "hostile_upload_sim"):
        goto(page, "/data")
        page.locator(f".st-key-{K.W_DATA_SIM_FILE} input[type=file]").set_input_files(
            {"name": FILE_NAME, "mimeType": "text/x-python", "buffer": SIMULATOR})
        wait_shown(page, DOC_IMAGE, timeout_s=120)
        settle(page)
        assert not page_problems(page), page_problems(page)
        text = shown(page)
        for literal in (FILE_NAME, DOC_IMAGE, UPLOAD_PARAM):
            assert literal in text, literal
        assert str(server.store_dir) not in text and "uploads/" not in text  # a name, never a path
        assert not requests.foreign(), ("simulator upload", requests.foreign())
    with screenshot_on_failure(page, tmp_path, "hostile_upload_table"):
        page.get_by_role("tab", name="Upload simulations").click()
        wait_idle(page)
        page.locator(f".st-key-{K.W_DATA_TABLE_FILE} input[type=file]").set_input_files(
            {"name": "table.csv", "mimeType": "text/csv", "buffer": TABLE})
        page.get_by_text("30 rows").first.wait_for(timeout=60_000)
        settle(page)
        assert not page_problems(page), page_problems(page)
        assert CSV_HEADER in shown(page)
        assert not requests.foreign(), ("table upload", requests.foreign())
    page.context.close()

"""Private runs in a real browser: two Playwright browser contexts are two students.

Student A opens the app and gets the owner cookie (``sbi_owner``, written by the page's script); a
run is put into the server's store with A's token as its owner. After a reload (a new Streamlit
session, which has only the cookie) A still owns it: Home lists it and Runs offers Cancel and
Delete. Student B, in another context, opens A's run link: it is shown read-only, with no Cancel or
Delete; B's own Home and Runs list nothing of A's.

The server is the module's own, on an empty store: runs without an owner (the other modules' runs
on the shared server) are on everybody's list, and B's lists must be empty. The pages open in the
test process's shared Chromium (``tests/conftest.py``).

    python -m pytest tests/test_browser_owner.py -q
"""

from __future__ import annotations

import pytest

from sbi_core import RunSpec
from sbi_core.store.runs import RunStore
from sbi_ui import keys as K
from sbi_ui.owner import OWNER_COOKIE, READ_ONLY_TEXT

from browser_support import browser_test_marks, goto, new_page, screenshot_on_failure, served_app

pytestmark = browser_test_marks(120)

SPEC = RunSpec(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=100, title="A's run")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from served_app(tmp_path_factory, "owner")


def owner_cookie(page) -> str:
    page.wait_for_function(f"() => document.cookie.includes('{OWNER_COOKIE}=')", timeout=15_000)
    found = [c for c in page.context.cookies() if c["name"] == OWNER_COOKIE]
    assert len(found) == 1, page.context.cookies()
    cookie = found[0]
    assert cookie["sameSite"] == "Lax" and cookie["path"] == "/" and cookie["expires"] > 0
    return cookie["value"]


def test_the_browser_that_started_a_run_owns_it_and_others_see_it_read_only(browser, server, tmp_path):
    a = new_page(browser, server.url)
    b = new_page(browser, server.url)
    with screenshot_on_failure(a, tmp_path, "owner_a"), screenshot_on_failure(b, tmp_path, "owner_b"):
        goto(a, "/")
        token = owner_cookie(a)
        store = RunStore(server.store_dir)
        rid = store.create_run(SPEC, owner=token)
        store.finish_run(rid, "cancelled", event={"type": "cancelled", "round": None})

        # A reloads (a new session: only the cookie says who it is) and still owns the run
        goto(a, "/")
        assert owner_cookie(a) == token
        a.get_by_text(rid).first.wait_for()
        goto(a, f"/runs?{K.QP_RUN}={rid}")
        a.locator(f".st-key-{K.W_RUNS_DELETE}").wait_for()
        assert a.locator(f".st-key-{K.W_RUNS_CANCEL}").count() == 1
        assert a.get_by_text(READ_ONLY_TEXT).count() == 0

        # B has the link: read-only
        goto(b, f"/runs?{K.QP_RUN}={rid}")
        b.get_by_text(READ_ONLY_TEXT).wait_for()
        assert owner_cookie(b) != token
        assert b.locator(f".st-key-{K.W_RUNS_DELETE}").count() == 0
        assert b.locator(f".st-key-{K.W_RUNS_CANCEL}").count() == 0
        assert b.get_by_text("Yes, delete this run").count() == 0
        # ... and nothing of A's on B's own lists
        goto(b, "/runs")
        b.get_by_text("No runs yet").wait_for()
        goto(b, "/")
        b.get_by_text("No runs yet").first.wait_for()
        assert b.get_by_text(rid).count() == 0

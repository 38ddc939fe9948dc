"""Links that reproduce a setup or a view: ``?spec=`` on Train, ``?round=`` and ``?axes=`` on Rounds.

The browser tests (Playwright + Debian's Chromium) open each link the way a
student does: in a fresh browser context (a new Streamlit session that has only
the URL); a setup link on a freshly started server of this module's own (with
``SBI_PUBLIC_URL``), a rounds link on the test process's shared app server
(``tests/conftest.py``). What is checked is what the page draws:
the Train form's fields, the notice, the share popover's link and QR code; the
Rounds page's round select box and the animation's axis title (SVG text).

The first tests need no browser: the URL values of :mod:`sbi_ui.view_state`
and the Rounds page reading and writing them under AppTest.

    python -m pytest tests/test_browser_links.py -q
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, quote, urlparse, urlsplit

import pytest
from streamlit.testing.v1 import AppTest

from sbi_core import RunSpec
from sbi_core.jobs.worker import run_worker
from sbi_core.store.runs import RunStore
from sbi_ui import keys as K
from sbi_ui.naming import method_title
from sbi_ui.view_state import axes_from_query, axes_to_query, round_from_query

from apptest_support import APP
from browser_support import (AppServer, browser_test_marks, goto, new_page, page_problems, screenshot_on_failure,
                             wait_idle)

pytestmark = pytest.mark.timeout(180)

PAGE_MS = 45_000
NAMES = ["theta1", "theta2"]  # two moons
LINKED = RunSpec(
    simulator="two_moons",
    method="tsnpe",
    num_rounds=3,
    simulations_per_round=600,
    seed=42,
    prior=[{"name": "theta1", "dist": "uniform", "low": -0.5, "high": 0.5},
           {"name": "theta2", "dist": "uniform", "low": -0.75, "high": 0.75}],
    observation=[0.05, -0.1],
    title="Lesson link",  # the form names an untitled run after its model, so a link's spec carries one
)


def _finished_run(store: RunStore) -> str:
    """A finished 3-round two-moons SNPE run in ``store``, tiny (a few seconds), trained here; its id."""
    spec = RunSpec(simulator="two_moons", method="snpe", num_rounds=3, simulations_per_round=150, max_epochs=3,
                   hidden_features=16, num_transforms=2, num_posterior_samples=150, num_threads=1,
                   title="view state")
    rid = store.create_run(spec)
    assert run_worker(store, rid) == "done", store.get_run(rid).message
    return rid


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """``(store folder, run id)``: a store of its own holding :func:`_finished_run`'s run."""
    root = tmp_path_factory.mktemp("links_rounds") / "store"
    return root, _finished_run(RunStore(root))


# ---------------------------------------------------------------------------
# the URL values (no browser)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("value, n_rounds, expected", [
    ("1", 3, 0), ("3", 3, 2), (" 2 ", 3, 1),
    ("0", 3, None), ("4", 3, None), ("-1", 3, None), ("2.0", 3, None), ("two", 3, None), ("", 3, None),
    ("9" * 5000, 3, None), ("²", 3, None), (None, 3, None),
])
def test_round_from_query_takes_one_based_rounds_and_ignores_the_rest(value, n_rounds, expected):
    assert round_from_query(value, n_rounds) == expected


@pytest.mark.parametrize("value, expected", [
    ("theta1,theta2", (0, 1)), ("theta2,theta1", (1, 0)), ("theta2,theta2", (1, 1)), (" theta2 , theta1", (1, 0)),
    ("theta1", None), ("theta1,theta2,theta1", None), ("theta3,theta1", None), ("0,1", None), ("", None),
    (None, None),
])
def test_axes_from_query_matches_parameter_names_not_positions(value, expected):
    assert axes_from_query(value, NAMES) == expected


def test_axes_survive_a_reorder_of_the_parameters():
    query = axes_to_query(["a", "b", "c"], 2, 0)
    assert query == "c,a"
    assert axes_from_query(query, ["c", "b", "a"]) == (0, 2)  # the same names, wherever they are now


# ---------------------------------------------------------------------------
# the Rounds page reads and writes them (AppTest)
# ---------------------------------------------------------------------------
def _rounds_page(store_dir, monkeypatch, params: dict, page: str = "pages/rounds.py") -> AppTest:
    monkeypatch.setenv("SBI_STORE_DIR", str(store_dir))
    at = AppTest.from_file(APP, default_timeout=90)
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_rounds_page_shows_the_round_and_axes_of_the_url_and_writes_changes_back(finished_run, monkeypatch):
    store_dir, rid = finished_run
    at = _rounds_page(store_dir, monkeypatch, {K.QP_RUN: rid, K.QP_ROUND: "2", K.QP_AXES: "theta2,theta1"})
    assert at.selectbox(key=K.W_CORNER_ROUND).value == 1  # round 2, 0-based
    assert (at.selectbox(key=K.W_AXIS_X).value, at.selectbox(key=K.W_AXIS_Y).value) == (1, 0)
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Round 2 samples (CSV)" in labels, labels  # Take it away follows the round shown

    at.selectbox(key=K.W_CORNER_ROUND).select(0).run()
    assert at.query_params[K.QP_ROUND] in ("1", ["1"])
    at.selectbox(key=K.W_AXIS_X).select(0).run()
    assert at.query_params[K.QP_AXES] in ("theta1,theta1", ["theta1,theta1"])
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.parametrize("round_q, axes_q", [("7", "theta9,theta1"), ("zero", "theta1"), ("0", ",")])
def test_rounds_page_ignores_values_that_do_not_fit_the_run(finished_run, monkeypatch, round_q, axes_q):
    store_dir, rid = finished_run
    at = _rounds_page(store_dir, monkeypatch, {K.QP_RUN: rid, K.QP_ROUND: round_q, K.QP_AXES: axes_q})
    assert at.selectbox(key=K.W_CORNER_ROUND).value == 2  # the default: the last round
    assert (at.selectbox(key=K.W_AXIS_X).value, at.selectbox(key=K.W_AXIS_Y).value) == (0, 1)
    assert K.QP_ROUND not in at.query_params and K.QP_AXES not in at.query_params  # the URL says what is shown


def test_other_pages_ignore_the_rounds_view(finished_run, monkeypatch):
    store_dir, rid = finished_run
    for page in ("pages/train.py", "pages/explore.py"):
        at = _rounds_page(store_dir, monkeypatch, {K.QP_RUN: rid, K.QP_ROUND: "99", K.QP_AXES: "nope"}, page)
        assert at.query_params[K.QP_ROUND] in ("99", ["99"]), page  # neither read nor touched


# ---------------------------------------------------------------------------
# in the browser
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory):
    """The app just started on an empty store: nobody has opened a page yet.

    It listens on 127.0.0.1 only, so a shared link would have no address a phone can reach; its
    ``SBI_PUBLIC_URL`` names the server itself (as an operator names the address students reach)."""
    root = tmp_path_factory.mktemp("links_fresh")
    srv = AppServer(root / "store", log_path=root / "streamlit.log")
    srv.env = lambda: {**AppServer.env(srv), "SBI_PUBLIC_URL": srv.url}
    with srv:
        yield srv


@pytest.fixture(scope="module")
def rounds_server(shared_server):
    """``(server, run id)``: the test process's shared app server, its store holding a run like
    :func:`finished_run`'s (trained here while the server runs: it reads the runs from the store on every
    page); its runs still active at the end are ended."""
    with shared_server.lend(__name__) as srv:
        yield srv, _finished_run(RunStore(srv.store_dir))


@pytest.fixture(scope="module")
def browser(shared_browser):
    with shared_browser.lend() as b:  # the test process's Chromium (tests/conftest.py)
        yield b


def _query(page) -> dict:
    return parse_qs(urlparse(page.url).query)


def _field(page, key: str) -> str:
    """The value shown in the text box of the keyed widget ``key`` (a number input)."""
    return page.locator(f".st-key-{key} input").first.input_value()


def _checked_radio(page, key: str) -> str:
    return page.evaluate(
        """(key) => {
            const box = document.querySelector(`.st-key-${key} input[type="radio"]:checked`);
            return box ? box.closest('label').innerText.trim() : null;
        }""",
        key,
    )


def _settled(read, expected, timeout_s: float = 15.0):
    """``read()`` once it returns ``expected`` or ``timeout_s`` has passed (a redraw comes a moment late)."""
    deadline = time.monotonic() + timeout_s
    value = read()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.25)
        value = read()
    return value


def _shown_round(page) -> str:
    """The text the round select box of "One round in detail" shows."""
    return page.locator(f".st-key-{K.W_CORNER_ROUND} input[role='combobox']").first.input_value().strip()


def _choose(page, key: str, option: str) -> None:
    """Pick ``option`` in the keyed select box ``key`` as a user does: open its list, click the option
    (opened again if a redraw closed the list before the click)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.locator(f".st-key-{key} input[role='combobox']").first
    wanted = page.get_by_role("option", name=option, exact=True)
    for _ in range(3):
        box.evaluate("e => e.scrollIntoView({block: 'center'})")  # room below the box for its list
        box.click()
        box.fill(option)  # typing opens the list, filtered to the option
        try:
            wanted.wait_for(timeout=5_000)
        except PlaywrightTimeout:  # the list did not open (a redraw took the focus): try again
            continue
        try:
            wanted.click(timeout=5_000)
        except PlaywrightTimeout:  # the list drew off-screen: pick the filtered option from the keyboard
            box.press("ArrowDown")
            box.press("Enter")
        return
    raise AssertionError(f"the list of {key} never offered {option!r}")


def _axis_title(page, chart: str, axis: str = "xtitle") -> str:
    """The axis title plotly drew in the SVG of the keyed chart ``chart``."""
    return page.evaluate(
        """([key, axis]) => {
            const t = document.querySelector(`.st-key-${key} .js-plotly-plot text.${axis}`);
            return t ? t.textContent : null;
        }""",
        [chart, axis],
    )


class TestInTheBrowser:
    pytestmark = browser_test_marks(240)

    def test_a_setup_link_rebuilds_the_train_form_and_shares_the_same_setup(self, browser, fresh_server,
                                                                            tmp_path):
        page = new_page(browser, fresh_server.url, timeout_ms=PAGE_MS)
        try:
            with screenshot_on_failure(page, tmp_path, "setup_link"):
                goto(page, "/train?spec=" + quote(LINKED.to_query(), safe=""))
                page.get_by_text("Set up from the link").first.wait_for()
                # the address bar keeps the setup on screen (the Train page writes the form's spec back)
                page.wait_for_function("() => new URLSearchParams(location.search).has('spec')")
                assert RunSpec.from_query(_query(page)["spec"][0]) == LINKED
                tsnpe = method_title("tsnpe")
                assert _settled(lambda: _checked_radio(page, K.W_METHOD), tsnpe) == tsnpe
                # the fields take the link's values on the redraw after the method's (a moment late when busy)
                assert _settled(lambda: _field(page, K.W_SIMS), "600") == "600"
                assert _settled(lambda: _field(page, K.W_SEED), "42") == "42"
                assert _settled(lambda: _field(page, K.W_ROUNDS), "3") == "3"
                assert not page_problems(page), page_problems(page)

                page.get_by_role("button", name="Share this setup").click()
                body = page.locator('[data-testid="stPopoverBody"]')
                link = "".join(body.locator('[data-testid="stCode"] code').first.inner_text().split())
                assert link.startswith(f"{fresh_server.url}/train?spec="), link
                assert RunSpec.from_query(parse_qs(urlsplit(link).query)["spec"][0]) == LINKED
                qr = body.locator(".sbi-qr")
                qr.wait_for(state="attached")
                drawn = _settled(lambda: qr.locator("svg path").count() > 0, True, timeout_s=5.0)
                assert drawn, "no QR code drawn in the popover: " + qr.first.inner_html()[:200]
        finally:
            page.context.close()

    def test_a_damaged_link_says_so_and_the_form_starts_from_the_defaults(self, browser, fresh_server,
                                                                         tmp_path):
        defaults = RunSpec()
        page = new_page(browser, fresh_server.url, timeout_ms=PAGE_MS)
        try:
            with screenshot_on_failure(page, tmp_path, "damaged_link"):
                goto(page, "/train?spec=1.abc.XXXX")
                page.get_by_text("could not be used").first.wait_for()
                page.locator(f".st-key-{K.W_SIMS} input").first.wait_for()
                assert _field(page, K.W_SIMS) == str(defaults.simulations_per_round)
                assert _field(page, K.W_SEED) == str(defaults.seed)
                assert _checked_radio(page, K.W_METHOD) == method_title(defaults.method)
                assert page.locator('[data-testid="stException"]').count() == 0
                shown = _query(page).get("spec")  # the damaged link is gone; the URL holds the default form
                assert not shown or RunSpec.from_query(shown[0]).method == defaults.method
                assert "1.abc.XXXX" not in page.url
        finally:
            page.context.close()

    def test_a_rounds_link_opens_its_round_and_axes_and_keeps_a_new_choice(self, browser, rounds_server,
                                                                           tmp_path):
        server, rid = rounds_server
        page = new_page(browser, server.url, timeout_ms=PAGE_MS)
        try:
            with screenshot_on_failure(page, tmp_path, "rounds_link"):
                goto(page, f"/rounds?run={rid}&round=2&axes=theta2,theta1")
                page.locator(f".st-key-{K.W_CORNER_ROUND}").wait_for()
                page.locator(".st-key-rounds_animation .js-plotly-plot text.xtitle").wait_for(state="attached")
                assert _shown_round(page) == "round 2"
                assert _settled(lambda: _axis_title(page, "rounds_animation"), "theta2") == "theta2"
                assert _axis_title(page, "rounds_animation", "ytitle") == "theta1"
                assert not page_problems(page), page_problems(page)

                _choose(page, K.W_CORNER_ROUND, "round 3")
                page.wait_for_function("() => new URLSearchParams(location.search).get('round') === '3'")
                wait_idle(page)
                assert _settled(lambda: _shown_round(page), "round 3") == "round 3"
                assert _query(page)["axes"] == ["theta2,theta1"] and _query(page)["run"] == [rid]

                page.reload(wait_until="domcontentloaded")
                page.wait_for_selector('[data-testid="stApp"]')
                wait_idle(page)
                page.locator(f".st-key-{K.W_CORNER_ROUND}").wait_for()
                assert _settled(lambda: _shown_round(page), "round 3") == "round 3", "a reload lost the round"
                assert _settled(lambda: _axis_title(page, "rounds_animation"), "theta2") == "theta2"
                assert not page_problems(page), page_problems(page)
        finally:
            page.context.close()

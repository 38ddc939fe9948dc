"""AppTest: "Show the true parameter" lives in the URL (?truth=hidden) and lasts across reloads
(a new session reads the URL) and page changes (the URL follows the session)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamlit.testing.v1 import AppTest

from sbi_ui import keys as K

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(120)

APP = str(ROOT / "app.py")
TOGGLE = "Show the true parameter"


@pytest.fixture(autouse=True)
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("SBI_STORE_DIR", str(tmp_path / "store"))


def assert_ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def truth_toggle(at: AppTest):
    [toggle] = [t for t in at.toggle if t.label == TOGGLE]
    return toggle


def home_shows_truth(at: AppTest) -> bool:
    """Whether the Home picture has a "true parameter" trace (AppTest sees the figure, not pixels)."""
    [chart] = [c for c in at.get("plotly_chart") if c.proto.id and "home_overview" in c.proto.id]
    return "true parameter" in [t.get("name") for t in json.loads(chart.proto.spec)["data"]]


def test_switching_off_puts_it_in_the_url_and_survives_page_changes():
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert_ok(at)
    assert truth_toggle(at).value is True and K.QP_TRUTH not in at.query_params
    assert home_shows_truth(at)

    truth_toggle(at).set_value(False)
    at.run()
    assert_ok(at)
    assert at.query_params.get(K.QP_TRUTH) in (K.QP_TRUTH_HIDDEN, [K.QP_TRUTH_HIDDEN])
    assert not home_shows_truth(at)

    for page in ("pages/model.py", "pages/runs.py", "pages/home.py"):
        at.switch_page(page)
        at.run()
        assert_ok(at)
        assert truth_toggle(at).value is False, page
        assert at.query_params.get(K.QP_TRUTH) in (K.QP_TRUTH_HIDDEN, [K.QP_TRUTH_HIDDEN]), page
    assert not home_shows_truth(at)

    truth_toggle(at).set_value(True)
    at.run()
    assert K.QP_TRUTH not in at.query_params
    assert home_shows_truth(at)


def test_a_new_session_with_truth_hidden_in_the_url_keeps_it_hidden():
    """A reload or a new tab is a new session: it reads the URL."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params[K.QP_TRUTH] = K.QP_TRUTH_HIDDEN
    at.run()
    assert_ok(at)
    assert truth_toggle(at).value is False
    assert not home_shows_truth(at)
    assert not [w for w in at.warning if "Session State" in w.value], "no default-vs-state warning"

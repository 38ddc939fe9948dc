"""AppTest helpers shared by the app tests: open the app on one page with a run selected."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from sbi_ui import keys as K

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def run_page(run_id: str, page: str, timeout: float = 90) -> AppTest:
    """The app with ``?run=run_id``, switched to ``page`` (``"pages/train.py"``), rendered without exception."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.query_params[K.QP_RUN] = run_id
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    """Every text element the page drew (markdown, captions, alerts), one per line."""
    parts = [m.value for kind in ("markdown", "caption", "error", "warning", "info", "success")
             for m in at.get(kind)]
    return "\n".join(str(p) for p in parts)

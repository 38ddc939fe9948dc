"""AppTest of the Runs page (pages/runs.py): a confirmation belongs to one run and one action,
and the RunSpec it offers for download is the portable one.

The runs here are never trained: they are created in a temporary store and marked finished,
which is all the page needs to list, select and delete them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from streamlit.testing.v1 import AppTest

from sbi_ui import keys as K
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore
from sbi_core.uploads.files import save_upload

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(120)

APP = str(ROOT / "app.py")
RUNS = "pages/runs.py"
DELETE_LABEL = "Yes, delete this run"


@pytest.fixture
def store(tmp_path, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    return RunStore(root)


def finished_run(store: RunStore, title: str, **kw) -> str:
    spec = dict(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=200, title=title)
    spec.update(kw)
    rid = store.create_run(RunSpec(**spec))
    store.finish_run(rid, "cancelled", event={"type": "cancelled", "round": None})
    return rid


def runs_page(run_id: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params[K.QP_RUN] = run_id
    at.run()
    at.switch_page(RUNS)
    at.run()
    assert_ok(at)
    return at


def assert_ok(at: AppTest, where: str = "") -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"
    bugs = [e.value for e in at.error if "Something went wrong" in str(e.value)]
    assert not bugs, f"{where}: {bugs}"


def delete_box(at: AppTest):
    boxes = [c for c in at.checkbox if c.label == DELETE_LABEL]
    assert len(boxes) == 1, [c.label for c in at.checkbox]
    return boxes[0]


def like_a_browser(at: AppTest, held: dict) -> None:
    """Give every widget the value the browser holds for its id, as the frontend does.

    A browser keeps each widget's value under the widget's id and sends it back
    with the next interaction; AppTest rebuilds its widgets from the server's
    output instead. A widget that comes back with an id the browser has seen
    therefore gets the browser's value here.
    """
    for box in at.checkbox:
        if box.proto.id in held:
            box.set_value(held[box.proto.id])


def test_delete_confirmation_does_not_carry_over_to_the_next_run(store):
    older = finished_run(store, "run B (kept)")
    newer = finished_run(store, "run A (deleted)")
    at = runs_page(newer)
    assert at.selectbox(key=K.W_RUNS_SELECT).value == newer
    assert at.button(key=K.W_RUNS_DELETE).disabled

    box = delete_box(at)
    box.check()
    held = {box.proto.id: True}  # the browser now shows this box ticked
    at.run()
    assert not at.button(key=K.W_RUNS_DELETE).disabled
    at.button(key=K.W_RUNS_DELETE).click()
    at.run()
    assert_ok(at, "after deleting run A")
    assert store.get_run(newer) is None and store.get_run(older) is not None

    # the page now shows run B: its box is not ticked and Delete stays off, after any other click too
    assert at.selectbox(key=K.W_RUNS_SELECT).value == older
    assert delete_box(at).value is False
    assert at.button(key=K.W_RUNS_DELETE).disabled
    like_a_browser(at, held)
    at.run()  # "any other click": one more script run, with what the browser holds
    assert_ok(at, "one more click")
    assert delete_box(at).value is False, "run A's confirmation was carried over to run B"
    assert at.button(key=K.W_RUNS_DELETE).disabled
    assert store.get_run(older) is not None


def test_confirmation_belongs_to_the_selected_run(store):
    first = finished_run(store, "first")
    second = finished_run(store, "second")
    at = runs_page(second)
    box = delete_box(at)
    box.check()
    held = {box.proto.id: True}
    at.run()
    assert not at.button(key=K.W_RUNS_DELETE).disabled
    # choosing another run: the tick was for "second", not for "first"
    at.selectbox(key=K.W_RUNS_SELECT).select(first)
    like_a_browser(at, held)
    at.run()
    assert_ok(at, "after choosing another run")
    assert at.selectbox(key=K.W_RUNS_SELECT).value == first
    like_a_browser(at, held)
    at.run()
    assert delete_box(at).value is False
    assert at.button(key=K.W_RUNS_DELETE).disabled
    assert store.get_run(first) is not None and store.get_run(second) is not None


def test_a_tick_for_another_run_does_not_enable_delete(store):
    other = finished_run(store, "other")
    keep = finished_run(store, "keep")
    at = runs_page(keep)
    at.session_state[K.w_runs_confirm("delete", other)] = True  # e.g. left over from an earlier view
    at.run()
    assert delete_box(at).value is False
    assert at.button(key=K.W_RUNS_DELETE).disabled
    assert store.get_run(keep) is not None and store.get_run(other) is not None


SIM = b'''"""A line with noise."""
import numpy as np

PRIOR = [{"name": "slope", "dist": "uniform", "low": 0, "high": 2}]


def simulate(theta):
    return np.hstack([theta, 2 * theta])
'''


@pytest.fixture
def downloads(monkeypatch):
    """What download buttons serve, by file name (captured as Streamlit stores it)."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    served: dict = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def capture(self, path_or_data, mimetype, kind, filename=None):
        served[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", capture)
    return served


def test_runspec_download_carries_the_uploaded_file(store, downloads):
    path = save_upload(store.root, SIM, "line.py")
    rid = finished_run(store, "uploaded", simulator={"kind": "upload", "path": str(path), "name": "Line"},
                       prior=[{"name": "slope", "dist": "uniform", "low": 0, "high": 2}], observation=[1.0, 2.0])
    at = runs_page(rid)
    data = downloads[f"runspec_{rid}.json"]
    text = data.decode() if isinstance(data, bytes) else data
    ref = json.loads(text)["simulator"]
    assert "path" not in ref and str(store.root) not in text
    assert ref["kind"] == "upload" and ref["file_name"] == "line.py"
    assert ref["source"].encode() == SIM and ref["sha256"] == hashlib.sha256(SIM).hexdigest()
    assert str(path) not in at.code[0].value, "the spec shown names no server path either"
    assert "line.py" in at.code[0].value

"""AppTest of private runs (sbi_ui/owner.py): Home and Runs list this browser's runs, a run link opens
someone else's run read-only, teacher mode lists every run and opens the Class gallery.

AppTest sends no cookie, so each test gives its session an owner token in session state (as the
cookie would on a reload). Runs are created in a temporary store and never trained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamlit.testing.v1 import AppTest

from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore
from sbi_ui import keys as K
from sbi_ui.owner import READ_ONLY_TEXT

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
RUNS, HOME, GALLERY = "pages/runs.py", "pages/home.py", "pages/gallery.py"
ME, OTHER = "me_" + "a" * 19, "other_" + "b" * 16
KEY = "a long classroom phrase"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def store(tmp_path, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    monkeypatch.delenv("SBI_TEACHER_KEY", raising=False)
    return RunStore(root)


def make_run(store: RunStore, title: str, owner, status: str = "cancelled", **kw) -> str:
    spec = dict(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=200, title=title)
    spec.update(kw)
    rid = store.create_run(RunSpec(**spec), owner=owner)
    if status == "done":
        rng = np.random.default_rng(len(title))
        store.append_event(rid, {"type": "round", "round": 0, "posterior_samples": rng.uniform(-1, 1, (50, 2))})
        store.finish_run(rid, "done", event={"type": "done"})
    else:
        store.finish_run(rid, "cancelled", event={"type": "cancelled", "round": None})
    return rid


def page(path: str, owner: str = ME, run_id=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[K.S_OWNER] = owner
    if run_id:
        at.query_params[K.QP_RUN] = run_id
    at.run()
    at.switch_page(path)
    at.run()
    assert_ok(at)
    return at


def assert_ok(at: AppTest, where: str = "") -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"
    bugs = [e.value for e in at.error if "Something went wrong" in str(e.value)]
    assert not bugs, f"{where}: {bugs}"


def listed_ids(at: AppTest) -> set:
    return set(at.dataframe[0].value["id"]) if len(at.dataframe) else set()


def buttons(at: AppTest) -> set:
    return {b.key for b in at.button}


def read_only_shown(at: AppTest) -> bool:
    return any(READ_ONLY_TEXT in str(i.value) for i in at.info)


def test_runs_and_home_list_only_this_browsers_runs_and_everyones(store):
    mine = make_run(store, "mine", ME)
    theirs = make_run(store, "theirs", OTHER)
    old = make_run(store, "from before owners", None)
    at = page(RUNS)
    assert listed_ids(at) == {mine, old}
    options = at.selectbox(key=K.W_RUNS_SELECT).options  # labels: "<title> · ..."
    assert len(options) == 2 and not [o for o in options if "theirs" in o]

    home = page(HOME)
    text = " ".join(str(getattr(e, "label", "")) for e in home.get("page_link"))
    assert mine in text and old in text and theirs not in text


def test_a_run_link_opens_someone_elses_run_read_only(store):
    make_run(store, "mine", ME)
    theirs = make_run(store, "theirs", OTHER)
    at = page(RUNS, run_id=theirs)
    assert at.selectbox(key=K.W_RUNS_SELECT).value == theirs
    assert read_only_shown(at)
    assert K.W_RUNS_CANCEL not in buttons(at) and K.W_RUNS_DELETE not in buttons(at)
    assert not [c for c in at.checkbox if "delete" in c.label.lower()]
    assert theirs not in listed_ids(at), "a linked run is shown, not added to the list"
    # its owner sees every control, as before
    own = page(RUNS, owner=OTHER, run_id=theirs)
    assert not read_only_shown(own)
    assert {K.W_RUNS_CANCEL, K.W_RUNS_DELETE} <= buttons(own)


def test_a_run_without_an_owner_is_everyones(store):
    old = make_run(store, "old", None)
    at = page(RUNS, run_id=old)
    assert not read_only_shown(at)
    assert {K.W_RUNS_CANCEL, K.W_RUNS_DELETE} <= buttons(at)


def test_the_teacher_key_lists_every_run_and_opens_the_gallery(store, monkeypatch):
    monkeypatch.setenv("SBI_TEACHER_KEY", KEY)
    mine = make_run(store, "mine", ME, status="done")
    theirs = make_run(store, "theirs", OTHER, status="done", observation=[0.1, -0.2])
    at = page(RUNS)
    assert listed_ids(at) == {mine}
    at.text_input(key=K.W_TEACHER_KEY).input("not the key").run()
    assert_ok(at, "a wrong key")
    assert listed_ids(at) == {mine} and not at.session_state[K.S_TEACHER]
    at.text_input(key=K.W_TEACHER_KEY).input(KEY).run()
    assert_ok(at, "the key")
    assert listed_ids(at) == {mine, theirs}
    assert K.W_TEACHER_LEAVE in buttons(at)
    at.selectbox(key=K.W_RUNS_SELECT).select(theirs).run()
    assert not read_only_shown(at) and K.W_RUNS_DELETE in buttons(at)

    at.switch_page(GALLERY).run()
    assert_ok(at, "the gallery")
    assert at.selectbox(key=K.W_GALLERY_MODEL).value == "two_moons"
    assert any("one network answered all of you" in str(c.value) for c in at.caption)
    panels = [m for m in at.markdown if "Student" in str(m.value)]
    assert len(panels) == 2 and any("x = (0.1, -0.2" in str(m.value) for m in panels)


class FakeClock:
    """A clock the test moves by hand (nothing sleeps)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def throttle(monkeypatch):
    """The server's wrong-key counter on a hand-moved clock, empty before and after the test."""
    from sbi_ui import owner

    clock = FakeClock()
    monkeypatch.setattr(owner._THROTTLE, "_clock", clock)
    owner._THROTTLE.reset()
    yield owner._THROTTLE, clock
    owner._THROTTLE.reset()


def toast(at: AppTest) -> str:
    return " ".join(str(t.value) for t in at.toast)


def test_wrong_teacher_keys_make_this_browser_wait_longer_each_time(store, monkeypatch, throttle):
    """20 guesses a second were all compared; now, after a few, each wrong key doubles the wait, and a
    key typed while waiting is refused without being compared (the right one too)."""
    from sbi_ui.owner import KEY_FREE_TRIES

    _, clock = throttle
    monkeypatch.setenv("SBI_TEACHER_KEY", KEY)
    at = page(RUNS)
    for _ in range(KEY_FREE_TRIES):
        at.text_input(key=K.W_TEACHER_KEY).input("guess").run()
        assert "not the teacher key" in toast(at)
    at.text_input(key=K.W_TEACHER_KEY).input("guess").run()
    assert "Wrong key. Try again in 2 s." in toast(at)
    at.text_input(key=K.W_TEACHER_KEY).input(KEY).run()  # too soon: refused, not compared
    assert "Too many wrong keys. Try again in 2 s." in toast(at)
    assert not at.session_state[K.S_TEACHER]
    assert any("checked again in about 2 s" in str(c.value) for c in at.caption)
    clock.now += 2.5
    at.text_input(key=K.W_TEACHER_KEY).input("guess").run()
    assert "Wrong key. Try again in 4 s." in toast(at)
    clock.now += 4.5
    at.text_input(key=K.W_TEACHER_KEY).input("guess").run()
    assert "Wrong key. Try again in 8 s." in toast(at)
    clock.now += 8.5
    at.text_input(key=K.W_TEACHER_KEY).input(KEY).run()  # the wait is over: the right key works
    assert_ok(at)
    assert at.session_state[K.S_TEACHER] and K.W_TEACHER_LEAVE in buttons(at)


def test_wrong_keys_from_many_browsers_make_everyone_wait(throttle):
    """A new browser is a new owner, so wrong keys are also counted all together."""
    from sbi_ui.owner import KEY_GLOBAL_FREE_TRIES, KEY_GLOBAL_MAX_WAIT_S, KEY_MAX_WAIT_S

    t, clock = throttle
    for i in range(KEY_GLOBAL_FREE_TRIES):
        assert t.failed(f"browser{i:020d}") == 0.0  # each browser's first wrong key
    assert t.failed("one_more_browser_xxxxx") == 2.0
    assert t.wait_s("the_teacher_browser_xxxx") == 2.0  # everyone waits, briefly
    for _ in range(20):
        clock.now += 100
        wait = t.failed("one_more_browser_xxxxx")
    assert wait <= KEY_MAX_WAIT_S and t.wait_s("the_teacher_browser_xxxx") <= KEY_GLOBAL_MAX_WAIT_S
    clock.now += 10_000  # long quiet: every count is forgotten
    assert t.wait_s("one_more_browser_xxxxx") == 0.0 and t.failed("one_more_browser_xxxxx") == 0.0


def test_the_gallery_needs_the_key(store, monkeypatch):
    make_run(store, "theirs", OTHER, status="done")
    at = page(GALLERY)
    assert any("needs the teacher key" in str(i.value) for i in at.info)
    monkeypatch.setenv("SBI_TEACHER_KEY", KEY)
    at = page(GALLERY)
    assert any("needs the teacher key" in str(i.value) for i in at.info)
    assert not [m for m in at.markdown if "Student" in str(m.value)]


def test_a_run_started_in_the_app_belongs_to_this_browser(store, monkeypatch):
    from sbi_core.jobs.manager import JobManager

    def start(self, spec, title="", owner=None):  # no worker: only the record matters here
        return self.store.create_run(spec, title, owner=owner)

    monkeypatch.setattr(JobManager, "start", start)
    at = page(HOME)
    at.button(key=K.W_START_DEMO).click().run()
    assert not at.exception, [e.value for e in at.exception]
    runs = store.list_runs(limit=None)
    assert len(runs) == 1 and runs[0].owner == ME

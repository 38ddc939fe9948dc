"""A live view that stops updating says so (issue 19, point 7): its own update failed, or the store moved
on while the view did not; either way a warning "This view stopped updating (...)" with a Reload button."""

from __future__ import annotations

import pytest

from apptest_support import run_page
from sbi_core.jobs.worker import run_worker
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore
from sbi_ui import keys as K
from sbi_ui import live_cache
from sbi_ui.live_cache import STALE_MIN_S, ViewWatch

pytestmark = pytest.mark.timeout(240)

STOPPED = "This view stopped updating"


# ---- the rule, with the clock and the store injected ----------------------------------------------------
def test_a_store_ahead_for_a_moment_is_not_stale():
    w = ViewWatch()
    assert w.observe(10, "running", 10, "running", now=0.0, poll_s=0.75) is None
    assert w.observe(10, "running", 11, "running", now=1.0, poll_s=0.75) is None  # an event between polls
    assert w.observe(11, "running", 11, "running", now=1.8, poll_s=0.75) is None  # the view caught up
    assert w.observe(11, "running", 11, "running", now=500.0, poll_s=0.75) is None  # a quiet run: no news


def test_a_view_that_the_store_stays_ahead_of_has_stopped_updating():
    w = ViewWatch()
    assert w.observe(10, "running", 10, "running", now=0.0, poll_s=0.75) is None
    assert w.observe(10, "running", 14, "running", now=5.0, poll_s=0.75) is None
    assert w.observe(10, "running", 30, "running", now=5.0 + STALE_MIN_S - 0.5, poll_s=0.75) is None
    why = w.observe(10, "running", 30, "running", now=5.0 + STALE_MIN_S + 1, poll_s=0.75)
    assert why is not None and "20 newer updates" in why and "nothing new was drawn for 14 s" in why


def test_a_finished_run_shown_running_has_stopped_updating():
    w = ViewWatch()
    w.observe(10, "running", 10, "running", now=0.0, poll_s=0.75)
    w.observe(10, "running", 10, "done", now=1.0, poll_s=0.75)
    why = w.observe(10, "running", 10, "done", now=1.0 + STALE_MIN_S + 1, poll_s=0.75)
    assert why is not None and "the run is done but this view still shows it running" in why


def test_a_slow_poll_waits_longer_before_it_is_called_stale():
    w = ViewWatch()
    w.observe(10, "running", 12, "running", now=0.0, poll_s=5.0)
    assert w.observe(10, "running", 12, "running", now=STALE_MIN_S + 1, poll_s=5.0) is None  # 4 polls: 20 s
    assert w.observe(10, "running", 12, "running", now=21.0, poll_s=5.0) is not None


def test_a_view_that_advances_slowly_is_not_stale():
    w = ViewWatch()
    for k in range(40):  # the store is always one event ahead, but the view draws something new every poll
        assert w.observe(k, "running", k + 1, "running", now=k * 1.0, poll_s=0.75) is None


# ---- on the Train page ----------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    monkeypatch.setattr(live_cache, "PROBE_TTL_S", 0.0)  # read the store's progress at every draw
    live_cache.clear()
    yield RunStore(root)
    live_cache.clear()


@pytest.fixture
def done_run(store):
    rid = store.create_run(RunSpec(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=200,
                                   max_epochs=3, num_posterior_samples=200, num_threads=1))
    assert run_worker(store, rid) == "done"
    return rid


def warnings(at) -> list[str]:
    """The warnings' texts as shown (the markdown escapes of the error text taken out)."""
    return [w.value.replace("\\", "") for w in at.warning]


def test_a_failed_update_is_shown_with_a_reload_button_that_recovers(store, done_run, monkeypatch):
    at = run_page(done_run, "pages/train.py")
    assert not any(STOPPED in w for w in warnings(at))
    real = live_cache.shared_tracker

    def broken(*_a, **_k):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(live_cache, "shared_tracker", broken)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [w for w in warnings(at) if STOPPED in w]
    assert shown and "its last update failed: RuntimeError: can't start new thread" in shown[0], warnings(at)
    assert at.button(key=K.W_LIVE_RELOAD).label == "Reload"

    monkeypatch.setattr(live_cache, "shared_tracker", real)  # the server recovers; the student presses Reload
    at.button(key=K.W_LIVE_RELOAD).click()
    at.run()
    assert not at.exception
    assert not any(STOPPED in w for w in warnings(at)), warnings(at)
    assert any("Finished:" in s.value for s in at.success)


def test_a_store_that_moved_on_while_the_view_did_not_is_shown(store, done_run, monkeypatch):
    at = run_page(done_run, "pages/train.py")
    frozen = live_cache.shared_tracker(done_run, store)  # the shared copy as drawn, stuck from now on
    monkeypatch.setattr(live_cache, "shared_tracker", lambda *_a, **_k: frozen)
    for epoch in (4, 5, 6):  # the store moves on
        store.append_event(done_run, {"type": "epoch", "round": 0, "epoch": epoch, "train_loss": 0.5,
                                      "val_loss": 0.6, "max_epochs": 6})
    at.run()
    assert not any(STOPPED in w for w in warnings(at))  # behind for a moment only: no alarm yet

    watch = at.session_state[K.S_LIVE_WATCH][done_run]
    watch.ahead_since -= 60.0  # a minute later, and the view has drawn nothing new
    watch.advanced_at -= 60.0
    at.run()
    shown = [w for w in warnings(at) if STOPPED in w]
    assert shown and "the run has 3 newer updates" in shown[0], warnings(at)
    assert at.button(key=K.W_LIVE_RELOAD)

    monkeypatch.undo()
    monkeypatch.setenv("SBI_STORE_DIR", str(store.root))
    monkeypatch.setattr(live_cache, "PROBE_TTL_S", 0.0)
    at.button(key=K.W_LIVE_RELOAD).click()
    at.run()
    assert not any(STOPPED in w for w in warnings(at)), warnings(at)

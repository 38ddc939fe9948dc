"""What the sessions watching one run share (sbi_ui.live_cache): the figures are built once per change,
the events are folded once into snapshots, and the poll grows with the number of watchers."""

from __future__ import annotations

import numpy as np
import pytest

from streamlit.testing.v1 import AppTest

from apptest_support import APP, run_page
from sbi_ui import keys as K
from sbi_core.jobs.worker import run_worker
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore
from sbi_ui import live_cache

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def store(tmp_path, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    live_cache.clear()
    yield RunStore(root)
    live_cache.clear()


@pytest.fixture
def done_run(store):
    rid = store.create_run(RunSpec(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=200,
                                   max_epochs=3, num_posterior_samples=200, num_threads=1))
    assert run_worker(store, rid) == "done"
    return rid


def builds(rid: str) -> dict:
    return {name: live_cache.build_count(rid, name) for name in ("loss", "cloud", "cloud+truth")}


def chart_specs(at) -> dict:
    return {c.proto.id.rsplit("-", 1)[1]: c.proto.spec for c in at.get("plotly_chart")}


def test_two_sessions_share_one_build_and_a_new_event_invalidates_it(store, done_run):
    rid = done_run
    first = run_page(rid, "pages/train.py")
    assert builds(rid) == {"loss": 1, "cloud": 0, "cloud+truth": 1}
    second = run_page(rid, "pages/train.py")  # another session, same run: nothing built again
    assert builds(rid) == {"loss": 1, "cloud": 0, "cloud+truth": 1}
    assert chart_specs(first) == chart_specs(second)

    # a new epoch changes the loss curves only
    store.append_event(rid, {"type": "epoch", "round": 0, "epoch": 4, "train_loss": 0.5, "val_loss": 0.6,
                             "max_epochs": 4})
    third = run_page(rid, "pages/train.py")
    assert builds(rid) == {"loss": 2, "cloud": 0, "cloud+truth": 1}
    assert chart_specs(third)["train_loss_chart"] != chart_specs(first)["train_loss_chart"]

    # a new round changes the clouds (and the loss chart's round marks)
    samples = np.random.default_rng(0).normal(size=(50, 2)).tolist()
    store.append_event(rid, {"type": "round", "round": 1, "posterior_samples": samples})
    fourth = run_page(rid, "pages/train.py")
    assert builds(rid) == {"loss": 3, "cloud": 0, "cloud+truth": 2}
    assert '"round 2"' in chart_specs(fourth)["train_cloud_chart"]


def test_hiding_the_truth_is_a_figure_of_its_own(store, done_run):
    rid = done_run
    shown = run_page(rid, "pages/train.py")
    at = AppTest.from_file(APP, default_timeout=90)  # a link with ?truth=hidden
    at.query_params[K.QP_RUN] = rid
    at.query_params[K.QP_TRUTH] = K.QP_TRUTH_HIDDEN
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert builds(rid)["cloud"] == 1 and builds(rid)["cloud+truth"] == 1
    assert chart_specs(at)["train_cloud_chart"] != chart_specs(shown)["train_cloud_chart"]


def test_the_shared_tracker_is_a_snapshot(store, done_run):
    rid = done_run
    old = live_cache.shared_tracker(rid, store)
    seen = (old.after, len(old.ep_epoch))
    assert live_cache.shared_tracker(rid, store) is old  # within the time to live: the same object
    store.append_event(rid, {"type": "epoch", "round": 0, "epoch": 4, "train_loss": 0.5, "val_loss": 0.6})
    new = live_cache.shared_tracker(rid, store, fresh=True)
    assert new is not old and new.after > old.after and len(new.ep_epoch) == seen[1] + 1
    assert (old.after, len(old.ep_epoch)) == seen  # a session still drawing the old one is not disturbed
    assert live_cache.shared_tracker(rid, store, fresh=True) is new  # nothing new: the same snapshot


def test_the_poll_grows_with_the_watchers(store, monkeypatch):
    monkeypatch.setattr(live_cache, "RERUNS_PER_S", 10.0)
    assert live_cache.poll_interval(0.75) == 0.75
    for k in range(30):
        live_cache.watch(store, "run-a" if k % 2 else "run-b", f"session-{k}")
    assert live_cache.watchers(store, "run-a") == 15 and live_cache.watchers() == 30
    assert live_cache.poll_interval(0.75) == pytest.approx(3.0)

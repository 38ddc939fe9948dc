"""The Train page (AppTest): limits in words, out-of-range values, the time estimate and the
long-run confirmation, stop-and-keep, and the messages of cancelled and stopped runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streamlit.testing.v1 import AppTest

from apptest_support import texts

from sbi_ui import keys as K
from sbi_core.jobs.worker import run_worker
from sbi_core.run.loop import execute
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(180)

APP = str(ROOT / "app.py")


def tiny(**kw) -> RunSpec:
    base = dict(simulator="two_moons", method="snpe", num_rounds=3, simulations_per_round=200, max_epochs=400,
                patience=400, hidden_features=16, num_transforms=2, num_posterior_samples=200, num_threads=1,
                title="tiny train-page run")
    base.update(kw)
    return RunSpec(**base)


@pytest.fixture
def store(tmp_path, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    return RunStore(root)


def train_page(run_id: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if run_id:
        at.query_params[K.QP_RUN] = run_id
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# ---- point 4: limits, out-of-range values, estimate, confirmation ------------------------------
def test_limits_are_written_next_to_the_fields(store):
    at = train_page()
    captions = [c.value for c in at.caption]
    assert "100 to 100,000" in captions  # simulations per round
    assert "1 to 20" in captions  # rounds


@pytest.mark.parametrize("typed", [0, -5, 10_000_000])
def test_out_of_range_simulations_block_start_with_a_visible_error(store, typed):
    at = train_page()
    at.number_input(key=K.W_SIMS).set_value(typed)
    at.run()
    errors = [e.value for e in at.error]
    assert any("from 100 to 100,000" in e and f"{typed:,}" in e for e in errors), errors
    assert at.button(key=K.W_START).disabled  # never launched with a stale value
    assert store.list_runs() == []


def test_time_estimate_is_shown_before_start(store):
    at = train_page()
    assert "Estimated time: about" in texts(at)
    assert "starts at once" in texts(at)


def test_a_long_run_asks_for_confirmation_with_its_estimate(store):
    at = train_page()
    at.number_input(key=K.W_SIMS).set_value(100_000)
    at.number_input(key=K.W_ROUNDS).set_value(20)
    at.run()
    at.button(key=K.W_START).click()
    at.run()
    assert store.list_runs() == []  # not started yet
    warnings = [w.value for w in at.warning]
    assert any("should take **about" in w and " h " in w and "Start it anyway" in w for w in warnings), warnings
    # changing a setting voids the confirmation
    at.number_input(key=K.W_ROUNDS).set_value(19)
    at.run()
    assert not any("Start it anyway" in w.value for w in at.warning)
    at.button(key=K.W_START).click()
    at.run()
    at.button(key=K.W_START_CONFIRM).click()
    at.run()
    runs = store.list_runs()
    assert len(runs) == 1 and runs[0].spec.simulations_per_round == 100_000 and runs[0].spec.num_rounds == 19
    from sbi_core.jobs.manager import JobManager

    JobManager(store).cancel(runs[0].id)


def test_an_imported_runspec_starts_through_the_same_estimate_and_confirmation(store):
    """A RunSpec pasted on Your model & data started at once, however long; now it goes through the
    Train page's start controls: the same estimate, the same "Start it anyway?"."""
    long_run = RunSpec(simulator="two_moons", method="snpe", num_rounds=19, simulations_per_round=100_000,
                       title="imported long run")
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/data.py")
    at.run()
    at.text_area(key=K.W_DATA_SPEC_TEXT).input(long_run.to_json())
    at.run()
    at.button(key=K.W_DATA_SPEC_CHECK).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Estimated time: about" in texts(at)
    at.button(key=K.W_DATA_SPEC_START).click()
    at.run()
    assert store.list_runs() == []  # not started yet
    warnings = [w.value for w in at.warning]
    assert any("should take **about" in w and "Start it anyway" in w for w in warnings), warnings
    at.button(key=K.W_DATA_SPEC_CONFIRM).click()
    at.run()
    runs = store.list_runs()
    assert len(runs) == 1 and runs[0].spec.num_rounds == 19 and runs[0].spec.title == "imported long run"
    from sbi_core.jobs.manager import JobManager

    JobManager(store).cancel(runs[0].id)


# ---- point 6: the messages of a cancelled run, and stop-and-keep ---------------------------------
def _cancelled_after_epochs(store: RunStore, epochs: int) -> str:
    """A real run cancelled during round 1's training, after ``epochs`` epochs."""
    rid = store.create_run(tiny())

    def cancel_later(spec, on_event=None, cancel=None, on_round=None):
        seen = {"n": 0}

        def count(ev):
            seen["n"] += ev["type"] == "epoch"
            on_event(ev)

        return execute(spec, on_event=count, cancel=lambda: seen["n"] >= epochs, on_round=on_round)

    assert run_worker(store, rid, execute=cancel_later) == "cancelled"
    return rid


def test_cancelled_in_round_one_says_nothing_was_kept(store):
    rid = _cancelled_after_epochs(store, 6)
    at = train_page(rid)
    words = texts(at)
    assert "during round 1 of 3, after 6 epochs of training" in words
    assert "no posterior" in words and "Stop and keep what is trained" in words
    assert "are kept and shown below" not in words and "Rounds that finished before are kept" not in words
    keys = [c.proto.id for c in at.get("plotly_chart")]
    assert len(at.get("plotly_chart")) == 1, keys  # the loss chart only: no "appears when round 1 ends" cloud
    assert any("no posterior cloud" in i.value for i in at.info)


def test_stop_and_keep_button_keeps_round_one(store):
    rid = store.create_run(tiny())
    import threading

    worker = threading.Thread(target=run_worker, args=(store, rid), daemon=True)
    worker.start()
    end = time.monotonic() + 60
    while len(store.events(rid, types=["epoch"])) < 3 and time.monotonic() < end:
        time.sleep(0.05)
    at = train_page(rid)
    assert not at.button(key=K.W_STOP_KEEP).disabled
    at.button(key=K.W_STOP_KEEP).click()
    at.run()
    worker.join(60)
    info = store.get_run(rid)
    assert info.status == "done"
    at = train_page(rid)
    words = texts(at)
    assert "Stopped at your request after 1 of 3 planned rounds" in words
    assert "round 1 kept" in words and "best network" in words
    assert len(store.round_samples(rid)) == 1 and store.round_samples(rid)[0].shape == (200, 2)
    assert len(at.get("plotly_chart")) == 2  # the loss and the round-1 cloud


def test_finished_text_uses_plain_words_and_singular(store):
    rid = store.create_run(tiny(method="npe", num_rounds=1, max_epochs=3))
    assert run_worker(store, rid) == "done"
    at = train_page(rid)
    done = [s.value for s in at.success]
    assert any(s.startswith("Finished: 1 round of simulating and training") and "3 epochs" in s for s in done), done
    assert not any("round(s)" in s for s in done)


# ---- issue 19: the estimate on a busy machine ------------------------------------------------------------
def test_a_busy_machine_is_said_and_scales_the_estimate(store, monkeypatch):
    from sbi_core.run.cost import MachineLoad
    from sbi_ui import estimate as E

    monkeypatch.setattr(E, "current_load", lambda: MachineLoad(0.2, 2))
    at = train_page()
    assert "Estimated time: about" in texts(at) and "machine is busy" not in texts(at)

    monkeypatch.setattr(E, "current_load", lambda: MachineLoad(3.8, 2))
    at.run()
    assert "**The machine is busy (load 3.8 on 2 cores): expect about" in texts(at), texts(at)

    spec = tiny()
    idle_s, _ = E.estimate(spec, load=MachineLoad(0.2, 2))
    busy_s, text = E.estimate(spec, load=MachineLoad(3.8, 2))
    assert busy_s == pytest.approx(2.4 * idle_s)  # (3.8 + 1) / 2: a new run gets 2/4.8 of a core
    assert "load 3.8 on 2 cores" in text


def test_the_wait_for_the_runs_ahead_grows_on_a_busy_machine(monkeypatch):
    from types import SimpleNamespace

    from sbi_core.run.cost import CostModel, MachineLoad
    from sbi_ui import estimate as E

    ahead = [SimpleNamespace(status="running", spec=tiny(), seconds=1.0),
             SimpleNamespace(status="queued", spec=tiny(), seconds=None)]
    manager = SimpleNamespace(max_running=1, list=lambda **_k: ahead)
    monkeypatch.setattr(E, "jobs", lambda: manager)
    monkeypatch.setattr(E, "_queue_words", {})
    idle_text, idle_wait = E.queue_words(CostModel(), load=MachineLoad(0.5, 2))
    busy_text, busy_wait = E.queue_words(CostModel(), load=MachineLoad(3.8, 2))
    assert idle_wait > 0 and "number 2 in the queue" in idle_text
    assert busy_wait == pytest.approx(2.4 * idle_wait)


# ---- the network settings that apply to the chosen method ---------------------------------------
@pytest.mark.parametrize("method, estimator_on, layers_on, note", [
    ("npe", True, True, None),
    ("fmpe", False, True, "FMPE and NPSE train no normalizing flow"),
    ("npse", False, True, "FMPE and NPSE train no normalizing flow"),
    ("nre", False, False, "NRE trains a classifier"),
])
def test_only_the_network_settings_of_the_method_are_offered(store, method, estimator_on, layers_on, note):
    """A flow's kind means nothing to flow / score matching or to a ratio classifier: the Estimator is
    greyed out for them (and the flow layers for the classifier), and a caption says what the numbers mean."""
    at = train_page()
    at.radio(key=K.W_METHOD).set_value(method).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key=K.W_ESTIMATOR).disabled is (not estimator_on)
    assert at.number_input(key=K.W_TRANSFORMS).disabled is (not layers_on)
    captions = " ".join(c.value for c in at.caption)
    assert (note in captions) if note else ("train no normalizing flow" not in captions
                                            and "trains a classifier" not in captions)

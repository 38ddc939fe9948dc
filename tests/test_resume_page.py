"""AppTest: a failed run offers Resume to its owner, and the click carries the same run on.

The run fails for real after its first round (its executor raises once round 1 is saved), so the
store holds round 1's artifacts and checkpoint and a plain failure message, as after a crash.
"""

from __future__ import annotations

import time

import pytest

from sbi_core.errors import SBIError
from sbi_core.jobs.worker import carry_out
from sbi_core.run import loop as runs
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore
from sbi_ui import keys as K

from apptest_support import run_page

RUNS = "pages/runs.py"

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

SPEC = RunSpec(simulator="two_moons", method="snpe", num_rounds=2, simulations_per_round=200, max_epochs=10,
               num_posterior_samples=100, seed=5, num_threads=1, title="Crashes after round 1")


def crash_after_first_round(spec, on_event=None, cancel=None, on_round=None, stop=None, resume=None):
    """The real run, whose simulator crashes as soon as round 2 starts simulating."""
    def record_then_crash(event):
        on_event(event)
        if event["type"] == "simulation" and event["round"] == 1:
            raise SBIError("The simulator crashed (a test's executor).")
    return runs.execute(spec, on_event=record_then_crash, cancel=cancel, on_round=on_round, stop=stop, resume=resume)


@pytest.fixture
def store(tmp_path, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    monkeypatch.setenv("SBI_EXECUTOR", "process")
    return RunStore(root)


def failed_after_round_one(store: RunStore, owner=None) -> str:
    rid = store.create_run(SPEC, owner=owner)
    store.set_status(rid, "running")
    assert carry_out(store, rid, execute=crash_after_first_round) == "failed"
    return rid


def runs_page(run_id: str):
    return run_page(run_id, RUNS)


def test_the_owner_resumes_a_failed_run_from_its_next_round(store: RunStore) -> None:
    rid = failed_after_round_one(store)
    info = store.get_run(rid)
    assert info.status == "failed" and "simulator crashed" in info.message
    at = runs_page(rid)
    button = at.button(key=K.W_RUNS_RESUME)
    assert button.label == "Resume from round 2"
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert store.get_run(rid).status in ("queued", "running", "done")
    deadline = time.monotonic() + 120
    while store.get_run(rid).status in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert store.get_run(rid).status == "done", store.get_run(rid).message
    assert [e["round"] for _, e in store.events(rid, types=["round"])] == [0, 1]
    at.run()
    assert not at.exception
    notes = " ".join(str(c.value) for c in at.caption)
    assert "Resumed from round 2 (it had failed; round 1 was kept)" in notes
    assert K.W_RUNS_RESUME not in [b.key for b in at.button]  # done: nothing to resume


def test_someone_elses_failed_run_has_no_resume_button(store: RunStore) -> None:
    rid = failed_after_round_one(store, owner="another-browser-token")
    at = runs_page(rid)
    assert K.W_RUNS_RESUME not in [b.key for b in at.button]

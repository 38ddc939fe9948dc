"""Background runs: worker processes, the queue, cancel, and how failures are recorded.

Most tests swap a scripted executor (``fake_exec``, written to a temporary
folder) into the workers, so they test the machinery, not training; the last
ones run the real ``sbi_core.run.loop.execute`` on a tiny problem.
"""

from __future__ import annotations

import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from sbi_core.jobs.manager import JobManager, default_max_running, default_threads_per_run
from sbi_core.jobs.worker import bug_message, run_worker
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore, STALE_MESSAGE, pid_alive

pytestmark = pytest.mark.timeout(60)

FAKE_EXEC = '''
import os, time
from sbi_core.errors import SBIError
from sbi_core.errors import Cancelled


def _ev(type, **kw):
    return {"type": type, "time": time.time(), **kw}


def quick(spec, on_event=None, cancel=None, on_round=None):
    import torch
    on_event(_ev("run_started", spec=spec.to_dict(), num_rounds=1, threads=torch.get_num_threads(),
                 omp=os.environ.get("OMP_NUM_THREADS"), trusted=os.environ.get("SBI_TRUSTED_UPLOADS"),
                 cwd=os.getcwd()))
    for epoch in range(1, 4):
        on_event(_ev("epoch", round=0, epoch=epoch, train_loss=1.0 / epoch))
    on_event(_ev("round", round=0, posterior_samples=[[0.5, 0.5]] * 10))
    on_event(_ev("done", seconds=0.0))  # ignored: only the worker ends a run


def slow(spec, on_event=None, cancel=None, on_round=None):
    on_event(_ev("run_started", spec=spec.to_dict(), num_rounds=1))
    deadline = time.time() + 50
    epoch = 0
    while time.time() < deadline:
        epoch += 1
        time.sleep(0.05)
        on_event(_ev("epoch", round=0, epoch=epoch))
        if cancel():
            on_event(_ev("cancelled", round=0))
            raise Cancelled("cancelled")
    raise RuntimeError("slow executor was never cancelled")


def stubborn(spec, on_event=None, cancel=None, on_round=None):
    on_event(_ev("run_started", spec=spec.to_dict(), num_rounds=1))
    time.sleep(50)  # never looks at cancel()


def user_error(spec, on_event=None, cancel=None, on_round=None):
    raise SBIError("The observation has 3 numbers, but this simulator produces 2.")


def bug(spec, on_event=None, cancel=None, on_round=None):
    return {}["missing"]
'''


def tiny_spec(**kw) -> RunSpec:
    base = dict(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=300, max_epochs=3,
                num_posterior_samples=50)
    base.update(kw)
    return RunSpec(**base)


@pytest.fixture
def fake_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``fake_exec`` importable by the workers (the environment passes through)."""
    folder = tmp_path / "fakes"
    folder.mkdir()
    (folder / "fake_exec.py").write_text(textwrap.dedent(FAKE_EXEC))
    old = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", str(folder) + (os.pathsep + old if old else ""))
    return folder


@pytest.fixture
def store(tmp_path: Path):
    """A fresh store; any worker of its runs still alive afterwards (a failed test) is killed."""
    store = RunStore(tmp_path / "store")
    yield store
    for info in store.list_runs(limit=None):
        pid, start = store.worker_process(info.id)
        if pid is not None and pid != os.getpid() and pid_alive(pid, start):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass


def manager(store: RunStore, executor: str | None = None, **kw) -> JobManager:
    kw.setdefault("max_running", 1)
    kw.setdefault("threads_per_run", 1)
    return JobManager(store, executor=None if executor is None else f"fake_exec:{executor}", **kw)


def wait_for(predicate, timeout: float = 20.0, every: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def types_of(store: RunStore, run_id: str) -> list[str]:
    return [e["type"] for _, e in store.events(run_id)]


# ---- defaults ------------------------------------------------------------------------
def test_default_slots() -> None:
    assert [default_max_running(n) for n in (1, 2, 3, 4, 16)] == [1, 1, 1, 2, 8]


def test_defaults_split_the_cores(store: RunStore) -> None:
    jm = JobManager(store)
    cpus = os.cpu_count() or 1
    assert jm.max_running == default_max_running(cpus)
    assert jm.threads_per_run == max(1, (cpus - 1) // jm.max_running)
    assert [default_threads_per_run(c, m) for c, m in ((1, 1), (2, 1), (4, 2), (16, 8), (16, 1))] == [1, 1, 1, 1, 15]


# ---- with the scripted executor -----------------------------------------------------------
def test_start_is_quick_and_run_completes(store: RunStore, fake_path: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBI_TRUSTED_UPLOADS", "1")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the worker finds sbi_core from any cwd
    jm = manager(store, "quick", threads_per_run=2)
    t0 = time.perf_counter()
    rid = jm.start(tiny_spec(), title="quick one")
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5, elapsed  # typically a few ms; generous for a loaded machine
    info = jm.status(rid)
    assert info.title == "quick one" and info.status in ("queued", "running", "done")
    assert info.pid is not None
    info = jm.wait(rid, timeout=40)
    assert info.status == "done", (info.message, info.detail)
    assert info.started is not None and info.finished >= info.started
    seen = types_of(store, rid)
    assert seen == ["run_started", "epoch", "epoch", "epoch", "round", "done"]  # one "done", the worker's
    started = store.events(rid, types=["run_started"])[0][1]
    assert started["threads"] == 2 and started["omp"] == "2"
    assert started["trusted"] == "1" and started["cwd"] == str(elsewhere)
    assert store.events(rid, types=["done"])[0][1]["seconds"] >= 0
    assert (store.artifact_dir(rid) / "worker.log").exists()
    assert [r.id for r in jm.list()] == [rid]


def test_queue_and_cancel(store: RunStore, fake_path: Path) -> None:
    jm = manager(store, "slow", max_running=1)
    first = jm.start(tiny_spec(seed=1))
    second = jm.start(tiny_spec(seed=2))
    wait_for(lambda: store.events(first, types=["epoch"]))
    assert jm.status(first).status == "running"
    assert jm.status(second).status == "queued"
    assert jm.queue_position(second) == 1
    time.sleep(0.5)  # its worker is polling for a slot and must not take one
    assert jm.status(second).status == "queued"

    info = jm.cancel(second)  # queued: cancelled at once
    assert info.status == "cancelled" and info.finished is not None
    assert types_of(store, second) == ["cancelled"]

    t0 = time.monotonic()
    jm.cancel(first)  # running: stops within an epoch
    info = jm.wait(first, timeout=10)
    assert info.status == "cancelled"
    assert time.monotonic() - t0 < 5
    seen = types_of(store, first)
    assert seen[-1] == "cancelled" and seen.count("cancelled") == 1
    assert "done" not in seen and "failed" not in seen
    wait_for(lambda: not store.worker_alive(second))  # the queued run's worker left too
    assert jm.cancel(first).status == "cancelled"  # cancelling again changes nothing


def test_user_error_is_a_plain_failure(store: RunStore, fake_path: Path) -> None:
    jm = manager(store, "user_error")
    info = jm.wait(jm.start(tiny_spec()), timeout=40)
    assert info.status == "failed"
    assert info.message == "The observation has 3 numbers, but this simulator produces 2."
    (_, event), = store.events(info.id, types=["failed"])
    assert event["message"] == info.message


def test_bug_is_reported_with_detail(store: RunStore, fake_path: Path) -> None:
    jm = manager(store, "bug")
    info = jm.wait(jm.start(tiny_spec()), timeout=40)
    assert info.status == "failed"
    assert info.message == bug_message(KeyError()) == (
        "Something went wrong while running (KeyError). The details below help a developer."
    )
    assert "Traceback" in info.detail and "KeyError: 'missing'" in info.detail
    assert types_of(store, info.id)[-1] == "failed"


def test_import_failure_is_recorded(store: RunStore, fake_path: Path) -> None:
    jm = JobManager(store, max_running=1, threads_per_run=1, executor="no_such_module_xyz:execute")
    info = jm.wait(jm.start(tiny_spec()), timeout=40)
    assert info.status == "failed" and "ModuleNotFoundError" in info.message
    assert "no_such_module_xyz" in info.detail


def test_stubborn_run_is_killed_after_the_grace(store: RunStore, fake_path: Path) -> None:
    jm = manager(store, "stubborn", cancel_grace_s=1.0)
    rid = jm.start(tiny_spec())
    wait_for(lambda: store.events(rid, types=["run_started"]))
    jm.cancel(rid)
    info = jm.wait(rid, timeout=15)
    assert info.status == "cancelled"
    assert types_of(store, rid).count("cancelled") == 1
    wait_for(lambda: not store.worker_alive(rid), timeout=10)  # the process is gone (or a zombie)


def test_dead_worker_is_noticed(store: RunStore, fake_path: Path) -> None:
    jm = manager(store, "stubborn")
    rid = jm.start(tiny_spec())
    wait_for(lambda: store.events(rid, types=["run_started"]))
    os.killpg(jm.status(rid).pid, signal.SIGKILL)  # e.g. the out-of-memory killer
    info = wait_for(lambda: (lambda i: i if i.is_terminal else None)(jm.status(rid)), timeout=10)
    assert info.status == "failed" and info.message == STALE_MESSAGE


def test_worker_outlives_its_manager(store: RunStore, fake_path: Path) -> None:
    jm = manager(store, "quick")
    rid = jm.start(tiny_spec())
    del jm  # like a Streamlit rerun dropping every object of the script
    jm2 = manager(store)
    assert jm2.wait(rid, timeout=40).status == "done"


# ---- the worker loop in this process (no subprocess) ------------------------------------------
def test_run_worker_in_process(store: RunStore) -> None:
    saved = []

    class Round:
        index = 0

    def fake_execute(spec, on_event=None, cancel=None, on_round=None):
        on_event({"type": "run_started", "time": time.time()})
        assert cancel() is False
        on_round(Round())
        saved.append(True)

    store.save_round = lambda run_id, r: saved.append((run_id, r.index))  # type: ignore[method-assign]
    rid = store.create_run(tiny_spec())
    assert run_worker(store, rid, max_running=1, execute=fake_execute) == "done"
    assert saved == [(rid, 0), True]
    assert types_of(store, rid) == ["run_started", "done"]
    assert store.get_run(rid).pid == os.getpid()


def test_a_run_ended_from_outside_keeps_its_ending_whatever_its_worker_still_does(
        store: RunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Dask task that ignores its cancel is ended from outside and may even be resumed and claimed again
    while it goes on: nothing it does afterwards reaches the store, and it ends nothing."""
    import sbi_core.jobs.worker as worker

    monkeypatch.setattr(worker, "CANCEL_CHECK_S", 0.0)  # read the claim at every event
    saved = []
    store.save_round = lambda run_id, r: saved.append(r.index)  # type: ignore[method-assign]
    rid = store.create_run(tiny_spec())
    assert store.claim_slot(rid, os.getpid(), 1)

    class Round:
        index = 0

    def ghost(spec, on_event=None, cancel=None, on_round=None):
        on_event({"type": "run_started", "time": time.time()})
        # the job manager gives up on it (cancelled past its grace), the owner resumes it, a new task claims it
        assert store.finish_run(rid, "cancelled", event={"type": "cancelled", "round": None}, only_from=("running",))
        assert store.reopen_run(rid, 0)
        time.sleep(0.01)  # the new claim is stamped later
        assert store.claim_slot(rid, os.getpid(), 1)
        on_event({"type": "epoch", "round": 0, "epoch": 0})  # never looked at cancel: all of this is discarded
        on_round(Round())
        assert cancel() is True  # it would stop at its next look

    assert worker.carry_out(store, rid, ghost) == "running"  # the new attempt's
    info = store.get_run(rid)
    assert info.status == "running" and info.message is None
    assert types_of(store, rid) == ["run_started", "resumed"]
    assert saved == []


def test_run_worker_leaves_queue_when_cancelled(store: RunStore) -> None:
    blocker = store.create_run(tiny_spec())
    store.set_status(blocker, "running", pid=os.getpid())
    rid = store.create_run(tiny_spec())
    store.request_cancel(rid)
    assert run_worker(store, rid, max_running=1, execute=lambda *a, **k: None, poll_s=0.01) == "cancelled"
    assert store.get_run(rid).status == "cancelled"


# ---- real runs (sbi_core.run.loop.execute) -----------------------------------------------------
@pytest.fixture
def real(store: RunStore) -> JobManager:
    pytest.importorskip("sbi_core.run.loop")
    return JobManager(store, max_running=1, threads_per_run=1)


def test_real_tiny_run(real: JobManager, store: RunStore) -> None:
    rid = real.start(tiny_spec())
    info = real.wait(rid, timeout=50)
    assert info.status == "done", (info.message, info.detail)
    seen = types_of(store, rid)
    assert seen[0] == "run_started" and seen[-1] == "done"
    assert seen.count("epoch") == 3 and seen.count("round") == 1 and "simulation" in seen
    assert store.load_posterior(rid).theta_dim == 2
    assert store.round_samples(rid)[0].shape == (50, 2)


def test_real_run_cancel_and_failure(real: JobManager, store: RunStore) -> None:
    long = real.start(tiny_spec(max_epochs=5000, patience=5000))
    bad = real.start(tiny_spec(observation=[0.1, 0.2, 0.3]))  # two_moons makes 2 numbers
    wait_for(lambda: store.events(long, types=["epoch"]), timeout=30)
    assert real.queue_position(bad) == 1
    t0 = time.monotonic()
    real.cancel(long)
    info = real.wait(long, timeout=15)
    assert info.status == "cancelled" and time.monotonic() - t0 < 5
    assert types_of(store, long)[-1] == "cancelled"
    info = real.wait(bad, timeout=40)
    assert info.status == "failed"
    assert not info.message.startswith("Something went wrong"), info.detail  # an SBIError: plain words


def test_real_run_stop_and_keep_mid_round_one(real: JobManager, store: RunStore) -> None:
    """"Stop and keep what is trained" during round 1: the run ends done with 1 real round and its samples."""
    rid = real.start(tiny_spec(method="snpe", num_rounds=3, max_epochs=5000, patience=5000))
    wait_for(lambda: len(store.events(rid, types=["epoch"])) >= 3, timeout=40)
    real.stop(rid)
    info = real.wait(rid, timeout=30)
    assert info.status == "done", (info.message, info.detail)
    rounds = [e for _, e in store.events(rid, types=["round"])]
    assert len(rounds) == 1 and rounds[0]["stopped_by_request"] is True
    assert rounds[0]["epochs"] == len(store.events(rid, types=["epoch"])) >= 3
    done = store.last_event(rid, types=["done"])[1]
    assert done["stopped_by_request"] is True
    assert store.rounds_saved(rid) == [0]
    assert store.round_samples(rid)[0].shape == (50, 2)
    assert store.load_posterior(rid).theta_dim == 2


def test_stop_of_a_queued_run_cancels_it(store: RunStore, fake_path: Path) -> None:
    jm = manager(store, "slow")
    first = jm.start(tiny_spec())
    queued = jm.start(tiny_spec())
    wait_for(lambda: store.get_run(first).status == "running", timeout=30)
    assert jm.stop(queued).status == "cancelled"  # nothing trained: nothing to keep
    # an executor without a `stop` argument treats stop-and-keep as a cancel
    jm.stop(first)
    assert jm.wait(first, timeout=20).status == "cancelled"


def test_a_worker_runs_the_code_of_the_server_that_started_it(monkeypatch):
    """Worker processes import this very checkout first, installed or not, whatever PYTHONPATH held."""
    from sbi_core.jobs.process_executor import worker_env

    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = worker_env(1)
    first, rest = env["PYTHONPATH"].split(os.pathsep, 1)
    assert Path(first) == Path(__file__).resolve().parents[1] and rest == "/elsewhere"
    assert env["OMP_NUM_THREADS"] == "1"

"""The run store: SQLite in WAL mode, safe across processes; artifacts on disk."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from child_processes import CTX, running
from sbi_core.run.ids import RUN_ID_LENGTH, is_run_id
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import (
    ArtifactMissing,
    RunInfo,
    RunStore,
    STALE_MESSAGE,
    pid_alive,
    process_start_time,
)

pytestmark = pytest.mark.timeout(60)



def tiny_spec(**kw) -> RunSpec:
    base = dict(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=300, max_epochs=3,
                num_posterior_samples=50)
    base.update(kw)
    return RunSpec(**base)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "store")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---- basics -----------------------------------------------------------------
def test_layout_and_wal_mode(store: RunStore, tmp_path: Path) -> None:
    assert store.db_path == (tmp_path / "store" / "runs.sqlite3").resolve()
    assert store.db_path.exists()
    assert store.journal_mode() == "wal"
    assert RunStore(tmp_path / "store").journal_mode() == "wal"  # reopening keeps it


def test_default_root_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBI_STORE_DIR", str(tmp_path / "envstore"))
    assert RunStore().root == (tmp_path / "envstore").resolve()
    monkeypatch.delenv("SBI_STORE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert RunStore().root == (tmp_path / "home" / ".local" / "share" / "sbi-dashboard").resolve()


def test_create_get_list(store: RunStore) -> None:
    a = store.create_run(tiny_spec(seed=1), title="first")
    b = store.create_run(tiny_spec(seed=2, title="from spec"))
    c = store.create_run(tiny_spec(seed=3))
    for rid in (a, b, c):
        assert is_run_id(rid) and len(rid) == RUN_ID_LENGTH  # unguessable: see tests/test_owner_store.py
    info = store.get_run(a)
    assert isinstance(info, RunInfo)
    assert info.title == "first" and info.status == "queued" and info.spec == tiny_spec(seed=1)
    assert info.is_active and not info.is_terminal and not info.cancel_requested
    assert info.started is None and info.finished is None and info.pid is None
    assert store.get_run(b).title == "from spec"
    assert store.get_run("000000000000") is None
    assert [r.id for r in store.list_runs()] == [c, b, a]  # newest first
    assert [r.id for r in store.list_runs(limit=2)] == [c, b]
    store.set_status(b, "running", pid=os.getpid())
    assert [r.id for r in store.list_runs(status="running")] == [b]
    assert [r.id for r in store.list_runs(status=("queued",))] == [c, a]
    with pytest.raises(dataclasses_frozen_error()):
        info.status = "done"  # type: ignore[misc]


def dataclasses_frozen_error() -> type:
    import dataclasses

    return dataclasses.FrozenInstanceError


def test_status_transitions(store: RunStore) -> None:
    rid = store.create_run(tiny_spec())
    store.set_status(rid, "running", pid=os.getpid())
    info = store.get_run(rid)
    assert info.status == "running" and info.started is not None and info.finished is None
    assert info.pid == os.getpid()
    store.set_status(rid, "failed", message="Plain words.", detail="trace")
    info = store.get_run(rid)
    assert info.is_terminal and info.finished >= info.started
    assert (info.message, info.detail) == ("Plain words.", "trace")
    with pytest.raises(ValueError):
        store.set_status(rid, "exploded")


def test_finish_run_is_once_only(store: RunStore) -> None:
    rid = store.create_run(tiny_spec())
    store.set_status(rid, "running")
    assert store.finish_run(rid, "done", event={"type": "done", "seconds": 1.0})
    # a late cancel (or a second worker) cannot flip it or add a second terminal event
    assert not store.finish_run(rid, "cancelled", event={"type": "cancelled"})
    assert store.get_run(rid).status == "done"
    assert [e["type"] for _, e in store.events(rid)] == ["done"]
    q = store.create_run(tiny_spec())
    store.set_status(q, "running")
    assert not store.finish_run(q, "cancelled", only_from=("queued",))
    assert store.get_run(q).status == "running"


def test_pickles_as_its_root(store: RunStore) -> None:
    rid = store.create_run(tiny_spec())
    clone = pickle.loads(pickle.dumps(store))
    assert clone.root == store.root and clone.get_run(rid).id == rid


def test_unreadable_old_spec_still_lists(store: RunStore) -> None:
    rid = store.create_run(tiny_spec())
    with store._write() as c:  # a spec stored by older code that no longer validates
        c.execute("UPDATE runs SET spec_json = ? WHERE id = ?",
                  ('{"simulator": "two_moons", "method": "npe", "num_rounds": 1, "max_epochs": 0}', rid))
    info = store.get_run(rid)
    assert info.spec.max_epochs == 0 and info.spec.seed == 0 and info.spec.title == ""
    assert [r.id for r in store.list_runs()] == [rid]


# ---- events -----------------------------------------------------------------
def test_events_order_filter_and_json(store: RunStore) -> None:
    import torch

    rid = store.create_run(tiny_spec())
    other = store.create_run(tiny_spec())
    assert store.append_event(rid, {"type": "run_started", "time": 1.0}) == 1
    assert store.append_event(other, {"type": "run_started"}) == 1  # per-run sequence
    assert store.append_event(rid, {"type": "epoch", "epoch": 1, "loss": np.float32(2.5)}) == 2
    assert store.append_event(rid, {"type": "round", "posterior_samples": torch.zeros(3, 2),
                                    "mean": np.array([1.0, 2.0])}) == 3
    assert store.append_event(rid, {"type": "epoch", "val_loss": float("nan")}) == 4
    evs = store.events(rid)
    assert [s for s, _ in evs] == [1, 2, 3, 4]
    assert evs[0][1] == {"type": "run_started", "time": 1.0}
    assert "time" in evs[1][1] and evs[1][1]["loss"] == 2.5
    assert evs[2][1]["posterior_samples"] == [[0.0, 0.0]] * 3
    assert np.isnan(evs[3][1]["val_loss"])
    assert [s for s, _ in store.events(rid, after=2)] == [3, 4]
    assert [s for s, _ in store.events(rid, types=["epoch"])] == [2, 4]
    assert [s for s, _ in store.events(rid, after=2, types=("epoch", "round"))] == [3, 4]
    assert store.last_event(rid)[0] == 4
    assert store.last_event(rid, types=["round"])[0] == 3
    with pytest.raises(ValueError):
        store.append_event(rid, {"no": "type"})


def _append_many(store: RunStore, run_id: str, tag: str, n: int, start) -> list[int]:
    start.wait()
    return [store.append_event(run_id, {"type": "epoch", "who": tag, "i": i}) for i in range(n)]


def _append_worker(root: str, run_id: str, tag: str, n: int, start, out) -> None:
    store = RunStore(root)
    out.put((tag, _append_many(store, run_id, tag, n, start)))


def test_two_processes_append_concurrently(store: RunStore) -> None:
    rid = store.create_run(tiny_spec())
    store.append_event(rid, {"type": "run_started"})  # the parent keeps its open connection throughout
    n = 150
    start = CTX.Event()
    out = CTX.Queue()
    procs = [CTX.Process(target=_append_worker, args=(str(store.root), rid, tag, n, start, out)) for tag in "ab"]
    with running(procs, join_s=10):
        start.set()
        got = dict(out.get(timeout=50) for _ in procs)
    assert [p.exitcode for p in procs] == [0, 0]
    evs = store.events(rid)
    seqs = [s for s, _ in evs]
    assert seqs == list(range(1, 2 * n + 2))  # unique, gap-free, ordered
    assert sorted(got["a"] + got["b"]) == seqs[1:]
    for tag in "ab":  # each writer's events in its own order, seqs increasing
        mine = [e["i"] for _, e in evs if e.get("who") == tag]
        assert mine == list(range(n))
        assert got[tag] == sorted(got[tag])
    store.append_event(rid, {"type": "done"})  # the parent's connection still works after the children wrote


def test_threads_use_their_own_connections(store: RunStore) -> None:
    import threading

    rid = store.create_run(tiny_spec())
    errors = []

    def work() -> None:
        try:
            for _ in range(30):
                store.append_event(rid, {"type": "epoch"})
        except Exception as err:  # pragma: no cover
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [s for s, _ in store.events(rid)] == list(range(1, 91))


# ---- the queue ----------------------------------------------------------------
def test_queue_position_and_claim_order(store: RunStore) -> None:
    a, b, c = (store.create_run(tiny_spec(seed=i)) for i in range(3))
    assert [store.queue_position(r) for r in (a, b, c)] == [1, 2, 3]
    assert not store.claim_slot(b, 111, max_running=1)  # first come, first served
    assert store.claim_slot(a, 111, max_running=1)
    assert store.claim_slot(a, 111, max_running=1)  # idempotent for the same worker
    assert not store.claim_slot(a, 222, max_running=1)
    assert store.queue_position(a) is None
    assert [store.queue_position(r) for r in (b, c)] == [1, 2]
    assert not store.claim_slot(b, 112, max_running=1)  # no free slot
    assert store.claim_slot(b, 112, max_running=2)
    info = store.get_run(b)
    assert info.status == "running" and info.pid == 112 and info.started is not None
    store.finish_run(a, "done")
    assert store.claim_slot(c, 113, max_running=2)
    assert store.queue_position(c) is None


def test_claim_skips_cancelled_and_requested(store: RunStore) -> None:
    a, b = store.create_run(tiny_spec()), store.create_run(tiny_spec())
    store.request_cancel(a)
    assert store.cancel_requested(a) and not store.cancel_requested(b)
    assert not store.claim_slot(a, 1, max_running=1)  # never starts a run asked to stop
    assert store.claim_slot(b, 1, max_running=1)  # and it does not hold up the queue


def _claim_worker(root: str, run_id: str, barrier, out) -> None:
    store = RunStore(root)
    barrier.wait()
    out.put((run_id, store.claim_slot(run_id, os.getpid(), 2)))


def test_claim_slot_under_a_race(store: RunStore) -> None:
    runs = [store.create_run(tiny_spec(seed=i)) for i in range(5)]
    barrier = CTX.Barrier(len(runs))
    out = CTX.Queue()
    procs = [CTX.Process(target=_claim_worker, args=(str(store.root), r, barrier, out)) for r in runs]
    with running(procs, join_s=10):
        results = dict(out.get(timeout=50) for _ in procs)
    assert sum(results.values()) == 2
    assert [r.id for r in store.list_runs(status="running")][::-1] == runs[:2]  # the two oldest
    assert [store.queue_position(r) for r in runs[2:]] == [1, 2, 3]


def test_cancel_flag(store: RunStore) -> None:
    rid = store.create_run(tiny_spec())
    assert not store.cancel_requested(rid)
    store.request_cancel(rid)
    assert store.cancel_requested(rid) and store.get_run(rid).cancel_requested
    done = store.create_run(tiny_spec())
    store.finish_run(done, "done")
    store.request_cancel(done)  # no effect on a finished run
    assert not store.cancel_requested(done)
    assert store.cancel_requested("ffffffffffff")  # a deleted run: stop


# ---- stale runs -----------------------------------------------------------------
def test_pid_helpers() -> None:
    me = os.getpid()
    assert pid_alive(me) and pid_alive(me, process_start_time(me))
    assert not pid_alive(None) and not pid_alive(_dead_pid())
    if process_start_time(me) is not None:
        assert not pid_alive(me, "1")  # same pid, another process (reused pid)


def test_reap_stale(store: RunStore) -> None:
    dead = _dead_pid()
    crashed = store.create_run(tiny_spec())
    store.set_status(crashed, "running", pid=dead)
    (store.artifact_dir(crashed) / "worker.log").write_text("Traceback ...\nImportError: boom\n")
    queued_dead = store.create_run(tiny_spec())
    store.set_pid(queued_dead, dead)
    alive = store.create_run(tiny_spec())
    store.set_status(alive, "running", pid=os.getpid())
    starting = store.create_run(tiny_spec())  # queued, no pid yet: being spawned
    reused = store.create_run(tiny_spec())
    store.set_status(reused, "running", pid=os.getpid())
    with store._write() as c:  # the recorded process started at another time: pid reused
        c.execute("UPDATE runs SET pid_start = '1' WHERE id = ?", (reused,))
    cancelling = store.create_run(tiny_spec())
    store.set_status(cancelling, "running", pid=dead)
    store.request_cancel(cancelling)
    finished = store.create_run(tiny_spec())
    store.set_status(finished, "done", pid=dead)

    reaped = set(store.reap_stale())
    expected = {crashed, queued_dead, cancelling}
    if process_start_time(os.getpid()) is not None:
        expected.add(reused)
    assert reaped == expected
    for rid in (crashed, queued_dead):
        info = store.get_run(rid)
        assert info.status == "failed" and info.message == STALE_MESSAGE and info.finished is not None
        assert store.events(rid)[-1][1]["type"] == "failed"
    assert "ImportError: boom" in store.get_run(crashed).detail
    assert store.get_run(cancelling).status == "cancelled"
    assert store.get_run(alive).status == "running"
    assert store.get_run(starting).status == "queued"
    assert store.get_run(finished).status == "done"
    assert store.reap_stale() == []  # once only


# ---- artifacts --------------------------------------------------------------------
class _FakePosterior:
    """A posterior that saves a tag in a torch file of its own format."""

    FORMAT = "tests.fake_posterior/1"

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def save(self, path) -> None:
        import torch

        torch.save({"format": self.FORMAT, "tag": self.tag}, path)

    @classmethod
    def load(cls, path) -> "_FakePosterior":
        import torch

        return cls(torch.load(path, weights_only=True)["tag"])


def _fake_round(i: int, m: int = 5, d: int = 2):
    import torch

    return types.SimpleNamespace(
        index=i,
        posterior=_FakePosterior(f"round {i}"),
        theta=torch.randn(7, d),
        x=torch.randn(7, 3),
        posterior_samples=torch.full((m, d), float(i)),
    )


def test_artifacts_round_trip_with_fakes(store: RunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import sbi_core.posteriors

    fake_module = types.ModuleType("sbi_core.posteriors.posterior")
    fake_module.Posterior = _FakePosterior
    monkeypatch.setitem(sys.modules, "sbi_core.posteriors.posterior", fake_module)
    monkeypatch.setattr(sbi_core.posteriors, "posterior", fake_module, raising=False)
    from sbi_core.posteriors import files as posterior_files

    monkeypatch.setitem(posterior_files.FORMATS, _FakePosterior.FORMAT, ("sbi_core.posteriors.posterior", "Posterior"))

    rid = store.create_run(tiny_spec())
    assert store.artifact_dir(rid).is_dir()
    with pytest.raises(ArtifactMissing):
        store.load_posterior(rid)
    assert store.round_samples(rid) == []
    for i in range(2):
        path = store.save_round(rid, _fake_round(i))
        assert (path / "posterior.pt").is_file()
        assert not [p for p in path.iterdir() if ".tmp" in p.name]
    assert store.rounds_saved(rid) == [0, 1]
    assert store.load_posterior(rid).tag == "round 1"
    assert store.load_posterior(rid, round=0).tag == "round 0"
    with pytest.raises(ArtifactMissing):
        store.load_posterior(rid, round=5)
    samples = store.round_samples(rid)
    assert [s.shape for s in samples] == [(5, 2), (5, 2)]
    assert samples[1][0, 0] == 1.0
    theta = np.load(store.round_dir(rid, 0) / "theta.npy")
    assert theta.shape == (7, 2)
    drawn = store.round_parameters(rid, max_rows=3)  # every third row: 7 -> 3
    assert [a.shape for a in drawn] == [(3, 2), (3, 2)]
    assert np.array_equal(drawn[0], theta[::3])


def test_round_samples_from_events(store: RunStore) -> None:
    rid = store.create_run(tiny_spec())
    store.append_event(rid, {"type": "round", "round": 1, "posterior_samples": [[1.0, 2.0]] * 3})
    store.append_event(rid, {"type": "round", "round": 0, "posterior_samples": [[0.0, 0.0]] * 4})
    got = store.round_samples(rid)
    assert [g.shape for g in got] == [(4, 2), (3, 2)]
    np.testing.assert_array_equal(got[1], [[1.0, 2.0]] * 3)


def test_delete_run(store: RunStore) -> None:
    keep = store.create_run(tiny_spec())
    rid = store.create_run(tiny_spec())
    store.append_event(rid, {"type": "run_started"})
    store.append_event(keep, {"type": "run_started"})
    (store.artifact_dir(rid) / "worker.log").write_text("x")
    store.delete_run(rid)
    assert store.get_run(rid) is None and store.events(rid) == []
    assert not (store.artifacts_root / rid).exists()
    assert store.get_run(keep) is not None and len(store.events(keep)) == 1
    with pytest.raises(ValueError):
        store.artifact_dir("../escape")


def test_artifacts_round_trip_real_run(store: RunStore) -> None:
    runs = pytest.importorskip("sbi_core.run.loop")
    from sbi_core.posteriors.posterior import Posterior

    rid = store.create_run(tiny_spec())
    store.set_status(rid, "running", pid=os.getpid())
    result = runs.execute(
        store.get_run(rid).spec,
        on_event=lambda e: store.append_event(rid, e),
        on_round=lambda r: store.save_round(rid, r),
    )
    store.finish_run(rid, "done", event={"type": "done", "seconds": result.seconds})
    post = store.load_posterior(rid)
    assert isinstance(post, Posterior)
    assert (post.theta_dim, post.x_dim) == (2, 2)
    samples = store.round_samples(rid)
    assert len(samples) == 1 and samples[0].shape == (50, 2)
    np.testing.assert_allclose(samples[0], result.rounds[0].posterior_samples.numpy(), rtol=1e-6)
    # the samples in the round event agree with the saved .npy
    (_, round_event), = store.events(rid, types=["round"])
    np.testing.assert_allclose(np.asarray(round_event["posterior_samples"]), samples[0], rtol=1e-5, atol=1e-6)
    types_seen = [e["type"] for _, e in store.events(rid)]
    assert types_seen[0] == "run_started" and "epoch" in types_seen and types_seen[-1] == "done"


def test_an_identical_setup_reuses_its_run_and_a_different_one_does_not(store: RunStore) -> None:
    spec = tiny_spec()
    first, reused = store.create_or_reuse(spec, owner="a")
    assert not reused
    again, reused = store.create_or_reuse(RunSpec.from_dict({**spec.to_dict(), "title": "mine", "num_threads": 1}),
                                          owner="b")
    assert (again, reused) == (first, True)  # title and threads do not change what is computed
    other, reused = store.create_or_reuse(RunSpec.from_dict({**spec.to_dict(), "seed": spec.seed + 1}))
    assert other != first and not reused
    store.set_status(first, "failed")  # a failed run is computed anew
    fresh, reused = store.create_or_reuse(spec)
    assert fresh not in (first, other) and not reused

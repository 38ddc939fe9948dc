"""The run store under faults: thirty writers at once, a full disk, a store that may not be written.

* Thirty processes write at the same moment (and two more read): no "database is
  locked" reaches anyone, every event is stored once with consecutive numbers,
  and thirty identical demo requests make one run.
* A full disk is real here: SQLite's ``PRAGMA max_page_count`` makes the
  database refuse to grow with its genuine ``SQLITE_FULL``; artifact writes get
  the operating system's ``OSError(ENOSPC)``. A store that may not be written
  is SQLite's genuine "attempt to write a readonly database" (a ``mode=ro``
  connection; the tests run as root, where chmod blocks nothing) or an
  ``OSError(EROFS/EACCES)``. Every one becomes :class:`StoreUnavailable` with a
  plain message, the failed write changes nothing, and reads keep working.
* The app keeps serving: with every write of the store failing, the Runs page
  still lists the runs, and Start demo shows the store's plain message.
"""

from __future__ import annotations

import errno
import queue
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from child_processes import CTX, running
import sbi_core.store.db as store_module
from sbi_core.errors import SBIError
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore
from sbi_core.store.errors import BUSY, FULL, UNWRITABLE, StoreUnavailable, store_unavailable

pytestmark = pytest.mark.timeout(120)


WRITERS = 30
READERS = 2
OWN_EVENTS = 25  # per writer, on its own run
SHARED_EVENTS = 8  # per writer, on the one shared (reused) run
THIRTY_WRITERS_BUDGET_S = 420  # the whole burst on a busy 2-core machine (about 3 s when quiet)


def tiny_spec(**kw) -> RunSpec:
    base = dict(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=300, max_epochs=3,
                num_posterior_samples=50)
    base.update(kw)
    return RunSpec(**base)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "store")


# ---- thirty writers at once -----------------------------------------------------
def _writer(root: str, i: int, barrier, read_once, out) -> None:
    """One browser's burst: open the store, start the demo (reused), make a run, log, cancel it.

    Before it finishes its run, it waits until every reader has read a run's events
    (``read_once``): so the readers surely read while the writers write. On a busy
    machine a reader may otherwise open the store only after the burst is over.
    """
    try:
        barrier.wait(240)
        store = RunStore(root)  # all thirty open the (new) store at once
        shared, _ = store.create_or_reuse(tiny_spec(seed=7, title=f"demo of {i}"))
        own = store.create_run(tiny_spec(seed=100 + i), title=f"run {i}")
        store.set_status(own, "running", pid=None)
        for k in range(OWN_EVENTS):
            store.append_event(own, {"type": "epoch", "k": k})
            if k < SHARED_EVENTS:
                store.append_event(shared, {"type": "note", "who": i, "k": k})
            if k % 5 == 0:
                store.list_runs(limit=100)
                store.events(shared)
        for event in read_once:
            if not event.wait(240):
                raise TimeoutError("a reader did not read within 240 s")
        store.request_cancel(own)
        store.finish_run(own, "cancelled", event={"type": "cancelled", "round": None})
        out.put((i, shared, own, None))
    except BaseException as err:  # noqa: BLE001 - reported to the test
        out.put((i, None, None, f"{type(err).__name__}: {err}"))


def _reader(root: str, barrier, stop, read_once, out) -> None:
    try:
        barrier.wait(240)
        store = RunStore(root)
        reads = 0
        while not stop.is_set():
            for run in store.list_runs(limit=None):
                store.events(run.id)
                reads += 1
                read_once.set()
            time.sleep(0.02)  # a page polls; a spinning reader only steals the writers' CPU
        out.put(("reader", reads, None, None))
    except BaseException as err:  # noqa: BLE001
        out.put(("reader", None, None, f"{type(err).__name__}: {err}"))


@pytest.mark.timeout(THIRTY_WRITERS_BUDGET_S + 120)
def test_thirty_writers_at_once_never_see_database_is_locked(tmp_path: Path) -> None:
    root = str(tmp_path / "store")  # not created yet: thirty processes create it together
    barrier = CTX.Barrier(WRITERS + READERS)
    stop = CTX.Event()
    out = CTX.Queue()
    read_once = [CTX.Event() for _ in range(READERS)]
    writers = [CTX.Process(target=_writer, args=(root, i, barrier, read_once, out)) for i in range(WRITERS)]
    readers = [CTX.Process(target=_reader, args=(root, barrier, stop, read_once[j], out)) for j in range(READERS)]
    started = time.monotonic()
    # One deadline for the whole burst, not one per answer: on a quiet machine it takes
    # about 3 s, on a CI machine running torch jobs beside it up to minutes (32 processes
    # on 2 cores). What is tested is that nobody sees "database is locked", not the speed.
    deadline = started + THIRTY_WRITERS_BUDGET_S
    with running(writers + readers):
        results = []
        try:
            while len(results) < WRITERS:
                results.append(out.get(timeout=max(1.0, deadline - time.monotonic())))
        except queue.Empty:
            alive = sum(p.is_alive() for p in writers)
            pytest.fail(f"{len(results)} of {WRITERS} writers finished in {time.monotonic() - started:.0f} s; "
                        f"{alive} still running, exit codes {[p.exitcode for p in writers]}")
        stop.set()
        reads = [out.get(timeout=60) for _ in readers]
    elapsed = time.monotonic() - started

    errors = [r[3] for r in results + reads if r[3]]
    assert not errors, errors
    assert all(p.exitcode == 0 for p in writers + readers)
    assert all(r[1] > 0 for r in reads)  # the readers did read while the writers wrote

    store = RunStore(root)
    shared_ids = {r[1] for r in results}
    assert len(shared_ids) == 1  # thirty identical demo requests: one run
    shared = shared_ids.pop()
    runs = store.list_runs(limit=None)
    assert len(runs) == WRITERS + 1
    seqs = [s for s, _ in store.events(shared)]
    assert seqs == list(range(1, WRITERS * SHARED_EVENTS + 1))  # unique, gap-free, in order
    for i in range(WRITERS):  # each writer's notes in its own order
        mine = [e["k"] for _, e in store.events(shared) if e.get("who") == i]
        assert mine == list(range(SHARED_EVENTS))
    for _, _, own, _ in results:
        evs = store.events(own)
        assert [s for s, _ in evs] == list(range(1, OWN_EVENTS + 2))
        assert [e["k"] for _, e in evs[:-1]] == list(range(OWN_EVENTS))
        assert evs[-1][1]["type"] == "cancelled"
        info = store.get_run(own)
        assert info.status == "cancelled" and info.cancel_requested
    print(f"{WRITERS} writers, {READERS} readers: {elapsed:.1f} s")


# ---- busy: waited out with backoff, then a plain message ------------------------------
def _hold_write_lock(db_path: Path) -> sqlite3.Connection:
    """Another connection that takes the write lock and keeps it (a writer that never finishes)."""
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_a_write_outlasting_sqlites_own_wait_is_retried_until_the_lock_is_free(
        store: RunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    rid = store.create_run(tiny_spec())
    monkeypatch.setattr(store_module, "_BUSY_TIMEOUT_MS", 50)  # SQLite gives up after 50 ms ...
    monkeypatch.setattr(store_module, "_BUSY_WINDOW_S", 10.0)  # ... the store keeps trying for 10 s
    waiting = RunStore(store.root)  # its connection opens with the short busy timeout
    other = _hold_write_lock(store.db_path)
    threading.Timer(0.6, other.execute, args=("COMMIT",)).start()
    started = time.monotonic()
    assert waiting.append_event(rid, {"type": "epoch"}) == 1
    assert 0.5 < time.monotonic() - started < 5
    other.close()


def test_a_lock_that_is_never_released_gives_a_plain_busy_message(
        store: RunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    rid = store.create_run(tiny_spec())
    monkeypatch.setattr(store_module, "_BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr(store_module, "_BUSY_WINDOW_S", 0.5)
    waiting = RunStore(store.root)
    other = _hold_write_lock(store.db_path)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        waiting.append_event(rid, {"type": "epoch"})
    assert 0.45 < time.monotonic() - started < 3  # bounded: the window and one last SQLite wait
    err = caught.value
    assert err.kind == BUSY and not err.writes_blocked and isinstance(err, SBIError)
    assert str(store.root) in str(err) and "is busy" in str(err) and "try again" in str(err)
    assert "database is locked" in str(err.__cause__)
    assert waiting.get_run(rid).status == "queued"  # reads are not blocked by a writer (WAL)
    other.execute("COMMIT")
    other.close()
    assert waiting.append_event(rid, {"type": "epoch"}) == 1  # nothing was left half-done or locked


def test_opening_a_store_whose_schema_is_current_takes_no_write_lock(
        store: RunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Thirty browsers (or workers) opening the store do not queue for its lock, nor need a writable disk."""
    rid = store.create_run(tiny_spec(title="kept"))
    monkeypatch.setattr(store_module, "_BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr(store_module, "_BUSY_WINDOW_S", 0.3)
    other = _hold_write_lock(store.db_path)
    try:
        started = time.monotonic()
        opened = RunStore(store.root)
        assert [r.id for r in opened.list_runs()] == [rid]
        assert time.monotonic() - started < 0.25
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_an_older_store_without_a_later_column_is_still_upgraded(store: RunStore) -> None:
    rid = store.create_run(tiny_spec())
    raw = sqlite3.connect(store.db_path, isolation_level=None)
    raw.execute("DROP INDEX runs_owner")
    raw.execute("ALTER TABLE runs DROP COLUMN owner")  # as made before private runs
    raw.close()
    upgraded = RunStore(store.root)
    assert upgraded.get_run(rid).owner is None
    mine = upgraded.create_run(tiny_spec(seed=2), owner="tok")
    assert [r.id for r in upgraded.list_runs(owner="tok", include_unowned=False)] == [mine]


# ---- a full disk ------------------------------------------------------------------------
def _fill(store: RunStore) -> None:
    """Let this thread's connection grow the database no further: SQLite's genuine "disk is full"."""
    c = store._conn()
    pages = c.execute("PRAGMA page_count").fetchone()[0]
    c.execute(f"PRAGMA max_page_count = {pages}")


BIG = {"type": "round", "round": 0, "posterior_samples": np.random.default_rng(0).normal(size=(2000, 2)).tolist()}


def test_a_full_database_is_a_plain_message_and_changes_nothing(store: RunStore) -> None:
    rid = store.create_run(tiny_spec(title="kept"))
    store.set_status(rid, "running")
    store.append_event(rid, {"type": "epoch"})
    _fill(store)
    with pytest.raises(StoreUnavailable) as caught:
        store.append_event(rid, BIG)
    err = caught.value
    assert err.kind == FULL and err.writes_blocked
    assert str(err).startswith(f"The run store at {store.root} is full: the disk has no space left.")
    assert "Free some space" in str(err) and "SBI_STORE_DIR" in str(err) and "can still be viewed" in str(err)
    cause = err.__cause__
    assert isinstance(cause, sqlite3.OperationalError) and cause.sqlite_errorname == "SQLITE_FULL"

    # a transaction of several statements is stored whole or not at all
    with pytest.raises(StoreUnavailable):
        store.finish_run(rid, "failed", message="boom", event=BIG)
    assert not store._conn().in_transaction
    info = store.get_run(rid)
    assert info.status == "running" and info.message is None
    assert [s for s, _ in store.events(rid)] == [1]  # reads keep working
    assert [r.id for r in store.list_runs()] == [rid]

    # the failed writes left no lock behind: another connection writes at once
    elsewhere: list = []
    t = threading.Thread(target=lambda: elsewhere.append(RunStore(store.root).append_event(rid, BIG)))
    t.start()
    t.join(10)
    assert elsewhere == [2]


def test_a_full_disk_while_saving_a_round_is_a_plain_message_and_leaves_no_partial_file(
        store: RunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import sbi_core.store.artifacts as artifacts

    rid = store.create_run(tiny_spec())

    def no_space(f, array, *a, **kw):
        f.write(b"\x93NUMPY half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(artifacts.np, "save", no_space)
    round_result = type("R", (), dict(index=0, posterior=None, theta=np.zeros((4, 2)), x=None,
                                      posterior_samples=None))()
    with pytest.raises(StoreUnavailable) as caught:
        store.save_round(rid, round_result)
    assert caught.value.kind == FULL and f"The run store at {store.root} is full" in str(caught.value)
    assert caught.value.__cause__.errno == errno.ENOSPC
    assert list(store.round_dir(rid, 0).iterdir()) == []  # the half-written file is gone (its space too)
    assert store.round_parameters(rid) == []


def test_a_posterior_that_fails_to_save_on_a_full_disk_is_a_full_store(
        store: RunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch reports a full disk as a RuntimeError without errno: the free space decides."""
    import shutil

    import sbi_core.store.artifacts as artifacts

    rid = store.create_run(tiny_spec())

    class Posterior:
        def save(self, path):
            Path(path).write_bytes(b"PK half")
            raise RuntimeError("[enforce fail at inline_container.cc] . PytorchStreamWriter failed writing file")

    round_result = type("R", (), dict(index=0, posterior=Posterior(), theta=None, x=None,
                                      posterior_samples=None))()
    with pytest.raises(RuntimeError) as caught:  # a disk with room: not a full store, the error stands
        store.save_round(rid, round_result)
    assert not isinstance(caught.value, StoreUnavailable)
    monkeypatch.setattr(artifacts.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 0))
    with pytest.raises(StoreUnavailable) as caught:
        store.save_round(rid, round_result)
    assert caught.value.kind == FULL
    assert list(store.round_dir(rid, 0).iterdir()) == []


@pytest.mark.parametrize("where", ["event", "round files"])
def test_a_worker_that_meets_a_full_disk_ends_failed_with_the_store_message(
        store: RunStore, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    import sbi_core.store.artifacts as artifacts
    from sbi_core.jobs.worker import carry_out

    rid = store.create_run(tiny_spec())
    store.set_status(rid, "running")

    def no_space(f, array, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    def execute(spec, on_event, cancel, on_round, stop):
        on_event({"type": "epoch", "epoch": 0})
        if where == "event":
            _fill(store)  # the worker's own connection (this thread's) may grow the database no further
            on_event(BIG)
        else:
            monkeypatch.setattr(artifacts.np, "save", no_space)
            on_round(type("R", (), dict(index=0, posterior=None, theta=np.zeros((3, 2)), x=None,
                                        posterior_samples=None))())
        raise AssertionError("not reached")

    assert carry_out(store, rid, execute) == "failed"
    info = store.get_run(rid)
    assert info.status == "failed"
    assert info.message.startswith(f"The run store at {store.root} is full")
    assert "StoreUnavailable" in info.detail  # the traceback, for a developer
    last = store.events(rid)[-1][1]
    assert last["type"] == "failed" and last["message"] == info.message
    assert [e["type"] for _, e in store.events(rid)] == ["epoch", "failed"]


# ---- a store that may not be written ---------------------------------------------------------
@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch):
    """Every store connection opened from now on is SQLite ``mode=ro``: writes fail as on a read-only disk."""
    real = store_module._open_connection
    monkeypatch.setattr(store_module, "_open_connection", lambda db, root: real(db, root, read_only=True))


def test_a_read_only_store_opens_reads_and_says_plainly_why_it_cannot_write(store: RunStore, read_only) -> None:
    rid = store.create_run(tiny_spec(title="kept"))
    store.append_event(rid, {"type": "epoch"})
    ro = RunStore(store.root)  # opening writes nothing when the schema is current
    assert [r.title for r in ro.list_runs()] == ["kept"]
    assert [s for s, _ in ro.events(rid)] == [1]
    for write in (lambda: ro.create_run(tiny_spec()), lambda: ro.append_event(rid, {"type": "epoch"}),
                  lambda: ro.request_cancel(rid), lambda: ro.delete_run(rid)):
        with pytest.raises(StoreUnavailable) as caught:
            write()
        err = caught.value
        assert err.kind == UNWRITABLE and err.writes_blocked
        assert str(err).startswith(f"The run store at {store.root} cannot be written (read-only")
        assert "SBI_STORE_DIR to a writable folder" in str(err) and "can still be viewed" in str(err)
        assert err.__cause__.sqlite_errorname == "SQLITE_READONLY"
        assert not ro._conn().in_transaction
    assert ro.get_run(rid) is not None and not ro.cancel_requested(rid)


@pytest.mark.parametrize("code, words", [(errno.EROFS, "read-only file system"),
                                         (errno.EACCES, "permission denied")])
def test_an_artifact_folder_that_may_not_be_written_is_a_plain_message(
        store: RunStore, monkeypatch: pytest.MonkeyPatch, code: int, words: str) -> None:
    rid = store.create_run(tiny_spec())

    def refused(self, *a, **kw):
        raise OSError(code, "refused", str(self))

    monkeypatch.setattr(Path, "mkdir", refused)
    with pytest.raises(StoreUnavailable) as caught:
        store.artifact_dir(rid)
    assert caught.value.kind == UNWRITABLE
    assert f"cannot be written ({words} at {store.artifacts_root / rid})" in str(caught.value)


def test_only_faults_of_the_disk_are_translated(tmp_path: Path) -> None:
    assert store_unavailable(OSError(errno.EDQUOT, "Disk quota exceeded"), tmp_path).kind == FULL
    assert store_unavailable(OSError(errno.ENOENT, "No such file"), tmp_path) is None
    assert store_unavailable(sqlite3.IntegrityError("UNIQUE constraint failed"), tmp_path) is None
    assert store_unavailable(sqlite3.OperationalError("no such table: runs"), tmp_path) is None
    assert store_unavailable(ValueError("database or disk is full"), tmp_path) is None
    assert store_unavailable(sqlite3.OperationalError("database or disk is full"), tmp_path).kind == FULL


def test_a_bug_in_a_statement_is_not_dressed_up_as_a_store_fault(store: RunStore) -> None:
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        with store._write() as c:
            c.execute("SELECT * FROM no_such_table")
    assert not store._conn().in_transaction


# ---- the app keeps serving what it has ---------------------------------------------------------
def _app_on(run_id: str | None = None):
    from streamlit.testing.v1 import AppTest

    from sbi_ui import keys as K

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60)
    if run_id:
        at.query_params[K.QP_RUN] = run_id
    return at


def _no_bug(at, where: str) -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"
    bugs = [e.value for e in at.error if "Something went wrong" in str(e.value)]
    assert not bugs, f"{where}: {bugs}"


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def unwritable_app_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A store with two finished runs, then every connection opened from now on read-only (writes fail genuinely).

    The store returned keeps its connection of before, which still writes (to set a test's scene).
    """
    root = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    monkeypatch.setenv("SBI_EXECUTOR", "process")  # no Dask cluster: nothing here gets to run
    store = RunStore(root)
    ids = []
    for title in ("first kept run", "second kept run"):
        rid = store.create_run(tiny_spec(title=title))
        store.finish_run(rid, "cancelled", event={"type": "cancelled", "round": None})
        ids.append(rid)
    real = store_module._open_connection
    monkeypatch.setattr(store_module, "_open_connection", lambda db, r: real(db, r, read_only=True))
    return store, ids


def test_the_runs_page_still_lists_the_runs_of_a_store_that_cannot_be_written(unwritable_app_store) -> None:
    store, ids = unwritable_app_store
    at = _app_on(ids[0])
    at.run()
    at.switch_page("pages/runs.py")
    at.run()
    _no_bug(at, "runs page")
    table = at.dataframe[0].value
    assert sorted(table["title"]) == ["first kept run", "second kept run"]


def test_start_demo_on_a_store_that_cannot_be_written_says_so_plainly(unwritable_app_store) -> None:
    from sbi_ui import keys as K

    store, _ = unwritable_app_store
    at = _app_on()
    at.run()
    at.button(key=K.W_START_DEMO).click()
    at.run()
    _no_bug(at, "after Start demo")
    shown = [e.value.replace("\\", "") for e in at.error]  # user-facing text arrives markdown-escaped
    assert any(f"The run store at {store.root} cannot be written" in m for m in shown), shown
    assert len(store.list_runs()) == 2  # nothing was added


def test_delete_on_a_store_that_cannot_be_written_says_so_plainly(unwritable_app_store) -> None:
    from sbi_ui import keys as K

    store, ids = unwritable_app_store
    at = _app_on(ids[0])
    at.run()
    at.switch_page("pages/runs.py")
    at.run()
    at.checkbox(key=K.w_runs_confirm("delete", ids[0])).check()
    at.run()
    at.button(key=K.W_RUNS_DELETE).click()
    at.run()
    _no_bug(at, "after Delete")
    shown = [m.replace("\\", "") for m in [e.value for e in at.error] + [t.value for t in at.toast]]
    assert any(f"The run store at {store.root} cannot be written" in m for m in shown), shown
    assert store.get_run(ids[0]) is not None  # still there, and still listed
    assert sorted(at.dataframe[0].value["title"]) == ["first kept run", "second kept run"]


def test_a_run_left_running_by_a_dead_worker_does_not_take_the_runs_page_down(unwritable_app_store) -> None:
    """Listing reaps runs whose worker died (a write); on a store that cannot be written it lists them as they are."""
    store, ids = unwritable_app_store
    # left running by a worker that is gone (written through the store's connection opened before the patch)
    store.set_status(ids[0], "running", pid=_dead_pid())
    at = _app_on(ids[1])
    at.run()
    at.switch_page("pages/runs.py")
    at.run()
    _no_bug(at, "runs page")
    assert sorted(at.dataframe[0].value["title"]) == ["first kept run", "second kept run"]


def test_the_owners_page_says_the_disk_is_full_when_a_runs_ending_cannot_be_stored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose Dask task ended while the store's disk was full stays ``running`` in the store until it
    can be written; meanwhile the Train page says why instead of a progress bar that never moves. (The job
    manager's side, ``ending_unrecorded``, is exercised with a real cluster in test_dask_executor.py.)"""
    import os

    from sbi_core.jobs.manager import JobManager

    root = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    monkeypatch.setenv("SBI_EXECUTOR", "process")
    store = RunStore(root)
    rid = store.create_run(tiny_spec(title="filled up"))
    store.set_status(rid, "running", pid=os.getpid())  # its worker lives on (it carries other runs)
    refused = str(StoreUnavailable(store.root, FULL))
    monkeypatch.setattr(JobManager, "ending_unrecorded", lambda self, run_id: refused if run_id == rid else None)
    at = _app_on(rid)
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    _no_bug(at, "train page")
    shown = [e.value.replace("\\", "") for e in at.error]  # the store's message is shown as plain text
    assert any("could not save its results" in m and f"The run store at {store.root} is full: the disk has no "
               "space left" in m and "marked failed as soon as the store can be written again" in m
               for m in shown), shown

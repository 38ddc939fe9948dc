"""Runs on Dask distributed: a local cluster of warm workers, and a real scheduler + worker.

The local-cluster tests share one cluster of one worker (started once, with the
module's own :func:`~sbi_core.jobs.dask_executor.start_local_cluster`); the test that
SIGKILLs its worker runs last among them (the nanny starts a fresh one). The
cluster-mode test starts ``dask scheduler`` and ``dask worker`` as processes on
127.0.0.1 and connects through ``SBI_DASK_SCHEDULER``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from python_child import child_env
from sbi_core.errors import SBIError
from sbi_core.jobs.dask_executor import DaskExecutor, LOST_MESSAGE, SCHEDULER_ENV
from sbi_core.jobs.manager import JobManager
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore, pid_alive

pytestmark = pytest.mark.timeout(120)


def small_spec(**kw) -> RunSpec:
    base = dict(simulator="two_moons", method="snpe", num_rounds=2, simulations_per_round=200, max_epochs=5,
                num_posterior_samples=50)
    base.update(kw)
    return RunSpec(**base)


def wait_for(predicate, timeout: float = 30.0, every: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture(scope="module")
def local_dask():
    """One local cluster of one warm worker for this module's tests."""
    executor = DaskExecutor(n_workers=1)
    executor.client.wait_for_workers(1, timeout=60)
    yield executor
    executor.close()


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "store")


def test_an_unknown_executor_says_what_to_use(store: RunStore, monkeypatch) -> None:
    monkeypatch.setenv("SBI_EXECUTOR", "celery")
    with pytest.raises(SBIError, match="process, dask"):
        JobManager(store)
    monkeypatch.setenv("SBI_EXECUTOR", "dask")
    assert JobManager(store).executor == "dask"  # no cluster is started until a run is
    assert JobManager(store, executor="fake_exec:quick").executor == "process"  # the older meaning
    monkeypatch.delenv("SBI_EXECUTOR")
    assert JobManager(store).executor == "dask"  # the embedded default: warm workers
    assert JobManager(store, executor="process").executor == "process"


@pytest.mark.slow
def test_a_run_on_the_local_cluster_finishes_with_its_rounds(store: RunStore, local_dask: DaskExecutor) -> None:
    allowed = local_dask.client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures)
    assert allowed == 0  # a run whose worker died is never run again behind the user's back
    jm = JobManager(store, executor=local_dask)
    run_id = jm.start(small_spec(), owner="alice")
    info = jm.wait(run_id, timeout=60)
    assert info.status == "done", info.message
    assert info.owner == "alice"
    assert store.rounds_saved(run_id) == [0, 1]
    types = [e["type"] for _, e in store.events(run_id)]
    assert types[0] == "run_started" and types[-1] == "done" and "epoch" in types
    assert store.worker_process(run_id)[0] in set(local_dask.worker_pids().values())


@pytest.mark.slow
def test_workers_are_warm_and_one_of_them_measures_the_deferred_c2sts(local_dask: DaskExecutor) -> None:
    """A worker has built torch's first optimizer before its first run (torch._dynamo, imported then, costs
    about a second), and the deferred C2STs go to one worker (the first by address), loosely."""
    assert all(local_dask.client.run(lambda: "torch._dynamo" in sys.modules).values())
    workers = sorted(local_dask.client.scheduler_info()["workers"])
    assert local_dask._measuring_worker() == workers[:1]


def test_a_process_spawned_from_the_app_runs_none_of_it(tmp_path) -> None:
    """multiprocessing's spawn runs the server's main module -- app.py under ``streamlit run`` -- again in each
    Dask worker, as ``__mp_main__``: there it must draw no page and load no UI (it once ran the Home page in
    every worker, 100 MB of Streamlit, plotly and pandas each)."""
    code = ("import runpy, sys; runpy.run_path(sys.argv[1], run_name='__mp_main__'); "
            "print(sorted(m for m in ('streamlit', 'plotly', 'sbi_ui', 'sbi_ui.preload') if m in sys.modules))")
    app = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.py")
    out = subprocess.run([sys.executable, "-c", code, app], cwd=tmp_path, env=child_env(os.environ.copy()),
                         capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_queued_runs_cost_no_process_and_all_finish(store: RunStore, local_dask: DaskExecutor) -> None:
    jm = JobManager(store, executor=local_dask)
    before = descendants()
    ids = [jm.start(small_spec(num_rounds=1, seed=i)) for i in range(4)]
    assert descendants() <= before  # no process started for a queued run
    queued = [rid for rid in ids if store.get_run(rid).status == "queued"]
    assert len(queued) >= 2  # one worker: the others wait as tasks, held by this process
    # read each holder, then keep the runs still queued after that read: a queued run may start on the
    # worker between the two reads of the store (CI met it), and then its holder is the worker
    held = {rid: store.worker_process(rid)[0] for rid in queued}
    still = [rid for rid in queued if store.get_run(rid).status == "queued"]
    assert all(held[rid] == os.getpid() for rid in still)
    assert jm.queue_position(ids[-1]) is not None
    assert jm.cancel(ids[-1]).status == "cancelled"  # queued: at once, its task dropped
    for rid in ids[:-1]:
        assert jm.wait(rid, timeout=60).status == "done"
    assert descendants() <= before
    assert store.get_run(ids[-1]).status == "cancelled"
    assert wait_for(lambda: not local_dask.pending(), timeout=10)


@pytest.mark.slow
def test_checks_wait_for_their_run_then_run_on_the_cluster_without_a_process(store: RunStore,
                                                                             local_dask: DaskExecutor) -> None:
    """Checks started while their run is queued do not hold the one worker the run needs."""
    jm = JobManager(store, executor=local_dask)
    before = descendants()
    rid = jm.start(small_spec(num_rounds=1, method="npe"))
    check = jm.start_checks(rid, {"num_datasets": 40, "num_posterior_samples": 30})
    assert check.status == "queued" and store.check_worker_process(rid)[0] == os.getpid()
    assert jm.wait(rid, timeout=60).status == "done"
    done = jm.wait_checks(rid, timeout=120)
    assert done.status == "done", (done.message, done.detail)
    assert store.check_worker_process(rid)[0] in set(local_dask.worker_pids().values())
    assert descendants() <= before  # no check worker process was started


@pytest.mark.slow
def test_one_run_per_owner_on_the_cluster_the_next_waits_its_turn(store: RunStore, local_dask: DaskExecutor) -> None:
    """Owner a's second run is held back (queued, with its place) until a's first run ends."""
    jm = JobManager(store, executor=local_dask)
    a1 = jm.start(small_spec(num_rounds=1, seed=1), owner="a")
    a2 = jm.start(small_spec(num_rounds=1, seed=2), owner="a")
    b1 = jm.start(small_spec(num_rounds=1, seed=3), owner="b")
    assert jm.held() == [a2] and store.get_run(a2).status == "queued"
    assert jm.queue_position(a2) is not None
    for rid in (a1, a2, b1):
        assert jm.wait(rid, timeout=90).status == "done"
    first, second = store.get_run(a1), store.get_run(a2)
    assert second.started >= first.finished  # never both on the cluster at once
    assert jm.held() == []


@pytest.mark.slow
def test_cancel_stops_a_dask_run_between_epochs(store: RunStore, local_dask: DaskExecutor) -> None:
    jm = JobManager(store, executor=local_dask)
    run_id = jm.start(small_spec(max_epochs=40, patience=40, simulations_per_round=300))
    wait_for(lambda: store.events(run_id, types=["epoch"]), timeout=60)
    pid = store.worker_process(run_id)[0]
    jm.cancel(run_id)
    assert jm.wait(run_id, timeout=10).status == "cancelled"
    assert local_dask.worker_pids() and pid in set(local_dask.worker_pids().values())  # not killed


@pytest.mark.slow
def test_stop_and_keep_ends_a_dask_run_done_with_what_is_trained(store: RunStore, local_dask: DaskExecutor) -> None:
    jm = JobManager(store, executor=local_dask)
    run_id = jm.start(small_spec(max_epochs=40, patience=40, simulations_per_round=300))
    wait_for(lambda: any(e.get("round", 0) >= 1 for _, e in store.events(run_id, types=["epoch"])), timeout=60)
    jm.stop(run_id)
    assert jm.wait(run_id, timeout=15).status == "done"
    assert store.last_event(run_id, ["done"])[1]["stopped_by_request"] is True
    assert store.rounds_saved(run_id) == [0, 1]


STUBBORN = """
import time
from pathlib import Path

from sbi_core.run.loop import execute as real_execute

ENDED = Path(__file__).with_name("stubborn_ended")
RELEASE = Path(__file__).with_name("stubborn_release")  # the test lets it end (60 s at most)


def stubborn_or_real(spec, on_event=None, cancel=None, on_round=None, stop=None, **kw):
    if spec.title != "stubborn":
        return real_execute(spec, on_event=on_event, cancel=cancel, on_round=on_round, stop=stop, **kw)
    from distributed import secede

    on_event({"type": "run_started", "time": time.time(), "spec": spec.to_dict(), "num_rounds": 1})
    secede()  # like a run fanning out its simulations: the worker takes the next task meanwhile
    end = time.monotonic() + 60
    while time.monotonic() < end and not RELEASE.exists():  # never looks at cancel()
        time.sleep(0.05)
    on_event({"type": "epoch", "round": 0, "epoch": 0, "time": time.time()})
    ENDED.write_text("ended")
"""


@pytest.mark.slow
def test_a_run_that_ignores_its_cancel_never_stops_another_owners_run_on_its_worker(
        store: RunStore, local_dask: DaskExecutor, tmp_path) -> None:
    """Two owners on one worker: the first's run ignores its cancel past the grace time. It is recorded
    cancelled at once, its worker is not killed, the second's run finishes done, and what the first
    run's task does afterwards is discarded."""
    fake = tmp_path / "dask_stubborn_exec.py"
    fake.write_text(STUBBORN)
    local_dask.client.upload_file(str(fake))  # importable on the workers
    ended, release = next(iter(local_dask.client.run(
        lambda: [str(__import__("dask_stubborn_exec").ENDED), str(__import__("dask_stubborn_exec").RELEASE)]).values()))
    jm = JobManager(store, executor=local_dask, execute="dask_stubborn_exec:stubborn_or_real", cancel_grace_s=1.0)
    first = jm.start(small_spec(title="stubborn"), owner="ann")
    wait_for(lambda: store.events(first, types=["run_started"]), timeout=30)
    worker_pid, worker_start = store.worker_process(first)
    second = jm.start(small_spec(num_rounds=1, seed=7), owner="ben")
    wait_for(lambda: store.get_run(second).status == "running", timeout=30)
    assert store.worker_process(second)[0] == worker_pid  # the same worker carries both

    jm.cancel(first)
    info = jm.wait(first, timeout=30)
    assert info.status == "cancelled"
    assert not os.path.exists(ended)  # recorded while its task still runs: the owner may start another
    assert pid_alive(worker_pid, worker_start)  # the shared worker was not killed

    done = jm.wait(second, timeout=90)
    assert done.status == "done", done.message
    assert pid_alive(worker_pid, worker_start)
    assert not os.path.exists(ended)  # the first run's task still runs, past its cancel ...
    Path(release).write_text("go")
    wait_for(lambda: os.path.exists(ended), timeout=60)  # ... to its end ...
    time.sleep(1.0)
    assert store.get_run(first).status == "cancelled"  # ... and changed nothing
    assert [e["type"] for _, e in store.events(first)] == ["run_started", "cancelled"]
    assert set(local_dask.worker_pids().values()) == {worker_pid}


HANGING_MODEL = b"""
import time
import numpy as np


def simulate(theta):
    time.sleep(60)  # far past Cancel's grace time (the sandbox's own timeout is set longer still)
    return np.zeros(2)
"""


@pytest.mark.slow
def test_stopping_a_runs_processes_kills_its_own_sandbox_and_nothing_else() -> None:
    """What the job manager runs on each worker when a run ignores its cancel: that run's uploaded
    simulator's sandbox is killed (its request in progress fails at once, no new one starts); the
    sandbox of another run in the same worker process goes on; the worker itself is not touched."""
    import threading

    import numpy as np

    from sbi_core.jobs.dask_executor import sandbox_label, stop_run_processes
    from sbi_core.sandbox.runner import Limits, SandboxRunner, SimulatorError, owned_by

    limits = Limits(timeout=120.0)
    with owned_by(sandbox_label("run-a")):
        mine = SandboxRunner(HANGING_MODEL, "hang.py", limits, trusted=True)
    with owned_by(sandbox_label("run-b")):
        other = SandboxRunner(HANGING_MODEL, "hang.py", limits, trusted=True)
    try:
        mine.start()
        other.start()
        outcome: list = []

        def simulate() -> None:
            try:
                mine.request({"cmd": "simulate", "mode": "batched", "k": 2, "seed": 0, "index": 0},
                             np.zeros((1, 2)), expect_k=2)
                outcome.append("returned")
            except SimulatorError as err:
                outcome.append(err)

        caller = threading.Thread(target=simulate, daemon=True)
        caller.start()
        time.sleep(1.0)  # the request is in progress: the upload sleeps in simulate
        mine_pid, other_pid = mine.pid, other.pid
        assert stop_run_processes(sandbox_label("run-a")) == 1
        caller.join(20)
        assert not caller.is_alive() and isinstance(outcome[0], SimulatorError)  # at once, not at the timeout
        assert not pid_alive(mine_pid)
        with pytest.raises(SimulatorError, match="its run was cancelled"):
            mine.request({"cmd": "simulate", "mode": "batched", "k": 2, "seed": 0, "index": 0}, np.zeros((1, 2)))
        assert other.alive and other.pid == other_pid  # another run's sandbox goes on
        assert stop_run_processes(sandbox_label("run-c")) == 0
    finally:
        mine.close()
        other.close()


STUBBORN_CHECKS = """
import time
from pathlib import Path

import sbi_core.checks.compute as compute

ENDED = Path(__file__).with_name("stubborn_checks_ended")
RELEASE = Path(__file__).with_name("stubborn_checks_release")  # the test lets it end (60 s at most)
_REAL = compute.run_checks


def stubborn(store, run_id, options, on_progress=None, cancel=None):
    on_progress(0.1, "Being stubborn")
    end = time.monotonic() + 60
    while time.monotonic() < end and not RELEASE.exists():  # never looks at cancel()
        time.sleep(0.05)
    on_progress(0.9, "Still stubborn")
    ENDED.write_text("ended")
    return _REAL(store, run_id, options, on_progress=on_progress, cancel=cancel)


def install():
    compute.run_checks = stubborn
    return [str(ENDED), str(RELEASE)]


def uninstall():
    compute.run_checks = _REAL
    return True
"""


@pytest.mark.slow
def test_checks_that_ignore_their_cancel_are_cancelled_without_killing_their_worker(
        store: RunStore, local_dask: DaskExecutor, tmp_path) -> None:
    module = tmp_path / "dask_stubborn_checks.py"
    module.write_text(STUBBORN_CHECKS)
    local_dask.client.upload_file(str(module))
    jm = JobManager(store, executor=local_dask, cancel_grace_s=1.0)
    rid = jm.start(small_spec(num_rounds=1, method="npe"))
    assert jm.wait(rid, timeout=60).status == "done"
    try:
        ended, release = next(iter(local_dask.client.run(lambda: __import__("dask_stubborn_checks").install()).values()))
        jm.start_checks(rid, {"num_datasets": 20, "num_posterior_samples": 20})
        wait_for(lambda: store.get_check(rid).step == "Being stubborn", timeout=60)
        worker_pid, worker_start = store.check_worker_process(rid)
        jm.cancel_checks(rid)
        assert wait_for(lambda: store.get_check(rid).is_terminal, timeout=30)
        assert store.get_check(rid).status == "cancelled"
        assert not os.path.exists(ended)  # recorded while its task still runs
        assert pid_alive(worker_pid, worker_start)  # the shared worker was not killed
        Path(release).write_text("go")  # now the stubborn checks may end
        wait_for(lambda: os.path.exists(ended), timeout=60)
        time.sleep(1.0)
        check = store.get_check(rid)
        assert check.status == "cancelled" and check.step == "Being stubborn"  # its later doings discarded
        assert pid_alive(worker_pid, worker_start)
    finally:
        local_dask.client.run(lambda: __import__("dask_stubborn_checks").uninstall())


DISK = """
'''Test only: the disk holding the run store is full for every store connection of this process.

While the file FLAG exists, each write transaction first sets its connection's
PRAGMA max_page_count to the database's size, then must grow the database by more
than its free pages: SQLite refuses with its genuine SQLITE_FULL ("database or disk
is full"), as on a full disk, which the store reports as StoreUnavailable.
'''
import os
import sqlite3
from contextlib import contextmanager

import sbi_core.store.db as store_db

FLAG = None
_REAL = store_db.SQLiteStore._write
_UNLIMITED = sqlite3.connect(":memory:").execute("PRAGMA max_page_count").fetchone()[0]


@contextmanager
def _write(self):
    full = FLAG is not None and os.path.exists(FLAG)
    c = self._conn()
    pages = c.execute("PRAGMA page_count").fetchone()[0] if full else _UNLIMITED
    c.execute(f"PRAGMA max_page_count = {pages}")
    with _REAL(self) as c:
        if full:
            size = c.execute("PRAGMA page_size").fetchone()[0]
            free = c.execute("PRAGMA freelist_count").fetchone()[0]
            c.execute("INSERT INTO disk_filler VALUES (zeroblob(?))", ((free + 2) * size,))
        yield c


def install(flag, store_root):
    global FLAG
    from sbi_core.store.runs import RunStore

    FLAG = flag
    store_db.SQLiteStore._write = _write
    store = RunStore(store_root)
    with _REAL(store) as c:
        c.execute("CREATE TABLE IF NOT EXISTS disk_filler (b BLOB)")
    return True


def uninstall():
    global FLAG
    FLAG = None
    store_db.SQLiteStore._write = _REAL
    return True
"""


@pytest.mark.slow
def test_a_run_whose_store_fills_up_ends_failed_plainly_once_space_is_freed(
        store: RunStore, local_dask: DaskExecutor, tmp_path) -> None:
    """The store's disk fills while a run trains: the task cannot save, nor can its ending be recorded.
    The owner's manager says the disk is full; once space is freed the run ends failed with a plain
    message (by its task's state: its worker lives on), within 30 s, without anyone asking."""
    import importlib.util

    from sbi_core.jobs.dask_executor import STORE_FULL_MESSAGE

    module = tmp_path / "dask_full_disk.py"
    module.write_text(DISK)
    flag = tmp_path / "disk_is_full"
    spec = importlib.util.spec_from_file_location("dask_full_disk_here", module)
    here = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(here)
    local_dask.client.upload_file(str(module))
    try:
        assert all(local_dask.client.run(lambda f, r: __import__("dask_full_disk").install(f, r),
                                         str(flag), str(store.root)).values())
        here.install(str(flag), str(store.root))
        jm = JobManager(store, executor=local_dask)
        rid = jm.start(small_spec(num_rounds=1, max_epochs=400, patience=400, simulations_per_round=300),
                       owner="ann")
        wait_for(lambda: store.events(rid, types=["epoch"]), timeout=60)
        worker_pid, worker_start = store.worker_process(rid)

        flag.write_text("full")
        refused = wait_for(lambda: jm.ending_unrecorded(rid), timeout=60)
        assert f"The run store at {store.root} is full: the disk has no space left" in refused
        assert jm.status(rid).status == "running"  # nothing can be written yet
        assert pid_alive(worker_pid, worker_start)  # the worker lives on, for other runs

        flag.unlink()  # space is freed
        info = wait_for(lambda: (lambda i: i if i.is_terminal else None)(store.get_run(rid)), timeout=30)
        assert info.status == "failed"
        assert info.message == STORE_FULL_MESSAGE
        assert [e["type"] for _, e in store.events(rid)].count("failed") == 1
        assert jm.ending_unrecorded(rid) is None
        assert pid_alive(worker_pid, worker_start)
    finally:
        here.uninstall()
        local_dask.client.run(lambda: __import__("dask_full_disk").uninstall())


@pytest.mark.slow
def test_a_killed_worker_fails_its_run_plainly_keeps_its_rounds_and_resumes(store: RunStore,
                                                                   local_dask: DaskExecutor) -> None:
    jm = JobManager(store, executor=local_dask)
    run_id = jm.start(small_spec(max_epochs=40, patience=40, simulations_per_round=300))

    def training_round_two():
        return any(e.get("round", 0) >= 1 for _, e in store.events(run_id, types=["epoch"]))

    wait_for(training_round_two, timeout=60)
    pid = store.worker_process(run_id)[0]
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    info = jm.wait(run_id, timeout=30)
    assert time.monotonic() - killed < 30
    assert info.status == "failed"
    assert info.message == LOST_MESSAGE
    assert store.rounds_saved(run_id) == [0]  # the finished round stays viewable
    time.sleep(1.0)  # the scheduler hears of the death too: the task is not run again
    assert store.get_run(run_id).status == "failed"
    assert [e["type"] for _, e in store.events(run_id)].count("failed") == 1
    # Resume: the same run goes on from round 2 on the nanny's fresh worker
    local_dask.client.wait_for_workers(1, timeout=180)  # a new worker process: slow on a busy 2-core machine
    assert jm.resume(run_id) == 1
    info = jm.wait(run_id, timeout=90)
    assert info.status == "done", info.message
    assert [e["round"] for _, e in store.events(run_id, types=["round"])] == [0, 1]
    assert [e["type"] for _, e in store.events(run_id)].count("failed") == 0


# ---- cluster mode: real `dask scheduler` and `dask worker` processes -------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask_cli(*args: str, env: dict) -> subprocess.Popen:
    """``dask <args>`` (the ``dask`` command of this interpreter) in its own session."""
    return subprocess.Popen([sys.executable, "-m", "dask", *args],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _end(proc: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)  # its own session: the worker's nanny and its child too
        except OSError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture
def dask_cluster_processes():
    """``dask scheduler`` and ``dask worker`` (preloading sbi_core.jobs.dask_executor) on 127.0.0.1."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    env = child_env(DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0")
    procs = []
    try:
        procs.append(_dask_cli("scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                               "--no-dashboard", env=env))
        procs.append(_dask_cli("worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1",
                               "--no-dashboard", "--preload", "sbi_core.jobs.dask_executor", env=env))
        yield address
    finally:
        for proc in reversed(procs):
            _end(proc)


@pytest.mark.slow
def test_cluster_mode_runs_on_real_scheduler_and_worker_processes(store: RunStore, dask_cluster_processes: str,
                                                                 monkeypatch) -> None:
    monkeypatch.setenv(SCHEDULER_ENV, dask_cluster_processes)
    jm = JobManager(store, executor="dask")
    executor = jm.dask()
    try:
        assert executor.address == dask_cluster_processes
        executor.client.wait_for_workers(1, timeout=60)
        run_id = jm.start(small_spec(num_rounds=1))
        info = jm.wait(run_id, timeout=60)
        assert info.status == "done", info.message
        assert store.rounds_saved(run_id) == [0]
        assert store.worker_process(run_id)[0] in set(executor.worker_pids().values())
    finally:
        executor.close()

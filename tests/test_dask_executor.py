"""Runs on Dask distributed: a local cluster of warm workers, and a real scheduler + worker.

The local-cluster tests share one cluster of one worker (started once, with the
module's own :func:`~sbi_core.dask_executor.start_local_cluster`); the test that
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

import psutil
import pytest

from sbi_core.dask_executor import LOST_MESSAGE, SCHEDULER_ENV, DaskExecutor
from sbi_core.errors import SBIError
from sbi_core.jobs import JobManager
from sbi_core.spec import RunSpec
from sbi_core.store import RunStore, pid_alive

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
def test_queued_runs_cost_no_process_and_all_finish(store: RunStore, local_dask: DaskExecutor) -> None:
    jm = JobManager(store, executor=local_dask)
    before = descendants()
    ids = [jm.start(small_spec(num_rounds=1, seed=i)) for i in range(4)]
    assert descendants() <= before  # no process started for a queued run
    queued = [rid for rid in ids if store.get_run(rid).status == "queued"]
    assert len(queued) >= 2  # one worker: the others wait as tasks, held by this process
    assert all(store.worker_process(rid)[0] == os.getpid() for rid in queued)
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
def stubborn(spec, on_event=None, cancel=None, on_round=None):
    on_event({"type": "run_started", "time": time.time(), "spec": spec.to_dict(), "num_rounds": 1})
    time.sleep(60)  # never looks at cancel()
"""


@pytest.mark.slow
def test_a_dask_run_that_ignores_its_cancel_has_its_worker_killed(store: RunStore, local_dask: DaskExecutor,
                                                                 tmp_path) -> None:
    fake = tmp_path / "dask_fake_exec.py"
    fake.write_text(STUBBORN)
    local_dask.client.upload_file(str(fake))  # importable on the workers
    jm = JobManager(store, executor=local_dask, execute="dask_fake_exec:stubborn", cancel_grace_s=1.0)
    run_id = jm.start(small_spec())
    wait_for(lambda: store.events(run_id, types=["run_started"]), timeout=30)
    pid, start = store.worker_process(run_id)
    jm.cancel(run_id)
    info = jm.wait(run_id, timeout=15)
    assert info.status == "cancelled"
    assert not pid_alive(pid, start)
    local_dask.client.wait_for_workers(1, timeout=60)  # the nanny starts a fresh worker

    def fresh_worker() -> bool:  # the scheduler may list the killed worker a while longer on a busy machine
        try:
            pids = set(local_dask.worker_pids().values())
        except Exception:  # noqa: BLE001 - a worker that went away during the call: ask again
            return False
        return bool(pids) and pid not in pids

    assert wait_for(fresh_worker, timeout=75, every=0.5)


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
    local_dask.client.wait_for_workers(1, timeout=60)
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
    """``dask scheduler`` and ``dask worker`` (preloading sbi_core.dask_executor) on 127.0.0.1."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    procs = []
    try:
        procs.append(_dask_cli("scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                               "--no-dashboard", env=env))
        procs.append(_dask_cli("worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1",
                               "--no-dashboard", "--preload", "sbi_core.dask_executor", env=env))
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

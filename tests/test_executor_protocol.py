"""The job manager talks to its executor only through the :class:`~sbi_core.jobs.executor.Executor` protocol.

A small in-process executor (:class:`FakeExecutor`: jobs are held by the test's own process and
start when the test says so) carries a run and its checks through the manager's one lifecycle --
start, follow, cancel (queued and running), reap, delete -- and logs every call it gets, so each
test sees both what the store records and which protocol operation did it. The two real
executors (worker processes, Dask tasks) are checked to satisfy the protocol; their behaviour is
tested in test_jobs.py, test_dask_executor.py and test_checks.py.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Optional

import pytest

from sbi_core.events import cancelled_event
from sbi_core.jobs.dask_executor import DaskExecutor, DaskTaskExecutor
from sbi_core.jobs.executor import CHECKS, RUN, Executor, JobKind
from sbi_core.jobs.manager import JobManager
from sbi_core.jobs.process_executor import WorkerProcessExecutor
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore

pytestmark = pytest.mark.timeout(60)

LOST = "The fake executor lost this job."


class FakeExecutor:
    """An executor whose jobs are held by this process and run only when :meth:`begin` is called.

    It keeps the protocol's promises with the store: ``submit`` records this process as the holder,
    ``enforce_cancel`` records a job that ignored its cancel ``cancelled``, ``reap`` records the jobs
    :meth:`die` marked lost ``failed``. Every call is logged as ``(operation, kind name, run id)``.
    """

    name = "fake"

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.calls: list[tuple] = []
        self.dead: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def _log(self, operation: str, kind: Optional[JobKind] = None, run_id: Optional[str] = None) -> None:
        with self._lock:
            self.calls.append((operation, kind.name if kind is not None else None, run_id))

    def logged(self, operation: str) -> list[tuple]:
        with self._lock:
            return [call for call in self.calls if call[0] == operation]

    # what the test does to a job
    def begin(self, kind: JobKind, run_id: str) -> None:
        """The job takes a slot and runs (held by this process)."""
        claim = self.store.claim_slot if kind is RUN else self.store.claim_check_slot
        assert claim(run_id, os.getpid(), 1 << 30)

    def die(self, kind: JobKind, run_id: str) -> None:
        """What carries the job is gone, without recording an ending."""
        self.dead.add((kind.name, run_id))

    # the protocol
    def submit(self, kind: JobKind, run_id: str, spec: Any) -> None:
        self._log("submit", kind, run_id)
        kind.set_holder(self.store, run_id, os.getpid())

    def alive(self, kind: JobKind, run_id: str) -> Optional[bool]:
        self._log("alive", kind, run_id)
        return (kind.name, run_id) not in self.dead

    def release(self, kind: JobKind, run_id: str) -> None:
        self._log("release", kind, run_id)

    def enforce_cancel(self, kind: JobKind, run_id: str, grace_s: float) -> None:
        self._log("enforce_cancel", kind, run_id)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            job = kind.record(self.store, run_id)
            if job is None or job.is_terminal:
                return
            time.sleep(0.02)
        kind.finish(self.store, run_id, "cancelled", only_from=("running",))

    def end_now(self, kind: JobKind, run_id: str, job: Any) -> None:
        self._log("end_now", kind, run_id)
        kind.finish(self.store, run_id, "cancelled")

    def discard(self, run_id: str) -> None:
        self._log("discard", None, run_id)

    def collect(self) -> None:
        pass  # nothing started here to collect

    def reap(self, kind: JobKind) -> None:
        self._log("reap", kind, None)
        for name, run_id in sorted(self.dead):
            if name == kind.name:
                kind.finish(self.store, run_id, "failed", message=LOST)

    def unrecorded(self, kind: JobKind, run_id: str) -> Optional[str]:
        return None

    def held(self) -> list[str]:
        return []

    def slots(self) -> int:
        return 1


def tiny_spec(seed: int = 0) -> RunSpec:
    return RunSpec(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=300, max_epochs=3,
                   num_posterior_samples=50, seed=seed)


def types_of(store: RunStore, run_id: str) -> list[str]:
    return [e["type"] for _, e in store.events(run_id)]


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "store")


@pytest.fixture
def fake(store: RunStore) -> FakeExecutor:
    return FakeExecutor(store)


def test_the_fake_satisfies_the_protocol_and_the_manager_uses_it_as_given(store, fake) -> None:
    assert isinstance(fake, Executor)
    jm = JobManager(store, executor=fake)
    assert jm.backend is fake
    assert jm.executor == "fake"
    assert jm.dask() is None  # no cluster behind this executor
    assert jm.held() == [] and jm.ending_unrecorded("000000000000") is None


def test_a_run_submitted_then_cancelled_ends_cancelled_through_the_protocol(store, fake) -> None:
    """A queued run is cancelled at once and released; a running one that ignores its cancel is ended
    by the executor's enforce_cancel after the grace time. Both end with one ``cancelled`` event."""
    jm = JobManager(store, executor=fake, cancel_grace_s=0.3)
    queued = jm.start(tiny_spec(seed=1))
    running = jm.start(tiny_spec(seed=2))
    assert fake.logged("submit") == [("submit", "run", queued), ("submit", "run", running)]
    assert store.worker_process(queued)[0] == os.getpid()  # the executor recorded the holder
    fake.begin(RUN, running)
    assert jm.status(running).status == "running"
    assert ("alive", "run", running) in fake.logged("alive")

    assert jm.cancel(queued).status == "cancelled"
    assert fake.logged("release") == [("release", "run", queued)]
    assert types_of(store, queued) == ["cancelled"]

    assert jm.cancel(running).status == "running"  # asked; it has the grace time to stop by itself
    info = jm.wait(running, timeout=10, poll_s=0.02)
    assert info.status == "cancelled" and info.cancel_requested
    assert fake.logged("enforce_cancel") == [("enforce_cancel", "run", running)]
    assert types_of(store, running).count("cancelled") == 1
    assert fake.logged("release") == [("release", "run", queued)]  # a running job is never "released"
    assert jm.cancel(running).status == "cancelled"  # an ended run is left alone
    assert len(fake.logged("enforce_cancel")) == 1


def test_a_run_that_stops_by_itself_within_the_grace_time_is_not_ended_again(store, fake) -> None:
    jm = JobManager(store, executor=fake, cancel_grace_s=5.0)
    rid = jm.start(tiny_spec())
    fake.begin(RUN, rid)
    jm.cancel(rid)
    store.finish_run(rid, "cancelled", event=cancelled_event())  # the run saw its flag
    assert jm.wait(rid, timeout=10, poll_s=0.02).status == "cancelled"
    assert types_of(store, rid) == ["cancelled"]


def test_a_run_whose_carrier_died_is_reaped_through_the_executor(store, fake) -> None:
    jm = JobManager(store, executor=fake)
    rid = jm.start(tiny_spec())
    fake.begin(RUN, rid)
    assert jm.status(rid).status == "running"
    fake.die(RUN, rid)
    info = jm.status(rid)
    assert info.status == "failed" and info.message == LOST
    assert ("reap", "run", None) in fake.calls
    assert types_of(store, rid) == ["failed"]


def test_checks_go_through_the_same_lifecycle(store, fake) -> None:
    """Checks start, are cancelled while queued (released) and while running (enforced), and are
    waited for, with the same protocol calls as a run, only with the ``checks`` kind."""
    jm = JobManager(store, executor=fake, cancel_grace_s=0.3)
    rid = jm.start(tiny_spec())
    fake.begin(RUN, rid)
    store.finish_run(rid, "done")

    assert jm.start_checks(rid).status == "queued"
    assert fake.logged("submit")[-1] == ("submit", "checks", rid)
    assert store.check_worker_process(rid)[0] == os.getpid()
    assert jm.cancel_checks(rid).status == "cancelled"
    assert fake.logged("release") == [("release", "checks", rid)]

    jm.start_checks(rid)
    fake.begin(CHECKS, rid)
    assert jm.check_status(rid).status == "running"
    assert jm.cancel_checks(rid).status == "running"
    assert jm.wait_checks(rid, timeout=10, poll_s=0.02).status == "cancelled"
    assert fake.logged("enforce_cancel") == [("enforce_cancel", "checks", rid)]
    assert store.get_run(rid).status == "done"  # the run itself is untouched

    jm.start_checks(rid)
    fake.begin(CHECKS, rid)
    fake.die(CHECKS, rid)
    lost = jm.check_status(rid)
    assert lost.status == "failed" and lost.message == LOST


def test_deleting_ends_the_active_checks_then_the_run_through_the_executor(store, fake) -> None:
    jm = JobManager(store, executor=fake)
    rid = jm.start(tiny_spec())
    fake.begin(RUN, rid)
    store.create_check(rid, {})
    jm.delete(rid)
    assert [c for c in fake.calls if c[0] in ("end_now", "discard")] == [
        ("end_now", "checks", rid), ("end_now", "run", rid), ("discard", None, rid)]
    assert store.get_run(rid) is None and store.get_check(rid) is None


def test_a_missing_job_says_so_when_waited_for(store, fake) -> None:
    jm = JobManager(store, executor=fake)
    with pytest.raises(KeyError, match="no run"):
        jm.wait("000000000000", timeout=1)
    rid = jm.start(tiny_spec())
    with pytest.raises(KeyError, match="no checks for run"):
        jm.wait_checks(rid, timeout=1)
    with pytest.raises(TimeoutError, match=f"run {rid} still queued"):
        jm.wait(rid, timeout=0.1, poll_s=0.02)


def test_both_real_executors_satisfy_the_protocol(store) -> None:
    """Worker processes and Dask tasks are Executors; a Dask cluster connection (DaskExecutor) is not
    one, it is what a Dask task executor runs on. Nothing here starts a process or a cluster."""
    processes = WorkerProcessExecutor(store, max_running=1, threads_per_run=1)
    tasks = DaskTaskExecutor(store)
    assert isinstance(processes, Executor) and processes.name == "process"
    assert isinstance(tasks, Executor) and tasks.name == "dask"
    cluster = DaskExecutor(n_workers=1)  # connects on first use only
    assert not isinstance(cluster, Executor)

    assert isinstance(JobManager(store, executor="process").backend, WorkerProcessExecutor)
    assert isinstance(JobManager(store, executor="dask").backend, DaskTaskExecutor)
    on_cluster = JobManager(store, executor=cluster)
    assert isinstance(on_cluster.backend, DaskTaskExecutor) and on_cluster.dask() is cluster
    assert JobManager(store, executor="process").dask() is None
    assert cluster._client is None  # building managers started no cluster

"""Checks started while their runs train wait in one shared thread of the app's process, not one thread
per run (issue 19, point 7: a class of 30 must stay far below the process's thread limit)."""

from __future__ import annotations

import threading
import time

import pytest

from sbi_core.jobs import dask_checks
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore

pytestmark = pytest.mark.timeout(120)


class _Future:
    def __init__(self, key):
        self.key = key

    def add_done_callback(self, fn):
        self.callback = fn


class _Client:
    def __init__(self):
        self.submitted = []
        self.lock = threading.Lock()

    def submit(self, fn, root, run_id, key, pure):
        with self.lock:
            self.submitted.append(run_id)
        return _Future(key)


class _Executor:
    def __init__(self):
        self.client = _Client()


def _wait(predicate, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _checks_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("checks-")]


def test_thirty_waiting_checks_share_one_thread(tmp_path):
    store = RunStore(tmp_path / "store")
    executor = _Executor()
    spec = RunSpec(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=200)
    runs = [store.create_run(spec) for _ in range(30)]
    for rid in runs:
        store.set_status(rid, "running")
        store.create_check(rid, {})
        dask_checks.submit_checks_when_trained(executor, store, rid)
    assert dask_checks.waiting_checks() == 30
    assert _checks_threads() == ["checks-waiter"]  # one, not one per run
    time.sleep(3 * dask_checks._POLL_S)
    assert executor.client.submitted == []  # nothing goes out while the runs train

    for rid in runs[:10]:
        store.finish_run(rid, "done")
    store.finish_check(runs[10], "cancelled")  # cancelled while it waited: never submitted
    assert _wait(lambda: len(executor.client.submitted) == 10), executor.client.submitted
    assert sorted(executor.client.submitted) == sorted(runs[:10])
    assert _wait(lambda: dask_checks.waiting_checks() == 19)

    for rid in runs[11:]:
        store.finish_run(rid, "done")
    assert _wait(lambda: dask_checks.waiting_checks() == 0 and not _checks_threads())  # the waiter ends
    assert sorted(executor.client.submitted) == sorted(runs[:10] + runs[11:])
    store.close()

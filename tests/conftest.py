"""Test-wide settings: a bounded torch thread count and a temporary run store."""

import os

import numpy as np
import pytest
import torch

# One torch thread in the test process: the small networks here gain little
# from a second thread, and worker processes started by the tests (jobs,
# browser) need the other core; oversubscribed torch threads spin and slow
# every training down by an order of magnitude.
torch.set_num_threads(1)

# One Dask worker for every app server a test starts (the app's default is one per core): the
# suite runs several servers at once on two cores, and each worker imports torch.
os.environ.setdefault("SBI_DASK_WORKERS", "1")


@pytest.fixture(autouse=True)
def _same_global_rng_state_for_every_test():
    """Every test starts from the same global torch and numpy RNG state.

    A test that draws without its own generator then gives the same result on
    its own, in the full suite and in any order (library code never reseeds
    global state; only the tests do, here).
    """
    torch.manual_seed(20261126)
    np.random.seed(20261126)


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    """A fresh run-store folder, also exported as SBI_STORE_DIR for code that reads it."""
    path = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(path))
    return path


def pytest_sessionfinish(session, exitstatus):
    """Leave nothing behind that would keep this process from exiting.

    Python joins every non-daemon child process (``multiprocessing``'s atexit)
    and every non-daemon thread before it exits; one stuck child of a failed
    test once kept a finished suite alive until CI's time ran out. Children
    still alive here are named on stderr and killed.
    """
    import sys

    import psutil

    if getattr(session.config.option, "numprocesses", None) and not hasattr(session.config, "workerinput"):
        return  # the xdist controller: its children are the workers, each of which cleans up here itself
    left = [p for p in psutil.Process().children(recursive=True) if not _multiprocessing_helper(p)]
    if left:
        names = ", ".join(_describe(p) for p in left)
        print(f"\nconftest: killing {len(left)} child process(es) left by the tests: {names}", file=sys.stderr)
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(left, timeout=10)


def _describe(proc) -> str:
    """``pid command`` of a child process, or the pid alone once it is gone."""
    import psutil

    try:
        return f"{proc.pid} {' '.join(proc.cmdline()[:3])}"
    except psutil.Error:
        return str(proc.pid)


def _multiprocessing_helper(proc) -> bool:
    """The fork server and resource tracker: they exit by themselves with this process."""
    import psutil

    try:
        return any("from multiprocessing." in part for part in proc.cmdline())
    except psutil.Error:
        return True

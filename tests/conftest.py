"""Test-wide settings: a bounded torch thread count and a temporary run store."""

import numpy as np
import pytest
import torch

# One torch thread in the test process: the small networks here gain little
# from a second thread, and worker processes started by the tests (jobs,
# browser) need the other core; oversubscribed torch threads spin and slow
# every training down by an order of magnitude.
torch.set_num_threads(1)


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

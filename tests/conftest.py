"""Test-wide settings: a bounded torch thread count and a temporary run store."""

import os

import pytest
import torch

# two cores on CI machines: one training at a time, each with both threads
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    """A fresh run-store folder, also exported as SBI_STORE_DIR for code that reads it."""
    path = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(path))
    return path

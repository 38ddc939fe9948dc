"""What one server process shares across sessions: the run store, the job manager,
built-in simulators and trained posteriors (each built once, by ``st.cache_resource``)."""

from __future__ import annotations

import threading

import streamlit as st
import torch

from sbi_core import get_simulator
from sbi_core.jobs.manager import JobManager
from sbi_core.store.runs import RunStore, default_root

__all__ = ["store_root", "jobs", "store", "simulator", "posterior"]

# The server process only samples and simulates small batches (training runs in
# worker processes). One torch thread is then the fastest by far (a 2,000-sample
# draw: ~25 ms instead of ~600 ms with 2 contended threads) and leaves the cores
# to the workers.
torch.set_num_threads(1)


def store_root() -> str:
    """The run store's folder (``$SBI_STORE_DIR`` or the default)."""
    return str(default_root().expanduser().resolve())


@st.cache_resource(show_spinner=False)
def _job_manager(root: str) -> JobManager:
    """One job manager per store and server process. Its Dask cluster (the process's one,
    :func:`sbi_core.jobs.dask_executor.shared_executor`; none with ``SBI_EXECUTOR=process``) starts
    now, in the background, so that the first run does not wait for it. Runs a previous server
    left queued or running go on (:func:`sbi_core.jobs.resume.recover_runs`)."""
    manager = JobManager(RunStore(root), recover=True)
    executor = manager.dask()
    if executor is not None:
        threading.Thread(target=_connect, args=(executor,), name="dask-connect", daemon=True).start()
    return manager


def _connect(executor) -> None:
    try:
        executor.client  # noqa: B018 - connecting (or starting the local cluster) is the point
    except Exception:  # a cluster that cannot be reached: the first run records why
        pass


def jobs() -> JobManager:
    """The job manager of the current store (shared by all sessions)."""
    return _job_manager(store_root())


def store() -> RunStore:
    return jobs().store


@st.cache_resource(show_spinner=False)
def simulator(name: str):
    """A built-in :class:`~sbi_core.Simulator`, built once per server."""
    return get_simulator(name)


@st.cache_resource(show_spinner="Loading the trained posterior...", max_entries=8)
def posterior(root: str, run_id: str):
    """The run's final posterior, loaded once per run (shared by all sessions)."""
    return store().load_posterior(run_id)

"""Resume: a run goes on from its last finished round, drawing what the uninterrupted run draws.

A round's checkpoint (:mod:`sbi_core.run.checkpoint`) holds the estimator, the
round's posterior and the states of the run's random streams; resuming from it
must give the same later rounds bit for bit. A worker SIGKILLed mid-run leaves
a failed run whose finished rounds stay viewable; Resume carries it on under
the same id.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import torch

from sbi_core.errors import SBIError
from sbi_core.jobs.manager import JobManager
from sbi_core.jobs.resume import finished_rounds, resume_from, why_not_resumable
from sbi_core.run import loop as runs
from sbi_core.run.checkpoint import Checkpoint, load_checkpoint
from sbi_core.run.spec import RunSpec
from sbi_core.simulators import get_simulator
from sbi_core.store.runs import RunStore, STALE_MESSAGE
from sbi_ui.tracker import RunTracker

pytestmark = pytest.mark.timeout(240)


def _run(method: str, **kw):
    sim = get_simulator("two_moons")
    settings = dict(method=method, num_rounds=3, simulations_per_round=200, max_epochs=4, hidden_features=16,
                    num_transforms=2, num_posterior_samples=100, seed=3)
    settings.update(kw)
    return runs.run_sequential(sim, sim.prior, sim.default_observation, **settings)


@pytest.mark.parametrize("method", ["snpe", "snre", "smc_abc"])
def test_resuming_from_a_checkpoint_draws_what_the_uninterrupted_run_draws(method: str) -> None:
    full = _run(method, checkpoints=True)
    assert all(r.checkpoint for r in full.rounds)
    checkpoint = Checkpoint.from_bytes(full.rounds[0].checkpoint)
    assert checkpoint.round == 0
    resumed = _run(method, resume=checkpoint)
    assert [r.index for r in resumed.rounds] == [0, 1, 2]  # the checkpoint's round, then the new ones
    for r in (1, 2):
        assert torch.equal(full.rounds[r].theta, resumed.rounds[r].theta)
        assert torch.equal(full.rounds[r].posterior_samples, resumed.rounds[r].posterior_samples)
    other = _run(method, seed=4)
    assert not torch.equal(other.rounds[2].posterior_samples, full.rounds[2].posterior_samples)


def test_a_checkpoint_freezes_the_loop_at_its_round() -> None:
    """Bytes taken after round 0 still hold round 0's network after the run trained on."""
    full = _run("snpe", checkpoints=True, num_rounds=2)
    early = Checkpoint.from_bytes(full.rounds[0].checkpoint)
    late = Checkpoint.from_bytes(full.rounds[1].checkpoint)
    assert (early.estimator.num_simulations, late.estimator.num_simulations) == (200, 400)


def _spec(**kw) -> RunSpec:
    base = dict(simulator="two_moons", method="snpe", num_rounds=3, simulations_per_round=200, max_epochs=25,
                patience=25, hidden_features=16, num_transforms=2, num_posterior_samples=200, seed=1, num_threads=1)
    base.update(kw)
    return RunSpec(**base)


def _store_with_events(tmp_path) -> tuple[RunStore, str]:
    store = RunStore(tmp_path / "store")
    rid = store.create_run(_spec())
    store.set_status(rid, "running")
    store.append_event(rid, {"type": "run_started", "num_rounds": 3, "param_names": ["a", "b"]})
    store.append_event(rid, {"type": "epoch", "round": 0, "epoch": 1, "max_epochs": 5})
    store.append_event(rid, {"type": "round", "round": 0, "posterior_samples": [[0.0, 0.0]]})
    store.append_event(rid, {"type": "epoch", "round": 1, "epoch": 1, "max_epochs": 5})
    store.append_event(rid, {"type": "epoch", "round": 1, "epoch": 2, "max_epochs": 5})
    store.finish_run(rid, "failed", message="killed")
    store.append_event(rid, {"type": "failed", "message": "killed"})
    return store, rid


def test_reopening_drops_the_unfinished_round_and_keeps_the_sequence_going(tmp_path) -> None:
    store, rid = _store_with_events(tmp_path)
    follower = RunTracker(rid)
    follower.update(store)  # a page that had read everything, the failure included
    assert follower.terminal is not None and follower.epochs_in(1) == 2
    last = store.last_event(rid)[0]
    store.request_cancel(rid)  # no effect on a failed run; the flags are cleared anyway
    assert store.reopen_run(rid, 1)
    info = store.get_run(rid)
    assert info.status == "queued" and info.message is None and info.finished is None
    assert not store.cancel_requested(rid) and not store.stop_requested(rid)
    kinds = [(e["type"], e.get("round")) for _, e in store.events(rid)]
    assert kinds == [("run_started", None), ("epoch", 0), ("round", 0), ("resumed", None)]
    seq, resumed = store.last_event(rid)
    assert seq == last + 1 and resumed["from_round"] == 1 and resumed["previous"] == "failed"
    assert store.resume_point(rid) == 1
    follower.update(store)  # the follower forgets round 2's progress and the ending
    assert follower.terminal is None and follower.epochs_in(1) == 0 and follower.rounds_done == 1
    store.append_event(rid, {"type": "epoch", "round": 1, "epoch": 1, "max_epochs": 5})
    follower.update(store)
    assert follower.epochs_in(1) == 1  # new events come after the marker
    assert not store.reopen_run(rid, 1)  # queued now: only an ended run is reopened by the user


def test_a_done_run_is_not_resumable_and_says_why(tmp_path) -> None:
    store, rid = _store_with_events(tmp_path)
    assert "no such run" in why_not_resumable(store, None)
    assert finished_rounds(store, rid) == []  # round 0 has an event but no checkpoint
    assert resume_from(store, rid) == 0
    assert why_not_resumable(store, store.get_run(rid)) is None  # it can start again from round 1
    store.reopen_run(rid, 0)
    store.finish_run(store.get_run(rid).id, "done")
    with pytest.raises(SBIError, match="failed or cancelled"):
        JobManager(store, executor="process").resume(rid)


@pytest.mark.slow
def test_a_sigkilled_worker_fails_plainly_and_resume_finishes_the_same_run(tmp_path) -> None:
    store = RunStore(tmp_path / "store")
    jm = JobManager(store, executor="process")
    spec = _spec()
    rid = jm.start(spec)
    deadline = time.monotonic() + 120
    while not store.events(rid, types=["round"]):
        assert time.monotonic() < deadline and store.get_run(rid).is_active
        time.sleep(0.05)
    pid, _ = store.worker_process(rid)
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    info = jm.wait(rid, timeout=30)
    assert time.monotonic() - killed < 30
    assert info.status == "failed" and info.message == STALE_MESSAGE and "Resume" in info.message
    assert store.load_posterior(rid, 0) is not None  # the finished round stays viewable
    start = jm.resume(rid)
    assert start >= 1 and load_checkpoint(store.round_dir(rid, start - 1)) is not None
    info = jm.wait(rid, timeout=150)
    assert info.status == "done", info.message
    assert [e["round"] for _, e in store.events(rid, types=["round"])] == [0, 1, 2]
    assert [e["type"] for _, e in store.events(rid)].count("failed") == 0
    # the same draws as the run that nobody interrupted
    uninterrupted = runs.execute(spec)
    saved = np.load(store.round_dir(rid, 2) / "posterior_samples.npy")
    np.testing.assert_array_equal(saved, uninterrupted.rounds[-1].posterior_samples.numpy())

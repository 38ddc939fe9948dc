"""Runs take turns on a shared worker, one round at a time (sbi_core.store.turns, sbi_core.jobs.turns).

Two owners' runs on one worker interleave round by round and draw exactly what each
draws alone; the line serves first rounds before later ones; a run alone never hands
over; a C2ST deferred while others wait is measured later, to the value measured on
the spot; the line tells a queued run where it stands.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from sbi_core.events import REFERENCE_DEFERRED
from sbi_core.jobs.dask_executor import DaskExecutor, _worker_address
from sbi_core.jobs.turns import TakingTurns
from sbi_core.jobs.manager import JobManager
from sbi_core.run import loop as runs
from sbi_core.run.spec import RunSpec
from sbi_core.simulators import get_simulator
from sbi_core.store.runs import RunStore
from sbi_core.store.turns import DEFAULT_ROUND_S, TURN_REASON

pytestmark = pytest.mark.timeout(240)


def spec(seed: int, rounds: int = 3) -> RunSpec:
    return RunSpec(simulator="two_moons", method="snpe", num_rounds=rounds, simulations_per_round=200,
                   max_epochs=4, hidden_features=16, num_transforms=2, num_posterior_samples=100, seed=seed)


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "store")


def wait_for(predicate, timeout: float = 60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


# ---- the line ---------------------------------------------------------------------------------
def test_the_line_serves_first_rounds_before_later_ones_then_the_earlier_arrival(store: RunStore) -> None:
    a = store.create_run(spec(1), owner="a")
    b = store.create_run(spec(2), owner="b")
    store.set_pid(b, 222)  # its worker waits for the slot
    assert store.claim_slot(a, 111, max_running=1)
    assert not store.claim_slot(b, 222, max_running=1)  # the one slot is taken
    assert store.others_waiting(a) == 1
    assert store.hand_over(a, 1, claim=store.get_run(a).started)
    assert store.get_run(a).status == "queued"
    assert store.queue_position(b) == 1 and store.queue_position(a) == 2  # b's first round goes first
    assert not store.claim_slot(a, 111, max_running=1)  # a is behind b
    c = store.create_run(spec(3), owner="c")  # arrives later, but for its first round
    assert store.queue_position(c) == 2 and store.queue_position(a) == 3
    place = store.place_in_line(a, workers=1)
    assert (place.position, place.ahead_first, place.ahead_later, place.turn) == (3, 2, 0, 1)
    assert place.round_s == DEFAULT_ROUND_S  # no round timed in this store yet
    assert place.wait_s == pytest.approx(2 * DEFAULT_ROUND_S)
    assert store.claim_slot(b, 222, max_running=1)
    assert store.place_in_line(a).running == 1
    began = store.get_run(a).began
    assert store.finish_run(b, "done") and store.claim_slot(c, 333, max_running=1) and store.finish_run(c, "done")
    time.sleep(0.01)
    assert store.claim_slot(a, 111, max_running=1)  # its next turn: a new claim, the same first start
    again = store.get_run(a)
    assert again.began == began and again.started > began and again.seconds >= again.started - began
    [(_, ev)] = store.events(a, types=["resumed"])
    assert ev["reason"] == TURN_REASON and ev["from_round"] == 1
    assert store.resume_point(a) == 1


def test_a_run_hands_over_only_to_another_owner_and_never_when_asked_to_stop(store: RunStore) -> None:
    a = store.create_run(spec(1), owner="a")
    a2 = store.create_run(spec(2), owner="a")  # a's next run waits for a's first to end anyway
    store.set_pid(a2, 222)
    assert store.claim_slot(a, 111, max_running=1)
    assert store.others_waiting(a) == 0
    b = store.create_run(spec(3), owner="b")
    assert store.others_waiting(a) == 0  # written to the store, but no process holds it: it waits for nobody
    store.set_pid(b, 333)
    assert store.others_waiting(a) == 1
    store.request_cancel(b)
    assert store.others_waiting(a) == 0  # a cancelled run waits for nothing
    store.request_stop(a)
    assert not store.hand_over(a, 1)  # stopping: its finished rounds are the result
    assert store.get_run(a).status == "running"
    assert not store.hand_over(a2, 1)  # not running: nothing to hand over


def test_the_wait_is_estimated_from_the_rounds_this_store_timed(store: RunStore) -> None:
    done = store.create_run(spec(1))
    for seconds in (2.0, 4.0, 30.0):
        store.append_event(done, {"type": "round", "round": 0, "seconds": {"simulate": seconds / 2,
                                                                          "train": seconds / 2, "reference": 9.0}})
    assert store.recent_round_seconds() == 4.0  # the median; the C2ST is not the line's time
    assert store.finish_run(done, "done")
    queued = [store.create_run(spec(i)) for i in range(2, 5)]
    place = store.place_in_line(queued[-1], workers=2)
    assert place.ahead == 2 and place.wait_s == pytest.approx(2 * 4.0 / 2)


# ---- the loop -----------------------------------------------------------------------------------
def test_the_loop_hands_over_between_rounds_after_at_least_one_and_resumes_to_the_same_draws() -> None:
    sim = get_simulator("two_moons")
    settings = dict(method="snpe", num_rounds=3, simulations_per_round=200, max_epochs=4, hidden_features=16,
                    num_transforms=2, num_posterior_samples=100, seed=5, checkpoints=True)
    asked = []
    first = runs.run_sequential(sim, sim.prior, sim.default_observation, hand_over=lambda: asked.append(1) or True,
                                **settings)
    assert first.handed_over_before == 1 and [r.index for r in first.rounds] == [0] and asked == [1]
    from sbi_core.run.checkpoint import Checkpoint

    second = runs.run_sequential(sim, sim.prior, sim.default_observation, hand_over=lambda: True,
                                 resume=Checkpoint.from_bytes(first.rounds[0].checkpoint), **settings)
    assert second.handed_over_before == 2 and [r.index for r in second.rounds] == [0, 1]  # one new round a turn
    alone = runs.run_sequential(sim, sim.prior, sim.default_observation, hand_over=lambda: False, **settings)
    assert alone.handed_over_before is None and len(alone.rounds) == 3
    np.testing.assert_array_equal(alone.rounds[1].posterior_samples.numpy(),
                                  second.rounds[1].posterior_samples.numpy())


# ---- executors -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def one_worker():
    executor = DaskExecutor(n_workers=1)
    executor.client.wait_for_workers(1, timeout=60)
    yield executor
    executor.close()


def _round_order(store: RunStore, ids: dict[str, str]) -> list[tuple[str, int]]:
    """``(name, round)`` of every round event of the runs, in the order they were trained."""
    rounds = [(ev["time"], name, int(ev["round"])) for name, rid in ids.items()
              for _, ev in store.events(rid, types=["round"])]
    return [(name, r) for _, name, r in sorted(rounds)]


def _check_interleaved_and_equal(store: RunStore, ids: dict[str, str], specs: dict[str, RunSpec]) -> None:
    assert _round_order(store, ids) == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    for name, rid in ids.items():
        alone = runs.execute(specs[name])
        for r in range(3):
            saved = np.load(store.round_dir(rid, r) / "posterior_samples.npy")
            np.testing.assert_array_equal(saved, alone.rounds[r].posterior_samples.numpy())
        turns = [ev for _, ev in store.events(rid, types=["resumed"])]
        assert [ev["from_round"] for ev in turns if ev["reason"] == TURN_REASON] == [1, 2]


def test_two_owners_on_one_dask_worker_take_turns_round_by_round_and_draw_what_each_draws_alone(
        store: RunStore, one_worker: DaskExecutor) -> None:
    jm = JobManager(store, executor=one_worker)
    specs = {"a": spec(11), "b": spec(12)}
    ids = {name: jm.start(s, owner=name) for name, s in specs.items()}
    for rid in ids.values():
        assert jm.wait(rid, timeout=180).status == "done", store.get_run(rid).message
    _check_interleaved_and_equal(store, ids, specs)
    # the C2STs deferred while the other run waited are measured once nobody waits: same values
    deferred = [(name, ev["round"]) for name, rid in ids.items() for _, ev in store.events(rid, types=["reference"])
                if ev["reference_c2st_reason"] == REFERENCE_DEFERRED]
    assert ("a", 0) in deferred and len(deferred) >= 4
    for name, rid in ids.items():
        measured = wait_for(lambda: [ev for _, ev in store.events(rid, types=["round"])
                                     if ev.get("reference_c2st") is not None] if all(
            ev.get("reference_c2st") is not None for _, ev in store.events(rid, types=["round"])) else None)
        alone_events = []
        alone = runs.execute(specs[name], on_event=alone_events.append)
        assert [ev["reference_c2st"] for ev in measured] == pytest.approx(
            [r.reference_c2st for r in alone.rounds], abs=1e-6)
        # the concentration measure deferred with a C2ST (from the round's saved network) is the one
        # measured on the spot by the run alone
        assert [ev["hdr_size"] for ev in measured] == [ev["hdr_size"] for ev in alone_events if ev["type"] == "round"]
    assert wait_for(lambda: not one_worker.pending(), timeout=30)


def test_a_run_alone_on_the_worker_goes_straight_on(store: RunStore, one_worker: DaskExecutor) -> None:
    jm = JobManager(store, executor=one_worker)
    assert jm.backend.slots() == 1  # the cluster's one worker thread: what a queued run's wait is divided by
    rid = jm.start(spec(13, rounds=2), owner="solo")
    assert jm.wait(rid, timeout=120).status == "done"
    assert store.events(rid, types=["resumed"]) == []
    assert all(ev["reference_c2st_reason"] != REFERENCE_DEFERRED for _, ev in store.events(rid, types=["reference"]))


@pytest.mark.slow
def test_worker_processes_take_turns_for_their_one_slot(store: RunStore) -> None:
    jm = JobManager(store, executor="process", max_running=1)
    specs = {"a": spec(21), "b": spec(22)}
    ids = {}
    for name, s in specs.items():
        ids[name] = jm.start(s, owner=name)
        if name == "a":  # b arrives while a trains its first round
            wait_for(lambda: store.get_run(ids["a"]).status == "running")
    for rid in ids.values():
        assert jm.wait(rid, timeout=180).status == "done", store.get_run(rid).message
    _check_interleaved_and_equal(store, ids, specs)


def test_the_local_clusters_workers_come_from_the_environment_within_bounds(monkeypatch) -> None:
    from sbi_core.errors import SBIError
    from sbi_core.jobs.dask_executor import WORKERS_ENV, default_n_workers

    monkeypatch.delenv(WORKERS_ENV, raising=False)
    assert default_n_workers(1) == 1 and default_n_workers(2) == 2 and default_n_workers(8) == 8
    monkeypatch.setenv(WORKERS_ENV, "2")
    assert default_n_workers(2) == 2
    for bad in ("0", "9", "two", "1e9"):
        monkeypatch.setenv(WORKERS_ENV, bad)
        with pytest.raises(SBIError, match=WORKERS_ENV):
            default_n_workers(2)


def test_a_deferred_c2st_takes_the_rounds_concentration_measure_with_it_and_brings_the_same_value(
        store: RunStore) -> None:
    """While others wait, a round's event goes out without its concentration measure (``hdr_size``);
    the deferred C2ST measures it on the round's saved network, and the store folds it into the
    round's event: the value the run measures on the spot when nobody waits."""
    from sbi_core.jobs.turns import score_deferred_reference

    one = spec(31, rounds=1)
    events: list[dict] = []
    result = runs.execute(one, on_event=events.append, defer_reference=lambda index: True)
    (round_ev,) = [ev for ev in events if ev["type"] == "round"]
    deferred = [ev for ev in events if ev["type"] == "reference"]
    assert round_ev["hdr_size"] is None and [ev["reference_c2st_reason"] for ev in deferred] == [REFERENCE_DEFERRED]
    alone: list[dict] = []
    runs.execute(one, on_event=alone.append)
    (expected,) = [ev["hdr_size"] for ev in alone if ev["type"] == "round"]
    assert expected is not None

    rid = store.create_run(one)
    store.save_round(rid, result.rounds[0])
    for ev in (round_ev, *deferred):
        store.append_event(rid, ev)
    assert score_deferred_reference(store, rid, 0) is not None
    ((_, stored),) = store.events(rid, types=["round"])
    assert stored["hdr_size"] == expected and stored["reference_c2st"] is not None


class _Line:
    """A store's line as TakingTurns asks it: how many other runs wait."""

    def __init__(self, waiting: int) -> None:
        self.waiting = waiting

    def others_waiting(self, run_id: str) -> int:
        return self.waiting


@pytest.mark.parametrize("waiting", [0, 3])
def test_a_worker_that_does_not_measure_hands_every_c2st_over_and_the_measuring_one_only_while_others_wait(
        waiting: int) -> None:
    """Only the cluster's measuring worker loads the classifier's libraries (about 145 MB a process):
    another worker hands each round's C2ST over even when nobody waits; the measuring worker measures
    on the spot unless others wait. Without a ``defer`` (not on the cluster) nothing is deferred."""
    taken: list[int] = []

    def defer(index: int) -> bool:
        taken.append(index)
        return True

    elsewhere = TakingTurns(_Line(waiting), "r", defer=defer, measures_here=False)
    here = TakingTurns(_Line(waiting), "r", defer=defer, measures_here=True)
    assert elsewhere.defer_reference(0) is True
    assert here.defer_reference(1) is bool(waiting)
    assert taken == ([0, 1] if waiting else [0])
    assert TakingTurns(_Line(waiting), "r", measures_here=False).defer_reference(2) is False


def test_outside_a_dask_worker_a_task_has_no_worker_address() -> None:
    assert _worker_address() is None

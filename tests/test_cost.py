"""The run-time cost model (sbi_core.run.cost): the estimate before Start and the time left during a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbi_core.run.cost import (
    CostModel,
    calibrate_from_store,
    estimate_run,
    pairs_trained,
    seconds_left,
    size_factor,
    steps_per_epoch,
    timings_from_events,
)
from sbi_core.run.spec import RunSpec

SPEC = RunSpec(simulator="two_moons", method="snpe", num_rounds=4, simulations_per_round=1000,
               num_transforms=4, hidden_features=50, max_epochs=100, patience=10)

# A real run measured on the 2-core machine (busy, one torch thread): rounds of SPEC, seconds of the
# worker's own round events. Round 1 is the cheapest; rounds 2-4 pool 2,000-4,000 pairs under APT.
MEASURED = [
    {"round": 0, "epochs": 69, "best_epoch": 59, "num_simulations": 1000,
     "seconds": {"propose": 0.0, "simulate": 0.008, "train": 74.40, "sample": 0.065}},
    {"round": 1, "epochs": 25, "best_epoch": 15, "num_simulations": 1000,
     "seconds": {"propose": 0.039, "simulate": 0.004, "train": 77.84, "sample": 0.173}},
    {"round": 2, "epochs": 34, "best_epoch": 24, "num_simulations": 1000,
     "seconds": {"propose": 0.160, "simulate": 0.016, "train": 196.82, "sample": 0.161}},
    {"round": 3, "epochs": 40, "best_epoch": 30, "num_simulations": 1000,
     "seconds": {"propose": 0.156, "simulate": 0.003, "train": 134.64, "sample": 0.063}},
]


def _remaining_after(k: int) -> float:
    return sum(sum(r["seconds"].values()) for r in MEASURED[k:])


def old_estimate(elapsed: float, rounds_done: int, rounds: int) -> float:
    """What the page said before: every round an equal share of the work."""
    frac = rounds_done / rounds
    return elapsed * (1 - frac) / frac


def test_sequential_rounds_train_on_all_pairs_so_far():
    assert [pairs_trained("snpe", r, 1000) for r in range(4)] == [1000, 2000, 3000, 4000]
    assert pairs_trained("npe", 0, 1000) == 1000
    m = CostModel()
    e = [m.epoch_seconds(SPEC, r) for r in range(4)]
    assert e[0] < e[1] < e[2] < e[3]  # more pairs, and APT's contrastive loss from round 2 on
    tsnpe = RunSpec(**{**SPEC.to_dict(), "method": "tsnpe"})
    assert m.epoch_seconds(tsnpe, 1) < m.epoch_seconds(SPEC, 1)  # plain loss: cheaper than APT


def test_bigger_flows_and_budgets_cost_more():
    assert size_factor("nsf", 5, 50) == pytest.approx(1.0)
    assert size_factor("nsf", 10, 50) == pytest.approx(2.0)
    assert size_factor("maf", 5, 50) < 1.0
    assert steps_per_epoch(1000) == 9 + 1 and steps_per_epoch(100_000) > 80
    m = CostModel()
    small = estimate_run(SPEC, m).total_s
    huge = estimate_run(RunSpec(**{**SPEC.to_dict(), "simulations_per_round": 100_000, "num_rounds": 20}), m)
    assert huge.total_s > 1000 * small and huge.total_s > 3600


def test_time_left_after_round_one_is_honest_where_the_old_one_was_far_too_low():
    elapsed = sum(MEASURED[0]["seconds"].values())
    truth = _remaining_after(1)  # 410 s
    old = old_estimate(elapsed, 1, 4)  # 224 s: 1.8x too low
    model = CostModel().calibrated(timings_from_events(SPEC, MEASURED[:1]))
    new = seconds_left(SPEC, model, rounds_done=1, simulations_done=0, epochs_done=0, best_epoch=None,
                       train_elapsed_s=0.0)
    assert old < 0.6 * truth
    assert abs(new - truth) < abs(old - truth)
    assert 0.7 * truth < new < 1.4 * truth, (new, truth)


def test_time_left_uses_the_round_in_progress_and_early_stopping():
    model = CostModel().calibrated(timings_from_events(SPEC, MEASURED[:2]))
    # round 3 has trained 10 epochs at 5.8 s each and its best epoch is the 10th:
    # at least `patience` more epochs at that pace, then round 4
    left = seconds_left(SPEC, model, rounds_done=2, simulations_done=1000, epochs_done=10, best_epoch=10,
                        train_elapsed_s=57.9)
    assert left > 10 * 5.79
    assert left > seconds_left(SPEC, model, 2, 1000, 10, 10, 20.0)  # a slower pace means more time left
    assert seconds_left(SPEC, model, 4, 0, 0, None, 0.0) == 0.0


def test_calibration_uses_the_store(tmp_path: Path):
    from sbi_core.store.runs import RunStore

    store = RunStore(tmp_path / "store")
    rid = store.create_run(SPEC)
    for ev in MEASURED:
        store.append_event(rid, {"type": "round", **ev})
    store.finish_run(rid, "done", event={"type": "done", "seconds": 485.0})
    model = calibrate_from_store(store)
    assert model.sources == 4
    assert model.best_epoch == 59 and 15 < model.best_epoch_later <= 30
    assert model.epoch_seconds(SPEC, 0) == pytest.approx(74.40 / 69, rel=1e-6)
    # a fresh run like the measured one is now estimated near what it took
    est = estimate_run(SPEC, model).total_s
    assert 0.6 * 485 < est < 1.5 * 485, est
    assert calibrate_from_store(RunStore(tmp_path / "empty")).sources == 0


# ---- issue 19: a busy machine, and the time left measured on the run itself ------------------------------
def test_machine_load_from_injected_sources():
    from sbi_core.run.cost import MachineLoad, machine_load

    busy = machine_load(loadavg=lambda: (3.8, 3.0, 2.0), cpu_count=lambda: 2)
    assert busy == MachineLoad(3.8, 2) and busy.busy and busy.words() == "load 3.8 on 2 cores"
    assert busy.slowdown == pytest.approx(2.4)  # one more thread among 4.8 runnable on 2 cores
    idle = machine_load(loadavg=lambda: (0.3, 0.2, 0.1), cpu_count=lambda: 2)
    assert idle.slowdown == 1.0 and not idle.busy
    assert not MachineLoad(1.0, 2).busy  # one run going on two cores leaves a core free
    assert MachineLoad(7.0, 1).words() == "load 7.0 on 1 core"

    def no_load():
        raise OSError("no load average here")

    assert machine_load(loadavg=no_load) is None
    assert machine_load(loadavg=lambda: (float("nan"),)) is None


def test_time_left_follows_the_pace_the_run_has_shown_on_a_busy_machine():
    from sbi_core.run.cost import seconds_done

    model = CostModel().calibrated(timings_from_events(SPEC, MEASURED[:1]))
    plain = seconds_left(SPEC, model, 1, 0, 0, None, 0.0)
    done = seconds_done(SPEC, model, 1, 0, 0)
    assert done > 0
    # the run took 1.5 times what the formula explains (load, startup, sampling): the time left grows alike
    slow = seconds_left(SPEC, model, 1, 0, 0, None, 0.0, elapsed_s=1.5 * done)
    assert slow == pytest.approx(1.5 * plain, rel=1e-6)
    # as fast as predicted, or faster: the formula's own answer stands
    assert seconds_left(SPEC, model, 1, 0, 0, None, 0.0, elapsed_s=0.8 * done) == pytest.approx(plain)
    # before a round has finished there is nothing measured to go on
    assert seconds_left(SPEC, model, 0, 500, 0, None, 0.0, elapsed_s=1e6) == seconds_left(SPEC, model, 0, 500, 0,
                                                                                       None, 0.0)


def test_work_done_grows_with_rounds_simulations_and_epochs():
    from sbi_core.run.cost import seconds_done

    m = CostModel()
    assert seconds_done(SPEC, m, 0, 0, 0) == 0.0
    assert seconds_done(SPEC, m, 0, 1000, 0) < seconds_done(SPEC, m, 0, 1000, 5) < seconds_done(SPEC, m, 1, 0, 0)
    assert seconds_done(SPEC, m, 2, 0, 0) < seconds_done(SPEC, m, 3, 0, 0)

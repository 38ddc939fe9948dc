"""Training loop: events per epoch before return, early stopping, cancel, seeds."""

import math
import threading
import time

import pytest
import torch

from sbi_core import NPE, CancelToken, Cancelled, Prior

PRIOR = Prior.from_spec([{"name": "m", "dist": "normal", "loc": 0.0, "scale": 1.0}, {"name": "s", "dist": "uniform", "low": 0.0, "high": 1.0}])


def data(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    theta = PRIOR.sample((n,), generator=g)
    x = theta + 0.3 * torch.randn(n, 2, generator=g)
    return theta, x


def test_events_arrive_each_epoch_before_train_returns():
    theta, x = data()
    seen = []
    returned = threading.Event()
    cpu = []  # this thread's CPU seconds at each event (torch runs on this one thread here)

    def on_event(event):
        seen.append((event["type"], returned.is_set()))
        cpu.append(time.thread_time())

    npe = NPE(PRIOR, hidden_features=16, num_transforms=2, max_epochs=5, patience=100)
    start = time.thread_time()
    npe.train(theta, x, on_event=on_event)
    total = time.thread_time() - start
    returned.set()
    assert [t for t, _ in seen] == ["epoch"] * 5
    assert not any(after for _, after in seen)
    # live, not buffered: an epoch's worth of training lies between two events
    # (events emitted together after training would be microseconds apart)
    gaps = [b - a for a, b in zip(cpu, cpu[1:])]
    assert min(gaps) > 0.05 * total / 5, (gaps, total)
    last = npe.last_result.history[-1]
    assert set(last) >= {"round", "epoch", "train_loss", "val_loss", "elapsed", "best_epoch"}
    assert [h["epoch"] for h in npe.last_result.history] == [1, 2, 3, 4, 5]
    assert all(math.isfinite(h["train_loss"]) for h in npe.last_result.history)


def test_early_stopping_restores_best():
    theta, x = data(200)
    npe = NPE(PRIOR, hidden_features=64, num_transforms=3, max_epochs=400, patience=3, learning_rate=5e-3)
    npe.train(theta, x)
    r = npe.last_result
    assert r.stopped_early
    assert r.epochs == r.best_epoch + 3
    assert r.best_val_loss == min(h["val_loss"] for h in r.history)


def test_cancel_stops_within_one_epoch():
    theta, x = data()
    token = CancelToken()
    epochs = []

    def on_event(event):
        epochs.append(event["epoch"])
        if event["epoch"] == 2:
            token.cancel()

    npe = NPE(PRIOR, hidden_features=16, num_transforms=2, max_epochs=100, patience=100)
    with pytest.raises(Cancelled):
        npe.train(theta, x, on_event=on_event, cancel=token)
    assert epochs == [1, 2]


def test_cancel_from_another_thread():
    theta, x = data(2000)
    token = CancelToken()
    npe = NPE(PRIOR, hidden_features=16, num_transforms=2, max_epochs=10_000, patience=10_000)
    timer = threading.Timer(1.0, token.cancel)
    timer.start()
    start = time.perf_counter()
    with pytest.raises(Cancelled):
        npe.train(theta, x, cancel=token)
    assert time.perf_counter() - start < 10


def test_same_seed_same_result_and_global_rng_untouched():
    theta, x = data()
    state = torch.get_rng_state()
    a = NPE(PRIOR, hidden_features=16, num_transforms=2, max_epochs=3, seed=7).train(theta, x)
    b = NPE(PRIOR, hidden_features=16, num_transforms=2, max_epochs=3, seed=7).train(theta, x)
    c = NPE(PRIOR, hidden_features=16, num_transforms=2, max_epochs=3, seed=8).train(theta, x)
    assert torch.equal(state, torch.get_rng_state())
    xo = x[0]
    sa, sb, sc = (p.sample((20,), x=xo, seed=1) for p in (a, b, c))
    assert torch.equal(sa, sb)
    assert not torch.equal(sa, sc)


def test_thread_count_is_set():
    from sbi_core.threads import set_threads

    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_run_in_the_callers_process_gives_its_thread_count_back(monkeypatch):
    """``num_threads`` holds for the run only: a process left on every core beside another busy one
    ran its next trainings ten times slower (the test suite's own workers did)."""
    import os

    from sbi_core import get_simulator, run_sequential
    from sbi_core.threads import limited_threads

    monkeypatch.setattr("sbi_core.threads.machine_cores", lambda: 3)  # 3 threads are allowed on any machine
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seen = []
        sim = get_simulator("two_moons")
        run_sequential(sim, sim.prior, sim.default_observation, method="npe", simulations_per_round=50,
                       max_epochs=1, hidden_features=8, num_transforms=1, num_posterior_samples=10, num_threads=3,
                       on_event=lambda e: seen.append(torch.get_num_threads()))
        assert 3 in seen  # the run itself trained on its own count ...
        assert torch.get_num_threads() == 1 and "OMP_NUM_THREADS" not in os.environ  # ... and gave it back
        with limited_threads(2):
            assert torch.get_num_threads() == 2 and os.environ["OMP_NUM_THREADS"] == "2"
        assert torch.get_num_threads() == 1 and "OMP_NUM_THREADS" not in os.environ
    finally:
        torch.set_num_threads(before)


def test_stop_and_keep_ends_training_with_the_best_network():
    """A RunControl's keep request ends training after that epoch, best weights restored, no exception."""
    from sbi_core.nn.training import RunControl

    theta, x = data()
    asked = {"keep": False}
    control = RunControl(cancel=lambda: False, keep=lambda: asked["keep"])

    def on_event(event):
        if event["epoch"] == 6:
            asked["keep"] = True

    npe = NPE(PRIOR, hidden_features=16, num_transforms=2, max_epochs=100, patience=100)
    posterior = npe.train(theta, x, on_event=on_event, cancel=control)
    r = npe.last_result
    assert r.epochs == 6 and r.stopped_by_request and not r.stopped_early
    assert r.best_val_loss == min(h["val_loss"] for h in r.history)
    assert posterior.sample((50,), x=x[0], generator=torch.Generator().manual_seed(0)).shape == (50, 2)
    # a cancel still wins over a keep request
    control = RunControl(cancel=lambda: True, keep=lambda: True)
    with pytest.raises(Cancelled):
        NPE(PRIOR, hidden_features=16, num_transforms=2, max_epochs=100).train(theta, x, cancel=control)


def _stop_after(epochs_in_round: int, round_index: int = 0):
    """An event callback and stop check that ask to stop once ``round_index`` has trained that many epochs."""
    asked = {"stop": False}

    def on_event(event):
        if event["type"] == "epoch" and event["round"] == round_index and event["epoch"] >= epochs_in_round:
            asked["stop"] = True

    return on_event, (lambda: asked["stop"])


def test_stop_and_keep_mid_round_one_keeps_a_real_first_round():
    from sbi_core import get_simulator
    from sbi_core.run.loop import run_sequential

    sim = get_simulator("two_moons")
    on_event, stop = _stop_after(5)
    seen = []
    run = run_sequential(sim, sim.prior, sim.default_observation, method="snpe", num_rounds=3,
                         simulations_per_round=300, hidden_features=16, num_transforms=2, max_epochs=500,
                         patience=500, num_posterior_samples=200,
                         on_event=lambda e: (seen.append(e), on_event(e)), stop=stop)
    assert run.stopped_by_request
    assert len(run.rounds) == 1
    rnd = run.rounds[0]
    assert rnd.stopped_by_request and len(rnd.history) == 5
    assert rnd.posterior_samples.shape == (200, 2) and torch.isfinite(rnd.posterior_samples).all()
    assert torch.isfinite(sim.prior.log_prob(rnd.posterior_samples)).all()  # inside the prior's support
    rounds = [e for e in seen if e["type"] == "round"]
    assert len(rounds) == 1 and rounds[0]["stopped_by_request"] is True and rounds[0]["epochs"] == 5
    # no simulation of a second round was started
    assert {e["round"] for e in seen if e["type"] == "simulation"} == {0}


def test_stop_while_simulating_keeps_finished_rounds_or_cancels():
    from sbi_core import get_simulator
    from sbi_core.run.loop import run_sequential

    sim = get_simulator("two_moons")
    kw = dict(method="snpe", num_rounds=3, simulations_per_round=300, hidden_features=16, num_transforms=2,
              max_epochs=3, num_posterior_samples=50, simulation_batch_size=100)
    asked = {"stop": False}

    def ask_in_round_2(event):
        if event["type"] == "simulation" and event["round"] == 1:
            asked["stop"] = True

    run = run_sequential(sim, sim.prior, sim.default_observation, on_event=ask_in_round_2,
                         stop=lambda: asked["stop"], **kw)
    assert run.stopped_by_request and len(run.rounds) == 1 and not run.rounds[0].stopped_by_request
    # round 1 still simulating: nothing trained, nothing to keep
    with pytest.raises(Cancelled):
        run_sequential(sim, sim.prior, sim.default_observation, stop=lambda: True, **kw)

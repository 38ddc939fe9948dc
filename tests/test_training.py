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

    def on_event(event):
        seen.append((event["type"], returned.is_set()))

    npe = NPE(PRIOR, hidden_features=16, num_transforms=2, max_epochs=5, patience=100)
    npe.train(theta, x, on_event=on_event)
    returned.set()
    assert [t for t, _ in seen] == ["epoch"] * 5
    assert not any(after for _, after in seen)
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
    from sbi_core.training import set_threads

    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)

"""One contract every registered method keeps, as zuko tests every flow class.

Parametrized over :data:`sbi_core.methods.registry.METHODS` (no list here: a
newly registered method is picked up by itself). On a tiny problem each method
trains through :func:`sbi_core.run_sequential`, gives posterior samples of the
right shape at the observation (finite log-probs where its posterior has them),
reproduces its samples for a seed and changes them for another seed, and emits
the event stream the live view reads (:mod:`sbi_core.events`).
"""

from __future__ import annotations

import pytest
import torch

import sbi_core
from sbi_core.events import EVENT_TYPES
from sbi_core.methods.registry import METHODS

NUM_SAMPLES = 20
# settings a method takes only when its catalogue entry lists them (MCMC and ABC options)
OPTIONS = {"num_chains": 2, "warmup": 10, "thin": 1, "quantile": 0.5, "num_atoms": 5}
TINY = dict(hidden_features=8, num_transforms=1, max_epochs=2, patience=100, simulations_per_round=100,
            num_posterior_samples=NUM_SAMPLES)
# the fields the live view reads from each event type (sbi_core.events' docstring)
EPOCH_FIELDS = {"round", "epoch", "max_epochs", "train_loss", "val_loss", "best_epoch", "best_val_loss", "elapsed"}
ROUND_FIELDS = {"round", "num_simulations", "num_invalid", "epochs", "seconds", "param_names", "mean", "std",
                "posterior_samples", "sampling", "proposal_fraction"}


def _run(name: str, seed: int, events: list | None = None):
    method = METHODS[name]
    sim = sbi_core.get_simulator("linear_regression")
    options = {k: v for k, v in OPTIONS.items() if k in method.options}
    return sim, sbi_core.run_sequential(sim, sim.prior, sim.default_observation, method=name,
                                        num_rounds=method.rounds(2), seed=seed,
                                        on_event=None if events is None else events.append, **TINY, **options)


@pytest.fixture(scope="module")
def runs():
    """Each method's run at seed 0 (with its events), cached across this module's tests."""
    cache = {}

    def get(name):
        if name not in cache:
            events = []
            sim, result = _run(name, 0, events)
            cache[name] = (sim, result, events)
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(METHODS))
def test_trains_and_samples_the_right_shape(name, runs):
    sim, run, _ = runs(name)
    method = METHODS[name]
    D = len(sim.param_names)
    assert len(run.rounds) == method.rounds(2)
    for r in run.rounds:  # ABC's round samples are its accepted particles, however many were kept
        n = NUM_SAMPLES if method.learns != "nothing" else len(r.posterior_samples)
        assert r.posterior_samples.shape == (n, D) and n > 0
        assert torch.isfinite(r.posterior_samples).all()
    x_obs = sim.default_observation
    samples = run.posterior.sample((7,), x=x_obs, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (7, D) and torch.isfinite(samples).all()
    assert torch.isfinite(sim.prior.log_prob(samples)).all()  # inside the prior's support
    if method.learns == "posterior":  # a flow posterior has a normalised density
        log_p = run.posterior.log_prob(samples, x=x_obs)
        assert log_p.shape == (7,) and torch.isfinite(log_p).all()


@pytest.mark.parametrize("name", list(METHODS))
def test_a_seed_reproduces_and_another_seed_differs(name, runs):
    _, first, _ = runs(name)
    _, again = _run(name, 0)
    _, other = _run(name, 1)
    assert torch.equal(first.rounds[-1].posterior_samples, again.rounds[-1].posterior_samples)
    assert not torch.equal(first.rounds[-1].posterior_samples, other.rounds[-1].posterior_samples)


@pytest.mark.parametrize("name", list(METHODS))
def test_emits_the_event_stream_the_live_view_reads(name, runs):
    sim, run, events = runs(name)
    method = METHODS[name]
    types = [e["type"] for e in events]
    assert set(types) <= set(EVENT_TYPES) and all(isinstance(e["time"], float) for e in events)
    # run_sequential's stream: the run's framing (run_started from execute, done from the worker) is not its own
    assert types[0] == "simulation" and not {"run_started", "done", "failed", "cancelled"} & set(types)
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)
    rounds = [e for e in events if e["type"] == "round"]
    assert [e["round"] for e in rounds] == list(range(method.rounds(2)))
    for ev in rounds:
        assert ROUND_FIELDS <= set(ev), ROUND_FIELDS - set(ev)
        assert ev["param_names"] == sim.param_names
        assert ev["num_simulations"] == TINY["simulations_per_round"]
        assert len(ev["posterior_samples"]) == len(run.rounds[ev["round"]].posterior_samples)
        assert len(ev["mean"]) == len(ev["std"]) == len(sim.param_names)
    for r in range(method.rounds(2)):  # simulations, then training, then the round's event
        in_round = [e["type"] for e in events if e.get("round") == r and e["type"] != "reference"]
        assert in_round[0] == "simulation" and in_round[-1] == "round"
        epochs = [e for e in events if e["type"] == "epoch" and e["round"] == r]
        if method.learns == "nothing":  # ABC trains no network
            assert not epochs
        else:
            assert [e["epoch"] for e in epochs] == list(range(1, len(epochs) + 1)) and epochs
            for e in epochs:
                assert EPOCH_FIELDS <= set(e), EPOCH_FIELDS - set(e)


@pytest.mark.parametrize("name", list(METHODS))
def test_the_live_view_names_the_network_the_method_trains(name):
    """A run's header says what was trained: no flow is named for a vector field, a classifier or ABC."""
    from sbi_core.run.spec import RunSpec
    from sbi_ui.live_view import network_words

    words = network_words(RunSpec(simulator="two_moons", method=name, num_rounds=METHODS[name].rounds(2),
                                  num_transforms=3, hidden_features=40))
    expected = {"flow": "neural spline flow (NSF) of 3 layers, 40 units wide",
                "vector_field": "a vector field (residual network) of 3 blocks, 40 units wide",
                "classifier": "a classifier (ratio network), 40 units wide",
                "none": "no network (keeps the closest simulations)"}[METHODS[name].network]
    assert words == expected

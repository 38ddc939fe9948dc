"""Sequential SNPE (APT): the loss, the round loop, events and reproducibility."""


import pytest
import torch

import sbi_core
from sbi_core import Cancelled, Prior, SBIError, run_sequential
from sbi_core.methods.snpe import atomic_loss


def area90(samples: torch.Tensor, bounds: torch.Tensor, bins: int = 20) -> int:
    """Number of cells of a bins x bins grid over the prior box that hold 90 % of the samples.

    A spread measure that suits multimodal clouds (a standard deviation does
    not: two moons' two crescents sit in opposite corners) and ignores a few
    stray samples.
    """
    h = torch.histogramdd(samples.double(), bins=[bins, bins], range=bounds.flatten().double().tolist()).hist
    p = (h.flatten() / h.sum()).sort(descending=True).values
    return int((p.cumsum(0) < 0.9).sum()) + 1


def test_atomic_loss_matches_direct_softmax():
    torch.manual_seed(0)
    theta, x = torch.randn(6, 2), torch.randn(6, 2)
    log_q = lambda t, c: -((t - c) ** 2).sum(1)  # noqa: E731
    log_p = lambda t: -0.5 * (t**2).sum(1)  # noqa: E731
    g = torch.Generator().manual_seed(1)
    loss = atomic_loss(log_q, log_p, theta, x, num_atoms=6, generator=g)
    # with all rows as atoms (M = B), every row's atoms are all thetas
    logits = torch.stack([log_q(theta, x[i].expand(6, -1)) - log_p(theta) for i in range(6)])
    expected = -(logits.diagonal() - torch.logsumexp(logits, 1))
    assert torch.allclose(loss, expected, atol=1e-5)


@pytest.mark.slow
def test_snpe_shrinks_over_rounds_on_two_moons():
    sim = sbi_core.get_simulator("two_moons")
    events = []
    run = run_sequential(
        sim, sim.prior, sim.default_observation, method="snpe", num_rounds=3, simulations_per_round=150,
        seed=0, on_event=events.append, hidden_features=32, num_transforms=3, num_posterior_samples=2000,
    )
    assert len(run.rounds) == 3
    bounds = sim.prior.bounds
    prior_area = area90(sim.prior.sample((2000,), generator=torch.Generator().manual_seed(0)), bounds)
    areas = [area90(r.posterior_samples, bounds) for r in run.rounds]
    exact_area = area90(sim.reference_posterior(sim.default_observation, 2000, seed=0), bounds)  # 9 cells
    assert areas[0] < prior_area / 2
    # the last cloud is about as tight as the exact posterior; the first one's spread depends on the noise
    # of 150 simulations (16 to 154 cells over seeds 0-9, the exact posterior 9, the prior 308)
    assert areas[-1] <= min(areas[0], 2 * exact_area), (areas, exact_area)
    # the last round is clearly closer to the exact posterior than the first, by the C2ST against it that
    # the loop computes after every round (0.64 -> 0.52 here; its scatter is about 0.016, the exact
    # values differ a little between CPUs; a method that learned nothing stays near the first value)
    first, last = run.rounds[0].reference_c2st, run.rounds[-1].reference_c2st
    assert last < first - 0.05 and last < 0.7, (first, last)
    # events: simulation and epoch events before each round event, rounds in order
    types = [e["type"] for e in events]
    round_pos = [i for i, t in enumerate(types) if t == "round"]
    assert len(round_pos) == 3
    assert "epoch" in types[: round_pos[0]] and "simulation" in types[: round_pos[0]]
    assert [events[i]["round"] for i in round_pos] == [0, 1, 2]
    assert len(events[round_pos[0]]["posterior_samples"]) == 2000
    assert run.posterior is run.rounds[-1].posterior
    # later rounds propose from the previous posterior
    assert run.rounds[1].proposal is run.rounds[0].posterior
    assert sim.prior.support_contains(run.rounds[2].theta).all()


def test_plain_callable_simulator_with_nan_rows():
    prior = Prior.uniform_box(["a", "b"], -1.0, 1.0)

    def simulator(theta):
        x = theta + 0.1 * torch.randn(theta.shape)
        x[theta[:, 0] > 0.8] = float("nan")  # fails for ~10 % of parameters
        return x

    events = []
    run = run_sequential(simulator, prior, torch.tensor([0.1, 0.2]), method="snpe", num_rounds=2,
                         simulations_per_round=300, seed=0, on_event=events.append, max_epochs=5,
                         hidden_features=16, num_transforms=2)
    assert run.rounds[0].num_invalid > 0
    assert run.rounds[0].num_simulations == 300
    sim_events = [e for e in events if e["type"] == "simulation" and e["round"] == 0]
    assert sim_events[-1]["invalid"] == run.rounds[0].num_invalid


def test_mostly_failing_simulator_is_a_clear_error():
    prior = Prior.uniform_box(["a"], 0.0, 1.0)
    with pytest.raises(SBIError, match="returned NaN or infinity"):
        run_sequential(lambda t: torch.full((t.shape[0], 1), float("nan")), prior, torch.tensor([0.5]),
                       method="npe", simulations_per_round=100)


def test_observation_length_mismatch_is_clear():
    sim = sbi_core.get_simulator("two_moons")
    with pytest.raises(SBIError, match="has 3 numbers"):
        run_sequential(sim, sim.prior, torch.zeros(3), method="npe", simulations_per_round=100)


def test_cancel_during_simulation():
    sim = sbi_core.get_simulator("two_moons")
    calls = {"n": 0}
    events = []

    def cancel():
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(Cancelled):
        run_sequential(sim, sim.prior, sim.default_observation, simulations_per_round=1000, cancel=cancel,
                       on_event=events.append)
    assert calls["n"] == 4
    assert not [e for e in events if e["type"] == "epoch"], "cancelled before any training"


def test_cancel_during_training():
    """A cancel that first says yes once training has begun stops it within that epoch."""
    sim = sbi_core.get_simulator("two_moons")
    epochs = []
    answers = []

    def on_event(event):
        if event["type"] == "epoch":
            epochs.append(event["epoch"])
        assert event["type"] != "round", "the round should never finish"

    def cancel():
        answers.append(len(epochs) >= 2)
        return answers[-1]

    with pytest.raises(Cancelled):
        run_sequential(sim, sim.prior, sim.default_observation, method="snpe", num_rounds=2,
                       simulations_per_round=300, seed=0, max_epochs=50, patience=100, hidden_features=16,
                       num_transforms=2, cancel=cancel, on_event=on_event)
    assert epochs[:2] == [1, 2]
    assert len(epochs) <= 3, epochs  # at most the epoch that was under way
    assert answers.count(True) == 1 and answers[-1] is True  # the first yes was obeyed

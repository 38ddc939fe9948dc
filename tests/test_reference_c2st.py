"""C2ST of each round's posterior against the exact posterior (sbi_core.diagnostics.reference):
when it applies and why not, its values, that it changes nothing else of a run, and where the
Train and Rounds pages show it."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from sbi_core import get_simulator, plots, run_sequential
from sbi_core.diagnostics import ReferenceC2ST, ReferenceScore, reference_unavailable
from sbi_core.diagnostics.reference import MIN_SAMPLES, reference_sample_size
from sbi_core.events import REFERENCE_PENDING, fold_reference
from sbi_core.jobs.worker import run_worker
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore
from apptest_support import run_page


pytestmark = pytest.mark.timeout(240)

WIDE = [{"name": "theta1", "dist": "uniform", "low": -2.0, "high": 2.0},
        {"name": "theta2", "dist": "uniform", "low": -2.0, "high": 2.0}]
TINY = dict(simulations_per_round=200, hidden_features=16, num_transforms=2, max_epochs=10, patience=5,
            num_posterior_samples=300, seed=1)


# ---- when it applies ------------------------------------------------------------------------
def test_applies_to_a_builtin_with_its_default_prior():
    sim = get_simulator("two_moons")
    assert reference_unavailable(sim, sim.prior, sim.default_observation) is None
    assert reference_unavailable(sim, sim.prior.to_spec(), sim.default_observation) is None  # a spec is the same prior


def test_says_why_it_does_not_apply():
    sim = get_simulator("two_moons")
    custom = reference_unavailable(sim, WIDE, sim.default_observation)
    assert custom.startswith("Custom prior") and "default prior" in custom
    assert "not known in closed form" in reference_unavailable(get_simulator("sir"), get_simulator("sir").prior,
                                                               get_simulator("sir").default_observation)
    assert "table of simulations" in reference_unavailable(None, sim.prior, sim.default_observation)
    assert "3 numbers but Two moons produces 2" in reference_unavailable(sim, sim.prior, torch.zeros(3))


def test_sample_size_keeps_the_cost_down_with_dimension():
    assert [reference_sample_size(d) for d in (1, 2, 3, 10)] == [500, 500, 200, 200]


# ---- its values -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["two_moons", "gaussian_mixture", "linear_regression"])
def test_exact_samples_against_exact_samples_score_near_one_half(name):
    sim = get_simulator(name)
    ref = ReferenceC2ST(sim, sim.prior, sim.default_observation, seeds=0)
    other = sim.reference_posterior(sim.default_observation, ref.num_samples, seed=99)
    score = ref.score(other)
    assert score.reason is None and score.num_samples == ref.num_samples
    assert abs(score.value - 0.5) < 0.07, score.value


def test_shifted_samples_score_near_one():
    sim = get_simulator("gaussian_mixture")
    ref = ReferenceC2ST(sim, sim.prior, sim.default_observation, seeds=0)
    exact = sim.reference_posterior(sim.default_observation, ref.num_samples, seed=5)
    assert ref.score(exact + 3.0).value > 0.9


def test_exact_samples_are_drawn_once_per_run_and_seeded():
    sim = get_simulator("two_moons")
    calls = []

    class Counting:
        has_reference_posterior, prior, x_dim, title = True, sim.prior, sim.x_dim, sim.title

        def reference_posterior(self, x, n, generator=None):
            calls.append(n)
            return sim.reference_posterior(x, n, generator=generator)

    ref = ReferenceC2ST(Counting(), sim.prior, sim.default_observation, seeds=3)
    samples = sim.reference_posterior(sim.default_observation, 500, seed=8)
    first, second = ref.score(samples), ref.score(samples)
    assert calls == [500] and first.value == second.value
    again = ReferenceC2ST(sim, sim.prior, sim.default_observation, seeds=3)
    assert torch.equal(again.exact_samples(), ref.exact_samples())


def test_too_few_samples_give_a_reason_not_a_number():
    sim = get_simulator("two_moons")
    ref = ReferenceC2ST(sim, sim.prior, sim.default_observation, seeds=0)
    score = ref.score(sim.reference_posterior(sim.default_observation, MIN_SAMPLES - 1, seed=2))
    assert score.value is None and f"at least {MIN_SAMPLES}" in score.reason


# ---- in the run ---------------------------------------------------------------------------------
def _run(prior=None, method="snpe", rounds=2, **kw):
    sim = get_simulator("two_moons")
    events = []
    run = run_sequential(sim, prior if prior is not None else sim.prior, sim.default_observation, method=method,
                         num_rounds=rounds, on_event=events.append, **{**TINY, **kw})
    return run, _folded(events)


def _folded(events: list) -> list:
    """The round events with their C2ST, as the store keeps them: each ``reference`` event follows its
    round's event (the cloud goes out first) and is folded into it."""
    rounds = []
    for e in events:
        if e["type"] == "round":
            rounds.append(e)
        elif e["type"] == "reference":
            assert rounds and rounds[-1]["round"] == e["round"]  # right after the round it measures
            assert rounds[-1]["reference_c2st_reason"] == REFERENCE_PENDING
            rounds[-1] = fold_reference(rounds[-1], e)
    return rounds


def test_each_round_event_of_a_two_moons_run_carries_its_c2st():
    run, events = _run()
    assert len(events) == 2
    for rr, ev in zip(run.rounds, events):
        assert 0.5 <= ev["reference_c2st"] <= 1.0 and ev["reference_c2st_reason"] is None
        assert rr.reference_c2st == ev["reference_c2st"] and ev["seconds"]["reference"] > 0


def test_an_amortized_run_has_one_value():
    run, events = _run(method="npe", rounds=1)
    assert len(events) == 1 and 0.5 <= events[0]["reference_c2st"] <= 1.0


def test_a_custom_prior_run_carries_none_with_the_reason():
    run, events = _run(prior=WIDE, rounds=1)
    assert events[0]["reference_c2st"] is None and run.rounds[0].reference_c2st is None
    assert "default prior" in events[0]["reference_c2st_reason"]
    assert run.rounds[0].reference_c2st_reason == events[0]["reference_c2st_reason"]
    assert "reference" not in events[0]["seconds"]


def test_the_c2st_changes_nothing_else_in_the_run(monkeypatch):
    """Same seed with and without the comparison: bit-identical posterior samples in every round."""
    with_it, _ = _run(method="tsnpe")

    class Off(ReferenceC2ST):
        def score(self, samples):
            return ReferenceScore(None, "switched off")

    monkeypatch.setattr("sbi_core.run.loop.ReferenceC2ST", Off)
    without, events = _run(method="tsnpe")
    assert events[0]["reference_c2st_reason"] == "switched off"
    for a, b in zip(with_it.rounds, without.rounds):
        assert torch.equal(a.posterior_samples, b.posterior_samples) and torch.equal(a.theta, b.theta)


def test_the_cloud_is_sent_before_its_c2st_and_the_store_folds_it_in(tmp_path):
    """The round event goes out as soon as the round has trained; its C2ST follows in a ``reference``
    event, and a round event read back from the store carries the value."""
    sim = get_simulator("two_moons")
    raw = []
    run_sequential(sim, sim.prior, sim.default_observation, method="npe", num_rounds=1, on_event=raw.append, **TINY)
    kinds = [e["type"] for e in raw]
    assert kinds.index("round") + 1 == kinds.index("reference")
    assert raw[kinds.index("round")]["reference_c2st"] is None
    store = RunStore(tmp_path / "store")
    rid = store.create_run(RunSpec(simulator="two_moons", method="npe", num_rounds=1, **TINY))
    for e in raw:
        store.append_event(rid, e)
    (_, stored), = store.events(rid, types=("round",))
    assert stored["reference_c2st"] == raw[kinds.index("reference")]["reference_c2st"]
    assert stored["reference_c2st_reason"] is None and stored["seconds"]["reference"] > 0
    from sbi_ui.tracker import RunTracker

    follower = RunTracker(rid)  # a page that read the round before its C2ST came
    follower._fold(raw[kinds.index("round")])
    assert follower.rounds[0]["reference_c2st_reason"] == REFERENCE_PENDING
    follower._fold(raw[kinds.index("reference")])
    assert follower.rounds[0]["reference_c2st"] == stored["reference_c2st"]


def test_the_per_round_chart_draws_the_values():
    fig = plots.reference_c2st_figure([0.9, 0.7, 0.55])
    assert list(fig.data[-1].y) == [0.9, 0.7, 0.55] and "exact posterior" in fig.layout.title.text


# ---- the pages ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished 2-round SNPE two-moons run (default prior) and a 1-round one with a wider prior."""
    root = tmp_path_factory.mktemp("c2st_store")
    store = RunStore(root)
    ids = {}
    ids["default"] = store.create_run(RunSpec(simulator="two_moons", method="snpe", num_rounds=2, num_threads=1,
                                              title="c2st default prior", **TINY))
    ids["custom"] = store.create_run(RunSpec(simulator="two_moons", prior=WIDE, method="snpe", num_rounds=1,
                                             num_threads=1, title="c2st custom prior", **TINY))
    for rid in ids.values():
        assert run_worker(store, rid) == "done"
    return root, store, ids


@pytest.fixture
def in_runs(runs, monkeypatch):
    root, store, ids = runs
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    return store, ids


def _c2st_values(store: RunStore, rid: str) -> list[float]:
    return [ev["reference_c2st"] for _, ev in store.events(rid, types=("round",))]


@pytest.mark.slow
def test_train_page_shows_the_c2st_beside_the_cloud(in_runs):
    store, ids = in_runs
    values = _c2st_values(store, ids["default"])
    at = run_page(ids["default"], "pages/train.py")
    lines = [m.value for m in at.markdown if "Match to the exact posterior (C2ST)" in m.value]
    assert len(lines) == 1
    assert f"**{values[1]:.2f}** after round 2 ({values[0]:.2f} after round 1)" in lines[0]
    assert "0.5 = indistinguishable" in lines[0]
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert sum(plots.REFERENCE_C2ST_TITLE in s for s in specs) == 1 and any("Posterior after each round" in s
                                                                             for s in specs)


@pytest.mark.slow
def test_rounds_page_has_a_c2st_column_and_chart(in_runs):
    store, ids = in_runs
    at = run_page(ids["default"], "pages/rounds.py")
    overview = at.dataframe[0].value
    assert np.allclose(overview["vs exact (C2ST)"].to_numpy(dtype=float), _c2st_values(store, ids["default"]))
    assert any(plots.REFERENCE_C2ST_TITLE in c.proto.spec for c in at.get("plotly_chart"))


@pytest.mark.slow
def test_a_custom_prior_run_says_why_there_is_no_c2st(in_runs):
    store, ids = in_runs
    at = run_page(ids["custom"], "pages/train.py")
    assert not any("Match to the exact posterior" in m.value for m in at.markdown)
    assert any("No comparison with the exact posterior: Custom prior" in c.value for c in at.caption)
    at = run_page(ids["custom"], "pages/rounds.py")
    assert "vs exact (C2ST)" not in at.dataframe[0].value.columns

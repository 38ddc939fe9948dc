"""The out-of-distribution warning (sbi_core.diagnostics.ood): in-distribution observations pass,
far ones warn and name their components, the false-alarm rate is the nominal level, and the
Explore and Train pages show the warning before the posterior."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from sbi_core import SBIError, get_simulator
from sbi_core.diagnostics import TrainingSupport, ood_check
from sbi_core.diagnostics.ood import LEVEL
from sbi_core.jobs.worker import run_worker
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore
from apptest_support import run_page


pytestmark = pytest.mark.timeout(180)


def prior_simulations(name: str, n: int, seed: int) -> tuple:
    sim = get_simulator(name)
    theta = sim.prior.sample((n,), generator=torch.Generator().manual_seed(seed))
    return sim, sim.simulate(theta, seed=seed + 1).numpy()


@pytest.fixture(scope="module")
def moons():
    sim, x = prior_simulations("two_moons", 5000, 0)
    return sim, x, TrainingSupport.fit(x, seed=0)


def test_the_default_observation_is_in_distribution(moons):
    sim, _, support = moons
    check = support.check(sim.default_observation, labels=sim.obs_labels())
    assert not check.warn and check.p_value > 0.01
    assert check.threshold == LEVEL and check.num_calibration == 1000 and check.num_training == 5000
    assert "like the simulations the network was trained on" in check.message


def test_a_far_observation_warns_and_names_its_components(moons):
    sim, x, support = moons
    check = support.check(sim.default_observation + 50, labels=["first", "second"])
    assert check.warn and check.p_value == pytest.approx(1 / 1001)
    assert {c.label for c in check.beyond} == {"first", "second"}
    assert all(c.side == "above" and c.excess > 10 for c in check.beyond)
    msg = check.message
    assert "unlike the simulations the network was trained on" in msg and "extrapolation" in msg
    assert "first = " in msg and "beyond every training simulation" in msg and "units" in msg
    assert f"{x[:, 0].max():.4g}" in msg  # the edge of the training range it lies beyond


def test_false_alarm_rate_is_the_nominal_level(moons):
    sim, _, support = moons
    _, fresh = prior_simulations("two_moons", 2000, 7)
    p = np.array([support.check(f).p_value for f in fresh])
    for level in (0.01, 0.05, 0.2):
        rate = float((p <= level).mean())
        spread = 3 * np.sqrt(level * (1 - level) / 1000) + 3 * np.sqrt(level * (1 - level) / 2000)
        assert abs(rate - level) < spread, (level, rate)
    assert (p <= LEVEL).mean() <= 0.004  # warnings on typical data are rare


def test_multimodal_100_components_the_gap_between_modes_warns():
    """Two modes six spreads apart in 100 dimensions: a point of either mode passes, the empty middle
    (near the overall mean, where a Mahalanobis distance would call it typical) warns, although every
    one of its numbers lies inside the training range."""
    rng = np.random.default_rng(1)

    def draw(n):
        return rng.normal(size=(n, 100)) + 6.0 * rng.integers(0, 2, size=(n, 1))

    support = TrainingSupport.fit(draw(10_000), seed=0)
    fresh = draw(300)
    assert np.mean([support.check(f).warn for f in fresh]) < 0.02
    middle = support.check(np.full(100, 3.0))
    assert middle.warn and not middle.beyond
    assert "combination that is new" in middle.message


def test_a_ring_its_empty_centre_warns():
    rng = np.random.default_rng(2)
    angle = rng.uniform(0, 2 * np.pi, 3000)
    ring = np.c_[np.cos(angle), np.sin(angle)] + 0.05 * rng.normal(size=(3000, 2))
    check = ood_check(ring, [0.0, 0.0], seed=3)
    assert check.warn and not check.beyond
    assert not ood_check(ring, [0.0, 1.0], seed=3).warn


def test_discrete_simulations_ties_are_not_alarms():
    sim, x = prior_simulations("coin_flip", 3000, 4)
    support = TrainingSupport.fit(x, seed=0)
    assert not support.check(x[0]).warn and support.check(x[0]).p_value == 1.0
    assert support.check(x.max(0) + 5).warn


def test_small_training_sets_warn_only_beyond_every_calibration_point():
    _, x = prior_simulations("two_moons", 200, 5)
    support = TrainingSupport.fit(x, seed=0)
    assert support.num_calibration == 200 and support.check([9.0, 9.0]).threshold == pytest.approx(1 / 201)
    assert support.check([9.0, 9.0]).warn
    assert "than every one of 200 training simulations" in support.check([9.0, 9.0]).message


def test_bad_input_says_what_to_fix():
    x = np.random.default_rng(0).normal(size=(500, 3))
    x[:10] = np.nan
    support = TrainingSupport.fit(x, seed=0)
    assert support.num_training == 490  # rows with NaN left out
    with pytest.raises(SBIError, match="observation has 2 numbers but the training simulations have 3"):
        support.check([0.0, 1.0])
    with pytest.raises(SBIError, match="NaN or infinite"):
        support.check([0.0, np.inf, 1.0])
    with pytest.raises(SBIError, match="needs at least 20"):
        TrainingSupport.fit(x[10:15], seed=0)


def test_same_seed_same_verdict():
    _, x = prior_simulations("two_moons", 3000, 6)
    a, b = TrainingSupport.fit(x, seed=4), TrainingSupport.fit(x, seed=4)
    assert np.array_equal(a.calibration, b.calibration)
    assert a.check([0.1, 0.2]).p_value == b.check([0.1, 0.2]).p_value


# ---- the pages ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def far_store(tmp_path_factory):
    """A store with a tiny finished amortized Gaussian-linear run whose observation is 5 (about 10
    spreads of the simulations) above the default one in x1 and x2 (a normal prior: its posterior can
    still be sampled there)."""
    root = tmp_path_factory.mktemp("far_store")
    store = RunStore(root)
    obs = get_simulator("gaussian_linear").default_observation
    obs[:2] += 5.0
    spec = RunSpec(simulator="gaussian_linear", observation=obs.tolist(), method="npe", num_rounds=1,
                   simulations_per_round=300, max_epochs=3, hidden_features=16, num_transforms=2,
                   num_posterior_samples=300, num_threads=1, title="far observation")
    rid = store.create_run(spec)
    assert run_worker(store, rid) == "done"
    return root, rid


@pytest.fixture
def far_run(far_store, monkeypatch):
    root, rid = far_store
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    return rid


def _ood_warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning if "unlike the simulations the network was trained on" in w.value]


@pytest.mark.slow
def test_explore_page_warns_for_a_far_observation_before_the_posterior(far_run):
    at = run_page(far_run, "pages/explore.py")
    warnings = _ood_warnings(at)
    plain = warnings[0].replace("\\", "") if warnings else ""  # names are shown markdown-escaped
    assert len(warnings) == 1 and "x1 = " in plain and "x2 = " in plain
    # the per-component note about the same observation is not repeated above the sliders
    assert not any(w.value.startswith("The run's observation lies beyond") for w in at.warning)
    assert any("Posterior at the observation" in c.proto.spec for c in at.get("plotly_chart"))
    # the warning comes before the posterior chart in the page
    order = list(_walk(at.main))
    warning_at = next(i for i, n in enumerate(order) if getattr(n, "value", None) == warnings[0])
    chart_at = next(i for i, n in enumerate(order)
                    if "Posterior at the observation" in getattr(getattr(n, "proto", None), "spec", ""))
    assert warning_at < chart_at


def _walk(node):
    """Every element under ``node`` in page order (depth first)."""
    for child in getattr(node, "children", {}).values():
        yield child
        yield from _walk(child)


@pytest.mark.slow
def test_train_page_warns_for_a_far_observation(far_run):
    """The run tested its observation against its first simulations before training (its ``misspecification``
    event): the Train page shows that verdict, naming the components, and not the older out-of-range warning."""
    at = run_page(far_run, "pages/train.py")
    warnings = [w.value.replace("\\", "") for w in at.warning if "rarely produces data like yours" in w.value]
    assert len(warnings) == 1 and "x1" in warnings[0] and "x2" in warnings[0], [w.value for w in at.warning]
    assert not _ood_warnings(at)


@pytest.mark.slow
def test_train_page_of_a_run_from_before_the_test_keeps_the_out_of_range_warning(far_store, tmp_path, monkeypatch):
    """A run whose events have no misspecification test (stored by an older version) still gets the warning."""
    import shutil
    import sqlite3

    root, rid = far_store
    copy = tmp_path / "store"
    shutil.copytree(root, copy)
    store = RunStore(copy)
    assert store.events(rid, types=["misspecification"])
    store.close()
    with sqlite3.connect(copy / "runs.sqlite3") as con:  # as a version from before the test stored it
        con.execute("DELETE FROM events WHERE type = 'misspecification'")
    assert not RunStore(copy).events(rid, types=["misspecification"])
    monkeypatch.setenv("SBI_STORE_DIR", str(copy))
    at = run_page(rid, "pages/train.py")
    assert len(_ood_warnings(at)) == 1


# ---- the run's own test of its observation, before it trains ------------------------------------
def _events(spec: RunSpec) -> list[dict]:
    from sbi_core.run.loop import execute

    events: list[dict] = []
    try:
        execute(spec, on_event=events.append)
    except SBIError:  # an observation the posterior cannot be sampled at: the test came before
        pass
    return events


def test_a_run_tests_its_observation_before_it_trains():
    """The first round's simulations test x_o (misspecification event) before the first epoch: a typical
    observation passes, one far off the model is flagged with the components to look at."""
    base = dict(simulator="gaussian_linear", method="npe", num_rounds=1, simulations_per_round=300, max_epochs=2,
                hidden_features=16, num_transforms=2, num_posterior_samples=100, num_threads=1)
    typical = _events(RunSpec(**base))
    types = [e["type"] for e in typical]
    assert types.count("misspecification") == 1 and types.index("misspecification") < types.index("epoch")
    ev = next(e for e in typical if e["type"] == "misspecification")
    assert not ev["misspecified"] and ev["p_value"] > 0.05 and ev["n_train"] == 300
    assert "looks like data the model produces" in ev["verdict"]

    obs = get_simulator("gaussian_linear").default_observation
    obs[:2] += 5.0
    far = next(e for e in _events(RunSpec(**base, observation=obs.tolist())) if e["type"] == "misspecification")
    assert far["misspecified"] and far["p_value"] <= 1.0 / (far["n_calibration"] + 1) + 1e-9
    assert {f["label"] for f in far["features"][:2]} == {"x1", "x2"} and "rarely produces" in far["verdict"]


def test_the_test_draws_nothing_from_the_run_streams():
    """Same spec, same samples: the test's seed stream is its own (NumPy), so the run's draws do not change."""
    from sbi_core.run.loop import execute

    spec = RunSpec(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=200, max_epochs=2,
                   hidden_features=16, num_transforms=2, num_posterior_samples=50, num_threads=1, seed=3)
    with_test = execute(spec, on_event=lambda e: None)
    import sbi_core.run.loop as loop

    original = loop._test_model
    loop._test_model = lambda *a, **k: None
    try:
        without = execute(spec, on_event=lambda e: None)
    finally:
        loop._test_model = original
    assert torch.equal(with_test.rounds[0].posterior_samples, without.rounds[0].posterior_samples)

"""Calibration checks of stored runs (sbi_core.checks): which apply, computing them, keeping them, the job.

Runs are tiny (a few hundred simulations, a few epochs) and carried out in-process with
:func:`sbi_core.jobs.worker.run_worker`; the check job tests start real worker processes through the
:class:`~sbi_core.jobs.manager.JobManager`. The statistics of the checks themselves are tested in
``tests/test_diagnostics.py``; here the verdicts are tested on exact and deliberately shrunk
Gaussian posteriors, whose answers are known.
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from sbi_core import SBIError, plots
from sbi_core.checks import (
    CHECK_KEYS,
    CheckOptions,
    broken_spec,
    broken_twin,
    checks_dir,
    load_results,
    plan_checks,
    run_checks,
    save_results,
    start_broken_twin,
    verdicts as V,
)
from sbi_core.checks.testset import simulate_test_set, validation_indices
from sbi_core.diagnostics.coverage import central_coverage
from sbi_core.errors import Cancelled
from sbi_core.jobs.manager import JobManager
from sbi_core.jobs.worker import run_worker
from sbi_core.run.spec import RunSpec
from sbi_core.simulators import get_simulator
from sbi_core.stats import bands
from sbi_core.stats.seeds import SeedPlan
from sbi_core.store.runs import RunStore, pid_alive
from sbi_core.uploads.files import save_upload

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "assets" / "examples" / "two_moons_simulations.csv"
SMALL = {"num_datasets": 60, "num_posterior_samples": 30}


def tiny(**kw) -> RunSpec:
    base = dict(simulator="linear_regression", method="npe", num_rounds=1, simulations_per_round=300, max_epochs=8,
                hidden_features=16, num_transforms=2, num_posterior_samples=200, num_threads=1, title="tiny")
    base.update(kw)
    return RunSpec(**base)


def table_spec(store: RunStore, **kw) -> RunSpec:
    path = save_upload(store.root, TABLE.read_bytes(), TABLE.name)
    base = dict(simulator={"kind": "table", "path": str(path), "theta_columns": ["theta1", "theta2"],
                           "x_columns": ["x1", "x2"], "name": TABLE.name},
                prior=[{"name": "theta1", "dist": "uniform", "low": -1.05, "high": 1.05},
                       {"name": "theta2", "dist": "uniform", "low": -1.05, "high": 1.05}],
                observation=[0.1, 0.2], method="npe", num_rounds=1, simulations_per_round=2000, max_epochs=3,
                hidden_features=16, num_transforms=2, num_posterior_samples=200, num_threads=1, title="table")
    base.update(kw)
    return RunSpec(**base)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A store with a finished amortized run, a 2-round SNPE run and a run trained on a table."""
    store = RunStore(tmp_path_factory.mktemp("checks_store"))
    ids = {}
    ids["npe"] = store.create_run(tiny())
    ids["snpe"] = store.create_run(tiny(simulator="two_moons", method="snpe", num_rounds=2,
                                        simulations_per_round=150, max_epochs=3))
    for key in ("npe", "snpe"):
        assert run_worker(store, ids[key]) == "done", store.get_run(ids[key]).message
    seen = {}
    import sbi_core.nn.training as training

    real_split = training._split

    def recording_split(n, fraction, minimum, generator):  # what training really held out
        out = real_split(n, fraction, minimum, generator)
        seen["val"] = out[1].clone()
        return out

    training._split = recording_split
    try:
        ids["table"] = store.create_run(table_spec(store))
        assert run_worker(store, ids["table"]) == "done", store.get_run(ids["table"]).message
    finally:
        training._split = real_split
    return store, ids, seen["val"]


@pytest.fixture(scope="module")
def npe_results(runs):
    store, ids, _ = runs
    return run_checks(store, ids["npe"], SMALL)


# ---------------------------------------------------------------------------
# which checks apply
# ---------------------------------------------------------------------------
def test_amortized_run_gets_every_check():
    plan = plan_checks(tiny())
    assert plan.kind == "amortized" and plan.test_data == "prior"
    assert all(plan.applies(k) for k in CHECK_KEYS)  # linear regression has an exact posterior


def test_sequential_run_gets_no_prior_wide_checks_and_says_why():
    plan = plan_checks(RunSpec(simulator="two_moons", method="snpe", num_rounds=3))
    assert plan.kind == "sequential" and not plan.needs_test_data
    for key in ("sbc", "coverage", "tarp", "zscore", "recovery"):
        assert not plan.applies(key)
        assert "observation only" in plan.item(key).reason
    assert plan.applies("predictive") and plan.applies("reference_c2st")
    assert "not across the prior" in plan.summary
    changed = [{"name": "theta1", "dist": "uniform", "low": -0.5, "high": 0.5},
               {"name": "theta2", "dist": "uniform", "low": -0.5, "high": 0.5}]
    plan = plan_checks(RunSpec(simulator="two_moons", method="snpe", num_rounds=3, prior=changed))
    assert not plan.applies("reference_c2st") and "default prior" in plan.item("reference_c2st").reason


def test_sequential_run_with_one_finished_round_is_amortized():
    plan = plan_checks(RunSpec(simulator="two_moons", method="snpe", num_rounds=3), rounds_done=1)
    assert plan.kind == "amortized" and plan.applies("sbc") and "first round" in plan.summary


def test_tsnpe_is_checked_in_its_truncated_region():
    plan = plan_checks(RunSpec(simulator="two_moons", method="tsnpe", num_rounds=3))
    assert plan.kind == "truncated" and plan.test_data == "truncated"
    assert plan.applies("coverage") and plan.applies("sbc") and not plan.applies("zscore")
    assert "truncated region" in plan.item("coverage").reason


def test_table_run_uses_held_out_rows_and_skips_the_predictive_check(tmp_path):
    plan = plan_checks(table_spec(RunStore(tmp_path)))
    assert plan.kind == "table" and plan.test_data == "table"
    assert plan.applies("sbc") and plan.applies("coverage") and "validation rows" in plan.item("sbc").reason
    assert not plan.applies("predictive") and "no simulator" in plan.item("predictive").reason


# ---------------------------------------------------------------------------
# computing them
# ---------------------------------------------------------------------------
def test_small_amortized_run_produces_every_result(npe_results):
    s, a = npe_results.summary, npe_results.arrays
    for key in CHECK_KEYS:
        if key == "ensemble":  # asked for with ensemble_members (tests/test_ensemble_check.py); off by default
            assert not npe_results.has(key) and key not in s.get("skipped", {})
            continue
        assert npe_results.has(key), key
        assert npe_results.verdicts(key), key
    n, d = a["theta"].shape
    assert (n, d) == (60, 2) and s["test_set"] == {"source": "prior", "size": 60, "num_requested": 60,
                                                   "num_invalid": 0}
    assert a["ranks"].shape == (60, 2) and a["ranks"].min() >= 0 and a["ranks"].max() <= 30
    assert a["coverage_central"].shape == (len(a["coverage_levels"]), 2)
    assert np.all(np.diff(a["coverage_hpd"]) >= 0)  # coverage grows with the level
    assert a["tarp_ecp"].shape == a["tarp_alpha"].shape
    assert a["zscore"].shape == a["contraction"].shape == a["post_mean"].shape == (60, 2)
    assert a["ppc_lower"].shape == a["ppc_upper"].shape == a["x_obs"].shape == (10,)
    assert len(a["reference_c2st"]) == 1 and 0.0 <= a["reference_c2st"][0] <= 1.0
    assert s["overall"]["kind"] in ("good", "warn", "bad", "info") and s["overall"]["text"]
    assert s["options"]["seed"] == SeedPlan(0).seed_of("checks")


def test_checks_are_reproducible_and_leave_global_rng_alone(runs, npe_results):
    store, ids, _ = runs
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    again = run_checks(store, ids["npe"], SMALL)
    assert torch.equal(torch.get_rng_state(), torch_state) and np.array_equal(np.random.get_state()[1], np_state)
    for name in ("theta", "ranks", "coverage_hpd", "tarp_ecp", "ppc_lower"):
        np.testing.assert_array_equal(again.arrays[name], npe_results.arrays[name])
    other = run_checks(store, ids["npe"], dict(SMALL, seed=123))
    assert not np.array_equal(other.arrays["theta"], npe_results.arrays["theta"])


def test_results_are_saved_and_reload(tmp_path, npe_results):
    folder = save_results(tmp_path / "checks", npe_results)
    back = load_results(folder)
    assert back.summary["verdicts"] == npe_results.summary["verdicts"]
    assert back.summary["overall"] == npe_results.summary["overall"]
    assert set(back.arrays) == set(npe_results.arrays)
    for name, value in npe_results.arrays.items():
        np.testing.assert_array_equal(back.arrays[name], value)
    assert load_results(tmp_path / "nothing") is None
    (folder / "summary.json").write_text("{not json")
    assert load_results(folder) is None


def test_sequential_run_gets_predictive_and_reference_checks_only(runs):
    store, ids, _ = runs
    res = run_checks(store, ids["snpe"], SMALL)
    assert not any(res.has(k) for k in ("sbc", "coverage", "tarp", "zscore", "recovery"))
    assert res.has("predictive") and len(res.arrays["reference_c2st"]) == 2
    assert "theta" not in res.arrays and res.summary["plan"]["kind"] == "sequential"


def test_tsnpe_run_is_checked_on_data_from_its_truncated_region(tmp_path):
    from sbi_core.methods import TruncatedPrior

    store = RunStore(tmp_path)
    rid = store.create_run(tiny(method="tsnpe", num_rounds=2, simulations_per_round=500, max_epochs=20))
    assert run_worker(store, rid) == "done", store.get_run(rid).message
    res = run_checks(store, rid, SMALL)
    assert res.summary["plan"]["kind"] == "truncated" and res.summary["test_set"]["source"] == "truncated"
    assert res.has("sbc") and res.has("coverage") and res.has("tarp") and res.has("predictive")
    assert not res.has("zscore")  # contraction against the prior means nothing inside a region
    assert "truncated region" in " ".join(v["text"] for v in res.verdicts("coverage"))
    # the test parameters come from the region round 1 was trained on, not from the whole prior
    sim = get_simulator("linear_regression")
    with torch.random.fork_rng(devices=[]):
        first = store.load_posterior(rid, 0)
    region = TruncatedPrior(sim.prior, first, sim.default_observation, quantile=1e-5, num_reference=20_000,
                            generator=torch.Generator().manual_seed(1))
    theta = torch.as_tensor(res.arrays["theta"], dtype=torch.float32)
    assert region.contains(theta).float().mean() >= 0.97
    prior_draws = sim.prior.sample((2000,))
    assert region.contains(prior_draws).float().mean() < 0.8  # a real truncation, so the test can fail


def test_table_run_is_checked_on_the_rows_training_held_out(runs):
    store, ids, trained_val = runs
    spec = store.get_run(ids["table"]).spec
    theta = np.load(store.round_dir(ids["table"], 0) / "theta.npy")
    assert torch.equal(validation_indices(len(theta), spec), trained_val)
    res = run_checks(store, ids["table"], {"num_datasets": 5000, "num_posterior_samples": 30})
    assert res.summary["test_set"]["source"] == "table" and res.summary["test_set"]["size"] == len(trained_val)
    np.testing.assert_array_equal(res.arrays["theta"], theta[trained_val.numpy()])
    assert res.has("sbc") and res.has("coverage") and not res.has("predictive")
    assert "held-out table rows" in " ".join(v["text"] for v in res.verdicts("coverage"))


def _nan_simulator(name: str, fraction: float):
    """The built-in ``name`` returning NaN wherever the first parameter is in its top ``fraction``."""
    sim = get_simulator(name)
    lo, hi = [float(v) for v in sim.prior.bounds[0]]
    cut = hi - fraction * (hi - lo)

    def simulate(theta, generator):
        x = get_simulator(name).simulate_fn(theta, generator)
        x[theta[:, 0] > cut] = float("nan")
        return x

    return dataclasses.replace(sim, simulate_fn=simulate)


def test_nan_simulations_are_dropped_and_counted(runs, monkeypatch):
    store, ids, _ = runs
    import sbi_core.checks.compute as compute

    monkeypatch.setattr(compute, "_simulator", lambda spec: _nan_simulator("linear_regression", 0.2))
    res = run_checks(store, ids["npe"], SMALL)
    test = res.summary["test_set"]
    assert test["num_invalid"] > 0 and test["size"] + test["num_invalid"] == 60
    assert res.arrays["ranks"].shape == (test["size"], 2) and np.isfinite(res.arrays["xs"]).all()
    assert res.has("sbc") and res.has("tarp")


def test_a_simulator_that_only_returns_nan_fails_with_a_clear_message():
    sim = _nan_simulator("linear_regression", 1.01)
    with pytest.raises(SBIError, match="Only 0 of 40 test simulations are usable"):
        simulate_test_set(sim, sim.prior, 40, SeedPlan(0), "prior")


def test_cancel_stops_the_checks(runs):
    store, ids, _ = runs
    steps = []
    with pytest.raises(Cancelled):
        run_checks(store, ids["npe"], SMALL, on_progress=lambda f, s: steps.append(s),
                   cancel=lambda: len(steps) > 2)
    assert not load_results(checks_dir(store, ids["npe"]))  # nothing saved by run_checks itself


def test_bad_options_say_what_to_fix():
    with pytest.raises(SBIError, match="test datasets must be a whole number from 20"):
        CheckOptions(num_datasets=5)
    with pytest.raises(SBIError, match="Unknown check option"):
        CheckOptions.from_dict({"datasets": 10})


# ---------------------------------------------------------------------------
# verdicts: exact and shrunk Gaussian posteriors (theta ~ N(0, 1), x = theta + N(0, 1))
# ---------------------------------------------------------------------------
def _gaussian_draws(scale: float, shift: float = 0.0, n: int = 400, L: int = 100):
    g = torch.Generator().manual_seed(1)
    theta = torch.randn(n, 1, generator=g)
    x = theta + torch.randn(n, 1, generator=g)
    mean, sd = x / 2, math.sqrt(0.5)
    samples = mean[:, None, :] + shift + scale * sd * torch.randn(n, L, 1, generator=g)
    return theta, samples


def test_verdicts_call_an_exact_posterior_calibrated_and_a_shrunk_one_overconfident():
    for scale, shift, kind, words in ((1.0, 0.0, "good", "Well calibrated for theta"),
                                      (0.5, 0.0, "bad", "Overconfident for theta")):
        theta, samples = _gaussian_draws(scale, shift)
        outside = 1 - central_coverage(theta, samples, (0.9,))[0]
        (v,) = V.coverage_verdicts(["theta"], outside.tolist(), len(theta))
        assert v.kind == kind and v.text.startswith(words), v.text
    (v,) = V.coverage_verdicts(["theta2"], [0.31], 200)
    assert v.text.startswith("Overconfident for theta2: the true value fell outside its 90 % interval in 31 % "
                             "of the 200 test simulations")


def test_verdicts_see_bias_and_the_shape_of_the_ranks():
    theta, samples = _gaussian_draws(1.0, shift=0.8)
    err = (samples.mean(1) - theta) / samples.std(1)
    vs = V.coverage_verdicts(["mu"], [0.2], len(theta), err.mean(0).tolist(), (err.std(0) / 20).tolist())
    assert any(v.text.startswith("Biased for mu") and "above" in v.text for v in vs)
    ranks = (samples < theta[:, None, :]).sum(1).double()
    u = (ranks + 0.5) / 101
    (v,) = V.sbc_verdicts(["mu"], [1e-6], ((u < 0.05) | (u > 0.95)).double().mean(0).tolist(),
                          u.mean(0).tolist(), len(theta))
    assert v.kind == "bad" and "lie above the true value" in v.text
    theta, samples = _gaussian_draws(0.5)
    ranks = (samples < theta[:, None, :]).sum(1).double()
    u = (ranks + 0.5) / 101
    (v,) = V.sbc_verdicts(["mu"], [1e-6], ((u < 0.05) | (u > 0.95)).double().mean(0).tolist(),
                          u.mean(0).tolist(), len(theta))
    assert "U shape" in v.text and "overconfident" in v.text


def test_overall_verdict_names_the_worst_finding():
    good = {"sbc": [{"kind": "good", "text": "fine"}]}
    assert V.overall_verdict(good).kind == "good"
    bad = {"sbc": [{"kind": "good", "text": "fine"}], "coverage": [{"kind": "bad", "text": "Overconfident for b."}]}
    v = V.overall_verdict(bad)
    assert v.kind == "bad" and "Overconfident for b." in v.text


def test_predictive_verdict_allows_what_chance_leaves_outside():
    assert V.predictive_verdicts(list("abcdefghij"), [True] * 9 + [False])[0].kind == "good"
    v = V.predictive_verdicts(list("abcdefghij"), [False] * 5 + [True] * 5)[0]
    assert v.kind == "bad" and "a, b, c, d, e" in v.text


# ---------------------------------------------------------------------------
# bands
# ---------------------------------------------------------------------------
def test_ecdf_band_holds_a_calibrated_ecdf_about_99_percent_of_the_time():
    n, L = 200, 50
    _, low, high = bands.ecdf_band(n, L)
    rng = np.random.default_rng(7)
    inside = 0
    for _ in range(400):
        _, diff = bands.ecdf_difference(rng.integers(0, L + 1, size=(n, 1)), L)
        inside += bool(((diff[:, 0] >= low - 1e-12) & (diff[:, 0] <= high + 1e-12)).all())
    assert 0.96 <= inside / 400 <= 1.0
    pointwise_low = np.array([np.quantile(rng.binomial(n, z, 2000), 0.005) / n - z for z in (np.arange(L) + 1) / (L + 1)])
    assert (low <= pointwise_low + 1e-9).all()  # simultaneous: wider than pointwise


def test_histogram_band_counts_every_rank_once():
    groups = bands.rank_bins(100, 20)
    assert sum(len(g) for g in groups) == 101 and {len(g) for g in groups} <= {5, 6}
    low, expected, high = bands.histogram_band(200, 100, 20)
    assert np.isclose(expected.sum(), 200) and (low < expected).all() and (expected < high).all()
    counts = bands.rank_histogram(np.arange(101), 100, 20)
    assert counts.sum() == 101


# ---------------------------------------------------------------------------
# plot builders
# ---------------------------------------------------------------------------
def test_every_calibration_figure_has_its_traces(npe_results):
    a, s = npe_results.arrays, npe_results.summary
    L = s["sbc"]["num_posterior_samples"]
    fig = plots.sbc_rank_figure(a["ranks"], L, ["b0", "b1"], num_bins=6)
    bars = [t for t in fig.data if t.type == "bar"]
    assert [t.name for t in bars] == ["ranks of b0", "ranks of b1"] and all(len(t.y) == 6 for t in bars)
    assert sum(int(np.sum(t.y)) for t in bars) == 2 * 60
    assert fig.layout.title.text == plots.SBC_RANKS_TITLE
    names = [t.name for t in plots.sbc_ecdf_figure(a["ranks"], L, ["b0", "b1"]).data]
    assert names == ["99 % band of a calibrated posterior", "b0", "b1"]
    fig = plots.coverage_figure(a["coverage_levels"], a["coverage_hpd"], a["coverage_hpd_se"], a["coverage_central"],
                                ["b0", "b1"])
    assert {"calibrated (diagonal)", "highest-density regions (all parameters)", "central intervals of b1"} <= {
        t.name for t in fig.data}
    fig = plots.tarp_figure(a["tarp_alpha"], a["tarp_ecp"], 60)
    assert [t.name for t in fig.data][-1] == "TARP coverage" and len(fig.data[-1].x) == len(a["tarp_alpha"])
    fig = plots.zscore_contraction_figure(a["zscore"], a["contraction"], ["b0", "b1"])
    assert [len(t.x) for t in fig.data if t.name in ("b0", "b1")] == [60, 60]
    fig = plots.recovery_figure(a["theta"], a["post_mean"], a["post_std"], ["b0", "b1"])
    assert [len(t.x) for t in fig.data if t.name in ("b0", "b1")] == [60, 60]
    fig = plots.predictive_check_figure(a["x_obs"], a["ppc_lower"], a["ppc_upper"], s["obs_names"],
                                        a["ppc_simulations"])
    marks = {t.name: len(t.x) for t in fig.data}
    assert marks["90 % predictive band"] == 10
    assert marks["observation (inside its band)"] + marks["observation (outside its band)"] == 10
    fig = plots.reference_c2st_figure([0.9, 0.7, 0.55])
    assert list(fig.data[-1].y) == [0.9, 0.7, 0.55]


def test_predictive_figure_rescales_components_of_different_scales():
    sims = np.column_stack([np.random.default_rng(0).normal(0, 1, 200), np.random.default_rng(1).normal(1e4, 10, 200)])
    lower, upper = np.quantile(sims, 0.05, 0), np.quantile(sims, 0.95, 0)
    fig = plots.predictive_check_figure(sims[0], lower, upper, ["a", "b"], sims)
    assert list(fig.data[0].base) == [-1, -1] and "±1: edges" in fig.layout.yaxis.title.text


def test_empty_inputs_give_placeholder_figures():
    assert plots.sbc_rank_figure(np.zeros((0, 2)), 10).layout.annotations
    assert plots.reference_c2st_figure([]).layout.annotations


# ---------------------------------------------------------------------------
# the background job
# ---------------------------------------------------------------------------
def _kill_check_workers(store: RunStore, ids) -> None:
    for rid in ids:
        pid, start = store.check_worker_process(rid)
        if pid is not None and pid != os.getpid() and pid_alive(pid, start):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.mark.slow
def test_check_job_through_the_job_manager(runs):
    store, ids, _ = runs
    jm = JobManager(store, max_running=1, threads_per_run=1)
    try:
        first = jm.start_checks(ids["npe"], SMALL)
        assert first.status == "queued" and first.options["seed"] == SeedPlan(0).seed_of("checks")
        with pytest.raises(SBIError, match="already under way"):
            jm.start_checks(ids["npe"], SMALL)
        done = jm.wait_checks(ids["npe"], timeout=240)
        assert done.status == "done", (done.message, done.detail)
        assert done.progress == 1.0 and done.seconds is not None
        again = RunStore(store.root)  # another process (a reloaded page) reads the same
        assert again.get_check(ids["npe"]).status == "done"
        res = load_results(checks_dir(again, ids["npe"]))
        assert res is not None and all(res.has(k) for k in CHECK_KEYS if k != "ensemble")  # the ensemble: off
    finally:
        _kill_check_workers(store, [ids["npe"]])


@pytest.mark.slow
def test_cancelling_a_running_check_job(runs):
    store, ids, _ = runs
    jm = JobManager(store, max_running=1, threads_per_run=1, cancel_grace_s=20)
    try:
        jm.start_checks(ids["table"], {"num_datasets": 5000, "num_posterior_samples": 2000})
        import time

        end = time.monotonic() + 120
        while jm.check_status(ids["table"]).status != "running" and time.monotonic() < end:
            time.sleep(0.1)
        jm.cancel_checks(ids["table"])
        assert jm.wait_checks(ids["table"], timeout=60).status == "cancelled"
    finally:
        _kill_check_workers(store, [ids["table"]])


def test_checks_of_a_run_without_posterior_are_refused(tmp_path):
    store = RunStore(tmp_path / "s")
    rid = store.create_run(tiny())
    store.finish_run(rid, "failed", message="boom", event={"type": "failed", "message": "boom"})
    with pytest.raises(SBIError, match="no posterior to check"):
        JobManager(store, max_running=1).start_checks(rid)
    with pytest.raises(SBIError, match="no run"):
        JobManager(store, max_running=1).start_checks("000000000000")


def test_check_jobs_share_the_worker_slots(tmp_path):
    store = RunStore(tmp_path / "s")
    done, running = store.create_run(tiny()), store.create_run(tiny())
    store.finish_run(done, "done", event={"type": "done", "seconds": 0.0})
    store.create_check(done, CheckOptions().to_dict())
    assert store.claim_slot(running, os.getpid(), 1)  # the run holds the only slot
    assert not store.claim_check_slot(done, os.getpid(), 1)
    store.finish_run(running, "done", event={"type": "done", "seconds": 0.0})
    assert store.claim_check_slot(done, os.getpid(), 1)
    queued = store.create_run(tiny())
    assert not store.claim_slot(queued, os.getpid(), 1)  # now the check job holds it
    assert store.claim_slot(queued, os.getpid(), 2)
    store.delete_run(done)
    assert store.get_check(done) is None


def test_a_dead_check_worker_is_marked_failed(tmp_path):
    store = RunStore(tmp_path / "s")
    rid = store.create_run(tiny())
    store.create_check(rid, CheckOptions().to_dict())
    store.set_check_pid(rid, 2**22 + 12345)  # no such process
    assert store.reap_stale_checks() == [rid]
    check = store.get_check(rid)
    assert check.status == "failed" and "Start the checks again" in check.message


@pytest.mark.slow
def test_break_it_trains_a_twin_badly_and_checks_it_after_training(runs):
    store, ids, _ = runs
    spec = broken_spec(store.get_run(ids["npe"]).spec)
    assert spec.simulations_per_round == 40 and spec.max_epochs == 3 and spec.title.startswith("Broken on purpose")
    assert spec.seed == 0 and spec.method == "npe"
    jm = JobManager(store, max_running=1, threads_per_run=1)
    twin = None
    try:
        twin = start_broken_twin(jm, ids["npe"], SMALL)
        assert broken_twin(store, ids["npe"]) == twin
        assert jm.check_status(twin).is_active  # queued behind the twin's own training
        assert jm.wait(twin, timeout=240).status == "done"
        check = jm.wait_checks(twin, timeout=240)
        assert check.status == "done", (check.message, check.detail)
        assert load_results(checks_dir(store, twin)).has("sbc")
    finally:
        if twin is not None:
            _kill_check_workers(store, [twin])


def test_an_observation_the_model_cannot_make_is_flagged_and_leads_the_overall_verdict(runs):
    store, ids, _ = runs
    spec = store.get_run(ids["npe"]).spec
    x_o = np.asarray(spec.observation if spec.observation is not None else
                     get_simulator("linear_regression").default_observation.tolist(), dtype=float)
    x_o = x_o.copy()
    x_o[3] += 40.0  # one sensor far beyond anything the model simulates
    rid = store.create_run(dataclasses.replace(spec, observation=x_o.tolist(), title="misspecified"))
    assert run_worker(store, rid) == "done"
    res = run_checks(store, rid, SMALL)
    m = res.summary["misspecification"]
    assert m["misspecified"] and m["p_value"] <= 0.01
    assert m["features"][0]["index"] == 3  # the component that is off comes first
    assert res.verdicts("misspecification")[0]["kind"] == "bad"
    assert res.summary["overall"]["kind"] == "bad"
    fig = plots.misspecification_figure(m["features"], m["p_value"])
    assert fig.data and max(max(t.x) for t in fig.data if len(t.x)) > 10  # the off component's bar is long
    good = run_checks(store, ids["npe"], SMALL).summary["misspecification"]
    assert not good["misspecified"] and good["p_value"] > 0.05
    assert res.summary["lc2st"]["p_value"] >= 0.0 and len(res.arrays["lc2st_cdf"]) == len(res.arrays["lc2st_levels"])


def test_a_local_c2st_pass_at_an_observation_the_model_cannot_make_is_no_evidence():
    said = V.lc2st_verdicts(False, "No evidence against the posterior.", off_model=True)
    assert said[0].kind == "warn" and "unlike them" in said[0].text
    assert V.lc2st_verdicts(True, "Not to be trusted.", off_model=True)[0].kind == "bad"
    assert V.lc2st_verdicts(False, "No evidence.")[0].kind == "good"

"""The ensemble check (issue 23): estimators trained with other seeds, compared at the observation.

The statistic (:func:`sbi_core.diagnostics.ensemble_disagreement`) is tested on synthetic Gaussian
draws whose answer is known; the check itself on a tiny amortized NPE run of linear regression
(300 simulations, a few epochs) carried out in-process, with its results drawn by the Check page
(AppTest) and the HTML report; a sequential run gets the plain reason why it is skipped.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import sbi_core
from sbi_core import SBIError, plots
from sbi_core.checks import CheckOptions, checks_dir, plan_checks, run_checks, save_results
from sbi_core.checks import verdicts as V
from sbi_core.checks.figures import check_figure
from sbi_core.checks.members import train_members
from sbi_core.checks.plan import ENSEMBLE_NOT_ABC, ENSEMBLE_NOT_SEQUENTIAL
from sbi_core.diagnostics.disagreement import (
    LOCATION_THRESHOLD,
    MIN_DRAWS,
    WIDTH_THRESHOLD,
    ensemble_disagreement,
)
from sbi_core.export.report import run_report_html
from sbi_core.jobs.worker import run_worker
from sbi_core.run.spec import RunSpec
from sbi_core.stats.seeds import SeedPlan
from sbi_core.store.runs import RunStore

from sbi_ui import keys as K
from sbi_ui.check_texts import HOW_TO_READ
from sbi_ui.user_text import plain

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
CHECK = "pages/check.py"
OPTIONS = {"num_datasets": 60, "num_posterior_samples": 20, "ensemble_members": 3}
NAMES = ["mass", "rate"]


def gaussian(n: int, seed: int, shift=(0.0, 0.0), scale=(1.0, 1.0)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g) * torch.tensor(scale) + torch.tensor(shift)


def tiny(**kw) -> RunSpec:
    base = dict(simulator="linear_regression", method="npe", num_rounds=1, simulations_per_round=300, max_epochs=4,
                hidden_features=16, num_transforms=2, num_posterior_samples=200, num_threads=1, title="ensemble run")
    base.update(kw)
    return RunSpec(**base)


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """A tiny amortized NPE run checked with 3 estimators, and a 2-round SNPE run checked with 2 asked for."""
    store = RunStore(tmp_path_factory.mktemp("ensemble_store"))
    npe = store.create_run(tiny())
    snpe = store.create_run(tiny(simulator="two_moons", method="snpe", num_rounds=2, simulations_per_round=100,
                                 max_epochs=2, title="sequential run"))
    for rid in (npe, snpe):
        assert run_worker(store, rid) == "done", store.get_run(rid).message
    torch_state = torch.get_rng_state()
    results = run_checks(store, npe, OPTIONS)
    assert torch.equal(torch.get_rng_state(), torch_state)  # the members never touch torch's global stream
    save_results(checks_dir(store, npe), results)
    seq = run_checks(store, snpe, {"num_datasets": 60, "num_posterior_samples": 20, "ensemble_members": 2})
    save_results(checks_dir(store, snpe), seq)
    return store, {"npe": npe, "snpe": snpe}, results, seq


# ---------------------------------------------------------------------------
# the statistic
# ---------------------------------------------------------------------------
def test_members_drawn_from_one_gaussian_agree():
    res = ensemble_disagreement([gaussian(1000, s) for s in range(4)], NAMES)
    assert res["agree"] and res["disagree"] == []
    assert res["num_members"] == 4 and res["num_draws"] == [1000] * 4 and res["names"] == NAMES
    assert np.array(res["means"]).shape == (4, 2) and np.array(res["sds"]).shape == (4, 2)
    assert max(res["statistic"]) < 0.15  # Monte Carlo noise alone: about 1 / sqrt(1000)
    assert max(res["width_ratio"]) < 1.2
    assert all(p["disagree"] is False for p in res["parameters"])
    assert res["verdict"].startswith("The 4 estimators") and " agree " in res["verdict"]
    assert V.ensemble_verdicts(res)[0].kind == "good"


def test_a_member_shifted_by_several_sds_is_flagged_and_named():
    draws = [gaussian(1000, 0), gaussian(1000, 1), gaussian(1000, 2, shift=(0.0, 4.0))]
    res = ensemble_disagreement(draws, NAMES)
    assert res["disagree"] == ["rate"] and not res["agree"]
    rate, mass = res["parameters"][1], res["parameters"][0]
    assert rate["location"] and not rate["width"] and not mass["disagree"]
    # the spread of the means (0, 0, 4) is sd = 4 / sqrt(3), in posterior sds of about 1
    assert rate["statistic"] == pytest.approx(4 / math.sqrt(3), rel=0.1)
    assert rate["rhat"] == pytest.approx(math.sqrt(1 + rate["statistic"] ** 2))
    assert rate["member_means"][2] == pytest.approx(4.0, abs=0.15)
    assert "disagree" in res["verdict"] and "rate" in res["verdict"] and "mass" not in res["verdict"]
    assert V.ensemble_verdicts(res)[0].kind == "bad"  # means spread over more than one posterior sd


def test_a_member_twice_as_wide_is_flagged_on_the_width_only():
    draws = [gaussian(1000, 0), gaussian(1000, 1, scale=(2.0, 1.0))]
    res = ensemble_disagreement(draws, NAMES)
    mass = res["parameters"][0]
    assert res["disagree"] == ["mass"] and mass["width"] and not mass["location"]
    assert mass["width_ratio"] == pytest.approx(2.0, rel=0.1)
    assert "2.0 times as wide" in res["verdict"]
    assert V.ensemble_verdicts(res)[0].kind == "warn"


def test_the_thresholds_are_rhat_1_1_and_rarely_fire_on_monte_carlo_noise():
    assert math.sqrt(1 + LOCATION_THRESHOLD**2) == pytest.approx(1.1)
    assert WIDTH_THRESHOLD == 1.5
    # five members of the same Gaussian with the fewest draws allowed: no false alarm in 200 tries
    g = torch.Generator().manual_seed(7)
    alarms = sum(not ensemble_disagreement([torch.randn(MIN_DRAWS, 2, generator=g) for _ in range(5)])["agree"]
                 for _ in range(200))
    assert alarms == 0
    # but a shift of one posterior sd in one of five members is seen
    shifted = [torch.randn(MIN_DRAWS, 2, generator=g) for _ in range(4)] + [torch.randn(MIN_DRAWS, 2, generator=g) + 1.5]
    assert not ensemble_disagreement(shifted)["agree"]


def test_wrong_inputs_are_sbierrors_saying_what_is_wrong():
    with pytest.raises(SBIError, match="at least 2"):
        ensemble_disagreement([gaussian(500, 0)])
    with pytest.raises(SBIError, match="3 parameters"):
        ensemble_disagreement([gaussian(500, 0), torch.randn(500, 3)])
    with pytest.raises(SBIError, match=f"at least {MIN_DRAWS}"):
        ensemble_disagreement([gaussian(500, 0), gaussian(MIN_DRAWS - 1, 1)])
    with pytest.raises(SBIError, match="names"):
        ensemble_disagreement([gaussian(500, 0), gaussian(500, 1)], ["only one"])
    nan = gaussian(500, 1)
    nan[:10] = float("nan")  # rows with NaN are left out, not fatal
    assert ensemble_disagreement([gaussian(500, 0), nan])["num_draws"] == [500, 490]


def test_the_statistic_is_public():
    assert sbi_core.ensemble_disagreement is ensemble_disagreement
    assert sbi_core.diagnostics.ensemble_disagreement is ensemble_disagreement


# ---------------------------------------------------------------------------
# the option and the plan
# ---------------------------------------------------------------------------
def test_the_option_is_off_by_default_and_2_to_5_otherwise():
    assert CheckOptions().ensemble_members == 0
    for k in (0, 2, 5):
        assert CheckOptions.from_dict({"ensemble_members": k}).ensemble_members == k
    for bad in (1, 6, -1, 2.0, True, "3"):
        with pytest.raises(SBIError, match="estimators to compare must be 0 .* from 2 to 5"):
            CheckOptions(ensemble_members=bad)
    opts = CheckOptions.from_dict({"ensemble_members": 3}).resolved(0)
    assert opts.ensemble_members == 3 and opts.seed == SeedPlan(0).seed_of("checks")
    assert CheckOptions.from_dict(opts.to_dict()) == opts


def test_the_plan_offers_the_ensemble_to_amortized_neural_runs_only():
    assert plan_checks(tiny()).applies("ensemble")
    assert plan_checks(tiny(method="nle")).applies("ensemble")
    seq = plan_checks(RunSpec(simulator="two_moons", method="snpe", num_rounds=3))
    assert not seq.applies("ensemble") and seq.item("ensemble").reason == ENSEMBLE_NOT_SEQUENTIAL
    abc = plan_checks(RunSpec(simulator="two_moons", method="rejection_abc", num_rounds=1))
    assert not abc.applies("ensemble") and abc.item("ensemble").reason == ENSEMBLE_NOT_ABC


# ---------------------------------------------------------------------------
# the check on a real run
# ---------------------------------------------------------------------------
def test_a_small_amortized_run_gets_the_ensemble_section(checked):
    store, ids, res, _ = checked
    e = res.summary["ensemble"]
    names = res.summary["checked_names"]
    assert e["num_members"] == 3 and e["names"] == names and len(e["seeds"]) == 3
    assert e["seeds"][0] == 0 and len(set(e["seeds"])) == 3  # the run's own seed, then two of the check's
    assert e["seeds"][1:] == [SeedPlan(res.summary["options"]["seed"]).seed_of(f"ensemble_{k}") % 2**31
                              for k in (1, 2)]
    assert e["num_draws"][0] == 200 and e["num_draws"][1:] == [1000, 1000]  # the run's saved draws, then fresh
    assert len(e["statistic"]) == len(names) and all(np.isfinite(e["statistic"]))
    assert e["agree"] == (e["disagree"] == [])
    assert set(e["disagree"]) <= set(names)
    assert all(n in e["verdict"] for n in e["disagree"])
    verdicts = res.verdicts("ensemble")
    assert len(verdicts) == 1 and verdicts[0]["kind"] in ("good", "warn", "bad")
    assert verdicts[0]["text"] == e["verdict"]
    a = res.arrays
    assert a["ensemble_draws"].shape == (2200, len(names)) and np.isfinite(a["ensemble_draws"]).all()
    assert np.bincount(a["ensemble_member"]).tolist() == [200, 1000, 1000]
    # member 0 is the run's own draws at the observation, as saved with its round
    own = np.load(store.round_dir(ids["npe"], 0) / "posterior_samples.npy")
    np.testing.assert_allclose(a["ensemble_draws"][:200], own, rtol=1e-6)
    # the other members differ from it (other seeds), yet land where it does on this easy model
    assert not np.allclose(a["ensemble_draws"][200:400], own)
    fig = check_figure("ensemble", res, names)
    assert fig.layout.title.text == plots.ENSEMBLE_TITLE
    assert len(fig.data) == 3 * len(names) and sum(t.showlegend for t in fig.data) == 3


def _npe_check_inputs(store, ids):
    """The checked NPE run's check job, its simulator and the round-0 pairs ``theta (N, D)``, ``x (N, K)``
    the ensemble members train on."""
    from sbi_core.checks.compute import _Job
    from sbi_core.simulators import get_simulator

    spec = store.get_run(ids["npe"]).spec
    job = _Job(store, ids["npe"], spec, CheckOptions.from_dict(OPTIONS).resolved(spec.seed), None, None)
    folder = store.round_dir(ids["npe"], 0)
    theta = torch.as_tensor(np.load(folder / "theta.npy"), dtype=torch.float32)
    x = torch.as_tensor(np.load(folder / "x.npy"), dtype=torch.float32)
    return job, get_simulator("linear_regression"), theta, x


def test_members_train_the_same_way_in_process_twice(checked):
    """Training is a pure function of the stored pairs and the member's seed: same seed, same draws."""
    store, ids, res, _ = checked
    from sbi_core.checks.compute import _members

    job, sim, theta, x = _npe_check_inputs(store, ids)
    members = _members(job, sim, sim.prior, sim.default_observation, x.numpy(), 300)[:1]
    assert members[0].seed == res.summary["ensemble"]["seeds"][1]
    a, = train_members(members, theta, x)
    b, = train_members(members, theta, x)
    assert a.shape == (300, 2) and torch.equal(a, b)


def test_a_sequential_run_says_plainly_why_the_ensemble_is_skipped(checked):
    _, _, _, seq = checked
    assert not seq.has("ensemble") and "ensemble" not in seq.summary["verdicts"]
    assert seq.summary["skipped"]["ensemble"] == ENSEMBLE_NOT_SEQUENTIAL
    assert "Not applicable" in ENSEMBLE_NOT_SEQUENTIAL and "sequential" in ENSEMBLE_NOT_SEQUENTIAL


def test_the_report_has_the_ensemble_section(checked):
    store, ids, res, _ = checked
    page = run_report_html(store, ids["npe"])
    assert "Do estimators trained with other seeds agree" in page
    assert plots.ENSEMBLE_TITLE in page


# ---------------------------------------------------------------------------
# the Check page
# ---------------------------------------------------------------------------
def check_page(run_id: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params[K.QP_RUN] = run_id
    at.run()
    at.switch_page(CHECK)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [e.value for e in at.error if "Something went wrong" in str(e.value)]
    return at


def test_the_check_page_draws_the_ensemble_and_offers_it_off_by_default(checked, monkeypatch):
    store, ids, res, _ = checked
    monkeypatch.setenv("SBI_STORE_DIR", str(store.root))
    at = check_page(ids["npe"])
    keys = [c.key for c in at.get("plotly_chart")]
    assert K.c_check_chart("ensemble", 0) in keys
    body = "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)
    assert HOW_TO_READ["ensemble"] in body
    assert any("Do estimators trained with other seeds agree" in h.value for h in at.subheader)
    assert plain(res.summary["ensemble"]["verdict"]) in body  # its verdict, under the chart
    box = at.selectbox(key=K.W_CHECK_ENSEMBLE)
    assert box.value == 0 and not box.disabled
    assert box.options == ["Off", "2 (the run's and 1 more)", "3 (the run's and 2 more)", "4 (the run's and 3 more)",
                           "5 (the run's and 4 more)"]

    seq = check_page(ids["snpe"])
    box = seq.selectbox(key=K.W_CHECK_ENSEMBLE)
    assert box.disabled
    assert K.c_check_chart("ensemble", 0) not in [c.key for c in seq.get("plotly_chart")]
    captions = "\n".join(c.value for c in seq.caption)
    assert ENSEMBLE_NOT_SEQUENTIAL in captions


def _members_in_a_task(members, theta, x):
    """A Dask task standing in for the check task: it trains the members from inside itself."""
    return train_members(members, theta, x)


def test_inside_a_dask_task_the_members_are_tasks_of_their_own_with_the_same_draws(checked):
    """Inside a task on a cluster of two worker threads, each member is a task (key ``sbi-ensemble-...``),
    gathered in order; what each draws does not depend on where it trained."""
    distributed = pytest.importorskip("distributed")
    store, ids, _, _ = checked
    from sbi_core.checks.compute import _members

    job, sim, theta, x = _npe_check_inputs(store, ids)
    members = _members(job, sim, sim.prior, sim.default_observation, x.numpy(), 300)
    assert [m.index for m in members] == [1, 2] and all(m.threads == torch.get_num_threads() for m in members)
    here = train_members(members, theta, x)  # not in a task: one after another, in this thread
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        there = client.submit(_members_in_a_task, members, theta, x, pure=False).result(timeout=240)
        keys = client.run_on_scheduler(lambda dask_scheduler: sorted(
            {str(t[0]) for t in dask_scheduler.transition_log if str(t[0]).startswith("sbi-ensemble-")}))
    assert len(keys) == 2 and keys[0].endswith("-1") and keys[1].endswith("-2")
    for a, b in zip(here, there):
        assert a.shape == (300, 2) and torch.equal(a, b)


def test_the_figure_shows_user_typed_names_as_text_and_names_the_disagreement():
    draws = torch.cat([gaussian(300, 0), gaussian(300, 1, shift=(0.0, 3.0))]).numpy()
    member = np.repeat([0, 1], 300)
    fig = plots.ensemble_figure(draws, member, ["<b>mass</b>", "a & b"], [False, True], [0, 7])
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["&lt;b&gt;mass&lt;/b&gt;", "a &amp; b · they disagree"]
    assert [t.name for t in fig.data if t.showlegend] == ["your run's estimator, seed 0", "estimator 2, seed 7"]
    assert fig.data[0].line.dash == "solid" and fig.data[1].line.dash == "dash"
    for t in fig.data:  # densities integrate to about 1 over their grid
        assert np.trapezoid(t.y, t.x) == pytest.approx(1.0, abs=0.05)

"""The Check page's checks on every data shape: a series run and a repeated-trials run, end to end.

A tiny run of each (trained by the worker, as from the app), then the whole check job: SBC,
coverage, TARP, z-score, recovery, the predictive check and the exact-posterior C2ST must all
run and give finite numbers; the predictive check of a series is drawn as a fan chart
(bands around a median line), of trials as what the sets say (per-feature mean and sd).
"""

from __future__ import annotations

import numpy as np
import pytest

from sbi_core.checks import CHECK_KEYS, run_checks
from sbi_core.checks.figures import charts_of, check_figure
from sbi_core.jobs.worker import run_worker
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore

pytestmark = pytest.mark.timeout(300)

SMALL = {"num_datasets": 60, "num_posterior_samples": 30}


def _spec(simulator: str, **kw) -> RunSpec:
    base = dict(simulator=simulator, method="npe", num_rounds=1, simulations_per_round=300, max_epochs=3,
                hidden_features=16, num_transforms=2, num_posterior_samples=200, num_threads=1, title=simulator)
    base.update(kw)
    return RunSpec(**base)


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("shape_checks"))
    out = {}
    for name in ("ar1_series", "gaussian_trials"):
        rid = store.create_run(_spec(name))
        assert run_worker(store, rid) == "done", store.get_run(rid).message
        out[name] = run_checks(store, rid, SMALL)
    return out


@pytest.mark.parametrize("name", ["ar1_series", "gaussian_trials"])
def test_every_check_runs_on_a_shaped_model_and_gives_finite_numbers(checked, name):
    res = checked[name]
    ran = set(res.summary["verdicts"])
    assert {"sbc", "coverage", "tarp", "recovery", "zscore", "predictive", "reference_c2st"} <= ran
    for key in ("ranks", "coverage_hpd", "tarp_ecp", "post_mean", "post_std", "reference_c2st"):
        assert np.isfinite(np.asarray(res.arrays[key], dtype=float)).all(), key
    labels = res.summary["param_names"]
    for check in CHECK_KEYS:
        for chart in charts_of(check):
            fig = check_figure(chart, res, labels)
            assert fig is None or len(fig.data) > 0, chart


def test_the_predictive_check_of_a_series_is_a_fan_chart(checked):
    res = checked["ar1_series"]
    fig = check_figure("predictive", res, res.summary["param_names"])
    fills = [t for t in fig.data if getattr(t, "fill", None) in ("toself", "tonexty", "tozeroy")]
    lines = [t for t in fig.data if t.type == "scatter" and not getattr(t, "fill", None)]
    assert len(fills) >= 2  # the 50 % and 90 % bands
    assert any(len(t.x) == 100 for t in lines)  # a line over the 100 time points (median or observation)


def test_the_predictive_check_of_trials_compares_what_the_sets_say(checked):
    res = checked["gaussian_trials"]
    names = res.summary["predictive"].get("names")
    assert names and len(names) < 20  # per-feature summaries of the set, not one panel per trial

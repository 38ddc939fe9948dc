"""sbi_core.run.compare (a comparison's specs, rows, C2ST curves and fallback reference) and its figures
(sbi_core.plots.compare): shared axes across panels, and the traces each figure holds."""

from __future__ import annotations

import numpy as np
import pytest

from sbi_core import RunSpec, SBIError
from sbi_core.methods.registry import METHODS
from sbi_core.plots.compare import compare_c2st_figure, compare_clouds_figure
from sbi_core.run.compare import (
    BUDGET_RANGE,
    CompareRow,
    MAX_RUNS,
    c2st_curves,
    compare_row,
    comparison_base,
    comparison_specs,
    fallback_c2st,
    parse_budgets,
    parse_run_ids,
    reference_run,
    rows_from_store,
    split_budget,
)
from sbi_core.store.runs import RunStore


def _base(**kw) -> RunSpec:
    return comparison_base({"simulator": "two_moons", "observation": [0.1, 0.2], "true_theta": None},
                           max_epochs=30, seed=7, **kw)


# ---- specs -------------------------------------------------------------------------------
def test_specs_share_everything_but_method_and_budget():
    specs = comparison_specs(_base(), ["npe", "snpe", "tsnpe"], [2000, 600], num_rounds=4)
    assert [(s.method, s.num_rounds, s.simulations_per_round) for s in specs] == [
        ("npe", 1, 2000), ("npe", 1, 600), ("snpe", 4, 500), ("snpe", 4, 150), ("tsnpe", 4, 500), ("tsnpe", 4, 150)]
    shared = {k: v for k, v in specs[0].to_dict().items()
              if k not in ("method", "num_rounds", "simulations_per_round", "title")}
    for s in specs:
        d = s.to_dict()
        assert {k: d[k] for k in shared} == shared
    assert shared["seed"] == 7 and shared["max_epochs"] == 30 and shared["observation"] == [0.1, 0.2]
    assert shared["hidden_features"] == RunSpec.demo().hidden_features  # the demo's small network
    assert "Sequential SNPE" in specs[2].title and "2,000" in specs[2].title


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_registered_method_gets_its_budget(name):
    rounds, per_round = split_budget(name, 1000, 3)
    assert rounds == (3 if METHODS[name].sequential else 1)
    assert per_round == 1000 // rounds
    assert rounds * per_round <= 1000 < rounds * (per_round + 1)


def test_budget_split_refuses_tiny_rounds():
    with pytest.raises(SBIError, match="fewer rounds or a larger budget"):
        split_budget("snpe", 100, 10)


def test_specs_refuse_no_method_no_budget_and_too_many_runs():
    with pytest.raises(SBIError, match="at least one method"):
        comparison_specs(_base(), [], [1000])
    with pytest.raises(SBIError, match="budget"):
        comparison_specs(_base(), ["npe"], [])
    with pytest.raises(SBIError, match="at most"):
        comparison_specs(_base(), ["npe", "snpe", "tsnpe"], list(range(1000, 1000 + 100 * (MAX_RUNS // 3 + 1), 100)))
    with pytest.raises(SBIError):
        comparison_specs(_base(), ["no_such_method"], [1000])


def test_parse_budgets_and_run_ids():
    assert parse_budgets("1000, 4000;4000 300") == [1000, 4000, 300]
    for bad in ("", "lots", "2.5", str(BUDGET_RANGE[1] + 1), "50"):
        with pytest.raises(SBIError):
            parse_budgets(bad)
    ok = "0123456789ab"
    assert parse_run_ids(f"{ok},../etc,{ok.upper()},zz,{'f' * 12}") == [ok, "f" * 12]
    assert parse_run_ids(None) == []


# ---- rows ---------------------------------------------------------------------------------
def _round(r, n, c2st=None, sampling=None, **kw):
    return {"type": "round", "round": r, "num_rounds": kw.pop("num_rounds", 2), "num_simulations": n,
            "reference_c2st": c2st, "sampling": sampling, **kw}


def _stored(store, method, status, rounds, rounds_planned=2, per_round=300, message=None):
    spec = RunSpec(simulator="two_moons", method=method, num_rounds=rounds_planned if METHODS[method].sequential else 1,
                   simulations_per_round=per_round)
    rid = store.create_run(spec)
    for ev in rounds:
        store.append_event(rid, {"type": "simulation", "round": ev["round"], "done": ev["num_simulations"],
                                 "total": per_round, "invalid": 0})
        store.append_event(rid, ev)
    if status == "failed":
        store.finish_run(rid, "failed", message=message, event={"type": "failed", "message": message})
    elif status != "queued":
        store.finish_run(rid, status, event={"type": status})
    return rid


def test_rows_from_synthetic_events(tmp_path):
    store = RunStore(tmp_path / "store")
    mcmc = {"kind": "mcmc", "ess": [310.0, 250.5], "rhat": [1.002, 1.04], "warning": None}
    a = _stored(store, "snpe", "done", [_round(0, 300, 0.9), _round(1, 300, 0.7, sampling=mcmc)])
    b = _stored(store, "npe", "failed", [], message="The simulator returned NaN for every parameter.")
    c = _stored(store, "snpe", "queued", [])
    rows = rows_from_store(store, [a, b, "ffffffffffff", c])
    assert [r.run_id for r in rows] == [a, b, c]
    ra, rb, rc = rows
    assert (ra.status, ra.rounds_done, ra.num_rounds, ra.simulations, ra.budget) == ("done", 2, 2, 600, 600)
    assert ra.c2st == pytest.approx(0.7) and ra.ess == pytest.approx(250.5) and ra.rhat == pytest.approx(1.04)
    assert ra.acceptance_rate is None and ra.epsilon is None and ra.message is None
    assert rb.status == "failed" and rb.message == "The simulator returned NaN for every parameter."
    assert rb.method_title == METHODS["npe"].title and rb.rounds_done == 0
    assert rc.status == "queued" and rc.simulations == 0 and rc.seconds is None


def test_row_reads_abc_sampling_and_tolerates_missing_fields(tmp_path):
    store = RunStore(tmp_path / "store")
    rid = _stored(store, "snpe", "queued", [])
    info = store.get_run(rid)
    abc = {"kind": "abc", "epsilon": 0.25, "acceptance_rate": 0.04, "ess": 812.0, "num_particles": 1000,
           "warning": "Few simulations were accepted."}
    row = compare_row(info, [{"num_simulations": 100, "sampling": abc}], simulated=180)
    assert (row.epsilon, row.acceptance_rate, row.ess, row.rhat) == (0.25, 0.04, 812.0, None)
    assert row.simulations == 180 and row.warning == "Few simulations were accepted."
    bare = compare_row(info, [{}], simulated=None)  # a round event of older code: no field at all
    assert bare.simulations == 0 and bare.c2st is None and bare.ess is None and bare.warning is None
    weird = compare_row(info, [{"sampling": {"kind": "mcmc", "ess": None, "rhat": [float("nan")]}}])
    assert weird.ess is None and weird.rhat is None


# ---- C2ST ----------------------------------------------------------------------------------
def test_c2st_curve_is_cumulative_simulations_against_c2st():
    curves = c2st_curves({
        "a": [_round(0, 500, 0.91), _round(1, 500, None), _round(2, 480, 0.62)],
        "b": [_round(0, 2000, 0.7)],
        "c": [_round(0, 300, None)],
    })
    assert curves == {"a": ([500, 1480], [0.91, 0.62]), "b": ([2000], [0.7])}
    assert c2st_curves({"c": [_round(0, 300)]}) == {}


def _row(rid, method, sims, status="done", rounds=1):
    m = METHODS[method]
    return CompareRow(run_id=rid, method=method, method_title=m.title, learns=m.learns, sequential=m.sequential,
                      budget=sims, status=status, rounds_done=rounds, num_rounds=rounds, simulations=sims,
                      seconds=1.0, c2st=None)


def test_reference_is_a_finished_sequential_neural_run_with_the_most_simulations():
    rows = [_row("a", "npe", 5000), _row("b", "snpe", 1000, rounds=4), _row("c", "tsnpe", 2000, rounds=4),
            _row("d", "snpe", 9000, status="failed", rounds=0)]
    assert reference_run(rows).run_id == "c"
    assert reference_run([_row("a", "npe", 5000), _row("e", "npe", 800)]).run_id == "a"
    assert reference_run([_row("d", "snpe", 9000, status="running", rounds=2)]) is None
    assert reference_run([]) is None


def test_fallback_c2st_scores_each_run_against_the_reference():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(300, 2))
    scores = fallback_c2st({"ref": ref, "same": rng.normal(size=(300, 2)), "far": rng.normal(size=(300, 2)) + 4,
                            "few": ref[:5]}, "ref", max_iter=100)
    assert set(scores) == {"same", "far"}
    assert scores["same"] < 0.65 and scores["far"] > 0.95
    assert fallback_c2st({"x": ref}, "missing") == {}


# ---- figures --------------------------------------------------------------------------------
def _axis_ranges(fig, letter):
    return [tuple(fig.layout[k].range) for k in fig.layout if k.startswith(f"{letter}axis") and fig.layout[k].range]


def test_clouds_share_their_axes_and_draw_one_cloud_per_finished_run():
    rng = np.random.default_rng(1)
    wide, tight = rng.normal(size=(800, 3)), 0.1 * rng.normal(size=(500, 3)) + 0.5
    fig = compare_clouds_figure([wide, tight, None], ["A", "B", "C"], 0, 2, ["a", "b", "c"],
                                [[-4, 4]] * 3, [0.5, 0.0, 0.5], notes=["", "", "failed"])
    clouds = [d for d in fig.data if d.type == "scatter" and d.name in ("A", "B")]
    assert [len(d.x) for d in clouds] == [800, 500]
    assert sum(d.name == "prior range" for d in fig.data) == 3
    assert sum(d.name == "true parameter" for d in fig.data) == 3
    assert sum(bool(d.showlegend) for d in fig.data if d.name in ("prior range", "true parameter")) == 2
    xs, ys = _axis_ranges(fig, "x"), _axis_ranges(fig, "y")
    assert len(xs) == 3 and len(set(xs)) == 1 and len(ys) == 3 and len(set(ys)) == 1
    assert any("failed" in a.text for a in fig.layout.annotations)
    no_truth = compare_clouds_figure([wide], ["A"], 0, 1, bounds=[[-4, 4]] * 3)
    assert not any(d.name == "true parameter" for d in no_truth.data)


def test_one_parameter_gives_histograms_on_a_shared_range():
    rng = np.random.default_rng(2)
    fig = compare_clouds_figure([rng.normal(size=(200, 1)), rng.normal(size=(200, 1)) * 0.1], ["A", "B"],
                                bounds=[[-3, 3]], true_theta=[0.0])
    assert [d.type for d in fig.data if d.name in ("A", "B")] == ["histogram", "histogram"]
    assert len(set(_axis_ranges(fig, "x"))) == 1


def test_c2st_figure_one_line_per_run():
    fig = compare_c2st_figure([("A", [500, 1000], [0.9, 0.7]), ("B", [2000], [0.6]), ("C", [], [])])
    lines = [d for d in fig.data if d.mode == "lines+markers"]
    assert [(d.name, len(d.x)) for d in lines] == [("A", 2), ("B", 1)]
    assert fig.layout.yaxis.range[0] <= 0.5
    empty = compare_c2st_figure([])
    assert not [d for d in empty.data if d.mode == "lines+markers"] and empty.layout.annotations

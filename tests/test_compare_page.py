"""AppTest of the Compare page (pages/compare.py): it renders with no comparison (Start disabled with a
hint once no method is picked), with a finished synthetic comparison (clouds, C2ST curve, table, links),
and shows a failed run's message in its row, never a traceback.

The runs are never trained: they are created in a temporary store with synthetic round events and
marked finished, which is all the page reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from sbi_core.run.spec import BOUNDS, RunSpec
from sbi_core.store.runs import RunStore
from sbi_ui import keys as K

pytestmark = pytest.mark.timeout(120)

APP = str(Path(__file__).resolve().parent.parent / "app.py")
COMPARE = "pages/compare.py"


@pytest.fixture
def store(tmp_path, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    return RunStore(root)


def _finished(store, method, rounds, c2st, spread, status="done", message=None, rounds_planned=None,
              sampling=None):
    """A run of ``method`` with ``rounds`` synthetic round events of 300 simulations each."""
    n = rounds_planned or rounds
    spec = RunSpec(simulator="two_moons", method=method, num_rounds=n if method != "npe" else 1,
                   simulations_per_round=300, title=f"Compare: {method}")
    rid = store.create_run(spec)
    store.set_status(rid, "running")
    rng = np.random.default_rng(len(method))
    for r in range(rounds):
        samples = rng.normal(size=(400, 2)) * spread
        store.append_event(rid, {"type": "round", "round": r, "num_rounds": n, "num_simulations": 300,
                                 "posterior_samples": samples.tolist(), "reference_c2st": c2st[r] if c2st else None,
                                 "sampling": sampling if r == rounds - 1 else None})
    event = {"type": "failed", "message": message, "detail": "Traceback (most recent call last): boom"} \
        if status == "failed" else {"type": status}
    store.finish_run(rid, status, message=message, detail=event.get("detail"), event=event)
    return rid


def _page(ids=()) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    if ids:
        at.query_params[K.QP_COMPARE] = ",".join(ids)
    at.run()
    at.switch_page(COMPARE)
    at.run()
    _ok(at)
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    bugs = [e.value for e in at.error if "Something went wrong" in str(e.value)]
    assert not bugs, bugs


def _charts(at: AppTest) -> dict:
    out = {}
    for el in at.get("plotly_chart"):
        fig = json.loads(el.proto.spec)
        title = fig["layout"].get("title", {})
        out[el.proto.id] = (title.get("text") if isinstance(title, dict) else title, fig["data"])
    return out


def _length(values) -> int:
    """How many values a trace's ``x`` holds (plotly sends arrays as base64 typed arrays)."""
    if isinstance(values, dict) and "bdata" in values:
        import base64

        return len(np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"])))
    return len(values or [])


def _start(at: AppTest):
    return next(b for b in at.button if b.label == "Start comparison")


def test_renders_without_runs_and_start_needs_a_method(store):
    at = _page()
    assert "Race several inference methods" in " ".join(m.value for m in at.markdown)
    start = _start(at)
    assert not start.disabled
    assert any("2 runs, one after another" in c.value for c in at.caption)
    at.multiselect(key=K.W_COMPARE_METHODS).set_value([]).run()
    _ok(at)
    assert _start(at).disabled
    assert any("Pick at least one method" in c.value for c in at.caption)
    at.text_input(key=K.W_COMPARE_BUDGETS).set_value("lots").run()
    at.multiselect(key=K.W_COMPARE_METHODS).set_value(["snpe"]).run()
    _ok(at)
    assert _start(at).disabled and any("whole number" in e.value for e in at.error)


def test_the_forms_limits_are_the_runspecs_own(store):
    """Rounds, epochs and seed offer what RunSpec validation accepts (one table: spec.BOUNDS)."""
    at = _page()
    for key, name in ((K.W_COMPARE_ROUNDS, "num_rounds"), (K.W_COMPARE_EPOCHS, "max_epochs"),
                      (K.W_COMPARE_SEED, "seed")):
        field = at.number_input(key=key)
        assert (field.min, field.max) == BOUNDS[name].form_range, name


def test_a_budget_with_a_thousands_comma_is_one_thousand(store):
    """"1,000" used to be split into the budgets 1 and 000 (an error about 1)."""
    at = _page()
    at.text_input(key=K.W_COMPARE_BUDGETS).set_value("1,000").run()
    _ok(at)
    assert not _start(at).disabled, [e.value for e in at.error]
    assert any("NPE: 1 round of 1,000" in c.value for c in at.caption), [c.value for c in at.caption]
    at.text_input(key=K.W_COMPARE_BUDGETS).set_value("1,5").run()
    shown = [e.value.replace("\\", "") for e in at.error]  # plain() escapes markdown punctuation
    assert _start(at).disabled and any("1,5 was read as the budgets 1 and 5" in m for m in shown), shown


def test_finished_comparison_draws_clouds_curve_table_and_links(store):
    a = _finished(store, "npe", 1, [0.8], 1.0)
    mcmc = {"kind": "mcmc", "ess": [420.0, 180.4], "rhat": [1.01, 1.03], "warning": None}
    b = _finished(store, "snpe", 3, [0.9, 0.7, 0.6], 0.3, sampling=mcmc)  # a sampler's report, read as any method's
    at = _page([a, b])
    charts = _charts(at)
    titles = [t for t, _ in charts.values()]
    assert any("final posterior" in t for t in titles) and any("C2ST against simulations" in t for t in titles)
    clouds = next(d for t, d in charts.values() if "final posterior" in t)
    assert sorted(_length(tr.get("x")) for tr in clouds if tr.get("mode") == "markers"
                  and _length(tr.get("x")) > 10) == [400, 400]
    curve = next(d for t, d in charts.values() if "C2ST" in t)
    assert sorted(_length(tr.get("x")) for tr in curve if tr.get("mode") == "lines+markers") == [1, 3]
    table = at.dataframe[0].value
    assert list(table["final C2ST"]) == ["0.80", "0.60"] and list(table["simulations used"]) == [300, 900]
    assert list(table["ESS (lowest)"]) == ["", "180"] and list(table["R-hat (highest)"]) == ["", "1.030"]
    assert "ABC ε" not in table.columns  # no method reported one
    links = [p for p in at.get("page_link") if p.proto.label == "Rounds"]
    assert len(links) == 2
    assert not any("most accurate run" in (t or "") for t in titles)


def test_failed_run_shows_its_message_in_its_row_and_others_go_on(store):
    a = _finished(store, "npe", 0, None, 1.0, status="failed",
                  message="The simulator returned NaN for every parameter: check its formula.")
    b = _finished(store, "snpe", 2, [0.9, 0.7], 0.3)
    at = _page([a, b])
    errors = [e.value for e in at.error]
    assert any("failed: The simulator returned NaN for every parameter" in e for e in errors), errors
    assert not any("Traceback" in str(el.value) for el in list(at.error) + list(at.markdown) + list(at.code))
    charts = _charts(at)
    assert any("final posterior" in t for t, _ in charts.values())
    table = at.dataframe[0].value
    assert list(table["status"]) == ["failed", "done"]


def test_without_an_exact_posterior_the_runs_are_scored_against_the_most_accurate_one(store):
    a = _finished(store, "npe", 1, None, 1.0)
    b = _finished(store, "snpe", 3, None, 0.3)
    at = _page([a, b])
    titles = [t for t, _ in _charts(at).values()]
    assert any("most accurate run" in t and "Sequential SNPE" in t for t in titles), titles
    assert any("most accurate run" in c.value for c in at.caption)
    table = at.dataframe[0].value
    assert table["final C2ST"].iloc[1] == "reference" and float(table["final C2ST"].iloc[0]) > 0.8


def test_explanation_names_each_family_from_the_registry(monkeypatch):
    from sbi_core.methods import registry
    from sbi_core.methods.base import Method
    from sbi_ui import compare_texts

    fake = Method(name="fake_nle", title="Fake NLE", summary="Learns how data arise, then runs MCMC.",
                  sequential=False, learns="likelihood", build=lambda *a, **k: None)
    methods = {"npe": registry.METHODS["npe"], "snpe": registry.METHODS["snpe"], "fake_nle": fake}
    monkeypatch.setattr(compare_texts, "METHODS", methods)  # a registry of two families
    text = compare_texts.why_they_differ(["snpe"])
    assert text.index("Learn the posterior") < text.index("Learn the likelihood")  # the chosen family first
    assert methods["snpe"].summary in text and "Fake NLE (not in this comparison)" in text
    assert "Also in this family: Amortized NPE" in text
    assert "Fake NLE*: Learns how data arise" in compare_texts.why_they_differ(["fake_nle"])
    assert "Learn a ratio" not in text and "ABC" not in text  # no method of these families is registered


def test_truth_toggle_hides_the_star(store):
    a = _finished(store, "npe", 1, [0.8], 1.0)
    b = _finished(store, "snpe", 2, [0.9, 0.7], 0.3)

    def stars(at):
        clouds = next(d for t, d in _charts(at).values() if "final posterior" in t)
        return sum(tr.get("name") == "true parameter" for tr in clouds)

    assert stars(_page([a, b])) == 2
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params[K.QP_COMPARE] = ",".join([a, b])
    at.query_params[K.QP_TRUTH] = K.QP_TRUTH_HIDDEN
    at.run()
    at.switch_page(COMPARE)
    at.run()
    _ok(at)
    assert stars(at) == 0


def test_a_queued_comparison_shows_its_status_and_can_be_cancelled(store):
    spec = RunSpec(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=300)
    ids = [store.create_run(spec), store.create_run(spec)]  # no worker: they stay queued
    at = _page(ids)
    status = " ".join(m.value for m in at.markdown)
    assert status.count("Amortized NPE") >= 2
    cancel = next(b for b in at.button if b.label == "Cancel the comparison")
    cancel.click().run()
    _ok(at)
    assert [store.get_run(i).status for i in ids] == ["cancelled", "cancelled"]
    assert not [b for b in at.button if b.label == "Cancel the comparison"]

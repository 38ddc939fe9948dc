"""AppTest of the Check page (pages/check.py): it renders with and without checks, draws every plot of a
checked run (beside its broken twin when there is one), says which checks do not apply, and starts a check
job from its button.

Runs are tiny and carried out in-process (:func:`sbi_core.jobs.worker.run_worker`); their checks are computed
in-process too (:func:`sbi_core.checks.run_checks`) and saved where a check job saves them, except in the
test that presses the button, which starts a real worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sbi_core.checks import checks_dir, link_broken_twin, run_checks, save_results
from sbi_core.jobs.manager import JobManager
from sbi_core.jobs.worker import run_worker
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore

from sbi_ui import keys as K

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
CHECK = "pages/check.py"
SMALL = {"num_datasets": 60, "num_posterior_samples": 30}  # 60: enough for the local C2ST (50)

pytestmark = pytest.mark.timeout(300)


def tiny(**kw) -> RunSpec:
    base = dict(simulator="linear_regression", method="npe", num_rounds=1, simulations_per_round=200, max_epochs=4,
                hidden_features=16, num_transforms=2, num_posterior_samples=200, num_threads=1, title="checked run")
    base.update(kw)
    return RunSpec(**base)


def checked(store: RunStore, spec: RunSpec) -> str:
    rid = store.create_run(spec)
    assert run_worker(store, rid) == "done"
    save_results(checks_dir(store, rid), run_checks(store, rid, SMALL))
    return rid


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A checked amortized run with a checked twin, an unchecked run, a checked SNPE run and a failed run."""
    root = tmp_path_factory.mktemp("check_page_store")
    store = RunStore(root)
    ids = {"good": checked(store, tiny()), "twin": checked(store, tiny(simulations_per_round=40, max_epochs=2,
                                                                       title="Broken on purpose: checked run"))}
    link_broken_twin(store, ids["good"], ids["twin"])
    ids["plain"] = store.create_run(tiny(title="unchecked run"))
    assert run_worker(store, ids["plain"]) == "done"
    ids["snpe"] = checked(store, tiny(simulator="two_moons", method="snpe", num_rounds=2, simulations_per_round=100,
                                      max_epochs=2, title="sequential run"))
    ids["failed"] = store.create_run(tiny(title="failed run"))
    store.finish_run(ids["failed"], "failed", message="boom", event={"type": "failed", "message": "boom"})
    return store, ids


@pytest.fixture
def in_store(runs, monkeypatch):
    store, ids = runs
    monkeypatch.setenv("SBI_STORE_DIR", str(store.root))
    return store, ids


def check_page(run_id: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if run_id:
        at.query_params[K.QP_RUN] = run_id
    at.run()
    at.switch_page(CHECK)
    at.run()
    assert_ok(at)
    return at


def assert_ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    bugs = [e.value for e in at.error if "Something went wrong" in str(e.value)]
    assert not bugs, bugs


def texts(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)


def test_renders_without_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SBI_STORE_DIR", str(tmp_path / "empty"))
    at = check_page()
    assert any("No runs yet" in i.value for i in at.info)


def test_checked_run_draws_every_plot_beside_its_broken_twin(in_store):
    store, ids = in_store
    at = check_page(ids["good"])
    charts = at.get("plotly_chart")
    assert len(charts) == 20, len(charts)  # 10 charts x (this run, its broken twin)
    body = texts(at)
    for words in ("for b0", "How often",
                  "This run", "Broken on purpose", "rank", "could have produced your data", "at your observation"):
        assert words in body, words
    assert at.button(key=K.W_CHECK_START).label == "Check again"


def test_unchecked_run_offers_the_checks(in_store):
    store, ids = in_store
    at = check_page(ids["plain"])
    assert at.button(key=K.W_CHECK_START).label == "Run the checks"
    assert not at.get("plotly_chart")
    assert any("No checks yet" in i.value for i in at.info)


def test_sequential_run_says_which_checks_do_not_apply(in_store):
    store, ids = in_store
    at = check_page(ids["snpe"])
    assert any("do not apply" in e.label for e in at.expander)
    # the predictive check, the reference C2ST and the misspecification test (the local C2ST does not apply)
    assert [c.key for c in at.get("plotly_chart")] == [
        "check_predictive_0", "check_reference_c2st_0", "check_misspecification_0"]
    assert "valid near the observation" in texts(at)
    assert any("local C2ST" in e.label or "local C2ST" in "".join(m.value for m in e.markdown) for e in at.expander)


def test_failed_run_explains_instead_of_checking(in_store):
    store, ids = in_store
    at = check_page(ids["failed"])
    assert any("no posterior to check" in w.value for w in at.warning)
    assert not at.get("plotly_chart")


def test_an_unknown_run_in_the_link_is_said_and_nothing_else_is_checked(in_store):
    """?run=<an id not in the store> used to check the newest run instead, without a word."""
    store, ids = in_store
    missing = "zz" + "0" * 14
    assert store.get_run(missing) is None
    at = check_page(missing)
    warnings = [w.value for w in at.warning if "was not found" in w.value]
    assert warnings and missing in warnings[0], [w.value for w in at.warning]
    links = [link for link in at.get("page_link") if "runs" in link.proto.page]
    assert links, "a link to the Runs page"
    assert not [sb for sb in at.selectbox if sb.key == K.W_CHECK_RUN]  # no other run picked in its place
    assert not at.get("plotly_chart") and not [b for b in at.button if b.key == K.W_CHECK_START]
    # forgetting it shows this browser's runs again
    at.button(key=K.W_RUN_MISSING_FORGET).click().run()
    assert_ok(at)
    assert not [w for w in at.warning if "was not found" in w.value]
    assert at.selectbox(key=K.W_CHECK_RUN).value in ids.values()


def test_a_link_with_text_that_is_no_run_id_is_not_rendered_as_markdown(in_store):
    at = check_page("![x](http://evil.example/p.png)")
    warnings = [w.value for w in at.warning if "was not found" in w.value]
    assert warnings and "not a run id" in warnings[0] and "evil.example" not in warnings[0]


@pytest.mark.slow
def test_the_button_starts_a_check_job_whose_results_the_page_draws(tmp_path, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    store = RunStore(root)
    rid = store.create_run(tiny())
    assert run_worker(store, rid) == "done"
    at = check_page(rid)
    at.number_input(key=K.W_CHECK_DATASETS).set_value(40)
    at.number_input(key=K.W_CHECK_SAMPLES).set_value(20)
    at.button(key=K.W_CHECK_START).click()
    at.run()
    assert_ok(at)
    check = JobManager(store, max_running=1).wait_checks(rid, timeout=240)
    assert check.status == "done", (check.message, check.detail)
    assert check.options["num_datasets"] == 40 and check.options["num_posterior_samples"] == 20
    at.run()
    assert_ok(at)
    # every chart but the local C2ST's, which says why it is missing: 40 test datasets are too few for it
    assert len(at.get("plotly_chart")) == 9
    assert any("L-C2ST needs at least" in c.value for c in at.caption)

"""App tests with Streamlit's AppTest: every page renders, with and without runs.

Runs live in temporary stores (``SBI_STORE_DIR``). Finished runs are real but
tiny: :func:`sbi_core.jobs.worker.run_worker` carries them out in-process (two
moons, a few hundred simulations, 3 epochs), writing events and round
artifacts exactly as a background worker does. Starting runs from the pages
spawns real workers, which the tests wait for or cancel.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sbi_ui import keys as K
from sbi_core.jobs.worker import run_worker
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(120)

APP = str(ROOT / "app.py")
PAGES = ["pages/home.py", "pages/model.py", "pages/train.py", "pages/rounds.py", "pages/explore.py",
         "pages/runs.py"]
TIMEOUT = 60


def tiny(**kw) -> RunSpec:
    base = dict(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=300, max_epochs=3,
                hidden_features=16, num_transforms=2, num_posterior_samples=300, num_threads=1,
                title="tiny test run")
    base.update(kw)
    return RunSpec(**base)


def app(run_id: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if run_id:
        at.query_params[K.QP_RUN] = run_id
    return at


def visit(at: AppTest, page: str) -> AppTest:
    at.switch_page(page)
    at.run()
    assert_ok(at, page)
    return at


def assert_ok(at: AppTest, where: str = "") -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"
    bugs = [e.value for e in at.error if "Something went wrong" in str(e.value)]
    assert not bugs, f"{where}: {bugs}"


def charts(at: AppTest) -> list:
    return at.get("plotly_chart")


# ---------------------------------------------------------------------------
# stores
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs_store(tmp_path_factory):
    """A store with a finished NPE run, finished 2-round SNPE and TSNPE runs and a failed run."""
    root = tmp_path_factory.mktemp("store_runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SBI_STORE_DIR", str(root))
        store = RunStore(root)
        ids = {}
        ids["npe"] = store.create_run(tiny(title="tiny amortized"))
        assert run_worker(store, ids["npe"]) == "done"
        ids["snpe"] = store.create_run(tiny(method="snpe", num_rounds=2, simulations_per_round=200,
                                            title="tiny sequential"))
        assert run_worker(store, ids["snpe"]) == "done"
        ids["tsnpe"] = store.create_run(tiny(method="tsnpe", num_rounds=2, simulations_per_round=200,
                                             title="tiny truncated sequential"))
        assert run_worker(store, ids["tsnpe"]) == "done"
        ids["failed"] = store.create_run(tiny(title="a failing run"))
        store.finish_run(ids["failed"], "failed", message="The simulator returned 3 rows for 5 parameter sets.",
                         detail="Traceback (most recent call last):\n  ...\nValueError: boom",
                         event={"type": "failed", "message": "The simulator returned 3 rows for 5 parameter sets.",
                                "detail": "Traceback ...ValueError: boom"})
        yield store, ids


@pytest.fixture
def in_runs_store(runs_store, monkeypatch):
    store, ids = runs_store
    monkeypatch.setenv("SBI_STORE_DIR", str(store.root))
    return store, ids


@pytest.fixture
def fresh_store(tmp_path, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    return RunStore(root)


def _jobs():
    from sbi_ui import resources as ui

    return ui.jobs()


# ---------------------------------------------------------------------------
# every page, no runs (one test per page, so a failure names the page)
# ---------------------------------------------------------------------------
def test_home_renders_without_runs(fresh_store):
    at = app()
    at.run()
    assert_ok(at, "home")
    assert at.button(key=K.W_START_DEMO).label.startswith("Start demo")
    assert charts(at), "the home picture"


@pytest.mark.parametrize("page", PAGES[1:])
def test_page_renders_without_runs(fresh_store, page):
    at = app()
    at.run()
    assert_ok(at, "home")
    visit(at, page)


def test_model_page_defaults_without_runs(fresh_store):
    at = app()
    at.run()
    visit(at, "pages/model.py")
    assert at.button(key=K.w_model_pick("projectile")).label == "Use this model"
    assert at.radio(key=K.W_OBS_SOURCE).value == "default"


def test_train_page_widgets_without_runs(fresh_store):
    at = app()
    at.run()
    visit(at, "pages/train.py")
    start = at.button(key=K.W_START)
    assert start.label == "Start" and not start.disabled
    defaults = RunSpec()  # the widgets start where a RunSpec does: one source for each default
    for key, field in ((K.W_SIMS, "simulations_per_round"), (K.W_ROUNDS, "num_rounds"), (K.W_SEED, "seed"),
                       (K.W_HIDDEN, "hidden_features"), (K.W_TRANSFORMS, "num_transforms"),
                       (K.W_MAX_EPOCHS, "max_epochs"), (K.W_PATIENCE, "patience")):
        box = at.number_input(key=key)
        assert box.help and box.value == getattr(defaults, field), (key, box.value)
    assert at.radio(key=K.W_METHOD).value == defaults.method
    assert at.selectbox(key=K.W_ESTIMATOR).value == defaults.density_estimator


# ---------------------------------------------------------------------------
# every page with finished runs (one test per page and method)
# ---------------------------------------------------------------------------
KINDS = ["snpe", "tsnpe", "npe"]


def app_with_run(in_runs_store, kind: str) -> tuple[AppTest, str]:
    """The app opened on the finished ``kind`` run (``?run=<id>``), home page drawn."""
    store, ids = in_runs_store
    rid = ids[kind]
    at = app(rid)
    at.run()
    assert_ok(at, "home")
    assert at.query_params[K.QP_RUN] == rid
    return at, rid


@pytest.mark.parametrize("kind", KINDS)
def test_train_page_with_finished_run(in_runs_store, kind):
    at, rid = app_with_run(in_runs_store, kind)
    visit(at, "pages/train.py")
    assert any("Finished" in s.value for s in at.success)
    titles = [c.proto.spec for c in charts(at)]
    assert any("Training and validation loss" in s for s in titles)
    assert any("Posterior after each round" in s for s in titles)
    assert at.query_params[K.QP_RUN] == rid


@pytest.mark.parametrize("kind", KINDS)
def test_rounds_page_with_finished_run(in_runs_store, kind):
    at, rid = app_with_run(in_runs_store, kind)
    visit(at, "pages/rounds.py")
    assert at.selectbox(key=K.W_ROUNDS_RUN).value == rid
    assert any("Posterior round by round" in c.proto.spec for c in charts(at))
    # sequential runs also show the parameters each round simulated, one panel per round
    proposals = [c.proto.spec for c in charts(at) if "Where each round simulated" in c.proto.spec]
    assert len(proposals) == (0 if kind == "npe" else 1)
    if kind == "tsnpe":
        assert "from the prior" in proposals[0] and "% of prior" in proposals[0]
    elif kind == "snpe":
        assert "from posterior 1" in proposals[0]
    assert len(at.dataframe) >= 2
    overview = at.dataframe[0].value
    # TSNPE rounds come from a shrinking part of the prior; the column exists only for them
    assert ("drawn from" in overview.columns) == (kind == "tsnpe")
    if kind == "tsnpe":
        assert overview["drawn from"].iloc[0] == 1.0 and 0 < overview["drawn from"].iloc[1] < 1
    assert at.get("download_button")
    assert at.image, "the corner plot"


@pytest.mark.parametrize("kind", KINDS)
def test_explore_page_with_finished_run(in_runs_store, kind):
    at, rid = app_with_run(in_runs_store, kind)
    visit(at, "pages/explore.py")
    if kind == "npe":
        sliders = [s for s in at.slider if s.key and s.key.startswith(f"explore_x_{rid}_")]
        assert len(sliders) == 2
        assert any("Posterior at the observation" in c.proto.spec for c in charts(at))
        assert any("predictive" in c.proto.spec for c in charts(at))
        sliders[0].set_value(sliders[0].value + 0.05)
        at.run()
        assert_ok(at, "explore after moving a slider")
    else:
        assert any("sequential" in i.value for i in at.info)


@pytest.mark.parametrize("kind", KINDS)
def test_runs_page_with_finished_run(in_runs_store, kind):
    at, rid = app_with_run(in_runs_store, kind)
    visit(at, "pages/runs.py")
    assert at.selectbox(key=K.W_RUNS_SELECT).value == rid
    assert '"method": "%s"' % kind in at.code[0].value
    assert at.get("download_button")


@pytest.mark.parametrize("page", ["pages/model.py", "pages/home.py"])
@pytest.mark.parametrize("kind", KINDS)
def test_other_pages_render_with_finished_run(in_runs_store, kind, page):
    at, _ = app_with_run(in_runs_store, kind)
    visit(at, page)


def test_failed_run_shows_plain_message(in_runs_store):
    store, ids = in_runs_store
    at = app(ids["failed"])
    at.run()
    visit(at, "pages/train.py")
    assert any("3 rows for 5 parameter sets" in e.value for e in at.error)
    assert any(e.label == "Show technical detail" for e in at.expander)
    visit(at, "pages/rounds.py")
    visit(at, "pages/runs.py")
    assert any("3 rows for 5 parameter sets" in e.value for e in at.error)


def test_queued_run_shows_its_place(fresh_store):
    rid = fresh_store.create_run(tiny(title="waiting"))  # no worker: stays queued (for a minute)
    at = app(rid)
    at.run()
    visit(at, "pages/train.py")
    assert any("Next in line" in i.value and "starts as soon as a worker is free" in i.value for i in at.info)
    assert at.button(key=K.W_CANCEL)
    at.button(key=K.W_CANCEL).click()
    at.run()
    assert_ok(at, "after cancel")
    assert fresh_store.get_run(rid).status == "cancelled"


def test_unknown_run_in_url(fresh_store):
    at = app("0123456789ab")
    at.run()
    visit(at, "pages/train.py")
    assert any("0123456789ab" in w.value and "was not found" in w.value for w in at.warning)


@pytest.mark.parametrize("page", ["pages/rounds.py", "pages/explore.py", "pages/check.py"])
def test_an_unknown_run_in_the_url_shows_no_other_run(in_runs_store, page):
    """The pages that pick a run said nothing and showed the newest run instead of the link's."""
    missing = "yy" + "1" * 14
    at = app(missing)
    at.run()
    visit(at, page)
    warnings = [w.value for w in at.warning if "was not found" in w.value]
    assert warnings and missing in warnings[0], [w.value for w in at.warning]
    assert [link for link in at.get("page_link") if "runs" in link.proto.page]
    assert not at.selectbox and not charts(at)  # no run picked and drawn in its place


def test_compare_says_which_runs_of_its_link_are_gone(in_runs_store):
    store, ids = in_runs_store
    missing = "xx" + "2" * 14
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params[K.QP_COMPARE] = f"{ids['npe']},{missing}"
    at.run()
    visit(at, "pages/compare.py")
    warnings = [w.value for w in at.warning if "was not found" in w.value]
    assert warnings and missing in warnings[0], [w.value for w in at.warning]
    assert [link for link in at.get("page_link") if "runs" in link.proto.page]


# ---------------------------------------------------------------------------
# the error boundary holds the frame too
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("page", [None, "pages/check.py"])
def test_an_exception_from_the_frame_is_a_message_not_a_traceback(fresh_store, monkeypatch, page):
    """app.py's frame (URL, link, sidebar) ran outside its try: one exception there and no page was drawn."""
    import sbi_ui.frame as frame

    def broken() -> None:
        raise RuntimeError("the frame broke at /srv/secret/path.py")

    monkeypatch.setattr(frame, "sync_projector", broken)
    at = app()
    at.run()  # app.py routing its default page
    if page:
        at.switch_page(page)  # a page run on its own (page_guard draws the frame)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert any("Something went wrong while drawing" in e for e in errors), errors
    shown = " ".join(errors + [c.value for c in at.code] + [t.value for t in at.text])
    assert "Traceback" not in shown and "/srv/secret" not in shown and 'File "' not in shown
    assert any("RuntimeError" in t.value and "Reference" in t.value for t in at.text)


# ---------------------------------------------------------------------------
# starting runs
# ---------------------------------------------------------------------------
def test_start_from_train_page_writes_the_store(fresh_store):
    at = app()
    at.run()
    visit(at, "pages/train.py")
    at.radio(key=K.W_METHOD).set_value("npe")
    at.number_input(key=K.W_SIMS).set_value(200)
    at.number_input(key=K.W_MAX_EPOCHS).set_value(5)
    at.number_input(key=K.W_HIDDEN).set_value(16)
    at.number_input(key=K.W_TRANSFORMS).set_value(2)
    at.run()
    at.button(key=K.W_START).click()
    at.run()
    assert_ok(at, "after Start")
    runs = fresh_store.list_runs()
    assert len(runs) == 1
    rid = runs[0].id
    spec = runs[0].spec
    assert (spec.method, spec.simulations_per_round, spec.max_epochs, spec.num_rounds) == ("npe", 200, 5, 1)
    assert spec.simulator == "two_moons"
    assert at.query_params[K.QP_RUN] == rid
    assert [t.value for t in at.title] == ["Train"]
    info = _jobs().wait(rid, timeout=90)
    assert info.status == "done", info.message
    at.run()
    assert_ok(at, "finished")
    assert any("Finished" in s.value for s in at.success)
    # a fresh session that opens the URL sees the same run
    again = app(rid)
    again.run()  # AppTest needs one run before switching to a page with a custom url_path
    visit(again, "pages/train.py")
    assert any("Finished" in s.value for s in again.success)


def test_start_demo_button(fresh_store):
    at = app()
    at.run()
    at.button(key=K.W_START_DEMO).click()
    at.run()
    assert_ok(at, "after Start demo")
    runs = fresh_store.list_runs()
    assert len(runs) == 1
    rid = runs[0].id
    try:
        demo = RunSpec.demo()
        assert runs[0].spec.to_dict() == demo.to_dict()
        assert at.query_params[K.QP_RUN] == rid
        assert [t.value for t in at.title] == ["Train"]
        other = app()  # a second browser presses Start demo too: the same run, not a second one
        other.run()
        other.button(key=K.W_START_DEMO).click()
        other.run()
        assert_ok(other, "after a second Start demo")
        assert [r.id for r in fresh_store.list_runs()] == [rid] and other.query_params[K.QP_RUN] == rid
    finally:
        _jobs().cancel(rid)
        info = _jobs().wait(rid, timeout=30)
    assert info.status in ("cancelled", "done")


# ---------------------------------------------------------------------------
# the model page
# ---------------------------------------------------------------------------
def test_model_page_prior_and_observation(fresh_store):
    at = app()
    at.run()
    visit(at, "pages/model.py")
    at.button(key=K.w_model_pick("projectile")).click()
    at.run()
    assert_ok(at, "pick projectile")
    cfg = at.session_state[K.S_MODEL_CFG]
    assert cfg.simulator == "projectile" and cfg.prior is None
    # an invalid prior shows the PriorSpecError message and keeps the last valid prior
    low = at.number_input(key=K.w_prior_number("projectile", 0, "uniform", "low"))
    low.set_value(50.0)
    at.run()
    assert_ok(at, "invalid prior")
    assert any("must be smaller than" in e.value for e in at.error)
    assert at.session_state[K.S_MODEL_CFG].prior is None
    # a valid edit is used
    at.number_input(key=K.w_prior_number("projectile", 0, "uniform", "low")).set_value(8.0)
    at.run()
    prior = at.session_state[K.S_MODEL_CFG].prior
    assert prior[0]["low"] == 8.0
    # family switch
    at.selectbox(key=K.w_prior_family("projectile", 1)).set_value("normal")
    at.run()
    assert_ok(at, "family switch")
    assert at.session_state[K.S_MODEL_CFG].prior[1]["dist"] == "normal"
    # observation: typed values are checked, a simulated one has a true parameter
    at.radio(key=K.W_OBS_SOURCE).set_value("typed")
    at.run()
    at.text_input(key=K.W_OBS_TYPED).set_value("1, 2, 3")
    at.run()
    assert any("produces 4 numbers" in e.value for e in at.error)
    at.text_input(key=K.W_OBS_TYPED).set_value("1, 2, nan, 4")
    at.run()
    assert any("finite" in e.value for e in at.error)
    at.text_input(key=K.W_OBS_TYPED).set_value("20, 5, 1.5, 0.9")
    at.run()
    assert at.session_state[K.S_MODEL_CFG].observation == [20.0, 5.0, 1.5, 0.9]
    at.radio(key=K.W_OBS_SOURCE).set_value("simulate")
    at.run()
    assert_ok(at, "simulate")
    cfg = at.session_state[K.S_MODEL_CFG]
    assert len(cfg.observation) == 4 and len(cfg.true_theta) == 2


def test_runs_page_delete(fresh_store):
    rid = fresh_store.create_run(tiny(title="to delete"))
    fresh_store.finish_run(rid, "cancelled", event={"type": "cancelled", "round": None})
    at = app(rid)
    at.run()
    visit(at, "pages/runs.py")
    assert at.button(key=K.W_RUNS_DELETE).disabled
    at.checkbox(key=K.w_runs_confirm("delete", rid)).check()
    at.run()
    at.button(key=K.W_RUNS_DELETE).click()
    at.run()
    assert_ok(at, "after delete")
    assert fresh_store.get_run(rid) is None
    assert K.QP_RUN not in at.query_params

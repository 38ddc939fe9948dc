"""?spec= links in the app (AppTest): a link rebuilds the Train form and the model; a bad one says why."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from streamlit.testing.v1 import AppTest

from sbi_core import RunSpec
from sbi_ui import keys as K
from sbi_ui.model_choice import ModelChoice

from apptest_support import APP

pytestmark = pytest.mark.timeout(120)

LINKED = RunSpec(
    simulator="two_moons",
    prior=[{"name": "theta1", "dist": "uniform", "low": -0.5, "high": 0.5},
           {"name": "theta2", "dist": "uniform", "low": -0.75, "high": 0.75}],
    observation=[0.05, -0.1],
    true_theta=[0.1, 0.2],
    method="tsnpe",
    num_rounds=3,
    simulations_per_round=600,
    density_estimator="maf",
    hidden_features=24,
    num_transforms=3,
    max_epochs=40,
    patience=6,
    seed=42,
    learning_rate=1e-3,
    batch_size=128,
    num_posterior_samples=500,
    title="Lesson link",
)


@pytest.fixture
def store_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SBI_STORE_DIR", str(tmp_path / "store"))


def _open(query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params[K.QP_SPEC] = query
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _form_spec(at: AppTest) -> RunSpec:
    """The RunSpec the Train page's share link holds now (what Start would run)."""
    codes = [c.value for c in at.code if "?spec=" in c.value]
    assert codes, "no share link on the Train page"
    query = parse_qs(urlsplit(codes[-1]).query)["spec"][0]
    return RunSpec.from_query(query)


def test_a_link_rebuilds_the_form_and_the_model_and_round_trips(store_env):
    at = _open(LINKED.to_query())
    assert at.radio(key=K.W_METHOD).value == "tsnpe"
    assert at.number_input(key=K.W_SIMS).value == 600 and at.number_input(key=K.W_SEED).value == 42
    assert at.number_input(key=K.W_ROUNDS).value == 3 and at.selectbox(key=K.W_ESTIMATOR).value == "maf"
    assert [s.value for s in at.success if "Set up from the link" in s.value]
    assert not [w.value for w in at.warning if "Session State" in str(w.value)]
    assert not at.button(key=K.W_START).disabled
    assert at.query_params[K.QP_SPEC] in (LINKED.to_query(), [LINKED.to_query()])  # the URL holds the setup
    at.number_input(key=K.W_SEED).set_value(7).run()  # a change to the form is written back to the URL
    seeded = RunSpec.from_query(at.query_params[K.QP_SPEC] if isinstance(at.query_params[K.QP_SPEC], str)
                                else at.query_params[K.QP_SPEC][0])
    assert seeded.seed == 7 and seeded.method == "tsnpe"
    at.number_input(key=K.W_SEED).set_value(42).run()
    again = _form_spec(at)
    assert again == LINKED  # every field, those the form does not show included
    choice = at.session_state[K.S_MODEL_CFG]
    assert isinstance(choice, ModelChoice) and choice.observation == [0.05, -0.1] and choice.true_theta == [0.1, 0.2]


def test_the_defaults_share_a_link_of_the_default_setup(store_env):
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    spec = _form_spec(at)
    assert spec.method == RunSpec().method and spec.simulations_per_round == RunSpec().simulations_per_round


@pytest.mark.parametrize("query, words", [
    ("1.garbage.XXXXXXXX", "check code"),
    ("7.abc.def", "newer version"),
    (RunSpec(simulator={"kind": "upload", "path": "/etc/passwd"}).to_query(), "names a file path"),
])
def test_a_bad_link_says_why_and_the_page_starts_from_defaults(store_env, query, words):
    at = _open(query)
    errors = [e.value for e in at.error if "could not be used" in e.value]
    assert errors and words in errors[0], [e.value for e in at.error]
    assert "root:" not in " ".join(e.value for e in at.error)
    assert at.radio(key=K.W_METHOD).value == RunSpec().method
    at.button(key=K.W_LINK_DISMISS).click().run()
    assert not [e.value for e in at.error if "could not be used" in e.value]


def test_setup_link_keeps_the_page_and_drops_its_old_query():
    from sbi_ui.spec_link import qr_svg, setup_link

    spec = RunSpec(method="npe", num_rounds=1, seed=9)
    link = setup_link(spec, base_url="http://class.example:8501/train?run=abc&truth=hidden")
    assert link.startswith("http://class.example:8501/train?spec=1.")
    assert RunSpec.from_query(parse_qs(urlsplit(link).query)["spec"][0]) == spec
    svg = qr_svg(link)
    assert svg.startswith("<svg") and "<path" in svg and 'stroke="#000"' in svg
    assert qr_svg(link + "x") != svg  # the code encodes the link, not a fixed picture


def test_a_link_may_name_an_upload_of_this_server(tmp_path, monkeypatch):
    from pathlib import Path

    from sbi_core.uploads.files import save_upload

    root = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    source = Path(__file__).resolve().parents[1] / "assets" / "examples" / "pendulum.py"
    path = save_upload(root, source.read_bytes(), "pendulum.py")
    spec = RunSpec(simulator={"kind": "upload", "path": str(path), "name": "Pendulum"},
                   prior=[{"name": "length", "dist": "uniform", "low": 0.5, "high": 2.0},
                          {"name": "damping", "dist": "uniform", "low": 0.0, "high": 0.5}],
                   observation=[0.1, 0.2, 0.3], method="npe", num_rounds=1, title="Upload link")
    at = _open(spec.to_query())
    assert [s.value for s in at.success if "Set up from the link" in s.value], [e.value for e in at.error]
    choice = at.session_state[K.S_MODEL_CFG]
    assert choice.is_upload and choice.simulator_ref["path"] == str(path) and choice.prior == spec.prior
    assert _form_spec(at) == spec


def _nested_link(depth: int) -> str:
    """A well-formed link (right version and check code) whose JSON nests ``depth`` brackets deep."""
    import zlib

    from sbi_core.run.link import MAX_JSON_BYTES, _b64, _check

    text = '{"title": ' + "[" * depth + "]" * depth + "}"
    assert len(text) < MAX_JSON_BYTES  # under the inflated-size limit: only the nesting is wrong
    payload = _b64(zlib.compress(text.encode(), 9))
    return f"1.{payload}.{_check(payload)}"


def test_a_deeply_nested_link_is_its_own_message_and_the_page_is_drawn(store_env):
    at = _open(_nested_link(5_000))  # raised RecursionError out of the frame: no page at all
    errors = [e.value for e in at.error if "could not be used" in e.value]
    assert errors and "levels deep" in errors[0], [e.value for e in at.error]
    assert at.radio(key=K.W_METHOD).value == RunSpec().method  # the Train page, from the defaults
    assert not [e for e in at.error if "Something went wrong" in e.value]


def test_any_failure_while_reading_a_link_becomes_the_links_message(store_env, monkeypatch):
    import sbi_ui.spec_link as spec_link

    def broken(*args, **kwargs):
        raise RuntimeError("a bug while admitting the spec")

    monkeypatch.setattr(spec_link, "admit_spec", broken)
    at = _open(LINKED.to_query())
    errors = [e.value for e in at.error if "could not be used" in e.value]
    assert errors and "could not be read (RuntimeError)" in errors[0], [e.value for e in at.error]
    assert "a bug while" not in errors[0] and "Traceback" not in errors[0]
    assert at.radio(key=K.W_METHOD).value == RunSpec().method
    assert K.QP_SPEC not in at.query_params or at.query_params[K.QP_SPEC] != LINKED.to_query()


def _query_spec(at: AppTest) -> RunSpec:
    """The RunSpec in the address bar's ``?spec=``."""
    value = at.query_params[K.QP_SPEC]
    return RunSpec.from_query(value if isinstance(value, str) else value[0])


def test_a_runs_address_carries_the_runs_own_setup_until_the_form_changes(tmp_path, monkeypatch):
    """The demo's address held the form's defaults (SNPE 4 x 1000): opened elsewhere, its notice and form
    described another setup than the run on screen (issue 19)."""
    from sbi_core.store.runs import RunStore

    root = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    demo = RunSpec.demo()
    store = RunStore(root)
    rid = store.create_run(demo, title=demo.title)
    store.finish_run(rid, "cancelled")  # a run record without a worker: nothing trains in this test
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params[K.QP_RUN] = rid
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert _form_spec(at).simulations_per_round == RunSpec().simulations_per_round  # the form: its defaults
    assert _query_spec(at) == demo  # the address: the run's own setup
    at.number_input(key=K.W_SEED).set_value(5).run()  # the user edits the form: the address follows it
    edited = _query_spec(at)
    assert edited.seed == 5 and edited.simulations_per_round == RunSpec().simulations_per_round

    other = AppTest.from_file(APP, default_timeout=60)  # the demo's address, opened in another browser
    other.query_params[K.QP_RUN] = rid
    other.query_params[K.QP_SPEC] = demo.to_query()
    other.run()
    other.switch_page("pages/train.py")
    other.run()
    assert not other.exception, [e.value for e in other.exception]
    notices = [s.value for s in other.success if "Set up from the link" in s.value]
    assert notices and demo.title in notices[0].replace("\\", ""), notices  # markdown escapes aside
    assert other.number_input(key=K.W_SIMS).value == demo.simulations_per_round
    assert other.number_input(key=K.W_ROUNDS).value == demo.num_rounds
    assert _query_spec(other) == demo
    other.button(key=K.W_LINK_DISMISS).click().run()
    assert not [s.value for s in other.success if "Set up from the link" in s.value]

"""AppTest of the Your model & data page (pages/data.py): every tab renders, good uploads are
accepted, and a rejected upload shows what to fix while the last good one stays in use.

Simulator uploads really run in the sandbox (a child process per file, about a second each);
runs on tables are carried out in-process by :func:`sbi_core.jobs.worker.run_worker`.
"""

from __future__ import annotations

import json
import re

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sbi_ui import keys as K
from sbi_ui.user_text import WORD_JOINER
from sbi_core.jobs.worker import run_worker
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore
from sbi_core.uploads.files import save_upload

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(180)

APP = str(ROOT / "app.py")
DATA = "pages/data.py"
EXAMPLES = ROOT / "assets" / "examples"
TABLE = EXAMPLES / "two_moons_simulations.csv"


@pytest.fixture
def store(tmp_path, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    return RunStore(root)


def data_page(run_id: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    if run_id:
        at.query_params[K.QP_RUN] = run_id
    at.switch_page(DATA)
    at.run()
    assert_ok(at)
    return at


def assert_ok(at: AppTest, where: str = "") -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"
    bugs = [e.value for e in at.error if "Something went wrong" in str(e.value)]
    assert not bugs, f"{where}: {bugs}"


def as_shown(md: str) -> str:
    """Markdown as the browser shows it, as far as the escapes go: the page escapes what the user named
    (file names, column names: :func:`sbi_ui.user_text.plain`)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", md).replace(WORD_JOINER, "")


def errors(at: AppTest) -> list[str]:
    return [as_shown(e.value) for e in at.error]


def upload(at: AppTest, key: str, name: str, data: bytes, mime: str = "text/plain") -> AppTest:
    at.file_uploader(key=key).set_value((name, data, mime))
    at.run()
    assert_ok(at, f"after uploading {name}")
    return at


def confirm_columns(at: AppTest) -> AppTest:
    """Press "Use these columns" (a table's guessed mapping waits for it)."""
    at.button(key=K.W_DATA_TABLE_COLS_OK).click()
    at.run()
    assert_ok(at, "after Use these columns")
    return at


def chart_titles(at: AppTest) -> list[str]:
    return [c.proto.spec for c in at.get("plotly_chart")]


def table_run(store: RunStore, **kw) -> str:
    """A finished amortized run on the example table (tiny network, 3 epochs)."""
    path = save_upload(store.root, TABLE.read_bytes(), TABLE.name)
    spec = dict(
        simulator={"kind": "table", "path": str(path), "theta_columns": ["theta1", "theta2"],
                   "x_columns": ["x1", "x2"], "name": TABLE.name},
        prior=[{"name": "theta1", "dist": "uniform", "low": -1.05, "high": 1.05},
               {"name": "theta2", "dist": "uniform", "low": -1.05, "high": 1.05}],
        observation=[0.1, 0.2], method="npe", num_rounds=1, simulations_per_round=2000, max_epochs=3,
        hidden_features=16, num_transforms=2, num_posterior_samples=200, num_threads=1, title="table run",
    )
    spec.update(kw)
    rid = store.create_run(RunSpec(**spec))
    assert run_worker(store, rid) == "done"
    return rid


# ---------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------
def test_every_tab_renders_empty(store):
    at = data_page()
    assert [t.label for t in at.tabs][:3] == ["Upload a simulator", "Upload simulations", "Observations & JSON"]
    keys = {u.key for u in at.file_uploader}
    assert {K.W_DATA_SIM_FILE, K.W_DATA_TABLE_FILE, K.W_DATA_PRIOR_FILE, K.W_DATA_SPEC_FILE} <= keys
    assert any("sandbox" in i.value for i in at.info) or any("sandbox" in w.value.lower() for w in at.warning) \
        or any("sandbox" in e for e in errors(at)), "the sandbox mode sentence"
    assert at.get("download_button"), "the prior export"


@pytest.mark.parametrize("trusted,expect", [("", "switched off"), ("1", "WITHOUT a sandbox")])
def test_page_says_which_mode_without_bubblewrap(store, monkeypatch, trusted, expect):
    monkeypatch.setenv("SBI_BWRAP", "/nonexistent/bwrap")  # as if bubblewrap were not installed
    monkeypatch.setenv("SBI_TRUSTED_UPLOADS", trusted)
    at = data_page()
    shown = [e for e in errors(at)] + [w.value for w in at.warning]
    assert any(expect in m for m in shown), shown
    assert at.file_uploader(key=K.W_DATA_SIM_FILE).disabled == (not trusted)


# ---------------------------------------------------------------------------
# tab 1: simulator code
# ---------------------------------------------------------------------------
@pytest.mark.slow
def test_upload_simulator_use_it_and_reject_a_broken_one(store):
    at = data_page()
    upload(at, K.W_DATA_SIM_FILE, "pendulum.py", (EXAMPLES / "pendulum.py").read_bytes())
    assert not errors(at), errors(at)
    assert any(h.value == "Pendulum" for h in at.subheader)
    assert any("Your simulator at prior draws" in t for t in chart_titles(at))
    assert at.button(key=K.W_DATA_SIM_USE).label == "Use this simulator"

    # a broken file: its message (with the line) is shown, the pendulum stays
    upload(at, K.W_DATA_SIM_FILE, "broken_syntax.py", (EXAMPLES / "broken_syntax.py").read_bytes())
    msgs = errors(at)
    assert any("broken_syntax.py" in m and "line 9" in m for m in msgs), msgs
    assert any("pendulum.py, is still in use" in as_shown(c.value) for c in at.caption)
    assert any(h.value == "Pendulum" for h in at.subheader)

    at.button(key=K.W_DATA_SIM_USE).click()
    at.run()
    assert_ok(at, "after Use this simulator")
    cfg = at.session_state[K.S_MODEL_CFG]
    assert cfg.simulator_ref["kind"] == "upload" and cfg.simulator_ref["path"].endswith("pendulum.py")
    assert cfg.observation == [0.08, -0.33, -0.07, 0.21]
    assert [m["name"] for m in cfg.prior] == ["length", "damping"]
    assert any("Model: Pendulum" in m.value for m in at.markdown), "the Train page names the upload"

    at.switch_page("pages/model.py")
    at.run()
    assert_ok(at, "model page with an uploaded model")
    assert any("Pendulum" in i.value for i in at.info)


def _leaves(node):
    """The page's elements in the order they are drawn (blocks walked depth first)."""
    children = getattr(node, "children", None)
    if children:
        for k in sorted(children):
            yield from _leaves(children[k])
    elif children is None:
        yield node


@pytest.mark.slow
def test_use_this_simulator_comes_right_after_the_accepted_upload_and_train_names_it(store):
    """Issue 19: the button sat below the prior, observation and preview (7,470 px down for a long series),
    so the user trained two moons twice; it now follows the "accepted" message, and Train says the model."""
    at = data_page()
    upload(at, K.W_DATA_SIM_FILE, "pendulum.py", (EXAMPLES / "pendulum.py").read_bytes())
    leaves = list(_leaves(at.main))
    accepted = [i for i, e in enumerate(leaves)
                if getattr(e, "type", "") == "success" and "pendulum" in e.value and "accepted" in e.value]
    assert accepted, [getattr(e, "value", e.type) for e in leaves][:20]
    after = leaves[accepted[0] + 1]
    assert getattr(after, "key", None) == K.W_DATA_SIM_USE and after.label == "Use this simulator", after
    chart = next(i for i, e in enumerate(leaves) if e.type == "plotly_chart")
    assert accepted[0] < chart, "the choice comes before the preview, not after it"

    at.button(key=K.W_DATA_SIM_USE).click()
    at.run()
    assert_ok(at, "after Use this simulator")
    banner = [e for e in _leaves(at.main) if getattr(e, "type", "") == "markdown" and "Model:" in e.value]
    assert banner and banner[0].value.endswith("Model: Pendulum"), [b.value for b in banner]
    assert any(e.type == "page_link" and "Change the model" in e.proto.label for e in _leaves(at.main))


def test_a_table_guess_is_a_question_to_confirm_before_training(store):
    """``ec50, hill, resp_0..resp_9`` was guessed as one parameter (ec50) and could be trained on at once."""
    cols = ["ec50", "hill"] + [f"resp_{i}" for i in range(10)]
    rows = [",".join(cols)] + [",".join(f"{(r * 7 + c) % 13 / 3 + r / 40:.3f}" for c in range(len(cols)))
                               for r in range(60)]
    at = data_page()
    upload(at, K.W_DATA_TABLE_FILE, "doses.csv", "\n".join(rows).encode(), "text/csv")
    assert at.multiselect(key=K.W_DATA_THETA_COLS).value == ["ec50", "hill"]
    assert at.multiselect(key=K.W_DATA_X_COLS).value == cols[2:]
    keys = [b.key for b in at.button]
    assert K.W_DATA_TABLE_COLS_OK in keys and K.W_DATA_TABLE_TRAIN not in keys, keys
    assert not at.metric, "nothing below the mapping before it is confirmed"
    assert any("Is this right?" in i.value for i in at.info)

    confirm_columns(at)
    assert at.button(key=K.W_DATA_TABLE_TRAIN).label == "Train amortized NPE on this table"
    assert [m.value for m in at.metric][:2] == ["60", "60"]

    # changing the mapping asks again
    at.multiselect(key=K.W_DATA_THETA_COLS).set_value(["ec50"])
    at.multiselect(key=K.W_DATA_X_COLS).set_value(["hill"] + cols[2:])
    at.run()
    assert K.W_DATA_TABLE_TRAIN not in [b.key for b in at.button]
    confirm_columns(at)
    assert at.button(key=K.W_DATA_TABLE_TRAIN)


@pytest.mark.slow
def test_simulator_without_prior_asks_for_one(store):
    at = data_page()
    upload(at, K.W_DATA_SIM_FILE, "no_prior.py", (EXAMPLES / "no_prior.py").read_bytes())
    assert not errors(at), errors(at)
    assert at.text_input(key=K.W_DATA_SIM_NAMES).value == "theta1"
    at.text_input(key=K.W_DATA_SIM_NAMES).input("rate")
    at.run()
    at.button(key=K.W_DATA_SIM_CHECK).click()
    at.run()
    assert_ok(at, "after checking with a prior")
    assert not errors(at), errors(at)
    assert any("5 numbers per simulation" in m.value for m in at.markdown)
    assert at.button(key=K.W_DATA_SIM_USE)


def test_oversized_simulator_file_is_refused(store):
    at = data_page()
    upload(at, K.W_DATA_SIM_FILE, "huge.py", b"# padding\n" * 120_000)
    assert any("huge.py" in m and "at most" in m for m in errors(at)), errors(at)
    assert K.S_DATA_SIM not in at.session_state or not at.session_state[K.S_DATA_SIM]


# ---------------------------------------------------------------------------
# tab 2: a table of simulations
# ---------------------------------------------------------------------------
def test_table_upload_mapping_and_rejections(store):
    at = data_page()
    upload(at, K.W_DATA_TABLE_FILE, "empty.csv", b"")
    assert any("empty.csv" in m and "is empty" in m for m in errors(at))

    upload(at, K.W_DATA_TABLE_FILE, TABLE.name, TABLE.read_bytes(), "text/csv")
    assert not errors(at), errors(at)
    assert at.multiselect(key=K.W_DATA_THETA_COLS).value == ["theta1", "theta2"]
    assert at.multiselect(key=K.W_DATA_X_COLS).value == ["x1", "x2"]
    confirm_columns(at)
    assert [m.value for m in at.metric][:3] == ["2,000", "2,000", "0"]
    assert at.button(key=K.W_DATA_TABLE_TRAIN).label == "Train amortized NPE on this table"

    # a ragged file is rejected with its line; the good table and its mapping stay
    upload(at, K.W_DATA_TABLE_FILE, "ragged.csv", b"theta1,x1\n1,2\n3\n", "text/csv")
    assert any("Line 3 of ragged.csv has 1 cell" in m for m in errors(at)), errors(at)
    assert any(f"the previous table, {TABLE.name}, is still in use" in as_shown(c.value) for c in at.caption)
    assert at.multiselect(key=K.W_DATA_THETA_COLS).value == ["theta1", "theta2"]

    # a mapping mistake: the message says what to fix
    at.multiselect(key=K.W_DATA_X_COLS).set_value(["x1", "theta1"])
    at.run()
    assert any("both as a parameter and as simulated data" in m for m in errors(at))

    # a prior that misses most of the table
    at.multiselect(key=K.W_DATA_X_COLS).set_value(["x1", "x2"])
    at.run()
    lows = [n for n in at.number_input if n.key and n.key.endswith("_uniform_high")]
    for n in lows:
        n.set_value(-0.5)
    at.run()
    assert any("does not cover" in m and "Widen the prior" in m for m in errors(at)), errors(at)


def test_table_with_nan_and_constant_columns_reports_them(store):
    rows = ["theta,x1,x2,const"] + [f"{i / 50},{i / 25 + 0.5},{'nan' if i % 10 == 0 else i},7" for i in range(50)]
    at = data_page()
    upload(at, K.W_DATA_TABLE_FILE, "t.csv", "\n".join(rows).encode(), "text/csv")
    at.multiselect(key=K.W_DATA_THETA_COLS).set_value(["theta"])
    at.multiselect(key=K.W_DATA_X_COLS).set_value(["x1", "x2", "const"])
    at.run()
    assert_ok(at)
    confirm_columns(at)
    notes = [as_shown(w.value) for w in at.warning]
    assert any("5 rows with empty, NaN or infinite cells are dropped" in n for n in notes), notes
    assert any("const" in n and "no information" in n for n in notes), notes
    assert [m.value for m in at.metric][:3] == ["50", "45", "5"]


@pytest.mark.slow
def test_train_on_table_starts_a_run(store):
    at = data_page()
    upload(at, K.W_DATA_TABLE_FILE, TABLE.name, TABLE.read_bytes(), "text/csv")
    confirm_columns(at)
    at.number_input(key=K.W_DATA_TABLE_EPOCHS).set_value(5)
    at.button(key=K.W_DATA_TABLE_TRAIN).click()
    at.run()
    assert_ok(at, "after starting the table run")
    runs = store.list_runs()
    assert len(runs) == 1
    spec = runs[0].spec
    assert spec.simulator["kind"] == "table" and spec.method == "npe" and spec.max_epochs == 5
    assert spec.simulator["theta_columns"] == ["theta1", "theta2"]
    from sbi_ui import resources as ui

    ui.jobs().cancel(runs[0].id)  # training on tables is covered in-process (table_run); free the cores
    info = ui.jobs().wait(runs[0].id, timeout=60)
    assert info.status in ("cancelled", "done"), (info.status, info.message)


# ---------------------------------------------------------------------------
# tab 3: many observations, prior and RunSpec JSON
# ---------------------------------------------------------------------------
@pytest.mark.slow
def test_many_observations_small_multiples(store):
    rid = table_run(store)
    at = data_page(rid)
    assert at.selectbox(key=K.W_DATA_OBS_RUN).value == rid
    upload(at, K.W_DATA_OBS_FILE, "observations.csv", (EXAMPLES / "observations.csv").read_bytes(), "text/csv")
    assert any("Amortized posterior for each observation" in t for t in chart_titles(at))
    assert any("6 observations" in c.value for c in at.caption)

    upload(at, K.W_DATA_OBS_FILE, "three.csv", b"1,2,3\n", "text/csv")
    assert any("three.csv" in m and "3 numbers but the model produces 2" in m for m in errors(at)), errors(at)
    assert any("Amortized posterior for each observation" in t for t in chart_titles(at)), "previous rows kept"

    many = "x1,x2\n" + "\n".join(f"{i / 20 - 0.5},{0.1 * (i % 3)}" for i in range(20))
    upload(at, K.W_DATA_OBS_FILE, "many.csv", many.encode(), "text/csv")
    assert any("20 observations; the first 12 are drawn" in c.value for c in at.caption)


def test_prior_import_and_export(store):
    at = data_page()
    assert any('"theta1"' in c.value for c in at.code), "the current prior as JSON"

    upload(at, K.W_DATA_PRIOR_FILE, "bad.json", b'[{"name": "theta1", "dist": "uniform", "low": 0}', "application/json")
    assert any("not valid JSON" in m and "line 1" in m for m in errors(at)), errors(at)
    assert at.session_state[K.S_MODEL_CFG].prior is None, "the prior in use is unchanged"

    upload(at, K.W_DATA_PRIOR_FILE, "wrong.json", b'[{"name": "a", "dist": "normal", "loc": 0, "scale": 1}]',
           "application/json")
    assert any("current model (Two moons) has theta1, theta2" in m for m in errors(at)), errors(at)

    good = [{"name": "theta1", "dist": "uniform", "low": -0.5, "high": 0.5},
            {"name": "theta2", "dist": "normal", "loc": 0, "scale": 0.3}]
    at.text_area(key=K.W_DATA_PRIOR_TEXT).input(json.dumps(good))
    at.run()
    at.button(key=K.W_DATA_PRIOR_APPLY).click()
    at.run()
    assert_ok(at)
    assert any("Imported the prior" in s.value for s in at.success)
    assert at.session_state[K.S_MODEL_CFG].prior[1]["dist"] == "normal"
    assert at.session_state[K.S_PRIOR_SPECS]["two_moons"][0]["high"] == 0.5

    at.switch_page("pages/model.py")
    at.run()
    assert_ok(at, "model page after the import")
    assert at.selectbox(key=K.w_prior_family("two_moons", 1)).value == "normal"


def test_runspec_import_validates(store, tmp_path):
    at = data_page()
    at.text_area(key=K.W_DATA_SPEC_TEXT).input('{"simulator": "two_moons", "method": "npe"}')
    at.run()
    at.button(key=K.W_DATA_SPEC_CHECK).click()
    at.run()
    assert any("num_rounds to 1" in m for m in errors(at)), errors(at)

    outside = tmp_path / "elsewhere.py"
    outside.write_text("def simulate(theta):\n    return theta\n")
    spec = {"simulator": {"kind": "upload", "path": str(outside)}, "method": "npe", "num_rounds": 1}
    upload(at, K.W_DATA_SPEC_FILE, "spec.json", json.dumps(spec).encode(), "application/json")
    assert any("names a file path (elsewhere.py)" in m for m in errors(at)), errors(at)
    spec["simulator"]["path"] = "/etc/passwd"
    upload(at, K.W_DATA_SPEC_FILE, "passwd.json", json.dumps(spec).encode(), "application/json")
    assert any("names a file path (passwd)" in m for m in errors(at)), errors(at)
    assert not any("root:" in m for m in errors(at)), "the file a spec names is never opened"

    good = RunSpec(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=200, title="imported")
    upload(at, K.W_DATA_SPEC_FILE, "good.json", good.to_json().encode(), "application/json")
    assert not errors(at), errors(at)
    assert any("Ready: imported" in s.value for s in at.success)
    assert at.button(key=K.W_DATA_SPEC_START).label == "Start this run"

    upload(at, K.W_DATA_SPEC_FILE, "broken.json", b"{", "application/json")
    assert any("broken.json" in m and "not valid JSON" in m for m in errors(at))
    assert any("Ready: imported" in s.value for s in at.success), "the last valid spec stays"


@pytest.fixture
def downloads(monkeypatch):
    """What download buttons serve, by file name (captured as Streamlit stores it)."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    served: dict = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def capture(self, path_or_data, mimetype, kind, filename=None):
        served[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", capture)
    return served


@pytest.mark.slow
def test_runspec_export_of_the_current_run(store, downloads):
    rid = table_run(store)
    at = data_page(rid)
    buttons = [b for b in at.get("download_button") if getattr(b, "key", None) == K.W_DATA_SPEC_DOWNLOAD]
    assert buttons, "a download button for the current run's RunSpec"
    served = downloads[f"runspec_{rid}.json"]
    text = served.decode() if isinstance(served, bytes) else served
    ref = json.loads(text)["simulator"]
    assert "path" not in ref and str(store.root) not in text, "the download names no server path"
    assert ref["source"].encode() == TABLE.read_bytes() and ref["file_name"] == TABLE.name


PORTABLE_SIM = b'''"""Doubles its parameter."""
import numpy as np

PRIOR = [{"name": "a", "dist": "uniform", "low": 0, "high": 1}]


def simulate(theta):
    return np.hstack([theta, 2 * theta])
'''


def test_runspec_import_of_a_carried_file_stores_it_here(store, tmp_path):
    import hashlib

    from sbi_core.uploads.files import is_upload_path

    spec = RunSpec(simulator={"kind": "upload", "name": "Doubler", "file_name": "doubler.py",
                              "sha256": hashlib.sha256(PORTABLE_SIM).hexdigest(), "source": PORTABLE_SIM.decode()},
                   prior=[{"name": "a", "dist": "uniform", "low": 0, "high": 1}], observation=[0.5, 1.0],
                   method="npe", num_rounds=1, simulations_per_round=200, title="carried")
    at = data_page()
    tampered = json.loads(spec.to_json())
    tampered["simulator"]["source"] += "\n# changed\n"
    upload(at, K.W_DATA_SPEC_FILE, "tampered.json", json.dumps(tampered).encode(), "application/json")
    assert any("does not match its sha256" in m for m in errors(at)), errors(at)

    upload(at, K.W_DATA_SPEC_FILE, "carried.json", spec.to_json().encode(), "application/json")
    assert not errors(at), errors(at)
    assert any("Ready: carried" in s.value for s in at.success)
    imported = at.session_state[K.S_DATA_SPEC]["simulator"]
    assert "source" not in imported and is_upload_path(store.root, imported["path"])
    assert Path(imported["path"]).read_bytes() == PORTABLE_SIM


NAN_SIM = b'''"""Returns NaN for a fifth of the parameters."""
import numpy as np

PRIOR = [{"name": "a", "dist": "uniform", "low": 0, "high": 1}]
OBSERVATION = [0.5, 0.5]


def simulate(theta):
    x = np.hstack([theta, theta + 0.1 * np.random.normal(size=theta.shape)])
    x[theta[:, 0] > 0.8] = np.nan
    return x
'''


@pytest.mark.slow
def test_nan_results_are_counted(store):
    at = data_page()
    upload(at, K.W_DATA_SIM_FILE, "sometimes_nan.py", NAN_SIM)
    assert not errors(at), errors(at)
    assert any("returned NaN or infinity" in w.value and "left out of training" in w.value for w in at.warning)

    # a run with it: the Train page counts the simulations that were left out
    path = at.session_state[K.S_DATA_SIM]["path"]
    rid = store.create_run(RunSpec(
        simulator={"kind": "upload", "path": path, "name": "Sometimes NaN"}, method="npe", num_rounds=1,
        simulations_per_round=300, max_epochs=3, hidden_features=16, num_transforms=2, num_posterior_samples=200,
        num_threads=1, prior=[{"name": "a", "dist": "uniform", "low": 0, "high": 1}], observation=[0.5, 0.5],
    ))
    assert run_worker(store, rid) == "done"
    at.query_params[K.QP_RUN] = rid
    at.switch_page("pages/train.py")
    at.run()
    assert_ok(at, "train page")
    notes = [c.value for c in at.caption if "NaN or infinity" in c.value]
    assert notes and "left out of training" in notes[0], [c.value for c in at.caption]


# ---------------------------------------------------------------------------
# upload limits, an all-NaN simulator, the table cache
# ---------------------------------------------------------------------------
def test_every_uploader_states_the_limit_the_app_and_server_enforce(store):
    """The table uploader's own limit was 60 MB (hover text) while the page said 50 MB; now every
    uploader's limit is the app's, within the server's, and a caption beside it says it."""
    import tomllib

    from sbi_core.simulators.uploaded import MAX_UPLOAD_BYTES as MAX_CODE_BYTES
    from sbi_core.tables import MAX_OBSERVATION_BYTES, MAX_TABLE_BYTES
    from sbi_core.uploads.files import MAX_UPLOAD_BYTES

    server_mb = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
    at = data_page()
    mb = 1024 * 1024
    for key, limit in ((K.W_DATA_SIM_FILE, MAX_CODE_BYTES), (K.W_DATA_TABLE_FILE, MAX_TABLE_BYTES)):
        widget_mb = at.file_uploader(key=key).proto.max_upload_size_mb
        assert widget_mb * mb == limit and widget_mb <= server_mb, (key, widget_mb)
    assert MAX_TABLE_BYTES == MAX_UPLOAD_BYTES == server_mb * mb
    captions = [c.value for c in at.caption]
    assert any("At most 50 MB per file" in c and "red !" in c for c in captions), captions
    assert any("At most 1 MB per file" in c for c in captions), captions
    assert MAX_OBSERVATION_BYTES % mb == 0


ALL_NAN_SIM = b'''PRIOR = [{"name": "a", "dist": "uniform", "low": 0, "high": 1}]
import numpy as np
def simulate(theta):
    return np.log(-np.ones((len(theta), 2)))
'''


def test_an_all_nan_simulator_is_refused_with_what_to_fix(store):
    at = data_page()
    upload(at, K.W_DATA_SIM_FILE, "all_nan.py", ALL_NAN_SIM)
    shown = " ".join(errors(at)).replace("\\", "")  # the page escapes markdown punctuation
    assert "all_nan.py" in shown and "NaN or infinity for all 20 test simulations" in shown, shown
    assert K.S_DATA_SIM not in at.session_state or not at.session_state[K.S_DATA_SIM]


def test_the_table_cache_is_bounded_in_bytes():
    """Tables are kept while their DataFrames fit the byte budget, least recently used dropped first;
    one larger than the budget is returned but not kept."""
    import numpy as np
    import pandas as pd

    from sbi_ui.data.common import TABLE_CACHE_BYTES, TableCache, TABLES

    assert TABLES.max_bytes == TABLE_CACHE_BYTES
    frame = lambda n: pd.DataFrame({"a": np.zeros(n)})  # noqa: E731  # n * 8 bytes (+ index)
    cache = TableCache(max_bytes=1_000_000)
    loads = []

    def get(key, n):
        return cache.get(key, lambda: loads.append(key) or frame(n))

    get("a", 50_000), get("b", 50_000)            # 400 KB each
    get("a", 50_000)                              # a hit: "a" is now the most recent
    get("c", 50_000)                              # 1.2 MB in all: "b" goes
    assert loads == ["a", "b", "c"] and len(cache) == 2 and cache.nbytes <= 1_000_000
    get("a", 50_000), get("b", 50_000)
    assert loads == ["a", "b", "c", "b"]
    big = get("big", 200_000)                     # 1.6 MB: returned, not kept
    assert len(big) == 200_000 and "big" not in cache._entries and cache.nbytes <= 1_000_000

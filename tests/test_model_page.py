"""App tests (AppTest) of the Model and Explore pages: the prior predictive warning, a clipped
slider said in words, typed observations, the lognormal editor, the gallery text and the
Explore sliders' ranges."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from streamlit.testing.v1 import AppTest

from sbi_ui import keys as K
from sbi_ui.user_text import plain

from sbi_core import get_simulator
from sbi_core.jobs.worker import run_worker
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(180)

APP = str(ROOT / "app.py")
NARROW = [{"name": "v0", "dist": "uniform", "low": 5.0, "high": 15.0},
          {"name": "angle", "dist": "uniform", "low": 10.0, "high": 80.0}]


@pytest.fixture
def fresh_store(tmp_path, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    return RunStore(root)


def model_page(model: str = "projectile") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("pages/model.py")
    at.run()
    at.button(key=K.w_model_pick(model)).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def narrow_launch_speed(at: AppTest) -> None:
    at.number_input(key=K.w_prior_number("projectile", 0, "uniform", "high")).set_value(15.0)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[K.S_MODEL_CFG].prior[0]["high"] == 15.0


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def test_narrowed_prior_warns_what_to_widen(fresh_store):
    at = model_page()
    assert not any("outside what this prior" in w for w in texts(at.warning))
    assert any("among what this prior's 300 simulations produce" in c for c in texts(at.caption))
    narrow_launch_speed(at)
    warnings = [w for w in texts(at.warning) if "outside what this prior's simulations produce" in w]
    assert len(warnings) == 1, texts(at.warning)
    assert "d1 [m] = 29.57 is above all 300 simulations" in warnings[0]
    assert "widen the prior of v0 [m/s] upwards (it ends at 15)" in warnings[0]
    assert "or change the observation" in warnings[0]


def test_clipped_slider_is_said(fresh_store):
    at = model_page()
    narrow_launch_speed(at)
    at.radio(key=K.W_OBS_SOURCE).set_value("simulate")
    at.run()
    assert not at.exception
    notes = [i for i in texts(at.info) if "is above its upper end 15" in i]
    assert notes and "v0 [m/s] = 18" in notes[0] and "starts at 15" in notes[0], texts(at.info)
    slider = [s for s in at.slider if s.label == "v0 [m/s]"][0]
    assert slider.value == 15.0 and slider.max == 15.0
    assert at.session_state[K.S_MODEL_CFG].true_theta[0] == 15.0
    # angle's default (35) lies inside the prior: nothing is said about it
    assert not any("angle" in i and "upper end" in i for i in texts(at.info))


def test_typed_observation_names_the_bad_entry_and_decimal_commas(fresh_store):
    at = model_page()
    at.radio(key=K.W_OBS_SOURCE).set_value("typed")
    at.run()
    at.text_input(key=K.W_OBS_TYPED).set_value("0.1, zwei, 0.3, 0.4")
    at.run()
    assert any("Entry 2 (d2 [m]) is 'zwei', which is not a number" in e for e in texts(at.error)), texts(at.error)
    at.text_input(key=K.W_OBS_TYPED).set_value("0,5; 0,3; 1,25; 2")
    at.run()
    assert any("Use a point as the decimal separator: 0.5; 0.3; 1.25; 2" in e for e in texts(at.error))
    at.text_input(key=K.W_OBS_TYPED).set_value("20; 19.5 19, 4")
    at.run()
    assert not at.error
    assert at.session_state[K.S_MODEL_CFG].observation == [20.0, 19.5, 19.0, 4.0]


def test_lognormal_prior_is_edited_as_median(fresh_store):
    at = model_page("sir")
    median = at.number_input(key=K.w_prior_number("sir", 0, "lognormal", "median"))
    assert median.value == pytest.approx(0.4)
    caps = [c for c in texts(at.caption) if c.startswith("Median 0.4;")]
    assert caps and "90 % of the prior between 0.176 and 0.91" in caps[0], texts(at.caption)
    assert at.number_input(key=K.w_prior_number("sir", 1, "lognormal", "median")).value == 0.125  # not 0.12500000000000003
    assert at.session_state[K.S_MODEL_CFG].prior is None  # untouched: still the default
    median.set_value(0.5)
    at.run()
    assert not at.exception
    spec = at.session_state[K.S_MODEL_CFG].prior
    assert spec[0]["loc"] == pytest.approx(math.log(0.5)) and spec[0]["scale"] == 0.5
    at.number_input(key=K.w_prior_number("sir", 0, "lognormal", "median")).set_value(0.0)
    at.run()
    assert any("median of a lognormal prior must be greater than 0" in e for e in texts(at.error))
    assert at.session_state[K.S_MODEL_CFG].prior[0]["loc"] == pytest.approx(math.log(0.5))


def test_gallery_cards_describe_the_benchmarks_and_sir_gets_panels(fresh_store):
    at = model_page("sir")
    captions = texts(at.caption)
    assert not any("standard test problem" in c for c in captions)
    for name in ("two_moons", "gaussian_linear", "slcp", "gaussian_mixture"):
        first = get_simulator(name).description.split(". ")[0]
        assert any(c.startswith(first[:60]) for c in captions), name
    spec = [json.loads(c.proto.spec) for c in at.get("plotly_chart")
            if "The observation among simulations" in c.proto.spec][0]
    axes = [k for k in spec["layout"] if k.startswith("xaxis")]
    assert len(axes) == 6  # one panel per SIR component
    titles = {spec["layout"][k]["title"]["text"] for k in axes}
    assert {"peak_day [day]", "final", "growth [1/day]"} <= titles


@pytest.fixture
def outside_run(fresh_store):
    """A tiny amortized projectile run (v0 at most 15) whose observation was simulated at v0 = 15,
    angle 45: three distances beyond every training simulation, the height inside."""
    sim = get_simulator("projectile")
    obs = sim.simulate(np.array([15.0, 45.0], dtype=np.float32), seed=0).tolist()
    spec = RunSpec(simulator="projectile", prior=NARROW, observation=obs, true_theta=[15.0, 45.0],
                   method="npe", num_rounds=1, simulations_per_round=300, max_epochs=3, hidden_features=16,
                   num_transforms=2, num_posterior_samples=300, num_threads=1, title="outside")
    rid = fresh_store.create_run(spec)
    assert run_worker(fresh_store, rid) == "done"
    x = np.load(fresh_store.round_dir(rid, 0) / "x.npy")
    beyond = [c for c in range(4) if obs[c] > x[:, c].max()]
    assert len(beyond) >= 1 and obs[3] < x[:, 3].max()
    return rid, obs, beyond


def test_explore_sliders_start_at_the_observation_inside_their_range(outside_run):
    rid, obs, beyond = outside_run
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params[K.QP_RUN] = rid
    at.run()
    at.switch_page("pages/explore.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    sliders = [s for s in at.slider if s.key and s.key.startswith(f"explore_x_{rid}_")]
    assert len(sliders) == 4
    for c, s in enumerate(sliders):
        assert s.value == pytest.approx(obs[c], rel=1e-5)
        room = 0.05 * (s.max - s.min)  # never pinned at (or squeezed against) an end
        assert s.min + room < s.value < s.max - room, (s.label, s.min, s.value, s.max)
    labels = get_simulator("projectile").obs_labels()
    warning = [w for w in texts(at.warning) if "beyond every training simulation" in w]
    # the labels are the user's text where a model is uploaded, so the page escapes them (sbi_ui.user_text)
    assert warning and all(plain(labels[c]) in warning[0] for c in beyond) and plain(labels[3]) not in warning[0]


def test_table_tab_typed_observation_uses_the_one_parser(fresh_store):
    """The upload page's table tab said "The observation has a header but no rows of numbers"."""
    table = ROOT / "assets" / "examples" / "two_moons_simulations.csv"
    at = AppTest.from_file(APP, default_timeout=90)
    at.switch_page("pages/data.py")
    at.run()
    at.file_uploader(key=K.W_DATA_TABLE_FILE).set_value((table.name, table.read_bytes(), "text/csv"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.button(key=K.W_DATA_TABLE_COLS_OK).click()  # the guessed columns wait for a "yes"
    at.run()
    typed = at.text_input(key=K.w_data_table_obs_typed(2))
    typed.set_value("0.1, zwei")
    at.run()
    errors = texts(at.error)
    # the message quotes what was typed, so the page shows it escaped (sbi_ui.user_text.plain)
    assert any(plain("Entry 2 (x2) is 'zwei', which is not a number") in e for e in errors), errors
    assert not any("header" in e for e in errors)
    at.text_input(key=K.w_data_table_obs_typed(2)).set_value("0,1; 0,2")
    at.run()
    assert any(plain("Use a point as the decimal separator: 0.1; 0.2") in e for e in texts(at.error))

    at.text_input(key=K.w_data_table_obs_typed(2)).set_value("0.1; 0.2")
    at.run()
    assert not at.error and at.session_state[K.S_DATA_TABLE_OBS] == [0.1, 0.2]

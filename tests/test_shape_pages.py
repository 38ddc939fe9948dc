"""App tests (AppTest) of pages for models whose simulation is a series, an image or a set of trials:
the Model page draws one chart of the data's shape (not one per number), and Explore builds the
observation from a few moves (start, scale, shift, noise, trials used) instead of a slider per number.

The models are small test-only simulators registered for one test at a time (``monkeypatch``), so
nothing leaks into other tests' registries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from sbi_core import Prior
from sbi_core.jobs.worker import run_worker
from sbi_core.run.spec import RunSpec
from sbi_core.simulators import registry
from sbi_core.simulators.base import Simulator
from sbi_core.stats.shapes import DataShape
from sbi_core.store.runs import RunStore

from sbi_ui import keys as K
from sbi_ui import series_explore as se
from sbi_ui.prior_predictive_view import W_MODEL_SERIES_VIEW

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")

pytestmark = pytest.mark.timeout(240)

SERIES, TRIALS, IMAGE = "test_series_pages", "test_trials_pages", "test_image_pages"
T, M, H, W = 50, 12, 6, 8
PRIOR = [{"name": "a", "dist": "uniform", "low": -1.0, "high": 1.0},
         {"name": "b", "dist": "uniform", "low": -2.0, "high": 2.0}]


def _line(theta, g):
    t = torch.arange(T, dtype=torch.float32) / T
    return theta[:, :1] + theta[:, 1:2] * t + 0.3 * torch.randn(theta.shape[0], T, generator=g)


def _trials(theta, g):
    return theta[:, :1] + torch.exp(0.3 * theta[:, 1:2]) * torch.randn(theta.shape[0], M, generator=g)


def _image(theta, g):
    ramp = torch.linspace(0, 1, H * W)
    return theta[:, :1] + theta[:, 1:2] * ramp + 0.2 * torch.randn(theta.shape[0], H * W, generator=g)


def _model(name: str, shape: DataShape, fn, names: list[str]) -> Simulator:
    return Simulator(name=name, title=f"Test {shape.kind}", description=f"A small {shape.kind} for tests.",
                     equations="x = a + b t + \\epsilon", param_names=["a", "b"], param_units=["", ""],
                     obs_names=names, obs_units=[""] * len(names), prior=Prior.from_spec(PRIOR),
                     true_theta=[0.3, 1.0], simulate_fn=fn, data_shape=shape)


FACTORIES = {
    SERIES: lambda: _model(SERIES, DataShape.series(T), _line, [f"day {t + 1}" for t in range(T)]),
    TRIALS: lambda: _model(TRIALS, DataShape.trials(M, 1), _trials, [f"trial {m + 1}" for m in range(M)]),
    IMAGE: lambda: _model(IMAGE, DataShape.image(H, W), _image, [f"px[{i}][{j}]" for i in range(H) for j in range(W)]),
}


@pytest.fixture
def models(monkeypatch, tmp_path):
    """The three test models registered for this test only, and an empty run store."""
    for name, factory in FACTORIES.items():
        monkeypatch.setitem(registry._FACTORIES, name, factory)
    monkeypatch.setenv("SBI_STORE_DIR", str(tmp_path / "store"))
    return RunStore(tmp_path / "store")


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not [e.value for e in at.error if "Something went wrong" in str(e.value)]


def _chart(at: AppTest, title: str) -> dict:
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    found = [s for s in specs if title in json.dumps(s.get("layout", {}).get("title", {}))]
    assert found, [s.get("layout", {}).get("title", {}).get("text") for s in specs]
    return found[0]


def _texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "error")
                     for e in at.get(kind))


# ---- the moves as functions ----------------------------------------------------------------
def test_moves_give_the_flat_observation():
    shape = DataShape.trials(4, 1)
    x = shape.pad_trials([[1.0], [2.0], [3.0]])
    np.testing.assert_array_equal(se.present_trials(x, shape), [[1.0], [2.0], [3.0]])
    two = se.use_trials(x, shape, 2)
    assert two.shape == (4,) and list(two[:2]) == [1.0, 2.0] and np.isnan(two[2:]).all()
    moved = se.transform(x, scale=2.0, shift=1.0)
    assert list(moved[:3]) == [3.0, 5.0, 7.0] and np.isnan(moved[3])  # a missing trial stays missing
    a, b = se.transform(np.zeros(5), noise=0.5, seed=3, spread=2.0), se.transform(np.zeros(5), noise=0.5, seed=3,
                                                                                  spread=2.0)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, se.transform(np.zeros(5), noise=0.5, seed=4, spread=2.0))
    assert se.value_spread([np.nan, 1.0, 1.0]) == 1.0 and se.value_spread([0.0, 2.0]) == pytest.approx(1.0)
    assert se.trial_counts_to_try(12) == [1, 2, 5, 10, 12] and se.trial_counts_to_try(1) == [1]


# ---- the controls, driven on their own ------------------------------------------------------
def _controls_script(name: str) -> None:
    """A page with only Explore's observation controls for the test model ``name`` (AppTest runs
    this function's source as the script; its result goes to session state)."""
    import numpy as np
    import streamlit as st
    import torch

    from sbi_core import get_simulator
    from sbi_ui.run_context import RunContext
    from sbi_ui.series_explore import shaped_observation

    sim = get_simulator(name)
    theta = sim.prior.sample((40,), generator=torch.Generator().manual_seed(0))
    train_x = sim.simulate(theta, seed=1).numpy()
    reference = sim.simulate(torch.tensor([-0.5, 1.5]), seed=7).numpy().astype(float)
    ctx = RunContext(spec=None, simulator=sim, prior=sim.prior, labels=sim.param_labels(),
                     obs_labels=sim.obs_labels(), bounds=sim.prior.bounds.numpy().astype(float),
                     x_obs=reference, true_theta=np.array([-0.5, 1.5]), model_title=sim.title)
    moves = shaped_observation("run1", ctx, sim.data_shape, train_x, reference)
    st.session_state["out"] = [None if np.isnan(v) else float(v) for v in moves.x]
    st.session_state["truth"] = None if moves.truth is None else [float(v) for v in moves.truth]
    st.session_state["ref"] = reference.tolist()


def _controls(name: str) -> AppTest:
    at = AppTest.from_function(_controls_script, args=(name,), default_timeout=60)
    at.run()
    _ok(at)
    return at


def test_series_controls_start_simulate_scale_shift_noise_and_reset(models):
    at = _controls(SERIES)
    ref = np.asarray(at.session_state["ref"])
    assert len(at.session_state["out"]) == T  # the flat observation
    np.testing.assert_allclose(at.session_state["out"], ref, rtol=1e-6)
    assert not [s for s in at.slider if s.key and s.key.startswith("explore_x_")]  # no slider per number
    assert at.session_state["truth"] == [-0.5, 1.5]

    at.slider(key=se.w_explore_scale("run1")).set_value(2.0)
    at.run()
    np.testing.assert_allclose(at.session_state["out"], 2 * ref, rtol=1e-6)
    assert at.session_state["truth"] is None  # a scaled observation has no true parameter
    shift = at.slider(key=se.w_explore_shift("run1"))
    shift.set_value(round(shift.max / 2, 6))
    at.run()
    np.testing.assert_allclose(at.session_state["out"], 2 * ref + round(shift.max / 2, 6), rtol=1e-5)

    at.slider(key=se.w_explore_noise("run1")).set_value(0.5)
    at.run()
    noisy = np.asarray(at.session_state["out"])
    at.run()
    np.testing.assert_array_equal(at.session_state["out"], noisy)  # seeded: the same again
    at.number_input(key=se.w_explore_noise_seed("run1")).set_value(3)
    at.run()
    assert not np.allclose(at.session_state["out"], noisy)

    at.button(key=se.W_EXPLORE_SHAPED_RESET).click()
    at.run()
    _ok(at)
    np.testing.assert_allclose(at.session_state["out"], ref, rtol=1e-6)

    sim = FACTORIES[SERIES]()
    at.radio(key=se.w_explore_base("run1")).set_value("example")
    at.run()
    np.testing.assert_allclose(at.session_state["out"], sim.default_observation.numpy(), rtol=1e-6)
    at.radio(key=se.w_explore_base("run1")).set_value("simulate")
    at.run()
    at.slider(key=se.w_explore_theta("run1", 1)).set_value(-1.0)
    at.number_input(key=se.w_explore_sim_seed("run1")).set_value(5)
    at.run()
    _ok(at)
    want = sim.simulate(torch.tensor([-0.5, -1.0]), seed=5).numpy()  # a starts at the run's true value
    np.testing.assert_allclose(at.session_state["out"], want, rtol=1e-5)
    assert at.session_state["truth"] == pytest.approx([-0.5, -1.0])


def test_trials_controls_use_the_first_trials(models):
    at = _controls(TRIALS)
    assert len(at.session_state["out"]) == M and None not in at.session_state["out"]
    at.slider(key=se.w_explore_trials("run1", M)).set_value(3)
    at.run()
    _ok(at)
    out = at.session_state["out"]
    assert out[:3] == pytest.approx(at.session_state["ref"][:3]) and out[3:] == [None] * (M - 3)
    assert at.session_state["truth"] == [-0.5, 1.5]  # fewer trials, still simulated at the truth
    assert not at.get("number_input") or all("Noise" not in n.label for n in at.number_input)


def test_image_controls_add_noise(models):
    at = _controls(IMAGE)
    assert len(at.session_state["out"]) == H * W
    assert not [s for s in at.slider if s.key == se.w_explore_scale("run1")]  # an image: noise only
    at.slider(key=se.w_explore_noise("run1")).set_value(1.0)
    at.run()
    _ok(at)
    diff = np.asarray(at.session_state["out"]) - np.asarray(at.session_state["ref"])
    assert 0.2 < diff.std() < 5  # noise of about the training simulations' spread


# ---- the Model page ------------------------------------------------------------------------------
def _model_page(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("pages/model.py")
    at.run()
    at.button(key=K.w_model_pick(name)).click()
    at.run()
    _ok(at)
    return at


def test_model_page_draws_one_fan_chart_for_a_series(models):
    at = _model_page(SERIES)
    spec = _chart(at, "The observation among simulations at prior draws")
    names = [t.get("name") for t in spec["data"]]
    assert len(spec["data"]) == 6 and "observation" in names and any("median" in (n or "") for n in names)
    assert spec["layout"]["xaxis"]["title"]["text"] == "day"
    text = _texts(at)
    assert "Each simulation is a series of 50 time points." in text
    assert "**Observation:** a series of 50 time points (50 numbers)" in text
    thumb = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if f"thumb_{SERIES}" in c.proto.id]
    assert len(thumb) == 1  # its card in the gallery: one fan too
    thumb = thumb[0]
    assert any(t.get("fill") == "tonexty" for t in thumb["data"])
    at.radio(key=W_MODEL_SERIES_VIEW).set_value("lines")
    at.run()
    _ok(at)
    spec = _chart(at, "The observation among simulations at prior draws")
    assert spec["data"][0]["name"].endswith("simulations") and len(spec["data"]) == 2


def test_model_page_draws_the_trials_and_the_image(models):
    at = _model_page(TRIALS)
    spec = _chart(at, "The observation among simulations at prior draws")
    assert {t["type"] for t in spec["data"]} == {"histogram"}
    assert "up to 12 repeated trials of 1 number each" in _texts(at)
    at.button(key=K.w_model_pick(IMAGE)).click()
    at.run()
    _ok(at)
    spec = _chart(at, "The observation among simulations at prior draws")
    assert [t["type"] for t in spec["data"]] == ["heatmap"] * 6  # the observation and 5 simulations
    assert "an image of 6 x 8 pixels" in _texts(at)


# ---- Explore with a trained series run --------------------------------------------------------
@pytest.fixture
def series_run(models):
    spec = RunSpec(simulator=SERIES, method="npe", num_rounds=1, simulations_per_round=300, max_epochs=3,
                   hidden_features=16, num_transforms=2, num_posterior_samples=300, num_threads=1,
                   embedding="none", title="series")
    rid = models.create_run(spec)
    assert run_worker(models, rid) == "done"
    return rid


def test_explore_a_series_run_has_moves_not_a_slider_per_number(series_run):
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params[K.QP_RUN] = series_run
    at.run()
    at.switch_page("pages/explore.py")
    at.run()
    _ok(at)
    assert not [s for s in at.slider if s.key and s.key.startswith(f"explore_x_{series_run}_")]
    assert at.slider(key=se.w_explore_scale(series_run)).value == 1.0
    obs = _chart(at, "The observation the posterior answers")
    assert [t["name"] for t in obs["data"]] == ["observation"]  # the run's own: no reference behind it
    _chart(at, "Posterior at this observation")
    ppc = _chart(at, "Posterior predictive check")
    assert any("posterior predictive, median" == t.get("name") for t in ppc["data"])
    at.slider(key=se.w_explore_scale(series_run)).set_value(1.5)
    at.run()
    _ok(at)
    obs = _chart(at, "The observation the posterior answers")
    assert [t["name"] for t in obs["data"]] == ["the run's observation", "observation"]
    assert "changed by the sliders" in _texts(at)


# ---- the Data page: an uploaded series --------------------------------------------------------
SERIES_UPLOAD = b'''"""A noisy ramp observed at 30 times."""
import numpy as np

PRIOR = [{"name": "a", "dist": "uniform", "low": -1, "high": 1}]
OBSERVATION = [0.2 + t / 30 for t in range(30)]
DATA_SHAPE = "series"


def simulate(theta):
    t = np.arange(30) / 30
    noise = np.random.default_rng(0).standard_normal((theta.shape[0], 30))
    return theta[:, :1] + t[None, :] + 0.1 * noise
'''


def test_data_page_draws_an_uploaded_series_as_one_fan_chart(models):
    at = AppTest.from_file(APP, default_timeout=90)
    at.switch_page("pages/data.py")
    at.run()
    at.file_uploader(key=K.W_DATA_SIM_FILE).set_value(("ramp.py", SERIES_UPLOAD, "text/plain"))
    at.run()
    _ok(at)
    spec = _chart(at, "Your simulator at prior draws")
    assert len(spec["data"]) == 6 and any(t.get("fill") == "tonexty" for t in spec["data"])
    assert "Each simulation is a series of 30 time points." in _texts(at)


def test_an_undeclared_flat_series_is_asked_about_and_the_answer_reaches_the_run(models):
    """A file without DATA_SHAPE returning 30 numbers: the page asks how to read them; "a series" draws
    the fan chart and puts the reading in the model's simulator reference (the run loads it so)."""
    at = AppTest.from_file(APP, default_timeout=90)
    at.switch_page("pages/data.py")
    at.run()
    undeclared = SERIES_UPLOAD.replace(b'DATA_SHAPE = "series"\n', b"")
    at.file_uploader(key=K.W_DATA_SIM_FILE).set_value(("ramp_flat.py", undeclared, "text/plain"))
    at.run()
    _ok(at)
    radio = [r for r in at.radio if r.label == "Each simulation is"]
    assert radio and radio[0].options == ["30 separate numbers", "a series of 30 time points (a network learns a "
                                                                  "summary of it)"]
    radio[0].set_value("series")
    at.run()
    _ok(at)
    spec = _chart(at, "Your simulator at prior draws")
    assert len(spec["data"]) == 6  # one fan chart: median, 2 x 50 %, 2 x 90 %, the observation
    at.button(key=K.W_DATA_SIM_USE).click()
    at.run()
    choice = at.session_state[K.S_MODEL_CFG]
    assert choice.simulator_ref["data_shape"] == {"kind": "series", "shape": [1, 30]}


# ---- every page, with a run on a series and on trials ------------------------------------------
@pytest.mark.parametrize("model", [SERIES, TRIALS])
def test_every_page_renders_with_a_series_or_trials_run_and_a_learned_summary(models, model):
    spec = RunSpec(simulator=model, method="npe", num_rounds=1, simulations_per_round=200, max_epochs=2,
                   hidden_features=16, num_transforms=2, num_posterior_samples=200, num_threads=1,
                   embedding="auto", title=f"every page: {model}")
    rid = models.create_run(spec)
    assert run_worker(models, rid) == "done", models.get_run(rid).message
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params[K.QP_RUN] = rid
    at.run()
    _ok(at)
    pages = sorted(p.name for p in (ROOT / "pages").glob("*.py") if p.name != "__init__.py")
    assert len(pages) >= 10
    for name in pages:
        at.switch_page(f"pages/{name}")
        at.run()
        assert not at.exception, (name, [e.value for e in at.exception])
        assert not [e.value for e in at.error if "Something went wrong" in str(e.value)], name
    # the live view names what the network read of the data
    at.switch_page("pages/train.py")
    at.run()
    summary = "learned summary (1-D CNN)" if model == SERIES else "learned summary (DeepSets)"
    assert summary in _texts(at), _texts(at)[:2000]

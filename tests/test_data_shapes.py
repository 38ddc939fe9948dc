"""Data shapes (issue 21): how a simulation's K numbers fold, what a person may declare, and the
clear messages for data that does not fit; uploads that return series, images and trials."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from sbi_core.errors import SBIError
from sbi_core.export.script import spec_to_script
from sbi_core.run.spec import RunSpec, RunSpecError
from sbi_core.stats.shapes import (
    MAX_DATA_NUMBERS,
    DataShape,
    DataShapeError,
    embedding_for,
    guess_shape,
    shape_from_columns,
)


# ---- the shape itself ------------------------------------------------------------------------
def test_single_channel_forms_are_canonical_and_sizes_multiply():
    assert DataShape.of("series", (100,)) == DataShape.series(100) == DataShape("series", (1, 100))
    assert DataShape.of("image", (28, 28)).dims == (1, 28, 28)
    assert DataShape.of("image", (3, 8, 8)).size == 192
    assert DataShape.trials(20, 2).size == 40
    assert DataShape.series(100).array_shape == (100,)
    assert DataShape.series(50, channels=3).array_shape == (3, 50)


@pytest.mark.parametrize("kind, shape, words", [
    ("vector", (3,), "a vector of 3 numbers"),
    ("series", (100,), "a series of 100 time points"),
    ("series", (2, 50), "2 series (channels) of 50 time points"),
    ("image", (28, 28), "an image of 28 x 28 pixels"),
    ("trials", (20, 1), "up to 20 repeated trials of 1 number each"),
])
def test_described_in_words(kind, shape, words):
    assert DataShape.of(kind, shape).describe() == words


@pytest.mark.parametrize("kind, shape, fragment", [
    ("movie", (3,), "one of vector, series, image, trials"),
    ("trials", (20,), "(M, D)"),
    ("image", (0, 4), "at least 1"),
    ("series", (MAX_DATA_NUMBERS + 1,), f"at most {MAX_DATA_NUMBERS:,}"),
    ("vector", ("a",), "whole numbers"),
])
def test_impossible_shapes_say_what_to_fix(kind, shape, fragment):
    with pytest.raises(DataShapeError, match=None) as err:
        DataShape.of(kind, shape)
    assert fragment in str(err.value)
    assert isinstance(err.value, SBIError)  # pages show SBIError messages as they are


def test_from_spec_round_trips_and_checks_the_size():
    s = DataShape.trials(5, 2)
    assert DataShape.from_spec(s.to_dict()) == s
    assert DataShape.from_spec("series", size=40) == DataShape.series(40)
    assert DataShape.from_spec(None, size=3) == DataShape.vector(3)
    with pytest.raises(DataShapeError, match="holds 10 numbers, but one simulation has 12"):
        DataShape.from_spec(s.to_dict(), size=12)
    with pytest.raises(DataShapeError, match="does not say the shape"):
        DataShape.from_spec("image", size=64)
    with pytest.raises(DataShapeError, match="keys"):
        DataShape.from_spec({"kind": "series"})


def test_fold_is_c_order_channel_by_channel():
    s = DataShape.series(3, channels=2)
    x = np.arange(12.0).reshape(2, 6)
    folded = s.fold(x)
    assert folded.shape == (2, 2, 3)
    np.testing.assert_array_equal(folded[0, 1], [3.0, 4.0, 5.0])  # the second channel of the first simulation
    with pytest.raises(DataShapeError, match="6 numbers each"):
        s.fold(np.zeros((2, 5)))


# ---- observations --------------------------------------------------------------------------
def test_series_observation_in_its_shape_or_flat_and_a_wrong_length_is_named():
    s = DataShape.series(100)
    assert s.observation(np.ones(100)).shape == (100,)
    two = DataShape.series(4, channels=2)
    np.testing.assert_array_equal(two.observation(np.arange(8.0).reshape(2, 4)), np.arange(8.0))
    with pytest.raises(DataShapeError, match=r"a series of 100 time points \(shape \(100,\)\); got shape \(80,\)"):
        s.observation(np.zeros(80))
    with pytest.raises(DataShapeError, match="an image of 8 x 8 pixels"):
        DataShape.image(8, 8).observation(np.zeros((8, 9)))


def test_fewer_trials_are_padded_and_more_than_simulated_are_refused():
    s = DataShape.trials(5, 2)
    flat = s.observation([[1, 2], [3, 4]])
    assert flat.shape == (10,)
    np.testing.assert_array_equal(flat[:4], [1, 2, 3, 4])
    assert np.isnan(flat[4:]).all()
    assert s.trial_counts(flat[None])[0] == 2
    with pytest.raises(DataShapeError, match="6 trials, but the model was simulated with at most 5"):
        s.observation(np.ones((6, 2)))
    with pytest.raises(DataShapeError, match="Each trial has 2 numbers; got an observation of shape \\(3, 3\\)"):
        s.observation(np.ones((3, 3)))
    with pytest.raises(DataShapeError, match="leave the whole trial out"):
        s.observation([[1, np.nan], [3, 4]])
    with pytest.raises(DataShapeError, match="no trial"):
        s.observation(np.full((2, 2), np.nan))


def test_valid_rows_missing_trials_are_fine_partial_ones_are_not():
    s = DataShape.trials(3, 2)
    x = np.ones((4, 6))
    x[1, 4:] = np.nan  # the last trial missing: valid
    x[2, 5] = np.nan  # half a trial: invalid
    x[3, :] = np.nan  # no trial at all: invalid
    np.testing.assert_array_equal(s.valid_rows(x), [True, True, False, False])
    v = DataShape.vector(6)
    np.testing.assert_array_equal(v.valid_rows(x), [True, False, False, False])
    x[0, 0] = np.inf
    assert not s.valid_rows(x)[0]


# ---- guesses ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, kind", [((5,), "vector"), ((100,), "series"), ((3, 200), "series"),
                                         ((50, 2), "trials"), ((28, 28), "image"), ((3, 16, 16), "image")])
def test_guess_shape(shape, kind):
    assert guess_shape(shape).kind == kind


def test_table_columns_spell_a_series_in_index_order():
    names = [f"x[{i}]" for i in reversed(range(30))]
    shape, ordered = shape_from_columns(names)
    assert shape == DataShape.series(30)
    assert ordered == [f"x[{i}]" for i in range(30)]
    shape, ordered = shape_from_columns([f"resp_{t}" for t in np.linspace(0.3, 30, 25)][::-1])
    assert shape == DataShape.series(25) and ordered[0] == "resp_0.3"
    shape, _ = shape_from_columns([f"x[{c}][{t}]" for c in range(2) for t in range(40)])
    assert shape == DataShape.series(40, channels=2)


def test_columns_that_do_not_follow_a_scheme_are_a_vector():
    assert shape_from_columns(["mean", "sd", "max"]) is None
    assert shape_from_columns(["x[0]", "x[2]"]) is None  # x[1] missing
    assert shape_from_columns(["x[0]", "y[1]"]) is None  # two stems


def test_embedding_for_resolves_auto_and_refuses_what_cannot_read_the_data():
    assert embedding_for("auto", DataShape.vector(3)) is None
    assert embedding_for("auto", DataShape.trials(5, 1)) == "set"
    assert embedding_for("auto", DataShape.image(8, 8)) == "cnn2d"
    assert embedding_for("mlp", DataShape.series(10)) == "mlp"
    assert embedding_for("cnn1d", DataShape.series(10)) == "cnn1d"
    with pytest.raises(DataShapeError, match="A cnn2d embedding reads an image, but one simulation here is a series "
                                             "of 10 time points: use 'cnn1d', 'gru' or 'mlp'"):
        embedding_for("cnn2d", DataShape.series(10))
    with pytest.raises(DataShapeError, match="'set' or 'set_attention'"):
        embedding_for("none", DataShape.trials(5, 1))
    with pytest.raises(DataShapeError, match="reads the flat numbers"):
        embedding_for("mlp", DataShape.trials(5, 1))  # NaN rows of missing trials: only a set network reads them


# ---- RunSpec and scripts -----------------------------------------------------------------------
def test_runspec_embedding_is_bounded_and_a_table_shape_is_checked():
    RunSpec(embedding="cnn1d").validate()
    with pytest.raises(RunSpecError, match="embedding must be one of auto, none"):
        RunSpec(embedding="lstm").validate()
    ref = {"kind": "table", "path": "t.csv", "theta_columns": ["a"], "x_columns": ["x"],
           "data_shape": {"kind": "series", "shape": [10 ** 7]}}
    with pytest.raises(RunSpecError, match="data_shape is not valid"):
        RunSpec(simulator=ref, method="npe", num_rounds=1, prior=[{"name": "a", "dist": "uniform", "low": 0,
                                                                     "high": 1}], observation=[0.0]).validate()


def test_sbi_script_of_a_table_series_uses_sbis_cnn_embedding():
    ref = {"kind": "table", "path": "sims.csv", "theta_columns": ["a"], "x_columns": [f"x[{i}]" for i in range(30)],
           "data_shape": {"kind": "series", "shape": [30]}}
    spec = RunSpec(simulator=ref, method="npe", num_rounds=1, observation=[0.0] * 30,
                   prior=[{"name": "a", "dist": "uniform", "low": 0, "high": 1}])
    text = spec_to_script(spec, library="sbi")
    assert "CNNEmbedding(input_shape=shape.dims[1:], in_channels=shape.dims[0], output_dim=20)" in text
    assert "embedding_net=embedding_net" in text
    compile(text, "script.py", "exec")
    vector = spec_to_script(RunSpec(simulator="two_moons", method="npe", num_rounds=1), library="sbi")
    assert "embedding" not in vector  # a vector as it is: the script is unchanged


# ---- uploads -----------------------------------------------------------------------------------
def _upload(tmp_path, name: str, body: str):
    import sbi_core

    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return sbi_core.load_simulator(path, timeout=20)


def test_an_upload_returning_trials_declares_them_and_its_observation_may_have_fewer(tmp_path):
    sim = _upload(tmp_path, "trials.py", '''
        import numpy as np
        PRIOR = [{"name": "mu", "dist": "normal", "loc": 0, "scale": 2}]
        OBSERVATION = [[0.5], [1.0], [0.7]]
        DATA_SHAPE = "trials"
        def simulate(theta):
            return theta[:, None, :1] + np.random.randn(theta.shape[0], 10, 1)
        ''')
    try:
        assert sim.data_shape == DataShape.trials(10, 1) and sim.data_shape_declared
        obs = sim.default_observation.numpy()
        assert obs.shape == (10,) and np.isnan(obs[3:]).all()
        x = sim.simulate(sim.prior.sample((4,)), seed=1)
        assert tuple(x.shape) == (4, 10)
    finally:
        sim.close()


def test_an_undeclared_image_is_guessed_and_a_wrong_declaration_is_explained(tmp_path):
    sim = _upload(tmp_path, "img.py", '''
        import numpy as np
        PRIOR = [{"name": "a", "dist": "uniform", "low": 0, "high": 1}]
        def simulate(theta):
            return np.random.randn(12, 12) * theta[0]
        ''')
    try:
        assert sim.data_shape == DataShape.image(12, 12) and not sim.data_shape_declared
        assert sim.obs_names[:2] == ["x[0][0]", "x[0][1]"]
    finally:
        sim.close()
    from sbi_core.simulators.uploaded import SimulatorError

    with pytest.raises(SimulatorError, match="DATA_SHAPE does not fit what simulate returns \\(30 numbers"):
        _upload(tmp_path, "bad.py", '''
            import numpy as np
            PRIOR = [{"name": "a", "dist": "uniform", "low": 0, "high": 1}]
            DATA_SHAPE = {"kind": "series", "shape": [40]}
            def simulate(theta):
                return np.random.randn(theta.shape[0], 30)
            ''')


# ---- checks on trials ------------------------------------------------------------------------
def test_predictive_check_of_trials_compares_what_the_sets_say_not_trial_by_trial():
    import torch

    import sbi_core
    from sbi_core.diagnostics.predictive import posterior_predictive_check

    sim = sbi_core.get_simulator("drift_diffusion")
    shape = sim.data_shape
    obs = sim.simulate(sim.true_theta, seed=3).reshape(shape.dims)[:7]  # 7 of the 50 trials observed
    right = posterior_predictive_check(sim, sim.true_theta[None].repeat(300, 1), obs, seed=0)
    assert right.names == ["mean of rt", "mean of choice", "sd of rt", "sd of choice"]
    assert right.observed.shape == (4,) and right.fraction_inside >= 0.5
    wrong_theta = sim.true_theta.clone()
    wrong_theta[0] = -2.5  # drift the other way: choices flip
    wrong = posterior_predictive_check(sim, wrong_theta[None].repeat(300, 1), obs, seed=0)
    assert not bool(wrong.inside[1])  # the mean choice is far outside what this posterior predicts
    single = posterior_predictive_check(sbi_core.get_simulator("gaussian_trials"), torch.full((200, 1), 1.5),
                                        torch.tensor([1.4]), seed=0)
    assert single.names == ["mean of the trials"]  # one trial: no spread to check

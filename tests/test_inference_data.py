"""sbi_core.export.inference_data: a run (in memory or stored) as an ArviZ InferenceData, and its NetCDF.

Runs are real and tiny: a 2-round SNPE run on two moons, carried out once in memory
(:func:`sbi_core.run.loop.execute`) and once as a stored run by the worker, from the same spec; and a
one-round NPE run on the projectile model, whose simulator has units.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from python_child import child_env
from sbi_core.errors import SBIError
from sbi_core.export.inference_data import (
    InferenceDataError,
    inference_data_from_store,
    to_inference_data,
    to_netcdf_bytes,
)
from sbi_core.jobs.worker import run_worker
from sbi_core.run.loop import execute
from sbi_core.run.spec import RunSpec
from sbi_core.simulators import get_simulator
from sbi_core.stats.priors import Prior
from sbi_core.store.artifacts import ArtifactMissing
from sbi_core.store.runs import RunStore

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning:arviz.*")

SPEC = RunSpec(simulator="two_moons", method="snpe", num_rounds=2, simulations_per_round=200, max_epochs=5,
               hidden_features=16, num_transforms=2, num_posterior_samples=100, seed=0, num_threads=1)
VOLATILE = ("created_at", "run_id")  # attributes that differ between two exports of the same run


@pytest.fixture(scope="module")
def az():
    arviz = pytest.importorskip("arviz")
    return arviz


@pytest.fixture(scope="module")
def run():
    torch.set_num_threads(1)
    return execute(SPEC)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("idata_store"))
    run_id = store.create_run(SPEC)
    assert run_worker(store, run_id) == "done", store.get_run(run_id).message
    return store, run_id


@pytest.fixture(scope="module")
def idata(az, run):
    return to_inference_data(run)


def _read_back(az, tmp_path, idata, name="run.nc"):
    path = tmp_path / name
    path.write_bytes(to_netcdf_bytes(idata))
    return az.from_netcdf(str(path))


def _without(attrs: dict, keys=VOLATILE) -> dict:
    return {k: v for k, v in attrs.items() if k not in keys}


def _assert_same(a, b, *, ignore=VOLATILE):
    """Two InferenceData with the same groups, values, coordinates and attributes (bar ``ignore``)."""
    assert sorted(a.groups()) == sorted(b.groups())
    for group in a.groups():
        da, db = a[group], b[group]
        assert _without(da.attrs, ignore) == _without(db.attrs, ignore), group
        assert list(da.data_vars) == list(db.data_vars) and sorted(da.coords) == sorted(db.coords), group
        for name in da.variables:  # data variables and coordinates
            np.testing.assert_array_equal(np.asarray(da[name]), np.asarray(db[name]), err_msg=f"{group}/{name}")
            assert da[name].dims == db[name].dims
            assert da[name].attrs == db[name].attrs


# ---------------------------------------------------------------------------
# the groups of an in-memory run
# ---------------------------------------------------------------------------
def test_posterior_is_one_chain_of_the_final_rounds_samples_one_variable_per_parameter(idata, run):
    post = idata.posterior
    assert list(post.data_vars) == run.prior.names == ["theta1", "theta2"]
    assert dict(post.sizes) == {"chain": 1, "draw": 100}
    final = run.rounds[-1].posterior_samples.double().numpy()
    for j, name in enumerate(run.prior.names):
        assert post[name].dims == ("chain", "draw")
        np.testing.assert_array_equal(post[name].values[0], final[:, j])
    # the final round, not the first: the two rounds' samples differ
    assert not np.array_equal(post["theta1"].values[0], run.rounds[0].posterior_samples[:, 0].double().numpy())


def test_every_round_is_kept_along_a_round_dimension(idata, run):
    rounds = idata.posterior_rounds
    assert list(rounds.data_vars) == run.prior.names
    assert dict(rounds.sizes) == {"round": 2, "chain": 1, "draw": 100}
    assert rounds["round"].values.tolist() == [0, 1]
    assert rounds["num_draws"].values.tolist() == [100, 100]
    for i, rr in enumerate(run.rounds):
        np.testing.assert_array_equal(
            np.stack([rounds[n].sel(round=i).values[0] for n in run.prior.names], axis=1),
            rr.posterior_samples.double().numpy(),
        )
    np.testing.assert_array_equal(rounds["theta2"].sel(round=1).values, idata.posterior["theta2"].values)


def test_observed_data_is_the_observation_labelled_by_component(idata, run):
    obs = idata.observed_data
    assert list(obs.data_vars) == ["x"]
    assert obs["x"].dims == ("x_dim",)
    assert obs["x_dim"].values.tolist() == ["x1", "x2"]  # two moons' obs_names
    np.testing.assert_array_equal(obs["x"].values, run.x_obs.double().numpy())
    assert "units" not in obs.coords  # two moons has no units


def test_training_losses_per_round_and_epoch(idata, run):
    training = idata.training
    assert dict(training.sizes)["round"] == 2
    assert training["epoch"].values[0] == 1
    for i, rr in enumerate(run.rounds):
        n = len(rr.history)
        assert 1 <= n <= 5
        np.testing.assert_allclose(training["train_loss"].values[i, :n], [h["train_loss"] for h in rr.history])
        np.testing.assert_allclose(training["val_loss"].values[i, :n],
                                   [np.nan if h["val_loss"] is None else h["val_loss"] for h in rr.history])
        assert np.isnan(training["train_loss"].values[i, n:]).all()
        assert int(training["best_epoch"].values[i]) == rr.best_epoch


def test_attributes_carry_the_spec_method_seed_and_library(idata):
    for group in idata.groups():
        attrs = idata[group].attrs
        assert RunSpec.from_json(attrs["spec"]) == SPEC
        assert attrs["method"] == "snpe" and attrs["seed"] == 0
        assert attrs["inference_library"] == "sbi_core"
        assert datetime.datetime.fromisoformat(attrs["created_at"]).tzinfo is not None
        assert "arviz_version" in attrs


def test_standard_groups_only_without_all_rounds(az, run):
    assert sorted(to_inference_data(run, all_rounds=False).groups()) == ["observed_data", "posterior"]


def test_a_run_without_spec_has_no_spec_attributes(az, run):
    bare = to_inference_data(dataclasses.replace(run, spec=None))
    assert not {"spec", "method", "seed"} & set(bare.posterior.attrs)
    np.testing.assert_array_equal(bare.posterior["theta1"].values, to_inference_data(run).posterior["theta1"].values)


def test_arviz_summary_reports_ess_of_iid_draws(az, idata):
    summary = az.summary(idata)
    assert list(summary.index) == ["theta1", "theta2"]
    ess = summary["ess_bulk"].to_numpy(dtype=float)
    # 100 independent draws: an effective sample size of about 100 (a chain that stuck would give far less)
    assert np.all((ess > 40) & (ess < 250)), ess


def test_unequal_rounds_are_nan_padded_and_counted(az, run, tmp_path):
    short = dataclasses.replace(run.rounds[0], posterior_samples=run.rounds[0].posterior_samples[:60])
    idata = to_inference_data(dataclasses.replace(run, rounds=[short, run.rounds[1]]))
    rounds = idata.posterior_rounds
    assert rounds["num_draws"].values.tolist() == [60, 100]
    assert np.isnan(rounds["theta1"].values[0, 0, 60:]).all()
    assert np.isfinite(rounds["theta1"].values[0, 0, :60]).all()
    back = _read_back(az, tmp_path, idata)
    assert back.posterior_rounds["num_draws"].values.tolist() == [60, 100]


def test_rounds_without_training_have_no_training_group(az, run):
    untrained = [dataclasses.replace(rr, history=[]) for rr in run.rounds]
    idata = to_inference_data(dataclasses.replace(run, rounds=untrained))
    assert "training" not in idata.groups() and "posterior_rounds" in idata.groups()


def test_units_come_from_the_simulator(az):
    spec = RunSpec(simulator="projectile", method="npe", num_rounds=1, simulations_per_round=200, max_epochs=3,
                   hidden_features=16, num_transforms=2, num_posterior_samples=50, seed=1, num_threads=1)
    idata = to_inference_data(execute(spec))
    sim = get_simulator("projectile")
    post = idata.posterior
    assert list(post.data_vars) == sim.param_names
    for name, unit in zip(sim.param_names, sim.param_units):
        assert post[name].attrs["units"] == unit
    assert idata.observed_data["x_dim"].values.tolist() == sim.obs_names
    assert idata.observed_data["units"].values.tolist() == sim.obs_units


# ---------------------------------------------------------------------------
# a stored run
# ---------------------------------------------------------------------------
def test_store_export_equals_the_in_memory_export_of_the_same_run(az, stored, idata):
    store, run_id = stored
    from_store = inference_data_from_store(store, run_id)
    assert from_store.posterior.attrs["run_id"] == run_id
    _assert_same(from_store, idata)


def test_store_export_loads_no_network(az, stored, monkeypatch):
    store, run_id = stored

    def refuse(*args, **kwargs):
        raise AssertionError("the export loaded a network")

    monkeypatch.setattr(type(store), "load_posterior", refuse)
    monkeypatch.setattr("sbi_core.posteriors.posterior.Posterior.load", refuse)
    assert dict(inference_data_from_store(store, run_id).posterior.sizes) == {"chain": 1, "draw": 100}


def test_store_errors_say_what_is_missing(az, stored):
    store, _ = stored
    with pytest.raises(InferenceDataError, match="no run"):
        inference_data_from_store(store, "0123456789ab")
    queued = store.create_run(SPEC)
    with pytest.raises(ArtifactMissing, match="no finished round"):
        inference_data_from_store(store, queued)


# ---------------------------------------------------------------------------
# NetCDF
# ---------------------------------------------------------------------------
def test_netcdf_round_trip_keeps_values_names_and_attributes(az, idata, tmp_path):
    data = to_netcdf_bytes(idata)
    assert data[:8] == b"\x89HDF\r\n\x1a\n"  # NetCDF-4 is HDF5
    back = _read_back(az, tmp_path, idata)
    _assert_same(back, idata, ignore=())
    assert RunSpec.from_json(back.posterior.attrs["spec"]) == SPEC


def test_netcdf_round_trip_of_a_stored_run(az, stored, tmp_path):
    store, run_id = stored
    idata = inference_data_from_store(store, run_id)
    back = _read_back(az, tmp_path, idata, "stored.nc")
    _assert_same(back, idata, ignore=())
    assert json.loads(back.observed_data.attrs["spec"])["simulator"] == "two_moons"


# ---------------------------------------------------------------------------
# what cannot be exported, and the import cost
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("names", [["a/b", "c"], ["chain", "b"], ["b", "draw"]])
def test_unexportable_parameter_names_raise_a_plain_error(az, run, names):
    prior = Prior.from_spec([{"name": n, "dist": "uniform", "low": -1, "high": 1} for n in names])
    with pytest.raises(InferenceDataError) as info:
        to_inference_data(dataclasses.replace(run, prior=prior, simulator=None))
    assert isinstance(info.value, SBIError)


def test_importing_sbi_core_and_the_export_does_not_import_arviz(tmp_path):
    code = "import sys, sbi_core, sbi_core.export; print('arviz' in sys.modules, 'xarray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
                         env=child_env()).stdout
    assert out.split() == ["False", "False"]

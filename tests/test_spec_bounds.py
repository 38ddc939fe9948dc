"""Every setting of a RunSpec has a bound, in one table (``sbi_core.run.spec.BOUNDS``), and any JSON value for any
setting is either accepted, and then builds everything a run needs, or refused with a :class:`RunSpecError`
that names the setting and says what it accepts (issue 19, part 4).

"Accepted and runs" is checked cheaply for every example (the one validation, admission, the run's inputs
as a worker builds them, prior draws and densities, a few simulations and the time estimate); two tiny
accepted specs at the edges of the table are run end to end in the slow test at the bottom.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sbi_core import RunSpec, RunSpecError
from sbi_core.run.cost import CostModel, estimate_run
from sbi_core.run.json_files import runspec_from_json
from sbi_core.run.loop import execute, spec_to_run
from sbi_core.run.spec import BOUNDS, MAX_JSON_DEPTH, PRIOR_BOUNDS, machine_cores
from sbi_core.stats.priors import FAMILIES
from sbi_core.uploads.files import admit_spec

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
FIELDS = [f.name for f in fields(RunSpec)]
# a small valid setup; each test changes one setting of it
BASE = dict(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=50, max_epochs=2,
            hidden_features=8, num_transforms=1, num_posterior_samples=20, title="bounds")


# ---- the one table -----------------------------------------------------------------------------
def test_every_setting_has_one_row_in_the_table():
    assert list(BOUNDS) == FIELDS
    for name, b in BOUNDS.items():
        assert b.meaning, name
        assert b.range_text(), name


def test_the_train_form_reads_its_limits_from_the_table():
    from sbi_ui import keys as K
    from sbi_ui.train_settings import LIMITS

    for key, name in ((K.W_SIMS, "simulations_per_round"), (K.W_ROUNDS, "num_rounds"), (K.W_SEED, "seed"),
                      (K.W_HIDDEN, "hidden_features"), (K.W_TRANSFORMS, "num_transforms"),
                      (K.W_MAX_EPOCHS, "max_epochs"), (K.W_PATIENCE, "patience")):
        b = BOUNDS[name]
        assert LIMITS[key] == b.form_range
        lo, hi = LIMITS[key]
        assert b.lo <= lo <= hi <= b.high  # the form never offers what the spec refuses


def test_the_reported_cases_are_refused_with_the_field_and_its_range():
    with pytest.raises(RunSpecError, match="seed must be a whole number from 0 to 2,147,483,647") as err:
        runspec_from_json(json.dumps({**BASE, "seed": 2**200}))
    assert err.value.field == "seed"
    with pytest.raises(RunSpecError, match=f"num_threads must be .* from 1 to {machine_cores():,}") as err:
        RunSpec.from_dict({**BASE, "num_threads": 1_000_000})
    assert err.value.field == "num_threads"
    with pytest.raises(RunSpecError, match="learning_rate must be a number greater than 0") as err:
        RunSpec.from_dict({**BASE, "learning_rate": "0.001"})  # a string used to pass float()
    assert err.value.field == "learning_rate"


def test_a_thread_count_is_capped_at_the_cores_where_it_is_applied():
    from sbi_core.threads import thread_env

    assert thread_env(1_000_000)["OMP_NUM_THREADS"] == str(machine_cores())


# ---- any JSON value, for every setting -----------------------------------------------------------
json_scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-2**256, max_value=2**256),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=6), kids, max_size=4)),
    max_leaves=10,
)
numbers = st.one_of(st.integers(-10**14, 10**14), st.floats(allow_nan=True, allow_infinity=True),
                    st.floats(-1e13, 1e13))


@st.composite
def marginals(draw):
    """Prior entries: well formed, with numbers from tame to absurd."""
    dist = draw(st.sampled_from(sorted(FAMILIES)))
    required, optional = FAMILIES[dist]
    entry = {"name": draw(st.sampled_from(["a", "b", "theta", " "])), "dist": dist}
    for key in (*required, *optional):
        if key in optional and draw(st.booleans()):
            continue
        entry[key] = draw(st.one_of(numbers, st.sampled_from([1e-7, 1e-6, 0.4, 0.5, 1.0, 5.0, 30.0, 31.0, 1e6, 1e12])))
    return entry


def near(b):
    """Values at and just past a row's ends."""
    if b.kind == "int":
        hi = b.high
        return st.sampled_from([b.lo - 1, b.lo, b.lo + 1, hi - 1, hi, hi + 1, 2**31, 2**63, -1, 0, 1.0, True])
    if b.kind == "float":
        return st.one_of(st.floats(b.lo - 1, b.hi + 1), st.sampled_from([b.lo, b.hi, 5e-324, 1e-300, "0.1"]))
    if b.kind == "choice":
        return st.sampled_from([*b.options, "NPE", "", "nope"])
    if b.kind == "text":
        return st.sampled_from(["", "x" * b.hi, "x" * (b.hi + 1), "a\nb"])
    if b.kind == "numbers":
        return st.lists(numbers, min_size=0, max_size=4)
    if b.kind == "prior":
        return st.lists(marginals(), min_size=0, max_size=3)
    return st.one_of(st.sampled_from(["two_moons", "gaussian_linear", "nope", "", "x" * 300]),
                     st.fixed_dictionaries({"kind": st.sampled_from(["builtin", "upload", "table", "zip"])},
                                           optional={"name": st.sampled_from(["two_moons", "sir", "nope"]),
                                                     "path": st.sampled_from(["/etc/passwd", "a.py"])}))


def base_for(field: str) -> dict:
    """The small setup to change ``field`` of (a sequential method where the rounds are tested)."""
    return {**BASE, "method": "snpe"} if field == "num_rounds" else dict(BASE)


def builds(spec: RunSpec) -> None:
    """What an accepted spec must allow, cheaply: the run's inputs, prior draws with finite densities,
    a few simulations of the observation's size, a finite time estimate, and the same spec back from JSON."""
    inputs = spec_to_run(spec)
    g = torch.Generator().manual_seed(0)
    theta = inputs.prior.sample((8,), generator=g)
    assert torch.isfinite(theta).all(), theta
    assert torch.isfinite(inputs.prior.log_prob(theta)).all()
    assert torch.isfinite(inputs.x_obs).all() and inputs.x_obs.ndim == 1
    x = inputs.simulator.simulate(theta, generator=g)
    assert x.shape == (8, inputs.x_obs.shape[0])
    est = estimate_run(spec, CostModel())
    assert math.isfinite(est.total_s) and est.total_s >= 0
    assert RunSpec.from_json(spec.to_json()) == spec
    assert spec.num_threads is None or spec.num_threads <= machine_cores()


def outcome(field: str, value, store_root) -> None:
    text = json.dumps({**base_for(field), field: value})
    try:
        spec = admit_spec(runspec_from_json(text), store_root)
    except RunSpecError as err:
        message = str(err)
        assert err.field == field, (field, value, err.field, message)
        assert field in message or (field == "simulator" and "model" in message), message
        if BOUNDS[field].kind in ("int", "float", "choice", "text"):
            assert BOUNDS[field].range_text() in message, message
        assert "Traceback" not in message
        return
    builds(spec)


@pytest.mark.parametrize("field", FIELDS)
@SETTINGS
@given(data=st.data())
def test_any_json_value_of_a_setting_is_accepted_and_builds_or_refused_naming_it(field, data, tmp_path):
    value = data.draw(st.one_of(json_values, near(BOUNDS[field])), label=field)
    outcome(field, value, tmp_path / "store")


@SETTINGS
@given(prior=st.lists(marginals(), min_size=2, max_size=2))
@example(prior=[{"name": "a", "dist": "uniform", "low": -1e12, "high": 1e12},
                {"name": "b", "dist": "lognormal", "loc": 30.0, "scale": 5.0}])
@example(prior=[{"name": "a", "dist": "gamma", "concentration": 1e-6, "rate": 1e-6},
                {"name": "b", "dist": "beta", "alpha": 1e-6, "beta": 1e12}])
@example(prior=[{"name": "a", "dist": "gamma", "concentration": 0.5, "rate": 1e12},
                {"name": "b", "dist": "beta", "alpha": 0.5, "beta": 1e6, "low": -1e12, "high": 1e12}])
def test_a_prior_of_the_right_size_is_accepted_and_samples_or_refused_naming_the_prior(prior, tmp_path):
    """Two parameters, as two moons takes: what the prior's numbers may be (PRIOR_BOUNDS)."""
    outcome("prior", prior, tmp_path / "store")


@pytest.mark.parametrize("row", sorted(PRIOR_BOUNDS))
def test_prior_numbers_past_their_bound_are_refused_with_the_bound(row):
    lo, hi = PRIOR_BOUNDS[row]
    entry = {"number": {"name": "a", "dist": "uniform", "low": -1.0, "high": hi * 10},
             "positive": {"name": "a", "dist": "normal", "loc": 0.0, "scale": hi * 10},
             "shape": {"name": "a", "dist": "gamma", "concentration": lo / 2, "rate": 1.0},
             "lognormal loc": {"name": "a", "dist": "lognormal", "loc": hi + 1, "scale": 1.0},
             "lognormal scale": {"name": "a", "dist": "lognormal", "loc": 0.0, "scale": hi + 1}}[row]
    with pytest.raises(RunSpecError, match=f"must be from {lo:g} to {hi:g}".replace("+", r"\+")) as err:
        RunSpec(prior=[entry, {"name": "b", "dist": "uniform", "low": 0, "high": 1}])
    assert err.value.field == "prior"


def test_deeply_nested_json_is_refused_before_parsing():
    for depth in (MAX_JSON_DEPTH, 5_000, 200_000):
        text = json.dumps({**BASE, "title": "x"}).replace('"x"', "[" * depth + "]" * depth)
        with pytest.raises(RunSpecError, match=f"{depth + 1:,} levels deep"):  # the spec object is one more
            runspec_from_json(text)
        with pytest.raises(RunSpecError, match="levels deep"):
            RunSpec.from_json(text)
    # brackets inside strings are text, not nesting
    assert runspec_from_json(json.dumps({**BASE, "title": "[" * 150})).title == "[" * 150


def test_a_builtin_models_sizes_are_checked_when_a_spec_arrives(tmp_path):
    for field, value in (("observation", [0.1, 0.2, 0.3]), ("true_theta", [0.1]),
                         ("prior", [{"name": "a", "dist": "uniform", "low": 0, "high": 1}])):
        with pytest.raises(RunSpecError) as err:
            admit_spec(RunSpec(**{**BASE, field: value}), tmp_path)
        assert err.value.field == field, str(err.value)


# ---- tiny accepted specs at the table's edges, run end to end ----------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("edges", [
    dict(method="npe", seed=2**31 - 1, num_threads=machine_cores(), simulations_per_round=20, max_epochs=1,
         patience=1, hidden_features=4, num_transforms=1, num_posterior_samples=10, batch_size=2,
         learning_rate=0.999, validation_fraction=0.499),
    dict(method="snpe", num_rounds=2, seed=0, simulations_per_round=40, max_epochs=3, batch_size=100_000,
         learning_rate=1e-300, validation_fraction=1e-300, num_posterior_samples=10,
         prior=[{"name": "a", "dist": "uniform", "low": -1e12, "high": 1e12},
                {"name": "b", "dist": "lognormal", "loc": 30.0, "scale": 5.0}],
         observation=[1e12, -1e12], title="t" * 200),
])
def test_tiny_specs_at_the_edges_of_the_table_run_end_to_end(edges, tmp_path):
    spec = admit_spec(runspec_from_json(json.dumps({**BASE, **edges})), tmp_path)
    result = execute(spec)
    assert len(result.rounds) == spec.rounds
    assert torch.isfinite(result.rounds[-1].posterior_samples).all()

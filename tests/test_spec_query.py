"""RunSpec.to_query / RunSpec.from_query: every field round-trips; a damaged link says what is wrong."""

from __future__ import annotations

import dataclasses
import re
import zlib

import pytest

from sbi_core import RunSpec, RunSpecError
from sbi_core.run.link import SpecLinkError, V1_DEFAULTS, _b64, _check

URL_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")

NON_DEFAULT = dict(
    simulator={"kind": "upload", "path": "/srv/store/uploads/0123456789abcdef/pendulum.py", "timeout": 5.0},
    prior=[{"name": "length", "dist": "uniform", "low": 0.25, "high": 2.0},
           {"name": "damping", "dist": "normal", "loc": 0.1, "scale": 1 / 3}],
    observation=[0.1, -2.5e-7, 3.0],
    true_theta=[1.0, 0.1],
    method="tsnpe",
    num_rounds=7,
    simulations_per_round=333,
    density_estimator="maf",
    embedding="cnn1d",
    hidden_features=48,
    num_transforms=3,
    max_epochs=77,
    batch_size=64,
    learning_rate=1e-4 / 3,
    validation_fraction=0.15,
    patience=4,
    num_posterior_samples=512,
    seed=123456789,
    num_threads=2,
    title="Lesson 4 — rounds ✓ & more",
)


def _payload(text: str) -> str:
    return _b64(zlib.compress(text.encode()))


def test_every_field_round_trips_and_the_link_is_url_safe():
    assert set(NON_DEFAULT) == {f.name for f in dataclasses.fields(RunSpec)}  # a new field must be added here
    spec = RunSpec(**NON_DEFAULT)
    query = spec.to_query()
    assert URL_SAFE.match(query) and query.startswith("1.")
    back = RunSpec.from_query(query)
    assert back == spec and back.to_dict() == spec.to_dict()
    assert back.learning_rate == NON_DEFAULT["learning_rate"]  # floats exactly, not rounded


@pytest.mark.parametrize("name", sorted(NON_DEFAULT))
def test_each_field_alone_round_trips(name):
    base = dict(method="npe", num_rounds=1) if name not in ("method", "num_rounds") else {}
    if name == "method":
        base = dict(method="tsnpe")
    spec = RunSpec(**{**base, name: NON_DEFAULT[name]})
    assert RunSpec.from_query(spec.to_query()) == spec


def test_default_spec_is_short_and_demo_fits_a_qr_code():
    assert len(RunSpec().to_query()) < 40
    assert len(RunSpec.demo().to_query()) < 300


def test_frozen_v1_defaults_still_match_runspec():
    """A default changed in RunSpec would silently change what old links mean: bump the link version instead."""
    assert V1_DEFAULTS == {f.name: f.default for f in dataclasses.fields(RunSpec)}


@pytest.mark.parametrize("query, words", [
    ("", "holds no setup"),
    ("   ", "holds no setup"),
    ("hello", "not a setup link"),
    ("v1.abc.def", "not a setup link"),
    ("2.abc.def", "newer version"),
    ("0.abc.def", "older than any"),
    ("1.abc", "cut short"),
    ("1..", "cut short"),
    ("1." + "A" * 9000 + ".x", "more than the"),
])
def test_a_malformed_link_says_what_is_wrong(query, words):
    with pytest.raises(SpecLinkError, match=words):
        RunSpec.from_query(query)


def test_a_cut_or_edited_link_fails_its_check():
    query = RunSpec.demo().to_query()
    version, payload, check = query.split(".")
    for damaged in (f"{version}.{payload[:-5]}.{check}", f"{version}.{payload}.{check[:-1]}X",
                    f"{version}.{payload[:10]}Q{payload[11:]}.{check}"):
        with pytest.raises(SpecLinkError, match="check code"):
            RunSpec.from_query(damaged)
    assert isinstance(SpecLinkError("x"), RunSpecError)


def test_a_well_formed_link_with_bad_content_is_refused_by_the_one_validation():
    for text, words in (('{"num_rounds": 0}', "num_rounds must be a whole number"),
                        ('{"color": "red"}', "Unknown RunSpec setting"),
                        ('[1, 2]', "not a set of named settings"),
                        ('not json', "damaged")):
        payload = _payload(text)
        with pytest.raises(RunSpecError, match=words):
            RunSpec.from_query(f"1.{payload}.{_check(payload)}")


def test_a_compressed_bomb_is_not_inflated():
    payload = _payload('{"title": "' + "a" * 2_000_000 + '"}')
    assert len(payload) < 8_000
    with pytest.raises(SpecLinkError, match="far larger"):
        RunSpec.from_query(f"1.{payload}.{_check(payload)}")

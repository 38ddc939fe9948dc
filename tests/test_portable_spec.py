"""A RunSpec that travels: the uploaded file goes inside it (sbi_core.uploads.files.portable_spec),
and a spec from outside names built-ins and files it carries, never a path (admit_spec)."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from python_child import child_env
from sbi_core import RunSpec, RunSpecError
from sbi_core.errors import SBIError
from sbi_core.run.loop import execute
from sbi_core.uploads.files import admit_spec, is_upload_path, portable_spec, save_upload
from sbi_core.uploads.paths import UploadError, uploads_root

ROOT = Path(__file__).resolve().parents[1]

SIM = b'''"""A line through the origin, with a little noise."""
import numpy as np

PRIOR = [{"name": "slope", "dist": "uniform", "low": 0, "high": 2}]
OBSERVATION = [1.0, 2.0]


def simulate(theta):
    return np.hstack([theta, 2 * theta]) + 0.05 * np.random.normal(size=(len(theta), 2))
'''
PRIOR = [{"name": "slope", "dist": "uniform", "low": 0, "high": 2}]
TINY = dict(method="npe", num_rounds=1, simulations_per_round=100, max_epochs=2, hidden_features=8,
            num_transforms=1, num_posterior_samples=20, num_threads=1, seed=1)


def upload_spec(store_root: Path, **kw) -> RunSpec:
    path = save_upload(store_root, SIM, "line.py")
    return RunSpec(simulator={"kind": "upload", "path": str(path), "name": "Line", "timeout": 20},
                   prior=PRIOR, observation=[1.0, 2.0], **{**TINY, **kw})


def test_portable_spec_carries_the_file_and_no_path(tmp_path):
    spec = upload_spec(tmp_path / "server")
    portable = portable_spec(spec)
    ref = portable.simulator
    assert "path" not in ref and str(tmp_path) not in portable.to_json()
    assert ref == {"kind": "upload", "name": "Line", "timeout": 20, "file_name": "line.py",
                   "sha256": hashlib.sha256(SIM).hexdigest(), "source": SIM.decode()}
    assert RunSpec.from_json(portable.to_json()) == portable  # a JSON round trip keeps every field
    assert spec.simulator["path"], "the stored spec is left alone"
    assert portable_spec(portable) == portable, "already portable: unchanged"
    assert portable_spec(RunSpec.demo()) == RunSpec.demo()


def test_admitting_a_carried_file_stores_it_as_an_upload_of_this_server(tmp_path):
    portable = portable_spec(upload_spec(tmp_path / "server"))
    other = tmp_path / "other_server"
    admitted = admit_spec(RunSpec.from_json(portable.to_json()), other)
    path = Path(admitted.simulator["path"])
    assert is_upload_path(other, path) and path.read_bytes() == SIM
    assert path.parent.name == hashlib.sha256(SIM).hexdigest()[:16], "content-addressed like any upload"
    assert "source" not in admitted.simulator and admitted.simulator["name"] == "Line"
    assert {k: v for k, v in admitted.to_dict().items() if k != "simulator"} == \
        {k: v for k, v in portable.to_dict().items() if k != "simulator"}
    # a spec of this server's own uploads, by path, is admitted as it is
    assert admit_spec(admitted, other) == admitted


def test_a_changed_file_is_refused_by_its_hash(tmp_path):
    data = portable_spec(upload_spec(tmp_path / "server")).to_dict()
    data["simulator"]["source"] = data["simulator"]["source"].replace("2 * theta", "3 * theta")
    with pytest.raises(RunSpecError, match="does not match its sha256"):
        admit_spec(RunSpec.from_dict(data), tmp_path / "other")
    assert not uploads_root(tmp_path / "other").exists(), "nothing stored"
    data["simulator"]["sha256"] = "not a hash"
    with pytest.raises(RunSpecError, match="64 hexadecimal digits"):
        admit_spec(RunSpec.from_dict(data), tmp_path / "other")
    del data["simulator"]["sha256"]  # a hand-written spec may carry its code without a hash
    admitted = admit_spec(RunSpec.from_dict(data), tmp_path / "other")
    assert b"3 * theta" in Path(admitted.simulator["path"]).read_bytes()
    del data["simulator"]["file_name"]
    with pytest.raises(RunSpecError, match="file_name"):
        admit_spec(RunSpec.from_dict(data), tmp_path / "other")


@pytest.mark.parametrize("kind", ["upload", "table"])
def test_a_raw_path_from_outside_is_refused_without_opening_it(tmp_path, kind):
    ref = {"kind": kind, "path": "/etc/passwd"}
    if kind == "table":
        ref.update(theta_columns=["a"], x_columns=["b"])
    spec = RunSpec(simulator=ref, prior=[{"name": "a", "dist": "uniform", "low": 0, "high": 1}],
                   observation=[1.0], **TINY)
    with pytest.raises(RunSpecError) as err:
        admit_spec(spec, tmp_path / "store")
    message = str(err.value)
    assert "names a file path (passwd)" in message and "Download the RunSpec again" in message
    assert "root" not in message and "/etc" not in message
    # a file outside the uploads folder of this store, even a harmless one, is refused the same way
    elsewhere = tmp_path / "elsewhere.py"
    elsewhere.write_bytes(SIM)
    with pytest.raises(RunSpecError, match="names a file path"):
        admit_spec(RunSpec.from_dict({**spec.to_dict(), "simulator": {**ref, "path": str(elsewhere)}}),
                   tmp_path / "store")


def test_unknown_builtin_and_kind_are_refused(tmp_path):
    with pytest.raises(RunSpecError, match="no built-in model 'nope'"):
        admit_spec(RunSpec(simulator="nope"), tmp_path)
    with pytest.raises(RunSpecError, match="Unknown simulator kind"):
        admit_spec(RunSpec(simulator={"kind": "url", "path": "http://x"}), tmp_path)


TWO_MOONS_PRIOR = [{"name": n, "dist": "uniform", "low": -1, "high": 1} for n in ("theta1", "theta2")]


def test_tables_travel_too_text_or_binary(tmp_path):
    server = tmp_path / "server"
    csv = (ROOT / "assets" / "examples" / "two_moons_simulations.csv").read_bytes()
    path = save_upload(server, csv, "sims.csv")
    spec = RunSpec(simulator={"kind": "table", "path": str(path), "theta_columns": ["theta1", "theta2"],
                              "x_columns": ["x1", "x2"]}, prior=TWO_MOONS_PRIOR, observation=[0.1, 0.2], **TINY)
    ref = portable_spec(spec).simulator
    assert ref["source"].encode() == csv and ref["theta_columns"] == ["theta1", "theta2"]
    binary = bytes(range(256)) * 4  # not UTF-8: carried as base64
    path = save_upload(server, binary, "sims.parquet")
    ref = portable_spec(RunSpec.from_dict({**spec.to_dict(), "simulator": {**spec.simulator,
                                                                           "path": str(path)}})).simulator
    assert "source" not in ref and base64.b64decode(ref["source_base64"]) == binary
    admitted = admit_spec(RunSpec.from_dict({**spec.to_dict(), "simulator": ref}), tmp_path / "other")
    assert Path(admitted.simulator["path"]).read_bytes() == binary


def test_a_file_too_large_or_gone_says_so(tmp_path, monkeypatch):
    spec = upload_spec(tmp_path / "server")
    monkeypatch.setattr("sbi_core.uploads.files.MAX_EMBED_BYTES", 100)
    with pytest.raises(UploadError, match="too large to travel inside a RunSpec"):
        portable_spec(spec)
    monkeypatch.undo()
    shutil.rmtree(tmp_path / "server")
    with pytest.raises(UploadError, match="no longer on this server"):
        portable_spec(spec)


def test_execute_explains_a_carried_file_it_was_not_given_a_path_for(tmp_path):
    portable = portable_spec(upload_spec(tmp_path / "server"))
    with pytest.raises(RunSpecError, match="carries its simulator file inside"):
        execute(portable)


# ---------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------
def _cli(*args, cwd, store):
    return subprocess.run(
        [sys.executable, "-m", "sbi_core", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
        env=child_env({"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HOME": str(cwd),
                       "SBI_STORE_DIR": str(store)}),
    )


@pytest.mark.slow
def test_cli_runs_a_downloaded_spec_elsewhere_with_the_upload_folder_gone(tmp_path):
    server = tmp_path / "server_store"
    spec_json = portable_spec(upload_spec(server)).to_json()
    shutil.rmtree(server)  # the server, its store and its uploads are gone
    elsewhere = tmp_path / "laptop"
    elsewhere.mkdir()
    (elsewhere / "spec.json").write_text(spec_json)
    out = _cli("spec.json", "--out", "out", cwd=elsewhere, store=elsewhere / "no_store")
    assert out.returncode == 0, out.stderr
    assert "slope" in out.stdout and "posterior mean" in out.stdout
    lines = (elsewhere / "out" / "round_0_samples.csv").read_text().splitlines()
    assert lines[0] == "slope" and len(lines) == 21
    assert not (elsewhere / "no_store").exists(), "the carried file went to a private folder, not a store"


def test_cli_refuses_a_spec_naming_a_raw_path_without_quoting_it(tmp_path):
    spec = {"simulator": {"kind": "upload", "path": "/etc/passwd"}, **TINY}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    out = _cli("spec.json", cwd=tmp_path, store=tmp_path / "store")
    assert out.returncode == 2, out.stderr
    assert "names a file path (passwd)" in out.stderr
    assert "root:" not in out.stderr + out.stdout and "Traceback" not in out.stderr


@pytest.mark.parametrize("ref", [
    {"kind": "upload", "path": "/etc/passwd"},
    {"kind": "table", "path": "/etc/passwd", "theta_columns": ["a"], "x_columns": ["b"]},
])
def test_execute_does_not_open_a_file_that_is_not_a_simulator_or_a_table(ref):
    """The Python API runs specs without a store to admit them into: a path to something that is not a
    .py simulator or a table file is refused unopened, so nothing of it reaches the message."""
    spec = RunSpec(simulator=ref, prior=[{"name": "a", "dist": "uniform", "low": 0, "high": 1}],
                   observation=[0.0], method="npe", num_rounds=1, simulations_per_round=100)
    with pytest.raises(SBIError) as err:
        execute(spec)
    text = str(err.value)
    assert "passwd is not, so it was not opened" in text and "root:" not in text and "line" not in text

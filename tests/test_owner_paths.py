"""A shared server's files: no path from a client (an imported RunSpec, a ?spec= link) names a file
outside the upload store, whatever ``..``, absolute paths or symbolic links it tries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sbi_core import RunSpec
from sbi_core.errors import RunSpecError
from sbi_core.uploads.files import admit_spec, is_upload_path, save_upload
from sbi_core.uploads.paths import safe_filename
from sbi_ui import keys as K

from apptest_support import APP

pytestmark = pytest.mark.timeout(120)

CODE = b"import numpy as np\nPRIOR = [{'name': 'a', 'dist': 'uniform', 'low': 0, 'high': 1}]\n" \
       b"def simulate(theta):\n    return np.hstack([theta, theta])\n"


def upload_spec(path) -> RunSpec:
    return RunSpec(simulator={"kind": "upload", "path": str(path), "name": "M"}, method="npe", num_rounds=1)


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "store"
    r.mkdir()
    (r / "runs.sqlite3").write_text("secret database")
    (tmp_path / "outside.py").write_bytes(CODE)
    return r


def hostile_paths(root: Path) -> list:
    good = save_upload(root, CODE, "model.py")
    digest = good.parent
    uploads = digest.parent
    (uploads / "loose.py").write_bytes(CODE)  # directly in uploads/, not in a content folder
    (uploads / "notadigest").mkdir()
    (uploads / "notadigest" / "m.py").write_bytes(CODE)
    (digest / ".part-abc").write_bytes(CODE)  # an upload being written
    os.symlink(root.parent / "outside.py", digest / "link.py")  # a link out of the store
    os.symlink(root.parent, digest / "up")
    return [
        "/etc/passwd",
        str(root / "runs.sqlite3"),
        str(digest / ".." / ".." / "runs.sqlite3"),
        f"{digest}/../../../outside.py",
        str(uploads / "loose.py"),
        str(uploads / "notadigest" / "m.py"),
        str(digest / ".part-abc"),
        str(digest / "link.py"),
        str(digest / "up" / "outside.py"),
        "../" * 12 + "etc/passwd",
        "uploads/" + digest.name + "/model.py",  # relative: resolved against the server's folder, not the store
        str(digest),
        "",
    ]


def test_only_files_saved_in_this_store_are_upload_paths(root):
    good = save_upload(root, CODE, "model.py")
    assert is_upload_path(root, good) and is_upload_path(root, str(good))
    for path in hostile_paths(root):
        assert not is_upload_path(root, path), path


def test_admit_spec_refuses_every_path_outside_the_uploads_without_reading_it(root):
    good = save_upload(root, CODE, "model.py")
    assert admit_spec(upload_spec(good), root).simulator_ref["path"] == str(good)
    for path in hostile_paths(root):
        with pytest.raises(RunSpecError) as err:
            admit_spec(upload_spec(path), root)
        assert "secret database" not in str(err.value) and "import numpy" not in str(err.value)
        assert "names a file path" in str(err.value)


def test_a_carried_file_name_cannot_climb_out_of_its_folder(root):
    for name in ("../../runs.sqlite3", "/etc/passwd", "..", "a/../../b.py", "..\\..\\x.py"):
        ref = {"kind": "upload", "name": "M", "file_name": name, "source": CODE.decode()}
        spec = admit_spec(RunSpec(simulator=ref, method="npe", num_rounds=1), root)
        path = Path(spec.simulator_ref["path"])
        assert path.parent.parent == (root / "uploads").resolve() and path.name == safe_filename(name)
        assert is_upload_path(root, path)
    assert (root / "runs.sqlite3").read_text() == "secret database"


def test_a_link_naming_a_path_out_of_the_store_is_refused(root, monkeypatch):
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    digest = save_upload(root, CODE, "model.py").parent
    for path in (f"{digest}/../../runs.sqlite3", str(root.parent / "outside.py")):
        at = AppTest.from_file(APP, default_timeout=60)
        at.query_params[K.QP_SPEC] = upload_spec(path).to_query()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        errors = [e.value for e in at.error if "could not be used" in e.value]
        assert errors and "names a file path" in errors[0], [e.value for e in at.error]
        assert "secret database" not in " ".join(e.value for e in at.error)
        choice = at.session_state[K.S_MODEL_CFG] if K.S_MODEL_CFG in at.session_state else None
        assert choice is None or not choice.is_upload, "the page goes on from the defaults"

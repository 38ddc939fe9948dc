"""The upload sandbox wherever Python lives, and refusals that name their real cause.

* A virtualenv under ``/tmp`` (what a new user makes first): bubblewrap mounts a
  private ``/tmp`` inside the sandbox, which used to hide that interpreter, so
  every upload was refused with a message claiming bubblewrap was missing.
  Here a real venv is made under ``/tmp`` and an upload runs through the
  sandbox with that venv's interpreter.
* When the sandbox cannot start, the message says why (bwrap's own words and
  exit code); "not installed" only when bubblewrap really is not there.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
from pathlib import Path

import pytest

from sbi_core.sandbox import runner as sandbox
from sbi_core.simulators.uploaded import SimulatorError, load_simulator

ROOT = Path(__file__).resolve().parents[1]
PENDULUM = ROOT / "assets" / "examples" / "pendulum.py"


def _bwrap_starts() -> bool:
    """Whether bwrap runs here at all (this interpreter's own sandbox starts)."""
    return sandbox.sandbox_problem() is None


def _venv_under_tmp(folder: Path) -> Path:
    """A real ``python -m venv`` in ``folder`` that sees this interpreter's packages.

    ``--system-site-packages`` gives the base interpreter's packages; a ``.pth``
    file adds this interpreter's own site-packages too, so the test also works
    when it already runs inside a (fresh) virtualenv.
    """
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "_outer_site.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


SANDBOXED_UPLOAD = textwrap.dedent("""
    import json, sys
    import torch
    from sbi_core.sandbox import runner as sandbox
    from sbi_core.simulators.uploaded import SimulatorError, load_simulator
    out = {"prefix": sys.prefix, "problem": sandbox.sandbox_problem()}
    try:
        sim = load_simulator(sys.argv[1], trusted=False)
        try:
            out["mode"] = sim.simulate_fn.runner.mode
            out["shape"] = list(sim.simulate(sim.prior.sample((20,)), seed=0).shape)
        finally:
            sim.close()
    except SimulatorError as exc:
        out["error"] = str(exc)
    print(json.dumps(out))
""")


@pytest.mark.slow
@pytest.mark.skipif(not _bwrap_starts(), reason="needs a working bubblewrap (apt-get install bubblewrap)")
def test_upload_runs_in_the_sandbox_with_a_venv_under_tmp():
    folder = Path(tempfile.mkdtemp(prefix="sbi-venv-test-", dir="/tmp"))
    try:
        python = _venv_under_tmp(folder)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SBI_TRUSTED_UPLOADS")}
        res = subprocess.run([str(python), "-c", SANDBOXED_UPLOAD, str(PENDULUM)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=180)
        assert res.returncode == 0, res.stderr[-3000:]
        out = json.loads(res.stdout.strip().splitlines()[-1])
        assert out["prefix"].startswith("/tmp/"), out  # really the venv under /tmp
        assert out.get("error") is None, out["error"]
        assert out["problem"] is None
        assert out["mode"] == "sandboxed"
        assert out["shape"] == [20, 4]
    finally:
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def test_python_under_tmp_is_bound_after_the_private_tmp(monkeypatch):
    """bwrap applies mounts in order: a bind under /tmp must come after ``--tmpfs /tmp``."""
    monkeypatch.setattr(sandbox, "_python_dirs", lambda: ["/tmp/somewhere/venv", "/opt/python"])
    monkeypatch.setattr(sandbox, "_bwrap_help", lambda bwrap: "")
    cmd = sandbox.bwrap_command("bwrap", "/m.py", "/c.py", sandbox.Limits(), seccomp_fd=None)
    tmpfs = cmd.index("--tmpfs")
    assert cmd[tmpfs + 1] == "/tmp"
    venv = cmd.index("/tmp/somewhere/venv")
    assert cmd[venv - 1] == "--ro-bind" and venv > tmpfs
    assert cmd[cmd.index("/opt/python") - 1] == "--ro-bind"


def test_the_temp_folder_itself_is_never_exposed():
    tmp = os.path.realpath(tempfile.gettempdir())
    assert not sandbox._exposable("/")
    assert not sandbox._exposable(tmp)
    assert not sandbox._exposable(os.path.dirname(tmp))  # a folder holding it
    assert sandbox._exposable(os.path.join(tmp, "some-venv"))
    assert tmp not in sandbox._python_dirs()


def _fake_bwrap(folder: Path, stderr: str, code: int) -> Path:
    path = folder / "bwrap"
    path.write_text(f"#!/bin/sh\necho '{stderr}' >&2\nexit {code}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_sandbox_that_cannot_start_is_named_not_called_missing(tmp_path, monkeypatch):
    reason = "bwrap: No permissions to creating new namespace, likely because the kernel does not allow it"
    monkeypatch.setenv("SBI_BWRAP", str(_fake_bwrap(tmp_path, reason, 1)))
    monkeypatch.delenv("SBI_TRUSTED_UPLOADS", raising=False)
    assert sandbox.sandbox_mode() == "refused"
    problem = sandbox.sandbox_problem()
    assert problem.startswith("the sandbox could not start") and reason in problem and "exit code 1" in problem
    with pytest.raises(SimulatorError) as info:
        load_simulator(PENDULUM, trusted=False)
    message = str(info.value)
    assert info.value.kind == "refused"
    assert reason in message and "exit code 1" in message and "SBI_TRUSTED_UPLOADS" in message
    assert "not installed" not in message and "apt-get install" not in message
    description = sandbox.sandbox_mode_description()
    assert "switched off" in description and reason in description
    assert "install the 'bubblewrap' package" not in description


def test_missing_bubblewrap_says_so(monkeypatch):
    monkeypatch.delenv("SBI_BWRAP", raising=False)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, *a, **k: None)
    monkeypatch.delenv("SBI_TRUSTED_UPLOADS", raising=False)
    with pytest.raises(SimulatorError) as info:
        load_simulator(PENDULUM, trusted=False)
    assert "bubblewrap is not installed" in str(info.value)
    assert "apt-get install bubblewrap" in str(info.value)
    assert "install the 'bubblewrap' package" in sandbox.sandbox_mode_description()


def test_sbi_bwrap_pointing_nowhere_says_so(tmp_path, monkeypatch):
    missing = tmp_path / "no-such-bwrap"
    monkeypatch.setenv("SBI_BWRAP", str(missing))
    monkeypatch.delenv("SBI_TRUSTED_UPLOADS", raising=False)
    with pytest.raises(SimulatorError) as info:
        load_simulator(PENDULUM, trusted=False)
    assert f"SBI_BWRAP is set to {missing}, which is not an executable file" in str(info.value)

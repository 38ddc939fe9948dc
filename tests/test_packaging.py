"""The project is an installable package: it imports from any folder, and its pins agree.

``pip install -r requirements.txt`` (the README's command) installs the pinned
dependencies and the project itself (``-e .``); ``pyproject.toml`` lists the
same pins as the package's dependencies and extras.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import setuptools

ROOT = Path(__file__).resolve().parents[1]


def _pins(path: Path) -> set[str]:
    """The ``name==version`` lines of a requirements file, following ``-r`` includes."""
    pins: set[str] = set()
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            pins |= _pins(path.parent / line[3:].strip())
        elif line and not line.startswith("-"):
            pins.add(line)
    return pins


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_requirements_install_the_project_itself():
    lines = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines() if ln.strip()]
    assert lines[-1] == "-e ."
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text().splitlines()


def test_pyproject_pins_are_the_requirements_pins():
    project = _project()
    assert project["requires-python"] == ">=3.11"
    assert set(project["dependencies"]) == _pins(ROOT / "requirements.txt")
    extras = project["optional-dependencies"]
    assert set(extras["dev"]) == _pins(ROOT / "requirements-dev.txt") - _pins(ROOT / "requirements.txt")
    assert set(extras["bench"]) == _pins(ROOT / "bench" / "requirements.txt")


def _shipped_packages() -> list[str]:
    """Every package ``pyproject.toml`` ships (its ``packages.find`` settings, applied here)."""
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    return sorted(setuptools.find_packages(where=str(ROOT), include=find["include"]))


def test_every_shipped_package_imports_from_any_folder(tmp_path):
    packages = _shipped_packages()
    assert {"sbi_core", "sbi_core.methods", "sbi_core.simulators"} <= set(packages), packages
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = "import importlib, sys, sbi_core, sbi_core.jobs.worker\n"
    code += f"for name in {packages!r}: importlib.import_module(name)\n"
    code += "print(sbi_core.__file__)"
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, (
        "sbi_core does not import outside the repository: install the project "
        f"(pip install -r requirements.txt, or pip install -e .)\n{res.stderr[-2000:]}"
    )
    assert Path(res.stdout.strip()).resolve().parent.name == "sbi_core"

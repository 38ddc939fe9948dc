"""The app loads what its pages need once, before any page runs (issue 19, point 7): no session may meet a
half-imported pandas, and the server process keeps one native BLAS / OpenMP thread."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from python_child import child_env

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(300)

_PROBE = r"""
import json, os, sys, threading
import sbi_ui.preload as p
import numpy as np, torch
a = np.random.default_rng(0).random((300, 300)); a @ a  # wake the BLAS pool, if there is one
x = torch.ones(300, 300); (x @ x).sum()
print(json.dumps({"modules": sorted(m for m in sys.modules), "loaded": p.LOADED, "pages": p.page_modules(),
                  "env": {k: os.environ.get(k) for k in p.THREAD_ENV},
                  "native": len(os.listdir("/proc/self/task")) - threading.active_count()}))
"""


def _probe(**env) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.endswith(("_NUM_THREADS", "_MAXIMUM_THREADS"))}
    clean.update(env)
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", _PROBE], cwd=tmp, env=child_env(clean), capture_output=True,
                             text=True, timeout=240, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_preload_imports_what_the_pages_need():
    got = _probe()
    modules = set(got["modules"])
    for name in ("numpy", "pandas", "pyarrow", "plotly.graph_objects", "plotly.io", "torch", "scipy.stats",
                 "sbi_core.plots", "sbi_ui.live_view", "sbi_ui.charts", "sbi_ui.rounds_view"):
        assert name in modules, name
    assert "sbi_ui.live_view" in got["pages"] and "sbi_ui.frame" in got["pages"]  # read from pages/*.py
    assert set(got["pages"]) <= modules
    assert got["env"] == {k: "1" for k in got["env"]}  # one native thread in the server process
    if os.path.isdir("/proc/self/task") and (os.cpu_count() or 1) > 1:
        assert got["native"] <= 1, got["native"]  # without the limits: one OpenBLAS and one OpenMP thread per core


@pytest.mark.slow
def test_an_operator_thread_setting_is_kept():
    got = _probe(OMP_NUM_THREADS="3", OPENBLAS_NUM_THREADS="2")
    assert got["env"]["OMP_NUM_THREADS"] == "3" and got["env"]["OPENBLAS_NUM_THREADS"] == "2"


def test_the_thread_variables_match_sbi_core():
    from sbi_core.threads import THREAD_ENV
    from sbi_ui import preload

    assert tuple(preload.THREAD_ENV) == tuple(THREAD_ENV)


def test_app_imports_the_preload_before_anything_else_of_its_own():
    tree = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    own = []
    # in source order, inside main() too (app.py draws only from main(): not in a spawned Dask worker)
    for node in sorted((n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))),
                       key=lambda n: (n.lineno, n.col_offset)):
        if isinstance(node, ast.Import):
            own += [a.name for a in node.names if a.name.split(".")[0] in ("sbi_ui", "sbi_core")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("sbi_ui", "sbi_core"):
            own.append(node.module)
    assert own and own[0] == "sbi_ui.preload", own


def test_a_page_module_that_fails_to_import_does_not_stop_the_others(tmp_path, caplog):
    from sbi_ui import preload

    (tmp_path / "a.py").write_text("from sbi_ui.format import fmt_duration\nfrom sbi_ui.no_such_module import x\n")
    assert preload.page_modules(tmp_path) == ["sbi_ui.format", "sbi_ui.no_such_module"]
    with caplog.at_level("WARNING", logger="sbi_ui.preload"):
        loaded = preload.preload(tmp_path)
    assert "sbi_ui.format" in loaded and "sbi_ui.no_such_module" not in loaded
    assert "could not preload sbi_ui.no_such_module" in caplog.text
    assert preload.page_modules() and all(m.startswith(("sbi_ui", "sbi_core")) for m in preload.page_modules())

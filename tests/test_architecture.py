"""The architecture of docs/architecture.md, held: layers, a light facade, and old checkpoints.

* ``lint-imports`` keeps the layers contract of ``pyproject.toml`` (imports point only downward);
* every module of sbi_core imports on its own in a fresh interpreter (no import cycle hides
  behind the order in which a test session happened to import them);
* ``from sbi_core import RunSpec``, the run store, the job manager and ``python -m sbi_core
  --help`` load no torch, and every public name of the facade resolves;
* a checkpoint pickled before the regroup (under the old module paths) still loads and resumes.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import sbi_core
from sbi_core.run.checkpoint import MOVED_MODULES, Checkpoint, moved

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def _python(code: str, tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that imports this clone (not an installed copy), cwd ``tmp_path``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, *args, "-c", code] if code else [sys.executable, *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=timeout)


# ---- the layers -------------------------------------------------------------------------------
def test_lint_imports_keeps_the_layers_contract(tmp_path):
    pytest.importorskip("importlinter")
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([exe, "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


def _modules() -> list[str]:
    names = []
    for path in sorted((ROOT / "sbi_core").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def test_at_most_eight_plain_modules_at_the_top_of_sbi_core():
    plain = sorted(p.name for p in (ROOT / "sbi_core").glob("*.py"))
    assert len(plain) <= 8, plain


_EACH_ALONE = textwrap.dedent('''
    """Import each module given on the command line in a fresh process of its own.

    The third-party modules sbi_core imports (by their full dotted names: ``scipy.stats``, not just
    ``scipy``, so no child loads them again; 33 -> 12 CPU-seconds) are loaded once, here, before
    any module of sbi_core; each child is forked from this process and imports one sbi_core module first,
    so a cycle among sbi_core's modules (or a module that needs another imported before it)
    fails in that child, whatever order a test session would import them in.
    """
    import ast, importlib, multiprocessing, pathlib, sys, traceback

    root = pathlib.Path(sys.argv[1])
    modules = sys.argv[2:]
    external = set()
    for path in (root / "sbi_core").rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                external.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                external.add(node.module)
    for name in sorted(n for n in external if n.split(".")[0] not in {"sbi_core", "__future__"}):
        try:
            importlib.import_module(name)
        except Exception:
            pass
    assert not any(m == "sbi_core" or m.startswith("sbi_core.") for m in sys.modules)

    def one(name):
        try:
            importlib.import_module(name)
            return None
        except BaseException:
            return name + ":\\n" + traceback.format_exc(limit=-6)

    if __name__ == "__main__":
        with multiprocessing.get_context("fork").Pool(2, maxtasksperchild=1) as pool:
            failures = [f for f in pool.map(one, modules, chunksize=1) if f]
        print("\\n".join(failures))
        print(f"{len(modules)} modules, {len(failures)} failed")
        sys.exit(1 if failures else 0)
''')


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="forks a child per module")
def test_each_module_imports_on_its_own_in_a_fresh_process(tmp_path):
    script = tmp_path / "each_alone.py"
    script.write_text(_EACH_ALONE)
    modules = [m for m in _modules() if m != "sbi_core.__main__"]
    res = _python("", tmp_path, str(script), str(ROOT), *modules, timeout=300)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]
    assert f"{len(modules)} modules, 0 failed" in res.stdout


# ---- the light facade -------------------------------------------------------------------------
@pytest.mark.parametrize("statement", [
    "from sbi_core import RunSpec",
    "import sbi_core.store.runs",
    "import sbi_core.jobs.manager",
    "import sbi_core.uploads.quota",
])
def test_what_needs_no_torch_loads_none(tmp_path, statement):
    code = f"import sys\n{statement}\nprint(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'nflows')))"
    res = _python(code, tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "[]", f"{statement} loads {res.stdout[:300]}"


def test_the_command_line_answers_help_without_torch(tmp_path):
    code = ("import runpy, sys\nsys.argv = ['sbi_core', '--help']\n"
            "try:\n    runpy.run_module('sbi_core', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    res = _python(code, tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "RunSpec JSON file" in res.stdout and res.stdout.strip().endswith("False")


def test_every_public_name_resolves_and_is_listed():
    for name in sbi_core.__all__:
        assert getattr(sbi_core, name) is not None, name
    assert {"RunSpec", "Prior", "NPE", "run_sequential", "get_simulator", "Cancelled"} <= set(sbi_core.__all__)
    assert sbi_core.plots.__name__ == "sbi_core.plots"  # packages load on first use too
    with pytest.raises(AttributeError):
        sbi_core.no_such_name  # noqa: B018


# ---- checkpoints pickled before the move ------------------------------------------------------
def test_the_table_of_moved_modules_names_modules_that_exist():
    for new in MOVED_MODULES.values():
        __import__(new)
    assert moved("sbi_core.training", "Cancelled") == "sbi_core.errors"
    assert moved("sbi_core.training", "TrainResult") == "sbi_core.nn.training"
    assert moved("sbi_core.stats.priors", "Prior") == "sbi_core.stats.priors"  # new paths pass through


def _pickled_under(old_paths: dict[type, str], obj) -> bytes:
    """``obj`` as torch.save writes it, with the classes in ``old_paths`` named by their old modules."""
    import io

    saved = {cls: cls.__module__ for cls in old_paths}
    aliases = {old: sys.modules[cls.__module__] for cls, old in old_paths.items()}
    try:
        for cls, old in old_paths.items():
            cls.__module__ = old
        for old, module in aliases.items():
            sys.modules.setdefault(old, module)
        buf = io.BytesIO()
        torch.save(obj, buf)
        return buf.getvalue()
    finally:
        for cls, module in saved.items():
            cls.__module__ = module
        for old, module in aliases.items():
            if sys.modules.get(old) is module:
                del sys.modules[old]


def test_a_pickle_naming_old_modules_loads_into_the_new_ones():
    from sbi_core.stats.priors import Marginal, Prior
    from sbi_core.stats.seeds import SeedPlan

    prior = Prior.from_spec([{"name": "a", "dist": "uniform", "low": 0, "high": 1}])
    checkpoint = Checkpoint(round=0, estimator={"prior": prior, "plan": SeedPlan(3)}, last=None,
                            generators={"g_theta": torch.Generator().manual_seed(1).get_state()})
    data = _pickled_under({Checkpoint: "sbi_core.checkpoint", Prior: "sbi_core.priors",
                           Marginal: "sbi_core.priors", SeedPlan: "sbi_core.seeds"}, checkpoint)
    assert b"sbi_core.priors" in data and b"sbi_core.stats.priors" not in data
    for old in ("sbi_core.checkpoint", "sbi_core.priors", "sbi_core.seeds"):
        assert old not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        torch.load(__import__("io").BytesIO(data), weights_only=False)  # plain pickle: the old module is gone
    back = Checkpoint.from_bytes(data)
    assert isinstance(back, Checkpoint) and isinstance(back.estimator["prior"], Prior)
    assert back.estimator["prior"] == prior and back.estimator["plan"].seed_of("theta") == SeedPlan(3).seed_of("theta")


@pytest.mark.slow
def test_a_checkpoint_written_before_the_regroup_resumes_to_the_same_round():
    """tests/data/checkpoint_before_regroup.pt: round 0 of an SNPE run on two moons, written by sbi_core
    before its modules moved (``Checkpoint.to_bytes`` under ``sbi_core.checkpoint``, ``sbi_core.flows``,
    ...), with round 1 of the uninterrupted run beside it (``..._round1.pt``). Written by::

        run_sequential(sim, sim.prior, sim.default_observation, method="snpe", num_rounds=2,
                       simulations_per_round=100, max_epochs=2, num_posterior_samples=50, seed=3,
                       hidden_features=8, num_transforms=1, checkpoints=True)  # torch.set_num_threads(1)
    """
    from sbi_core.run.loop import run_sequential
    from sbi_core.simulators import get_simulator

    data = (DATA / "checkpoint_before_regroup.pt").read_bytes()
    assert b"sbi_core.flows" in data and b"sbi_core.checkpoint" in data  # the old paths, as written
    checkpoint = Checkpoint.from_bytes(data)
    assert checkpoint.round == 0 and type(checkpoint.estimator).__module__ == "sbi_core.methods.npe"
    expected = torch.load(DATA / "checkpoint_before_regroup_round1.pt", weights_only=True)
    sim = get_simulator("two_moons")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        resumed = run_sequential(sim, sim.prior, sim.default_observation, method="snpe", num_rounds=2,
                                 simulations_per_round=100, max_epochs=2, num_posterior_samples=50, seed=3,
                                 hidden_features=8, num_transforms=1, resume=checkpoint)
    finally:
        torch.set_num_threads(threads)
    assert [r.index for r in resumed.rounds] == [0, 1]
    # drawn from the old round's posterior: the same draws, to the last bits that another CPU's kernels
    # round differently (the file was written on an Intel machine; an AMD one differs by about 2e-7)
    assert torch.allclose(resumed.rounds[1].theta, expected["theta"], atol=1e-5, rtol=0)
    assert torch.allclose(resumed.rounds[1].posterior_samples, expected["posterior_samples"], atol=1e-4)


def test_no_sbi_core_module_imports_its_own_package_inside_a_function_without_saying_why():
    """Deferred imports of sbi_core's own modules are the few that keep torch out of a light process,
    each marked ``deferred`` in a comment (see docs/architecture.md)."""
    unmarked = []
    for path in sorted((ROOT / "sbi_core").rglob("*.py")):
        lines = path.read_text().split("\n")
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for sub in ast.walk(node):
                    if isinstance(sub, (ast.Import, ast.ImportFrom)):
                        module = sub.module if isinstance(sub, ast.ImportFrom) else sub.names[0].name
                        if module and module.startswith("sbi_core") and "deferred" not in lines[sub.lineno - 1]:
                            unmarked.append(f"{path.relative_to(ROOT)}:{sub.lineno}")
    assert not unmarked, unmarked

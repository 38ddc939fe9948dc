"""Test-wide settings: a bounded torch thread count, a temporary run store, the order in which the
modules are handed to the xdist workers, and the app server and Chromium that the browser-test modules
of a test process share (``shared_server``, ``shared_browser``)."""

import functools
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

# One torch thread in the test process: the small networks here gain little
# from a second thread, and worker processes started by the tests (jobs,
# browser) need the other core; oversubscribed torch threads spin and slow
# every training down by an order of magnitude.
torch.set_num_threads(1)

# Streamlit's AppTest scans every installed distribution for (v2) component manifests each time a new
# AppTest runs its first script (0.17 CPU-s here, and the suite makes hundreds of AppTests: about a
# third of the CPU of the AppTest modules). What is installed does not change during a test session,
# so the scan is done once per test process. The app's own server scans once, at its start.
import streamlit.components.v2.manifest_scanner as _manifest_scanner  # noqa: E402

_manifest_scanner.scan_component_manifests = functools.cache(_manifest_scanner.scan_component_manifests)

# One Dask worker for every app server a test starts (the app's default is one per core): the
# suite runs several servers at once on two cores, and each worker imports torch.
os.environ.setdefault("SBI_DASK_WORKERS", "1")


@pytest.fixture(autouse=True)
def _same_global_rng_state_for_every_test():
    """Every test starts from the same global torch and numpy RNG state.

    A test that draws without its own generator then gives the same result on
    its own, in the full suite and in any order (library code never reseeds
    global state; only the tests do, here).
    """
    torch.manual_seed(20261126)
    np.random.seed(20261126)


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    """A fresh run-store folder, also exported as SBI_STORE_DIR for code that reads it."""
    path = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(path))
    return path


# ---- the order of the modules ----------------------------------------------------------------
# ``--dist loadfile`` hands whole modules to the two workers, in the collection order as pytest.ini
# says ``--no-loadscope-reorder`` (xdist's own order, most tests first, put the browser modules, one
# to seven costly tests each, near the end with non-browser modules between them, so each worker
# stopped and restarted its app server between browser modules).
# Here the browser modules come first, then the rest, each group costliest first by the CPU-seconds
# measured in tests/durations.json (a module not measured yet counts as the median module): the
# longest work starts first and the short modules fill the end (longest processing time first).
DURATIONS = Path(__file__).with_name("durations.json")
_SHARED: dict = {}


def _module_of(item) -> str:
    return item.nodeid.split("::")[0]


def _measured_cpu_seconds() -> dict:
    try:
        return dict(json.loads(DURATIONS.read_text())["cpu_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _borrows_shared(item) -> bool:
    """Whether ``item`` uses the shared app server or browser."""
    return bool({"shared_server", "shared_browser"} & set(getattr(item, "fixturenames", ())))


def _uses_browser(item) -> bool:
    return item.get_closest_marker("browser") is not None or _borrows_shared(item)


def pytest_collection_modifyitems(items):
    """Order the modules (browser modules first, then costliest first) and note the modules that
    borrow the shared server or browser (see pytest_runtest_teardown)."""
    _SHARED["borrowers"] = {item.path for item in items if _borrows_shared(item)}
    modules: dict[str, list] = {}
    for item in items:
        modules.setdefault(_module_of(item), []).append(item)
    cost = _measured_cpu_seconds()
    default = statistics.median(cost.values()) if cost else 0.0
    browser = {m for m, its in modules.items() if any(_uses_browser(it) for it in its)}
    order = sorted(modules, key=lambda m: (m not in browser, -cost.get(m, default), m))
    items[:] = [item for m in order for item in modules[m]]


# ``SBI_TEST_CPU_OUT=tests/durations.json python -m pytest -n0``: measure each module's CPU-seconds (the
# whole machine's busy time while its tests run, so every process a test starts counts; one module at
# a time, on a quiet machine) and write them there for the order above (modules not run keep their value).
_CPU: dict = {}


def _busy_seconds() -> float:
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Add the machine's busy CPU-seconds during ``item`` to its module (with ``SBI_TEST_CPU_OUT``)."""
    if not os.environ.get("SBI_TEST_CPU_OUT"):
        yield
        return
    start = _busy_seconds()
    yield
    _CPU[_module_of(item)] = _CPU.get(_module_of(item), 0.0) + _busy_seconds() - start


def _write_cpu_seconds(config) -> None:
    out = os.environ.get("SBI_TEST_CPU_OUT")
    if not out or not _CPU:
        return
    if hasattr(config, "workerinput"):
        print("conftest: SBI_TEST_CPU_OUT measures one module at a time: run it with -n0", file=sys.stderr)
        return
    path = Path(out)
    try:
        old = json.loads(path.read_text())
        about, seconds = str(old.get("about", "")), dict(old.get("cpu_seconds", {}))
    except (OSError, ValueError, AttributeError, TypeError):
        about, seconds = "", {}
    seconds.update((m, round(s, 1)) for m, s in _CPU.items())  # the modules run now; the others as measured before
    ranked = dict(sorted(seconds.items(), key=lambda kv: -kv[1]))
    path.write_text(json.dumps({"about": about, "measured": time.strftime("%Y-%m-%d"), "cpu_seconds": ranked},
                               indent=1) + "\n")


# ---- the browser tests' shared app server and browser ---------------------------------------
# One ``streamlit run app.py`` (default environment, a fresh store) and one Chromium per test process
# (each xdist worker, which with ``--dist loadfile`` runs whole modules one after another), made when
# the first module asks for them: a server's first page costs about 13 CPU-seconds (Streamlit, torch
# and its Dask cluster's worker importing torch). A module borrows them through its own module
# fixtures (``server``, ``browser``: ``shared_server.lend(__name__)``, ``shared_browser.lend()``, see
# tests/browser_support.py); modules that need an environment of their own or a server to kill keep a
# private one. An idle server still takes about a tenth of a core, so both are put to rest (stopped,
# started again on the next loan) when the next test is in no browser module: the browser modules come
# first in the collection order (pytest_collection_modifyitems), which --dist loadfile hands out in,
# so that is after a worker's last one.


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """Put the shared server and browser to rest when the next test is in no browser module."""
    yield
    if nextitem is None or nextitem.path in _SHARED.get("borrowers", ()) or nextitem.get_closest_marker("browser"):
        return  # the end of the session (the fixtures stop them), or a browser module next
    if _SHARED.get("server") is not None:
        _SHARED["server"].rest()
    if _SHARED.get("browser") is not None:
        _SHARED["browser"].close()


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory):
    """The :class:`browser_support.SharedAppServer` of this test process (started on its first loan)."""
    from browser_support import SharedAppServer

    server = SharedAppServer(lambda: tmp_path_factory.mktemp("shared_app"))
    _SHARED["server"] = server
    try:
        yield server
    finally:
        _SHARED.pop("server", None)
        server.stop()


@pytest.fixture(scope="session")
def shared_browser():
    """The :class:`browser_support.SharedBrowser` of this test process (launched on its first loan)."""
    from browser_support import SharedBrowser

    browser = SharedBrowser()
    _SHARED["browser"] = browser
    try:
        yield browser
    finally:
        _SHARED.pop("browser", None)
        browser.close()


@pytest.fixture(scope="module")
def server(shared_server, request):
    """The shared app server, lent to this module (its runs and checks still active are ended after it).
    A browser module that needs a server of its own (its own environment, a server to kill) defines
    its own ``server`` fixture, which overrides this one."""
    with shared_server.lend(request.module.__name__) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser(shared_browser, server):
    """The shared Chromium, lent to this module (overridden where a module defines its own)."""
    with shared_browser.lend() as b:
        yield b


@pytest.fixture(autouse=True)
def _shared_server_still_running(request):
    """A test on the shared server fails at once, with the server's log, once that server has exited
    (instead of waiting out every page's timeout); the next module gets a new server."""
    server = _SHARED.get("server")
    if server is not None and "shared_server" in request.fixturenames and server.exited() is not None:
        pytest.fail(f"the shared app server exited with code {server.exited()} (its log: the section "
                    "'shared app server' of this report)", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test on the shared server reports the server's state and the end of its log."""
    outcome = yield
    report = outcome.get_result()
    server = _SHARED.get("server")
    if report.failed and server is not None and "shared_server" in getattr(item, "fixturenames", ()):
        try:
            report.sections.append(("shared app server", server.describe()))
        except Exception as err:  # noqa: BLE001 - the report itself must not fail
            report.sections.append(("shared app server", f"(not described: {err!r})"))


def pytest_sessionfinish(session, exitstatus):
    """Leave nothing behind that would keep this process from exiting.

    Python joins every non-daemon child process (``multiprocessing``'s atexit)
    and every non-daemon thread before it exits; one stuck child of a failed
    test once kept a finished suite alive until CI's time ran out. Children
    still alive here are named on stderr and killed.
    """
    import psutil

    _write_cpu_seconds(session.config)
    if getattr(session.config.option, "numprocesses", None) and not hasattr(session.config, "workerinput"):
        return  # the xdist controller: its children are the workers, each of which cleans up here itself
    left = [p for p in psutil.Process().children(recursive=True) if not _multiprocessing_helper(p)]
    if left:
        names = ", ".join(_describe(p) for p in left)
        print(f"\nconftest: killing {len(left)} child process(es) left by the tests: {names}", file=sys.stderr)
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(left, timeout=10)


def _describe(proc) -> str:
    """``pid command`` of a child process, or the pid alone once it is gone."""
    import psutil

    try:
        return f"{proc.pid} {' '.join(proc.cmdline()[:3])}"
    except psutil.Error:
        return str(proc.pid)


def _multiprocessing_helper(proc) -> bool:
    """The fork server and resource tracker: they exit by themselves with this process."""
    import psutil

    try:
        return any("from multiprocessing." in part for part in proc.cmdline())
    except psutil.Error:
        return True

"""Helpers for the browser tests and the UI latency benchmark.

* :class:`AppServer` starts ``streamlit run app.py`` on a free port with its own
  temporary run store (``SBI_STORE_DIR``), waits for ``/_stcore/health`` and
  tears everything down again: the server's process group and every
  ``python -m sbi_core.jobs.worker`` process whose ``--store`` is that store (the
  workers run in their own sessions, so killing the server leaves them alive).
* :func:`launch_browser` starts Debian's Chromium through Playwright.
* :class:`SharedAppServer` and :class:`SharedBrowser`: the one app server and the one
  Chromium that the browser-test modules of a test process share (``tests/conftest.py``'s
  session fixtures ``shared_server`` and ``shared_browser``), lent to one module at a
  time; :func:`end_active_jobs` ends what a module left running in the shared store.
* Small page helpers: wait for Streamlit to finish a script run, read a plotly
  chart's data, take a screenshot when a check fails.

Used by ``tests/test_browser*.py`` and ``bench/ui_latency.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Callable, Iterator, Optional

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DEMO_LABEL = "Start demo: two moons, 4 sequential rounds"

# JavaScript: the plotly graph div inside a keyed chart container (or null).
_PLOT_JS = "(key) => document.querySelector(`.st-key-${key} .js-plotly-plot`)"


def chromium_available() -> bool:
    return os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------
def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [p.decode(errors="replace") for p in raw.split(b"\0") if p]


def _same_path(a: str, b: Path) -> bool:
    try:
        return Path(a).expanduser().resolve() == b.resolve()
    except OSError:
        return False


def _parent(pid: int) -> Optional[int]:
    """The parent pid of ``pid`` (None when it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def worker_pids(store_dir: Path, parent: Optional[int] = None) -> list[int]:
    """Pids of ``sbi_core.jobs.worker`` processes whose ``--store`` is ``store_dir``
    (only the children of ``parent`` if given: the workers a test's own ``JobManager`` started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        args = _cmdline(int(entry.name))
        if "sbi_core.jobs.worker" not in args:
            continue
        if parent is not None and _parent(int(entry.name)) != parent:
            continue
        for k, a in enumerate(args):
            value = None
            if a == "--store" and k + 1 < len(args):
                value = args[k + 1]
            elif a.startswith("--store="):
                value = a.split("=", 1)[1]
            if value is not None and _same_path(value, store_dir):
                found.append(int(entry.name))
                break
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie counts as gone
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _signal_group_or_pid(pid: int, sig: int) -> None:
    try:
        if os.getpgid(pid) == pid:  # the worker leads its own group (start_new_session)
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except OSError:  # gone already, or not ours
        pass


def kill_workers(store_dir: Path, grace: float = 3.0, parent: Optional[int] = None) -> list[int]:
    """SIGTERM, then SIGKILL, every worker of ``store_dir`` (its process group if it leads one);
    with ``parent``, only that process's children (see :func:`worker_pids`)."""
    pids = worker_pids(store_dir, parent)
    for pid in pids:
        _signal_group_or_pid(pid, signal.SIGTERM)
    end = time.monotonic() + grace
    while time.monotonic() < end and any(_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            _signal_group_or_pid(pid, signal.SIGKILL)
    return pids


class AppServer:
    """``streamlit run app.py`` on a free port with a private run store."""

    def __init__(self, store_dir: Path, log_path: Optional[Path] = None, port: Optional[int] = None) -> None:
        self.store_dir = Path(store_dir)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = Path(log_path) if log_path else self.store_dir.parent / "streamlit.log"
        self.port = port or free_port()
        self.proc: Optional[subprocess.Popen] = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict:
        env = dict(os.environ)
        env["SBI_STORE_DIR"] = str(self.store_dir)
        env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def start(self, timeout: float = 90.0) -> "AppServer":
        cmd = [
            sys.executable, "-m", "streamlit", "run", "app.py",
            "--server.port", str(self.port),
            "--server.address", "127.0.0.1",
            "--server.headless", "true",
            "--server.fileWatcherType", "none",
            "--browser.gatherUsageStats", "false",
        ]
        self._log = open(self.log_path, "ab", buffering=0)
        self.proc = subprocess.Popen(
            cmd, cwd=str(ROOT), env=self.env(), stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200 and r.read().strip() == b"ok":
                        return
            except (urllib.error.URLError, OSError) as err:
                last = err
            time.sleep(0.2)
        raise TimeoutError(f"streamlit not healthy after {timeout} s ({last}):\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server (its whole process group), then the run store's workers.

        A test's server has nothing left to save when it stops (the store is SQLite, written as it
        goes), so it gets half a second for SIGTERM: its graceful exit (Streamlit's, then its Dask
        cluster's at exit) took 5 s of every browser module, 15 times over in the suite."""
        if self.proc is not None and self.proc.poll() is None:
            for sig, grace in ((signal.SIGTERM, 0.5), (signal.SIGKILL, 2.0)):
                try:
                    os.killpg(self.proc.pid, sig)  # start_new_session: group id == pid
                except (ProcessLookupError, PermissionError):
                    break
                try:
                    self.proc.wait(grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self.proc is not None:
            with contextlib.suppress(Exception):
                self.proc.wait(1)
        kill_workers(self.store_dir)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "AppServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def browser_test_marks(timeout_s: int) -> list:
    """The ``pytestmark`` of a browser-test module: browser + slow, skipped without Chromium."""
    import pytest

    return [
        pytest.mark.browser,
        pytest.mark.slow,
        pytest.mark.skipif(not chromium_available(), reason="Chromium not found at /usr/bin/chromium "
                           "(apt-get install chromium); the browser tests need it"),
        pytest.mark.timeout(timeout_s),
    ]


def served_app(tmp_path_factory, name: str) -> Iterator["AppServer"]:
    """Body of a module fixture: the app on a fresh store under a temp folder called ``name``."""
    root = tmp_path_factory.mktemp(name)
    with AppServer(root / "store", log_path=root / "streamlit.log") as srv:
        yield srv


# ---------------------------------------------------------------------------
# one app server for the modules of a test process
# ---------------------------------------------------------------------------
def end_active_jobs(store_dir: Path, timeout: float = 30.0) -> list[str]:
    """Ask every queued or running run of the store, and every run's active checks, to stop, and wait
    up to ``timeout`` seconds for them to end; returns what is still active then (empty when nothing is).

    Through the store, as :meth:`JobManager.cancel <sbi_core.jobs.manager.JobManager.cancel>` asks
    (the job kinds' cancel flag; a queued job is recorded cancelled at once, a running one stops by
    itself within an epoch or a step), whoever carries the job out: the server's Dask cluster, the
    test process's own or a worker process. Nothing is killed here (a Dask worker carries other jobs);
    jobs whose carrier is gone are recorded ended by the store's reapers.
    """
    from sbi_core.jobs.executor import CHECKS, RUN
    from sbi_core.store.runs import RunStore

    store = RunStore(store_dir)
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = []
            for info in store.list_runs(limit=None, status=("queued", "running")):
                RUN.request_cancel(store, info.id)
                if not RUN.finish(store, info.id, "cancelled", only_from=("queued",)):
                    left.append(f"run {info.id} ({info.title})")
            for info in store.list_runs(limit=None):
                check = store.get_check(info.id)
                if check is not None and check.is_active:
                    CHECKS.request_cancel(store, info.id)
                    if not CHECKS.finish(store, info.id, "cancelled", only_from=("queued",)):
                        left.append(f"checks of run {info.id}")
            if not left or time.monotonic() >= deadline:
                return left
            with contextlib.suppress(Exception):  # a job whose process is gone: recorded ended
                store.reap_stale()
                store.reap_stale_checks()
            time.sleep(0.25)
    finally:
        store.close()


class SharedAppServer(AppServer):
    """The app server (default environment) that the browser-test modules of one test process share.

    ``tests/conftest.py``'s session fixture ``shared_server`` makes one; it starts on the first
    :meth:`lend` and stops at the end of the session. Each module borrows it for its duration
    (:meth:`lend`, in the module's ``server`` fixture): a server that has exited or stopped answering
    is replaced by a new one on a fresh store (``new_root()``: a new temporary folder), so a crash
    in one module does not fail the modules after it; when the module ends, every run and check still
    active in the store is asked to stop (:func:`end_active_jobs`) and the ``sbi_core.jobs.worker``
    processes the test process started for this store are killed. Runs the module finished stay in the
    store: a later module sees them (ownerless runs are listed for every browser).
    """

    def __init__(self, new_root: Callable[[], Path]) -> None:
        self._new_root = new_root
        root = new_root()
        super().__init__(root / "store", log_path=root / "streamlit.log")
        self.borrower: Optional[str] = None  # the module that has it now
        self.replaced: list[str] = []  # why each earlier server of this session was given up

    def exited(self) -> Optional[int]:
        """The exit code of a server that has exited (None while it runs or before it started)."""
        return None if self.proc is None else self.proc.poll()

    def answers(self, timeout: float = 15.0) -> bool:
        """Whether the server runs and answers its health check within ``timeout`` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return False
        try:
            self.wait_healthy(timeout)
        except (RuntimeError, TimeoutError):
            return False
        return True

    def describe(self, chars: int = 4000) -> str:
        """Its address, store and state, and the end of its log: for a failed test's report."""
        code = self.exited()
        state = ("not started" if self.proc is None else "running" if code is None
                 else f"EXITED with code {code}")
        lines = [f"{self.url} (pid {self.proc.pid if self.proc else '-'}, {state}), store {self.store_dir}"]
        lines += [f"an earlier server of this session: {why}" for why in self.replaced]
        lines.append(f"log {self.log_path}, its end:")
        return "\n".join(lines) + "\n" + self.log_tail(chars)

    def _renew(self, why: str) -> None:
        """Stop this server for good and set up a fresh store, log and port for the next start."""
        self.replaced.append(f"{why}; its log: {self.log_path}")
        self.stop()
        root = self._new_root()
        self.store_dir = root / "store"
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = root / "streamlit.log"
        self.port = free_port()
        self.proc = None

    def rest(self) -> None:
        """Stop the server while no module has it and none is expected soon; the next :meth:`lend` starts
        it again on the same store. An idle server is not free: its Streamlit loop and its Dask cluster's
        heartbeats take about a tenth of a core, for as long as the test process runs other tests."""
        if self.borrower is not None or self.proc is None:
            return
        self.stop()
        self.proc = None
        self.port = free_port()

    @contextlib.contextmanager
    def lend(self, borrower: str) -> Iterator["SharedAppServer"]:
        """The server, healthy, for ``borrower`` (a module's name); ends the jobs it left when it is given back."""
        if self.proc is not None and not self.answers():
            code = self.exited()
            why = (f"exited with code {code}" if code is not None else "stopped answering") + \
                  (f" while {self.borrower} had it" if self.borrower else "")
            self._renew(why)
            warnings.warn(f"the shared app server {why}; {borrower} gets a new one on a fresh store", stacklevel=3)
        if self.proc is None:
            self.start()  # raises with the log's end if it does not come up
        self.borrower = borrower
        store_dir = self.store_dir
        try:
            yield self
        finally:
            self.borrower = None
            left = end_active_jobs(store_dir)
            kill_workers(store_dir, parent=os.getpid())
            if left:
                warnings.warn(f"{borrower} left jobs in the shared store that did not end when asked to: "
                              + ", ".join(left), stacklevel=3)


# ---------------------------------------------------------------------------
# the browser
# ---------------------------------------------------------------------------
@contextlib.contextmanager
def launch_browser() -> Iterator:
    """A Playwright Chromium browser (Debian's binary, headless)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class SharedBrowser:
    """One Playwright Chromium for a whole test session, lent to one module at a time (``tests/conftest.py``'s
    session fixture ``shared_browser``; a module's ``browser`` fixture borrows it with :meth:`lend`).

    Playwright's sync API marks its asyncio loop as this thread's running loop between its calls
    (``asyncio._set_running_loop``, :mod:`playwright._impl._greenlets`); while it is marked, code
    that runs a loop of its own (``asyncio.run``, a Streamlit ``AppTest``, another ``launch_browser``)
    refuses to start. So while no module has it, the browser is parked: the mark is taken off, and
    put back when the next module borrows it (exactly the state of the thread before and during a
    module that launches a browser of its own). A browser that is no longer connected (Chromium or
    the driver died) is replaced. Contexts a module leaves open are closed when it gives it back,
    so no page of one module keeps a session open on the server during the next.
    """

    def __init__(self) -> None:
        self._cm = None
        self._browser = None
        self._loop = None
        self.launches = 0

    def _park(self) -> None:
        if self._loop is not None and asyncio._get_running_loop() is self._loop:
            asyncio._set_running_loop(None)

    def _unpark(self) -> None:
        running = asyncio._get_running_loop()
        if running is not None and running is not self._loop:
            raise RuntimeError("the shared browser cannot be used while another asyncio loop runs in this thread")
        if self._loop is not None:
            asyncio._set_running_loop(self._loop)

    def _discard(self) -> None:
        cm, self._cm, self._browser = self._cm, None, None
        try:
            if cm is not None:
                with contextlib.suppress(Exception):
                    cm.__exit__(None, None, None)
        finally:
            self._park()
            self._loop = None

    @contextlib.contextmanager
    def lend(self) -> Iterator:
        """The browser (Playwright's), connected, for one module."""
        self._unpark()
        try:
            if self._browser is not None and not self._browser.is_connected():
                self._discard()
            if self._browser is None:
                if asyncio._get_running_loop() is not None:
                    raise RuntimeError("an asyncio loop runs in this thread: Playwright's sync API cannot start")
                cm = launch_browser()
                self._browser = cm.__enter__()
                self._cm = cm
                self._loop = asyncio._get_running_loop()  # Playwright's, marked running between its calls
                self.launches += 1
            yield self._browser
        finally:
            if self._browser is not None:
                for context in list(self._browser.contexts):
                    with contextlib.suppress(Exception):
                        context.close()
            self._park()

    def close(self) -> None:
        """Close the browser and stop Playwright (at the end of the session)."""
        if self._cm is None:
            return
        with contextlib.suppress(RuntimeError):
            self._unpark()
        self._discard()


def new_page(browser, base_url: str, timeout_ms: int = 30_000):
    """A fresh context (a new Streamlit session) and page, 1400x1000."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(timeout_ms)
    page = context.new_page()
    return page


def wait_idle(page, timeout_ms: int = 45_000) -> None:
    """Wait until the app is connected and no script run is going on."""
    page.wait_for_function(
        """() => {
            const app = document.querySelector('[data-testid="stApp"]');
            return app && app.getAttribute('data-test-connection-state') === 'CONNECTED'
                && app.getAttribute('data-test-script-state') === 'notRunning';
        }""",
        timeout=timeout_ms,
    )


def goto(page, path: str, timeout_ms: int = 45_000) -> None:
    """Open ``path`` and wait for the first script run to finish."""
    page.goto(path, wait_until="domcontentloaded")
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    wait_idle(page, timeout_ms)


def plot_info(page, key: str) -> Optional[dict]:
    """Summary of the plotly chart in ``.st-key-<key>``: title, trace names, lengths."""
    return page.evaluate(
        f"""(key) => {{
            const gd = ({_PLOT_JS})(key);
            if (!gd || !gd.data) return null;
            const t = gd.layout && gd.layout.title;
            return {{
                title: t ? (typeof t === 'string' ? t : t.text) : null,
                names: gd.data.map(d => d.name || ''),
                lengths: gd.data.map(d => (d.x ? d.x.length : 0)),
                x0: gd.data.length && gd.data[0].x && gd.data[0].x.length ? gd.data[0].x[0] : null,
            }};
        }}""",
        key,
    )


def drawn_points(page, key: str) -> Optional[dict]:
    """What the plotly chart in ``.st-key-<key>`` really draws, read from its SVG.

    Returns ``{"names": [...], "points": [...], "opacity": [...]}`` with one entry
    per trace of the figure (``gd.data`` order): its legend name, the number of
    marker elements (``path.point``) it has on screen (0 when plotly drew no
    group for it, as for a trace emptied by an animation frame, or when it is
    not a scatter trace) and its first marker's opacity (``None`` without
    markers); ``None`` when no chart is there. Each SVG trace group is matched
    to its trace by the data plotly binds to it, so subplots and traces left
    out of the drawing are counted right. Counting markers, not ``gd.data``, is
    what catches a frame that leaves stale points behind.
    """
    return page.evaluate(
        f"""(key) => {{
            const gd = ({_PLOT_JS})(key);
            if (!gd) return null;
            const data = gd.data || [];
            const groups = {{}};
            for (const g of gd.querySelectorAll('.scatterlayer g.trace')) {{
                const cd = g.__data__, t = cd && cd[0] && cd[0].trace;
                if (t && t.index !== undefined) groups[t.index] = g;
            }}
            const first = (i) => groups[i] ? groups[i].querySelector('path.point') : null;
            return {{
                names: data.map(d => d.name || ''),
                points: data.map((d, i) => groups[i] ? groups[i].querySelectorAll('path.point').length : 0),
                opacity: data.map((d, i) => first(i) ? parseFloat(getComputedStyle(first(i)).opacity) : null),
            }};
        }}""",
        key,
    )


def drawn_traces(page, key: str) -> Optional[list[dict]]:
    """The scatter traces the plotly chart in ``.st-key-<key>`` really draws, read from its SVG.

    One entry per drawn trace group (``.scatterlayer .trace``), in drawing order: ``name`` (the
    trace's legend name), ``fill`` (whether the group draws a filled area with a non-empty
    outline: a band of a fan chart; plotly draws a ``tonexty`` fill in the group of the trace
    *before* the filled one), ``line`` (whether it draws a line with a non-empty path),
    ``segments`` (how many separate line paths it draws: a trace of several series joined with
    gaps draws one per series), ``dashed`` (its line's dash pattern is not solid), ``points`` (its
    ``path.point`` markers) and ``d`` (its first line's path, to compare two lines); ``None`` when no
    chart is there.
    """
    return page.evaluate(
        f"""(key) => {{
            const gd = ({_PLOT_JS})(key);
            if (!gd) return null;
            const drawn = (el) => !!el && (el.getAttribute('d') || '').replace(/[MZ\\s]/g, '').length > 0;
            return Array.from(gd.querySelectorAll('.scatterlayer g.trace')).map(g => {{
                const cd = g.__data__, t = cd && cd[0] && cd[0].trace;
                const lines = Array.from(g.querySelectorAll('path.js-line')).filter(drawn);
                const line = lines.length ? lines[0] : null;
                const dash = line ? getComputedStyle(line).strokeDasharray : 'none';
                return {{
                    name: t ? (t.name || '') : '',
                    fill: drawn(g.querySelector('path.js-fill')),
                    line: lines.length > 0,
                    segments: lines.length,
                    dashed: !!line && dash !== 'none' && dash !== '',
                    points: g.querySelectorAll('path.point').length,
                    d: line ? line.getAttribute('d') || '' : '',
                }};
            }});
        }}""",
        key,
    )


def drawn_bars(page, key: str) -> Optional[dict]:
    """``{trace name: [area of each bar, in px²]}`` of the bars the plotly chart in ``.st-key-<key>``
    draws (``.barlayer .trace``; a bin with nothing in it has area 0); ``None`` without a chart.

    A histogram of densities over shared bins covers the same area whatever its count, so the areas
    of one trace's bars, divided by another's total, are the shares of its items in each bin.
    """
    return page.evaluate(
        f"""(key) => {{
            const gd = ({_PLOT_JS})(key);
            if (!gd) return null;
            const out = {{}};
            for (const g of gd.querySelectorAll('.barlayer g.trace')) {{
                const cd = g.__data__, t = cd && cd[0] && cd[0].trace;
                const name = t ? (t.name || '') : '';
                out[name] = (out[name] || []).concat(Array.from(g.querySelectorAll('.point path')).map(p => {{
                    const b = p.getBBox();
                    return b.width * b.height;
                }}));
            }}
            return out;
        }}""",
        key,
    )


def drawn_round_points(page, key: str) -> dict:
    """``{"round k": markers drawn}`` for the posterior-cloud traces of a chart (0: none drawn)."""
    info = drawn_points(page, key) or {"names": [], "points": []}
    return {n: c for n, c in zip(info["names"], info["points"]) if re.fullmatch(r"round \d+", n or "")}


def round_traces(info: Optional[dict]) -> int:
    """Number of "round k" traces in a chart summary (the posterior clouds)."""
    if not info:
        return 0
    return sum(1 for n in info["names"] if re.fullmatch(r"round \d+", n or ""))


def page_problems(page) -> list[str]:
    """Streamlit exceptions and any "Traceback" text on the page."""
    problems = []
    for el in page.locator('[data-testid="stException"]').all():
        problems.append("stException: " + (el.inner_text(timeout=2000) or "")[:500])
    body = page.evaluate("() => document.body ? document.body.innerText : ''")
    if "Traceback" in body:
        k = body.index("Traceback")
        problems.append("Traceback text: " + body[max(0, k - 200):k + 500])
    return problems


@contextlib.contextmanager
def screenshot_on_failure(page, folder: Path, name: str):
    """Re-raise a failure as an AssertionError naming a full-page screenshot."""
    try:
        yield
    except BaseException as err:  # noqa: BLE001 - includes Playwright timeouts
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        path = Path(folder) / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"
        shot = "(no screenshot)"
        try:
            page.screenshot(path=str(path), full_page=True, timeout=10_000)
            shot = str(path)
        except Exception as e2:  # noqa: BLE001
            shot = f"(screenshot failed: {e2})"
        url = ""
        with contextlib.suppress(Exception):
            url = page.url
        raise AssertionError(f"{type(err).__name__}: {err}\n  url: {url}\n  screenshot: {shot}") from err

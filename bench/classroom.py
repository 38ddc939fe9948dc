"""Classroom load: N students press Start demo, or start N different small runs.

Every student is a real client of the app started with ``streamlit run app.py``
on a fresh store: with ``--client ws`` (the default) a session that speaks
Streamlit's websocket protocol (:mod:`streamlit_ws`: the frontend's messages,
fragment auto-reruns and message cache, without rendering, so the load generator
does not take the server's cores), with ``--client browser`` a headless Chromium
context (Playwright, Debian's Chromium). Each student has its own ``sbi_owner``
cookie, as distinct browsers do. The app runs with the embedded
defaults (runs on the app's own local Dask cluster) or, with ``--cluster``, a
``dask scheduler`` and two ``dask worker`` processes started on 127.0.0.1.
The students act within ``--spread`` seconds of each other.

Scenarios:

* ``demo``: each student opens Home and presses **Start demo**; identical
  requests share one run (the page says so), so the time to a student's first
  cloud is the time until the shared run's first round is drawn on that page.
* ``different``: each student opens a ``?spec=`` link (two moons, NPE, 300
  simulations, 20 epochs, seed = the student's number) and presses **Start**.

Reported: p50 / p95 time from the click to the first posterior cloud drawn on
the student's own Train page (browser: SVG markers counted; ws: the delta of the
``train_cloud_chart`` plotly chart whose figure has a "round k" trace), time until the last run
finished, failures, peak memory (RSS, and PSS: :func:`tree_memory`) of the app's whole process tree (server,
cluster, workers), and p95 load time of the Runs page opened by a prober
while runs are queued or running.

    python bench/classroom.py [--students 30] [--scenario demo|different] [--client ws|browser] [--cluster]
                              [--py-spy OUT.txt] [--no-write]

``--py-spy OUT``: sample the app's server process (``py-spy record``, its threads
and subprocesses) for the whole run and write the flat profile to ``OUT``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from browser_support import CHROMIUM, CHROMIUM_ARGS, AppServer, DEMO_LABEL  # noqa: E402
from common import machine, write_section  # noqa: E402
from streamlit_ws import StreamlitClient, widget_key_matches  # noqa: E402

CLOUD = ".st-key-train_cloud_chart .scatterlayer path.point"
RUNS_H1 = "h1"
CLOUD_KEY = "train_cloud_chart"
_ROUND_TRACE = re.compile(r"round \d+$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quantile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def tree_memory(pid: int) -> tuple[int, int]:
    """``(RSS, PSS)`` in bytes of process ``pid`` and all its descendants, summed.

    RSS counts a shared page in every process that maps it: torch's and numpy's libraries, mapped
    by the server and by each worker, are counted once per process although the machine holds them
    once. PSS (proportional set size, the kernel's ``smaps_rollup``) gives each process its share
    of such a page, so the sum over the tree is the memory the app takes from the machine."""
    try:
        p = psutil.Process(pid)
        procs = [p] + p.children(recursive=True)
    except psutil.Error:
        return 0, 0
    rss = pss = 0
    for q in procs:
        try:
            info = q.memory_full_info()
        except psutil.Error:
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss, pss


def small_spec_link(seed: int) -> str:
    from sbi_core.run.spec import RunSpec

    spec = RunSpec(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=300, max_epochs=20,
                   seed=seed)
    return "/train?spec=" + spec.to_query()


async def student(browser, base: str, i: int, delay: float, scenario: str, out: dict) -> None:
    ctx = await browser.new_context(base_url=base, viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(120_000)
    page = await ctx.new_page()
    try:
        if scenario == "demo":
            await page.goto("/", wait_until="domcontentloaded")
            button = page.get_by_role("button", name=DEMO_LABEL)
        else:
            await page.goto(small_spec_link(i), wait_until="domcontentloaded")
            button = page.locator(".st-key-train_start button:not([disabled])").first
        await button.wait_for()
        await asyncio.sleep(delay)
        t0 = time.monotonic()
        me = {"click_wall": time.time(), "cloud_wall": None, "run": None}
        out["students"].append(me)
        await button.click()
        await page.wait_for_url("**/train?*run=*", timeout=120_000)
        await page.locator(CLOUD).first.wait_for(state="attached", timeout=600_000)
        out["first_cloud"].append(time.monotonic() - t0)
        me["cloud_wall"] = me["click_wall"] + out["first_cloud"][-1]
        me["run"] = (re.search(r"[?&]run=([^&#]+)", page.url) or [None, None])[1]
        await page.get_by_text("Finished:").first.wait_for(timeout=900_000)
        out["finished_at"].append(time.monotonic())
    except Exception as err:  # noqa: BLE001 - a failure is a result here
        out["failures"].append(f"student {i}: {type(err).__name__}: {str(err)[:160]}")
    finally:
        await ctx.close()


async def prober(browser, base: str, stop: asyncio.Event, out: dict) -> None:
    """Open the Runs page again and again while the class works; time until its title is drawn."""
    while not stop.is_set():
        ctx = await browser.new_context(base_url=base)
        page = await ctx.new_page()
        t0 = time.monotonic()
        try:
            await page.goto("/runs", wait_until="domcontentloaded")
            await page.locator(RUNS_H1).filter(has_text="Runs").first.wait_for(timeout=60_000)
            out["page_load"].append(time.monotonic() - t0)
        except Exception as err:  # noqa: BLE001
            out["failures"].append(f"prober: {type(err).__name__}")
        await ctx.close()
        await asyncio.sleep(1.0)


async def memory(pid: int, stop: asyncio.Event, out: dict) -> None:
    """Sample the app's whole-tree RSS and PSS (:func:`tree_memory`) and the server process's own
    thread count every half second."""
    while not stop.is_set():
        rss, pss = tree_memory(pid)
        out["peak_rss"] = max(out["peak_rss"], rss)
        out["peak_pss"] = max(out.get("peak_pss", 0), pss)
        try:
            out["peak_threads"] = max(out.get("peak_threads", 0), psutil.Process(pid).num_threads())
        except psutil.Error:
            pass
        await asyncio.sleep(0.5)


# ---- students over Streamlit's websocket protocol (--client ws) ------------------------
def owner_cookie(i: int) -> dict:
    """A distinct ``sbi_owner`` cookie per student (the token format of :mod:`sbi_ui.owner`)."""
    return {"sbi_owner": f"classroom-student-{i:04d}-{os.getpid()}"}


def has_round_points(spec: str) -> bool:
    """Whether a posterior-cloud figure (plotly JSON) has a non-empty "round k" scatter trace."""
    try:
        data = json.loads(spec).get("data") or []
    except (ValueError, AttributeError):
        return False
    for trace in data:
        x = trace.get("x")
        if _ROUND_TRACE.match(str(trace.get("name") or "")) and x:
            if isinstance(x, dict):  # a typed array: {"dtype": ..., "bdata": ...}
                if x.get("bdata"):
                    return True
            elif len(x):
                return True
    return False


async def ws_student(base: str, i: int, delay: float, scenario: str, out: dict) -> None:
    seen = {"cloud": None, "finished": None, "last": []}

    def on_element(_client, _path, el) -> None:
        kind = el.WhichOneof("type")
        if kind in ("alert", "markdown"):  # what the student last read: the failure message says it
            body = el.alert.body if kind == "alert" else el.markdown.body
            seen["last"] = (seen["last"] + [f"{time.monotonic() - t_start:.0f}s: {body[:70]!r}"])[-4:]
        if (kind == "plotly_chart" and seen["cloud"] is None and widget_key_matches(el.plotly_chart.id, CLOUD_KEY)
                and has_round_points(el.plotly_chart.spec)):
            seen["cloud"] = time.monotonic()
        elif kind == "alert" and seen["finished"] is None and "Finished:" in el.alert.body:
            seen["finished"] = time.monotonic()

    t_start = time.monotonic()
    client = StreamlitClient(base, cookies=owner_cookie(i), on_element=on_element)
    stage = "opening the page"
    try:
        if scenario == "demo":
            await client.connect()
            button = await client.wait_for(lambda: client.full_runs and client.button(label=DEMO_LABEL), 120)
        else:
            await client.connect("train", small_spec_link(i).split("?", 1)[1])
            button = await client.wait_for(lambda: client.full_runs and client.button(key="train_start"), 120)
        await asyncio.sleep(delay)
        stage = "waiting for the first cloud"
        seen["cloud"] = seen["finished"] = None
        t0 = time.monotonic()
        me = {"click_wall": time.time(), "cloud_wall": None, "run": None}
        out["students"].append(me)
        await client.click(button)
        confirmed = False
        while True:  # a long queue asks "Yes, start this long run" first: a student says yes
            confirm = None if confirmed else client.button(key="train_start_confirm")
            if confirm:
                confirmed = True
                await client.click(confirm)
            elif seen["cloud"] is not None:
                break
            await client.wait_for(lambda: seen["cloud"] is not None or (
                not confirmed and client.button(key="train_start_confirm")), 600)
        out["first_cloud"].append(seen["cloud"] - t0)
        me["cloud_wall"] = me["click_wall"] + (seen["cloud"] - t0)
        me["run"] = (re.search(r"(?:^|&)run=([^&]+)", client.query_string) or [None, None])[1]
        stage = "waiting for the end of the run"
        await client.wait_for(lambda: seen["finished"] is not None, 900)
        out["finished_at"].append(seen["finished"])
    except asyncio.CancelledError:  # the deadline: say what this student last read
        out["failures"].append(f"student {i}, still {stage} at the deadline; {client.run_count} script runs, "
                               f"last read: {' | '.join(seen['last'])}; last messages: {' | '.join(client.trace)}")
        raise
    except Exception as err:  # noqa: BLE001 - a failure is a result here
        out["failures"].append(f"student {i}, {stage}: {type(err).__name__}: {str(err)[:160]}; "
                               f"{client.run_count} script runs, last read: {' | '.join(seen['last'])}")
    finally:
        out["received_bytes"] += client.received_bytes
        out["received_msgs"] += client.received
        out["cache_misses"] += client.cache_misses
        await client.close()


async def ws_prober(base: str, stop: asyncio.Event, out: dict) -> None:
    """Open the Runs page again and again while the class works; time until its title arrives."""
    k = 0
    while not stop.is_set():
        k += 1
        got = {}
        client = StreamlitClient(base, cookies=owner_cookie(10_000 + k), on_element=lambda _c, _p, el: got.update(
            title=True) if el.WhichOneof("type") == "heading" and el.heading.body == "Runs" else None)
        t0 = time.monotonic()
        try:
            await client.connect("runs")
            await client.wait_for(lambda: got.get("title"), 60)
            out["page_load"].append(time.monotonic() - t0)
            out.setdefault("page_load_wall", []).append((time.time(), time.monotonic() - t0))
        except Exception as err:  # noqa: BLE001
            out["failures"].append(f"prober: {type(err).__name__}")
        await client.close()
        await asyncio.sleep(1.0)


async def warm_up(base: str, app_pid: int, timeout: float = 90.0) -> None:
    """The teacher opens Home before the class comes (that starts the app's job manager and its
    local Dask cluster), then the app is left until its process tree is idle."""
    async with StreamlitClient(base, cookies=owner_cookie(99_999)) as teacher:
        await teacher.connect()
        await teacher.wait_for(lambda: teacher.full_runs, 60)
    end = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < end and quiet < 3:
        await asyncio.sleep(1.0)
        quiet = quiet + 1 if tree_cpu(app_pid, 0.5) < 0.2 else 0


def tree_cpu(pid: int, interval: float) -> float:
    """CPU cores used by ``pid`` and its children over ``interval`` seconds."""
    try:
        procs = [psutil.Process(pid)] + psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return 0.0
    before = {}
    for q in procs:
        try:
            t = q.cpu_times()
            before[q.pid] = t.user + t.system
        except psutil.Error:
            pass
    time.sleep(interval)
    used = 0.0
    for q in procs:
        try:
            t = q.cpu_times()
            used += t.user + t.system - before.get(q.pid, t.user + t.system)
        except psutil.Error:
            pass
    return used / interval


def cpu_seconds(app_pid: int) -> dict[str, float]:
    """CPU seconds used so far by the app's server process itself (``"server"``: pages, the job
    manager, the embedded Dask scheduler) and by every other process this benchmark started
    (``"workers"``: the Dask workers and nannies, and with ``--cluster`` the scheduler), py-spy
    excepted."""
    used = {"server": 0.0, "workers": 0.0}
    for q in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if "py-spy" in q.name():
                continue
            t = q.cpu_times()
            used["server" if q.pid == app_pid else "workers"] += t.user + t.system
        except psutil.Error:
            pass
    return used


async def classroom(base: str, app_pid: int, n: int, spread: float, scenario: str, client: str = "ws",
                    deadline: float = 1800.0) -> dict:
    await warm_up(base, app_pid)
    cpu_before = cpu_seconds(app_pid)
    out = {"first_cloud": [], "finished_at": [], "failures": [], "page_load": [], "peak_rss": 0,
           "received_bytes": 0, "received_msgs": 0, "cache_misses": 0, "students": []}
    if client == "ws":
        stop = asyncio.Event()
        side = [asyncio.create_task(ws_prober(base, stop, out)), asyncio.create_task(memory(app_pid, stop, out))]
        start = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.gather(*(ws_student(base, i, spread * i / max(1, n - 1), scenario, out)
                                                    for i in range(n))), deadline)
        except asyncio.TimeoutError:
            out["failures"].append(f"{n - len(out['finished_at'])} students had not seen their run finish after "
                                   f"{deadline:.0f} s (--deadline)")
        stop.set()
        await asyncio.gather(*side)
        out["last_finished_s"] = (max(out["finished_at"]) - start) if out["finished_at"] else float("nan")
        out["cpu"] = {k: v - cpu_before[k] for k, v in cpu_seconds(app_pid).items()}
        return out
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        stop = asyncio.Event()
        side = [asyncio.create_task(prober(browser, base, stop, out)), asyncio.create_task(memory(app_pid, stop, out))]
        start = time.monotonic()
        await asyncio.gather(*(student(browser, base, i, spread * i / max(1, n - 1), scenario, out)
                               for i in range(n)))
        stop.set()
        await asyncio.gather(*side)
        await browser.close()
    out["last_finished_s"] = (max(out["finished_at"]) - start) if out["finished_at"] else float("nan")
    out["cpu"] = {k: v - cpu_before[k] for k, v in cpu_seconds(app_pid).items()}
    return out


def timeline(store_dir: Path, students: list) -> list[str]:
    """Where a student's first-cloud time went: until the worker wrote round 1's event (queue wait,
    and the round's own ``seconds``: simulate, train, sample, reference C2ST), then until the
    cloud reached the student's page (ws clients only: they know their run)."""
    from sbi_core.store.runs import RunStore

    store = RunStore(store_dir)
    written, lag, waits, parts = [], [], [], {}
    for info in store.list_runs(limit=None):
        rounds = store.events(info.id, types=("round",))
        if not rounds:
            continue
        first = rounds[0][1]
        seconds = {k: float(v) for k, v in (first.get("seconds") or {}).items()}
        worked = sum(v for k, v in seconds.items() if k != "reference")  # the C2ST comes after the event
        waits.append(first["time"] - worked - info.created)  # runs take turns: `started` is the last claim
        for k, v in seconds.items():
            parts.setdefault(k, []).append(v)
        parts.setdefault("round 1 in all", []).append(worked)
        for s in students:
            if s.get("run") == info.id and s.get("cloud_wall"):
                written.append(first["time"] - s["click_wall"])
                lag.append(s["cloud_wall"] - first["time"])
    if not written and not parts:
        return []
    split = ", ".join(f"{k} {quantile(v, 0.5):.1f}" for k, v in parts.items())
    lines = [f"Round 1 (over runs, s): queue wait p50 / p95 {quantile(waits, 0.5):.1f} / {quantile(waits, 0.95):.1f}; "
             f"its own time p50: {split}."]
    if written:
        lines.append(f"Click to round 1's event in the store p50 / p95: {quantile(written, 0.5):.1f} / "
                     f"{quantile(written, 0.95):.1f} s; that event to the cloud on the student's page p50 / p95: "
                     f"{quantile(lag, 0.5):.1f} / {quantile(lag, 0.95):.1f} s.")
    return lines


def start_cluster(tmp: Path, workers: int = 2) -> tuple[str, list[subprocess.Popen]]:
    port = free_port()
    env = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0", OMP_NUM_THREADS="1",
               DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED="False",
               DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING="False")  # as the README advises an operator
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--dashboard-address", ":0"], env=env, cwd=tmp,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    time.sleep(3)
    for _ in range(workers):
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://127.0.0.1:{port}",
                                       "--nthreads", "1", "--nworkers", "1", "--preload", "sbi_core.jobs.dask_executor"],
                                      env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True))
    time.sleep(8)
    return f"tcp://127.0.0.1:{port}", procs


def stop_procs(procs) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--scenario", choices=["demo", "different"], default="demo")
    ap.add_argument("--spread", type=float, default=5.0)
    ap.add_argument("--client", choices=["ws", "browser"], default="ws")
    ap.add_argument("--deadline", type=float, default=1800.0,
                    help="ws clients: give up this many seconds after the first student clicked")
    ap.add_argument("--cluster", action="store_true")
    ap.add_argument("--workers", type=int, default=None,
                    help="Dask workers: of the app's local cluster (default: the app's, one per core less one) "
                         "or, with --cluster, worker processes (default 2)")
    ap.add_argument("--py-spy", dest="py_spy", default=None, help="write a py-spy profile of the server here")
    ap.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                    help="an environment variable for the app server (an experiment, e.g. "
                         "STREAMLIT_RUNNER_POST_SCRIPT_GC=false); repeatable")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    for item in args.server_env:
        k, _, v = item.partition("=")
        os.environ[k] = v  # AppServer passes os.environ on to the server
    if args.workers is not None and not args.cluster:
        os.environ["SBI_DASK_WORKERS"] = str(args.workers)  # the app's local cluster
    cluster_workers = args.workers or 2
    tmp = Path(tempfile.mkdtemp(prefix="classroom-"))
    cluster = []
    old = os.environ.get("SBI_DASK_SCHEDULER")
    try:
        if args.cluster:
            address, cluster = start_cluster(tmp, cluster_workers)
            os.environ["SBI_DASK_SCHEDULER"] = address
        with AppServer(tmp / "store", log_path=tmp / "streamlit.log") as srv:
            spy = None
            if args.py_spy:
                spy = subprocess.Popen(["py-spy", "record", "-p", str(srv.proc.pid), "--subprocesses", "--threads",
                                        "--format", "raw", "--rate", "50", "-o", args.py_spy],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                res = asyncio.run(classroom(srv.url, srv.proc.pid, args.students, args.spread, args.scenario,
                                            args.client, args.deadline))
                cluster_rss = sum(tree_memory(p.pid)[0] for p in cluster)
                cluster_pss = sum(tree_memory(p.pid)[1] for p in cluster)
                res["timeline"] = timeline(tmp / "store", res["students"])
            finally:
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    try:
                        spy.wait(60)
                    except subprocess.TimeoutExpired:
                        spy.kill()
    finally:
        if old is None:
            os.environ.pop("SBI_DASK_SCHEDULER", None)
        stop_procs(cluster)
        shutil.rmtree(tmp, ignore_errors=True)
    if args.cluster:
        mode = f"cluster (dask scheduler + {cluster_workers} workers on 127.0.0.1)"
    else:
        from sbi_core.jobs.dask_executor import default_n_workers

        mode = f"embedded (the app's local cluster, {default_n_workers()} worker{'s' if default_n_workers() > 1 else ''})"
    fc = res["first_cloud"]
    row = (f"| {args.scenario} | {args.client} | {mode} | {args.students} | {quantile(fc, 0.5):.1f} | {quantile(fc, 0.95):.1f} | "
           f"{res['last_finished_s']:.0f} | {len(res['failures'])} | {(res['peak_rss'] + cluster_rss) / 2**30:.2f} / "
           f"{(res.get('peak_pss', 0) + cluster_pss) / 2**30:.2f} | "
           f"{quantile(res['page_load'], 0.95):.2f} ({len(res['page_load'])}) | {res.get('peak_threads', 0)} |")
    lines = [f"Machine: {machine()}. Command: `python bench/classroom.py --students {args.students} "
             f"--scenario {args.scenario} --client {args.client}{' --cluster' if args.cluster else ''}"
             + (f" --workers {args.workers}" if args.workers is not None else "")
             + "".join(f" --server-env {e}" for e in args.server_env)
             + (f" --deadline {args.deadline:.0f}" if args.deadline != 1800.0 else "") + "`", "",
             "| scenario | client | mode | students | first cloud p50 (s) | p95 (s) | last run done (s) | failures | "
             "peak memory RSS / PSS (GB) | Runs page load p95 (s) (loads) | server threads (peak) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|", row]
    lines += ["", f"{len(fc)} of {args.students} students saw a first cloud, {len(res['finished_at'])} saw "
              "their run finish."]
    loads = res["page_load"]
    if loads:
        clicks = [s["click_wall"] for s in res["students"]]
        when = sorted(res.get("page_load_wall", []), key=lambda p: -p[1])[:3]
        at = (" (opened " + ", ".join(f"{t - min(clicks):+.1f} s" for t, _ in when)
              + " from the first click)") if when and clicks else ""
        lines += [f"Runs page loads while the class worked (s): p50 {quantile(loads, 0.5):.2f}, slowest "
                  + ", ".join(f"{v:.2f}" for v in sorted(loads)[-3:][::-1]) + at + "."]
    if res.get("timeline"):
        lines += res["timeline"]
    if res.get("cpu"):
        lines += [f"CPU from the first click until the last student saw their run finish: the app's server process "
                  f"{res['cpu']['server']:.1f} s (pages, job manager, embedded scheduler), the workers and the rest "
                  f"of the cluster {res['cpu']['workers']:.1f} s."]
    if args.client == "ws":
        lines += ["", f"The ws clients received {res['received_msgs']:,} messages, "
                  f"{res['received_bytes'] / 2**20:.1f} MiB in all ({res['cache_misses']} references to messages they "
                  "no longer had)."]
    print("\n".join(lines))
    for f in res["failures"][:10]:
        print("  ", f)
    if not args.no_write:
        write_section(f"classroom-{args.scenario}-{args.client}{'-cluster' if args.cluster else ''}"
                      + (f"-w{args.workers}" if args.workers is not None else "")
                      + ("-env" if args.server_env else ""),
                      "\n".join(["## Classroom load (`bench/classroom.py`)", ""] + lines + [""] +
                                 [f"- {f}" for f in res["failures"][:10]]))


if __name__ == "__main__":
    main()

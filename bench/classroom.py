"""Classroom load: N students with real browsers press Start demo, or start N different small runs.

Every student is a headless Chromium context (Playwright, Debian's Chromium) on
the app started with ``streamlit run app.py`` on a fresh store, the embedded
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
the student's own Train page (SVG markers counted), time until the last run
finished, failures, peak memory (RSS) of the app's whole process tree (server,
cluster, workers), and p95 load time of the Runs page opened by a prober
while runs are queued or running.

    python bench/classroom.py [--students 30] [--scenario demo|different] [--cluster] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import os
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

CLOUD = ".st-key-train_cloud_chart .scatterlayer path.point"
RUNS_H1 = "h1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quantile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def tree_rss(pid: int) -> int:
    try:
        p = psutil.Process(pid)
        procs = [p] + p.children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.Error:
            pass
    return total


def small_spec_link(seed: int) -> str:
    from sbi_core.spec import RunSpec

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
        await button.click()
        await page.wait_for_url("**/train?*run=*", timeout=120_000)
        await page.locator(CLOUD).first.wait_for(state="attached", timeout=600_000)
        out["first_cloud"].append(time.monotonic() - t0)
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
    while not stop.is_set():
        out["peak_rss"] = max(out["peak_rss"], tree_rss(pid))
        await asyncio.sleep(0.5)


async def classroom(base: str, app_pid: int, n: int, spread: float, scenario: str) -> dict:
    from playwright.async_api import async_playwright

    out = {"first_cloud": [], "finished_at": [], "failures": [], "page_load": [], "peak_rss": 0}
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
    return out


def start_cluster(tmp: Path) -> tuple[str, list[subprocess.Popen]]:
    port = free_port()
    env = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0", OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--dashboard-address", ":0"], env=env, cwd=tmp,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    time.sleep(3)
    for _ in range(2):
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://127.0.0.1:{port}",
                                       "--nthreads", "1", "--nworkers", "1", "--preload", "sbi_core.dask_executor"],
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
    ap.add_argument("--cluster", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="classroom-"))
    cluster = []
    old = os.environ.get("SBI_DASK_SCHEDULER")
    try:
        if args.cluster:
            address, cluster = start_cluster(tmp)
            os.environ["SBI_DASK_SCHEDULER"] = address
        with AppServer(tmp / "store", log_path=tmp / "streamlit.log") as srv:
            res = asyncio.run(classroom(srv.url, srv.proc.pid, args.students, args.spread, args.scenario))
            cluster_rss = sum(tree_rss(p.pid) for p in cluster)
    finally:
        if old is None:
            os.environ.pop("SBI_DASK_SCHEDULER", None)
        stop_procs(cluster)
        shutil.rmtree(tmp, ignore_errors=True)
    mode = "cluster (dask scheduler + 2 workers on 127.0.0.1)" if args.cluster else "embedded (the app's local cluster)"
    fc = res["first_cloud"]
    row = (f"| {args.scenario} | {mode} | {args.students} | {quantile(fc, 0.5):.1f} | {quantile(fc, 0.95):.1f} | "
           f"{res['last_finished_s']:.0f} | {len(res['failures'])} | {(res['peak_rss'] + cluster_rss) / 2**30:.2f} | "
           f"{quantile(res['page_load'], 0.95):.2f} ({len(res['page_load'])}) |")
    lines = [f"Machine: {machine()}. Command: `python bench/classroom.py --students {args.students} "
             f"--scenario {args.scenario}{' --cluster' if args.cluster else ''}`", "",
             "| scenario | mode | students | first cloud p50 (s) | p95 (s) | last run done (s) | failures | "
             "peak memory (GB) | Runs page load p95 (s) (loads) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|", row]
    print("\n".join(lines))
    for f in res["failures"][:10]:
        print("  ", f)
    if not args.no_write:
        write_section(f"classroom-{args.scenario}{'-cluster' if args.cluster else ''}",
                      "\n".join(["## Classroom load (`bench/classroom.py`)", ""] + lines + [""] +
                                 [f"- {f}" for f in res["failures"][:10]]))


if __name__ == "__main__":
    main()

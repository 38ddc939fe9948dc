"""UI latency: how fast the dashboard answers in a real browser (Debian's Chromium, Playwright).

Starts ``streamlit run app.py`` on a free port with a temporary run store (the
helpers of ``tests/browser_support.py``) and measures

(a) **demo -> first cloud**: seconds from the click on "Start demo" to the
    first round's posterior cloud drawn in the live view's cloud chart (Python
    ``perf_counter`` around Playwright waits that poll the chart every 50 ms),
    split into the worker's part (run created -> round-1 event in the store)
    and the rest (page switch, the live view's 0.75 s polling, drawing).
    Each repetition is a fresh demo run; it is cancelled once its cloud shows.
(b) **Explore slider -> redraw**: milliseconds from a keyboard ArrowRight on an
    observation slider to the posterior chart holding new data, measured in
    the page: a capture-phase ``keydown`` listener stamps the key press and a
    ``requestAnimationFrame`` loop stamps the first frame whose chart data
    differs (an amortized linear-regression run trained by the core first).

Reports median and max, prints a table and writes the ``ui_latency`` section
of ``bench/RESULTS.md``.

    python bench/ui_latency.py [--demos 3] [--moves 10] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import browser_support, machine, write_section  # bench/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parents[1]


_bs = browser_support()
DEMO_LABEL, AppServer, chromium_available = _bs.DEMO_LABEL, _bs.AppServer, _bs.chromium_available
goto, launch_browser, new_page, wait_idle = _bs.goto, _bs.launch_browser, _bs.new_page, _bs.wait_idle

CLOUD_JS = """() => {
    const gd = document.querySelector('.st-key-train_cloud_chart .js-plotly-plot');
    return !!(gd && gd.data && gd.data.some(d => /^round \\d+$/.test(d.name || '')));
}"""

# Arms the in-page stopwatch for one slider move (see the module docstring).
ARM_JS = """(key) => {
    const sig = () => {
        const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
        if (!gd || !gd.data || !gd.data.length) return null;
        return JSON.stringify([gd.data[0].x, gd.data[0].y]);
    };
    const app = document.querySelector('[data-testid="stApp"]');
    const w = window.__lat = {before: sig(), pressed: null, running: null, drawn: null};
    document.addEventListener('keydown', (e) => { if (w.pressed === null) w.pressed = performance.now(); },
                              {capture: true, once: true});
    const tick = () => {
        if (w.pressed !== null) {
            if (w.running === null && app.getAttribute('data-test-script-state') === 'running') {
                w.running = performance.now();
            }
            const s = sig();
            if (s !== null && s !== w.before) { w.drawn = performance.now(); return; }
        }
        requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
}"""


def _jobs(store_dir: Path):
    from sbi_core.jobs.manager import JobManager
    from sbi_core.store.runs import RunStore

    return JobManager(RunStore(store_dir))


def measure_demo(browser, srv: AppServer, repeats: int) -> list[dict]:
    jm = _jobs(srv.store_dir)
    out = []
    for k in range(repeats):
        page = new_page(browser, srv.url, timeout_ms=60_000)
        try:
            goto(page, "/", 60_000)
            button = page.get_by_role("button", name=DEMO_LABEL)
            button.wait_for(state="visible")
            wait_idle(page)
            t0 = time.perf_counter()
            wall0 = time.time()
            button.click()
            page.wait_for_url(re.compile(r"/train\?(.*&)?run=\w+"), timeout=60_000)
            t_url = time.perf_counter()
            page.wait_for_function(CLOUD_JS, timeout=600_000, polling=50)
            t1 = time.perf_counter()
            wall1 = time.time()
            rid = re.search(r"run=(\w+)", page.url).group(1)
        finally:
            page.context.close()
        info = jm.store.get_run(rid)
        rounds = [(seq, ev) for seq, ev in jm.store.events(rid) if ev.get("type") == "round"]
        round_time = rounds[0][1].get("time") if rounds else None
        worker_s = (round_time - info.created) if round_time and info else float("nan")
        jm.cancel(rid)
        try:
            jm.wait(rid, timeout=30)
        except TimeoutError:
            pass
        row = dict(total=t1 - t0, to_live_view=t_url - t0, worker=worker_s,
                   after_round=(wall1 - round_time) if round_time else float("nan"),
                   click_to_created=(info.created - wall0) if info else float("nan"))
        out.append(row)
        print(f"  demo {k + 1}: {row['total']:.2f} s to the first cloud "
              f"(live view after {row['to_live_view']:.2f} s; worker {worker_s:.2f} s from run creation "
              f"to round 1; shown {row['after_round']:.2f} s after the round ended)", flush=True)
    return out


def measure_explore(browser, srv: AppServer, moves: int) -> tuple[list[float], list[float], list[float], list[int]]:
    from sbi_core import RunSpec

    jm = _jobs(srv.store_dir)
    spec = RunSpec(simulator="linear_regression", method="npe", num_rounds=1, simulations_per_round=1000,
                   max_epochs=30, seed=0, num_threads=1, title="UI latency: amortized")
    rid = jm.start(spec)
    info = jm.wait(rid, timeout=600)
    if info.status != "done":
        raise RuntimeError(f"the amortized run ended {info.status}: {info.message}")
    page = new_page(browser, srv.url, timeout_ms=60_000)
    in_page, to_rerun, outside, sample_ms = [], [], [], []
    try:
        goto(page, f"/explore?run={rid}", 60_000)
        page.locator(".st-key-explore_posterior .js-plotly-plot").wait_for(state="visible")
        wait_idle(page)
        slider = page.locator(f".st-key-explore_x_{rid}_0 input[type=range]")
        caption = page.get_by_text(re.compile(r"^2,000 posterior samples drawn in \d+ ms"))
        for k in range(moves):
            hi, step, value = (float(slider.get_attribute(a)) for a in ("max", "step", "value"))
            key = "ArrowRight" if value + step <= hi else "ArrowLeft"
            slider.focus()
            page.evaluate(ARM_JS, "explore_posterior")
            t0 = time.perf_counter()
            slider.press(key)
            page.wait_for_function("() => window.__lat.drawn !== null", timeout=60_000, polling=20)
            t1 = time.perf_counter()
            lat = page.evaluate("() => window.__lat")
            in_page.append(lat["drawn"] - lat["pressed"])
            to_rerun.append(lat["running"] - lat["pressed"] if lat["running"] is not None else float("nan"))
            outside.append(1000 * (t1 - t0))
            wait_idle(page)  # the rest of the fragment (predictive check) before the next move
            m = re.search(r"drawn in (\d+) ms", caption.inner_text())
            sample_ms.append(int(m.group(1)) if m else -1)
            print(f"  move {k + 1}: {in_page[-1]:.0f} ms in the page (rerun running after {to_rerun[-1]:.0f} ms; "
                  f"{outside[-1]:.0f} ms seen from Python; "
                  f"sampling on the server {sample_ms[-1]} ms)", flush=True)
    finally:
        page.context.close()
    return in_page, to_rerun, outside, sample_ms


def _stats(xs: list[float]) -> tuple[float, float]:
    xs = [x for x in xs if x == x]
    return (statistics.median(xs), max(xs)) if xs else (float("nan"), float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demos", type=int, default=3, help="demo runs for (a)")
    ap.add_argument("--moves", type=int, default=10, help="slider moves for (b)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = ap.parse_args()
    if not chromium_available():
        sys.exit("Chromium not found at /usr/bin/chromium (apt-get install chromium)")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="sbi_ui_latency_") as tmp:
        srv = AppServer(Path(tmp) / "store", log_path=Path(tmp) / "streamlit.log")
        srv.start(timeout=120)
        try:
            with launch_browser() as browser:
                print("(a) Start demo -> first round cloud", flush=True)
                demos = measure_demo(browser, srv, args.demos)
                print("(b) Explore: slider move -> posterior redrawn", flush=True)
                in_page, to_rerun, outside, sample_ms = measure_explore(browser, srv, args.moves)
        finally:
            srv.stop()
    load_after = os.getloadavg()

    rows = [
        ("(a) Start demo -> first round cloud (s)", [d["total"] for d in demos], "{:.2f}"),
        ("    of which: click -> live view open (s)", [d["to_live_view"] for d in demos], "{:.2f}"),
        ("    of which: worker, run created -> round 1 done (s)", [d["worker"] for d in demos], "{:.2f}"),
        ("    of which: round 1 done -> cloud drawn (s)", [d["after_round"] for d in demos], "{:.2f}"),
        ("(b) Explore slider -> posterior redrawn, in page (ms)", in_page, "{:.0f}"),
        ("    of which: key press -> app shows its rerun running (ms)", to_rerun, "{:.0f}"),
        ("    same total, seen from Python around Playwright (ms)", outside, "{:.0f}"),
        ("    server-side sampling of 2,000 samples (ms, caption)", [float(x) for x in sample_ms], "{:.0f}"),
    ]
    lines = ["| measurement | n | median | max |", "|---|---:|---:|---:|"]
    for name, xs, fmt in rows:
        med, mx = _stats(xs)
        label = name.strip() if not name.startswith("    ") else "↳ " + name.strip()
        lines.append(f"| {label} | {len(xs)} | {fmt.format(med)} | {fmt.format(mx)} |")
    table = "\n".join(lines)
    print()
    print(table)
    body = (
        "## UI latency: the dashboard in a real browser\n\n"
        f"Headless Chromium (Playwright) against `streamlit run app.py`; {machine()}; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (the machine is shared). "
        f"Measured {time.strftime('%Y-%m-%d %H:%M')}.\n"
        f"Command: `python bench/ui_latency.py --demos {args.demos} --moves {args.moves}`\n\n"
        + table + "\n\n"
        "(a): the demo's first round (150 simulations, early-stopped training) dominates; its worker "
        "uses the app's default torch threads. The live view polls every 0.75 s. "
        "(b): from the key press (capture-phase `keydown`) to the first animation frame whose posterior "
        "chart holds new data; the fragment reruns, samples 2,000 points and sends the new figure. "
        "\"Rerun running\" is the first frame in which the app marks a script run as running; the rest is "
        "the rerun on the server (sampling: last row) and Plotly drawing the new figure in the browser."
    )
    if not args.no_write:
        write_section("ui_latency", body)
        print("\nwrote the ui_latency section of bench/RESULTS.md")


if __name__ == "__main__":
    main()

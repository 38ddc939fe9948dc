"""Screenshots of the Check page's trust sections for issue 23's closing note (Playwright + Debian's Chromium).

Makes three checked runs of the built-in linear regression in a temporary run store, in this process
(:func:`sbi_core.jobs.worker.run_worker`, then :func:`sbi_core.checks.run_checks` with the Check page's
defaults), then opens each one's Check page in Chromium (``streamlit run app.py`` on that store, the
helpers of ``tests/browser_support.py``):

1. ``good``: amortized NPE trained well (3,000 simulations), its observation the model's own;
2. ``miscalibrated``: the same model trained badly on purpose (60 simulations, 3 epochs), as the
   Check page's "break it" twin is;
3. ``misspecified``: the good run's settings with an observation the model cannot make (one reading
   moved 40 units beyond every simulation).

The checks run with three estimators compared (``ensemble_members=3``). For each run it saves the
trust sections ("Could the model have made your data?", the local C2ST and the ensemble) as one PNG,
and the whole page, and for each run the top of its Train page (the misspecification verdict the
run makes before it trains, above the posterior), into ``assets/screenshots/issue23/`` (or ``--out``).

    python bench/screenshots_issue23.py [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "assets" / "screenshots" / "issue23"
PAGE_MS = 120_000

if str(ROOT) not in sys.path:  # sbi_core and sbi_ui, when run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from common import browser_support  # noqa: E402  (bench/ is the script's folder, first on sys.path)
from screenshots_issue21 import full_page, region  # noqa: E402

_bs = browser_support()


def make_runs(root: Path) -> dict[str, str]:
    """The three checked runs (name -> run id) in a store at ``root``."""
    import numpy as np

    from sbi_core import get_simulator
    from sbi_core.checks import checks_dir, run_checks, save_results
    from sbi_core.jobs.worker import run_worker
    from sbi_core.run.spec import RunSpec
    from sbi_core.store.runs import RunStore

    store = RunStore(root)
    base = RunSpec(simulator="linear_regression", method="npe", num_rounds=1, simulations_per_round=3000,
                   num_posterior_samples=1000, num_threads=2, seed=3, title="Linear regression, trained well")
    x_off = np.asarray(get_simulator("linear_regression").default_observation, dtype=float)
    x_off[3] += 40.0
    specs = {
        "good": base,
        "miscalibrated": dataclasses.replace(base, simulations_per_round=60, max_epochs=3,
                                             title="Linear regression, trained badly on purpose"),
        "misspecified": dataclasses.replace(base, observation=x_off.tolist(),
                                            title="Linear regression, an observation the model cannot make"),
    }
    ids = {}
    for name, spec in specs.items():
        rid = store.create_run(spec)
        if run_worker(store, rid) != "done":
            raise SystemExit(f"{name}: {store.get_run(rid).message}")
        save_results(checks_dir(store, rid), run_checks(store, rid, {"num_datasets": 500, "ensemble_members": 3}))
        ids[name] = rid
        print(name, rid, flush=True)
    return ids


def shoot(page, out: Path, name: str, rid: str) -> None:
    _bs.goto(page, f"/check?run={rid}", PAGE_MS)
    page.locator(".st-key-check_misspecification_0 .js-plotly-plot").wait_for(timeout=PAGE_MS)
    _bs.wait_idle(page, PAGE_MS)
    problems = _bs.page_problems(page)
    if problems:
        print(f"{name}: {problems}", file=sys.stderr)
    top = page.get_by_role("heading", name="Could the model have made your data?")
    bottom = page.get_by_text("The checks above ask whether the posterior is right on average").last
    region(page, out / f"check_{name}_trust_sections.png", top, bottom)
    ensemble = page.get_by_role("heading", name="Do estimators trained with other seeds agree? (ensemble)")
    region(page, out / f"check_{name}_ensemble.png", ensemble,
           page.get_by_text("so they can all be wrong the same way").last)
    full_page(page, out / f"check_{name}_full_page.png", max_height=16000)
    _bs.goto(page, f"/train?run={rid}", PAGE_MS)
    page.locator(".st-key-train_cloud_chart .js-plotly-plot").wait_for(timeout=PAGE_MS)
    _bs.wait_idle(page, PAGE_MS)
    page.set_viewport_size({"width": 1280, "height": 1100})
    page.screenshot(path=str(out / f"train_{name}_top.png"))
    print(out / f"train_{name}_top.png", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if not _bs.chromium_available():
        print("needs Chromium at /usr/bin/chromium", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shots23_") as tmp:
        ids = make_runs(Path(tmp) / "store")
        with _bs.AppServer(Path(tmp) / "store") as srv, _bs.launch_browser() as browser:
            page = _bs.new_page(browser, srv.url, PAGE_MS)
            for name, rid in ids.items():
                shoot(page, args.out, name, rid)
    return 0


if __name__ == "__main__":
    sys.exit(main())

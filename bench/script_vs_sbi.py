"""The generated sbi script against sbi_core's own run of the same RunSpec.

For the RunSpec of each method asked for (default: two moons, amortized NPE, 2,000
simulations, seed 0; any method the sbi script covers, ``--methods``):

1. ``spec_to_script(spec, library="sbi")`` is written to a temporary folder and
   run there with this Python (sbi 0.27, ``bench/requirements.txt``); its
   ``posterior_samples.csv`` holds the sbi toolbox's posterior samples at the
   observation;
2. ``sbi_core.execute(spec)`` runs the same spec here;
3. the classifier two-sample test (``sbi_core.c2st``: 0.5 = indistinguishable,
   1.0 = disjoint) compares the two sample sets, and, where the model has an
   exact posterior under its default prior (``Simulator.reference_posterior``),
   each set with exact samples.

Both libraries train the same network (the RunSpec's sizes) with the same
budget and training settings (ABC: the same distance, quantile and adjustment),
so the two C2STs against the reference should be close, and the C2ST between
them near the larger of the two. With ``n``
samples a side, equal distributions give 0.5 +- about ``sqrt(0.25 / (2 n))``.

The table goes into ``bench/RESULTS.md`` between ``<!-- script-vs-sbi -->``
markers (replaced on every run). Usage::

    python bench/script_vs_sbi.py [--budget 2000] [--methods npe ...] [--rounds 4] [--seed 0] [--threads 1]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import sbi_core
from common import machine, write_section
from sbi_core.export.script import SBI_SCRIPT_METHODS
from sbi_core.methods.catalogue import method_info

SECTION = "script-vs-sbi"


def read_samples(path: Path) -> tuple[list[str], torch.Tensor]:
    """The header and the ``(n, D)`` samples of a ``posterior_samples.csv``."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], torch.tensor([[float(v) for v in row] for row in rows[1:]])


def run_sbi_script(spec: sbi_core.RunSpec) -> tuple[torch.Tensor, float, str]:
    """Samples ``(n, D)`` of the generated sbi script, its wall seconds, and its printed output."""
    from sbi_core.export.script import spec_to_script

    with tempfile.TemporaryDirectory(prefix="script-vs-sbi-") as folder:
        script = Path(folder) / "script.py"
        script.write_text(spec_to_script(spec, library="sbi"))
        start = time.perf_counter()
        done = subprocess.run([sys.executable, script.name], cwd=folder, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"the sbi script failed:\n{done.stderr[-3000:]}")
        _, samples = read_samples(Path(folder) / "posterior_samples.csv")
    return samples, seconds, done.stdout


def reference(spec: sbi_core.RunSpec, n: int, seed: int) -> torch.Tensor | None:
    """``(n, D)`` exact posterior samples at the spec's observation, or ``None`` where there are none."""
    sim = sbi_core.get_simulator(spec.simulator)
    if not sim.has_reference_posterior or spec.prior is not None:
        return None
    x_obs = torch.tensor(spec.observation) if spec.observation is not None else sim.default_observation
    return sim.reference_posterior(x_obs, n, seed=seed)


def compare(args, method: str) -> dict:
    """One method's row: both libraries' samples for the same RunSpec, their times and C2STs."""
    rounds = args.rounds if method_info(method).sequential else 1
    spec = sbi_core.RunSpec(simulator=args.task, method=method, num_rounds=rounds,
                            simulations_per_round=args.budget // rounds, num_posterior_samples=args.samples,
                            seed=args.seed, num_threads=args.threads)
    sbi_samples, t_sbi, printed = run_sbi_script(spec)
    print(f"{method}: sbi script {t_sbi:.1f} s\n{printed.strip()}", flush=True)
    start = time.perf_counter()
    ours = sbi_core.execute(spec).rounds[-1].posterior_samples
    t_ours = time.perf_counter() - start
    print(f"{method}: sbi_core execute {t_ours:.1f} s", flush=True)
    exact = reference(spec, args.samples, seed=args.seed + 1)
    vs = lambda s: None if exact is None else sbi_core.c2st(exact, s, seed=args.seed)  # noqa: E731
    return {"method": method, "rounds": rounds, "t_sbi": t_sbi, "t_ours": t_ours, "sbi": vs(sbi_samples),
            "ours": vs(ours), "between": sbi_core.c2st(sbi_samples, ours, seed=args.seed)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="two_moons", help="a built-in model")
    ap.add_argument("--methods", "--method", nargs="+", default=["npe"], choices=list(SBI_SCRIPT_METHODS),
                    help="each gets a row (default: npe)")
    ap.add_argument("--budget", type=int, default=2000, help="simulations in all (split over the rounds)")
    ap.add_argument("--rounds", type=int, default=4, help="rounds of a sequential method")
    ap.add_argument("--samples", type=int, default=1000, help="posterior samples per library")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = [compare(args, m) for m in args.methods]
    shown = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [
        f"{args.task}, {args.budget:,} simulations per run (split over the rounds of a sequential method), the "
        f"RunSpec's default network and training settings, seed {args.seed}, {args.samples:,} posterior samples per "
        f"library; {args.threads} torch thread(s); {machine()}.",
        "The sbi columns run `spec_to_script(spec, library=\"sbi\")` as written (a subprocess: its time includes "
        "importing sbi); the sbi_core columns run `sbi_core.execute(spec)`. C2ST: 0.5 = indistinguishable; "
        f"equal distributions scatter by about {(0.25 / (2 * args.samples)) ** 0.5:.3f}.",
        f"Command: `python bench/script_vs_sbi.py {' '.join(sys.argv[1:])}`",
        "",
        "| method | rounds | sbi script (s) | sbi_core (s) | sbi vs exact | sbi_core vs exact | sbi vs sbi_core |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['method']} | {r['rounds']} | {r['t_sbi']:.1f} | {r['t_ours']:.1f} | {shown(r['sbi'])} | "
              f"{shown(r['ours'])} | {r['between']:.3f} |" for r in rows]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

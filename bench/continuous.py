"""Continuous flows: sbi_core's FMPE and NPSE against sbi 0.27's FMPE and NPSE, and sbi_core's NPE.

For each task every method trains once on the same ``budget`` simulations from the
prior (amortized), then draws 10,000 samples at each of the benchmark's observations
(``common.observations``: parameters from the prior, seed 1000, closed-form
reference posteriors); the table reports the mean C2ST against the reference
(0.5 = indistinguishable), the training time, and the sampling time per 10,000 draws.

sbi's methods run in another Python (``--sbi-python``, default ``/tmp/sbivenv/bin/python``,
a venv with sbi 0.27 that also sees sbi_core): this script starts itself there with
``--worker``, once per task and method, and reads one line of JSON back. sbi runs with
its defaults (FMPE: an MLP vector field sampled by an adaptive ODE solver; NPSE: a VE
diffusion sampled by 500 Euler-Maruyama steps), ours with theirs.

    python bench/continuous.py [--tasks two_moons slcp gaussian_mixture gaussian_linear]
                               [--methods fmpe npse sbi-fmpe sbi-npse npe fmpe-64 npse-64] [--budget 10000]
                               [--observations 5] [--threads 1] [--seed 0] [--quick] [--rows FILE [--from-rows]]

``--quick``: 1,000 simulations, 2 observations, 2,000 draws, at most 30 epochs, nothing
written to RESULTS.md (a check that everything runs). The table goes into
``bench/RESULTS.md`` between ``<!-- continuous -->`` markers (``--section``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import torch

import sbi_core
import sbi_core.methods.fmpe
import sbi_core.methods.npse
from common import NUM_REFERENCE, machine, observations, sbi_prior, training_data, write_section

SECTION = "continuous"
TASKS = ["two_moons", "slcp", "gaussian_mixture", "gaussian_linear"]
METHODS = ["fmpe", "npse", "sbi-fmpe", "sbi-npse", "npe", "fmpe-64", "npse-64"]
# "fmpe-64", "npse-64": sbi_core's defaults with a network 64 wide instead of 128 (the speed setting:
# about a third of the training time of the default width, at a C2ST still far better than sbi's)
SBI_PYTHON = "/tmp/sbivenv/bin/python"


def _ours(method: str, prior, seed: int, max_epochs: int | None):
    """sbi_core's estimator for ``method``: ``"fmpe"``, ``"npse"``, ``"npe"``, or ``"fmpe-W"`` / ``"npse-W"``
    (the defaults with a network ``W`` wide)."""
    name, _, width = method.partition("-")
    cls = {"fmpe": sbi_core.FMPE, "npse": sbi_core.NPSE, "npe": sbi_core.NPE}[name]
    kwargs = {"max_epochs": max_epochs} if max_epochs else {}
    if width:
        kwargs["hidden_features"] = int(width)
    return cls(prior, seed=seed, **kwargs)


def _train(method: str, task: str, budget: int, seed: int, max_epochs: int | None):
    """``(sample(x, n) -> (n, D), train seconds, epochs)`` of ``method`` trained on ``task``'s simulations."""
    sim = sbi_core.get_simulator(task)
    theta, x = training_data(task, budget, seed=seed)
    start = time.perf_counter()
    if not method.startswith("sbi-"):
        est = _ours(method, sim.prior, seed, max_epochs)
        post = est.train(theta, x)
        seconds = time.perf_counter() - start
        return (lambda xo, n: post.sample((n,), x=xo, seed=1)), seconds, est.last_result.epochs
    from sbi.inference import FMPE, NPSE

    torch.manual_seed(seed)  # sbi draws from torch's global generator
    inference = (FMPE if method == "sbi-fmpe" else NPSE)(prior=sbi_prior(sim.prior), show_progress_bars=False)
    inference.append_simulations(theta, x).train(**({"max_num_epochs": max_epochs} if max_epochs else {}))
    post = inference.build_posterior()
    seconds = time.perf_counter() - start
    epochs = inference.summary.get("epochs_trained", [None])[-1] if hasattr(inference, "summary") else None

    def sample(xo, n):
        torch.manual_seed(1)
        return post.sample((n,), x=xo, show_progress_bars=False)

    return sample, seconds, epochs


def evaluate(method: str, task: str, budget: int, count: int, draws: int, seed: int,
             max_epochs: int | None) -> dict:
    """Train ``method`` on ``task`` and score it at ``count`` observations: a dict of the row's numbers."""
    obs = observations(task, count)
    sample, train_s, epochs = _train(method, task, budget, seed, max_epochs)
    scores, sample_s = [], []
    for o in obs:
        start = time.perf_counter()
        s = sample(o.x, draws)
        sample_s.append(time.perf_counter() - start)
        scores.append(sbi_core.c2st(o.reference[:draws], s))
        print(f"  {task} {method} observation {len(scores)}: C2ST {scores[-1]:.3f}", file=sys.stderr, flush=True)
    return {"task": task, "method": method, "c2st": sum(scores) / len(scores), "c2sts": scores,
            "train_s": train_s, "sample_s": sum(sample_s) / len(sample_s) * NUM_REFERENCE / draws,
            "epochs": epochs}


def run_elsewhere(python: str, method: str, task: str, args) -> dict:
    """:func:`evaluate` in ``python`` (the sbi venv): this script with ``--worker``; its last stdout line."""
    cmd = [python, str(Path(__file__).resolve()), "--worker", method, "--tasks", task, "--budget", str(args.budget),
           "--observations", str(args.observations), "--draws", str(args.draws), "--seed", str(args.seed),
           "--threads", str(args.threads)] + (["--max-epochs", str(args.max_epochs)] if args.max_epochs else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=Path(__file__).parent)
    if done.returncode != 0:
        raise SystemExit(f"{method} on {task} failed in {python} (exit {done.returncode})")
    # the row is the last JSON object printed: sbi may have written progress ("\r...") on the same line
    start = done.stdout.rfind('{"task"')
    if start < 0:
        raise SystemExit(f"{method} on {task} printed no result in {python}:\n{done.stdout[-2000:]}")
    return json.JSONDecoder().raw_decode(done.stdout[start:])[0]


def _key(task: str, method: str, args) -> str:
    """What a row depends on: a row measured with the same settings is read back instead of measured again."""
    return json.dumps([task, method, args.budget, args.observations, args.draws, args.seed, args.max_epochs,
                       args.threads])


def _cached(path: Optional[str]) -> dict:
    """The rows measured so far (``--rows``: one JSON object per line, with its key)."""
    if not path or not os.path.exists(path):
        return {}
    rows = [json.loads(line) for line in open(path) if line.strip()]
    return {r.pop("key"): r for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=TASKS)
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--budget", type=int, default=10_000)
    ap.add_argument("--observations", type=int, default=5)
    ap.add_argument("--draws", type=int, default=NUM_REFERENCE, help="posterior draws per observation for C2ST")
    ap.add_argument("--max-epochs", type=int, default=None, help="cap every method's epochs (default: their own)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sbi-python", default=SBI_PYTHON, help="a Python with sbi 0.27 that can import sbi_core")
    ap.add_argument("--quick", action="store_true", help="1,000 simulations, 2 observations, 2,000 draws, "
                    "at most 30 epochs; writes nothing")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--from-rows", action="store_true", help="measure nothing: the table of the rows in --rows")
    ap.add_argument("--rows", help="a JSON-lines file that keeps every measured row; rows already in it with the "
                    "same settings are not measured again (a long run can stop and go on)")
    ap.add_argument("--section", default=SECTION)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.budget, args.observations, args.draws, args.no_write = 1000, 2, 2000, True
        args.max_epochs = args.max_epochs or 30
    torch.set_num_threads(args.threads)

    if args.worker:  # one task and method, in this Python; the parent reads the last line
        print(json.dumps(evaluate(args.worker, args.tasks[0], args.budget, args.observations, args.draws, args.seed,
                                  args.max_epochs)), flush=True)
        return

    rows, done = [], _cached(args.rows)
    for task in args.tasks:
        for method in args.methods:
            key = _key(task, method, args)
            if key in done:
                row = done[key]
            elif args.from_rows:
                print(f"{task:18} {method:9} not measured yet: left out", flush=True)
                continue
            elif method.startswith("sbi-"):
                row = run_elsewhere(args.sbi_python, method, task, args)
            else:
                row = evaluate(method, task, args.budget, args.observations, args.draws, args.seed, args.max_epochs)
            if args.rows and key not in done:  # kept at once: a later failure loses no measured row
                with open(args.rows, "a") as f:
                    f.write(json.dumps({**row, "key": key}) + "\n")
            rows.append(row)
            print(f"{task:18} {method:9} C2ST {row['c2st']:.3f}  train {row['train_s']:6.1f} s  "
                  f"sample {row['sample_s']:5.2f} s/10k  epochs {row['epochs']}", flush=True)

    cmd = " ".join(a for a in sys.argv[1:] if a != "--from-rows")  # the command that measured the rows
    fm, ps = sbi_core.methods.fmpe.DEFAULTS, sbi_core.methods.npse.DEFAULTS
    lines = [
        f"{args.budget:,} simulations from the prior per task (training seed {args.seed}), "
        f"{args.observations} observations per task (parameters from the prior, seed 1000), C2ST of "
        f"{args.draws:,} posterior draws against as many reference draws, mean over the observations; "
        f"{args.threads} torch thread(s); {machine()}.",
        f"fmpe, npse, npe: sbi_core's defaults (FMPE: flow matching, residual MLP {fm['hidden_features']} wide "
        f"with {fm['num_blocks']} blocks, time exponent {fm['time_exponent']:g}, {fm['solver']} x {fm['steps']} "
        f"steps; NPSE: {ps['sde'].upper()} diffusion, probability-flow ODE, {ps['solver']} x {ps['steps']} steps; "
        "NPE: NSF); fmpe-64, npse-64: the same 64 wide. sbi-fmpe, sbi-npse: sbi "
        "0.27's FMPE and NPSE with their defaults (FMPE: MLP, adaptive ODE solver; NPSE: VE diffusion, "
        "500 Euler-Maruyama steps), run in the sbi venv. Sampling: seconds per 10,000 draws at one observation "
        "(rejection of draws outside the prior included).",
        f"Command: `python bench/continuous.py {cmd}`",
        "",
        "| task | method | mean C2ST | C2ST per observation | training (s) | epochs | sampling (s / 10k) |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    lines += [f"| {r['task']} | {r['method']} | {r['c2st']:.3f} | {', '.join(f'{c:.3f}' for c in r['c2sts'])} | "
              f"{r['train_s']:.0f} | {r['epochs'] if r['epochs'] is not None else ''} | {r['sample_s']:.2f} |"
              for r in rows]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section(args.section, "## Continuous flows: FMPE and NPSE against sbi 0.27\n\n" + report)


if __name__ == "__main__":
    main()

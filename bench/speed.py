"""Speed: sbi_core NPE vs the ``sbi`` toolbox's default NPE on the same data.

The same 10,000 two-moons simulations are trained by both, one after the
other, in one process, with the same torch thread count. Reported: training
time, mean C2ST against the exact reference posterior over several
observations, and the ratios. ``sbi`` is a benchmark-only dependency
(``pip install -r bench/requirements.txt``).

    python bench/speed.py [--threads 2] [--simulations 10000] [--observations 5]
"""

from __future__ import annotations

import argparse

import torch

import sbi_core
from common import machine, mean_c2st, observations, timer, training_data, write_section


def run_sbi_core(theta, x, prior, seed, **kwargs):
    with timer() as t:
        posterior = sbi_core.NPE(prior, density_estimator=kwargs.pop("estimator", "nsf"), seed=seed, **kwargs).train(theta, x)
    return posterior, t["seconds"]


def run_sbi(theta, x, seed):
    from sbi.inference import NPE
    from sbi.utils import BoxUniform

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        prior = BoxUniform(-torch.ones(2), torch.ones(2))
        with timer() as t:
            inference = NPE(prior=prior)
            inference.append_simulations(theta, x).train()
            posterior = inference.build_posterior()
    return posterior, t["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--simulations", type=int, default=10_000)
    ap.add_argument("--observations", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-sbi", action="store_true", help="time sbi_core only (no sbi install needed)")
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    task = "two_moons"
    sim = sbi_core.get_simulator(task)
    theta, x = training_data(task, args.simulations, seed=args.seed)
    obs = observations(task, args.observations)

    rows = []
    post, secs = run_sbi_core(theta, x, sim.prior, args.seed)
    score = mean_c2st(lambda xo, n: post.sample((n,), x=xo, seed=1), obs)
    rows.append(("sbi_core NPE (NSF, defaults)", secs, score))
    print(f"sbi_core: {secs:.1f} s, C2ST {score:.3f}", flush=True)
    if not args.skip_sbi:
        spost, ssecs = run_sbi(theta, x, args.seed)
        with torch.random.fork_rng():
            torch.manual_seed(1)
            sscore = mean_c2st(lambda xo, n: spost.sample((n,), x=xo, show_progress_bars=False), obs)
        rows.append(("sbi 0.27 NPE (defaults: MAF)", ssecs, sscore))
        print(f"sbi: {ssecs:.1f} s, C2ST {sscore:.3f}", flush=True)

    lines = [
        f"Two moons, {args.simulations:,} simulations, {args.observations} observations, "
        f"{args.threads} torch threads; {machine()}.",
        f"Command: `python bench/speed.py --threads {args.threads} --observations {args.observations}`",
        "",
        "| estimator | training time (s) | mean C2ST |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {s:.1f} | {c:.3f} |" for name, s, c in rows]
    if len(rows) == 2:
        lines += ["", f"**Speed-up: {rows[1][1] / rows[0][1]:.1f}x** (sbi time / sbi_core time); "
                  f"C2ST difference (sbi_core - sbi): {rows[0][2] - rows[1][2]:+.3f}."]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section("speed", "## Speed: NPE training on 10k two-moons simulations\n\n" + report)


if __name__ == "__main__":
    main()

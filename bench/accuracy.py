"""Accuracy: C2ST against closed-form reference posteriors.

For each task, budget and method, trains on simulations from the task's
prior (NPE: one round; SNPE and TSNPE: 10 rounds of budget/10) and reports the
mean C2ST over several observations (0.5 = indistinguishable from the exact
posterior). With ``sbi`` installed, its default NPE is trained on the same
simulations in the same process and shown beside ours.

    python bench/accuracy.py [--tasks two_moons gaussian_linear linear_regression]
                             [--budgets 1000 10000] [--methods npe snpe tsnpe sbi-npe]
                             [--observations 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import sbi_core
from common import machine, mean_c2st, observations, training_data, write_section

PUBLISHED = {  # SBI benchmark (Lueckmann et al. 2021), mean C2ST over 10 observations, from its figures
    ("two_moons", "npe", 10_000): "0.61",
    ("two_moons", "snpe", 10_000): "0.55",
    ("gaussian_linear", "npe", 10_000): "0.55",
}


def npe_sampler(task, budget, seed):
    sim = sbi_core.get_simulator(task)
    theta, x = training_data(task, budget, seed=seed)
    post = sbi_core.NPE(sim.prior, seed=seed).train(theta, x)
    return lambda xo, n: post.sample((n,), x=xo, seed=1)


def sbi_npe_sampler(task, budget, seed):
    from sbi.inference import NPE

    sim = sbi_core.get_simulator(task)
    theta, x = training_data(task, budget, seed=seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        inference = NPE(prior=_sbi_prior(sim.prior))
        inference.append_simulations(theta, x).train()
        post = inference.build_posterior()

    def sample(xo, n):
        with torch.random.fork_rng():
            torch.manual_seed(1)
            return post.sample((n,), x=xo, show_progress_bars=False)

    return sample


def _sbi_prior(prior):
    from sbi.utils import BoxUniform
    from torch.distributions import Independent, Normal

    dists = {m.dist for m in prior.marginals}
    if dists == {"uniform"}:
        b = prior.support_bounds
        return BoxUniform(b[:, 0], b[:, 1])
    if dists == {"normal"}:
        loc = torch.tensor([m.params["loc"] for m in prior.marginals])
        scale = torch.tensor([m.params["scale"] for m in prior.marginals])
        return Independent(Normal(loc, scale), 1)
    raise ValueError(f"no sbi prior for {dists}")


def evaluate(task, method, budget, obs, seed):
    """Mean C2ST of ``method`` on ``task`` with ``budget`` simulations; (score, seconds)."""
    start = time.perf_counter()
    if method == "npe":
        sampler = npe_sampler(task, budget, seed)
        score = mean_c2st(sampler, obs)
    elif method == "sbi-npe":
        sampler = sbi_npe_sampler(task, budget, seed)
        score = mean_c2st(sampler, obs)
    else:  # snpe / tsnpe: one sequential run per observation
        sim = sbi_core.get_simulator(task)
        scores = []
        for o in obs:
            run = sbi_core.run_sequential(
                sim, sim.prior, o.x, method=method, num_rounds=10, simulations_per_round=budget // 10,
                seed=seed, num_posterior_samples=len(o.reference),
            )
            scores.append(sbi_core.c2st(o.reference, run.rounds[-1].posterior_samples))
            print(f"  {method} observation {len(scores)}: C2ST {scores[-1]:.3f}", flush=True)
        score = sum(scores) / len(scores)
    return score, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["two_moons", "gaussian_linear", "linear_regression"])
    ap.add_argument("--budgets", nargs="+", type=int, default=[1000, 10_000])
    ap.add_argument("--methods", nargs="+", default=["npe", "snpe", "sbi-npe"])
    ap.add_argument("--observations", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--section", default="accuracy",
                    help="name of the RESULTS.md section to replace (keeps other runs' tables)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for task in args.tasks:
        obs = observations(task, args.observations)
        for budget in args.budgets:
            for method in args.methods:
                score, secs = evaluate(task, method, budget, obs, args.seed)
                ref = PUBLISHED.get((task, method, budget), "")
                rows.append((task, method, budget, score, secs, ref))
                print(f"{task:18} {method:8} {budget:>6}  C2ST {score:.3f}  {secs:6.1f} s  {ref}", flush=True)

    lines = [
        f"{args.observations} observations per task (parameters from the prior, seed 1000), "
        f"training seed {args.seed}, {args.threads} torch threads; {machine()}.",
        "SNPE: 10 rounds of budget/10 (APT, atomic loss); TSNPE: 10 rounds of budget/10 from the "
        "prior truncated to the last posterior's 99.99 % region. sbi-npe: the `sbi` toolbox's default NPE on the "
        "same simulations. Published: SBI benchmark, mean C2ST over its 10 observations.",
        f"Command: `python bench/accuracy.py {' '.join(sys.argv[1:])}`",
        "",
        "| task | method | simulations | mean C2ST | wall time (s) | published |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {t} | {m} | {b:,} | {s:.3f} | {w:.0f} | {p} |" for t, m, b, s, w, p in rows]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        title = "## Accuracy: C2ST against exact posteriors" + ("" if args.section == "accuracy" else f" ({args.section})")
        write_section(args.section, title + "\n\n" + report)


if __name__ == "__main__":
    main()

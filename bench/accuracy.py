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
from common import machine, mean_c2st, observations, sbi_prior, training_data, write_section

# SBI benchmark (Lueckmann et al. 2021), mean C2ST over its 10 observations (../shared/reference/sbibm_c2st.md)
_SBIBM_NAMES = {"npe": "NPE", "snpe": "SNPE", "nle": "NLE", "snle": "SNLE", "nre": "NRE", "snre": "SNRE",
                "rejection_abc": "REJ-ABC", "smc_abc": "SMC-ABC"}
_SBIBM = {  # task -> {method: (1,000, 10,000, 100,000)}
    "two_moons": {"NLE": (0.77, 0.71, 0.67), "NPE": (0.73, 0.61, 0.54), "NRE": (0.82, 0.76, 0.63),
                  "REJ-ABC": (0.96, 0.85, 0.66), "SMC-ABC": (0.92, 0.71, 0.66), "SNLE": (0.66, 0.57, 0.58),
                  "SNPE": (0.64, 0.55, 0.53), "SNRE": (0.65, 0.58, 0.56)},
    "slcp": {"NLE": (0.95, 0.77, 0.7), "NPE": (0.98, 0.9, 0.83), "NRE": (0.97, 0.95, 0.92),
             "REJ-ABC": (0.98, 0.97, 0.96), "SMC-ABC": (0.98, 0.97, 0.96), "SNLE": (0.92, 0.71, 0.58),
             "SNPE": (0.97, 0.84, 0.67), "SNRE": (0.97, 0.92, 0.72)},
    "gaussian_mixture": {"NLE": (0.81, 0.73, 0.76), "NPE": (0.73, 0.66, 0.56), "NRE": (0.78, 0.75, 0.73),
                         "REJ-ABC": (0.88, 0.79, 0.77), "SMC-ABC": (0.8, 0.75, 0.66), "SNLE": (0.7, 0.7, 0.62),
                         "SNPE": (0.7, 0.58, 0.53), "SNRE": (0.72, 0.66, 0.54)},
    "gaussian_linear": {"NLE": (0.65, 0.55, 0.51), "NPE": (0.69, 0.55, 0.51), "NRE": (0.67, 0.56, 0.54),
                        "REJ-ABC": (0.91, 0.86, 0.8), "SMC-ABC": (0.92, 0.83, 0.73), "SNLE": (0.63, 0.55, 0.52),
                        "SNPE": (0.65, 0.54, 0.51), "SNRE": (0.67, 0.54, 0.51)},
}
_BUDGET_COLUMN = {1_000: 0, 10_000: 1, 100_000: 2}


def published(task: str, method: str, budget: int) -> str:
    """The benchmark's mean C2ST for ``method`` on ``task`` at ``budget`` simulations, or ``""``."""
    name = _SBIBM_NAMES.get(method.removeprefix("sbi-"))
    values = _SBIBM.get(task, {}).get(name)
    if values is None or budget not in _BUDGET_COLUMN:
        return ""
    return f"{values[_BUDGET_COLUMN[budget]]:.2f}"


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
        inference = NPE(prior=sbi_prior(sim.prior))
        inference.append_simulations(theta, x).train()
        post = inference.build_posterior()

    def sample(xo, n):
        with torch.random.fork_rng():
            torch.manual_seed(1)
            return post.sample((n,), x=xo, show_progress_bars=False)

    return sample


def evaluate(task, method, budget, obs, seed):
    """Mean C2ST of ``method`` on ``task`` with ``budget`` simulations; (score, seconds)."""
    start = time.perf_counter()
    if method == "npe":
        sampler = npe_sampler(task, budget, seed)
        score = mean_c2st(sampler, obs)
    elif method == "sbi-npe":
        sampler = sbi_npe_sampler(task, budget, seed)
        score = mean_c2st(sampler, obs)
    else:  # every other method: one run_sequential per observation (10 rounds of budget/10 if sequential)
        sim = sbi_core.get_simulator(task)
        sequential = sbi_core.methods.get_method(method).sequential
        scores = []
        for o in obs:
            run = sbi_core.run_sequential(
                sim, sim.prior, o.x, method=method, num_rounds=10 if sequential else 1,
                simulations_per_round=budget // 10 if sequential else budget, seed=seed,
                **({"density_estimator": "maf"} if method in ("nle", "snle") else {}),  # NLE's measured choice
            )
            samples = run.posterior.sample((len(o.reference),), x=o.x, seed=1)
            scores.append(sbi_core.c2st(o.reference, samples))
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
                ref = published(task, method, budget)
                rows.append((task, method, budget, score, secs, ref))
                print(f"{task:18} {method:8} {budget:>6}  C2ST {score:.3f}  {secs:6.1f} s  {ref}", flush=True)

    lines = [
        f"{args.observations} observations per task (parameters from the prior, seed 1000), "
        f"training seed {args.seed}, {args.threads} torch threads; {machine()}.",
        "Sequential methods (SNPE, TSNPE, SNLE, SNRE, SMC-ABC): 10 rounds (generations) of budget/10; one-round "
        "methods (NPE, NLE, NRE, rejection ABC) spend the budget on the prior. C2ST on 10,000 posterior draws "
        "(MCMC for NLE/NRE, the kernel density on the accepted particles for ABC) against 10,000 reference "
        "draws. sbi-npe: the `sbi` toolbox's default NPE on the same simulations. Published: SBI benchmark, "
        "mean C2ST over its 10 observations.",
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

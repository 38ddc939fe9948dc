"""ABC: our rejection ABC and SMC-ABC on two moons, and our SMC-ABC against pyABC's ABCSMC.

1. Two moons at 10,000 simulations, C2ST of 10,000 posterior draws against the
   reference posterior (mean over observations): rejection ABC (one round of
   10,000) and SMC-ABC (10 generations x 1,000); the SBI benchmark's means are
   0.85 and 0.71.
2. The same problem for ours and pyABC's ``ABCSMC`` (``pyabc==0.13.0``, a
   benchmark-only dependency): a 1-D Gaussian with a known posterior and two
   moons, 10,000 simulations each, the same z-scored Euclidean distance (the
   scale of our generation 0 is handed to pyABC), pyABC's population size set
   to the particles our quantile keeps per generation; pyABC's last population
   goes through our kernel density, so the comparison is of the SMC schemes.
   Reported: posterior mean / std, C2ST against the exact posterior, and the
   epsilon trajectory.

The ABC estimators are driven by :func:`run_abc`, the run loop's own steps
(propose, simulate, append, fit, snapshot) without its per-round extras.

    python bench/abc_vs_pyabc.py [--observations 3] [--skip-pyabc] [--no-write]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import warnings

import numpy as np
import torch

import sbi_core
from common import NUM_REFERENCE, machine, observations, timer, write_section
from sbi_core import c2st
from sbi_core.methods.abc.rejection import RejectionABC
from sbi_core.methods.abc.smc import SMCABC
from sbi_core.posteriors.particles import ParticlePosterior
from sbi_core.stats.priors import Prior

GAUSS_SIGMA, GAUSS_X = 0.5, 0.8  # x ~ N(theta, 0.5^2), theta ~ U(-3, 3), x_o = 0.8


def run_abc(estimator, prior, simulate, x_obs, rounds: int, n: int, seed: int = 0):
    """Rounds of the run loop for an ABC estimator; ``simulate(theta (n, D), g) -> (n, K)``."""
    g, gs = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    estimator.set_observation(x_obs)
    posterior = None
    for r in range(rounds):
        proposal = prior if r == 0 else estimator.next_proposal(posterior, x_obs, g)
        theta = proposal.sample((n,), generator=g) if r == 0 else proposal.sample((n,), x=x_obs, generator=g)
        estimator.append_simulations(theta, simulate(theta, gs))
        estimator.fit()
        posterior = estimator.build_posterior(default_x=x_obs)
    return posterior


# ---- problems -----------------------------------------------------------------
def gaussian_problem():
    prior = Prior.from_spec([{"name": "mu", "dist": "uniform", "low": -3.0, "high": 3.0}])

    def simulate(theta, g):
        return theta + GAUSS_SIGMA * torch.randn(theta.shape, generator=g)

    g = torch.Generator().manual_seed(7)
    exact = GAUSS_X + GAUSS_SIGMA * torch.randn(NUM_REFERENCE, 1, generator=g)  # truncation at +-3 is negligible
    return prior, simulate, torch.tensor([GAUSS_X]), exact


def two_moons_problem(obs):
    sim = sbi_core.get_simulator("two_moons")
    return sim.prior, (lambda theta, g: sim.simulate(theta, generator=g)), obs.x, obs.reference


# ---- pyABC ----------------------------------------------------------------------
def run_pyabc(prior: Prior, simulate, x_obs, scale, population: int, budget: int, generations: int, seed: int):
    """pyABC's ABCSMC (single core, in-memory-like temp sqlite) on the same problem and distance."""
    import pyabc

    np.random.seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    names = prior.names
    lo, hi = prior.support_bounds[:, 0].tolist(), prior.support_bounds[:, 1].tolist()
    parameter_prior = pyabc.Distribution(**{n: pyabc.RV("uniform", a, b - a) for n, a, b in zip(names, lo, hi)})
    s = scale.numpy()

    def model(p):
        theta = torch.tensor([[float(p[n]) for n in names]], dtype=torch.float32)
        return {"x": simulate(theta, g)[0].double().numpy()}

    def distance(a, b):
        return float(np.linalg.norm((a["x"] - b["x"]) / s))

    abc = pyabc.ABCSMC(model, parameter_prior, distance, population_size=population,
                       sampler=pyabc.sampler.SingleCoreSampler(), eps=pyabc.epsilon.MedianEpsilon())
    with tempfile.TemporaryDirectory() as tmp:
        abc.new("sqlite:///" + tmp + "/abc.db", {"x": x_obs.double().numpy()})
        history = abc.run(max_nr_populations=generations, max_total_nr_simulations=budget)
        df, w = history.get_distribution(m=0, t=history.max_t)
        pops = history.get_all_populations()
        eps = [float(e) for e in pops["epsilon"].tolist() if np.isfinite(e)]
        total = int(history.total_nr_simulations)
    particles = torch.tensor(df[names].to_numpy(), dtype=torch.float32)
    post = ParticlePosterior(prior, particles, torch.tensor(w, dtype=torch.float64), x_obs,
                             epsilon=eps[-1], acceptance_rate=float("nan"))
    return post, eps, total


def trajectory(eps) -> str:
    return " → ".join(f"{e:.3g}" for e in eps)


def summary(samples: torch.Tensor) -> str:
    return ", ".join(f"{m:.3f} / {s:.3f}" for m, s in zip(samples.mean(0).tolist(), samples.std(0).tolist()))


def compare_row(name, prior, simulate, x_obs, exact, args):
    """Ours vs pyABC on one problem: mean/std, C2ST, epsilon trajectories (in the same z-scored units)."""
    est = SMCABC(prior)
    with timer() as t:
        ours = run_abc(est, prior, simulate, x_obs, args.generations, args.per_generation, seed=args.seed)
    ours_s = ours.sample((NUM_REFERENCE,), seed=1)
    rows = [f"| {name} | sbi_core SMC-ABC | {est.generation + 1} | {args.generations * args.per_generation:,} | "
            f"{summary(ours_s)} | {c2st(exact, ours_s):.3f} | "
            f"{trajectory(h['epsilon'] for h in est.history)} | {t['seconds']:.1f} |"]
    if not args.skip_pyabc:
        population = max(20, round(est.quantile * args.per_generation))
        with timer() as t, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs, eps, total = run_pyabc(prior, simulate, x_obs, est.scale, population,
                                           args.generations * args.per_generation, args.generations, args.seed)
        s = theirs.sample((NUM_REFERENCE,), seed=1)
        rows.append(f"| {name} | pyABC ABCSMC (population {population}) | {len(eps)} | {total:,} | {summary(s)} | "
                    f"{c2st(exact, s):.3f} | {trajectory(eps)} | {t['seconds']:.1f} |")
    rows.append(f"| {name} | exact | | | {summary(exact)} | 0.5 | | |")
    return rows


def two_moons_table(obs, args):
    prior, simulate, _, _ = two_moons_problem(obs[0])
    rows = []
    for label, make, rounds, n in [
        ("rejection ABC, 1 x 10,000", lambda: RejectionABC(prior), 1, 10_000),
        (f"SMC-ABC, {args.generations} x {args.per_generation:,}", lambda: SMCABC(prior), args.generations,
         args.per_generation),
    ]:
        scores, eps = [], []
        with timer() as t:
            for o in obs:
                post = run_abc(make(), prior, simulate, o.x, rounds, n, seed=args.seed)
                scores.append(c2st(o.reference, post.sample((NUM_REFERENCE,), seed=1)))
                eps.append(post.sampling_report["epsilon"])
        target = 0.85 if rounds == 1 else 0.71
        rows.append(f"| {label} | {sum(scores) / len(scores):.3f} | {target} | "
                    f"{', '.join(f'{s:.3f}' for s in scores)} | {', '.join(f'{e:.3g}' for e in eps)} | "
                    f"{t['seconds'] / len(obs):.1f} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--observations", type=int, default=3)
    ap.add_argument("--generations", type=int, default=10)
    ap.add_argument("--per-generation", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-pyabc", action="store_true", help="ours only (no pyabc install needed)")
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    obs = observations("two_moons", args.observations)

    moons = two_moons_table(obs, args)
    head = ["| two moons, 10,000 simulations | mean C2ST | SBI benchmark | per observation | final epsilon | s / obs |",
            "|---|---:|---:|---|---|---:|"]
    compare = ["| problem | method | generations | simulations | posterior mean / std | C2ST vs exact | epsilon | s |",
               "|---|---|---:|---:|---|---:|---|---:|"]
    compare += compare_row(f"Gaussian 1-D (x_o = {GAUSS_X})", *gaussian_problem(), args)
    compare += compare_row("two moons, observation 1", *two_moons_problem(obs[0]), args)
    body = "\n".join([
        "## ABC: rejection and SMC-ABC (`bench/abc_vs_pyabc.py`)", "",
        f"Machine: {machine()}; {args.threads} thread(s); {len(obs)} two-moons observations "
        "(`bench/common.py`), C2ST of 10,000 draws of the kernel-density posterior against 10,000 reference draws.",
        "", *head, *moons, "",
        "Ours against pyABC 0.13.0's ABCSMC (median epsilon, single-core sampler), same budget and distance "
        "(z-scored by our generation 0's scale); pyABC's last population through our kernel density:", "",
        *compare,
    ])
    print(body)
    if not args.no_write:
        write_section("abc", body)


if __name__ == "__main__":
    main()

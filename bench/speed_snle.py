"""Speed: sbi_core SNLE against the ``sbi`` toolbox's SNLE (its default MCMC), 10 rounds x 1,000 on two moons.

Both run the same sequential recipe at the same observations, one after the
other in one process with the same torch thread count: round 1 simulates
from the prior; every later round simulates at 1,000 parameters drawn from
the last posterior at ``x_o`` (by MCMC); the likelihood network is trained on
all pairs so far. Timed: the whole run, simulations, training and every
round's MCMC included, plus the final 10,000 posterior draws that the C2ST
scores against the exact two-moons posterior. ``sbi`` keeps its defaults
(MAF likelihood, ``slice_np_vectorized`` with 20 chains, 200 warm-up steps,
``resample`` initialisation). ``sbi`` is a benchmark-only dependency
(``pip install -r bench/requirements.txt``).

    python bench/speed_snle.py [--threads 2] [--observations 1] [--rounds 10] [--simulations 1000]
"""

from __future__ import annotations

import argparse
import sys

import torch

import sbi_core
from common import NUM_REFERENCE, machine, observations, timer, write_section


def run_sbi_core(obs, rounds: int, per_round: int, seed: int):
    """``(seconds, samples (NUM_REFERENCE, 2))`` of one sbi_core SNLE run at ``obs.x``."""
    sim = sbi_core.get_simulator("two_moons")
    with timer() as t:
        run = sbi_core.run_sequential(sim, sim.prior, obs.x, method="snle", num_rounds=rounds,
                                      simulations_per_round=per_round, seed=seed, density_estimator="maf")
        samples = run.posterior.sample((NUM_REFERENCE,), x=obs.x, seed=1)
    return t["seconds"], samples


def run_sbi(obs, rounds: int, per_round: int, seed: int):
    """The same recipe with the ``sbi`` toolbox's SNLE and its default MCMC."""
    from sbi.inference import NLE
    from sbi.utils import BoxUniform

    sim = sbi_core.get_simulator("two_moons")
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        with timer() as t:
            prior = BoxUniform(-torch.ones(2), torch.ones(2))
            inference = NLE(prior=prior)
            proposal = prior
            for _ in range(rounds):
                theta = proposal.sample((per_round,))
                x = sim.simulate(theta, generator=g)
                estimator = inference.append_simulations(theta, x).train()
                posterior = inference.build_posterior(estimator).set_default_x(obs.x)
                proposal = posterior
            samples = posterior.sample((NUM_REFERENCE,), show_progress_bars=False)
    return t["seconds"], samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--observations", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--simulations", type=int, default=1000, help="simulations per round")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-sbi", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for k, o in enumerate(observations("two_moons", args.observations)):
        ours_s, ours = run_sbi_core(o, args.rounds, args.simulations, args.seed)
        ours_c = sbi_core.c2st(o.reference, ours)
        print(f"observation {k + 1}: sbi_core SNLE {ours_s:.1f} s, C2ST {ours_c:.3f}", flush=True)
        theirs_s, theirs_c = float("nan"), float("nan")
        if not args.skip_sbi:
            theirs_s, theirs = run_sbi(o, args.rounds, args.simulations, args.seed)
            theirs_c = sbi_core.c2st(o.reference, theirs)
            print(f"observation {k + 1}: sbi SNLE {theirs_s:.1f} s, C2ST {theirs_c:.3f}", flush=True)
        rows.append((k + 1, ours_s, ours_c, theirs_s, theirs_c))

    lines = [
        f"Two moons, SNLE {args.rounds} rounds x {args.simulations:,} simulations, {len(rows)} observation(s) "
        f"(seed 1000), {args.threads} torch threads; {machine()}. Time: the whole run plus the final "
        f"{NUM_REFERENCE:,} posterior draws. Both learn the likelihood with a MAF; sbi 0.27 at its defaults (slice_np_vectorized, 20 chains).",
        f"Command: `python bench/speed_snle.py {' '.join(sys.argv[1:])}`",
        "",
        "| observation | sbi_core (s) | sbi_core C2ST | sbi (s) | sbi C2ST | speed-up |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {k} | {a:.0f} | {b:.3f} | {c:.0f} | {d:.3f} | {c / a:.1f}x |" for k, a, b, c, d in rows]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section("speed_snle", "## Speed: SNLE, sbi_core vs sbi, 10 x 1,000 on two moons\n\n" + report)


if __name__ == "__main__":
    main()

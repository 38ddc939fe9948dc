"""Calibration checks: sbi_core's SBC, coverage and TARP beside the ``sbi`` toolbox's, on the same posteriors.

For each task one sbi_core NPE posterior is trained (``--budget`` simulations
from the prior, at most ``--max-epochs`` epochs). ``--datasets`` test pairs
``theta ~ prior, x ~ simulator(theta)`` (seed 2000, apart from the training
data) are then checked by

* sbi_core: ``run_sbc`` + ``check_sbc``, ``run_tarp`` + ``check_tarp`` (each
  sampling on its own, as a single check would), and ``expected_coverage``
  (HPD and central) on one shared ``draw_for_datasets`` pass;
* sbi 0.27: ``sbi.diagnostics.run_sbc`` + ``check_sbc`` and ``run_tarp`` +
  ``check_tarp`` on the *same* posterior, wrapped so sbi can call it
  (``sample_batched`` returning sbi's ``(L, N, D)`` layout); sbi's expected
  coverage is ``run_sbc`` with ``reduce_fns=log_prob``, the truth counted as
  inside the level-``c`` HPD region when fewer than ``c L`` draws are denser.

Both libraries see the same thetas and xs; their draws come from independent
streams, so their numbers differ by sampling noise as well as by method. sbi's
TARP bins the ``f_i`` into ``N // 10`` bins between their min and max, so its
KS p-value is near 1 for few datasets whatever the posterior; ours uses a
fixed grid of 101 points on [0, 1].
Finally SBC with 200 datasets x 100 draws on the two-moons posterior is timed
on one torch thread, batched (``Posterior.sample_batched``) and with one
``.sample`` call per dataset; the target is 10 s.

    python bench/calibration.py [--tasks linear_regression two_moons sir] [--budget 2000]
                                [--datasets 200] [--samples 100] [--max-epochs 100] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import torch

import sbi_core
from common import machine, training_data, write_section
from sbi_core.diagnostics import (
    check_sbc,
    check_tarp,
    draw_for_datasets,
    expected_coverage,
    run_sbc,
    run_tarp,
)

LEVELS = (0.5, 0.9)
TEST_SEED = 2000


class SbiView:
    """An sbi_core posterior as sbi's diagnostics call it: ``sample_batched((L,), x=xs) -> (L, N, D)``."""

    def __init__(self, posterior: sbi_core.Posterior, seed: int):
        self._posterior = posterior
        self._generator = torch.Generator().manual_seed(seed)

    def sample_batched(self, sample_shape, x, **_ignored):
        (num,) = tuple(sample_shape)
        return self._posterior.sample_batched(num, x, generator=self._generator).permute(1, 0, 2)

    def sample(self, sample_shape, x=None, **_ignored):
        return self._posterior.sample(sample_shape, x=x, generator=self._generator)

    def log_prob(self, theta, x):
        return self._posterior.log_prob(theta, x=x, normalize=False)


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def test_pairs(task: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    sim = sbi_core.get_simulator(task)
    g = torch.Generator().manual_seed(TEST_SEED)
    thetas = sim.prior.sample((n,), generator=g)
    return thetas, sim.simulate(thetas, generator=g)


def ours(post, thetas, xs, num, seed) -> dict:
    (ranks, dap), t_sbc = timed(run_sbc, thetas, xs, post, num, seed=seed)
    checks, t_check = timed(check_sbc, ranks, thetas, dap, num)
    (ecp, alpha), t_tarp = timed(run_tarp, thetas, xs, post, num, seed=seed)
    atc, tarp_p = check_tarp(ecp, alpha)
    start = time.perf_counter()
    draws = draw_for_datasets(thetas, xs, post, num, seed=seed)
    hpd = expected_coverage(thetas, xs, post, LEVELS, kind="hpd", samples=draws.samples)
    central = expected_coverage(thetas, xs, post, LEVELS, kind="central", samples=draws.samples)
    t_cov = time.perf_counter() - start
    return {
        "ks": checks["ks_pvals"].tolist(), "c2st_ranks": checks["c2st_ranks"].tolist(),
        "c2st_dap": checks["c2st_dap"].tolist(), "hpd": hpd.coverage.tolist(),
        "central": central.coverage.tolist(), "atc": atc, "tarp_p": tarp_p,
        "t_sbc": t_sbc, "t_check": t_check, "t_tarp": t_tarp, "t_cov": t_cov,
    }


def theirs(post, thetas, xs, num, seed) -> dict:
    from sbi import diagnostics as sd

    view = SbiView(post, seed + 1)  # draws independent of sbi_core's
    (ranks, dap), t_sbc = timed(sd.run_sbc, thetas, xs, view, num_posterior_samples=num, show_progress_bar=False)
    with torch.random.fork_rng():  # sbi's C2ST baselines and TARP references use torch's global RNG
        torch.manual_seed(seed)
        checks, t_check = timed(sd.check_sbc, ranks, thetas, dap, num_posterior_samples=num)
        (ecp, alpha), t_tarp = timed(sd.run_tarp, thetas, xs, view, num_posterior_samples=num, show_progress_bar=False)
    atc, tarp_p = sd.check_tarp(ecp, alpha)
    (lp_ranks, _), t_cov = timed(sd.run_sbc, thetas, xs, view, num_posterior_samples=num,
                                 reduce_fns=view.log_prob, show_progress_bar=False)
    denser = 1 - lp_ranks[:, 0] / num  # share of draws denser than the truth
    return {
        "ks": checks["ks_pvals"].tolist(), "c2st_ranks": checks["c2st_ranks"].tolist(),
        "c2st_dap": checks["c2st_dap"].tolist(), "hpd": [float((denser < c).float().mean()) for c in LEVELS],
        "central": None, "atc": atc, "tarp_p": float(tarp_p),
        "t_sbc": t_sbc, "t_check": t_check, "t_tarp": t_tarp, "t_cov": t_cov,
    }


def sbc_speed(post, task: str, seed: int) -> tuple[float, float]:
    """Seconds for SBC 200 x 100 on one thread: batched, and one ``.sample`` call per dataset."""

    class OneByOne:
        def sample(self, sample_shape, x, seed=None):
            return post.sample(sample_shape, x=x, seed=seed)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        thetas, xs = test_pairs(task, 200)
        _, batched = timed(run_sbc, thetas, xs, post, 100, seed=seed)
        _, looped = timed(run_sbc, thetas, xs, OneByOne(), 100, seed=seed)
    finally:
        torch.set_num_threads(threads)
    return batched, looped


def fmt(values, digits=2) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["linear_regression", "two_moons", "sir"])
    ap.add_argument("--budget", type=int, default=2000)
    ap.add_argument("--datasets", type=int, default=200)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--max-epochs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-sbi", action="store_true", help="sbi_core only (no sbi install needed)")
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=r"Number of .* should be on the order")
    warnings.filterwarnings("ignore", message=r"You are computing SBC checks with less than 100")

    rows, speed = [], None
    for task in args.tasks:
        sim = sbi_core.get_simulator(task)
        theta, x = training_data(task, args.budget, seed=args.seed)
        post, t_train = timed(sbi_core.NPE(sim.prior, seed=args.seed, max_epochs=args.max_epochs).train, theta, x)
        thetas, xs = test_pairs(task, args.datasets)
        print(f"{task}: trained in {t_train:.1f} s", flush=True)
        libs = [("sbi_core", ours)] + ([] if args.skip_sbi else [("sbi 0.27", theirs)])
        for lib, check in libs:
            r = check(post, thetas, xs, args.samples, args.seed)
            rows.append((task, lib, r))
            print(f"  {lib:8} KS p {fmt(r['ks'], 3)}  HPD {fmt(r['hpd'])}  ATC {r['atc']:+.3f}  "
                  f"SBC {r['t_sbc']:.2f} s  TARP {r['t_tarp']:.2f} s", flush=True)
        if task == "two_moons":
            speed = sbc_speed(post, task, args.seed)
            print(f"  SBC 200 x 100 on 1 thread: batched {speed[0]:.2f} s, one call per dataset {speed[1]:.2f} s")

    lines = [
        f"NPE (NSF, defaults, at most {args.max_epochs} epochs) on {args.budget:,} simulations per task, training "
        f"seed {args.seed}; {args.datasets} test datasets (seed {TEST_SEED}) x {args.samples} posterior draws; "
        f"{args.threads} torch thread(s); {machine()}.",
        "Both libraries check the same sbi_core posterior on the same datasets with their own draws. "
        "KS p and C2ST per parameter; coverage at 50 % / 90 % (central: per parameter, 50 % then 90 %); "
        "ATC < 0 overconfident, > 0 underconfident. Times in seconds; SBC and TARP each sample on their own, "
        "coverage includes one sampling pass (and, for HPD, a log_prob per dataset). "
        "sbi's C2ST of the ranks (about 0.72 on every task, for posteriors its own KS test calls uniform) compares "
        "the integer ranks with *continuous* uniform draws on [0, L], so its classifier partly learns integer "
        "versus non-integer; ours compares them with uniform integer ranks on 0..L, where 0.5 means uniform.",
        f"Command: `python bench/calibration.py {' '.join(sys.argv[1:])}`",
        "",
        "| task | library | SBC KS p | C2ST ranks | C2ST DAP | HPD coverage | central coverage | TARP ATC | TARP KS p "
        "| SBC (s) | check_sbc (s) | TARP (s) | coverage (s) |",
        "|---|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for task, lib, r in rows:
        central = "; ".join(fmt(col) for col in zip(*r["central"])) if r["central"] else "n/a"
        lines.append(
            f"| {task} | {lib} | {fmt(r['ks'], 3)} | {fmt(r['c2st_ranks'])} | {fmt(r['c2st_dap'])} | {fmt(r['hpd'])} "
            f"| {central} | {r['atc']:+.3f} | {r['tarp_p']:.3f} | {r['t_sbc']:.2f} | {r['t_check']:.1f} "
            f"| {r['t_tarp']:.2f} | {r['t_cov']:.2f} |"
        )
    if speed is not None:
        lines += ["", f"SBC of 200 datasets x 100 draws on the two-moons posterior, 1 torch thread: "
                      f"**{speed[0]:.2f} s** batched (`Posterior.sample_batched`; target 10 s), "
                      f"{speed[1]:.2f} s with one `.sample` call per dataset."]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section("calibration", "## Calibration: SBC, coverage and TARP beside sbi\n\n" + report)


if __name__ == "__main__":
    main()

"""C2ST's two engines side by side: scikit-learn's five fits against the five folds trained at once in torch.

The app scores every round of a run on a built-in model against its exact posterior
(:mod:`sbi_core.diagnostics.reference`), with the sample size and epochs of that score
(:func:`~sbi_core.diagnostics.reference.reference_sample_size` a side, 200 epochs). Here both engines of
:func:`sbi_core.c2st` score the same pairs of sets, one after the other in one process on one torch thread
(scikit-learn's BLAS limited to one thread too), for every built-in model with an exact posterior:

- *exact*: exact samples against other exact samples (the right answer is 0.5);
- *blurred*: against exact samples plus Gaussian noise of 0.3 posterior sds per parameter;
- *shifted*: against exact samples moved by 0.5 posterior sds in every parameter.

Reported: each engine's mean and spread over ``--seeds`` seeds (the classifier's seed and the draws),
its CPU time per score, and the speed-up.

    python bench/c2st_engines.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import sbi_core
from common import machine, write_section
from sbi_core.diagnostics.reference import MAX_ITER, reference_sample_size


def candidates(exact: torch.Tensor, other: torch.Tensor, g: torch.Generator) -> dict[str, torch.Tensor]:
    sd = exact.std(0)
    return {"exact": other,
            "blurred": other + 0.3 * sd * torch.randn(other.shape, generator=g),
            "shifted": other + 0.5 * sd}


def score(engine: str, a: torch.Tensor, b: torch.Tensor, seed: int) -> tuple[float, float]:
    from threadpoolctl import threadpool_limits

    t = time.thread_time()
    with threadpool_limits(limits=1):
        value = sbi_core.c2st(a, b, seed=seed, max_iter=MAX_ITER, engine=engine)
    return value, time.thread_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    sbi_core.c2st(torch.randn(50, 2), torch.randn(50, 2))  # scikit-learn's import, outside the timing
    rows = []
    times = {"sklearn": 0.0, "torch": 0.0}
    for name in sbi_core.list_simulators():
        sim = sbi_core.get_simulator(name)
        if not getattr(sim, "has_reference_posterior", False):
            continue
        n = reference_sample_size(sim.prior.dim)
        results: dict[str, dict[str, list]] = {}
        for seed in range(args.seeds):
            exact = sim.reference_posterior(sim.default_observation, n, seed=seed)
            other = sim.reference_posterior(sim.default_observation, n, seed=1000 + seed)
            g = torch.Generator().manual_seed(seed)
            for kind, cand in candidates(exact, other, g).items():
                for engine in ("sklearn", "torch"):
                    value, seconds = score(engine, exact, cand, seed)
                    results.setdefault(kind, {}).setdefault(engine, []).append((value, seconds))
                    times[engine] += seconds
        for kind, by_engine in results.items():
            cells = []
            for engine in ("sklearn", "torch"):
                values = [v for v, _ in by_engine[engine]]
                cells.append(f"{statistics.mean(values):.3f} ± {statistics.pstdev(values):.3f}")
            sk = statistics.mean(s for _, s in by_engine["sklearn"])
            to = statistics.mean(s for _, s in by_engine["torch"])
            rows.append(f"| {sim.title} | {sim.prior.dim} | {n} | {kind} | {cells[0]} | {cells[1]} | "
                        f"{sk:.2f} | {to:.2f} | {sk / to:.1f}x |")
            print(rows[-1], flush=True)
    body = "\n".join([
        "## C2ST engines: scikit-learn's five fits against the folds trained at once (`bench/c2st_engines.py`)",
        "",
        f"{machine()}; one thread. Each row: {args.seeds} seeds; n exact samples a side "
        f"(the app's per-round score: `reference_sample_size`, {MAX_ITER} epochs).",
        f"Command: `python bench/c2st_engines.py --seeds {args.seeds}`",
        "",
        "| model | D | n | candidate | sklearn C2ST | torch C2ST | sklearn s | torch s | speed-up |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"All scores: scikit-learn {times['sklearn']:.1f} CPU-s, torch {times['torch']:.1f} CPU-s "
        f"({times['sklearn'] / times['torch']:.1f}x).",
    ])
    write_section("c2st_engines", body)


if __name__ == "__main__":
    main()

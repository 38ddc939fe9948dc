"""Where training time goes: seconds per epoch of sbi_core's FMPE, NPSE and NPE beside sbi 0.27's FMPE and
NPSE, the same simulations, a fixed number of epochs each, one process.

    /tmp/sbivenv/bin/python bench/train_profile.py [--task two_moons] [--budget 10000] [--epochs 20]
                                                   [--methods fmpe npse npe sbi-fmpe sbi-npse] [--threads 1]

Run it in a Python that has sbi (the venv of ``bench/requirements.txt``, which also sees sbi_core) for the
sbi rows; without sbi only sbi_core's rows are measured. Every method trains ``--epochs`` epochs exactly
(no early stopping), so the rows compare the cost of an epoch; ``bench/continuous.py`` gives the epochs
each method needs and the accuracy it reaches. The first optimizer a process makes imports
``torch._dynamo`` (about 1 s on these machines), so a warm-up optimizer is made before any timing.

For the split of an epoch into forward, backward and optimizer work, run one method under py-spy::

    py-spy record -f raw -r 200 -o fmpe.txt -- python bench/train_profile.py --methods fmpe --epochs 20
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sbi_core  # noqa: E402
from common import sbi_prior, training_data  # noqa: E402
from sbi_core.nn.training import auto_batch_size, vector_field_batch_size  # noqa: E402

OURS = {"fmpe": "FMPE", "npse": "NPSE", "npe": "NPE"}
SBI = {"sbi-fmpe": "FMPE", "sbi-npse": "NPSE"}


def measure(method: str, task: str, budget: int, epochs: int, seed: int) -> dict:
    """Train ``method`` for exactly ``epochs`` epochs; its seconds, steps per epoch and seconds per epoch."""
    sim = sbi_core.get_simulator(task)
    theta, x = training_data(task, budget, seed=seed)
    start = time.perf_counter()
    if method in OURS:
        est = getattr(sbi_core, OURS[method])(sim.prior, seed=seed, max_epochs=epochs, patience=epochs + 1)
        est.train(theta, x)
        seconds = time.perf_counter() - start
        done = est.last_result.epochs
        n_train = budget - round(0.1 * budget)  # the training part after the 10 % validation split
        batch = (auto_batch_size if method == "npe" else vector_field_batch_size)(n_train)
    else:
        import sbi.inference

        torch.manual_seed(seed)
        inference = getattr(sbi.inference, SBI[method])(prior=sbi_prior(sim.prior), show_progress_bars=False)
        inference.append_simulations(theta, x).train(max_num_epochs=epochs, stop_after_epochs=epochs + 1)
        seconds = time.perf_counter() - start
        done = inference.summary["epochs_trained"][-1]
        batch = 200  # sbi's default training_batch_size
    return {"method": method, "seconds": seconds, "epochs": done, "per_epoch": seconds / max(done, 1),
            "batch": batch}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="two_moons")
    p.add_argument("--budget", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--methods", nargs="+", default=[*OURS, *SBI], choices=[*OURS, *SBI])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # the one-time torch._dynamo import, outside the timing
    have_sbi = importlib.util.find_spec("sbi") is not None
    print(f"{args.task}, {args.budget:,} simulations, {args.epochs} epochs each, {args.threads} torch thread(s)")
    print(f"{'method':10} {'epochs':>6} {'seconds':>8} {'s / epoch':>10} {'batch':>6}")
    for method in args.methods:
        if method in SBI and not have_sbi:
            print(f"{method:10} (sbi is not installed in this Python: run it in the venv of bench/requirements.txt)")
            continue
        row = measure(method, args.task, args.budget, args.epochs, args.seed)
        print(f"{row['method']:10} {row['epochs']:>6} {row['seconds']:>8.1f} {row['per_epoch']:>10.3f} "
              f"{row['batch']:>6}", flush=True)


if __name__ == "__main__":
    main()

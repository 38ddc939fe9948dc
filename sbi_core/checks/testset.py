"""The test datasets the checks use: pairs ``(theta_i, x_i)`` the posterior is asked about.

Three sources (see :mod:`.plan` for which run gets which):

* **simulated** -- ``theta_i ~ p~(theta)`` (the prior, or TSNPE's last
  truncated region), ``x_i ~ p(x | theta_i)`` from the run's own simulator,
  in batches, with progress and cancellation between batches. Pairs whose
  simulation returned NaN or infinity are dropped and counted, never fatal;
* **table** -- the validation rows of a run trained on a table. Training
  (:func:`sbi_core.nn.training.train`) splits the ``n`` valid pairs with one
  ``randperm(n)`` drawn first from the run's ``"training"`` stream; its first
  ``n_val = min(max(round(f n), 2), n - 1)`` entries are the validation rows.
  The pairs are saved in training order (``round_0/theta.npy``, ``x.npy``), so
  :func:`validation_indices` redraws the same permutation from the same seed
  without changing any stream of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
from torch import Tensor

from sbi_core.errors import SBIError
from sbi_core.nn.training import TrainConfig
from sbi_core.run.spec import RunSpec
from sbi_core.simulators.sources import SimulatorSource
from sbi_core.stats.seeds import SeedPlan

__all__ = ["TestSet", "simulate_test_set", "table_test_set", "validation_indices", "MIN_TEST_DATASETS"]

MIN_TEST_DATASETS = 10  # fewer valid test datasets than this say nothing about calibration


@dataclass
class TestSet:
    """Test pairs ``theta (N, D)``, ``x (N, K)`` and where they came from.

    source: ``"prior"``, ``"truncated"`` or ``"table"``.
    num_requested: datasets asked for; num_invalid: dropped (NaN or infinite simulation).
    """

    theta: Tensor
    x: Tensor
    source: str
    num_requested: int
    num_invalid: int = 0

    @property
    def size(self) -> int:
        return int(self.theta.shape[0])

    def to_dict(self) -> dict:
        return {"source": self.source, "size": self.size, "num_requested": self.num_requested,
                "num_invalid": self.num_invalid}


def _enough(n_valid: int, n_total: int, what: str) -> None:
    if n_valid < MIN_TEST_DATASETS:
        raise SBIError(
            f"Only {n_valid} of {n_total} {what} are usable (the others returned NaN or infinity); the checks need "
            f"at least {MIN_TEST_DATASETS}. Check the simulator for parameter values in the prior's range."
        )


def simulate_test_set(
    simulator,
    proposal,
    num: int,
    seeds: SeedPlan,
    source: str,
    on_progress: Optional[Callable[[int, int], None]] = None,
    cancel: Optional[Callable[[], bool]] = None,
) -> TestSet:
    """``num`` parameters from ``proposal`` (anything with ``sample((n,), generator=...)``) and one simulation each.

    Randomness: streams ``"theta"`` and ``"simulate"`` of ``seeds`` (the check job's own plan).
    ``on_progress(done, total)`` after every batch; ``cancel()`` true raises
    :class:`~sbi_core.errors.Cancelled`. A failing simulator raises its own
    error (an uploaded one: :class:`~sbi_core.simulators.uploaded.SimulatorError`).
    """
    theta = proposal.sample((int(num),), generator=seeds.generator("theta")).reshape(int(num), -1)

    def progress(event: dict) -> None:
        if on_progress is not None:
            on_progress(int(event["done"]), int(event["total"]))

    x = SimulatorSource(simulator, seeds.generator("simulate")).simulate(theta, 0, progress, cancel)
    ok = torch.isfinite(x).all(1) & torch.isfinite(theta).all(1)
    _enough(int(ok.sum()), int(num), "test simulations")
    return TestSet(theta[ok], x[ok], source, int(num), int((~ok).sum()))


def validation_indices(num_pairs: int, spec: RunSpec) -> Tensor:
    """``(n_val,)`` indices of the validation rows among the ``num_pairs`` pairs a one-round run trained on."""
    generator = SeedPlan(int(spec.seed)).generator("training")
    perm = torch.randperm(int(num_pairs), generator=generator)
    n_val = min(max(int(round(float(spec.validation_fraction) * num_pairs)), TrainConfig().min_validation),
                num_pairs - 1)
    return perm[:n_val]


def table_test_set(theta: np.ndarray, x: np.ndarray, spec: RunSpec, limit: Optional[int] = None) -> TestSet:
    """The validation rows of a table run's saved pairs ``theta (n, D)``, ``x (n, K)`` (at most ``limit``)."""
    theta_t = torch.as_tensor(np.asarray(theta), dtype=torch.float32)
    x_t = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    idx = validation_indices(theta_t.shape[0], spec)
    if limit is not None:
        idx = idx[: int(limit)]
    th, xs = theta_t[idx], x_t[idx]
    ok = torch.isfinite(xs).all(1) & torch.isfinite(th).all(1)
    if int(ok.sum()) < MIN_TEST_DATASETS:
        raise SBIError(
            f"The table run has only {int(ok.sum())} validation rows; the checks need at least {MIN_TEST_DATASETS}. "
            "Train on a larger table (or a larger validation fraction) to check it."
        )
    return TestSet(th[ok], xs[ok], "table", len(idx), int((~ok).sum()))

"""The settings of one check job: how many test datasets, posterior draws per dataset, and the seed.

The checks draw ``N`` test parameters, simulate one dataset from each (or take
held-out table rows), and draw ``L`` posterior samples per dataset; every
check is computed from these ``N x L`` draws. The seed defaults to the run's
``"checks"`` stream (:class:`~sbi_core.stats.seeds.SeedPlan`), so checking the same
run twice gives the same numbers, and no stream of the run itself is touched.

``ensemble_members`` (0: off, the default; else 2 to 5) asks for a second opinion at the
observation: that many estimators in all, the run's own and ``ensemble_members - 1`` more
trained on the run's simulations with seeds of their own (:mod:`.ensemble`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Optional

from sbi_core.errors import SBIError
from sbi_core.stats.seeds import SeedPlan

__all__ = ["CheckOptions", "DATASETS_RANGE", "SAMPLES_RANGE", "ENSEMBLE_RANGE"]

DATASETS_RANGE = (20, 5000)
SAMPLES_RANGE = (10, 2000)
ENSEMBLE_RANGE = (2, 5)  # estimators compared at the observation, the run's own included (0: none)


def _whole(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SBIError(f"{name} must be a whole number from {lo:,} to {hi:,}, got {value!r}.")
    return value


@dataclass(frozen=True)
class CheckOptions:
    """``num_datasets`` test datasets, ``num_posterior_samples`` draws per dataset, ``seed`` (None: the run's),
    ``ensemble_members`` estimators compared at the observation (0: no ensemble)."""

    num_datasets: int = 200
    num_posterior_samples: int = 100
    seed: Optional[int] = None
    ensemble_members: int = 0

    def __post_init__(self) -> None:
        _whole("The number of test datasets", self.num_datasets, *DATASETS_RANGE)
        _whole("The number of posterior samples per dataset", self.num_posterior_samples, *SAMPLES_RANGE)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise SBIError(f"The checks' seed must be a whole number or empty, got {self.seed!r}.")
        k, (lo, hi) = self.ensemble_members, ENSEMBLE_RANGE
        if isinstance(k, bool) or not isinstance(k, int) or not (k == 0 or lo <= k <= hi):
            raise SBIError(f"The number of estimators to compare must be 0 (no comparison) or a whole number "
                           f"from {lo} to {hi}, got {k!r}.")

    def resolved(self, run_seed: int) -> "CheckOptions":
        """These options with the seed filled in from the run's seed (its ``"checks"`` stream)."""
        if self.seed is not None:
            return self
        return replace(self, seed=SeedPlan(int(run_seed)).seed_of("checks"))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Optional[dict]) -> "CheckOptions":
        if data is None:
            return cls()
        if isinstance(data, CheckOptions):
            return data
        if not isinstance(data, dict):
            raise SBIError("Check options are a mapping of num_datasets, num_posterior_samples, seed and "
                           "ensemble_members.")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise SBIError(f"Unknown check option(s): {', '.join(unknown)}.")
        return cls(**data)

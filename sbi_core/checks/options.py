"""The settings of one check job: how many test datasets, posterior draws per dataset, and the seed.

The checks draw ``N`` test parameters, simulate one dataset from each (or take
held-out table rows), and draw ``L`` posterior samples per dataset; every
check is computed from these ``N x L`` draws. The seed defaults to the run's
``"checks"`` stream (:class:`~sbi_core.stats.seeds.SeedPlan`), so checking the same
run twice gives the same numbers, and no stream of the run itself is touched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

from sbi_core.errors import SBIError
from sbi_core.stats.seeds import SeedPlan

__all__ = ["CheckOptions", "DATASETS_RANGE", "SAMPLES_RANGE"]

DATASETS_RANGE = (20, 5000)
SAMPLES_RANGE = (10, 2000)


def _whole(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SBIError(f"{name} must be a whole number from {lo:,} to {hi:,}, got {value!r}.")
    return value


@dataclass(frozen=True)
class CheckOptions:
    """``num_datasets`` test datasets, ``num_posterior_samples`` draws per dataset, ``seed`` (None: the run's)."""

    num_datasets: int = 200
    num_posterior_samples: int = 100
    seed: Optional[int] = None

    def __post_init__(self) -> None:
        _whole("The number of test datasets", self.num_datasets, *DATASETS_RANGE)
        _whole("The number of posterior samples per dataset", self.num_posterior_samples, *SAMPLES_RANGE)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise SBIError(f"The checks' seed must be a whole number or empty, got {self.seed!r}.")

    def resolved(self, run_seed: int) -> "CheckOptions":
        """These options with the seed filled in from the run's seed (its ``"checks"`` stream)."""
        if self.seed is not None:
            return self
        return CheckOptions(self.num_datasets, self.num_posterior_samples, SeedPlan(int(run_seed)).seed_of("checks"))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Optional[dict]) -> "CheckOptions":
        if data is None:
            return cls()
        if isinstance(data, CheckOptions):
            return data
        if not isinstance(data, dict):
            raise SBIError("Check options are a mapping of num_datasets, num_posterior_samples and seed.")
        unknown = sorted(set(data) - {"num_datasets", "num_posterior_samples", "seed"})
        if unknown:
            raise SBIError(f"Unknown check option(s): {', '.join(unknown)}.")
        return cls(**data)

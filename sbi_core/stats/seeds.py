"""The seed plan: every random stream of a run, derived from the run's one seed.

A run draws randomness for several independent purposes (the network's initial
weights, the training split and batch order, the parameters it simulates, the
simulator's noise, the posterior samples it keeps, the proposals it builds).
Each purpose is a *named stream* with its own ``torch.Generator``, so that
changing how many numbers one stream uses (say, a larger posterior sample)
leaves every other stream, and hence the rest of the run, unchanged.

The streams that existed before this module keep their historical seeds
(``seed + offset``), so a RunSpec stored by an earlier version reproduces the
same result; any new stream is spawned from ``numpy.random.SeedSequence`` on
the run's seed and the stream's name, which makes it statistically
independent of the others without another magic number.

Nothing here touches torch's or numpy's global RNG.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["SeedPlan", "STREAMS", "make_generator"]

# Historical offsets: part of the reproducibility contract of stored RunSpecs.
STREAMS = {
    "network": 0,  # initial weights of the flow (under torch.random.fork_rng)
    "training": 1,  # validation split, batch order, APT's atoms
    "theta": 1_000_003,  # the parameters each round simulates
    "simulate": 2_000_003,  # the simulator's noise
    "posterior": 3_000_017,  # the posterior samples kept per round
    "proposal": 4_000_037,  # building a round's proposal (TSNPE's region)
    "concentration": 5_000_011,  # prior draws that measure the 90 % region (sbi_core.stats.concentration)
}


@dataclass(frozen=True)
class SeedPlan:
    """Named random streams of one run.

    >>> plan = SeedPlan(0)
    >>> plan.seed_of("training")
    1
    >>> plan.generator("theta").initial_seed()
    1000003
    """

    seed: int

    def seed_of(self, stream: str) -> int:
        """The integer seed of ``stream`` (historical offset, or spawned from the name)."""
        if stream in STREAMS:
            return int(self.seed) + STREAMS[stream]
        entropy = [int(self.seed) & 0xFFFFFFFF, (int(self.seed) >> 32) & 0xFFFFFFFF, zlib.crc32(stream.encode())]
        return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> 1)

    def generator(self, stream: str) -> torch.Generator:
        """A fresh ``torch.Generator`` for ``stream``."""
        return torch.Generator().manual_seed(self.seed_of(stream))


def make_generator(seed: int | None = None, generator: torch.Generator | None = None) -> torch.Generator:
    """A generator from ``generator`` or ``seed``; a fresh randomly seeded one otherwise."""
    if generator is not None:
        return generator
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g

"""Where a round's simulations come from: a simulator run in batches, or a table made earlier.

A :class:`SimulationSource` answers ``simulate(theta (N, D), round_index) ->
x (N, K)`` for the run loop, emitting a ``simulation`` event after every
batch and consulting the cancel check between batches. Two sources exist:

* :class:`SimulatorSource`: calls a :class:`~sbi_core.simulators.Simulator`
  or any callable ``theta (n, D) -> x (n, K)`` (which owns its randomness), in
  batches of ``s = max(100, ceil(N / 10))`` rows by default, and checks it
  returns one row per parameter set;
* :class:`TableSource`: a table of simulations already made; its pairs *are*
  round 0, and it proposes nothing (``fixed_theta``).

Seeding, per batch
    A round of ``N`` simulations has ``B = ceil(N / s)`` batches. At the start of
    the round ``B`` seeds are drawn from the run's ``"simulate"`` stream ``g``::

        seeds = torch.randint(0, 2**62, (B,), generator=g)

    and batch ``b`` (rows ``b*s .. min(N, (b+1)*s) - 1``) is simulated with its own
    ``torch.Generator().manual_seed(seeds[b])``. So a round's ``x`` depends only on
    ``theta``, ``s`` and the stream's state, not on where or in what order its
    batches run (:mod:`sbi_core.simulators.fanout` may spread them across Dask workers), and
    ``g`` advances by exactly those ``B`` draws whatever the simulator draws: the
    state a checkpoint saves (``SimulatorSource.generator``) resumes bit for bit.
    A plain callable ignores its seed, but the seeds are drawn all the same.

Rows with NaN or infinite output are kept here and counted (the estimator
drops them); a round with more than :data:`MAX_INVALID_FRACTION` of them
fails with a message saying what to check.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Optional, Union

import torch
from torch import Tensor

from sbi_core.errors import Cancelled, SBIError
from sbi_core.events import EventCallback, simulation_event
from sbi_core.nn.training import keep_requested
from sbi_core.simulators import Simulator, fanout
from sbi_core.simulators.fanout import Batch

__all__ = ["SimulationSource", "SimulatorSource", "TableSource", "SimulatorLike", "MAX_INVALID_FRACTION",
           "MAX_INVALID_FRACTION_LIKELIHOOD",
           "count_invalid", "check_invalid", "SEED_HIGH"]

SimulatorLike = Union[Simulator, Callable[[Tensor], Tensor]]
MAX_INVALID_FRACTION = 0.5
SEED_HIGH = 2**62  # batch seeds are drawn from [0, SEED_HIGH)
MAX_INVALID_FRACTION_LIKELIHOOD = 0.02  # likelihood and ratio methods: see check_invalid


def count_invalid(x: Tensor) -> int:
    """Rows of ``x (N, K)`` with a NaN or infinite entry."""
    return int((~torch.isfinite(x).all(1)).sum())


def check_invalid(x: Tensor, round_index: int, biased_by_dropping: bool = False) -> int:
    """The invalid-row count of a round's ``x``, or an :class:`SBIError` when too many are invalid.

    A posterior estimator (NPE and its sequential forms) learns ``p(theta | x, valid)``, which is the
    posterior at a valid observation, so dropping invalid rows is harmless up to
    :data:`MAX_INVALID_FRACTION`. A likelihood or ratio estimator is not: it learns ``p(x | theta, valid)``
    and loses the factor ``P(valid | theta)``, so its posterior over-weights parameters where the
    simulator often fails. For those (``biased_by_dropping``) more than
    :data:`MAX_INVALID_FRACTION_LIKELIHOOD` invalid rows stop the run with a message.
    """
    invalid = count_invalid(x)
    n = x.shape[0]
    if biased_by_dropping and invalid > MAX_INVALID_FRACTION_LIKELIHOOD * n:
        raise SBIError(
            f"{invalid} of {n} simulations in round {round_index + 1} returned NaN or infinity. A method that "
            "learns the likelihood or a ratio would be biased by dropping them (it would favour parameters "
            "where the simulator fails). Narrow the prior to where the simulator works, or use NPE, SNPE or "
            "ABC, which handle failed simulations without bias."
        )
    if invalid > MAX_INVALID_FRACTION * n:
        raise SBIError(
            f"{invalid} of {n} simulations in round {round_index + 1} returned NaN or infinity. "
            "Check the simulator for parameter values in the prior's range, or narrow the prior."
        )
    return invalid


class SimulationSource:
    """Interface: ``simulate(theta, round_index, on_event, cancel) -> x``; ``fixed_theta`` for a table."""

    fixed_theta: Optional[Tensor] = None

    def simulate(self, theta: Tensor, round_index: int, on_event: EventCallback | None,
                 cancel: Callable[[], bool] | None) -> Tensor:
        raise NotImplementedError


class SimulatorSource(SimulationSource):
    """A simulator called in batches, each with a seed of its own (see the module docstring).

    Args:
        simulator: a :class:`Simulator` or a callable ``theta (n, D) -> x (n, K)``.
        generator: the run's ``"simulate"`` stream: one seed per batch is drawn from it.
        batch_size: simulations per batch ``s`` (``None``: ``max(100, ceil(N / 10))``).

    The batches run on the context's :func:`sbi_core.simulators.fanout.current` mapper (here,
    unless a Dask run task fans them out).
    """

    def __init__(self, simulator: SimulatorLike, generator: torch.Generator, batch_size: Optional[int] = None):
        self.simulator = simulator
        self.generator = generator
        self.batch_size = batch_size

    def batches(self, theta: Tensor) -> list[Batch]:
        """The round's batches ``(simulator, theta_b (n_b, D), seed_b)``, drawing ``B`` seeds from the stream."""
        n = theta.shape[0]
        size = self.batch_size or max(100, math.ceil(n / 10))
        count = math.ceil(n / size)
        seeds = torch.randint(0, SEED_HIGH, (count,), generator=self.generator).tolist()
        return [Batch(self.simulator, theta[b * size : (b + 1) * size], seed) for b, seed in enumerate(seeds)]

    @staticmethod
    def _checked(x: Tensor, chunk: Tensor) -> Tensor:
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.ndim == 1:
            x = x[:, None]
        if x.shape[0] != chunk.shape[0]:
            raise SBIError(
                f"The simulator returned {x.shape[0]} rows for {chunk.shape[0]} parameter sets; "
                "it must return one row per parameter set."
            )
        return x

    def simulate(self, theta: Tensor, round_index: int, on_event: EventCallback | None,
                 cancel: Callable[[], bool] | None) -> Tensor:
        n = theta.shape[0]
        batches = self.batches(theta)
        parts: list[Tensor] = []
        invalid = done = 0
        with contextlib.closing(fanout.current().map(batches)) as results:
            for batch, x in zip(batches, results, strict=True):
                x = self._checked(x, batch.theta)
                parts.append(x)
                done += x.shape[0]
                invalid += count_invalid(x)
                if on_event is not None:
                    on_event(simulation_event(round_index, done, n, invalid))
                if cancel is not None and (cancel() or keep_requested(cancel)):
                    raise Cancelled(f"cancelled while simulating round {round_index + 1}")
        return torch.cat(parts)


class TableSource(SimulationSource):
    """Pairs simulated earlier: ``theta (N, D)``, ``x (N, K)``; they are round 0 and the only round."""

    def __init__(self, theta: Tensor, x: Tensor):
        self.fixed_theta = torch.as_tensor(theta, dtype=torch.float32)
        self.x = torch.as_tensor(x, dtype=torch.float32)

    def simulate(self, theta: Tensor, round_index: int, on_event: EventCallback | None,
                 cancel: Callable[[], bool] | None) -> Tensor:
        if on_event is not None:
            n = self.x.shape[0]
            on_event(simulation_event(0, n, n, count_invalid(self.x)))
        return self.x

"""Rejection sampling in adaptive batches, with a time bound.

To draw ``n`` samples of ``t(theta) ∝ s(theta) 1[accept(theta)]`` from a
proposal ``s`` we can sample: draw batches from ``s`` and keep the accepted
draws. The kept draws follow ``t`` exactly; the fraction kept estimates
``P_s(accept)`` (for a posterior truncated to the prior's support, its
normaliser ``Z(x)``).

Each batch asks for the number still missing divided by the acceptance rate
so far (times 1.2), within ``[min_batch, max_batch]``, so a run needs few
batches whatever the rate. Sampling gives up with :class:`RejectionTooSlow`
when, after ``check_after`` draws, the rate is below ``min_acceptance`` or
``max_seconds`` have passed; callers turn that into a message for the user.
"""

from __future__ import annotations

import time
from typing import Callable

import torch
from torch import Tensor

__all__ = ["rejection_sample", "RejectionTooSlow"]


class RejectionTooSlow(Exception):
    """Too few draws are accepted to finish in time; ``rate`` is the acceptance so far."""

    def __init__(self, rate: float):
        super().__init__(f"acceptance rate {rate:.3g} is too low to finish in time")
        self.rate = rate


def rejection_sample(
    propose: Callable[[int], Tensor],
    accept: Callable[[Tensor], Tensor],
    n: int,
    *,
    max_seconds: float,
    min_acceptance: float = 0.0,
    first_rate: float = 1.0,
    min_batch: int = 256,
    max_batch: int = 200_000,
    check_after: int = 10_000,
) -> tuple[Tensor, float]:
    """``n`` accepted draws and the acceptance rate.

    Args:
        propose: ``m -> (m, D)`` draws from the proposal.
        accept: ``(m, D) -> (m,)`` bool, which draws to keep.
        n: how many draws to return.
        first_rate: the acceptance rate assumed for sizing the first batch.

    Returns:
        ``(n, D)`` samples and the fraction of all draws that were accepted.
    """
    kept: list[Tensor] = []
    have, drawn = 0, 0
    start = time.perf_counter()
    with torch.no_grad():
        while have < n:
            rate = have / drawn if drawn else first_rate
            batch = int(min(max((n - have) / max(rate, 1e-3) * 1.2, min_batch), max_batch))
            theta = propose(batch)
            ok = accept(theta)
            kept.append(theta[ok])
            have += int(ok.sum())
            drawn += batch
            if have < n and drawn >= check_after:
                rate = have / drawn
                if rate < min_acceptance or time.perf_counter() - start > max_seconds:
                    raise RejectionTooSlow(rate)
    return torch.cat(kept)[:n], have / drawn

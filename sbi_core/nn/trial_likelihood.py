r"""The likelihood of a set of repeated trials, one flow per trial: ``log q(x | theta) = sum_j log q(x_j | theta)``.

When one simulation is ``M`` independent trials ``x_1 ... x_M`` of ``D`` numbers each,
given ``theta`` (the data shape ``"trials"``, :mod:`sbi_core.stats.shapes`), the likelihood
factorises:

    p(x_1, ..., x_m | theta) = prod_{j=1}^{m} p(x_j | theta).

So NLE needs a density over *one* trial only (``D`` numbers, context ``theta``), and a set of
any size ``m <= M`` is scored by adding the trials' log densities. Trained on every present
trial of every simulation (the loss of one simulation is ``-sum_j log q(x_j | theta)``, so
all trials weigh the same), the flow learns ``p(x_j | theta)`` itself, and the posterior
at an observation with ``m`` trials is ``sum_j log q(x_{o,j} | theta) + log p(theta)``,
sampled by MCMC as for any NLE (Papamakarios et al., 2019, https://arxiv.org/abs/1805.07226;
sbi's NLE treats iid observations the same way, https://sbi-dev.github.io/sbi/).

Missing trials are rows of NaN (trailing, as :meth:`DataShape.observation` pads them); they
add nothing. Rows of one simulation are stored flat, ``x: (N, M * D)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from sbi_core.nn.flows import ConditionalFlow, build_flow

__all__ = ["TrialLikelihood", "build_trial_likelihood", "load_likelihood", "present_trials"]


def present_trials(x: Tensor, trials: int, width: int) -> tuple[Tensor, Tensor]:
    """``x: (N, M * D)`` -> the trials ``(N, M, D)`` with NaN rows set to 0, and ``present: (N, M)`` (bool)."""
    rows = x.reshape(x.shape[0], trials, width)
    present = torch.isfinite(rows).all(-1)
    return torch.where(present[..., None], rows, torch.zeros((), dtype=rows.dtype)), present


class TrialLikelihood(nn.Module):
    """``log q(x | theta) = sum over present trials j of log q_trial(x_j | theta)``.

    Args:
        flow: a :class:`~sbi_core.nn.flows.ConditionalFlow` over one trial's ``D`` numbers
            (its "theta" side) given the free parameters (its context).
        trials: ``M``, the most trials one simulation holds.
    """

    def __init__(self, flow: ConditionalFlow, trials: int):
        super().__init__()
        self.flow = flow
        self.trials = int(trials)

    @property
    def width(self) -> int:
        """``D``, the numbers of one trial."""
        return int(self.flow.cfg.theta_dim)

    @property
    def x_dim(self) -> int:
        """``M * D``, the flat numbers of one simulation."""
        return self.trials * self.width

    def trial_log_prob(self, x: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        """``x: (N, M * D)``, ``theta: (N, Df)`` -> per-trial ``log q (N, M)`` (0 where missing) and ``present (N, M)``."""
        rows, present = present_trials(x, self.trials, self.width)
        n, m, d = rows.shape
        context = theta.repeat_interleave(m, dim=0)
        logq = self.flow.log_prob(rows.reshape(n * m, d), context).reshape(n, m)
        return torch.where(present, logq, torch.zeros((), dtype=logq.dtype)), present

    def log_prob(self, x: Tensor, theta: Tensor) -> Tensor:
        """``log q(x_i | theta_i)`` of whole sets: ``x: (N, M * D)``, ``theta: (N, Df)`` -> ``(N,)``."""
        return self.trial_log_prob(x, theta)[0].sum(-1)

    def to_payload(self) -> dict:
        return {"trials": self.trials, "flow": self.flow.to_payload()}

    @classmethod
    def from_payload(cls, payload: dict) -> "TrialLikelihood":
        return cls(ConditionalFlow.from_payload(payload["flow"]), int(payload["trials"]))


def build_trial_likelihood(kind: str, x: Tensor, theta: Tensor, trials: int, width: int,
                           **flow_kwargs: Any) -> TrialLikelihood:
    """A fresh :class:`TrialLikelihood` z-scored on the present trials of ``x: (N, M * D)`` given ``theta: (N, Df)``."""
    rows, present = present_trials(x, trials, width)
    keep = present.reshape(-1)
    one = rows.reshape(-1, width)[keep]
    context = theta.repeat_interleave(trials, dim=0)[keep]
    return TrialLikelihood(build_flow(kind, one, context, **flow_kwargs), trials)


def load_likelihood(payload: dict) -> nn.Module:
    """A likelihood network from its payload: a set of trials' (:class:`TrialLikelihood`) or one flow's."""
    if "trials" in payload and "flow" in payload:
        return TrialLikelihood.from_payload(payload)
    return ConditionalFlow.from_payload(payload)

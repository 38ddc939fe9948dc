"""What a method is: the three choices that make one round of inference.

Every round of every method is

    propose  ->  simulate  ->  train  ->  snapshot

and a method is fixed by three answers, each an object of its own:

* **where the round draws parameters** (:class:`ProposalRule`): the prior
  (amortized), the last posterior at ``x_o`` (APT), the prior truncated to the
  last posterior's high-density region (TSNPE), ...;
* **what it trains** (:class:`PosteriorLoss` for a posterior; a likelihood, a
  ratio, or nothing for ABC in methods to come): a per-sample loss on the
  pooled pairs of all rounds;
* **how its posterior is sampled**: the :class:`~sbi_core.posterior.Posterior`
  snapshot the estimator returns (directly from the flow, truncated to the
  prior by rejection; by MCMC or from particles for other families).

The run loop (:mod:`sbi_core.runs`) only talks to an :class:`Estimator`, and
the registry (:mod:`.registry`) maps a method's name onto a
:class:`Method`: its words for people and a ``build`` function that composes
the estimator. Adding a method is its own module plus one line in the
registry; a family with an amortized and a sequential variant (NLE / SNLE,
NRE / SNRE) declares both at once with :func:`method_pair`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Optional, Protocol, Union, runtime_checkable

import torch
from torch import Tensor

from ..events import EventCallback
from ..posterior import Posterior
from ..priors import Prior
from ..training import TrainResult

__all__ = ["Method", "method_pair", "Estimator", "ProposalRule", "PosteriorLoss", "Proposal", "PriorProposal"]


@runtime_checkable
class Proposal(Protocol):
    """Anything a round can draw parameters from: ``sample((n,), x=..., generator=...) -> (n, D)``."""

    def sample(self, sample_shape: tuple[int, ...], x: Optional[Tensor] = None,
               generator: Optional[torch.Generator] = None) -> Tensor: ...


class ProposalRule(Protocol):
    """Where round ``r > 0`` draws its parameters, given the last round's posterior at ``x_o``.

    Round 0 always draws from the prior; ``sequential`` is False for a rule
    that never leaves it (the run then has one round).
    """

    sequential: bool

    def next_proposal(self, prior: Prior, posterior: Posterior, x_obs: Tensor,
                      generator: torch.Generator) -> Proposal: ...


class PosteriorLoss(Protocol):
    """Per-sample training loss of a conditional density ``q(theta | x)`` on pooled rounds.

    ``__call__(log_q, log_prior, theta (B, D), x (B, K), generator, round_index) -> (B,)``
    where ``log_q(theta, x) -> (B,)`` is the network's log density and
    ``round_index`` the 0-based round being trained (0: every pair came from
    the prior).
    """

    def __call__(self, log_q: Callable[[Tensor, Tensor], Tensor], log_prior: Callable[[Tensor], Tensor],
                 theta: Tensor, x: Tensor, generator: torch.Generator, round_index: int) -> Tensor: ...


@dataclass(frozen=True)
class PriorProposal:
    """Every round draws from the prior: amortized inference, valid at any ``x``."""

    sequential: bool = False

    def next_proposal(self, prior: Prior, posterior: Posterior, x_obs: Tensor,
                      generator: torch.Generator) -> Prior:
        return prior


class Estimator(Protocol):
    """What the round loop needs of a method's estimator.

    ``append_simulations(theta (N, D), x (N, K)) -> invalid count`` adds a
    round's pairs (non-finite rows are dropped and counted);
    ``fit(on_event=, cancel=, round_index=)`` trains on everything appended so
    far and returns a :class:`~sbi_core.training.TrainResult`;
    ``build_posterior(default_x)`` snapshots the current network;
    ``next_proposal(posterior, x_obs, generator)`` says where the next round
    draws.
    """

    prior: Prior
    sequential: bool

    def append_simulations(self, theta: Tensor, x: Tensor) -> int: ...

    def fit(self, *, on_event: EventCallback | None = None, cancel: Callable[[], bool] | None = None,
            round_index: Optional[int] = None, **training) -> TrainResult: ...

    def build_posterior(self, default_x: Optional[Tensor] = None) -> Posterior: ...

    def next_proposal(self, posterior: Posterior, x_obs: Tensor, generator: torch.Generator) -> Proposal: ...


@dataclass(frozen=True)
class Method:
    """A named inference method, as the registry, the RunSpec and the pages see it.

    name: the RunSpec's ``method`` (``"npe"``).
    title: a short label (``"Amortized NPE"``).
    summary: one or two sentences for a student: what it learns and where it simulates.
    sequential: False for a one-round method (``num_rounds`` is then 1).
    learns: ``"posterior"``, ``"likelihood"``, ``"ratio"`` or ``"nothing"`` (ABC).
    build: ``build(prior, *, density_estimator, hidden_features, num_transforms,
        seed, **training) -> Estimator``.
    options: extra RunSpec settings the method takes (passed to ``build``).
    """

    name: str
    title: str
    summary: str
    sequential: bool
    learns: str
    build: Callable[..., Estimator] = field(repr=False)
    options: tuple[str, ...] = ()

    def rounds(self, num_rounds: int) -> int:
        """How many rounds a run of this method has when ``num_rounds`` are asked for."""
        return int(num_rounds) if self.sequential else 1


def method_pair(name: str, *, learns: str, build: Callable[..., Estimator], options: tuple[str, ...] = (),
                amortized: str, sequential: str) -> tuple[Method, Method]:
    """The amortized (one round) and sequential :class:`Method` of one estimator family.

    name: the amortized method's name (``"nle"``); the sequential one is
        ``"s" + name`` (``"snle"``), titled ``"Amortized NLE"`` and ``"Sequential SNLE"``.
    learns, options: as in :class:`Method`, the same for both.
    build: ``build(prior, *, sequential, **settings) -> Estimator``; each method's
        ``build`` passes its own ``sequential`` (False, then True).
    amortized, sequential: the two summaries for people.

    >>> one, rounds = method_pair("nle", learns="likelihood", build=dict, amortized="...", sequential="...")
    >>> (one.name, one.title, one.sequential), (rounds.name, rounds.title, rounds.sequential)
    (('nle', 'Amortized NLE', False), ('snle', 'Sequential SNLE', True))
    """
    label = name.upper()
    return (
        Method(name=name, title=f"Amortized {label}", summary=amortized, sequential=False, learns=learns,
               build=partial(build, sequential=False), options=options),
        Method(name=f"s{name}", title=f"Sequential S{label}", summary=sequential, sequential=True, learns=learns,
               build=partial(build, sequential=True), options=options),
    )


ProposalLike = Union[Prior, Posterior, Proposal]

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
* **how its posterior is sampled**: the :class:`~sbi_core.posteriors.posterior.Posterior`
  snapshot the estimator returns (directly from the flow, truncated to the
  prior by rejection; by MCMC or from particles for other families).

The run loop (:mod:`sbi_core.run.loop`) only talks to an :class:`Estimator`, and
the registry (:mod:`.registry`) maps a method's name onto a
:class:`Method`: its catalogue entry (:mod:`.catalogue`: its words for people,
torch-free) and a ``build`` function that composes the estimator. Adding a
method is its own module, one entry in the catalogue and one line in the
registry; a family with an amortized and a sequential variant (NLE / SNLE,
NRE / SNRE) declares both at once with :func:`method_pair`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import partial
from typing import Callable, Optional, Protocol, Union, runtime_checkable

import torch
from torch import Tensor

from sbi_core.errors import SBIError
from sbi_core.events import EventCallback
from sbi_core.methods.catalogue import MethodInfo, method_info
from sbi_core.nn.training import TrainResult
from sbi_core.posteriors.posterior import Posterior
from sbi_core.stats.priors import Prior

__all__ = ["Method", "method_pair", "refuse_embedding", "Estimator", "ProposalRule", "PosteriorLoss", "Proposal", "PriorProposal"]


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
    far and returns a :class:`~sbi_core.nn.training.TrainResult`;
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
class Method(MethodInfo):
    """A catalogued inference method (:class:`~sbi_core.methods.catalogue.MethodInfo`: name, title,
    summary, sequential, learns, options) with the function that composes its estimator.

    build: ``build(prior, *, density_estimator, hidden_features, num_transforms,
        seed, embedding, data_shape, **training) -> Estimator``; ``embedding`` is ``None``,
        ``"auto"`` or a kind of :mod:`sbi_core.nn.embeddings`, ``data_shape`` a
        :class:`~sbi_core.stats.shapes.DataShape` (or ``None``); a method without a
        network accepts both and refuses a learned summary (:func:`refuse_embedding`).
    """

    build: Callable[..., Estimator] = field(repr=False, kw_only=True)

    @classmethod
    def of(cls, name: str, build: Callable[..., Estimator]) -> "Method":
        """The catalogue's entry ``name`` with its ``build``."""
        info = method_info(name)
        return cls(**{f.name: getattr(info, f.name) for f in fields(MethodInfo)}, build=build)


def method_pair(name: str, *, build: Callable[..., Estimator]) -> tuple[Method, Method]:
    """The amortized (one round) and sequential :class:`Method` of one estimator family.

    name: the amortized method's name (``"nle"``); the sequential one is ``"s" + name`` (``"snle"``),
        both in the catalogue (:func:`~sbi_core.methods.catalogue.info_pair`).
    build: ``build(prior, *, sequential, **settings) -> Estimator``; each method's
        ``build`` passes its own ``sequential`` (False, then True).

    >>> one, rounds = method_pair("nle", build=dict)
    >>> (one.name, one.title, one.sequential), (rounds.name, rounds.title, rounds.sequential)
    (('nle', 'Amortized NLE', False), ('snle', 'Sequential SNLE', True))
    """
    return (Method.of(name, partial(build, sequential=False)), Method.of(f"s{name}", partial(build, sequential=True)))


ProposalLike = Union[Prior, Posterior, Proposal]


def refuse_embedding(method: str, embedding=None, data_shape=None, trials: bool = True) -> None:
    """For a method without a network (ABC): an :class:`SBIError` when a learned summary is asked for
    (``embedding`` other than ``None``, ``"none"``, ``"auto"``), or, with ``trials``, when one
    simulation is a set of repeated trials (missing trials are NaN, which distances cannot compare).

    >>> refuse_embedding("Rejection ABC", "auto")
    >>> refuse_embedding("Rejection ABC", "cnn1d")
    Traceback (most recent call last):
    ...
    sbi_core.errors.SBIError: Rejection ABC compares the simulations' own numbers and learns no summary of them (got embedding 'cnn1d'); for a learned summary use NPE or NRE.
    """
    if embedding not in (None, "none", "auto"):
        asked = embedding.get("kind") if isinstance(embedding, dict) else embedding  # "handmade" arrives as a dict
        raise SBIError(f"{method} compares the simulations' own numbers and learns no summary of them "
                       f"(got embedding {asked!r}); for a learned summary use NPE or NRE.")
    kind = getattr(data_shape, "kind", None) if not isinstance(data_shape, dict) else data_shape.get("kind")
    if trials and kind == "trials":
        raise SBIError(f"{method} compares simulations number by number, so it cannot read sets of a varying "
                       "number of repeated trials; use NPE or NRE with a set embedding.")

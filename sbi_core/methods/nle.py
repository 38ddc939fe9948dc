"""Neural likelihood estimation (NLE; Papamakarios et al., 2019, "Sequential neural likelihood").

With pairs ``theta_i ~ p~_r(theta)``, ``x_i ~ p(x | theta_i)`` maximising

    L(phi) = (1/N) sum_i log q_phi(x_i | theta_i)

over a conditional flow ``q_phi(x | theta)`` makes it approach the
likelihood ``p(x | theta)`` wherever the proposals put mass: the expected
loss is ``E_{p~(theta)} KL(p(. | theta) || q_phi(. | theta)) + const``, and
for each ``theta`` the simulator draws ``x`` from the likelihood itself
whatever proposed ``theta``. So pooling the pairs of every round is exact
(no correction as SNPE needs), and the posterior at an observation ``x_o``
is, up to a constant,

    log p(theta | x_o) = log q_phi(x_o | theta) + log p(theta) + const,

sampled by MCMC (:class:`~sbi_core.posteriors.mcmc.MCMCPosterior`).

SNLE is the same estimator whose later rounds propose from the last
posterior at ``x_o``: simulations then land where the posterior lives, so
the likelihood is learnt best exactly where the potential is evaluated.

The flow is :func:`sbi_core.nn.flows.build_flow` with the roles of ``theta`` and
``x`` swapped (density over ``x``, context ``theta``; both z-scored on the
first round). Its default is a MAF, as in sbi, by measurement: on two moons
(10,000 prior simulations, the default observation, seed 0, one thread,
5,000 samples scored against the exact posterior) a MAF gave
C2ST 0.538 against 0.561 for an NSF, trained in 14 s against 47 s and drew
5,000 MCMC samples in 6.5 s against 29 s (sbibm's NLE mean there: 0.71).
A run from the app takes the RunSpec's flow (NSF unless changed); over three
observations (``bench/accuracy.py``'s two-moons set, 10,000 simulations) both
score a mean C2ST of 0.527, the NSF in 171 s against the MAF's 109 s.

**Shaped data.** The flow models the ``K`` numbers of one simulation itself,
so NLE takes no embedding network: ``embedding`` may only be ``None``/``"none"``
or ``"auto"`` (which means none here). A series or an image is modelled as its
flat numbers, as a vector is. Repeated trials are independent given ``theta``,
so the likelihood factorises over them,
``log p(x_1..x_m | theta) = sum_j log p(x_j | theta)``: the flow then models one
trial's ``D`` numbers and a set of any number of trials is scored by the sum
(:class:`~sbi_core.nn.trial_likelihood.TrialLikelihood`; missing trials, rows
of NaN, add nothing). One network answers for 1 trial and for ``M``.
"""

from __future__ import annotations

from functools import partial

from typing import Optional

import torch
from torch import Tensor, nn

from sbi_core.errors import SBIError
from sbi_core.methods.base import method_pair
from sbi_core.methods.mcmc_estimator import MCMCEstimator
from sbi_core.methods.snpe import PosteriorProposal
from sbi_core.nn.flows import build_flow
from sbi_core.nn.trial_likelihood import build_trial_likelihood
from sbi_core.posteriors.mcmc import MCMCSettings
from sbi_core.stats.priors import Prior

__all__ = ["NLE", "SNLE", "likelihood_loss", "METHOD_NLE", "METHOD_SNLE"]

DEFAULT_FLOW = "maf"


def likelihood_loss(flow: nn.Module, theta: Tensor, x: Tensor, generator: torch.Generator,
                    round_index: int) -> Tensor:
    """``-log q(x_i | theta_i)`` per pair: ``theta (B, Df)``, ``x (B, K)`` -> ``(B,)``."""
    return -flow.log_prob(x, theta)


class NLE(MCMCEstimator):
    """Neural likelihood estimation: a flow ``q(x | theta)`` and MCMC on ``log q(x_o | theta) + log p(theta)``.

    Args:
        prior: the prior over ``D`` parameters.
        density_estimator: ``"maf"`` (default) or ``"nsf"``.
        hidden_features, num_transforms, num_bins: flow size.
        seed: seeds the initial weights and all training randomness.
        sequential: False (amortized; any ``x_o`` later) or True (SNLE: later rounds
            propose from the last posterior at ``x_o``).
        num_chains, warmup, thin: MCMC settings of the posterior (``None``: the sampler's default).
        embedding: ``None``, ``"none"`` or ``"auto"`` only (no learned summary: see the module docstring).
        data_shape: how one simulation folds (for repeated trials the flow models one trial).
        **training: any :class:`~sbi_core.nn.training.TrainConfig` field.

    >>> import sbi_core
    >>> sim = sbi_core.get_simulator("linear_regression")
    >>> theta = sim.prior.sample((200,)); x = sim.simulate(theta, seed=0)
    >>> post = NLE(sim.prior, hidden_features=8, num_transforms=1, max_epochs=2).train(theta, x)
    >>> post.sample((5,), x=x[0], seed=0).shape
    torch.Size([5, 2])
    """

    def __init__(self, prior: Prior, density_estimator: str = DEFAULT_FLOW, hidden_features: int = 50,
                 num_transforms: int = 5, num_bins: int = 10, seed: int = 0, *, sequential: bool = False,
                 num_chains: Optional[int] = None, warmup: Optional[int] = None, thin: Optional[int] = None,
                 embedding=None, data_shape=None, embedding_features: Optional[int] = None, **training):
        if embedding not in (None, "none", "auto"):
            asked = embedding.get("kind") if isinstance(embedding, dict) else embedding  # "handmade" is a dict
            raise SBIError(f"NLE learns the density of the simulation's own numbers, so it takes no summary "
                           f"of them (got embedding {asked!r}); for a summary of the data use NPE or NRE.")
        self.density_estimator = density_estimator
        self.flow_kwargs = dict(hidden_features=hidden_features, num_transforms=num_transforms, num_bins=num_bins)

        build_net = partial(_likelihood_net, density_estimator, dict(self.flow_kwargs))  # picklable: resumable
        super().__init__(prior, learns="likelihood", build_net=build_net, loss=likelihood_loss, seed=seed,
                         proposal=PosteriorProposal() if sequential else None,
                         mcmc=MCMCSettings(num_chains=num_chains, warmup=warmup, thin=thin),
                         data_shape=data_shape, **training)

    def _check_data(self, shape) -> None:
        """Every shape is modelled (no embedding to check)."""

    def _embedding_kwargs(self) -> dict:
        """For repeated trials, the trials' layout (``build_net`` then models one trial); else nothing."""
        shape = self.data_shape
        if shape is not None and shape.kind == "trials":
            return {"trials": tuple(int(d) for d in shape.dims)}
        return {}


def _likelihood_net(density_estimator: str, flow_kwargs: dict, theta: Tensor, x: Tensor,
                    trials: Optional[tuple[int, int]] = None) -> nn.Module:
    """A new likelihood network from the first round's ``theta (N, D)`` and ``x (N, K)``: a flow over ``x``
    given ``theta``, or with ``trials = (M, D)`` a flow over one trial summed over the set's trials."""
    if trials is not None:
        return build_trial_likelihood(density_estimator, x, theta, *trials, **flow_kwargs)
    return build_flow(density_estimator, x, theta, **flow_kwargs)


_likelihood_flow = _likelihood_net  # the name a checkpoint written before repeated trials pickled


def SNLE(prior: Prior, *args, **kwargs) -> NLE:
    """Sequential NLE: ``NLE(prior, ..., sequential=True)``."""
    return NLE(prior, *args, sequential=True, **kwargs)


METHOD_NLE, METHOD_SNLE = method_pair("nle", build=NLE)

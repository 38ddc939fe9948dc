"""Inference methods, composed from a proposal rule, a loss and a posterior snapshot (see :mod:`.base`).

``npe`` (amortized), ``snpe`` (APT) and ``tsnpe`` (truncated proposals) are
one estimator class, :class:`NPE`, with other arguments; ``nle``/``snle``
(:class:`NLE`, a likelihood) and ``nre``/``snre`` (:class:`NRE`, a ratio) are
sampled by MCMC; ``rejection_abc`` and ``smc_abc`` train no network.
:mod:`.registry` maps RunSpec names onto them.
"""

from .base import Estimator, Method, PriorProposal, ProposalRule, PosteriorLoss
from .nle import NLE
from .npe import NPE, MaximumLikelihood
from .pooled import drop_invalid
from .nre import NRE
from .registry import METHODS, get_method, method_names
from .snpe import SNPE, AtomicLoss, PosteriorProposal, atomic_loss
from .tsnpe import TSNPE, TruncatedPrior, TruncatedProposal

__all__ = [
    "Estimator", "Method", "PriorProposal", "ProposalRule", "PosteriorLoss",
    "NPE", "MaximumLikelihood", "drop_invalid", "NLE", "NRE",
    "METHODS", "get_method", "method_names",
    "SNPE", "AtomicLoss", "PosteriorProposal", "atomic_loss",
    "TSNPE", "TruncatedPrior", "TruncatedProposal",
]

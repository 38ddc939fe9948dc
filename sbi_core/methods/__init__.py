"""Inference methods, composed from a proposal rule, a loss and a posterior snapshot (see :mod:`.base`).

``npe`` (amortized), ``snpe`` (APT) and ``tsnpe`` (truncated proposals) are
one estimator class, :class:`NPE`, with other arguments; ``nle``/``snle``
(:class:`NLE`, a likelihood) and ``nre``/``snre`` (:class:`NRE`, a ratio) are
sampled by MCMC; ``fmpe`` (flow matching, :class:`FMPE`) and ``npse`` (score-based
diffusion, :class:`NPSE`) learn the posterior as a continuous flow
(:class:`VectorFieldEstimator`), and ``tsfmpe``/``tsnpse`` are the same with TSNPE's
truncated proposals; ``rejection_abc`` and ``smc_abc`` (:mod:`.abc`) train no network.
:mod:`.catalogue` names them without torch; :mod:`.registry` maps those names
onto their ``build`` functions.

The names below load on first use (PEP 562), so importing
:mod:`sbi_core.methods.catalogue` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {  # public name -> the module that defines it
    "Estimator": "base", "Method": "base", "PriorProposal": "base", "ProposalRule": "base", "PosteriorLoss": "base",
    "NPE": "npe", "MaximumLikelihood": "npe", "drop_invalid": "pooled", "NLE": "nle", "NRE": "nre",
    "METHODS": "registry", "get_method": "registry", "method_names": "registry",
    "SNPE": "snpe", "AtomicLoss": "snpe", "PosteriorProposal": "snpe", "atomic_loss": "snpe",
    "TSNPE": "tsnpe", "TruncatedPrior": "tsnpe", "TruncatedProposal": "tsnpe",
    "FMPE": "fmpe", "TSFMPE": "fmpe", "NPSE": "npse", "TSNPSE": "npse", "VectorFieldEstimator": "vector_field",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})

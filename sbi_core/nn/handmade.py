"""Hand-made summary statistics: a model's own fixed function of the data, kept by name.

A scientist often reads a simulation through a few numbers chosen by hand
(the mean and the lag-1 autocorrelation of a series, the quantiles of reaction
times), a fixed function

    s : R^K -> R^S,          x (N, K) flat  ->  s(x) (N, S),

that is not trained. The embedding ``"handmade"``
(:class:`sbi_core.nn.embeddings.HandmadeEmbedding`) puts such a function where a
learned summary network would be: the flow or the ratio classifier reads the
``S`` summaries, standardised with statistics of the training data. NPE then
learns ``p(theta | s(x))``, which is the posterior ``p(theta | x)`` only when
the summaries are sufficient; what they leave out is lost.

The functions live with the models that define them (the simulators layer,
:mod:`sbi_core.simulators.series`), which sits above this layer; they are
handed down through this registry, keyed by name, so that a saved network's
configuration (``{"kind": "handmade", "summary": "ar1_series", ...}``) can
rebuild its embedding. A name must therefore be registered, by importing the
module that defines it (``import sbi_core.simulators`` registers every
built-in model's), before a network that uses it is built or loaded.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from sbi_core.errors import SBIError

__all__ = ["HandmadeSummary", "SummaryFn", "register_summary", "get_summary", "summary_names"]

# s(x (N, K) flat, float32; NaN rows are missing trials) -> (N, S) float32, finite
SummaryFn = Callable[[Tensor], Tensor]

_REGISTRY: dict[str, "HandmadeSummary"] = {}
BUILTIN_PROVIDER = "sbi_core.simulators"  # the package whose import registers the built-in models' summaries


@dataclass(frozen=True)
class HandmadeSummary:
    """One model's hand-made summary statistics.

    name: the registry key (a built-in model's name).
    fn: ``x (N, K) -> (N, S)``: flat simulations to their ``S`` summaries (float32, finite for every
        row that is a valid simulation; a set of trials may have missing trials as NaN rows).
    labels: ``S`` short names, in the order ``fn`` returns them (pages and reports list them).
    """

    name: str
    fn: SummaryFn
    labels: tuple[str, ...]

    @property
    def size(self) -> int:
        """``S``: the number of summaries."""
        return len(self.labels)

    def __call__(self, x: Tensor) -> Tensor:
        """``fn(x)`` for ``x (N, K)``, checked to be ``(N, S)`` float32."""
        out = self.fn(torch.as_tensor(x, dtype=torch.float32))
        if out.ndim != 2 or out.shape != (x.shape[0], self.size):
            raise SBIError(f"The hand-made summaries {self.name!r} should give {self.size} numbers per simulation "
                           f"({', '.join(self.labels)}); got an array of shape {tuple(out.shape)}.")
        return out.to(torch.float32)


def register_summary(name: str, fn: SummaryFn, labels: tuple[str, ...] | list[str]) -> HandmadeSummary:
    """Register ``fn`` (``x (N, K) -> (N, S)``, ``S = len(labels)``) under ``name`` and return it.

    Registering a name again replaces it (a module reloaded while developing)."""
    if not isinstance(name, str) or not name:
        raise SBIError("A hand-made summary needs a name.")
    labels = tuple(str(label) for label in labels)
    if not labels:
        raise SBIError(f"The hand-made summary {name!r} must name at least one statistic.")
    summary = HandmadeSummary(name, fn, labels)
    _REGISTRY[name] = summary
    return summary


def get_summary(name: str) -> HandmadeSummary:
    """The hand-made summary registered as ``name``; an :class:`SBIError` saying how to register it otherwise."""
    if isinstance(name, str) and name not in _REGISTRY and BUILTIN_PROVIDER not in sys.modules:
        # the built-in models register theirs when their module is imported: a posterior loaded in a
        # fresh process (``sbi_core.Posterior.load``) finds them without importing it by hand. A lookup
        # by name at run time, like a plugin's entry point: this layer does not depend on the models.
        importlib.import_module(BUILTIN_PROVIDER)
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise SBIError(f"No hand-made summary statistics are registered as {name!r}: import the module of the model "
                       "that defines them first (import sbi_core.simulators registers the built-in models').") from None


def summary_names() -> list[str]:
    """The names registered so far, in registration order."""
    return list(_REGISTRY)

"""Reading a saved posterior back, whichever method made it.

Every posterior class writes a torch file whose ``"format"`` key names it
(``Posterior.save``); :func:`load_posterior` reads that key and hands the file
to the class that wrote it. A method that adds a posterior class adds its
format here.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch

from sbi_core.errors import SBIError

__all__ = ["FORMATS", "load_posterior"]

FORMATS: dict[str, tuple[str, str]] = {  # format -> (module, class) of the posterior that writes it
    "sbi_core.posterior/1": ("sbi_core.posteriors.posterior", "Posterior"),
    "sbi_core.mcmc_posterior/1": ("sbi_core.posteriors.mcmc", "MCMCPosterior"),
    "sbi_core.abc_posterior/1": ("sbi_core.posteriors.particles", "ParticlePosterior"),
    "sbi_core.vector_field_posterior/1": ("sbi_core.posteriors.vector_field", "VectorFieldPosterior"),
}


def load_posterior(path: str | Path) -> Any:
    """The posterior saved at ``path``, as an object of the class that saved it."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file, truncated, or not loadable safely
        raise SBIError(f"{path} is not a saved sbi_core posterior ({type(err).__name__}).") from None
    kind = payload.get("format") if isinstance(payload, dict) else None
    if kind not in FORMATS:
        raise SBIError(f"{path} is not a saved sbi_core posterior (format {kind!r}).")
    module, name = FORMATS[kind]
    return getattr(importlib.import_module(module), name).load(path)

"""sbi_core: simulation-based inference with normalizing flows, headless.

The public API (docs/architecture.md, "The public API"); the dashboard and any
notebook use only these names. They load on first use (PEP 562
``__getattr__``), so ``from sbi_core import RunSpec`` loads the RunSpec and its
checks, not torch; ``import sbi_core`` alone loads nothing else. The packages
and the way their imports point are described in docs/architecture.md.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the module that defines it
_WHERE = {
    "c2st": "sbi_core.diagnostics.c2st",
    "run_sbc": "sbi_core.diagnostics.sbc",
    "check_sbc": "sbi_core.diagnostics.sbc",
    "run_tarp": "sbi_core.diagnostics.tarp",
    "check_tarp": "sbi_core.diagnostics.tarp",
    "expected_coverage": "sbi_core.diagnostics.coverage",
    "zscore_contraction": "sbi_core.diagnostics.zscore",
    "recovery": "sbi_core.diagnostics.zscore",
    "posterior_predictive_check": "sbi_core.diagnostics.predictive",
    "check_misspecification": "sbi_core.diagnostics.misspecification",
    "run_lc2st": "sbi_core.diagnostics.lc2st",
    "ensemble_disagreement": "sbi_core.diagnostics.disagreement",
    "spec_to_script": "sbi_core.export.script",
    "to_inference_data": "sbi_core.export.inference_data",
    "SBIError": "sbi_core.errors",
    "StoreUnavailable": "sbi_core.store.errors",
    "TERMINAL_TYPES": "sbi_core.events",
    "NPE": "sbi_core.methods.npe",
    "SNPE": "sbi_core.methods.snpe",
    "NLE": "sbi_core.methods.nle",
    "NRE": "sbi_core.methods.nre",
    "FMPE": "sbi_core.methods.fmpe",
    "NPSE": "sbi_core.methods.npse",
    "Posterior": "sbi_core.posteriors.posterior",
    "PosteriorSamplingError": "sbi_core.posteriors.posterior",
    "Prior": "sbi_core.stats.priors",
    "PriorSpecError": "sbi_core.stats.prior_spec",
    "RoundResult": "sbi_core.run.loop",
    "RunResult": "sbi_core.run.loop",
    "execute": "sbi_core.run.loop",
    "run_sequential": "sbi_core.run.loop",
    "Simulator": "sbi_core.simulators.base",
    "get_simulator": "sbi_core.simulators",
    "list_simulators": "sbi_core.simulators",
    "load_simulator": "sbi_core.simulators.uploaded",
    "SimulatorError": "sbi_core.simulators.uploaded",
    "RunSpec": "sbi_core.run.spec",
    "RunSpecError": "sbi_core.errors",
    "Cancelled": "sbi_core.errors",
    "CancelToken": "sbi_core.nn.training",
}

__all__ = list(_WHERE)

# the packages and top-level modules, reachable as attributes (``sbi_core.plots``) once asked for
_PACKAGES = ("checks", "diagnostics", "export", "jobs", "methods", "nn", "plots", "posteriors", "run", "sandbox",
             "simulators", "stats", "store", "tables", "uploads", "errors", "events", "processes", "threads")


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
    elif name in _PACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE, *_PACKAGES})

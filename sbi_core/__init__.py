"""sbi_core: simulation-based inference with normalizing flows, headless.

The public API (see DESIGN.md section 3); the dashboard and any notebook use
only these names.
"""

from .diagnostics import (
    c2st,
    check_sbc,
    check_tarp,
    expected_coverage,
    posterior_predictive_check,
    recovery,
    run_sbc,
    run_tarp,
    zscore_contraction,
)
from .errors import SBIError
from .events import TERMINAL_TYPES
from .export.inference_data import to_inference_data
from .export.script import spec_to_script
from .methods import NLE, NPE, NRE, SNPE
from .posterior import Posterior, PosteriorSamplingError
from .priors import Prior, PriorSpecError
from .runs import RoundResult, RunResult, execute, run_sequential
from .simulators import Simulator, get_simulator, list_simulators
from .simulators.uploaded import SimulatorError, load_simulator
from .spec import RunSpec, RunSpecError
from .store_errors import StoreUnavailable
from .training import Cancelled, CancelToken

__all__ = [
    "c2st",
    "run_sbc",
    "check_sbc",
    "run_tarp",
    "check_tarp",
    "expected_coverage",
    "zscore_contraction",
    "recovery",
    "posterior_predictive_check",
    "spec_to_script",
    "to_inference_data",
    "SBIError",
    "StoreUnavailable",
    "TERMINAL_TYPES",
    "NPE",
    "SNPE",
    "NLE",
    "NRE",
    "Posterior",
    "PosteriorSamplingError",
    "Prior",
    "PriorSpecError",
    "RoundResult",
    "RunResult",
    "execute",
    "run_sequential",
    "Simulator",
    "get_simulator",
    "list_simulators",
    "load_simulator",
    "SimulatorError",
    "RunSpec",
    "RunSpecError",
    "Cancelled",
    "CancelToken",
]

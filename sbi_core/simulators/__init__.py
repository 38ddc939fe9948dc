"""Built-in simulators (one module per family) and the registry that lists them."""

from sbi_core.simulators.base import Simulator
from sbi_core.stats.seeds import make_generator
from sbi_core.simulators.registry import builtin_of, get_simulator, list_simulators, register

# Importing the family modules registers them, in gallery order.
from sbi_core.simulators import teaching, benchmark, science, series  # noqa: E402,F401

__all__ = ["Simulator", "make_generator", "get_simulator", "list_simulators", "register", "builtin_of"]

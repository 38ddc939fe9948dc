"""Registry of built-in simulators: name -> factory returning a :class:`Simulator`.

Each built-in family lives in its own module and registers its factories with
:func:`register`. Factories are called on demand, so importing the package is
cheap; :func:`get_simulator` builds a fresh instance every call.
"""

from __future__ import annotations

from typing import Callable, Optional

from sbi_core.simulators.base import Simulator

__all__ = ["register", "list_simulators", "get_simulator", "builtin_of"]

_FACTORIES: dict[str, Callable[[], Simulator]] = {}


def register(name: str) -> Callable[[Callable[[], Simulator]], Callable[[], Simulator]]:
    """Decorator: register ``factory`` under ``name``."""

    def deco(factory: Callable[[], Simulator]) -> Callable[[], Simulator]:
        if name in _FACTORIES:
            raise ValueError(f"simulator '{name}' registered twice")
        _FACTORIES[name] = factory
        return factory

    return deco


def list_simulators() -> list[str]:
    """Names of the built-in simulators, in gallery order."""
    return list(_FACTORIES)


def get_simulator(name: str) -> Simulator:
    """A new :class:`Simulator` for a built-in ``name``."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise KeyError(
            f"Unknown simulator '{name}'. Built-in ones: {', '.join(_FACTORIES)}."
        ) from None
    sim = factory()
    if sim.name != name:
        raise RuntimeError(f"factory for '{name}' built '{sim.name}'")
    return sim


def builtin_of(ref: dict) -> Optional[Simulator]:
    """The built-in simulator a RunSpec's ``simulator_ref`` names, or ``None`` (an upload, a table, an unknown
    name): for code that reads a stored run and must never load uploaded code."""
    name = ref.get("name")
    return get_simulator(name) if ref.get("kind") == "builtin" and name in _FACTORIES else None

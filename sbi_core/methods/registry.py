"""The method registry: every inference method by its RunSpec name.

A method registers here with one line (its module defines ``METHOD``, a
:class:`~.base.Method`); the RunSpec, the run loop and the pages read names,
titles, "is it sequential" and what it learns only from here.
"""

from __future__ import annotations

from ..errors import SBIError
from . import nle, npe, nre, rejection_abc, smc_abc, snpe, tsnpe
from .base import Method

__all__ = ["METHODS", "get_method", "method_names"]

METHODS: dict[str, Method] = {m.name: m for m in (
    snpe.METHOD, tsnpe.METHOD, npe.METHOD,
    nle.METHOD_SNLE, nle.METHOD_NLE, nre.METHOD_SNRE, nre.METHOD_NRE,
    smc_abc.METHOD, rejection_abc.METHOD,
)}


def method_names() -> tuple[str, ...]:
    """The names a RunSpec's ``method`` may take, in the order the pages offer them."""
    return tuple(METHODS)


def get_method(name: str) -> Method:
    """The :class:`~.base.Method` called ``name``, or an :class:`SBIError` listing the choices."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise SBIError(f"method must be one of {', '.join(map(repr, METHODS))}, got {name!r}.") from None

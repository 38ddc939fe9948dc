"""The method registry: every inference method by its RunSpec name, with its ``build``.

A method registers here with one line (its module defines ``METHOD``, a
:class:`~.base.Method`); its name, title, summary and "is it sequential" are
in the torch-free catalogue (:mod:`.catalogue`), which the RunSpec, costs,
comparisons and checks read instead of this module. The run loop reads
``build`` from here.
"""

from __future__ import annotations

from sbi_core.errors import SBIError
from sbi_core.methods import fmpe, nle, npe, npse, nre, snpe, tsnpe
from sbi_core.methods.abc import rejection as rejection_abc, smc as smc_abc
from sbi_core.methods.base import Method
from sbi_core.methods.catalogue import CATALOGUE

__all__ = ["METHODS", "get_method", "method_names"]

_REGISTERED: dict[str, Method] = {m.name: m for m in (
    snpe.METHOD, tsnpe.METHOD, npe.METHOD, fmpe.METHOD, fmpe.METHOD_TSFMPE, npse.METHOD, npse.METHOD_TSNPSE,
    nle.METHOD_SNLE, nle.METHOD_NLE, nre.METHOD_SNRE, nre.METHOD_NRE,
    smc_abc.METHOD, rejection_abc.METHOD,
)}
if set(_REGISTERED) != set(CATALOGUE):  # a method is one catalogue entry and one line here
    raise ImportError(f"the method registry ({sorted(_REGISTERED)}) and catalogue ({sorted(CATALOGUE)}) disagree")
METHODS: dict[str, Method] = {name: _REGISTERED[name] for name in CATALOGUE}  # the catalogue's order


def method_names() -> tuple[str, ...]:
    """The names a RunSpec's ``method`` may take, in the order the pages offer them."""
    return tuple(METHODS)


def get_method(name: str) -> Method:
    """The :class:`~.base.Method` called ``name``, or an :class:`SBIError` listing the choices."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise SBIError(f"method must be one of {', '.join(map(repr, METHODS))}, got {name!r}.") from None

"""Tables of simulations and observations: reading, checking, and turning them into training pairs.

A *table of simulations* holds one simulation per row: some columns are the
parameters ``theta`` it was run at, others the ``K`` numbers it produced.
Amortized NPE trains on such a table directly, with no simulator:

    {(theta_i, x_i)}_{i=1..N}  ->  q(theta | x),   theta_i in supp(prior).

The prior still matters: the posterior is truncated to its support and the
flow's sampler rejects draws outside it, so rows whose parameters lie outside
the prior are dropped (and counted); when most of them do, the prior does not
describe the table and :func:`prepare_training_pairs` says so.

An *observations* file holds one observation per row (``M`` rows of ``K``
numbers); an amortized posterior answers every row.

Every problem with an input is a :class:`TableError` (an
:class:`~sbi_core.errors.SBIError`) whose message says what to fix; parsing
never raises anything else on any input (property-tested).

The names below load on first use (PEP 562), so :mod:`sbi_core.tables.common`
(the limits, read by RunSpec files) loads without pandas or torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {  # public name -> the module that defines it
    "TableError": "common", "MAX_TABLE_BYTES": "common", "MAX_TABLE_CELLS": "common",
    "MAX_TABLE_COLUMNS": "common", "MAX_OBSERVATION_BYTES": "common", "MAX_OBSERVATION_ROWS": "common",
    "MIN_ROWS": "common", "MAX_OUTSIDE_FRACTION": "common",
    "read_table": "reading",
    "check_columns": "pairs", "prepare_training_pairs": "pairs", "load_training_pairs": "pairs",
    "parse_observations": "observations",
    "guess_columns": "columns", "default_prior_spec": "columns",
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

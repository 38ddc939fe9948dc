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
"""

from __future__ import annotations

from .common import (
    TableError,
    MAX_TABLE_BYTES,
    MAX_TABLE_CELLS,
    MAX_TABLE_COLUMNS,
    MAX_OBSERVATION_BYTES,
    MAX_OBSERVATION_ROWS,
    MIN_ROWS,
    MAX_OUTSIDE_FRACTION,
)
from .reading import read_table
from .pairs import check_columns, prepare_training_pairs, load_training_pairs
from .columns import guess_columns, default_prior_spec
from .observations import parse_observations
from .json_specs import prior_spec_from_json, runspec_from_json

__all__ = [
    "TableError",
    "MAX_TABLE_BYTES",
    "MAX_TABLE_CELLS",
    "MAX_TABLE_COLUMNS",
    "MAX_OBSERVATION_BYTES",
    "MAX_OBSERVATION_ROWS",
    "MIN_ROWS",
    "MAX_OUTSIDE_FRACTION",
    "read_table",
    "check_columns",
    "prepare_training_pairs",
    "load_training_pairs",
    "parse_observations",
    "guess_columns",
    "default_prior_spec",
    "prior_spec_from_json",
    "runspec_from_json",
]

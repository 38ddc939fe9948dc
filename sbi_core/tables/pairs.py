"""From a table to training pairs: check the column mapping, drop incomplete rows and rows outside the prior."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from sbi_core.stats.priors import Prior
from sbi_core.tables.common import (
    MAX_OUTSIDE_FRACTION,
    MAX_TABLE_BYTES,
    MIN_ROWS,
    TableError,
    _FLOAT32_MAX,
    _mb,
    _names,
    _plural,
    _show,
)
from sbi_core.tables.reading import _missing_mask, _numeric, check_table_suffix, read_table

# ---------------------------------------------------------------------------
# from a table to training pairs
# ---------------------------------------------------------------------------
def _check_mapping(cols: list[str], theta_columns: list[str], x_columns: list[str]) -> None:
    """Raise :class:`TableError` unless both groups are non-empty, disjoint, free of repeats and in ``cols``."""
    if not theta_columns:
        raise TableError("Choose at least one column of parameters (the values each simulation was run at).")
    if not x_columns:
        raise TableError("Choose at least one column of simulated data (the numbers each simulation produced).")
    for group in (theta_columns, x_columns):
        seen = set()
        for c in group:
            if c in seen:
                raise TableError(f"Column {_show(c)} is chosen twice: choose each column once.")
            seen.add(c)
    both = [c for c in theta_columns if c in set(x_columns)]
    if both:
        raise TableError(
            f"Column {_show(both[0])} is chosen both as a parameter and as simulated data: "
            "a column is one or the other."
        )
    missing = [c for c in theta_columns + x_columns if c not in cols]
    if missing:
        raise TableError(f"The table has no column {_show(missing[0])}. Its columns are: {_names(cols)}.")


def _column_cells(col, name: str, is_theta: bool):
    """Read one table column as numbers.

    Returns ``(num (N,), text (N,), bad (N,))``: the float64 values (NaN where not a number),
    the mask of text cells and the mask of empty / NaN / infinite cells that are not text.
    Raises :class:`TableError` if the column holds nothing but text.
    """
    num = _numeric(col).to_numpy(dtype=np.float64, na_value=np.nan)
    missing_cells = _missing_mask(col)
    text = np.isnan(num) & ~missing_cells
    if np.isnan(num).all() and text.any():
        example = col[text].iloc[0] if hasattr(col[text], "iloc") else col[text][0]
        raise TableError(
            f"Column {_show(name)} holds text, not numbers (e.g. {_show(example)}): "
            f"choose only numeric columns as {'parameters' if is_theta else 'simulated data'}."
        )
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(num) & (np.abs(num) <= _FLOAT32_MAX)
    return num, text, ~finite & ~text


def _read_chosen(df, chosen: list[str], theta_columns: list[str]):
    """The chosen columns of ``df`` as numbers, with the rows that have to be dropped.

    Returns ``(values (N, C), text_rows (N,), nan_rows (N,), non_numeric, non_finite)``:
    float64 values, rows with a text cell, rows with an empty / NaN / infinite cell (and no
    text cell), and per column the number of text cells and of non-finite cells.
    """
    n_rows = len(df)
    values = np.empty((n_rows, len(chosen)), dtype=np.float64)
    text_rows = np.zeros(n_rows, dtype=bool)
    nan_rows = np.zeros(n_rows, dtype=bool)
    non_numeric: dict[str, int] = {}
    non_finite: dict[str, int] = {}
    for j, c in enumerate(chosen):
        num, text, bad = _column_cells(df[c], c, c in theta_columns)
        if text.any():
            non_numeric[c] = int(text.sum())
        if bad.any():
            non_finite[c] = int(bad.sum())
        text_rows |= text
        nan_rows |= bad
        values[:, j] = num
    nan_rows &= ~text_rows
    return values, text_rows, nan_rows, non_numeric, non_finite


def _check_enough_rows(report: dict, min_rows: int) -> None:
    """Raise :class:`TableError` if fewer than ``min_rows`` rows of the report are complete."""
    n_valid, n_rows = report["valid_rows"], report["rows"]
    if n_valid >= min_rows:
        return
    why = []
    if report["dropped_nan_rows"]:
        why.append(f"{_plural(report['dropped_nan_rows'], 'row')} with an empty, NaN or infinite cell")
    if report["dropped_text_rows"]:
        why.append(f"{_plural(report['dropped_text_rows'], 'row')} with text in a number column")
    raise TableError(
        f"Only {_plural(n_valid, 'row')} of {n_rows:,} {'has' if n_valid == 1 else 'have'} numbers in every "
        f"chosen column{' (' + '; '.join(why) + ')' if why else ''}; training needs at least {min_rows}."
    )


def _constant_columns(theta: np.ndarray, x: np.ndarray, theta_columns: list[str], x_columns: list[str]) -> list:
    """Raise on a constant parameter column of ``theta (N, D)``; return the constant columns of ``x (N, K)``."""
    for j, c in enumerate(theta_columns):
        if np.ptp(theta[:, j]) == 0:
            raise TableError(
                f"Parameter column {_show(c)} has the same value ({theta[0, j]:g}) in every row, so the table "
                "says nothing about it. Remove it from the parameters."
            )
    return [c for j, c in enumerate(x_columns) if np.ptp(x[:, j]) == 0]


def _dropped_note(n: int, what: str, per_column: dict[str, int]) -> str:
    """The note that ``n`` rows with ``what`` are dropped, with the cell counts per column."""
    cols_ = _names([f"{c} ({k})" for c, k in per_column.items()])
    return (f"{_plural(n, 'row')} with {what} "
            f"{'is' if n == 1 else 'are'} dropped (cells per column: {cols_}).")


def _column_notes(report: dict) -> list[str]:
    """The sentences for the page about dropped rows and constant observation columns."""
    notes = []
    if report["dropped_nan_rows"]:
        notes.append(_dropped_note(report["dropped_nan_rows"], "empty, NaN or infinite cells", report["non_finite"]))
    if report["dropped_text_rows"]:
        notes.append(_dropped_note(report["dropped_text_rows"], "text instead of a number", report["non_numeric"]))
    constant = report["constant_columns"]
    if constant:
        many = len(constant) > 1
        notes.append(
            f"Simulated-data column{'s' if many else ''} "
            f"{_names(constant)} "
            f"{'have' if many else 'has'} the same value in every row and "
            "carr{} no information about the parameters; consider leaving {} out.".format(
                "y" if many else "ies",
                "them" if many else "it")
        )
    return notes


def check_columns(df, theta_columns: Sequence[str], x_columns: Sequence[str], min_rows: int = MIN_ROWS):
    """Check the mapped columns of a table and return the complete rows.

    Returns:
        ``(theta (N, D), x (N, K), report)`` as float64 arrays, where ``report`` is a dict:
        ``rows`` (in the table), ``valid_rows`` (N), ``dropped_nan_rows`` (rows with an
        empty / NaN / infinite cell in a chosen column; dropped), ``dropped_text_rows`` (rows
        with a text cell in a chosen column; dropped), ``non_numeric`` ({column: text cells}),
        ``non_finite`` ({column: NaN, empty or infinite cells}), ``constant_columns`` (observation
        columns with a single value: they carry no information), and ``notes`` (sentences for
        the page).

    Raises:
        TableError: no or unknown columns, a column used twice, a column of text, a constant
            parameter column, fewer than ``min_rows`` complete rows.
    """
    theta_columns = [str(c) for c in (theta_columns or [])]
    x_columns = [str(c) for c in (x_columns or [])]
    _check_mapping(list(map(str, df.columns)), theta_columns, x_columns)
    values, text_rows, nan_rows, non_numeric, non_finite = _read_chosen(df, theta_columns + x_columns, theta_columns)
    keep = ~(text_rows | nan_rows)
    report: dict[str, Any] = {
        "rows": len(df),
        "valid_rows": int(keep.sum()),
        "dropped_nan_rows": int(nan_rows.sum()),
        "dropped_text_rows": int(text_rows.sum()),
        "non_numeric": non_numeric,
        "non_finite": non_finite,
        "constant_columns": [],
        "notes": [],
    }
    _check_enough_rows(report, min_rows)
    theta = values[keep, : len(theta_columns)]
    x = values[keep, len(theta_columns):]
    report["constant_columns"].extend(_constant_columns(theta, x, theta_columns, x_columns))
    report["notes"].extend(_column_notes(report))
    return theta, x, report


def prepare_training_pairs(df, theta_columns: Sequence[str], x_columns: Sequence[str], prior: Prior,
                           min_rows: int = MIN_ROWS):
    """:func:`check_columns`, then keep only rows whose parameters lie in the prior's support.

    Returns ``(theta (N, D), x (N, K), report)`` (float64); the report adds
    ``outside_prior`` (rows dropped) and a note about them.

    Raises:
        TableError: the prior has another number of parameters than the mapping, or more
            than half of the rows lie outside the prior ("widen it"), or too few rows remain.
    """
    prior = Prior.from_spec(prior)
    theta, x, report = check_columns(df, theta_columns, x_columns, min_rows=min_rows)
    if prior.dim != theta.shape[1]:
        raise TableError(
            f"The prior has {_plural(prior.dim, 'parameter')} but {_plural(theta.shape[1], 'column')} "
            "are chosen as parameters: give the prior one row per parameter column."
        )
    inside = np.ones(theta.shape[0], dtype=bool)
    offenders = []
    for i, m in enumerate(prior.marginals):
        if m.is_fixed:
            continue
        lo, hi = m.support
        v = theta[:, i]
        ok = (v >= lo) & (v <= hi)
        if m.dist in ("lognormal", "gamma"):
            ok &= v > 0
        if not ok.all():
            offenders.append(
                f"{theta_columns[i]} runs from {v.min():.4g} to {v.max():.4g} but the prior allows "
                f"{lo:.4g} to {hi:.4g}"
            )
        inside &= ok
    outside = int((~inside).sum())
    n = theta.shape[0]
    report["outside_prior"] = outside
    if outside > MAX_OUTSIDE_FRACTION * n:
        raise TableError(
            f"The prior does not cover the table's parameters: {outside:,} of {n:,} rows "
            f"({100 * outside / n:.0f}%) lie outside it ({'; '.join(offenders)}). Widen the prior."
        )
    if outside:
        if n - outside < min_rows:
            raise TableError(
                f"Only {n - outside:,} rows lie inside the prior; training needs at least {min_rows}. "
                "Widen the prior."
            )
        report["notes"].append(
            f"{_plural(outside, 'row')} with parameters outside the prior "
            f"{'is' if outside == 1 else 'are'} dropped ({'; '.join(offenders)})."
        )
        theta, x = theta[inside], x[inside]
    report["valid_rows"] = int(theta.shape[0])
    return theta, x, report


def load_training_pairs(ref: dict, prior: Union[Prior, list], report: Optional[dict] = None):
    """``(theta (N, D), x (N, K))`` float32 tensors from a ``{"kind": "table", ...}`` simulator reference.

    ``ref`` holds ``path`` (a CSV or Parquet file), ``theta_columns`` and
    ``x_columns``; ``report`` (a dict), if given, receives :func:`prepare_training_pairs`'s report.
    """
    import torch

    if not isinstance(ref, dict):
        raise TableError("A table reference is a mapping with 'path', 'theta_columns' and 'x_columns'.")
    path = ref.get("path")
    theta_columns, x_columns = ref.get("theta_columns"), ref.get("x_columns")
    if not isinstance(path, str) or not path:
        raise TableError("The table reference needs the 'path' of the table file.")
    for key, value in (("theta_columns", theta_columns), ("x_columns", x_columns)):
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise TableError(f"The table reference needs '{key}': a list of column names.")
    p = Path(path)
    check_table_suffix(p.name)
    try:
        size = p.stat().st_size
    except OSError:
        raise TableError(f"The table file {p.name} is not there any more; upload the table again.") from None
    if size > MAX_TABLE_BYTES:
        raise TableError(f"The file {p.name} is {_mb(size)}; a table may be at most {_mb(MAX_TABLE_BYTES)}.")
    df = read_table(p.read_bytes(), p.name)
    theta, x, rep = prepare_training_pairs(df, theta_columns, x_columns, prior)
    if report is not None:
        report.update(rep)
    return torch.as_tensor(theta, dtype=torch.float32), torch.as_tensor(x, dtype=torch.float32)

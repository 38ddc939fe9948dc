"""Observations typed or uploaded: one observation of K numbers per row, checked."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from .common import (
    MAX_OBSERVATION_BYTES,
    MAX_OBSERVATION_ROWS,
    TableError,
    _FLOAT32_MAX,
    _decode,
    _is_number,
    _lines,
    _mb,
    _names,
    _plural,
    _show,
    _sniff,
    _split,
)
from .reading import _MISSING

# ---------------------------------------------------------------------------
# observations
# ---------------------------------------------------------------------------
def parse_observations(
    data: Union[bytes, str],
    filename: str = "observations.csv",
    expected_k: int = 1,
    names: Optional[Sequence[str]] = None,
    max_rows: int = MAX_OBSERVATION_ROWS,
) -> np.ndarray:
    """Observations from a CSV (or typed text): ``(M, K)`` float64, one observation per row.

    Cells may be separated by commas, semicolons, tabs, bars or spaces. A first
    row that is not all numbers is a header: if it names the model's observation
    components (``names``), the columns are taken by name (in any order);
    otherwise by position.

    Raises:
        TableError: empty, too large, a row with another number of values than
            ``expected_k`` ("the observation has 3 numbers but the model produces 4"),
            empty / NaN / infinite cells, text cells, too many rows.
    """
    typed = filename in (None, "", "typed")
    what = "The observation" if typed else f"The file {Path(str(filename)).name}"
    k = int(expected_k)
    names = [str(n) for n in names] if names is not None else None
    size = len(data.encode("utf-8", "replace") if isinstance(data, str) else data)
    if size > MAX_OBSERVATION_BYTES:
        raise TableError(f"{what} is {_mb(size)}; observations may be at most {_mb(MAX_OBSERVATION_BYTES)}.")
    text = _decode(data, what)
    lines = _lines(text)
    if not lines:
        raise TableError(f"{what} is empty: give {_plural(k, 'number')} per observation"
                         f"{' (' + _names(names) + ')' if names else ''}.")
    sep = _sniff(lines)
    rows = [_split(ln.rstrip().rstrip(sep) if sep not in (None, " ") else ln, sep) for ln in lines]
    header = None
    if not all(_is_number(c) or c.strip().lower() in _MISSING for c in rows[0]):
        header, rows = rows[0], rows[1:]
        if not rows:
            raise TableError(f"{what} has a header but no rows of numbers.")
    if len(rows) > max_rows:
        raise TableError(f"{what} has {len(rows):,} rows; at most {max_rows:,} observations at a time.")
    order = None
    if header is not None and names:
        h = [c.strip() for c in header]
        if set(names) <= set(h):
            if len(set(h)) != len(h):
                dup = [c for c in h if h.count(c) > 1][0]
                raise TableError(f"The column name {_show(dup)} appears twice in the header of {what.lower()}.")
            order = [h.index(n) for n in names]
        elif len(h) != k:
            known = [c for c in h if c in names]
            lacking = [n for n in names if n not in h]
            raise TableError(
                f"{what}'s header names {_names(h)}, but the model's observation has {_plural(k, 'component')}"
                f" ({_names(names)}){': missing ' + _names(lacking) if known else ''}. Name the columns after "
                "the components, or give exactly one column per component."
            )
    out = np.empty((len(rows), k), dtype=np.float64)
    many = len(rows) > 1
    for r, cells in enumerate(rows):
        where = (f"Row {r + 1} of the observations" if many else
                 "The observation" + ("" if typed else f" in {Path(str(filename)).name}"))
        line_no = r + 1 + (1 if header is not None else 0)
        if order is not None:
            if len(cells) != len(header):
                raise TableError(f"{where} (line {line_no}) has {len(cells)} cells but the header has {len(header)}.")
            cells = [cells[i] for i in order]
        elif len(cells) != k:
            raise TableError(
                f"{where} has {_plural(len(cells), 'number')} but the model produces {k}"
                f"{' (' + _names(names) + ')' if names and len(names) == k else ''}."
            )
        for j, cell in enumerate(cells):
            label = names[j] if names and len(names) == k else f"number {j + 1}"
            c = cell.strip()
            if c.lower() in _MISSING:
                raise TableError(f"{where} has an empty or NaN value for {label}: every observation "
                                 f"needs all {k} numbers.")
            try:
                v = float(c)
            except (ValueError, OverflowError):
                raise TableError(f"{where} has {_show(c)} for {label}, which is not a number.") from None
            if not math.isfinite(v) or abs(v) > _FLOAT32_MAX:
                raise TableError(f"{where} has {c} for {label}: observations must be finite numbers.")
            out[r, j] = v
    return out

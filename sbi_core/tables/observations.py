"""Observations typed or uploaded: one observation of K numbers per row, checked.

Two entry points, and every page goes through them:

* :func:`parse_typed_observation` -- the one observation a person types into a
  text field (the Model page, and both tabs of the Your model & data page);
* :func:`parse_observations` -- a CSV of observations, one per row (an upload).

A typed observation is ``K`` numbers separated by commas, semicolons, spaces,
tabs or new lines. A typed word gets its position named (``Entry 2 (x2) is
'zwei', which is not a number``); decimal commas (``0,5; 0,3``) get the hint to
use a point. Every problem is a :class:`TableError` whose message says what to fix.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from sbi_core.tables.common import (
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
    decimal_comma_file,
)
from sbi_core.tables.reading import _MISSING

_SEPARATORS = re.compile(r"[,;\s]+")
_DECIMAL_COMMA = re.compile(r"^[-+]?\d*,\d+(?:[eE][-+]?\d+)?$")
_NUMBER_EXAMPLES = "such as 0.25, -1.3 or 4e-2"


def _component(j: int, names: Optional[Sequence[str]], k: int) -> str:
    return f"Entry {j + 1}" + (f" ({names[j]})" if names and len(names) == k else "")


def _decimal_comma_hint(text: str, k: int, default_count: int) -> Optional[str]:
    """The hint for ``0,5; 0,3``-style text, or ``None`` when the text does not read as decimal commas.

    With a semicolon (or tab / new line) separating cells that hold ``digit,digit``
    the commas are decimal commas. Without one (``0,5 0,3``) only when reading
    the commas as decimal marks gives the ``k`` numbers the model wants and
    reading them as separators does not.
    """
    if not re.search(r"\d,\d", text) or "." in text:
        return None
    cells = [c for c in re.split(r"[;\s]+", text.strip()) if c]
    if not cells or not any(_DECIMAL_COMMA.match(c) for c in cells):
        return None
    if not all(_DECIMAL_COMMA.match(c) or _is_number(c) for c in cells):
        return None
    if ";" not in text and not (len(cells) == k and default_count != k):
        return None
    fixed = re.sub(r"(\d),(\d)", r"\1.\2", text.strip())
    shown = [c for c in cells if _DECIMAL_COMMA.match(c)][:2]
    return (f"It looks like you used a comma as the decimal separator ({', '.join(repr(c) for c in shown)}). "
            f"Use a point as the decimal separator: {fixed}")


def parse_typed_observation(text: str, expected_k: int, names: Optional[Sequence[str]] = None) -> np.ndarray:
    """One typed observation: ``(K,)`` float64.

    ``text`` holds ``expected_k`` numbers separated by commas, semicolons,
    spaces, tabs or new lines (a trailing separator is fine); ``names`` (the
    observation components) make the messages name the entry.

    Raises:
        TableError: empty text; an entry that is not a number ("Entry 2 (x2) is
            'zwei', which is not a number"); decimal commas ("use a point as the
            decimal separator: 0.5; 0.3"); NaN or infinity; more or fewer numbers
            than ``expected_k``; several lines of ``expected_k`` numbers (one
            observation at a time).
    """
    k = int(expected_k)
    names = [str(n) for n in names] if names is not None else None
    listed = f" ({_names(names)})" if names and len(names) == k else ""
    if not isinstance(text, str):
        text = _decode(text, "The observation")
    if len(text.encode("utf-8", "replace")) > MAX_OBSERVATION_BYTES:
        raise TableError(f"The observation is longer than {_mb(MAX_OBSERVATION_BYTES)}; type {_plural(k, 'number')}.")
    cells = [c for c in _SEPARATORS.split(text.strip()) if c]
    if not cells:
        raise TableError(f"The observation is empty: type {_plural(k, 'number')}{listed}, separated by commas.")
    lines = _lines(text)
    per_line = [len([c for c in _SEPARATORS.split(ln.strip()) if c]) for ln in lines]
    if len(lines) > 1 and all(n == k for n in per_line):
        raise TableError(f"Type one observation: {_plural(k, 'number')} on one line; you typed "
                         f"{len(lines)} lines of {k}.")
    hint = _decimal_comma_hint(text, k, len(cells))
    if hint:
        raise TableError(hint)
    values = []
    for j, cell in enumerate(cells):
        try:
            v = float(cell)
        except (ValueError, OverflowError):
            raise TableError(
                f"{_component(j, names, len(cells))} is {_show(cell)}, which is not a number. Type only numbers "
                f"{_NUMBER_EXAMPLES}, separated by commas."
            ) from None
        if not math.isfinite(v):
            raise TableError(f"{_component(j, names, len(cells))} is {cell}: the observation must contain only "
                             "finite numbers (no nan or inf).")
        if abs(v) > _FLOAT32_MAX:
            raise TableError(f"{_component(j, names, len(cells))} is {cell}, too large: the observation must "
                             "contain only finite numbers of at most about 3.4e38.")
        values.append(v)
    if len(values) != k:
        raise TableError(f"The observation has {_plural(len(values), 'number')} but the model produces "
                         f"{_plural(k, 'number')}{listed}.")
    return np.asarray(values, dtype=np.float64)


# ---------------------------------------------------------------------------
# observations
# ---------------------------------------------------------------------------
def _observation_rows(data: Union[bytes, str], what: str, k: int, names: Optional[list]) -> list[list[str]]:
    """The cells of each line of an uploaded file, split at its sniffed separator; in a
    :func:`decimal_comma_file` (``0,5;1,25``, as a table of simulations may be) with points for commas.

    Raises :class:`TableError` when the file is too large or empty.
    """
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
    if decimal_comma_file(lines, sep):
        rows = [[c.replace(",", ".") for c in cells] for cells in rows]  # to_number's rule, cell by cell
    return rows


def _split_header(rows: list[list[str]], what: str) -> tuple[Optional[list[str]], list[list[str]]]:
    """``(header or None, data rows)``: a first row that is not all numbers (or missing values) is a header."""
    first_is_data = all(_is_number(c) or c.strip().lower() in _MISSING for c in rows[0])
    if not first_is_data and (len(rows) > 1 or not any(_is_number(c) for c in rows[0])):
        # a header; a single line holding numbers is data with a bad cell (reported below)
        if len(rows) == 1:
            raise TableError(f"{what} has a header but no rows of numbers.")
        return rows[0], rows[1:]
    return None, rows


def _column_order(header: Optional[list[str]], names: Optional[list], k: int, what: str) -> Optional[list[int]]:
    """The header position of each named component, or ``None`` to take the columns by position.

    Raises :class:`TableError` on a repeated column name, or a header that neither names
    every component nor has exactly ``k`` columns.
    """
    if header is None or not names:
        return None
    h = [c.strip() for c in header]
    if set(names) <= set(h):
        if len(set(h)) != len(h):
            dup = [c for c in h if h.count(c) > 1][0]
            raise TableError(f"The column name {_show(dup)} appears twice in the header of {what.lower()}.")
        return [h.index(n) for n in names]
    if len(h) != k:
        known = [c for c in h if c in names]
        lacking = [n for n in names if n not in h]
        raise TableError(
            f"{what}'s header names {_names(h)}, but the model's observation has {_plural(k, 'component')}"
            f" ({_names(names)}){': missing ' + _names(lacking) if known else ''}. Name the columns after "
            "the components, or give exactly one column per component."
        )
    return None


def _observation_value(cell: str, where: str, label: str, k: int) -> float:
    """One cell of an observation as a finite float; a :class:`TableError` naming ``where`` and ``label``."""
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
    return v


def _row_cells(cells: list[str], where: str, line_no: int, header, order, k: int, names) -> list[str]:
    """A data row's ``k`` cells, in the components' order; raises when it has the wrong number of cells."""
    if order is not None:
        if len(cells) != len(header):
            raise TableError(f"{where} (line {line_no}) has {len(cells)} cells but the header has {len(header)}.")
        return [cells[i] for i in order]
    if len(cells) != k:
        raise TableError(
            f"{where} has {_plural(len(cells), 'number')} but the model produces {k}"
            f"{' (' + _names(names) + ')' if names and len(names) == k else ''}."
        )
    return cells


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

    Typed text (``filename`` ``"typed"``, ``""`` or ``None``) is one
    observation, read by :func:`parse_typed_observation` (shape ``(1, K)``).

    Raises:
        TableError: empty, too large, a row with another number of values than
            ``expected_k`` ("the observation has 3 numbers but the model produces 4"),
            empty / NaN / infinite cells, text cells, too many rows.
    """
    if filename in (None, "", "typed"):
        return parse_typed_observation(data, expected_k, names)[None, :]
    what = f"The file {Path(str(filename)).name}"
    k = int(expected_k)
    names = [str(n) for n in names] if names is not None else None
    header, rows = _split_header(_observation_rows(data, what, k, names), what)
    if len(rows) > max_rows:
        raise TableError(f"{what} has {len(rows):,} rows; at most {max_rows:,} observations at a time.")
    order = _column_order(header, names, k, what)
    out = np.empty((len(rows), k), dtype=np.float64)
    many = len(rows) > 1
    for r, cells in enumerate(rows):
        where = (f"Row {r + 1} of the observations" if many else
                 f"The observation in {Path(str(filename)).name}")
        line_no = r + 1 + (1 if header is not None else 0)
        cells = _row_cells(cells, where, line_no, header, order, k, names)
        for j, cell in enumerate(cells):
            label = names[j] if names and len(names) == k else f"number {j + 1}"
            out[r, j] = _observation_value(cell, where, label, k)
    return out

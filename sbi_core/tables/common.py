"""Limits, the error type and the text helpers every reader shares (decoding, delimiter sniffing)."""

from __future__ import annotations

import csv
import re
from typing import Any, Optional, Sequence, Union

import numpy as np

from sbi_core.errors import SBIError

MAX_TABLE_BYTES = 50 * 1024 * 1024  # a table of simulations (CSV or Parquet)
MAX_TABLE_COLUMNS = 5_000
# rows x columns of a table of simulations. Reading costs about 35 bytes per cell at its peak (measured:
# 24 M cells of a Parquet file took 785 MB), so 5 M cells stay under ~200 MB; and a file's size says
# nothing about it: 0.45 MB of zstd Parquet held 100 M zeros. Checked before anything is decoded.
MAX_TABLE_CELLS = 5_000_000
# a Parquet file's data once decompressed, as its metadata states it (checked before decoding)
MAX_TABLE_DECODED_BYTES = 256 * 1024 * 1024
MAX_HEADER_BYTES = 1024 * 1024  # the first line of a CSV (its header) is looked at within this many bytes
MAX_OBSERVATION_BYTES = 5 * 1024 * 1024
MAX_OBSERVATION_ROWS = 10_000
MAX_JSON_BYTES = 1024 * 1024  # a prior spec or a RunSpec
MIN_ROWS = 20  # complete rows needed to train
MAX_OUTSIDE_FRACTION = 0.5  # of the rows' parameters outside the prior before we refuse
PARQUET_MAGIC = b"PAR1"
DELIMITERS = (",", ";", "\t", "|")
_SAMPLE_LINES = 50
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class TableError(SBIError, ValueError):
    """An uploaded table, observation file or typed observation that cannot be used; the message says why."""


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------
def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


def too_many_cells(name: str, rows: int, columns: int) -> "TableError":
    """The refusal of a table of ``rows`` x ``columns`` over :data:`MAX_TABLE_CELLS`, saying what to keep."""
    cells = rows * columns
    keep = max(MAX_TABLE_CELLS // max(columns, 1), 1)
    return TableError(
        f"{name} has {rows:,} rows × {columns:,} columns = {cells:,} cells; the app reads at most "
        f"{MAX_TABLE_CELLS:,} cells (rows × columns). Keep fewer rows or only the columns you need "
        f"(with {columns:,} columns, at most {keep:,} rows)."
    )


def too_many_columns(name: str, columns: int) -> "TableError":
    """The refusal of a table with more than :data:`MAX_TABLE_COLUMNS` columns."""
    return TableError(f"{name} has {columns:,} columns; at most {MAX_TABLE_COLUMNS:,} are supported. "
                      "Keep only the parameter and simulated-data columns.")


def _plural(n: int, word: str, plural: Optional[str] = None) -> str:
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def _show(value: Any, limit: int = 30) -> str:
    text = str(value)
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _names(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(str(n) for n in list(names)[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _decode(data: Union[bytes, str], what: str) -> str:
    """Text of an upload: UTF-8 (with or without BOM), else Latin-1; binary data is refused."""
    if isinstance(data, str):
        text = data
    else:
        if b"\x00" in data[:65536]:
            raise TableError(
                f"{what} is not a text file (it contains binary data). Save it as CSV: numbers "
                "separated by commas, semicolons or tabs, one row per line."
            )
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    if "\x00" in text:
        raise TableError(f"{what} contains a NUL character; save it as a plain-text CSV.")
    return text.lstrip("\ufeff")


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def _sniff(lines: Sequence[str]) -> Optional[str]:
    """The delimiter of a CSV from its first lines: the candidate that splits every line into the
    same number (> 1) of cells, preferring more cells; ``None`` for one column; ``" "`` when only
    runs of white space separate the cells."""
    sample = list(lines[:_SAMPLE_LINES])
    if not sample:
        return None
    best, best_cells = None, 1
    for sep in DELIMITERS:
        counts = []
        for ln in sample:
            try:
                counts.append(len(next(csv.reader([ln], delimiter=sep))))
            except (csv.Error, StopIteration):
                counts.append(0)
        if min(counts) > 1 and len(set(counts)) == 1 and counts[0] > best_cells:
            best, best_cells = sep, counts[0]
    if best is not None:
        return best
    # not consistent: the candidate present on most lines (ragged rows get a precise message later)
    scores = {sep: sum(1 for ln in sample if sep in ln) for sep in DELIMITERS}
    sep, hits = max(scores.items(), key=lambda kv: kv[1])
    if hits:
        return sep
    if all(len(ln.split()) > 1 for ln in sample):
        return " "
    return None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


# ---------------------------------------------------------------------------
# numbers people type or upload: one set of rules
# ---------------------------------------------------------------------------
# A comma inside a number means different things in different places, so the rules are stated once:
#
# * files (a table of simulations, a file of observations): a file whose cells are separated by
#   semicolons, with digit-comma-digit and never digit-point-digit in its first lines, is a
#   decimal-comma file (a European spreadsheet's CSV): every comma in its cells is a decimal mark,
#   "1,5;2,25" is 1.5 and 2.25 (:func:`decimal_comma_file`, :func:`to_number`). In any other file a
#   comma separates cells.
# * one typed observation: commas separate the numbers; text that reads as decimal commas
#   ("0,5; 0,3") is refused with the corrected text to use (observations.parse_typed_observation),
#   since "0,5" could also be the two numbers 0 and 5.
# * whole numbers typed in a list (Compare's budgets): a comma between digit groups of three
#   ("1,000", "12,500", "1,000,000") is a thousands separator, so "1,000" is 1000, never 1; other
#   commas, semicolons and spaces separate the numbers (:func:`split_whole_numbers`).
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+$")


def decimal_comma_file(lines: Sequence[str], sep: Optional[str]) -> bool:
    """Whether a file of numbers uses decimal commas: ``1,5;2,25`` style, semicolon-separated cells
    with digit-comma-digit and no digit-point-digit (the first line, a possible header, aside)."""
    if sep != ";":
        return False
    body = "\n".join(lines[1:_SAMPLE_LINES] or lines[:1])
    return bool(re.search(r"\d,\d", body)) and not re.search(r"\d\.\d", body)


_decimal_comma = decimal_comma_file  # the name the readers used


def to_number(cell: str, decimal_comma: bool = False) -> float:
    """A cell of a file as a float (``ValueError``/``OverflowError`` when it is not a number); in a
    :func:`decimal_comma_file` its comma is the decimal mark."""
    text = str(cell).strip()
    return float(text.replace(",", ".") if decimal_comma else text)


def split_whole_numbers(text: str) -> list[tuple[str, Optional[int], str]]:
    """The whole numbers of a typed list, as ``(the number as typed, its value or None when it is not a
    whole number, the comma-joined piece of text it came from)``.

    Numbers are separated by spaces, semicolons or commas, except that a comma between groups of
    three digits is a thousands separator: ``"1,000, 4,000"`` -> 1000 and 4000, ``"1000,4000"`` ->
    1000 and 4000, ``"500,100"`` -> 500100 (say so in a range error: it may have meant two numbers).
    ``_`` may group digits too (``10_000``).
    """
    out: list[tuple[str, Optional[int], str]] = []
    for piece in re.split(r"[;\s]+", str(text or "").strip()):
        piece = piece.strip(",")
        if not piece:
            continue
        tokens = [piece] if _THOUSANDS.match(piece.replace("_", "")) else [t for t in piece.split(",") if t]
        for token in tokens:
            digits = token.replace("_", "").replace(",", "")
            out.append((token, int(digits) if digits.isdigit() and digits.isascii() else None, piece))
    return out


def _split(line: str, sep: Optional[str]) -> list[str]:
    if sep is None:
        return [line.strip()]
    if sep == " ":
        return line.split()
    try:
        return [c.strip() for c in next(csv.reader([line], delimiter=sep))]
    except (csv.Error, StopIteration) as err:
        raise TableError(f"A line could not be read as CSV ({err}).") from None

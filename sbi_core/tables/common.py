"""Limits, the error type and the text helpers every reader shares (decoding, delimiter sniffing)."""

from __future__ import annotations

import csv
import re
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..errors import SBIError

MAX_TABLE_BYTES = 50 * 1024 * 1024  # a table of simulations (CSV or Parquet)
MAX_TABLE_COLUMNS = 5_000
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


def _decimal_comma(lines: Sequence[str], sep: Optional[str]) -> bool:
    """``1,5;2,25`` style: semicolon-separated cells that use a decimal comma."""
    if sep != ";":
        return False
    body = "\n".join(lines[1:_SAMPLE_LINES] or lines[:1])
    return bool(re.search(r"\d,\d", body)) and not re.search(r"\d\.\d", body)


def _split(line: str, sep: Optional[str]) -> list[str]:
    if sep is None:
        return [line.strip()]
    if sep == " ":
        return line.split()
    try:
        return [c.strip() for c in next(csv.reader([line], delimiter=sep))]
    except (csv.Error, StopIteration) as err:
        raise TableError(f"A line could not be read as CSV ({err}).") from None

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

import csv
import io
import json
import math
import re
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from .errors import SBIError
from .priors import Prior, PriorSpecError

__all__ = [
    "TableError",
    "MAX_TABLE_BYTES",
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


# ---------------------------------------------------------------------------
# tables of simulations
# ---------------------------------------------------------------------------
def read_table(data: bytes, filename: str = "table.csv", max_bytes: int = MAX_TABLE_BYTES):
    """Read an uploaded table (CSV with any common delimiter, or Parquet) into a DataFrame.

    Parquet is recognised by the extension (``.parquet``, ``.pq``) or its magic
    bytes; anything else is read as CSV: UTF-8 or Latin-1 text; the delimiter
    (comma, semicolon, tab, bar or white space) is detected; a first row made
    only of numbers means there is no header and the columns are called
    ``column1``, ``column2``, .... Cells are left as read: text cells are found
    and counted by :func:`check_columns` for the columns the user maps.

    Raises:
        TableError: empty file, too large, not parseable (with the line where
            the parser knows it), no column with numbers, duplicate column names.
    """
    import pandas as pd

    name = Path(str(filename or "table")).name or "table"
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TableError(f"{name}: expected the file's bytes.")
    data = bytes(data)
    if len(data) > max_bytes:
        raise TableError(
            f"The file {name} is {_mb(len(data))}; a table may be at most {_mb(max_bytes)}. "
            "Keep fewer rows or columns, or save it as Parquet, which is smaller."
        )
    if not data.strip():
        raise TableError(f"The file {name} is empty. Upload a CSV or Parquet file with a header row and "
                         "one simulation per row.")
    parquet = name.lower().endswith((".parquet", ".pq")) or data[:4] == PARQUET_MAGIC
    if parquet:
        df = _read_parquet(data, name)
    else:
        df = _read_csv(data, name)
    return _tidy(df, name)


def _read_parquet(data: bytes, name: str):
    import pandas as pd

    try:
        df = pd.read_parquet(io.BytesIO(data))
    except Exception as err:  # pyarrow raises many types on a damaged file
        detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise TableError(f"The file {name} could not be read as Parquet ({detail}). "
                         "Upload a valid Parquet file, or the table as CSV.") from None
    if len(df.columns) and len(set(map(str, df.columns))) != len(df.columns):
        dup = [c for c in map(str, df.columns) if list(map(str, df.columns)).count(c) > 1][0]
        raise TableError(f"The column name {_show(dup)} appears more than once in {name}: "
                         "give every column its own name.")
    return df


def _read_csv(data: bytes, name: str):
    import pandas as pd

    text = _decode(data, f"The file {name}")
    lines = _lines(text)
    if not lines:
        raise TableError(f"The file {name} is empty. Upload a CSV or Parquet file with a header row and "
                         "one simulation per row.")
    sep = _sniff(lines)
    rows: list[tuple[int, list[str]]] = []  # (line number, cells)
    if sep == " ":
        for number, ln in enumerate(text.splitlines(), start=1):
            if ln.strip():
                rows.append((number, ln.split()))
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep or ",")
        try:
            previous = 0
            for cells in reader:
                start, previous = previous + 1, reader.line_num
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue  # a blank line
                if any("\n" in c or "\r" in c for c in cells):
                    raise TableError(
                        f"Line {start} of {name} opens a quote (\") that is not closed on that line; "
                        "close it, or remove the quote character."
                    )
                rows.append((start, [c.strip() for c in cells]))
        except csv.Error as err:
            raise TableError(f"Line {reader.line_num} of {name} could not be read as CSV ({err}).") from None
    if not rows:
        raise TableError(f"The file {name} is empty. Upload a CSV or Parquet file with a header row and "
                         "one simulation per row.")
    first = rows[0][1]
    header = not all(_is_number(c) for c in first)
    if header:
        names = [c.strip() or f"column{i + 1}" for i, c in enumerate(first)]
        seen: dict[str, int] = {}
        for i, c in enumerate(names):
            if c in seen:
                raise TableError(
                    f"The column name {_show(c)} appears twice in {name} (columns {seen[c] + 1} and {i + 1}): "
                    "give every column its own name."
                )
            seen[c] = i
        rows = rows[1:]
    else:
        names = [f"column{i + 1}" for i in range(len(first))]
    if len(names) > MAX_TABLE_COLUMNS:
        raise TableError(f"{name} has {len(names):,} columns; at most {MAX_TABLE_COLUMNS:,} are supported.")
    if not rows:
        raise TableError(f"The file {name} has a header but no rows: add one simulation per row.")
    what = "header" if header else "first row"
    for number, cells in rows:
        if len(cells) != len(names):
            raise TableError(
                f"Line {number} of {name} has {len(cells)} cell{'s' if len(cells) != 1 else ''} but the {what} "
                f"has {len(names)}: every row needs the same number of columns."
            )
    columns = list(zip(*(cells for _, cells in rows)))
    comma = _decimal_comma(lines, sep)
    df = pd.DataFrame({
        n: pd.Series(col, dtype=object).str.replace(",", ".", regex=False) if comma else pd.Series(col, dtype=object)
        for n, col in zip(names, columns)
    })
    return df


def _tidy(df, name: str):
    """String column names, stripped; text columns that hold only numbers (and missing
    markers) become floats; at least one numeric column."""
    import pandas as pd

    df = df.copy()
    df.columns = [str(c).strip() or f"column{i + 1}" for i, c in enumerate(df.columns)]
    if df.columns.duplicated().any():
        dup = df.columns[df.columns.duplicated()][0]
        raise TableError(f"The column name {_show(dup)} appears more than once in {name}: "
                         "give every column its own name.")
    if len(df.columns) == 0 or len(df) == 0:
        raise TableError(f"The file {name} has no rows of data.")
    numeric = []
    for c in df.columns:
        num = _numeric(df[c])
        if num.notna().any():
            numeric.append(c)
            if not pd.api.types.is_float_dtype(df[c]) and bool((num.notna() | _missing_mask(df[c])).all()):
                df[c] = num
    if not numeric:
        raise TableError(
            f"No column of {name} contains numbers. A table of simulations needs numeric columns: "
            "the parameters of each simulation and the numbers it produced."
        )
    return df


def _numeric(col):
    """A column as a float Series; cells that are not numbers become NaN."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(col) or (
        pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_complex_dtype(col)
    ):
        try:
            return pd.Series(col.to_numpy(dtype=np.float64, na_value=np.nan), index=col.index)
        except (TypeError, ValueError, OverflowError):
            pass
    try:
        text = col.astype(str).str.strip()
    except Exception:  # exotic cell objects (nested Parquet values)
        return pd.Series(np.full(len(col), np.nan), index=col.index)
    return pd.to_numeric(text, errors="coerce").astype(np.float64)


_MISSING = {"", "nan", "na", "n/a", "null", "none", "-", "?"}


def _missing_mask(col):
    """Cells that are empty or an explicit missing marker (not text errors)."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        return col.isna().to_numpy()
    try:
        text = col.astype(str).str.strip().str.lower()
    except Exception:
        return col.isna().to_numpy()
    return (col.isna() | text.isin(_MISSING)).to_numpy()


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
    if not theta_columns:
        raise TableError("Choose at least one column of parameters (the values each simulation was run at).")
    if not x_columns:
        raise TableError("Choose at least one column of simulated data (the numbers each simulation produced).")
    cols = list(map(str, df.columns))
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

    chosen = theta_columns + x_columns
    n_rows = len(df)
    values = np.empty((n_rows, len(chosen)), dtype=np.float64)
    text_rows = np.zeros(n_rows, dtype=bool)
    nan_rows = np.zeros(n_rows, dtype=bool)
    non_numeric: dict[str, int] = {}
    non_finite: dict[str, int] = {}
    for j, c in enumerate(chosen):
        col = df[c]
        num = _numeric(col).to_numpy(dtype=np.float64, na_value=np.nan)
        missing_cells = _missing_mask(col)
        text = np.isnan(num) & ~missing_cells
        if np.isnan(num).all() and text.any():
            example = col[text].iloc[0] if hasattr(col[text], "iloc") else col[text][0]
            raise TableError(
                f"Column {_show(c)} holds text, not numbers (e.g. {_show(example)}): "
                f"choose only numeric columns as {'parameters' if c in theta_columns else 'simulated data'}."
            )
        with np.errstate(over="ignore", invalid="ignore"):
            finite = np.isfinite(num) & (np.abs(num) <= _FLOAT32_MAX)
        bad = ~finite & ~text
        if text.any():
            non_numeric[c] = int(text.sum())
        if bad.any():
            non_finite[c] = int(bad.sum())
        text_rows |= text
        nan_rows |= bad
        values[:, j] = num
    nan_rows &= ~text_rows
    keep = ~(text_rows | nan_rows)
    n_valid = int(keep.sum())
    report: dict[str, Any] = {
        "rows": n_rows,
        "valid_rows": n_valid,
        "dropped_nan_rows": int(nan_rows.sum()),
        "dropped_text_rows": int(text_rows.sum()),
        "non_numeric": non_numeric,
        "non_finite": non_finite,
        "constant_columns": [],
        "notes": [],
    }
    if n_valid < min_rows:
        why = []
        if report["dropped_nan_rows"]:
            why.append(f"{_plural(report['dropped_nan_rows'], 'row')} with an empty, NaN or infinite cell")
        if report["dropped_text_rows"]:
            why.append(f"{_plural(report['dropped_text_rows'], 'row')} with text in a number column")
        raise TableError(
            f"Only {_plural(n_valid, 'row')} of {n_rows:,} {'has' if n_valid == 1 else 'have'} numbers in every "
            f"chosen column{' (' + '; '.join(why) + ')' if why else ''}; training needs at least {min_rows}."
        )
    theta = values[keep, : len(theta_columns)]
    x = values[keep, len(theta_columns):]
    for j, c in enumerate(theta_columns):
        if np.ptp(theta[:, j]) == 0:
            raise TableError(
                f"Parameter column {_show(c)} has the same value ({theta[0, j]:g}) in every row, so the table "
                "says nothing about it. Remove it from the parameters."
            )
    for j, c in enumerate(x_columns):
        if np.ptp(x[:, j]) == 0:
            report["constant_columns"].append(c)
    notes = report["notes"]
    if report["dropped_nan_rows"]:
        cols_ = _names([f"{c} ({n})" for c, n in non_finite.items()])
        notes.append(f"{_plural(report['dropped_nan_rows'], 'row')} with empty, NaN or infinite cells "
                     f"{'is' if report['dropped_nan_rows'] == 1 else 'are'} dropped (cells per column: {cols_}).")
    if report["dropped_text_rows"]:
        cols_ = _names([f"{c} ({n})" for c, n in non_numeric.items()])
        notes.append(f"{_plural(report['dropped_text_rows'], 'row')} with text instead of a number "
                     f"{'is' if report['dropped_text_rows'] == 1 else 'are'} dropped (cells per column: {cols_}).")
    if report["constant_columns"]:
        notes.append(
            f"Simulated-data column{'s' if len(report['constant_columns']) > 1 else ''} "
            f"{_names(report['constant_columns'])} "
            f"{'have' if len(report['constant_columns']) > 1 else 'has'} the same value in every row and "
            "carr{} no information about the parameters; consider leaving {} out.".format(
                "y" if len(report["constant_columns"]) > 1 else "ies",
                "them" if len(report["constant_columns"]) > 1 else "it")
        )
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


# ---------------------------------------------------------------------------
# helping the user map a table
# ---------------------------------------------------------------------------
_THETA_RE = re.compile(r"^(theta|param|parameter|p|th|t)[\s_\-\[\(]*\d*[\]\)]?$|^(theta|param)", re.I)
_X_RE = re.compile(r"^(x|obs|observation|y|data|out|output|s|summary|stat)[\s_\-\[\(]*\d*[\]\)]?$|^(obs|x_|y_)",
                   re.I)


def guess_columns(df) -> tuple[list[str], list[str]]:
    """A first mapping of numeric columns: ``theta*``/``param*`` columns are parameters,
    ``x*``/``obs*``/``y*`` columns simulated data; without such names, the first numeric
    column is the parameter and the rest the data."""
    numeric = [str(c) for c in df.columns if _numeric(df[c]).notna().mean() >= 0.5]
    theta = [c for c in numeric if _THETA_RE.match(c)]
    x = [c for c in numeric if c not in theta and _X_RE.match(c)]
    if theta and not x:
        x = [c for c in numeric if c not in theta]
    elif x and not theta:
        theta = [c for c in numeric if c not in x]
    elif not theta and not x:
        theta, x = numeric[:1], numeric[1:]
    return theta, x


def default_prior_spec(df, theta_columns: Sequence[str], widen: float = 0.05) -> list[dict]:
    """Uniform priors over each parameter column's range, widened by ``widen`` of it on each side."""
    spec = []
    for c in theta_columns:
        v = _numeric(df[c]).to_numpy(dtype=np.float64, na_value=np.nan)
        v = v[np.isfinite(v)]
        lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
        pad = (hi - lo) * widen if hi > lo else max(abs(lo) * 0.1, 1.0)
        lo, hi = _round_down(lo - pad), _round_up(hi + pad)
        spec.append({"name": str(c), "dist": "uniform", "low": lo, "high": hi})
    return spec


def _round_down(v: float) -> float:
    return _round(v, math.floor)


def _round_up(v: float) -> float:
    return _round(v, math.ceil)


def _round(v: float, fn) -> float:
    """Round to 3 significant digits in the given direction (readable prior bounds)."""
    if v == 0 or not math.isfinite(v):
        return float(v)
    scale = 10 ** (math.floor(math.log10(abs(v))) - 2)
    return float(fn(v / scale) * scale)


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


# ---------------------------------------------------------------------------
# JSON: prior specs and RunSpecs
# ---------------------------------------------------------------------------
def _json_load(text: Union[str, bytes], what: str, error: type) -> Any:
    if isinstance(text, (bytes, bytearray)):
        if len(text) > MAX_JSON_BYTES:
            raise error(f"{what} is {_mb(len(text))}; at most {_mb(MAX_JSON_BYTES)}.")
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise error(f"{what} is not UTF-8 text; save it as a plain JSON file.") from None
    if not isinstance(text, str):
        raise error(f"{what} must be JSON text.")
    if len(text) > MAX_JSON_BYTES:
        raise error(f"{what} is {_mb(len(text))}; at most {_mb(MAX_JSON_BYTES)}.")
    if not text.strip():
        raise error(f"{what} is empty.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{what} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}.") from None
    except (RecursionError, ValueError) as err:  # too deeply nested, huge numbers
        raise error(f"{what} could not be read as JSON ({str(err)[:120] or type(err).__name__}).") from None


def prior_spec_from_json(text: Union[str, bytes]) -> list[dict]:
    """A validated prior spec (list of marginals) from JSON text.

    Accepts the list itself, ``{"prior": [...]}`` or a whole RunSpec (its ``prior``).

    Raises:
        PriorSpecError: invalid JSON (with line and column), wrong structure or values.
    """
    data = _json_load(text, "The prior file", PriorSpecError)
    if isinstance(data, dict):
        if "prior" not in data:
            raise PriorSpecError(
                "The JSON is an object without a 'prior'. A prior spec is a list of parameters, e.g. "
                '[{"name": "a", "dist": "uniform", "low": 0, "high": 1}].'
            )
        data = data["prior"]
        if data is None:
            raise PriorSpecError("This RunSpec has no prior of its own (it uses the model's default).")
    try:
        return Prior.from_spec(data).to_spec()
    except PriorSpecError:
        raise
    except (TypeError, ValueError, OverflowError, RecursionError) as err:
        raise PriorSpecError(f"The prior is not valid ({str(err)[:160]}).") from None


def runspec_from_json(text: Union[str, bytes]):
    """A validated :class:`~sbi_core.spec.RunSpec` from JSON text (its prior is checked too).

    Raises:
        RunSpecError: invalid JSON, unknown or ill-typed settings, an invalid prior.
    """
    from .spec import RunSpec, RunSpecError

    data = _json_load(text, "The RunSpec file", RunSpecError)
    try:
        spec = RunSpec.from_dict(data)
        spec.simulator_ref  # noqa: B018 - raises on a malformed reference
    except RunSpecError:
        raise
    except (TypeError, ValueError, OverflowError, RecursionError) as err:
        raise RunSpecError(f"The RunSpec is not valid: {str(err)[:200]}") from None
    if spec.prior is not None:
        try:
            Prior.from_spec(spec.prior)
        except PriorSpecError as err:
            raise RunSpecError(f"The RunSpec's prior is not valid: {err}") from None
        except (TypeError, ValueError, OverflowError) as err:
            raise RunSpecError(f"The RunSpec's prior is not valid ({str(err)[:160]}).") from None
    for key in ("observation", "true_theta"):
        value = getattr(spec, key)
        if value is not None:
            try:
                arr = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError, OverflowError):
                raise RunSpecError(f"The RunSpec's {key} must be a list of numbers.") from None
            if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all():
                raise RunSpecError(f"The RunSpec's {key} must be a non-empty list of finite numbers.")
    return spec

"""Reading a table of simulations: CSV (any common delimiter, decimal commas) or Parquet, tidied to numbers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from sbi_core.tables.common import (
    MAX_HEADER_BYTES,
    MAX_TABLE_BYTES,
    MAX_TABLE_CELLS,
    MAX_TABLE_COLUMNS,
    MAX_TABLE_DECODED_BYTES,
    PARQUET_MAGIC,
    _SAMPLE_LINES,
    TableError,
    _decimal_comma,
    _decode,
    _is_number,
    _lines,
    _mb,
    _show,
    _sniff,
    _split,
    too_many_cells,
    too_many_columns,
)

_PARQUET_BATCH_ROWS = 65_536  # rows decoded at a time, so a file whose metadata lies is stopped early

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

    Size is bounded before decoding, not only by the file's bytes: a table may
    have at most :data:`MAX_TABLE_CELLS` cells (rows x columns) and
    :data:`MAX_TABLE_COLUMNS` columns. A Parquet file's rows and columns come
    from its metadata (a compressed file of a few KB can hold 100 M values), then
    it is decoded in batches, counting, so a file whose metadata lies is stopped
    at the limit too. A CSV's columns come from its first lines, read within
    :data:`MAX_HEADER_BYTES`, and its rows from its line count, before it is parsed.

    Raises:
        TableError: empty file, too large, too many cells or columns, not
            parseable (with the line where the parser knows it), no column with
            numbers, duplicate column names.
    """
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
        raise _empty_file(name)
    parquet = name.lower().endswith((".parquet", ".pq")) or data[:4] == PARQUET_MAGIC
    if parquet:
        df = _read_parquet(data, name)
    else:
        df = _read_csv(data, name)
    return _tidy(df, name)


def _parquet_error(name: str, err: BaseException) -> TableError:
    detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    return TableError(f"The file {name} could not be read as Parquet ({detail}). "
                      "Upload a valid Parquet file, or the table as CSV.")


def _check_parquet_metadata(metadata, name: str) -> int:
    """The number of (leaf) columns, once the metadata's size is within the limits; else TableError."""
    columns = int(metadata.num_columns)
    rows = max(int(metadata.num_rows), sum(int(metadata.row_group(i).num_rows)
                                           for i in range(metadata.num_row_groups)))
    if columns > MAX_TABLE_COLUMNS:
        raise too_many_columns(name, columns)
    if rows * columns > MAX_TABLE_CELLS:
        raise too_many_cells(name, rows, columns)
    decoded = sum(max(int(metadata.row_group(i).total_byte_size), 0) for i in range(metadata.num_row_groups))
    if decoded > MAX_TABLE_DECODED_BYTES:
        raise TableError(f"{name} holds {_mb(decoded)} of data once decompressed; the app reads at most "
                         f"{_mb(MAX_TABLE_DECODED_BYTES)}. Keep fewer rows or only the columns you need.")
    return columns


def _read_parquet(data: bytes, name: str):
    """The DataFrame of a Parquet file, refused from its metadata, before decoding, when too large,
    and decoded in batches of :data:`_PARQUET_BATCH_ROWS` rows, counting, in case the metadata lies."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(io.BytesIO(data))  # reads the footer (metadata) only
        columns = _check_parquet_metadata(pf.metadata, name)
        batches, rows = [], 0
        for batch in pf.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
            rows += batch.num_rows
            if rows * columns > MAX_TABLE_CELLS:
                raise too_many_cells(name, rows, columns)  # more rows than the metadata said
            batches.append(batch)
        df = pa.Table.from_batches(batches, schema=pf.schema_arrow).to_pandas()
    except TableError:
        raise
    except Exception as err:  # pyarrow raises many types on a damaged file
        raise _parquet_error(name, err) from None
    if len(df.columns) and len(set(map(str, df.columns))) != len(df.columns):
        dup = [c for c in map(str, df.columns) if list(map(str, df.columns)).count(c) > 1][0]
        raise TableError(f"The column name {_show(dup)} appears more than once in {name}: "
                         "give every column its own name.")
    return df


def _empty_file(name: str) -> TableError:
    """The error for a table file with nothing in it."""
    return TableError(f"The file {name} is empty. Upload a CSV or Parquet file with a header row and "
                      "one simulation per row.")


def _csv_rows(text: str, sep, name: str) -> list[tuple[int, list[str]]]:
    """The non-blank rows of a CSV text as ``(line number, cells)``; ``sep`` ``" "`` splits at white space.

    Raises :class:`TableError` on a quote left open or a line the csv module cannot read.
    """
    rows: list[tuple[int, list[str]]] = []
    if sep == " ":
        for number, ln in enumerate(text.splitlines(), start=1):
            if ln.strip():
                rows.append((number, ln.split()))
        return rows
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
    return rows


def _csv_columns(rows: list[tuple[int, list[str]]], name: str) -> tuple[list[str], list, bool]:
    """``(column names, data rows, whether there is a header)``: a first row not all numbers is the header.

    Raises :class:`TableError` on a repeated column name or too many columns.
    """
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
        raise too_many_columns(name, len(names))
    return names, rows, header


def _check_row_widths(rows: list[tuple[int, list[str]]], names: list[str], name: str, header: bool) -> None:
    """Raise :class:`TableError` unless there are rows and every one has a cell per column."""
    if not rows:
        raise TableError(f"The file {name} has a header but no rows: add one simulation per row.")
    what = "header" if header else "first row"
    for number, cells in rows:
        if len(cells) != len(names):
            raise TableError(
                f"Line {number} of {name} has {len(cells)} cell{'s' if len(cells) != 1 else ''} but the {what} "
                f"has {len(names)}: every row needs the same number of columns."
            )


def _check_csv_size(data: bytes, name: str) -> None:
    """Refuse, before parsing, a CSV with too many columns (counted in its first lines, read within
    :data:`MAX_HEADER_BYTES`) or too many cells (those columns times its number of lines)."""
    sample = data[:MAX_HEADER_BYTES]
    if len(data) > len(sample):
        cut = max(sample.rfind(b"\n"), sample.rfind(b"\r"))
        if cut < 0:
            raise TableError(
                f"The first line of {name} is longer than {_mb(MAX_HEADER_BYTES)}: a table may have at most "
                f"{MAX_TABLE_COLUMNS:,} columns. Keep only the parameter and simulated-data columns."
            )
        sample = sample[:cut]
    lines = _lines(_decode(sample, f"The file {name}"))[:_SAMPLE_LINES]
    if not lines:
        return  # blank at the start: the full read says what is wrong
    sep = _sniff(lines)
    try:
        columns = len(_split(lines[0], sep))
    except TableError:
        return  # the full read names the line
    if columns > MAX_TABLE_COLUMNS:
        raise too_many_columns(name, columns)
    header = not all(_is_number(c) for c in _split(lines[0], sep))
    breaks = max(data.count(b"\n"), data.count(b"\r"))  # also old Mac files, "\r" only
    rows = breaks + (0 if data.endswith((b"\n", b"\r")) else 1) - (1 if header else 0)
    if rows * columns > MAX_TABLE_CELLS:
        raise too_many_cells(name, rows, columns)


def _read_csv(data: bytes, name: str):
    import pandas as pd

    _check_csv_size(data, name)
    text = _decode(data, f"The file {name}")
    lines = _lines(text)
    if not lines:
        raise _empty_file(name)
    sep = _sniff(lines)
    rows = _csv_rows(text, sep, name)
    if not rows:
        raise _empty_file(name)
    names, rows, header = _csv_columns(rows, name)
    _check_row_widths(rows, names, name, header)
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

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")  # what the upload widget accepts


def check_table_suffix(filename: str) -> None:
    """Refuse, before it is opened, a file whose name is not that of a table.

    A RunSpec names its table by path; one that names ``/etc/passwd`` must not
    have it read and its lines described back in an error message.
    """
    if not str(filename).lower().endswith(TABLE_SUFFIXES):
        raise TableError(f"A table of simulations is a file ending in {', '.join(TABLE_SUFFIXES)}; "
                         f"{Path(str(filename)).name} is not, so it was not opened.")


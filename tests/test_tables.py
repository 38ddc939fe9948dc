"""Tables of simulations, observation files, JSON imports and saved uploads: every bad input
gives a :class:`TableError` / :class:`PriorSpecError` / :class:`RunSpecError` that says what to fix."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hypothesis import given, settings
from hypothesis import strategies as st

from python_child import child_env
from sbi_core import Prior, PriorSpecError, RunSpecError, SBIError
from sbi_core.run.json_files import prior_spec_from_json, runspec_from_json
from sbi_core.tables import (
    MAX_TABLE_BYTES,
    TableError,
    check_columns,
    default_prior_spec,
    guess_columns,
    load_training_pairs,
    parse_observations,
    prepare_training_pairs,
    read_table,
)
from sbi_core.tables.observations import parse_typed_observation
from sbi_core.uploads.files import is_upload_path, save_upload
from sbi_core.uploads.paths import UploadError, safe_filename

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"


def csv_bytes(rows: list[list], header=("theta1", "theta2", "x1", "x2")) -> bytes:
    lines = [",".join(header)] if header else []
    lines += [",".join(str(v) for v in r) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def good_rows(n: int = 50, seed: int = 0) -> list[list]:
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-1, 1, size=(n, 2))
    x = theta + 0.1 * rng.normal(size=(n, 2))
    return np.hstack([theta, x]).round(5).tolist()


def err(fn, *args, **kw) -> str:
    with pytest.raises(TableError) as info:
        fn(*args, **kw)
    assert isinstance(info.value, SBIError)
    return str(info.value)


# ---------------------------------------------------------------------------
# read_table
# ---------------------------------------------------------------------------
def test_example_table_reads_and_maps():
    df = read_table((EXAMPLES / "two_moons_simulations.csv").read_bytes(), "two_moons_simulations.csv")
    assert list(df.columns) == ["theta1", "theta2", "x1", "x2"]
    assert len(df) == 2000
    assert all(df[c].dtype == float for c in df.columns)
    assert guess_columns(df) == (["theta1", "theta2"], ["x1", "x2"])


@pytest.mark.parametrize("columns, theta", [
    # issue 19: only ec50 was taken as a parameter (the first column), the hill slope as data
    (["ec50", "hill"] + [f"resp_{i}" for i in range(10)], ["ec50", "hill"]),
    (["k", "noise"] + [f"y[{i}]" for i in range(1, 6)], ["k", "noise"]),
    (["rate", "decay", "c1", "c2", "c3", "peak"], ["rate", "decay"]),  # after the series: data too
    (["a", "b", "c"], ["a"]),  # no series, no telling names: the first column, as before
    (["theta1", "theta2", "x1", "x2"], ["theta1", "theta2"]),  # names still win over the series rule
])
def test_a_numbered_series_is_data_and_the_names_before_it_parameters(columns, theta):
    df = pd.DataFrame(np.arange(4.0 * len(columns)).reshape(4, len(columns)), columns=columns)
    got_theta, got_x = guess_columns(df)
    assert got_theta == theta
    assert got_x == [c for c in columns if c not in theta]


def test_lone_names_with_digits_are_not_a_series():
    from sbi_core.tables.columns import series_columns

    assert series_columns(["ec50", "ec90", "hill", "resp_0", "resp_1"]) == ["resp_0", "resp_1"]
    assert series_columns(["x5", "x7"]) == []  # not counted from 0 or 1
    assert series_columns(["v1", "v2", "v4"]) == []  # a gap


@pytest.mark.parametrize("sep", [",", ";", "\t", "|", " "])
def test_delimiters_are_detected(sep):
    rows = good_rows(30)
    text = sep.join(["theta1", "theta2", "x1", "x2"]) + "\n" + "\n".join(sep.join(map(str, r)) for r in rows)
    df = read_table(text.encode(), "t.csv")
    assert list(df.columns) == ["theta1", "theta2", "x1", "x2"]
    np.testing.assert_allclose(df.to_numpy(dtype=float), np.asarray(rows))


def test_semicolons_with_decimal_commas():
    df = read_table(b"a;b\n1,5;2,25\n3,0;4,5\n", "eu.csv")
    np.testing.assert_allclose(df.to_numpy(dtype=float), [[1.5, 2.25], [3.0, 4.5]])


def test_no_header_names_columns():
    df = read_table(b"1,2,3\n4,5,6\n", "bare.csv")
    assert list(df.columns) == ["column1", "column2", "column3"]
    assert len(df) == 2


def test_utf8_bom_latin1_and_blank_lines():
    df = read_table("\ufefftheta,x\n\n1,2\n\n3,4\n".encode("utf-8"), "bom.csv")
    assert list(df.columns) == ["theta", "x"] and len(df) == 2
    df = read_table("température,x\n1,2\n".encode("latin-1"), "latin.csv")
    assert list(df.columns) == ["température", "x"]


def test_parquet_by_extension_and_magic(tmp_path):
    frame = pd.DataFrame(np.asarray(good_rows(25)), columns=["theta1", "theta2", "x1", "x2"])
    buf = io.BytesIO()
    frame.to_parquet(buf)
    data = buf.getvalue()
    for name in ("sims.parquet", "sims.bin"):  # .bin: found by the PAR1 magic bytes
        df = read_table(data, name)
        assert list(df.columns) == ["theta1", "theta2", "x1", "x2"] and len(df) == 25


def test_empty_file():
    assert "is empty" in err(read_table, b"", "e.csv")
    assert "is empty" in err(read_table, b"  \n\n \n", "e.csv")


def test_header_without_rows():
    assert "header but no rows" in err(read_table, b"theta,x\n", "h.csv")


def test_over_the_size_limit():
    msg = err(read_table, b"a,b\n" + b"1,2\n" * 40, "big.csv", max_bytes=100)
    assert "at most" in msg and "big.csv" in msg
    assert MAX_TABLE_BYTES >= 10 * 1024 * 1024


# ---- decompression bombs: refused from the metadata / first lines, before decoding ----------------
READ_IN_A_FRESH_PROCESS = """
import json, resource, sys
from pathlib import Path
from sbi_core.tables import TableError, read_table
data = Path(sys.argv[1]).read_bytes()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    read_table(data, Path(sys.argv[1]).name)
    message = None
except TableError as err:
    message = str(err)
grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({"message": message, "grew_mb": grew}))
"""


def read_elsewhere(path: Path) -> dict:
    """Read ``path`` with :func:`read_table` in a fresh process: its TableError and how much its peak
    memory (max RSS) grew while reading, in MB."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", READ_IN_A_FRESH_PROCESS, str(path)], capture_output=True,
                         text=True, timeout=300, cwd=path.parent, env=child_env())
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def parquet_of_zeros(path: Path, rows: int, columns: int = 2, chunk: int = 1_000_000) -> Path:
    """A zstd Parquet file of ``rows`` x ``columns`` zeros: a few KB on disk, written a chunk at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    part = pa.table({f"x{i}": np.zeros(chunk) for i in range(columns)})
    with pq.ParquetWriter(path, part.schema, compression="zstd") as writer:
        for _ in range(rows // chunk):
            writer.write_table(part)
    return path


@pytest.mark.slow
def test_parquet_bomb_is_refused_from_its_metadata(tmp_path):
    """2 columns x 12 M zeros in ~100 KB: decoding them took ~800 MB; now refused before decoding."""
    from sbi_core.tables.common import MAX_TABLE_CELLS

    path = parquet_of_zeros(tmp_path / "bomb.parquet", 12_000_000)
    assert path.stat().st_size < 1024 * 1024
    out = read_elsewhere(path)
    print(f"\n[bomb] {path.stat().st_size / 1024:.0f} KB Parquet: {out}")
    assert out["message"] and "24,000,000 cells" in out["message"] and f"{MAX_TABLE_CELLS:,}" in out["message"]
    assert "12,000,000 rows × 2 columns" in out["message"]
    assert out["grew_mb"] < 100  # today's code: ~800 MB


@pytest.mark.slow
def test_csv_with_a_million_columns_is_refused_before_parsing(tmp_path):
    """A header of a million names (refused after 18 s and ~900 MB of parsing before)."""
    path = tmp_path / "wide.csv"
    names = ",".join(f"c{i}" for i in range(1_000_000))
    path.write_text(names + "\n" + ",".join("1" for _ in range(1_000_000)) + "\n")
    out = read_elsewhere(path)
    assert out["message"] and "first line of wide.csv is longer than 1.0 MB" in out["message"]
    assert "5,000 columns" in out["message"]
    assert out["grew_mb"] < 100


def test_csv_columns_and_cells_are_counted_before_parsing():
    from sbi_core.tables.common import MAX_TABLE_CELLS, MAX_TABLE_COLUMNS

    wide = ",".join(f"c{i}" for i in range(MAX_TABLE_COLUMNS + 1)).encode() + b"\n"
    msg = err(read_table, wide + wide.replace(b"c", b""), "wide.csv")
    assert f"{MAX_TABLE_COLUMNS + 1:,} columns" in msg and f"at most {MAX_TABLE_COLUMNS:,}" in msg
    rows = MAX_TABLE_CELLS // 5 + 1
    msg = err(read_table, b"a,b,c,d,e\n" + b"0,0,0,0,0\n" * rows, "tall.csv")
    assert f"{rows:,} rows × 5 columns = {5 * rows:,} cells" in msg
    assert f"at most {MAX_TABLE_CELLS // 5:,} rows" in msg
    # the same without a header, and with old Mac line ends
    assert "cells" in err(read_table, b"0;0;0;0;0\r" * (rows + 1), "mac.csv")
    # at the limit it is read
    assert read_table(b"a,b,c,d,e\n" + b"0,1,2,3,4\n" * 1000, "ok.csv").shape == (1000, 5)


def test_parquet_within_the_limits_reads_as_before(tmp_path):
    """Batched decoding gives what pandas gave: columns, index columns left out, text and numbers."""
    frame = pd.DataFrame({"theta": np.arange(200_000, dtype=float), "x": np.arange(200_000) * 2.0,
                          "label": ["a"] * 200_000}, index=pd.RangeIndex(200_000, name="row"))
    path = tmp_path / "ok.parquet"
    frame.to_parquet(path)
    df = read_table(path.read_bytes(), path.name)
    assert list(df.columns) == ["theta", "x", "label"] and len(df) == 200_000
    assert float(df["x"].iloc[-1]) == 399_998.0


def test_wrong_number_of_columns_names_the_line():
    msg = err(read_table, b"a,b,c\n1,2,3\n4,5\n6,7,8\n", "ragged.csv")
    assert "Line 3" in msg and "2 cells" in msg and "header has 3" in msg
    msg = err(read_table, b"a,b\n1,2\n3,4,5,6\n", "long.csv")
    assert "Line 3" in msg and "4 cells" in msg


def test_duplicate_column_names():
    msg = err(read_table, b"theta,x,theta\n1,2,3\n", "dup.csv")
    assert "'theta' appears twice" in msg and "columns 1 and 3" in msg


def test_no_numeric_columns():
    assert "No column" in err(read_table, b"name,colour\nann,red\nbob,blue\n", "words.csv")


def test_binary_and_broken_parquet():
    assert "not a text file" in err(read_table, b"\x00\x01\x02garbage", "x.csv")
    assert "Parquet" in err(read_table, b"PAR1 not really parquet", "x.parquet")


def test_unclosed_quote_names_its_line():
    assert "Line 2 of q.csv opens a quote" in err(read_table, b'a,b\n"1,2\n3,4\n', "q.csv")


# ---------------------------------------------------------------------------
# check_columns / prepare_training_pairs
# ---------------------------------------------------------------------------
def table(rows, header=("theta1", "theta2", "x1", "x2")):
    return read_table(csv_bytes(rows, header), "t.csv")


def test_check_columns_good():
    rows = good_rows(40)
    theta, x, report = check_columns(table(rows), ["theta1", "theta2"], ["x1", "x2"])
    assert theta.shape == (40, 2) and x.shape == (40, 2)
    np.testing.assert_allclose(np.hstack([theta, x]), rows)
    assert report["rows"] == report["valid_rows"] == 40
    assert report["dropped_nan_rows"] == report["dropped_text_rows"] == 0 and not report["notes"]


def test_nan_rows_are_counted_and_dropped():
    rows = good_rows(40)
    rows[3][2] = "nan"
    rows[5][0] = ""
    rows[7][3] = "inf"
    theta, x, report = check_columns(table(rows), ["theta1", "theta2"], ["x1", "x2"])
    assert theta.shape == (37, 2)
    assert report["dropped_nan_rows"] == 3
    assert report["non_finite"] == {"x1": 1, "theta1": 1, "x2": 1}
    assert any("3 rows with empty, NaN or infinite cells are dropped" in n for n in report["notes"])


def test_text_cells_are_counted_and_dropped():
    rows = good_rows(40)
    rows[1][2] = "oops"
    rows[2][2] = "n/a"  # a missing marker, not text
    theta, x, report = check_columns(table(rows), ["theta1", "theta2"], ["x1", "x2"])
    assert report["non_numeric"] == {"x1": 1}
    assert report["dropped_text_rows"] == 1 and report["dropped_nan_rows"] == 1
    assert theta.shape == (38, 2)
    assert any("text instead of a number" in n for n in report["notes"])


def test_a_whole_text_column_is_an_error():
    rows = [r + ["label"] for r in good_rows(30)]
    df = table(rows, ("theta1", "theta2", "x1", "x2", "kind"))
    msg = err(check_columns, df, ["theta1", "theta2"], ["x1", "kind"])
    assert "'kind' holds text" in msg and "'label'" in msg


def test_constant_columns():
    rows = good_rows(30)
    for r in rows:
        r[3] = 1.5
    _, _, report = check_columns(table(rows), ["theta1", "theta2"], ["x1", "x2"])
    assert report["constant_columns"] == ["x2"]
    assert any("same value in every row" in n and "x2" in n for n in report["notes"])
    for r in rows:
        r[0] = 0.25
    msg = err(check_columns, table(rows), ["theta1", "theta2"], ["x1", "x2"])
    assert "'theta1' has the same value (0.25) in every row" in msg


def test_mapping_errors():
    df = table(good_rows(30))
    assert "at least one column of parameters" in err(check_columns, df, [], ["x1"])
    assert "at least one column of simulated data" in err(check_columns, df, ["theta1"], [])
    assert "no column 'zeta'" in err(check_columns, df, ["zeta"], ["x1"])
    assert "both as a parameter and as simulated data" in err(check_columns, df, ["theta1"], ["theta1", "x1"])
    assert "chosen twice" in err(check_columns, df, ["theta1", "theta1"], ["x1"])


def test_too_few_rows():
    rows = good_rows(25)
    for r in rows[:10]:
        r[2] = "nan"
    msg = err(check_columns, table(rows), ["theta1", "theta2"], ["x1", "x2"])
    assert "Only 15 rows of 25" in msg and "at least 20" in msg and "10 rows with an empty" in msg


def test_prior_support():
    rows = good_rows(100)  # theta in [-1, 1]
    df = table(rows)
    wide = Prior.uniform_box(["theta1", "theta2"], -1.0, 1.0)
    theta, _, report = prepare_training_pairs(df, ["theta1", "theta2"], ["x1", "x2"], wide)
    assert report["outside_prior"] == 0 and theta.shape == (100, 2)
    half = Prior.from_spec([{"name": "theta1", "dist": "uniform", "low": -0.5, "high": 1.0},
                            {"name": "theta2", "dist": "uniform", "low": -1.0, "high": 1.0}])
    theta, _, report = prepare_training_pairs(df, ["theta1", "theta2"], ["x1", "x2"], half)
    assert 0 < report["outside_prior"] < 50
    assert theta.shape[0] == 100 - report["outside_prior"] and (theta[:, 0] >= -0.5).all()
    assert any("outside the prior" in n for n in report["notes"])
    narrow = Prior.uniform_box(["theta1", "theta2"], 0.0, 0.1)
    msg = err(prepare_training_pairs, df, ["theta1", "theta2"], ["x1", "x2"], narrow)
    assert "does not cover" in msg and "Widen the prior" in msg
    one = Prior.uniform_box(["theta1"], -1.0, 1.0)
    assert "1 parameter but 2 columns" in err(prepare_training_pairs, df, ["theta1", "theta2"], ["x1"], one)


def test_default_prior_spec_widens_the_range():
    df = table(good_rows(100))
    spec = default_prior_spec(df, ["theta1", "theta2"])
    prior = Prior.from_spec(spec)
    assert prior.names == ["theta1", "theta2"]
    v = df[["theta1", "theta2"]].to_numpy(dtype=float)
    for i, m in enumerate(prior.marginals):
        assert m.params["low"] < v[:, i].min() and m.params["high"] > v[:, i].max()


def test_load_training_pairs(tmp_path):
    path = tmp_path / "sims.csv"
    path.write_bytes(csv_bytes(good_rows(60)))
    ref = {"kind": "table", "path": str(path), "theta_columns": ["theta1", "theta2"], "x_columns": ["x1", "x2"]}
    report: dict = {}
    theta, x = load_training_pairs(ref, Prior.uniform_box(["theta1", "theta2"], -1, 1), report=report)
    assert theta.dtype == torch.float32 and theta.shape == (60, 2) and x.shape == (60, 2)
    assert report["valid_rows"] == 60
    missing = dict(ref, path=str(tmp_path / "gone.csv"))
    assert "not there any more" in err(load_training_pairs, missing, Prior.uniform_box(["a", "b"], -1, 1))
    assert "theta_columns" in err(load_training_pairs, dict(ref, theta_columns="theta1"),
                                  Prior.uniform_box(["a", "b"], -1, 1))


# ---------------------------------------------------------------------------
# observations
# ---------------------------------------------------------------------------
def test_observations_example_file():
    obs = parse_observations((EXAMPLES / "observations.csv").read_bytes(), "observations.csv", 2, ["x1", "x2"])
    assert obs.shape == (6, 2) and obs.dtype == np.float64


def test_observation_typed_and_header_order():
    np.testing.assert_allclose(parse_observations("0.1, 0.2, 0.3", "typed", 3), [[0.1, 0.2, 0.3]])
    np.testing.assert_allclose(parse_observations("0.1 0.2 0.3", "typed", 3), [[0.1, 0.2, 0.3]])
    np.testing.assert_allclose(parse_observations("0.1,0.2,0.3,", "typed", 3), [[0.1, 0.2, 0.3]])
    got = parse_observations(b"b,a\n2,1\n4,3\n", "o.csv", 2, ["a", "b"])
    np.testing.assert_allclose(got, [[1, 2], [3, 4]])  # columns taken by name
    got = parse_observations(b"first,second\n1,2\n", "o.csv", 2, ["a", "b"])
    np.testing.assert_allclose(got, [[1, 2]])  # other names, right count: by position


def test_observation_wrong_length():
    msg = err(parse_observations, "1, 2, 3", "typed", 4)
    assert msg == "The observation has 3 numbers but the model produces 4 numbers."
    msg = err(parse_observations, b"1,2\n3,4,5\n", "o.csv", 2)
    assert "Row 2 of the observations has 3 numbers but the model produces 2" in msg


def test_observation_bad_cells():
    assert "Entry 2 (x2) is nan" in err(parse_observations, "1,nan", "typed", 2, ["x1", "x2"])
    assert "empty or NaN value for x2" in err(parse_observations, b"1,nan\n", "o.csv", 2, ["x1", "x2"])
    assert "Row 2" in err(parse_observations, b"1,2\n3,\n", "o.csv", 2)
    assert "'abc' for number 2, which is not a number" in err(parse_observations, b"1,2\n3,abc\n", "o.csv", 2)
    assert "only finite numbers" in err(parse_observations, "1,inf", "typed", 2)
    assert "must be finite" in err(parse_observations, b"1,inf\n", "o.csv", 2)
    assert "is empty" in err(parse_observations, b"", "o.csv", 2)
    assert "is empty" in err(parse_observations, "  ", "typed", 2)
    assert "header but no rows" in err(parse_observations, b"x1,x2\n", "o.csv", 2, ["x1", "x2"])
    msg = err(parse_observations, b"x1,x9,x3\n1,2,3\n", "o.csv", 2, ["x1", "x2"])
    assert "missing x2" in msg
    assert "at most" in err(parse_observations, b"1,2\n" * 30, "o.csv", 2, max_rows=10)


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------
def test_prior_spec_from_json():
    spec = [{"name": "a", "dist": "uniform", "low": 0, "high": 1}]
    assert prior_spec_from_json(json.dumps(spec)) == [{"name": "a", "dist": "uniform", "low": 0.0, "high": 1.0}]
    assert prior_spec_from_json(json.dumps({"prior": spec}))[0]["name"] == "a"
    with pytest.raises(PriorSpecError, match="not valid JSON: .* line 1, column"):
        prior_spec_from_json('[{"name": "a",')
    with pytest.raises(PriorSpecError, match="needs 'high'"):
        prior_spec_from_json('[{"name": "a", "dist": "uniform", "low": 0}]')
    with pytest.raises(PriorSpecError, match="without a 'prior'"):
        prior_spec_from_json('{"a": 1}')
    with pytest.raises(PriorSpecError, match="is empty"):
        prior_spec_from_json("")
    with pytest.raises(PriorSpecError, match="list of parameters"):
        prior_spec_from_json('"uniform"')


def test_runspec_from_json():
    spec = runspec_from_json('{"simulator": "two_moons", "method": "npe", "num_rounds": 1}')
    assert spec.method == "npe"
    with pytest.raises(RunSpecError, match="not valid JSON"):
        runspec_from_json("{")
    with pytest.raises(RunSpecError, match="Unknown RunSpec setting"):
        runspec_from_json('{"simulatr": "two_moons"}')
    with pytest.raises(RunSpecError):
        runspec_from_json('{"learning_rate": "fast"}')
    with pytest.raises(RunSpecError, match="prior is not valid"):
        runspec_from_json('{"prior": [{"name": "a", "dist": "uniform", "low": 2, "high": 1}]}')
    with pytest.raises(RunSpecError, match="observation"):
        runspec_from_json('{"observation": [1, "x"]}')


# ---------------------------------------------------------------------------
# uploads
# ---------------------------------------------------------------------------
def test_save_upload_is_content_addressed(tmp_path):
    p1 = save_upload(tmp_path, b"print(1)\n", "../../etc/my model.py")
    assert p1.name == "my_model.py" and p1.read_bytes() == b"print(1)\n"
    assert p1.parent.parent == tmp_path.resolve() / "uploads"
    assert save_upload(tmp_path, b"print(1)\n", "../../etc/my model.py") == p1
    p2 = save_upload(tmp_path, b"print(2)\n", "my model.py")
    assert p2 != p1 and p2.name == p1.name
    assert is_upload_path(tmp_path, p1) and not is_upload_path(tmp_path, tmp_path / "other.py")
    with pytest.raises(UploadError, match="empty"):
        save_upload(tmp_path, b"", "x.py")
    with pytest.raises(UploadError, match="at most"):
        save_upload(tmp_path, b"x" * 101, "x.py", max_bytes=100)


@pytest.mark.parametrize("name,expected", [
    ("model.py", "model.py"), ("..", "upload"), (".hidden.py", "hidden.py"), ("C:\\Users\\me\\m.py", "m.py"),
    ("a b;c$.csv", "a_b_c_.csv"), ("x" * 200 + ".csv", "x" * 76 + ".csv"), ("", "upload"),
])
def test_safe_filename(name, expected):
    assert safe_filename(name) == expected


# ---------------------------------------------------------------------------
# one typed observation: parse_typed_observation (the Model page and both upload tabs)
# ---------------------------------------------------------------------------
def test_typed_observation_separators():
    for text in ("0.1, 0.2, 0.3", "0.1 0.2 0.3", "0.1;0.2;0.3", "0.1\t0.2\n0.3,", " 0.1 ,0.2 ; 0.3 "):
        np.testing.assert_allclose(parse_typed_observation(text, 3), [0.1, 0.2, 0.3])
    assert parse_typed_observation("1,5", 2).tolist() == [1.0, 5.0]  # two numbers when two are expected


def test_typed_observation_names_the_word():
    # a word used to make the line a "header": "has a header but no rows of numbers"
    msg = err(parse_typed_observation, "0.1, zwei, 0.3, 0.4", 4)
    assert msg.startswith("Entry 2 is 'zwei', which is not a number.")
    msg = err(parse_typed_observation, "0.1, zwei, 0.3, 0.4", 4, ["x1", "x2", "x3", "x4"])
    assert msg.startswith("Entry 2 (x2) is 'zwei', which is not a number.")
    # the same through the file parser: one line is data, not a header
    msg = err(parse_observations, b"0.1,zwei,0.3,0.4\n", "o.csv", 4)
    assert "'zwei' for number 2, which is not a number" in msg


def test_typed_observation_decimal_commas_get_a_hint():
    msg = err(parse_typed_observation, "0,5; 0,3", 2)
    assert "comma as the decimal separator" in msg and msg.endswith("Use a point as the decimal separator: 0.5; 0.3")
    # a semicolon separates: the commas are decimal marks even when the count would fit
    assert "0.5; 0.3" in err(parse_typed_observation, "0,5; 0,3", 4)
    assert "0.5 0.3" in err(parse_typed_observation, "0,5 0,3", 2)
    assert "1.5" in err(parse_typed_observation, "1,5", 1)
    assert "-0.5;1.25e-3" in err(parse_typed_observation, "-0,5;1,25e-3", 2)


def test_typed_observation_other_problems():
    assert "is empty: type 2 numbers (a, b)" in err(parse_typed_observation, "  ", 2, ["a", "b"])
    assert err(parse_typed_observation, "1, 2, 3", 4, ["a", "b", "c", "d"]) == (
        "The observation has 3 numbers but the model produces 4 numbers (a, b, c, d).")
    assert "Entry 3 is nan" in err(parse_typed_observation, "1, 2, nan, 4", 4)
    assert "too large" in err(parse_typed_observation, "1e39, 2", 2)
    assert "you typed 2 lines of 2" in err(parse_typed_observation, "1, 2\n3, 4", 2)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=60), st.text(alphabet="0123456789,;. \t\n-+eE", max_size=40)),
       k=st.integers(1, 5))
def test_typed_observation_any_text(text, k):
    """Any text gives K finite numbers or a TableError, never another exception."""
    try:
        obs = parse_typed_observation(text, k)
    except TableError as e:
        assert str(e)
        return
    assert obs.shape == (k,) and np.isfinite(obs).all()

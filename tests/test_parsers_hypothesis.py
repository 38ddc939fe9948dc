"""Property tests: the upload parsers turn *any* input into either a valid result or their one
validation error (:class:`TableError`, :class:`PriorSpecError`, :class:`RunSpecError`), never
another exception."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sbi_core import Prior, PriorSpecError, RunSpec, RunSpecError
from sbi_core.methods.catalogue import method_info
from sbi_core.run.json_files import prior_spec_from_json, runspec_from_json
from sbi_core.stats.priors import FAMILIES
from sbi_core.tables import TableError, check_columns, parse_observations, read_table

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------
cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**30, 10**30).map(str),
    st.sampled_from(["", "nan", "NaN", "inf", "-inf", "n/a", "abc", "1e400", "1,5", '"', '"a,b"', " ", "\t", "--"]),
    st.text(max_size=6),
)
separators = st.sampled_from([",", ";", "\t", "|", " ", ", "])


@st.composite
def csv_text(draw) -> bytes:
    """CSV-like text: mostly rectangular, sometimes ragged, with odd cells and line endings."""
    sep = draw(separators)
    ncols = draw(st.integers(1, 5))
    header = draw(st.booleans())
    rows = []
    if header:
        rows.append([draw(st.sampled_from(["theta", "x", "a", "b", "", "x"])) + str(i) for i in range(ncols)])
    for _ in range(draw(st.integers(0, 30))):
        n = ncols if draw(st.integers(0, 9)) else draw(st.integers(0, 7))
        rows.append([draw(cells) for _ in range(n)])
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = end.join(sep.join(r) for r in rows)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    return text.encode(encoding, errors="replace")


def check_frame(df) -> None:
    assert isinstance(df, pd.DataFrame)
    assert len(df) > 0 and len(df.columns) > 0
    assert not df.columns.duplicated().any()
    assert all(isinstance(c, str) and c for c in df.columns)


# ---------------------------------------------------------------------------
# read_table
# ---------------------------------------------------------------------------
@SETTINGS
@given(data=st.binary(max_size=400), name=st.sampled_from(["t.csv", "t.parquet", "t.txt", "t"]))
def test_read_table_any_bytes(data, name):
    try:
        df = read_table(data, name)
    except TableError:
        return
    check_frame(df)


@SETTINGS
@given(data=csv_text(), name=st.sampled_from(["t.csv", "t.tsv"]))
def test_read_table_csv_like(data, name):
    try:
        df = read_table(data, name)
    except TableError:
        return
    check_frame(df)
    cols = list(df.columns)
    if len(cols) >= 2:  # mapping the first column against the rest also only gives TableError
        try:
            theta, x, report = check_columns(df, cols[:1], cols[1:])
        except TableError:
            return
        assert theta.shape[0] == x.shape[0] == report["valid_rows"] >= 20
        assert np.isfinite(theta).all() and np.isfinite(x).all()


@settings(max_examples=25, deadline=None)
@given(data=st.binary(max_size=200))
def test_read_table_parquet_magic(data):
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    buf = io.BytesIO()
    frame.to_parquet(buf)
    good = buf.getvalue()
    cut = good[: len(data) % len(good)] + data  # truncated / corrupted Parquet
    try:
        read_table(b"PAR1" + cut, "t.parquet")
    except TableError:
        pass


# ---------------------------------------------------------------------------
# parse_observations
# ---------------------------------------------------------------------------
@SETTINGS
@given(data=st.one_of(st.binary(max_size=300), csv_text(), st.text(max_size=80)), k=st.integers(1, 5),
       named=st.booleans())
def test_parse_observations_any_input(data, k, named):
    names = [f"x{i + 1}" for i in range(k)] if named else None
    try:
        obs = parse_observations(data, "o.csv", k, names)
    except TableError:
        return
    assert obs.ndim == 2 and obs.shape[1] == k and obs.shape[0] >= 1
    assert np.isfinite(obs).all()


# ---------------------------------------------------------------------------
# priors and RunSpecs from JSON-like structures
# ---------------------------------------------------------------------------
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)
numbers = st.one_of(st.integers(-10**400, 10**400), st.floats(), st.text(max_size=4), st.none(), st.booleans())


@st.composite
def marginal_like(draw) -> dict:
    """Close to a real marginal: a known family with some keys right, some wrong."""
    family = draw(st.sampled_from(sorted(FAMILIES) + ["Gaussian", "cauchy", ""]))
    required, optional = FAMILIES.get(family.lower(), (("low", "high"), {}))
    entry = {"name": draw(st.one_of(st.sampled_from(["a", "b", " ", ""]), json_scalars)), "dist": family}
    for key in list(required) + list(optional):
        if draw(st.integers(0, 5)):
            entry[key] = draw(numbers)
    if not draw(st.integers(0, 6)):
        entry[draw(st.text(max_size=5))] = draw(json_scalars)
    return entry


prior_like = st.one_of(st.lists(marginal_like(), max_size=4), json_values)


@SETTINGS
@given(spec=prior_like)
@example(spec=[{"name": "a", "dist": "normal", "loc": 10**400, "scale": 1}])  # beyond float range
@example(spec=[{"name": "a", "dist": "uniform", "low": float("nan"), "high": 1}])
@example(spec=[{"name": "a", "dist": "fixed", "value": 1}])  # all fixed
@example(spec=[{"name": "a", "dist": "uniform", "low": 0, "high": 1}, {"name": "a", "dist": "normal", "loc": 0,
                                                                      "scale": 1}])  # a name used twice
def test_prior_from_spec_any_structure(spec):
    try:
        prior = Prior.from_spec(spec)
    except PriorSpecError:
        return
    assert prior.dim == len(spec) >= 1
    assert Prior.from_spec(prior.to_spec()) == prior  # round trip
    assert all(math.isfinite(v) for m in prior.to_spec() for k, v in m.items() if k not in ("name", "dist"))


@SETTINGS
@given(spec=prior_like, wrap=st.booleans())
@example(spec=[{"name": "a", "dist": "normal", "loc": 10**400, "scale": 1}], wrap=False)
def test_prior_spec_from_json_any_structure(spec, wrap):
    try:
        text = json.dumps({"prior": spec} if wrap else spec)
    except (ValueError, OverflowError):
        return
    try:
        out = prior_spec_from_json(text)
    except PriorSpecError:
        return
    assert Prior.from_spec(out).to_spec() == out


@SETTINGS
@given(text=st.one_of(st.text(max_size=120), st.binary(max_size=120)))
def test_prior_spec_from_json_any_text(text):
    try:
        prior_spec_from_json(text)
    except PriorSpecError:
        pass


def test_deeply_nested_json_is_a_prior_spec_error():
    with pytest.raises(PriorSpecError):
        prior_spec_from_json("[" * 100_000 + "]" * 100_000)


@SETTINGS
@given(data=st.dictionaries(
    st.sampled_from(["simulator", "prior", "observation", "method", "num_rounds", "simulations_per_round",
                     "learning_rate", "seed", "batch_size", "title", "extra", "unknown"]),
    json_values, max_size=5))
def test_runspec_from_json_any_structure(data):
    try:
        text = json.dumps(data)
    except (ValueError, OverflowError):
        return
    try:
        spec = runspec_from_json(text)
    except RunSpecError:
        return
    method = spec.to_dict()["method"]
    # whatever was given (or the RunSpec's default) must be a catalogued method, and a one-round
    # method (the catalogue says which) must have been given one round
    assert method == data.get("method", RunSpec.__dataclass_fields__["method"].default)
    assert method_info(method).rounds(spec.num_rounds) == spec.num_rounds


# ---------------------------------------------------------------------------
# one set of number rules: decimal-comma files, thousands in typed whole numbers
# ---------------------------------------------------------------------------
@SETTINGS
@given(values=st.lists(st.lists(st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 4)),
                                min_size=2, max_size=2), min_size=1, max_size=5))
def test_a_decimal_comma_file_reads_the_same_as_observations_and_as_a_table(values):
    """``0,5;1,25``: read as 0.5 and 1.25 by the observations reader and the table reader alike
    (the observations reader refused it before)."""
    def comma(v: float) -> str:
        return f"{v:.4f}".replace(".", ",")

    text = "x1;x2\n" + "".join(f"{comma(a)};{comma(b)}\n" for a, b in values)
    got = parse_observations(text.encode(), "o.csv", 2, ["x1", "x2"])
    assert np.allclose(got, np.asarray(values, dtype=np.float64))
    rows = values * (20 // len(values) + 1)  # a table has at least one row; same rule
    table = read_table(("x1;x2\n" + "".join(f"{comma(a)};{comma(b)}\n" for a, b in rows)).encode(), "t.csv")
    assert np.allclose(table[["x1", "x2"]].to_numpy(dtype=np.float64), np.asarray(rows, dtype=np.float64))


@SETTINGS
@given(budgets=st.lists(st.integers(100, 100_000), min_size=1, max_size=4, unique=True),
       sep=st.sampled_from([", ", "; ", " ", ";", ",\t"]))
def test_budgets_with_thousands_separators(budgets, sep):
    """``"1,000"`` is one thousand, never the budget 1, in every list form."""
    from sbi_core.run.compare import parse_budgets

    assert parse_budgets(sep.join(f"{b:,}" for b in budgets)) == budgets
    assert parse_budgets(sep.join(str(b) for b in budgets)) == budgets


@SETTINGS
@given(text=st.text(max_size=40))
def test_budgets_any_text_is_a_list_or_a_clear_error(text):
    from sbi_core import SBIError
    from sbi_core.run.compare import BUDGET_RANGE, parse_budgets

    try:
        out = parse_budgets(text)
    except SBIError as err:
        assert "budget" in str(err).lower()
        return
    assert out and all(BUDGET_RANGE[0] <= b <= BUDGET_RANGE[1] for b in out)


def test_ambiguous_budget_commas_say_how_they_were_read():
    from sbi_core import SBIError
    from sbi_core.run.compare import parse_budgets

    assert parse_budgets("1,000") == [1000] and parse_budgets("1000,4000") == [1000, 4000]
    with pytest.raises(SBIError, match=r"1,5 was read as the budgets 1 and 5"):
        parse_budgets("1,5")
    with pytest.raises(SBIError, match=r"500,100 was read as 500100"):
        parse_budgets("500,100")

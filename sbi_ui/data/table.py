"""Your model & data, tab 2: a table of simulations, its column mapping and a run on it."""

from __future__ import annotations

import json

import streamlit as st

from sbi_core import Prior, RunSpec, SBIError
from sbi_core.tables import (
    MAX_OBSERVATION_BYTES,
    MAX_TABLE_BYTES,
    MAX_TABLE_CELLS,
    MIN_ROWS,
    TableError,
    check_columns,
    default_prior_spec,
    guess_columns,
    parse_observations,
    prepare_training_pairs,
    read_table,
)
from sbi_core.stats.shapes import DataShape, shape_from_columns
from sbi_core.tables.observations import parse_typed_observation
from sbi_core.uploads.files import save_upload
from sbi_core.uploads.paths import UploadError

from sbi_ui import keys as K
from sbi_ui import prior_editor as pe
from sbi_ui.data.common import (
    TABLE_OBS_SOURCES, cached_table, fmt, fmt_names, is_new_file, last_valid_upload, reject, sha, show_rejection,
    upload_limit_caption, upload_mb,
)
from sbi_ui.messages import flash
from sbi_ui.navigation import TRAIN
from sbi_ui.owner import owner_token
from sbi_ui.resources import store_root
from sbi_ui.session import start_run
from sbi_ui.user_text import plain


def _accept_table(uploaded) -> None:
    data = uploaded.getvalue()
    name = uploaded.name
    try:
        with st.spinner(f"Reading {name}..."):
            df = read_table(data, name)
            if len(df) < MIN_ROWS:
                raise TableError(f"{name} has only {len(df)} row{'s' if len(df) != 1 else ''} of simulations; "
                                 f"training needs at least {MIN_ROWS}.")
            path = save_upload(store_root(), data, name, max_bytes=MAX_TABLE_BYTES, owner=owner_token())
    except (TableError, UploadError) as err:
        reject(K.S_DATA_TABLE_ERROR, name, err)
        return
    theta_cols, x_cols = guess_columns(df)
    st.session_state[K.S_DATA_TABLE] = {"path": str(path), "filename": name, "sha": sha(data),
                                        "rows": len(df), "columns": list(map(str, df.columns))}
    st.session_state[K.S_DATA_TABLE_ERROR] = None
    st.session_state[K.W_DATA_THETA_COLS] = theta_cols
    st.session_state[K.W_DATA_X_COLS] = x_cols
    st.session_state[K.S_DATA_TABLE_COLS] = None  # a new table: its guessed mapping waits for the user's "yes"
    cached_table(str(path))  # warm the cache with a DataFrame read from the saved copy


def _forget_table() -> None:
    st.session_state[K.S_DATA_TABLE] = None
    st.session_state[K.S_DATA_TABLE_ERROR] = None


_SPEC_DEFAULTS = RunSpec()  # the table tab's widgets start at the RunSpec's defaults


def table_tab() -> None:
    """Upload a table, map its columns, set a prior and an observation, start amortized NPE on it."""
    st.markdown(
        "Already have simulations? Upload them as a table (CSV or Parquet, one simulation per row), say which "
        "columns are the **parameters** and which the **simulated data**, and train an amortized posterior "
        f"on them, with no simulator. At most {MAX_TABLE_BYTES // (1024 * 1024)} MB; at least {MIN_ROWS} "
        "complete rows. Example: `assets/examples/two_moons_simulations.csv`."
    )
    loaded = _uploaded_table()
    if loaded is None:
        return
    state, df = loaded
    columns = _column_choice(state, df)
    if columns is None:
        return
    theta_cols, x_cols = columns
    shape, x_cols = _table_shape(x_cols)
    checked = _checked_prior(state, df, theta_cols, x_cols)
    if checked is None:
        return
    prior, report, first_x = checked
    obs = _table_observation(x_cols, first_x)
    if obs is not None:
        _train_controls(state, theta_cols, x_cols, prior, report, obs, shape)


def _table_shape(x_cols: list) -> tuple[DataShape, list]:
    """How one row's data columns fold, and the columns in that order.

    Columns named by a scheme (``x[0] ... x[99]``, ``x[c][t]``, ``resp_0.3, resp_1, ...``:
    :func:`~sbi_core.stats.shapes.shape_from_columns`) are offered as one series or image, asked as a
    question: the reading decides which learned summary the network uses."""
    found = shape_from_columns(x_cols)
    vector = DataShape.vector(len(x_cols))
    if found is None or found[0].is_vector:
        return vector, x_cols
    shape, ordered = found
    st.markdown(f"**Your data columns look like {shape.describe()}** ({plain(fmt_names(ordered))}).")
    as_shape = st.radio(
        "Read them as", ["shape", "vector"], key=K.W_DATA_TABLE_SHAPE, horizontal=True, persist_state="session",
        format_func={"shape": f"{shape.describe()} (a network learns a summary of it)",
                     "vector": f"{len(x_cols)} separate numbers"}.get,
        help="A series keeps its order: a small network learns a summary of it (its level, trend and "
             "wiggles) while the posterior trains. Separate numbers are each taken as they are.")
    return (shape, ordered) if as_shape == "shape" else (vector, x_cols)


def _uploaded_table():
    """``(upload state, DataFrame)`` of the current table, or None (with the reason shown)."""
    uploaded = st.file_uploader(
        "Table of simulations (.csv, .parquet)", type=["csv", "tsv", "txt", "parquet", "pq"],
        key=K.W_DATA_TABLE_FILE, max_upload_size=upload_mb(MAX_TABLE_BYTES),
        help="A header row with column names, then one simulation per row. Commas, semicolons or tabs.",
    )
    upload_limit_caption(MAX_TABLE_BYTES, "keep fewer rows or only the columns you need, or save it as "
                                          f"Parquet, which is smaller. At most {MAX_TABLE_CELLS:,} cells "
                                          "(rows × columns).")
    state = last_valid_upload(uploaded, K.S_DATA_TABLE_SEEN, _accept_table, K.S_DATA_TABLE, K.S_DATA_TABLE_ERROR,
                              "the previous table, {},")
    if not state:
        st.caption("No table uploaded yet.")
        return None
    try:
        df = cached_table(state["path"])
    except (TableError, OSError) as err:
        st.error(f"The saved table can no longer be read ({plain(err)}); upload it again.", icon=":material/error:")
        return None
    head, side = st.columns([4, 1], vertical_alignment="center")
    head.markdown(f"**{plain(state['filename'])}** · {len(df):,} rows × {len(df.columns)} columns")
    side.button("Forget this table", key=K.W_DATA_TABLE_FORGET, on_click=_forget_table, icon=":material/delete:")
    st.dataframe(df.head(8), hide_index=True, height=min(38 + 35 * min(len(df), 8), 320))
    return state, df


def _column_choice(state: dict, df):
    """``(theta columns, x columns)`` once the user confirmed them with "Use these columns"; None before,
    while either is empty or the two do not pass the table checks (with the reason shown).

    The columns start at :func:`guess_columns`' guess, asked as a question: a wrong guess (an output
    taken for a parameter) would train a posterior about the wrong numbers, so nothing below (prior,
    observation, training) appears until the user has looked at the mapping and said yes. Changing
    a column afterwards asks again."""
    columns = list(map(str, df.columns))
    for key in (K.W_DATA_THETA_COLS, K.W_DATA_X_COLS):  # drop choices that are not columns of this table
        if key in st.session_state:
            st.session_state[key] = [c for c in st.session_state[key] if c in columns]
    st.markdown("**Which columns are the parameters, and which the simulated data?** The boxes start at a "
                "guess from the column names: check it, correct it, then press **Use these columns**.")
    c1, c2 = st.columns(2)
    theta_cols = c1.multiselect("Parameter columns (theta)", columns, key=K.W_DATA_THETA_COLS, persist_state="session",
                                help="The values each simulation was run at: what the posterior is about.")
    x_cols = c2.multiselect("Simulated-data columns (x)", columns, key=K.W_DATA_X_COLS, persist_state="session",
                            help="The numbers each simulation produced; an observation has one number per "
                                 "column, in this order.")
    if not theta_cols or not x_cols:
        st.info("Choose at least one parameter column and one simulated-data column.", icon=":material/info:")
        return None
    try:
        _check(state["path"], tuple(theta_cols), tuple(x_cols))
    except TableError as err:
        st.error(plain(err), icon=":material/error:")
        return None
    mapping = {"sha": state["sha"], "theta": list(theta_cols), "x": list(x_cols)}
    if st.session_state.get(K.S_DATA_TABLE_COLS) != mapping:
        if not st.button("Use these columns", key=K.W_DATA_TABLE_COLS_OK, type="primary", icon=":material/check:",
                         help="Confirm the mapping; the prior, the observation and training follow."):
            st.info(f"Is this right? **{len(theta_cols)} parameter{'s' if len(theta_cols) != 1 else ''}** "
                    f"({plain(fmt_names(theta_cols))}) and **{len(x_cols)} simulated-data column"
                    f"{'s' if len(x_cols) != 1 else ''}** ({plain(fmt_names(x_cols))}). Press **Use these columns** "
                    "to go on.", icon=":material/help:")
            return None
        st.session_state[K.S_DATA_TABLE_COLS] = mapping
    st.caption(f":material/check_circle: Columns in use: parameters {plain(fmt_names(theta_cols))}; "
               f"simulated data {plain(fmt_names(x_cols))}.")
    return theta_cols, x_cols


def _checked_prior(state: dict, df, theta_cols: list, x_cols: list):
    """``(prior, report, first row of x)`` once the columns and the edited prior pass the table checks."""
    try:
        _, first_x = _check(state["path"], tuple(theta_cols), tuple(x_cols))
    except TableError as err:
        st.error(plain(err), icon=":material/error:")
        return None
    st.markdown("**Prior.** Start: uniform over each parameter column's range, a little wider. "
                "Rows whose parameters fall outside the prior are left out.")
    default = Prior.from_spec(default_prior_spec(df, theta_cols))
    model_key = f"table_{state['sha']}_{sha(','.join(theta_cols).encode())[:6]}"
    prior = pe.prior_editor(model_key, default, plot_height=170)
    try:
        report, _ = _check(state["path"], tuple(theta_cols), tuple(x_cols), json.dumps(prior.to_spec()))
    except TableError as err:
        st.error(plain(err), icon=":material/error:")
        return None
    m1, m2, m3 = st.columns(3)
    m1.metric("Rows in the table", f"{report['rows']:,}", border=True)
    m2.metric("Rows used for training", f"{report['valid_rows']:,}", border=True)
    m3.metric("Rows left out", f"{report['rows'] - report['valid_rows']:,}", border=True)
    for note in report["notes"]:
        st.warning(plain(note), icon=":material/warning:")
    return prior, report, first_x


def _table_observation(x_cols: list, first_x) -> list | None:
    """The observation the run reports on (typed, or the first row of a file), or None with the reason shown.

    While the current input is invalid, the last valid observation of the same length is kept and said so.
    """
    k = len(x_cols)
    st.markdown("**Observation** (the run shows its posterior here; afterwards any observation can be asked "
                "on the next tab and on Explore)")
    source = st.radio("Observation source", list(TABLE_OBS_SOURCES), format_func=TABLE_OBS_SOURCES.get,
                      key=K.W_DATA_TABLE_OBS_SOURCE, horizontal=True, label_visibility="collapsed",
                      persist_state="session")
    last = st.session_state.get(K.S_DATA_TABLE_OBS)
    if last is not None and len(last) != k:
        last = None
    if source == "typed":
        obs = _typed_observation(k, x_cols, first_x)
    else:
        last = _observation_file(k, x_cols, last)
        obs = last
    if obs is not None:
        st.caption(f"Observation: {fmt(obs)}")
        return obs
    if last is not None:
        st.caption(f":material/history: Until this is fixed, the last valid observation is used: {fmt(last)}")
        return last
    st.info("Give an observation to train.", icon=":material/info:")
    return None


def _typed_observation(k: int, x_cols: list, first_x) -> list | None:
    text = st.text_input(f"{k} numbers, separated by commas ({plain(fmt_names(x_cols))})",
                         value=fmt(first_x), key=K.w_data_table_obs_typed(k), persist_state="session",
                         help="Starts at the first row's simulated data.")
    try:
        obs = [float(v) for v in parse_typed_observation(text, k, x_cols)]
    except TableError as err:
        st.error(plain(err), icon=":material/error:")
        return None
    st.session_state[K.S_DATA_TABLE_OBS] = obs
    return obs


def _observation_file(k: int, x_cols: list, last: list | None) -> list | None:
    """Read a newly uploaded observations file; the valid observation of length ``k`` now held, or None."""
    f = st.file_uploader("Observations file (.csv)", type=["csv", "tsv", "txt"], key=K.W_DATA_TABLE_OBS_FILE,
                         max_upload_size=upload_mb(MAX_OBSERVATION_BYTES),
                         help="One observation per row; a header naming the columns is optional.")
    upload_limit_caption(MAX_OBSERVATION_BYTES, "keep fewer rows.")
    if is_new_file(f, K.S_DATA_TABLE_OBS_SEEN):
        try:
            rows = parse_observations(f.getvalue(), f.name, k, x_cols)
            st.session_state[K.S_DATA_TABLE_OBS] = [float(v) for v in rows[0]]
            st.session_state[K.S_DATA_TABLE_OBS_ERROR] = None
            if len(rows) > 1:
                flash("info", f"{plain(f.name)} has {len(rows)} rows; the run uses the first. Ask about all of "
                                 "them on the Observations & JSON tab once it is trained.")
        except TableError as err:
            reject(K.S_DATA_TABLE_OBS_ERROR, f.name, err)
        last = st.session_state.get(K.S_DATA_TABLE_OBS)
    show_rejection(K.S_DATA_TABLE_OBS_ERROR, "the last valid observation" if last else None)
    return last if last is not None and len(last) == k else None


def _train_controls(state: dict, theta_cols: list, x_cols: list, prior: Prior, report: dict, obs: list,
                    shape: DataShape) -> None:
    """Training settings and the button that starts amortized NPE on the table's valid rows."""
    with st.expander("Training settings", icon=":material/settings:"):
        a1, a2 = st.columns(2)
        max_epochs = a1.number_input("Max epochs", min_value=5, max_value=2000, value=_SPEC_DEFAULTS.max_epochs,
                                     step=5, key=K.W_DATA_TABLE_EPOCHS, persist_state="session",
                                     help="Upper limit on passes over the table (early stopping usually ends sooner).")
        seed = a2.number_input("Seed", min_value=0, max_value=2**31 - 1, value=_SPEC_DEFAULTS.seed, step=1,
                               key=K.W_DATA_TABLE_SEED, persist_state="session",
                               help="Same table, settings and seed give the same result.")
    if not st.button("Train amortized NPE on this table", key=K.W_DATA_TABLE_TRAIN, type="primary",
                     icon=":material/play_arrow:",
                     help="Starts a background run on the rows above; its live view opens on the Train page."):
        return
    try:
        spec = RunSpec(
            simulator={"kind": "table", "path": state["path"], "theta_columns": list(theta_cols),
                       "x_columns": list(x_cols), "name": state["filename"],
                       **({} if shape.is_vector else {"data_shape": shape.to_dict()})},
            method="npe", num_rounds=1,
            simulations_per_round=int(min(max(report["valid_rows"], 20), 1_000_000)),
            prior=prior.to_spec(), observation=[float(v) for v in obs],
            max_epochs=int(max_epochs), seed=int(seed),
            title=f"{state['filename']}, amortized NPE",
        )
        start_run(spec, page=TRAIN)
    except SBIError as err:
        st.error(plain(err), icon=":material/error:")


@st.cache_data(show_spinner=False, max_entries=32)
def _check(path: str, theta_cols: tuple, x_cols: tuple, prior_json: str = "") -> tuple[dict, list]:
    """``(report, first row of x)`` of :func:`check_columns` (or, given a prior,
    :func:`prepare_training_pairs`) on a saved table."""
    df = cached_table(path)
    if prior_json:
        _, x, report = prepare_training_pairs(df, list(theta_cols), list(x_cols),
                                              Prior.from_spec(json.loads(prior_json)))
    else:
        _, x, report = check_columns(df, list(theta_cols), list(x_cols))
    return report, [float(v) for v in x[0]]

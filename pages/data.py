"""Your model & data: upload simulator code or a table of simulations, ask an amortized
posterior about many observations at once, and import or export priors and RunSpecs as JSON.

Every upload is checked before it replaces anything: the last *valid* upload of each
kind stays in session state (``ui_state.S_DATA_*``), and a rejected one only adds a
message that says what to fix.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Optional

import numpy as np
import streamlit as st
import torch

from sbi_core import Prior, PriorSpecError, RunSpec, RunSpecError, SBIError, SimulatorError, list_simulators, plots
from sbi_core.sandbox import sandbox_mode, sandbox_mode_description
from sbi_core.simulators.uploaded import MAX_UPLOAD_BYTES as MAX_CODE_BYTES
from sbi_core.simulators.uploaded import load_simulator
from sbi_core.tables import (
    MAX_OBSERVATION_BYTES,
    MAX_TABLE_BYTES,
    MIN_ROWS,
    TableError,
    default_prior_spec,
    guess_columns,
    parse_observations,
    prepare_training_pairs,
    prior_spec_from_json,
    read_table,
    runspec_from_json,
)
from sbi_core.uploads import UploadError, is_upload_path, save_upload

from pages import ui_common as ui
from pages import ui_prior_editor as pe
from pages import ui_state as K

ui.page_guard()

SIM_TIMEOUT_S = 10.0  # seconds to run the file, and per batch of simulations
TABS = ["Upload a simulator", "Upload simulations", "Observations & JSON"]
MAX_PANELS = 12  # observations drawn side by side
PANEL_SAMPLES = 500
PANEL_COLUMNS = 4
OBS_SOURCES = {"file": "The file's OBSERVATION", "typed": "Type the numbers"}
TABLE_OBS_SOURCES = {"typed": "Type the numbers", "file": "From an observations file (first row)"}


# ---------------------------------------------------------------------------
# helpers without widgets
# ---------------------------------------------------------------------------
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _title_from(filename: str) -> str:
    stem = Path(filename).stem.replace("_", " ").replace("-", " ").strip()
    return (stem[:1].upper() + stem[1:]) if stem else "Uploaded simulator"


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:g} MB" if n >= 1024 * 1024 else f"{n / 1024:g} KB"


def _fmt(values, digits: int = 4) -> str:
    return ", ".join(f"{float(v):.{digits}g}" for v in values)


def _new_file(uploaded, seen_key: str) -> bool:
    """True once per uploaded file (the uploader keeps returning it on every rerun)."""
    if uploaded is None:
        return False
    fid = getattr(uploaded, "file_id", None) or f"{uploaded.name}:{uploaded.size}"
    if st.session_state.get(seen_key) == fid:
        return False
    st.session_state[seen_key] = fid
    return True


def _reject(error_key: str, filename: str, err: BaseException) -> None:
    message = str(err)
    source = getattr(err, "source_line", None)
    if source and "\n" in message and message.rstrip().endswith(source.strip()):
        # the offending line is on a line of its own at the end: show it as code instead
        message = message.rstrip()[: -len(source.strip())].rstrip()
    else:
        source = None
    st.session_state[error_key] = {
        "filename": filename, "message": message, "source": source,
        "kind": getattr(err, "kind", None), "output": getattr(err, "output", "") or "",
    }


def _show_rejection(error_key: str, kept: Optional[str]) -> None:
    """The last rejected upload's message, and what stays in use instead."""
    err = st.session_state.get(error_key)
    if not err:
        return
    st.error(f"**{err['filename']}** was not accepted. {err['message']}", icon=":material/error:")
    if err.get("source"):
        st.code(err["source"], language="python")
    if err.get("output"):
        with st.expander("What the file printed"):
            st.code(err["output"], language="text")
    if kept:
        st.caption(f":material/history: Nothing changed: {kept} is still in use.")


# ---------------------------------------------------------------------------
# cached resources
# ---------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=4)
def _loaded(path: str, prior_json: str):
    """An uploaded simulator, loaded once per file and probe prior; its sandboxed child stays up.

    Returns ``(simulator, lock)``; the lock serialises calls into the child."""
    prior = json.loads(prior_json) if prior_json else None
    return load_simulator(path, timeout=SIM_TIMEOUT_S, prior=prior), threading.Lock()


@st.cache_data(show_spinner=False, max_entries=16)
def _simulations(path: str, load_prior: str, prior_json: str, n: int) -> np.ndarray:
    """``n`` simulations of the upload at draws from the prior (fixed seeds)."""
    sim, lock = _loaded(path, load_prior)
    theta = Prior.from_spec(json.loads(prior_json)).sample((n,), generator=torch.Generator().manual_seed(0))
    with lock:
        return sim.simulate(theta, seed=1).numpy()


@st.cache_resource(show_spinner=False, max_entries=4)
def _table(path: str):
    """The DataFrame of a saved table (shared; never modified)."""
    p = Path(path)
    return read_table(p.read_bytes(), p.name)


@st.cache_resource(show_spinner="Loading the trained posterior...", max_entries=8)
def _posterior(root: str, run_id: str):
    return ui.store().load_posterior(run_id)


@st.cache_data(show_spinner=False, max_entries=32)
def _panel_samples(root: str, run_id: str, rows: tuple, n: int) -> list:
    """Posterior samples per observation row (``None`` where the posterior cannot be sampled)."""
    posterior = _posterior(root, run_id)
    out = []
    for k, row in enumerate(rows):
        g = torch.Generator().manual_seed(k)
        try:
            out.append(posterior.sample((n,), x=torch.tensor(row, dtype=torch.float32), generator=g,
                                        max_sampling_time=5.0).numpy())
        except SBIError:
            out.append(None)
    return out


# ---------------------------------------------------------------------------
# tab 1: an uploaded simulator
# ---------------------------------------------------------------------------
def _accept_simulator(uploaded) -> None:
    """Save and load a new simulator file; on success it replaces the last one."""
    data = uploaded.getvalue()
    name = uploaded.name
    try:
        path = save_upload(ui.store_root(), data, name, max_bytes=MAX_CODE_BYTES)
        with st.spinner(f"Running {name} in the sandbox and trying a few simulations..."):
            try:
                sim, _ = _loaded(str(path), "")
            except SimulatorError as err:
                if err.kind != "no_prior":
                    raise
                sim = None
    except (SimulatorError, UploadError) as err:
        _reject(K.S_DATA_SIM_ERROR, name, err)
        return
    state = {"path": str(path), "filename": name, "sha": _sha(data), "title": _title_from(name),
             "doc": None, "file_prior": None, "observation": None, "k": None, "load_prior": "",
             "mode": None, "typed_obs": None}
    if sim is not None:
        obs = getattr(sim, "_default_observation", None)
        state.update(title=sim.title, doc=sim.description, file_prior=sim.prior.to_spec(), k=sim.x_dim,
                     observation=None if obs is None else [float(f"{v:.7g}") for v in obs.tolist()],
                     mode=getattr(sim.simulate_fn, "call_mode", None))
    st.session_state[K.S_DATA_SIM] = state
    st.session_state[K.S_DATA_SIM_ERROR] = None


def _forget_simulator() -> None:
    st.session_state[K.S_DATA_SIM] = None
    st.session_state[K.S_DATA_SIM_ERROR] = None


def _names_prior(names_text: str) -> tuple[Optional[Prior], Optional[str]]:
    names = [n.strip() for n in names_text.replace(";", ",").split(",") if n.strip()]
    if not names:
        return None, "Name at least one parameter (e.g. rate, or rate, noise)."
    try:
        return Prior.from_spec([{"name": n, "dist": "uniform", "low": 0.0, "high": 1.0} for n in names]), None
    except PriorSpecError as err:
        return None, str(err)


def _check_with_prior(state: dict, prior: Prior) -> None:
    load_prior = json.dumps(prior.to_spec())
    try:
        with st.spinner("Running your file in the sandbox with this prior..."):
            sim, _ = _loaded(state["path"], load_prior)
    except SimulatorError as err:
        _reject(K.S_DATA_SIM_ERROR, state["filename"], err)
        return
    obs = getattr(sim, "_default_observation", None)
    new = dict(state, doc=sim.description, k=sim.x_dim, load_prior=load_prior,
               observation=None if obs is None else [float(f"{v:.7g}") for v in obs.tolist()],
               mode=getattr(sim.simulate_fn, "call_mode", None))
    st.session_state[K.S_DATA_SIM] = new
    st.session_state[K.S_DATA_SIM_ERROR] = None


def _use_simulator(cfg: dict) -> None:
    st.session_state[K.S_MODEL_CFG] = cfg
    ui.flash("success", f"{cfg['title']} is now the current model. Set up a run below.")


def _simulator_tab() -> None:
    mode = sandbox_mode()
    text = sandbox_mode_description()
    if mode == "sandboxed":
        st.info(text, icon=":material/shield:")
    elif mode == "trusted":
        st.warning(text, icon=":material/warning:")
    else:
        st.error(text, icon=":material/block:")
    st.markdown(
        "Upload a Python file with a function `simulate(theta)`: it gets a NumPy array of parameters "
        "(one row per simulation, one column per parameter) and returns one row of numbers per simulation. "
        "Optionally define `PRIOR` (a list like `[{\"name\": \"k\", \"dist\": \"uniform\", \"low\": 0, "
        "\"high\": 2}]`) and `OBSERVATION` (a list of numbers); the file's docstring becomes its description. "
        f"Limits: {_size(MAX_CODE_BYTES)} of code, {SIM_TIMEOUT_S:g} s per batch of simulations, "
        "512 MB of memory. Example: `assets/examples/pendulum.py`."
    )
    uploaded = st.file_uploader(
        "Simulator file (.py)", type=["py"], key=K.W_DATA_SIM_FILE, disabled=mode == "refused",
        max_upload_size=max(1, 2 * MAX_CODE_BYTES // (1024 * 1024)),
        help="Plain Python; numpy is available. It runs in a separate, limited process, never in the app.",
    )
    if _new_file(uploaded, K.S_DATA_SIM_SEEN):
        _accept_simulator(uploaded)
    state = st.session_state.get(K.S_DATA_SIM)
    _show_rejection(K.S_DATA_SIM_ERROR, f"your previous upload, {state['filename']}," if state else None)
    if not state:
        st.caption("No simulator uploaded yet.")
        return

    st.divider()
    head, side = st.columns([4, 1], vertical_alignment="center")
    head.subheader(state["title"])
    side.button("Forget this upload", key=K.W_DATA_SIM_FORGET, on_click=_forget_simulator,
                icon=":material/delete:", help="Remove it from this page (runs that use it keep working).")
    if state.get("doc"):
        st.markdown(state["doc"])
    st.caption(f"File `{state['filename']}` · saved as `{state['path']}`")

    if state.get("k"):
        k = int(state["k"])
        params = (f"{len(state['file_prior'])} ({', '.join(m['name'] for m in state['file_prior'])})"
                  if state["file_prior"] is not None else "set below")
        st.markdown(f"**Parameters:** {params} · **Output:** {k} numbers per simulation "
                    f"({_fmt_names([f'x{i + 1}' for i in range(k)])})"
                    + (f" · `simulate` takes {'a batch' if state['mode'] == 'batched' else 'one parameter set'} "
                       "at a time" if state.get("mode") else ""))

    # ---- the prior ----------------------------------------------------------------
    if state["file_prior"] is not None:
        default = Prior.from_spec(state["file_prior"])
        model_key = f"upload_{state['sha']}"
        st.markdown("**Prior** (from the file's `PRIOR`; edit it here)")
    else:
        st.markdown("**Prior.** The file has no `PRIOR`: name the parameters `simulate` expects, in the order "
                    "of `theta`'s columns, then set each one's prior.")
        names_text = st.text_input("Parameter names (comma-separated)", value="theta1", key=K.W_DATA_SIM_NAMES,
                                   persist_state="session",
                                   help="One name per column of theta, e.g. rate, noise.")
        default, problem = _names_prior(names_text)
        if default is None:
            st.error(problem, icon=":material/error:")
            return
        model_key = f"upload_{state['sha']}_{_sha(','.join(default.names).encode())[:6]}"
    prior = pe.prior_editor(model_key, default)
    checked_names = [m["name"] for m in json.loads(state["load_prior"] or "[]")]
    if state["k"] is None or (state["file_prior"] is None and checked_names != prior.names):
        st.info("Check that the file runs with this prior: it simulates a few draws in the sandbox.",
                icon=":material/science:")
        if st.button("Check the simulator with this prior", key=K.W_DATA_SIM_CHECK, type="primary",
                     icon=":material/play_arrow:"):
            _check_with_prior(state, prior)
            st.rerun()
        return
    k = int(state["k"])
    obs_names = [f"x{i + 1}" for i in range(k)]

    # ---- the observation ----------------------------------------------------------
    sources = ["file", "typed"] if state["observation"] is not None else ["typed"]
    source = st.radio("Observation", sources, format_func=OBS_SOURCES.get, key=K.W_DATA_SIM_OBS_SOURCE,
                      horizontal=True, help="The data the posterior should explain.", persist_state="session")
    if source == "file" and state["observation"] is not None:
        obs = list(state["observation"])
        st.caption(f"From the file: {_fmt(obs)}")
    else:
        start = state.get("typed_obs") or state["observation"] or [0.0] * k
        text = st.text_input(f"{k} numbers, separated by commas ({_fmt_names(obs_names)})", value=_fmt(start),
                             key=K.w_data_sim_obs_typed(state['sha']), persist_state="session",
                             help="Your measured data, in the order simulate returns.")
        try:
            obs = parse_observations(text, "typed", k, obs_names)
            if len(obs) != 1:
                raise TableError(f"Type one observation ({k} numbers on one line).")
            obs = [float(v) for v in obs[0]]
            state["typed_obs"] = obs
        except TableError as err:
            st.error(str(err), icon=":material/error:")
            obs = state.get("typed_obs") or state["observation"]
            if obs is None:
                return
            st.caption(f":material/history: Until this is fixed, the last valid observation is used: {_fmt(obs)}")

    # ---- a look at some simulations -----------------------------------------------
    n = 60 if k >= 3 else 300
    try:
        x = _simulations(state["path"], state["load_prior"], json.dumps(prior.to_spec()), n)
        bad = int((~np.isfinite(x).all(1)).sum())
        st.plotly_chart(plots.simulations_figure(x[np.isfinite(x).all(1)], obs_names, x_obs=np.asarray(obs),
                                                 title="Your simulator at prior draws", height=320),
                        key="data_sim_thumbnail")
        if bad:
            st.warning(f"{bad} of {n} simulations returned NaN or infinity. Such results are left out of "
                       "training and counted on the Train page; many of them point to parameter values the "
                       "code cannot handle (narrow the prior).", icon=":material/warning:")
    except SimulatorError as err:
        st.error(f"With this prior the simulator fails: {err}", icon=":material/error:")
        return

    prior_text = "the file's PRIOR" if state["file_prior"] is not None and prior == default else "your prior"
    ref = {"kind": "upload", "path": state["path"], "name": state["title"], "timeout": SIM_TIMEOUT_S}
    cfg = {
        "simulator": f"upload:{state['filename']}", "simulator_ref": ref, "title": state["title"],
        "param_names": prior.names, "obs_names": obs_names, "prior": prior.to_spec(),
        "observation": [float(v) for v in obs], "true_theta": None, "obs_source": "upload",
        "prior_key": model_key, "prior_text": prior_text,
    }
    current = ui.model_config()
    in_use = (current.get("simulator_ref") or {}).get("path") == state["path"]
    if in_use:
        st.session_state[K.S_MODEL_CFG] = cfg  # keep the current model in step with the edits here
        st.success("This is the current model: the **Train** page starts runs with it.",
                   icon=":material/check_circle:")
        st.page_link(ui.TRAIN, label="Train on it", icon=":material/arrow_forward:")
    elif st.button("Use this simulator", key=K.W_DATA_SIM_USE, type="primary", icon=":material/check:",
                   help="Make it the current model; the Train page then starts runs with it, this prior "
                        "and this observation."):
        _use_simulator(cfg)
        st.switch_page(ui.TRAIN)


def _fmt_names(names, limit: int = 8) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (f", ... ({len(names)})" if len(names) > limit else "")


# ---------------------------------------------------------------------------
# tab 2: a table of simulations
# ---------------------------------------------------------------------------
def _accept_table(uploaded) -> None:
    data = uploaded.getvalue()
    name = uploaded.name
    try:
        with st.spinner(f"Reading {name}..."):
            df = read_table(data, name)
            if len(df) < MIN_ROWS:
                raise TableError(f"{name} has only {len(df)} row{'s' if len(df) != 1 else ''} of simulations; "
                                 f"training needs at least {MIN_ROWS}.")
            path = save_upload(ui.store_root(), data, name, max_bytes=MAX_TABLE_BYTES)
    except (TableError, UploadError) as err:
        _reject(K.S_DATA_TABLE_ERROR, name, err)
        return
    theta_cols, x_cols = guess_columns(df)
    st.session_state[K.S_DATA_TABLE] = {"path": str(path), "filename": name, "sha": _sha(data),
                                        "rows": len(df), "columns": list(map(str, df.columns))}
    st.session_state[K.S_DATA_TABLE_ERROR] = None
    st.session_state[K.W_DATA_THETA_COLS] = theta_cols
    st.session_state[K.W_DATA_X_COLS] = x_cols
    _table(str(path))  # warm the cache with a DataFrame read from the saved copy


def _forget_table() -> None:
    st.session_state[K.S_DATA_TABLE] = None
    st.session_state[K.S_DATA_TABLE_ERROR] = None


def _table_tab() -> None:
    st.markdown(
        "Already have simulations? Upload them as a table (CSV or Parquet, one simulation per row), say which "
        "columns are the **parameters** and which the **simulated data**, and train an amortized posterior "
        f"on them, with no simulator. At most {MAX_TABLE_BYTES // (1024 * 1024)} MB; at least {MIN_ROWS} "
        "complete rows. Example: `assets/examples/two_moons_simulations.csv`."
    )
    uploaded = st.file_uploader(
        "Table of simulations (.csv, .parquet)", type=["csv", "tsv", "txt", "parquet", "pq"],
        key=K.W_DATA_TABLE_FILE, max_upload_size=MAX_TABLE_BYTES // (1024 * 1024) + 10,
        help="A header row with column names, then one simulation per row. Commas, semicolons or tabs.",
    )
    if _new_file(uploaded, K.S_DATA_TABLE_SEEN):
        _accept_table(uploaded)
    state = st.session_state.get(K.S_DATA_TABLE)
    _show_rejection(K.S_DATA_TABLE_ERROR, f"the previous table, {state['filename']}," if state else None)
    if not state:
        st.caption("No table uploaded yet.")
        return
    try:
        df = _table(state["path"])
    except (TableError, OSError) as err:
        st.error(f"The saved table can no longer be read ({err}); upload it again.", icon=":material/error:")
        return
    head, side = st.columns([4, 1], vertical_alignment="center")
    head.markdown(f"**{state['filename']}** · {len(df):,} rows × {len(df.columns)} columns")
    side.button("Forget this table", key=K.W_DATA_TABLE_FORGET, on_click=_forget_table, icon=":material/delete:")
    st.dataframe(df.head(8), hide_index=True, height=min(38 + 35 * min(len(df), 8), 320))

    columns = list(map(str, df.columns))
    for key in (K.W_DATA_THETA_COLS, K.W_DATA_X_COLS):  # drop choices that are not columns of this table
        if key in st.session_state:
            st.session_state[key] = [c for c in st.session_state[key] if c in columns]
    c1, c2 = st.columns(2)
    theta_cols = c1.multiselect("Parameter columns (theta)", columns, key=K.W_DATA_THETA_COLS, persist_state="session",
                                help="The values each simulation was run at: what the posterior is about.")
    x_cols = c2.multiselect("Simulated-data columns (x)", columns, key=K.W_DATA_X_COLS, persist_state="session",
                            help="The numbers each simulation produced; an observation has one number per "
                                 "column, in this order.")
    if not theta_cols or not x_cols:
        st.info("Choose at least one parameter column and one simulated-data column.", icon=":material/info:")
        return
    try:
        report, first_x = _check(state["path"], tuple(theta_cols), tuple(x_cols))
    except TableError as err:
        st.error(str(err), icon=":material/error:")
        return

    st.markdown("**Prior.** Start: uniform over each parameter column's range, a little wider. "
                "Rows whose parameters fall outside the prior are left out.")
    default = Prior.from_spec(default_prior_spec(df, theta_cols))
    model_key = f"table_{state['sha']}_{_sha(','.join(theta_cols).encode())[:6]}"
    prior = pe.prior_editor(model_key, default, plot_height=170)
    try:
        report, _ = _check(state["path"], tuple(theta_cols), tuple(x_cols), json.dumps(prior.to_spec()))
    except TableError as err:
        st.error(str(err), icon=":material/error:")
        return
    m1, m2, m3 = st.columns(3)
    m1.metric("Rows in the table", f"{report['rows']:,}", border=True)
    m2.metric("Rows used for training", f"{report['valid_rows']:,}", border=True)
    m3.metric("Rows left out", f"{report['rows'] - report['valid_rows']:,}", border=True)
    for note in report["notes"]:
        st.warning(note, icon=":material/warning:")

    # ---- the observation the run reports on ---------------------------------------
    k = len(x_cols)
    st.markdown("**Observation** (the run shows its posterior here; afterwards any observation can be asked "
                "on the next tab and on Explore)")
    source = st.radio("Observation source", list(TABLE_OBS_SOURCES), format_func=TABLE_OBS_SOURCES.get,
                      key=K.W_DATA_TABLE_OBS_SOURCE, horizontal=True, label_visibility="collapsed",
                      persist_state="session")
    last = st.session_state.get(K.S_DATA_TABLE_OBS)
    if last is not None and len(last) != k:
        last = None
    obs = None
    if source == "typed":
        text = st.text_input(f"{k} numbers, separated by commas ({_fmt_names(x_cols)})",
                             value=_fmt(first_x), key=K.w_data_table_obs_typed(k), persist_state="session",
                             help="Starts at the first row's simulated data.")
        try:
            rows = parse_observations(text, "typed", k, x_cols)
            if len(rows) != 1:
                raise TableError(f"Type one observation ({k} numbers on one line).")
            obs = [float(v) for v in rows[0]]
            st.session_state[K.S_DATA_TABLE_OBS] = obs
        except TableError as err:
            st.error(str(err), icon=":material/error:")
    else:
        f = st.file_uploader("Observations file (.csv)", type=["csv", "tsv", "txt"], key=K.W_DATA_TABLE_OBS_FILE,
                             max_upload_size=MAX_OBSERVATION_BYTES // (1024 * 1024) + 1,
                             help="One observation per row; a header naming the columns is optional.")
        if _new_file(f, K.S_DATA_TABLE_OBS_SEEN):
            try:
                rows = parse_observations(f.getvalue(), f.name, k, x_cols)
                st.session_state[K.S_DATA_TABLE_OBS] = [float(v) for v in rows[0]]
                st.session_state[K.S_DATA_TABLE_OBS_ERROR] = None
                if len(rows) > 1:
                    ui.flash("info", f"{f.name} has {len(rows)} rows; the run uses the first. Ask about all of "
                                     "them on the Observations & JSON tab once it is trained.")
            except TableError as err:
                _reject(K.S_DATA_TABLE_OBS_ERROR, f.name, err)
            last = st.session_state.get(K.S_DATA_TABLE_OBS)
        _show_rejection(K.S_DATA_TABLE_OBS_ERROR, "the last valid observation" if last else None)
        obs = last if last is not None and len(last) == k else None
    if obs is None:
        if last is not None:
            obs = last
            st.caption(f":material/history: Until this is fixed, the last valid observation is used: {_fmt(obs)}")
        else:
            st.info("Give an observation to train.", icon=":material/info:")
            return
    else:
        st.caption(f"Observation: {_fmt(obs)}")

    with st.expander("Training settings", icon=":material/settings:"):
        a1, a2 = st.columns(2)
        max_epochs = a1.number_input("Max epochs", min_value=5, max_value=2000, value=100, step=5,
                                     key=K.W_DATA_TABLE_EPOCHS, persist_state="session",
                                     help="Upper limit on passes over the table (early stopping usually ends sooner).")
        seed = a2.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key=K.W_DATA_TABLE_SEED,
                               persist_state="session",
                               help="Same table, settings and seed give the same result.")
    if st.button("Train amortized NPE on this table", key=K.W_DATA_TABLE_TRAIN, type="primary",
                 icon=":material/play_arrow:",
                 help="Starts a background run on the rows above; its live view opens on the Train page."):
        try:
            spec = RunSpec(
                simulator={"kind": "table", "path": state["path"], "theta_columns": list(theta_cols),
                           "x_columns": list(x_cols), "name": state["filename"]},
                method="npe", num_rounds=1,
                simulations_per_round=int(min(max(report["valid_rows"], 20), 1_000_000)),
                prior=prior.to_spec(), observation=[float(v) for v in obs],
                max_epochs=int(max_epochs), seed=int(seed),
                title=f"{state['filename']}, amortized NPE",
            )
            ui.start_run(spec, page=ui.TRAIN)
        except SBIError as err:
            st.error(str(err), icon=":material/error:")


@st.cache_data(show_spinner=False, max_entries=32)
def _check(path: str, theta_cols: tuple, x_cols: tuple, prior_json: str = "") -> tuple[dict, list]:
    """``(report, first row of x)`` of :func:`check_columns` (or, given a prior,
    :func:`prepare_training_pairs`) on a saved table."""
    from sbi_core.tables import check_columns

    df = _table(path)
    if prior_json:
        _, x, report = prepare_training_pairs(df, list(theta_cols), list(x_cols),
                                              Prior.from_spec(json.loads(prior_json)))
    else:
        _, x, report = check_columns(df, list(theta_cols), list(x_cols))
    return report, [float(v) for v in x[0]]


# ---------------------------------------------------------------------------
# tab 3: many observations, and JSON
# ---------------------------------------------------------------------------
def _obs_names(ctx) -> Optional[list]:
    ref = ctx.spec.simulator_ref
    if ref.get("kind") == "table":
        return list(ref.get("x_columns") or []) or None
    if ctx.simulator is not None:
        return list(ctx.simulator.obs_names)
    return None


def _observations_section() -> None:
    st.subheader("Many observations at once")
    st.markdown(
        "An **amortized** posterior answers any observation without training again. Upload a CSV with one "
        "observation per row and see the posterior for each, side by side."
    )
    info = ui.pick_run(K.W_DATA_OBS_RUN, "Amortized run",
                       filter_fn=lambda r: r.spec.method == "npe" and r.status == "done",
                       help="Finished runs trained with amortized NPE (on a simulator or a table).")
    if info is None:
        st.info("There is no finished amortized run yet: train one on the **Train** page (method *Amortized "
                "NPE*) or on a table in the previous tab.", icon=":material/info:")
        return
    ctx = ui.run_context(info)
    try:
        posterior = _posterior(ui.store_root(), info.id)
    except SBIError as err:
        st.error(str(err), icon=":material/error:")
        return
    k = int(posterior.x_dim)
    names = _obs_names(ctx)
    names = names if names and len(names) == k else None
    shown_names = names or [f"x{i + 1}" for i in range(k)]
    uploaded = st.file_uploader(
        f"Observations (.csv): {k} numbers per row ({_fmt_names(shown_names)})", type=["csv", "tsv", "txt"],
        key=K.W_DATA_OBS_FILE, max_upload_size=MAX_OBSERVATION_BYTES // (1024 * 1024) + 1,
        help="One observation per row. A header row naming the components is optional; with one, the columns "
             "may come in any order. Example: assets/examples/observations.csv (two moons).",
    )
    if _new_file(uploaded, K.S_DATA_OBS_SEEN):
        try:
            rows = parse_observations(uploaded.getvalue(), uploaded.name, k, names)
            st.session_state[K.S_DATA_OBS] = {"filename": uploaded.name, "rows": rows.tolist(), "k": k}
            st.session_state[K.S_DATA_OBS_ERROR] = None
        except TableError as err:
            _reject(K.S_DATA_OBS_ERROR, uploaded.name, err)
    state = st.session_state.get(K.S_DATA_OBS)
    _show_rejection(K.S_DATA_OBS_ERROR, f"the previous file, {state['filename']}," if state else None)
    if not state:
        return
    if state["k"] != k:
        st.warning(f"The observations in {state['filename']} have {state['k']} numbers each, but this run's model "
                   f"produces {k}. Upload observations for this model, or pick another run.",
                   icon=":material/warning:")
        return
    rows = state["rows"]
    shown = rows[:MAX_PANELS]
    if len(rows) > MAX_PANELS:
        st.caption(f"{state['filename']}: {len(rows)} observations; the first {MAX_PANELS} are drawn.")
    else:
        st.caption(f"{state['filename']}: {len(rows)} observation{'s' if len(rows) != 1 else ''}.")
    dim = ctx.prior.dim
    labels = ctx.labels
    if dim > 2:
        c1, c2, _ = st.columns([1, 1, 2])
        ix = c1.selectbox("x-axis", range(dim), index=0, format_func=lambda i: labels[i], key=K.W_DATA_OBS_AXIS_X)
        iy = c2.selectbox("y-axis", range(dim), index=1, format_func=lambda i: labels[i], key=K.W_DATA_OBS_AXIS_Y)
    else:
        ix, iy = 0, min(1, dim - 1)
    with st.spinner(f"Sampling the posterior for {len(shown)} observations..."):
        samples = _panel_samples(ui.store_root(), info.id, tuple(tuple(r) for r in shown), PANEL_SAMPLES)
    titles = [f"row {r + 1}: x = ({_fmt(row, 3)})" if k <= 4 else f"row {r + 1}" for r, row in enumerate(shown)]
    st.plotly_chart(plots.small_multiples_figure(samples, titles, ix, iy, labels, ctx.bounds,
                                                columns=PANEL_COLUMNS), key="data_small_multiples")
    failed = [r + 1 for r, s in enumerate(samples) if s is None]
    if failed:
        st.warning(f"No samples for row(s) {', '.join(map(str, failed))}: almost all of the estimator's samples "
                   "fall outside the prior there, so the observation is probably implausible under this model.",
                   icon=":material/warning:")
    summary = {"row": [r + 1 for r in range(len(shown))]}
    for d, lab in enumerate(labels):
        summary[f"{lab} mean"] = [float(s[:, d].mean()) if s is not None else None for s in samples]
        summary[f"{lab} sd"] = [float(s[:, d].std()) if s is not None else None for s in samples]
    st.dataframe(summary, hide_index=True)
    st.caption(f"{PANEL_SAMPLES} posterior samples per observation, from the run's trained network "
               "(no new simulations or training).")


def _apply_prior(text, source: str) -> None:
    """Import a prior spec into the current model (only if it parses and fits the model)."""
    cfg = ui.model_config()
    view = ui.model_view(cfg)
    try:
        spec = prior_spec_from_json(text)
        names = [m["name"] for m in spec]
        if names != list(view.param_names):
            raise PriorSpecError(
                f"The prior in {source} is for parameters {', '.join(names)}, but the current model "
                f"({view.title}) has {', '.join(view.param_names)}: give one entry per parameter, with these "
                "names, in this order."
            )
    except PriorSpecError as err:
        st.session_state[K.S_DATA_PRIOR_MSG] = ("error", f"{err} The prior in use is unchanged.")
        return
    if cfg.get("simulator_ref"):
        pe.set_prior(cfg.get("prior_key") or "", spec)
        cfg["prior"] = spec
        cfg["prior_text"] = "your imported prior"
    else:
        sim = ui.simulator(cfg["simulator"])
        if Prior.from_spec(spec) == sim.prior:
            pe.forget_prior_edits(sim.name)
            cfg["prior"] = None
        else:
            pe.set_prior(sim.name, spec)
            cfg["prior"] = spec
    st.session_state[K.S_MODEL_CFG] = cfg
    st.session_state[K.S_DATA_PRIOR_MSG] = ("success", f"Imported the prior from {source} into {view.title}.")


def _prior_section() -> None:
    st.subheader("Prior: export and import")
    cfg = ui.model_config()
    view = ui.model_view(cfg)
    spec = cfg["prior"] if cfg.get("prior") else ui.simulator(cfg["simulator"]).prior.to_spec()
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown(f"The prior of the current model, **{view.title}**:")
        st.code("[\n" + ",\n".join("  " + json.dumps(m) for m in spec) + "\n]", language="json", wrap_lines=True)
        st.download_button("Download the prior (JSON)", json.dumps(spec, indent=2), key=K.W_DATA_PRIOR_DOWNLOAD,
                           file_name=f"prior_{Path(str(cfg['simulator'])).stem.replace(':', '_')}.json",
                           mime="application/json", icon=":material/download:")
    with right:
        f = st.file_uploader("Import a prior (.json)", type=["json"], key=K.W_DATA_PRIOR_FILE, max_upload_size=1,
                             help="A list of parameters like the one on the left, or a RunSpec (its prior is used).")
        if _new_file(f, K.S_DATA_PRIOR_SEEN):
            _apply_prior(f.getvalue(), f.name)
        text = st.text_area("...or paste one", key=K.W_DATA_PRIOR_TEXT, height=100,
                            placeholder='[{"name": "theta1", "dist": "uniform", "low": -1, "high": 1}, ...]')
        if st.button("Use the pasted prior", key=K.W_DATA_PRIOR_APPLY, disabled=not text.strip()):
            _apply_prior(text, "the pasted text")
        msg = st.session_state.get(K.S_DATA_PRIOR_MSG)
        if msg:
            (st.success if msg[0] == "success" else st.error)(msg[1])


def _check_spec_paths(spec: RunSpec) -> None:
    """An imported RunSpec may only use built-in models or files uploaded to this server."""
    ref = spec.simulator_ref
    kind = ref.get("kind")
    if kind == "builtin":
        if ref.get("name") not in list_simulators():
            raise RunSpecError(f"There is no built-in model {ref.get('name')!r}; choose one of "
                               f"{', '.join(list_simulators())}.")
    elif kind in ("upload", "table"):
        path = ref.get("path")
        if not isinstance(path, str) or not is_upload_path(ui.store_root(), path):
            raise RunSpecError(
                f"This RunSpec uses a file ({Path(str(path)).name}) that was not uploaded to this server. "
                "Upload the file on this page first, then export and import the spec from here."
            )
        if kind == "table" and spec.method != "npe":
            raise RunSpecError("A run on a table of simulations must use method 'npe'.")
    else:
        raise RunSpecError(f"Unknown simulator kind {kind!r}; use 'builtin', 'upload' or 'table'.")


def _import_spec(text, source: str) -> None:
    try:
        spec = runspec_from_json(text)
        _check_spec_paths(spec)
    except RunSpecError as err:
        _reject(K.S_DATA_SPEC_ERROR, source, err)
        return
    st.session_state[K.S_DATA_SPEC] = spec.to_dict()
    st.session_state[K.S_DATA_SPEC_ERROR] = None


def _spec_section() -> None:
    st.subheader("RunSpec: export and import")
    st.markdown("A **RunSpec** is everything a run needs (model, prior, observation, method, budget, seed) as "
                "JSON: the same spec and seed give the same result, here or with `python -m sbi_core spec.json`.")
    left, right = st.columns(2, gap="large")
    with left:
        rid = ui.current_run_id()
        info = ui.jobs().status(rid) if rid else None
        if info is None:
            st.caption("No current run to export. Start one on **Train**, or pick one on **Runs**.")
        else:
            st.markdown(f"The current run, **{ui.run_title(info)}**:")
            st.download_button("Download its RunSpec (JSON)", info.spec.to_json(), key=K.W_DATA_SPEC_DOWNLOAD,
                               file_name=f"runspec_{info.id}.json", mime="application/json",
                               icon=":material/download:")
    with right:
        f = st.file_uploader("Import a RunSpec (.json)", type=["json"], key=K.W_DATA_SPEC_FILE, max_upload_size=1)
        if _new_file(f, K.S_DATA_SPEC_SEEN):
            _import_spec(f.getvalue(), f.name)
        text = st.text_area("...or paste one", key=K.W_DATA_SPEC_TEXT, height=100,
                            placeholder='{"simulator": "two_moons", "method": "npe", "num_rounds": 1, ...}')
        if st.button("Check the pasted RunSpec", key=K.W_DATA_SPEC_CHECK, disabled=not text.strip()):
            _import_spec(text, "The pasted RunSpec")
    spec_dict = st.session_state.get(K.S_DATA_SPEC)
    _show_rejection(K.S_DATA_SPEC_ERROR, "the previously imported RunSpec" if spec_dict else None)
    if spec_dict:
        spec = RunSpec.from_dict(spec_dict)
        rounds = "1 round" if spec.method == "npe" else f"{spec.num_rounds} rounds"
        st.success(f"Ready: {spec.title or ui.model_title_of(spec)} · {ui.METHOD_NAMES.get(spec.method)} · "
                   f"{rounds} × {spec.simulations_per_round:,} simulations · seed {spec.seed}",
                   icon=":material/check_circle:")
        with st.expander("The imported RunSpec"):
            st.json(spec_dict, expanded=True)
        if st.button("Start this run", key=K.W_DATA_SPEC_START, type="primary", icon=":material/play_arrow:"):
            try:
                ui.start_run(spec, page=ui.TRAIN)
            except SBIError as err:
                st.error(str(err), icon=":material/error:")


# ---------------------------------------------------------------------------
# the page
# ---------------------------------------------------------------------------
st.title("Your model & data")
st.markdown(
    "Bring your own **simulator code**, or a **table of simulations** you already have, and infer its "
    "parameters. An amortized posterior then answers a whole file of **observations** at once. "
    "A rejected upload never replaces the last good one: fix what the message says and upload again."
)
tab_sim, tab_table, tab_json = st.tabs(TABS, key=K.W_DATA_TABS)
with tab_sim:
    _simulator_tab()
with tab_table:
    _table_tab()
with tab_json:
    _observations_section()
    st.divider()
    _prior_section()
    st.divider()
    _spec_section()

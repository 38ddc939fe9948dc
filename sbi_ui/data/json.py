"""Your model & data, tab 3: many observations at once, and priors and RunSpecs as JSON.

RunSpecs travel in the portable form (:func:`sbi_core.uploads.files.portable_spec`):
the download carries an uploaded file inside, and an imported spec passes
:func:`sbi_core.uploads.files.admit_spec`, which stores a carried file as an upload
of this server and refuses any other file path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import streamlit as st

from sbi_core import Prior, PriorSpecError, RunSpec, RunSpecError, SBIError, plots
from sbi_core.run.json_files import MAX_RUNSPEC_BYTES, prior_spec_from_json, runspec_from_json
from sbi_core.tables import MAX_OBSERVATION_BYTES, TableError, parse_observations
from sbi_core.uploads.files import admit_spec, portable_spec

from sbi_ui import keys as K
from sbi_ui import prior_editor as pe
from sbi_ui.axes import axis_pickers
from sbi_ui.charts import chart
from sbi_ui.data.common import (
    MAX_PANELS, PANEL_COLUMNS, PANEL_SAMPLES, fmt, fmt_names, json_import, last_valid_upload, panel_samples, reject,
    show_rejection, upload_limit_caption, upload_mb,
)
from sbi_ui.model_choice import ModelChoice
from sbi_ui.naming import is_amortized, method_title, model_title_of, rounds_text, run_title
from sbi_ui.owner import owner_token
from sbi_ui.resources import posterior as load_posterior
from sbi_ui.resources import simulator, store_root
from sbi_ui.run_context import run_context
from sbi_ui.session import current_run, pick_run
from sbi_ui.train_start import IMPORT_KEYS, start_controls
from sbi_ui.user_text import plain


def _obs_names(ctx) -> Optional[list]:
    ref = ctx.spec.simulator_ref
    if ref.get("kind") == "table":
        return list(ref.get("x_columns") or []) or None
    if ctx.simulator is not None:
        return list(ctx.simulator.obs_names)
    return None


def observations_section() -> None:
    st.subheader("Many observations at once")
    st.markdown(
        "An **amortized** posterior answers any observation without training again. Upload a CSV with one "
        "observation per row and see the posterior for each, side by side."
    )
    info = pick_run(K.W_DATA_OBS_RUN, "Amortized run",
                    filter_fn=lambda r: is_amortized(r.spec) and r.status == "done",
                       help="Finished runs trained with amortized NPE (on a simulator or a table).")
    if info is None:
        st.info("There is no finished amortized run yet: train one on the **Train** page (method *Amortized "
                "NPE*) or on a table in the previous tab.", icon=":material/info:")
        return
    ctx = run_context(info)
    try:
        posterior = load_posterior(store_root(), info.id)
    except SBIError as err:
        st.error(plain(err), icon=":material/error:")
        return
    k = int(posterior.x_dim)
    names = _obs_names(ctx)
    names = names if names and len(names) == k else None
    shown_names = names or [f"x{i + 1}" for i in range(k)]
    uploaded = st.file_uploader(
        f"Observations (.csv): {k} numbers per row ({fmt_names(shown_names)})", type=["csv", "tsv", "txt"],
        key=K.W_DATA_OBS_FILE, max_upload_size=upload_mb(MAX_OBSERVATION_BYTES),
        help="One observation per row. A header row naming the components is optional; with one, the columns "
             "may come in any order. Example: assets/examples/observations.csv (two moons).",
    )
    upload_limit_caption(MAX_OBSERVATION_BYTES, "keep fewer rows.")

    def accept(f) -> None:
        try:
            rows = parse_observations(f.getvalue(), f.name, k, names)
            st.session_state[K.S_DATA_OBS] = {"filename": f.name, "rows": rows.tolist(), "k": k}
            st.session_state[K.S_DATA_OBS_ERROR] = None
        except TableError as err:
            reject(K.S_DATA_OBS_ERROR, f.name, err)

    state = last_valid_upload(uploaded, K.S_DATA_OBS_SEEN, accept, K.S_DATA_OBS, K.S_DATA_OBS_ERROR,
                              "the previous file, {},")
    if not state:
        return
    if state["k"] != k:
        st.warning(f"The observations in {plain(state['filename'])} have {state['k']} numbers each, but this run's "
                   f"model produces {k}. Upload observations for this model, or pick another run.",
                   icon=":material/warning:")
        return
    rows = state["rows"]
    shown = rows[:MAX_PANELS]
    if len(rows) > MAX_PANELS:
        st.caption(f"{plain(state['filename'])}: {len(rows)} observations; the first {MAX_PANELS} are drawn.")
    else:
        st.caption(f"{plain(state['filename'])}: {len(rows)} observation{'s' if len(rows) != 1 else ''}.")
    labels = ctx.labels
    ix, iy = axis_pickers(ctx.prior.dim, labels, K.W_DATA_OBS_AXIS_X, K.W_DATA_OBS_AXIS_Y)
    with st.spinner(f"Sampling the posterior for {len(shown)} observations..."):
        samples = panel_samples(store_root(), info.id, tuple(tuple(r) for r in shown), PANEL_SAMPLES)
    titles = [f"row {r + 1}: x = ({fmt(row, 3)})" if k <= 4 else f"row {r + 1}" for r, row in enumerate(shown)]
    chart(plots.small_multiples_figure(samples, titles, ix, iy, labels, ctx.bounds,
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
    choice = ModelChoice.current()
    view = choice.view
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
    if choice.is_upload:
        pe.set_prior(choice.prior_key, spec)
        choice.replace(prior=spec, prior_text="your imported prior").save()
    else:
        sim = simulator(choice.simulator)
        if Prior.from_spec(spec) == sim.prior:
            pe.forget_prior_edits(sim.name)
            choice.replace(prior=None).save()
        else:
            pe.set_prior(sim.name, spec)
            choice.replace(prior=spec).save()
    st.session_state[K.S_DATA_PRIOR_MSG] = ("success", f"Imported the prior from {source} into {view.title}.")


def prior_section() -> None:
    st.subheader("Prior: export and import")
    choice = ModelChoice.current()
    view = choice.view
    spec = choice.prior_spec
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown(f"The prior of the current model, **{plain(view.title)}**:")
        st.code("[\n" + ",\n".join("  " + json.dumps(m) for m in spec) + "\n]", language="json", wrap_lines=True)
        st.download_button("Download the prior (JSON)", json.dumps(spec, indent=2), key=K.W_DATA_PRIOR_DOWNLOAD,
                           file_name=f"prior_{Path(choice.simulator).stem.replace(':', '_')}.json",
                           mime="application/json", icon=":material/download:")
    with right:
        json_import(_apply_prior, file_label="Import a prior (.json)", file_key=K.W_DATA_PRIOR_FILE,
                    seen_key=K.S_DATA_PRIOR_SEEN, max_mb=1,
                    file_help="A list of parameters like the one on the left, or a RunSpec (its prior is used).",
                    text_key=K.W_DATA_PRIOR_TEXT,
                    placeholder='[{"name": "theta1", "dist": "uniform", "low": -1, "high": 1}, ...]',
                    button="Use the pasted prior", button_key=K.W_DATA_PRIOR_APPLY, pasted="the pasted text")
        msg = st.session_state.get(K.S_DATA_PRIOR_MSG)
        if msg:
            (st.success if msg[0] == "success" else st.error)(plain(msg[1]))  # it names files and parameters


def _import_spec(text, source: str) -> None:
    try:
        spec = admit_spec(runspec_from_json(text), store_root(), owner=owner_token())
    except RunSpecError as err:
        reject(K.S_DATA_SPEC_ERROR, source, err)
        return
    st.session_state[K.S_DATA_SPEC] = spec.to_dict()
    st.session_state[K.S_DATA_SPEC_ERROR] = None


def spec_section() -> None:
    st.subheader("RunSpec: export and import")
    st.markdown("A **RunSpec** is everything a run needs (model, prior, observation, method, budget, seed) as "
                "JSON: the same spec and seed give the same result, here or with `python -m sbi_core spec.json`.")
    left, right = st.columns(2, gap="large")
    with left:
        _, info = current_run()
        if info is None:
            st.caption("No current run to export. Start one on **Train**, or pick one on **Runs**.")
        else:
            st.markdown(f"The current run, **{plain(run_title(info))}**:")
            try:
                portable = portable_spec(info.spec)
            except SBIError as err:
                st.warning(plain(err), icon=":material/warning:")
            else:
                st.download_button("Download its RunSpec (JSON)", portable.to_json(), key=K.W_DATA_SPEC_DOWNLOAD,
                                   file_name=f"runspec_{info.id}.json", mime="application/json",
                                   icon=":material/download:",
                                   help="An uploaded simulator or table travels inside the file, so the spec "
                                        "runs on any machine.")
    with right:
        json_import(_import_spec, file_label="Import a RunSpec (.json)", file_key=K.W_DATA_SPEC_FILE,
                    seen_key=K.S_DATA_SPEC_SEEN, max_mb=MAX_RUNSPEC_BYTES // (1024 * 1024),
                    file_help="A RunSpec downloaded from this app (on any server): a simulator or table it "
                              "carries is stored here as an upload. A spec that names a file path is refused.",
                    text_key=K.W_DATA_SPEC_TEXT,
                    placeholder='{"simulator": "two_moons", "method": "npe", "num_rounds": 1, ...}',
                    button="Check the pasted RunSpec", button_key=K.W_DATA_SPEC_CHECK, pasted="The pasted RunSpec")
    spec_dict = st.session_state.get(K.S_DATA_SPEC)
    show_rejection(K.S_DATA_SPEC_ERROR, "the previously imported RunSpec" if spec_dict else None)
    if spec_dict:
        spec = RunSpec.from_dict(spec_dict)
        st.success(f"Ready: {plain(spec.title or model_title_of(spec))} · {method_title(spec.method)} · "
                   f"{rounds_text(spec)} × {spec.simulations_per_round:,} simulations · seed {spec.seed}",
                   icon=":material/check_circle:")
        with st.expander("The imported RunSpec"):
            st.json(spec_dict, expanded=True)
        start_controls(spec, keys=IMPORT_KEYS)  # the Train page's estimate and long-run confirmation

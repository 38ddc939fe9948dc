"""Take a run away: its samples (CSV per round), an ArviZ NetCDF of every round, and the code that reruns it.

Files are built when the button is pressed (``st.download_button`` with a
callable), so a page that shows the buttons pays nothing for them.
"""

from __future__ import annotations

import io
from typing import Callable, Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from sbi_core import RunSpec, SBIError
from sbi_core.export import (
    figure_png,
    figure_svg,
    inference_data_from_store,
    run_report_html,
    spec_to_script,
    to_netcdf_bytes,
)
from sbi_core.store.runs import RunInfo

from sbi_ui import keys as K
from sbi_ui.resources import store

__all__ = ["samples_csv", "downloads", "figure_downloads", "report_download", "show_code"]

_LIBRARIES = {"sbi_core": "This app's library (sbi_core)", "sbi": "The sbi toolbox"}


def samples_csv(samples: np.ndarray, labels: Sequence[str]) -> bytes:
    """``samples (m, D)`` as CSV with a header row of the ``D`` parameter names."""
    buf = io.StringIO()
    np.savetxt(buf, np.asarray(samples, dtype=float), delimiter=",", header=",".join(labels), comments="",
               fmt="%.9g")
    return buf.getvalue().encode()


def _netcdf(run_id: str) -> bytes:
    return to_netcdf_bytes(inference_data_from_store(store(), run_id))


def _report(run_id: str) -> bytes:
    return run_report_html(store(), run_id).encode()


def report_download(info: RunInfo, key: str) -> None:
    """A button: the run as one HTML file that opens offline (spec, losses, clouds, checks, code)."""
    st.download_button(
        "Report (HTML, opens offline)", data=lambda: _report(info.id), file_name=f"report_{info.id}.html",
        mime="text/html", key=key, icon=":material/description:", on_click="ignore",
        disabled=info.status != "done",
        help="One file with the RunSpec, the loss curves, every round's cloud, the checks (if run) and the code "
             "that reruns it; it needs no internet to open.")


def figure_downloads(make_figure: Callable[[], go.Figure], name: str, key: str) -> None:
    """Buttons: the figure ``make_figure()`` builds, as PNG and as SVG (plotly's static export through kaleido
    and the system Chromium). The figure is built only when a button is pressed, not on every rerun."""
    c1, c2 = st.columns(2)
    c1.download_button("Figure (PNG)", data=lambda: _figure(figure_png, make_figure), file_name=f"{name}.png",
                       mime="image/png", key=f"{key}_png", icon=":material/image:", on_click="ignore")
    c2.download_button("Figure (SVG)", data=lambda: _figure(figure_svg, make_figure), file_name=f"{name}.svg",
                       mime="image/svg+xml", key=f"{key}_svg", icon=":material/image:", on_click="ignore")


def _figure(export, make_figure) -> bytes:
    try:
        return export(make_figure())
    except SBIError as err:  # no browser for the export: the file says why instead of a broken image
        return f"This figure could not be exported: {err}".encode()


def downloads(info: RunInfo, samples: np.ndarray, labels: Sequence[str], round_index: int) -> None:
    """Buttons: this round's samples (CSV), the whole run as ArviZ InferenceData (NetCDF), the report."""
    c1, c2, c3 = st.columns(3)
    c1.download_button(
        f"Round {round_index + 1} samples (CSV)", data=lambda: samples_csv(samples, labels),
        file_name=f"posterior_{info.id}_round{round_index + 1}.csv", mime="text/csv", key=K.W_ROUND_CSV,
        icon=":material/download:", on_click="ignore",
        help="This round's posterior samples at the observation, one row per sample, a column per parameter.")
    if info.status != "done":
        c2.caption("The ArviZ file and the report are ready when the run is done.")
        return
    with c3:
        report_download(info, K.W_RUN_REPORT)
    c2.download_button(
        "Every round (ArviZ NetCDF)", data=lambda: _netcdf(info.id), file_name=f"run_{info.id}.nc",
        mime="application/x-netcdf", key=K.W_RUN_NETCDF, icon=":material/download:", on_click="ignore",
        help="An arviz.InferenceData file: the final posterior (chain, draw), every round, the observation, "
             "the losses and the RunSpec. Open it with arviz.from_netcdf(...).")


def show_code(spec: RunSpec, key: str) -> None:
    """The script that reruns ``spec`` (same seed, same samples), for this library or for sbi; copy or download."""
    library = st.segmented_control("Library", list(_LIBRARIES), format_func=_LIBRARIES.get, default="sbi_core",
                                   key=f"{key}_library", help="sbi_core reproduces this run exactly; the sbi "
                                   "script does the same inference with the sbi toolbox (its own numbers).")
    library = library or "sbi_core"
    try:
        script = spec_to_script(spec, library=library)
    except SBIError as err:
        st.warning(str(err), icon=":material/warning:")
        return
    st.code(script, language="python", line_numbers=True, height=420)
    st.download_button("Download the script", data=script, file_name=f"run_{library}.py", mime="text/x-python",
                       key=f"{key}_download", icon=":material/download:", on_click="ignore")
    st.caption("Run it with `python run_" + library + ".py`: it writes `posterior_samples.csv` next to itself."
               + (" Same RunSpec and seed: the same samples as in the app, up to float rounding."
                  if library == "sbi_core" else " Needs `pip install sbi`; its numbers differ from the app's "
                  "(another library's random streams), its posterior should not."))

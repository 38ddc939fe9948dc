"""A run's RunSpec as the Runs page shows and downloads it: the portable form, in which an
uploaded file travels inside the spec, never a path of this server."""

from __future__ import annotations

import json

import streamlit as st

from sbi_core import SBIError
from sbi_core.export.report import spec_without_paths
from sbi_core.store.runs import RunInfo
from sbi_core.uploads.files import portable_spec

from sbi_ui import keys as K
from sbi_ui.user_text import plain

__all__ = ["runspec_view"]


def runspec_view(info: RunInfo) -> None:
    """The run's portable RunSpec as JSON (a carried file's text left out) and its download."""
    try:
        portable = portable_spec(info.spec)
    except SBIError as err:
        st.warning(f"{plain(err)} The RunSpec below names the file on this server only.", icon=":material/warning:")
        st.code(json.dumps(spec_without_paths(info.spec), indent=2), language="json")  # a file name, not its path
        return
    ref = portable.simulator_ref
    carried = ref.get("file_name") if ("source" in ref or "source_base64" in ref) else None
    shown = portable.to_dict()
    if carried:
        shown["simulator"] = {k: v for k, v in ref.items() if k not in ("source", "source_base64")}
        shown["simulator"]["source"] = f"<the text of {carried}: in the download>"
    st.code(json.dumps(shown, indent=2), language="json")
    if carried:
        st.caption(f"The download carries {plain(carried)} inside (checked by its sha256 when it is read), so it runs "

                   "on any machine: `python -m sbi_core spec.json`, or import it on **Your model & data**.")
    st.download_button(
        "Download RunSpec (JSON)", data=portable.to_json(), file_name=f"runspec_{info.id}.json",
        mime="application/json", key=K.W_RUNS_DOWNLOAD, icon=":material/download:",
        help="Save this run's complete description; re-run it with `python -m sbi_core <file>`.",
    )

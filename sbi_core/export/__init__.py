"""Taking a run away: a script that reproduces it (:mod:`.script`), an ArviZ InferenceData
(:mod:`.inference_data`), a one-file HTML report (:mod:`.report`) and figures as PNG/SVG (:mod:`.figures`).

The submodules are imported on first use, so ``import sbi_core`` stays fast and never imports ArviZ.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "spec_to_script": ".script",
    "to_inference_data": ".inference_data",
    "inference_data_from_store": ".inference_data",
    "to_netcdf_bytes": ".inference_data",
    "InferenceDataError": ".inference_data",
    "run_report_html": ".report",
    "ReportError": ".report",
    "figure_png": ".figures",
    "figure_svg": ".figures",
    "FigureExportError": ".figures",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value  # looked up once
    return value

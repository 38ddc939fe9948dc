"""What the app's server process loads once, before any page runs: the first import in ``app.py``.

Two reasons, both from a class of 30 opening the app at once:

* **No half-imported modules.** Streamlit runs every session's script in its own
  thread, so the first sessions import pandas, plotly, torch and the pages' own
  modules at the same time. Two threads importing the same big package along
  different paths can meet in a lock cycle, which Python breaks by handing one of
  them the *partially initialized* module: seen as "partially initialized module
  'pandas'" from the loss chart 90 s after start. Here every session first imports
  this one module; Python's per-module import lock lets the first do all the
  importing while the others wait, so no page ever sees a module half built.
* **One native thread per library.** numpy's OpenBLAS starts one thread per core
  when it loads, and torch's OpenMP pool as many, in the server process too, which
  only samples and simulates small batches (one thread is the fastest there,
  :mod:`sbi_ui.resources`). On a 64-core server that was over a hundred idle
  threads in the app process alone. The limits of :data:`sbi_core.threads.THREAD_ENV`
  are set (where the operator has not set them) before numpy loads; the workers
  and sandboxes set their own counts for the processes they start.

:data:`PRELOADED` lists the third-party modules; the ``sbi_ui`` / ``sbi_core``
modules that the page files import come next (:func:`page_modules`), so a new page
is covered without editing this list.
"""

from __future__ import annotations

import ast
import importlib
import logging
import os
from pathlib import Path

__all__ = ["PRELOADED", "SERVER_THREADS", "THREAD_ENV", "page_modules", "preload"]

SERVER_THREADS = 1  # native (BLAS / OpenMP) threads of the app's own process
# sbi_core.threads.THREAD_ENV, spelled out: importing sbi_core loads numpy and torch, which must come after
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS")

# What the pages draw with (plotly, and pandas / pyarrow behind Streamlit's charts and tables), what
# they compute with (numpy, torch, scipy's distributions for the priors and check bands).
PRELOADED = (
    "numpy",
    "pandas",
    "pyarrow",
    "plotly.graph_objects",
    "plotly.subplots",
    "plotly.io",
    "plotly.colors",
    "torch",
    "scipy.stats",
    "sbi_core",
    "sbi_core.plots",
)

_log = logging.getLogger(__name__)
_PAGES = Path(__file__).resolve().parents[1] / "pages"


def page_modules(pages_dir: Path = _PAGES) -> list[str]:
    """The ``sbi_ui`` and ``sbi_core`` modules the page files import (``from sbi_ui.x import ...``)."""
    found: list[str] = []
    for path in sorted(pages_dir.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                if name.split(".")[0] in ("sbi_ui", "sbi_core") and name not in found + list(PRELOADED):
                    found.append(name)
    return found


def preload(pages_dir: Path = _PAGES) -> list[str]:
    """Set the server's native thread limits (unless set) and import everything above; returns the
    modules imported. Called once, when this module is first imported. A module that fails to import
    is logged and skipped: the page that needs it then shows the error in its own frame, and the
    other pages keep working."""
    for name in THREAD_ENV:
        os.environ.setdefault(name, str(SERVER_THREADS))
    done = []
    for name in PRELOADED + tuple(page_modules(pages_dir)):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the page that needs it says what is wrong, in its own frame
            _log.warning("could not preload %s", name, exc_info=True)
            continue
        done.append(name)
    return done


LOADED = preload()

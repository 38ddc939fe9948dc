"""Your model & data, shared pieces: limits, formatting, the rejection message, cached loaders."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import streamlit as st
import torch

from sbi_core import Prior, SBIError
from sbi_core.simulators.uploaded import load_simulator
from sbi_core.tables import read_table

from sbi_ui.resources import posterior
from sbi_ui.user_text import plain


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
def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def title_from(filename: str) -> str:
    stem = Path(filename).stem.replace("_", " ").replace("-", " ").strip()
    return (stem[:1].upper() + stem[1:]) if stem else "Uploaded simulator"


def size_text(n: int) -> str:
    return f"{n / 1024 / 1024:g} MB" if n >= 1024 * 1024 else f"{n / 1024:g} KB"


def upload_mb(max_bytes: int) -> int:
    """The uploader's own limit, in whole MB, for a file the app accepts up to ``max_bytes``.

    The same number as the app's check (and never above ``server.maxUploadSize``), so the uploader's
    hover text, the page's caption and the app's message all state one limit."""
    return max(1, int(max_bytes) // (1024 * 1024))


def upload_limit_caption(max_bytes: int, fix: str) -> None:
    """The size limit, next to an uploader, with what to do about a bigger file.

    Streamlit refuses a file over the uploader's limit in the browser (a red "!" whose hover text
    says the limit): the app never sees it, so this caption is the page's own word on it."""
    st.caption(f":material/upload_file: At most {size_text(upload_mb(max_bytes) * 1024 * 1024)} per file. "
               f"A bigger file is marked with a red ! in the uploader and is not read: {fix}")


def fmt(values, digits: int = 4) -> str:
    return ", ".join(f"{float(v):.{digits}g}" for v in values)


def is_new_file(uploaded, seen_key: str) -> bool:
    """True once per uploaded file (the uploader keeps returning it on every rerun)."""
    if uploaded is None:
        return False
    fid = getattr(uploaded, "file_id", None) or f"{uploaded.name}:{uploaded.size}"
    if st.session_state.get(seen_key) == fid:
        return False
    st.session_state[seen_key] = fid
    return True


def reject(error_key: str, filename: str, err: BaseException) -> None:
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


def show_rejection(error_key: str, kept: Optional[str]) -> None:
    """The last rejected upload's message, and what stays in use instead."""
    err = st.session_state.get(error_key)
    if not err:
        return
    st.error(f"**{plain(err['filename'])}** was not accepted. {plain(err['message'])}", icon=":material/error:")
    if err.get("source"):
        st.code(err["source"], language="python")
    if err.get("output"):
        with st.expander("What the file printed"):
            st.code(err["output"], language="text")
    if kept:
        st.caption(f":material/history: Nothing changed: {kept} is still in use.")


def last_valid_upload(uploaded, seen_key: str, accept: Callable[[Any], None], state_key: str,
                      error_key: str, kept: str) -> Optional[dict]:
    """Hand a newly uploaded file to ``accept`` (which stores it under ``state_key`` or rejects it
    under ``error_key``), show the last rejection, and return the last valid upload's state.

    ``kept`` names what stays in use after a rejection, with ``{}`` for its file name."""
    if is_new_file(uploaded, seen_key):
        accept(uploaded)
    state = st.session_state.get(state_key)
    show_rejection(error_key, kept.format(plain(state["filename"])) if state else None)

    return state


def json_import(apply: Callable[[Any, str], None], *, file_label: str, file_key: str, seen_key: str,
                max_mb: int, file_help: str, text_key: str, placeholder: str, button: str, button_key: str,
                pasted: str) -> None:
    """A JSON file uploader and a text area with its button; each new file or pressed button hands
    ``(text or bytes, where it came from)`` to ``apply``."""
    f = st.file_uploader(file_label, type=["json"], key=file_key, max_upload_size=max_mb, help=file_help)
    upload_limit_caption(max_mb * 1024 * 1024, "a prior or RunSpec file is much smaller; check that it is the "
                                               "right file.")
    if is_new_file(f, seen_key):
        apply(f.getvalue(), f.name)
    text = st.text_area("...or paste one", key=text_key, height=100, placeholder=placeholder)
    if st.button(button, key=button_key, disabled=not text.strip()):
        apply(text, pasted)


# ---------------------------------------------------------------------------
# cached resources
# ---------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=4)
def loaded_simulator(path: str, prior_json: str):
    """An uploaded simulator, loaded once per file and probe prior; its sandboxed child stays up.

    Returns ``(simulator, lock)``; the lock serialises calls into the child."""
    prior = json.loads(prior_json) if prior_json else None
    return load_simulator(path, timeout=SIM_TIMEOUT_S, prior=prior), threading.Lock()


@st.cache_data(show_spinner=False, max_entries=16)
def cached_simulations(path: str, load_prior: str, prior_json: str, n: int) -> np.ndarray:
    """``n`` simulations of the upload at draws from the prior (fixed seeds)."""
    sim, lock = loaded_simulator(path, load_prior)
    theta = Prior.from_spec(json.loads(prior_json)).sample((n,), generator=torch.Generator().manual_seed(0))
    with lock:
        return sim.simulate(theta, seed=1).numpy()


TABLE_CACHE_BYTES = 200 * 1024 * 1024  # the DataFrames of tables kept in memory for every session, in all


class TableCache:
    """A least-recently-used cache of DataFrames bounded by their memory in bytes, not by their number.

    ``st.cache_resource(max_entries=4)`` kept any four tables, however large (817 MB stayed held after
    one 90 KB Parquet file). Here every DataFrame is measured (``memory_usage(deep=True)``); the least
    recently used ones are dropped until the total is at most ``max_bytes``, and a table larger than
    that on its own is returned but not kept. Shared by all sessions (thread-safe); the DataFrames
    are never modified by their users.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._entries: "OrderedDict[str, tuple[Any, int]]" = OrderedDict()

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(n for _, n in self._entries.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: str, load: Callable[[], Any]):
        """The cached value of ``key``, else ``load()`` (outside the lock), kept if it fits."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key][0]
        value = load()
        size = int(value.memory_usage(index=True, deep=True).sum())
        if size <= self.max_bytes:
            with self._lock:
                self._entries[key] = (value, size)
                self._entries.move_to_end(key)
                total = sum(n for _, n in self._entries.values())
                while total > self.max_bytes:
                    _, (_, n) = self._entries.popitem(last=False)
                    total -= n
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


TABLES = TableCache(TABLE_CACHE_BYTES)


def cached_table(path: str):
    """The DataFrame of a saved table (shared through :data:`TABLES`; never modified)."""
    p = Path(path)
    return TABLES.get(str(p), lambda: read_table(p.read_bytes(), p.name))


cached_table.clear = TABLES.clear  # type: ignore[attr-defined]  # as st.cache_* functions have


@st.cache_data(show_spinner=False, max_entries=32)
def panel_samples(root: str, run_id: str, rows: tuple, n: int) -> list:
    """Posterior samples per observation row (``None`` where the posterior cannot be sampled)."""
    post = posterior(root, run_id)
    out = []
    for k, row in enumerate(rows):
        g = torch.Generator().manual_seed(k)
        try:
            out.append(post.sample((n,), x=torch.tensor(row, dtype=torch.float32), generator=g,
                                        max_sampling_time=5.0).numpy())
        except SBIError:
            out.append(None)
    return out


def fmt_names(names, limit: int = 8) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (f", ... ({len(names)})" if len(names) > limit else "")

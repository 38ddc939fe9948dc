"""What every page shares: the store and job manager, the current run, the sidebar,
reading a run's events (through :mod:`pages.ui_tracker`), and showing errors in plain words.

Pages stay thin: they read state through these helpers, draw widgets, call one
``sbi_core`` function and draw one :mod:`sbi_core.plots` figure.
"""

from __future__ import annotations

import json
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import streamlit as st
import torch

from sbi_core import Prior, RunSpec, SBIError, get_simulator, list_simulators
from sbi_core.jobs import JobManager
from sbi_core.store import RunInfo, RunStore, default_root

from pages import ui_state as K
from pages.ui_format import fmt_duration, fmt_time  # noqa: F401  (pages call ui.fmt_*)
from pages.ui_tracker import RunTracker

# The server process only samples and simulates small batches (training runs in
# worker processes). One torch thread is then the fastest by far (a 2,000-sample
# draw: ~25 ms instead of ~600 ms with 2 contended threads) and leaves the cores
# to the workers.
torch.set_num_threads(1)

# ---- page files (st.navigation registers them in app.py) --------------------
HOME = "pages/home.py"
MODEL = "pages/model.py"
TRAIN = "pages/train.py"
ROUNDS = "pages/rounds.py"
EXPLORE = "pages/explore.py"
RUNS = "pages/runs.py"
DATA = "pages/data.py"


def navigation_pages() -> dict:
    """The app's pages for ``st.navigation``, in sections."""
    return {
        "Learn": [
            st.Page(HOME, title="Home", icon=":material/home:", default=True),
        ],
        "Infer": [
            st.Page(MODEL, title="Model", icon=":material/tune:", url_path="model"),
            st.Page(DATA, title="Your model & data", icon=":material/upload_file:", url_path="data"),
            st.Page(TRAIN, title="Train", icon=":material/monitoring:", url_path="train"),
            st.Page(ROUNDS, title="Rounds", icon=":material/animation:", url_path="rounds"),
            st.Page(EXPLORE, title="Explore", icon=":material/explore:", url_path="explore"),
        ],
        "Manage": [
            st.Page(RUNS, title="Runs", icon=":material/list_alt:", url_path="runs"),
        ],
    }


_ENTRY = threading.local()


def entry(active: bool) -> None:
    """``app.py`` marks the script run it is routing (pages check it with :func:`page_guard`)."""
    _ENTRY.active = active


PAGE_CONFIG = dict(
    page_title="SBI dashboard",
    page_icon=":material/scatter_plot:",
    layout="wide",
    initial_sidebar_state="expanded",
)


def frame() -> None:
    """What surrounds every page: the run in the URL, the sidebar, messages."""
    st.session_state[K.S_BOOTED] = True
    # a little less empty space above each page's title
    st.html("<style>[data-testid='stMainBlockContainer']{padding-top:2.5rem}</style>")
    sync_current_run()
    try:
        sidebar()
    except Exception as err:  # the sidebar must never take the page down
        with st.sidebar:
            show_error(err, "reading the current run")
    show_flash()


def page_guard() -> None:
    """First line of every page: make sure the page runs inside ``app.py``'s frame.

    Until some session has called ``st.navigation``, Streamlit treats a
    ``pages/`` folder the old way and runs a requested page file (``/train``)
    on its own, without ``app.py``: no wide layout, no sidebar, no run from
    the URL. That happens to the first visitor after a server start who opens
    a bookmarked page. On a session's first run (no clicks to lose) the page
    calls ``st.navigation``, which switches the server to ``app.py``'s routing
    for good, and reruns. Otherwise (``AppTest`` runs every script run that
    old way) the page draws the frame itself.
    """
    if getattr(_ENTRY, "active", False):
        return
    if not st.session_state.get(K.S_BOOTED):
        st.session_state[K.S_BOOTED] = True
        st.navigation(navigation_pages(), position="hidden")
        st.rerun()
    st.set_page_config(**PAGE_CONFIG)
    frame()
    entry(True)


POLL_S = 0.75  # live view refresh while a run is active
WATCH_S = 1.5  # other pages: check for a new round / the end of a run

STATUS_BADGE = {
    "queued": ("Queued", "gray", ":material/hourglass_top:"),
    "running": ("Running", "blue", ":material/autorenew:"),
    "done": ("Done", "green", ":material/check_circle:"),
    "failed": ("Failed", "red", ":material/error:"),
    "cancelled": ("Cancelled", "orange", ":material/cancel:"),
}
METHOD_NAMES = {"npe": "Amortized NPE", "snpe": "Sequential SNPE", "tsnpe": "Sequential TSNPE"}


# ---------------------------------------------------------------------------
# store and job manager (one per server process and store folder)
# ---------------------------------------------------------------------------
def store_root() -> str:
    """The run store's folder (``$SBI_STORE_DIR`` or the default)."""
    return str(default_root().expanduser().resolve())


@st.cache_resource(show_spinner=False)
def _job_manager(root: str) -> JobManager:
    return JobManager(RunStore(root))


def jobs() -> JobManager:
    """The job manager of the current store (shared by all sessions)."""
    return _job_manager(store_root())


def store() -> RunStore:
    return jobs().store


@st.cache_resource(show_spinner=False)
def simulator(name: str):
    """A built-in :class:`~sbi_core.Simulator`, built once per server."""
    return get_simulator(name)


# ---------------------------------------------------------------------------
# the current run: session state <-> ?run= in the URL
# ---------------------------------------------------------------------------
def sync_current_run() -> None:
    """Called first on every run: the URL wins; otherwise the URL gets the session's run."""
    qp = st.query_params.get(K.QP_RUN)
    if qp:
        st.session_state[K.S_CURRENT_RUN] = qp
    elif st.session_state.get(K.S_CURRENT_RUN):
        st.query_params[K.QP_RUN] = st.session_state[K.S_CURRENT_RUN]


def current_run_id() -> Optional[str]:
    return st.session_state.get(K.S_CURRENT_RUN) or None


def set_current_run(run_id: Optional[str]) -> None:
    if run_id:
        st.session_state[K.S_CURRENT_RUN] = run_id
        st.query_params[K.QP_RUN] = run_id
    else:
        forget_current_run()


def forget_current_run() -> None:
    st.session_state[K.S_CURRENT_RUN] = None
    if K.QP_RUN in st.query_params:
        del st.query_params[K.QP_RUN]


def open_run(run_id: str, page: str = TRAIN) -> None:
    """Make ``run_id`` current and go to ``page`` with ``?run=`` in the URL (does not return)."""
    st.session_state[K.S_CURRENT_RUN] = run_id
    st.switch_page(page, query_params={K.QP_RUN: run_id})


def start_run(spec: RunSpec, title: str = "", page: Optional[str] = TRAIN) -> str:
    """Start ``spec`` in a background worker, make it current, and open ``page`` (if given)."""
    run_id = jobs().start(spec, title=title or spec.title)
    flash("success", f"Started run `{run_id}`. Its progress appears below as it happens.")
    if page is None:
        set_current_run(run_id)
        return run_id
    open_run(run_id, page)
    return run_id  # pragma: no cover - open_run does not return


def flash(kind: str, message: str) -> None:
    """A message to show once, at the top of the next page drawn."""
    st.session_state[K.S_FLASH] = (kind, message)


def show_flash() -> None:
    item = st.session_state.pop(K.S_FLASH, None)
    if item:
        kind, message = item
        icons = {"success": ":material/check_circle:", "info": ":material/info:",
                 "warning": ":material/warning:", "error": ":material/error:"}
        st.toast(message, icon=icons.get(kind))


def reveal_true() -> bool:
    """Whether plots and the Model page show the true parameter (sidebar toggle)."""
    return bool(st.session_state.get(K.W_REVEAL_TRUE, True))


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------
def show_error(err: BaseException, doing: str = "drawing this page") -> None:
    """A user-fixable error as its message; anything else as a friendly note + detail on demand."""
    if isinstance(err, SBIError):
        st.error(str(err), icon=":material/error:")
        return
    st.error(
        f"Something went wrong while {doing}. This is not caused by anything you did; "
        "try again, and if it keeps happening, the detail below helps a developer.",
        icon=":material/error:",
    )
    with st.expander("Technical detail"):
        st.code("".join(traceback.format_exception(type(err), err, err.__traceback__)), language="text")


def show_failure(message: Optional[str], detail: Optional[str]) -> None:
    """How a failed run is shown: the plain message, the detail behind an expander."""
    st.error(message or "The run failed.", icon=":material/error:")
    if detail:
        with st.expander("Show technical detail"):
            st.code(detail, language="text")


# ---------------------------------------------------------------------------
# naming models and runs (durations and times: pages/ui_format.py)
# ---------------------------------------------------------------------------
def model_name_of(spec: RunSpec) -> str:
    """The built-in simulator's name, or a short description of an upload/table."""
    sim = spec.simulator
    if isinstance(sim, str):
        return sim
    if isinstance(sim, dict):
        return sim.get("name") or sim.get("kind", "custom")
    return "custom"


def model_title_of(spec: RunSpec) -> str:
    name = model_name_of(spec)
    if name in list_simulators():
        return simulator(name).title
    return name


def run_title(info: RunInfo) -> str:
    return info.title or getattr(info.spec, "title", "") or f"{model_title_of(info.spec)} run"


def run_label(info: RunInfo) -> str:
    """One line naming a run in select boxes."""
    badge = STATUS_BADGE.get(info.status, (info.status,))[0]
    return f"{run_title(info)} · {badge} · {fmt_time(info.created)} · {info.id}"


def status_badge(info: RunInfo) -> None:
    label, color, icon = STATUS_BADGE.get(info.status, (info.status, "gray", None))
    st.badge(label, color=color, icon=icon)


# ---------------------------------------------------------------------------
# the model the user set up on the Model page (used by Train)
# ---------------------------------------------------------------------------
def default_model_config(name: str = "two_moons") -> dict:
    return {"simulator": name, "prior": None, "observation": None, "true_theta": None, "obs_source": "default"}


def model_config() -> dict:
    """The current model. A built-in one names it in ``simulator``; an uploaded one (from the
    Your model & data page) also has ``simulator_ref`` (the RunSpec's simulator), ``title``,
    ``param_names``, ``obs_names`` and always an explicit ``prior`` and ``observation``."""
    cfg = st.session_state.get(K.S_MODEL_CFG)
    if not cfg or (cfg.get("simulator") not in list_simulators() and not cfg.get("simulator_ref")):
        cfg = default_model_config()
        st.session_state[K.S_MODEL_CFG] = cfg
    return cfg


@dataclass
class ModelView:
    """What pages show about an uploaded current model (a built-in one is its Simulator)."""

    title: str
    param_names: list
    obs_names: list

    @property
    def theta_dim(self) -> int:
        return len(self.param_names)

    @property
    def x_dim(self) -> int:
        return len(self.obs_names)


def model_view(cfg: Optional[dict] = None):
    """The current model's title and sizes: its :class:`~sbi_core.Simulator` if built in, else a
    :class:`ModelView` of the upload (nothing is loaded)."""
    cfg = cfg or model_config()
    if cfg.get("simulator_ref"):
        names = list(cfg.get("param_names") or [m.get("name", f"theta{i + 1}") for i, m in
                                                enumerate(cfg.get("prior") or [])])
        obs = list(cfg.get("obs_names") or [f"x{k + 1}" for k in range(len(cfg.get("observation") or []))])
        return ModelView(title=str(cfg.get("title") or "Uploaded simulator"), param_names=names, obs_names=obs)
    return simulator(cfg["simulator"])


# ---------------------------------------------------------------------------
# a run's events, folded incrementally (pages/ui_tracker.py)
# ---------------------------------------------------------------------------
def tracker(run_id: str) -> RunTracker:
    """The session's tracker of ``run_id``, brought up to date."""
    trackers = st.session_state.setdefault(K.S_TRACKERS, {})
    tr = trackers.get(run_id)
    if tr is None:
        tr = trackers[run_id] = RunTracker(run_id)
    tr.update(store())
    return tr


def drop_tracker(run_id: str) -> None:
    st.session_state.get(K.S_TRACKERS, {}).pop(run_id, None)


# ---------------------------------------------------------------------------
# what a run is about: model, labels, prior box, observation, truth
# ---------------------------------------------------------------------------
@dataclass
class RunContext:
    spec: RunSpec
    simulator: Any  # Simulator or None (uploads that cannot be loaded here)
    prior: Prior
    labels: list
    obs_labels: list
    bounds: np.ndarray  # (D, 2)
    x_obs: Optional[np.ndarray]
    true_theta: Optional[np.ndarray]
    model_title: str


@st.cache_resource(show_spinner=False, max_entries=64)
def _context(run_id: str, spec_json: str) -> RunContext:
    spec = RunSpec.from_dict(json.loads(spec_json)) if spec_json else RunSpec()
    sim = None
    name = model_name_of(spec)
    if isinstance(spec.simulator, str) and name in list_simulators():
        sim = simulator(name)
    else:
        try:
            from sbi_core.runs import resolve_simulator

            sim = resolve_simulator(spec)
        except Exception:  # labels fall back to the prior's names
            sim = None
    prior = Prior.from_spec(spec.prior) if spec.prior is not None else sim.prior
    if sim is not None and sim.param_names == prior.names:
        labels = sim.param_labels()
    else:
        labels = list(prior.names)
    obs_labels = sim.obs_labels() if sim is not None else None
    if spec.observation is not None:
        x_obs = np.asarray(spec.observation, dtype=float)
    elif sim is not None:
        x_obs = sim.default_observation.numpy().astype(float)
    else:
        x_obs = None
    if obs_labels is None:
        obs_labels = [f"x{k + 1}" for k in range(len(x_obs) if x_obs is not None else 0)]
    if spec.true_theta is not None:
        truth = np.asarray(spec.true_theta, dtype=float)
    elif spec.observation is None and sim is not None:
        truth = sim.true_theta.numpy().astype(float)
    else:
        truth = None
    return RunContext(
        spec=spec, simulator=sim, prior=prior, labels=labels, obs_labels=obs_labels,
        bounds=prior.bounds.numpy().astype(float), x_obs=x_obs, true_theta=truth,
        model_title=sim.title if sim is not None else name,
    )


def run_context(info: RunInfo) -> RunContext:
    try:
        spec_json = json.dumps(info.spec.to_dict(), sort_keys=True)
    except Exception:
        spec_json = ""
    return _context(info.id, spec_json)


def shown_truth(ctx: RunContext) -> Optional[np.ndarray]:
    """The true parameter if known and the sidebar toggle allows showing it."""
    return ctx.true_theta if reveal_true() else None


# ---------------------------------------------------------------------------
# choosing a run on a page
# ---------------------------------------------------------------------------
def pick_run(key: str, label: str = "Run", filter_fn: Optional[Callable[[RunInfo], bool]] = None,
             help: str = "Which run to show. The current run (in the sidebar and the URL) is chosen first.",
             ) -> Optional[RunInfo]:
    """A select box of runs (the current one first); choosing one makes it current."""
    runs = [r for r in jobs().list(limit=200) if filter_fn is None or filter_fn(r)]
    if not runs:
        return None
    ids = [r.id for r in runs]
    by_id = {r.id: r for r in runs}
    cur = current_run_id()
    if cur in ids:
        st.session_state[key] = cur  # follow the current run (set elsewhere: sidebar, URL, Runs)
    elif st.session_state.get(key) not in ids:
        st.session_state[key] = ids[0]

    def _picked() -> None:
        set_current_run(st.session_state[key])

    chosen = st.selectbox(label, ids, key=key, format_func=lambda i: run_label(by_id[i]), help=help,
                          on_change=_picked)
    return by_id.get(chosen)


def watch_run(run_id: str, info: Optional[RunInfo]) -> None:
    """While ``run_id`` is active, check it every few seconds and redraw the page when a
    round finishes or the run ends (a small polling fragment that stops with the run)."""
    if info is None or not info.is_active:
        return
    last = store().last_event(run_id, types=("round",))
    seen = (info.status, last[0] if last else 0)

    @st.fragment(run_every=WATCH_S)
    def _watch() -> None:
        now = jobs().status(run_id)
        ev = store().last_event(run_id, types=("round",))
        sig = (now.status if now else None, ev[0] if ev else 0)
        if sig != seen:
            st.rerun()
        st.caption(":material/autorenew: The run is still going: this page updates when a round finishes.")

    _watch()


# ---------------------------------------------------------------------------
# the sidebar
# ---------------------------------------------------------------------------
def sidebar() -> None:
    """The current run (title, status, progress, links) and app-wide settings."""
    with st.sidebar:
        rid = current_run_id()
        info = jobs().status(rid) if rid else None
        _sidebar_run(rid, info is not None and info.is_active)
        st.divider()
        st.toggle(
            "Show the true parameter",
            value=True,
            key=K.W_REVEAL_TRUE,
            help="Mark the parameter the observation was simulated from (when it is known) in the plots. "
            "Turn off to keep it hidden, e.g. for a classroom quiz.",
        )
        st.caption(f"Runs are kept in `{store_root()}`.")


def _sidebar_run(rid: Optional[str], was_active: bool) -> None:
    """The current-run card; it refreshes itself while the run is queued or running."""

    @st.fragment(run_every=WATCH_S if was_active else None)
    def card() -> None:
        st.markdown("#### Current run")
        info = jobs().status(rid) if rid else None
        if was_active and (info is None or info.is_terminal):
            st.rerun()  # the run just ended: redraw everything once (polling stops)
        if rid and info is None:
            st.warning(f"No run `{rid}` in this run store (it may have been deleted).")
            if st.button("Forget it", key=K.W_SIDEBAR_FORGET):
                forget_current_run()
                st.rerun()
            return
        if info is None:
            st.caption("No run selected yet. Start the demo on **Home**, or set one up on **Train**.")
            return
        st.markdown(f"**{run_title(info)}**")
        status_badge(info)
        tr = tracker(rid)
        total = tr.num_rounds or (1 if info.spec.method == "npe" else info.spec.num_rounds)
        st.caption(
            f"{model_title_of(info.spec)} · {METHOD_NAMES.get(info.spec.method, info.spec.method)}  \n"
            f"Rounds finished: {tr.rounds_done} of {total} · id `{rid}`"
        )
        st.page_link(TRAIN, label="Live view (Train)", icon=":material/monitoring:",
                     query_params={K.QP_RUN: rid})
        st.page_link(ROUNDS, label="Round by round", icon=":material/animation:",
                     query_params={K.QP_RUN: rid})
        if st.button("Forget this run", key=K.W_SIDEBAR_FORGET,
                     help="Stop following this run here. It stays in the Runs list."):
            forget_current_run()
            st.rerun()

    card()

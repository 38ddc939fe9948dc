"""What a stored run is about: its model, parameter and observation labels, prior box,
observation and true parameter (for pages that draw a run)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import streamlit as st

from sbi_core import Prior, RunSpec, list_simulators
from sbi_core.run.ids import is_run_id
from sbi_core.run.loop import resolve_simulator
from sbi_core.store.runs import RunInfo

from sbi_ui.naming import model_name_of
from sbi_ui.resources import simulator
from sbi_ui import keys as K
from sbi_ui.navigation import RUNS
from sbi_ui.resources import jobs
from sbi_ui.session import current_run_id, forget_current_run, reveal_true

__all__ = ["RunContext", "run_context", "shown_truth", "run_not_found", "missing_current_run"]


@dataclass
class RunContext:
    """What a stored run is about, read from its RunSpec (cached per run and spec)."""

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


def _named(run_id: Any) -> str:
    """A run id from a URL, fit to show: the id itself if it is shaped like one, else words (a URL's text
    is never put into markdown)."""
    return f"`{run_id}`" if is_run_id(run_id) else "named in this link (that is not a run id)"


def run_not_found(run_ids: list, forget: bool = True) -> None:
    """Say, in words, that the runs ``run_ids`` (from a link) are not in this run store, with a link to
    Runs and (``forget``) a button that forgets the current run so the page can show another."""
    if len(run_ids) == 1:
        what = f"The run {_named(run_ids[0])} was not found"
    else:
        what = f"{len(run_ids)} runs of this link were not found"
    st.warning(f"{what} in this app's run store: it may have been deleted, or the link was mistyped. "
               "Nothing is shown for it. Pick a run on **Runs**.", icon=":material/search_off:")
    left, right = st.columns([1, 3], vertical_alignment="center")
    with left:
        st.page_link(RUNS, label="Go to Runs", icon=":material/list_alt:")
    if forget:
        with right:
            if st.button("Forget it and show my runs here", key=K.W_RUN_MISSING_FORGET,
                         help="Drop the missing run from this page's address and pick one of yours."):
                forget_current_run()
                st.rerun()


def missing_current_run() -> bool:
    """Whether the current run (``?run=`` or this session's) is not in the run store; if so, says so
    (:func:`run_not_found`) and the page must show no other run in its place."""
    rid = current_run_id()
    if not rid or jobs().status(rid) is not None:
        return False
    run_not_found([rid])
    return True

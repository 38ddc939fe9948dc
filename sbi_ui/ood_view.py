"""What the live view says about the observation itself, before the posterior it concerns.

* :func:`model_check_view`: the misspecification test the run made of its first round's simulations
  before training on them (the run's ``misspecification`` event, :mod:`sbi_core.diagnostics.misspecification`):
  shown as soon as the simulations are done, a warning when the model rarely makes data like ``x_o``.
* :func:`ood_warning`: for a run from before that test, the warning when the observation lies outside
  what the network was trained on (:mod:`sbi_core.diagnostics.ood`, fitted once per run and number of
  saved rounds)."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import streamlit as st

from sbi_core import SBIError
from sbi_core.diagnostics.ood import OODCheck, TrainingSupport

from sbi_ui.resources import store, store_root
from sbi_ui.user_text import plain

__all__ = ["training_support", "ood_warning", "model_check_view"]


@st.cache_resource(show_spinner=False, max_entries=16)
def _support(root: str, run_id: str, rounds: tuple[int, ...]) -> Optional[TrainingSupport]:
    """The test fitted on every saved round's simulations (``rounds`` keys the cache as rounds finish)."""
    xs = [x for x in store().round_simulations(run_id) if x.ndim == 2 and len(x)]
    if not xs:
        return None
    try:
        return TrainingSupport.fit(np.concatenate(xs), seed=0)
    except SBIError:  # too few finite simulations to tell
        return None


def training_support(run_id: str) -> Optional[TrainingSupport]:
    """The out-of-distribution test of a run's training simulations (``None`` before any round is saved)."""
    return _support(store_root(), run_id, tuple(store().rounds_saved(run_id)))


def ood_warning(run_id: str, x_obs, labels: Optional[Sequence[str]] = None) -> Optional[OODCheck]:
    """Check ``x_obs (K,)`` against the run's training simulations; show a warning when it lies outside.

    Returns the check (``None`` where it cannot be made: no saved simulations, another shape).
    """
    support = training_support(run_id)
    if support is None or x_obs is None:
        return None
    try:
        check = support.check(np.asarray(x_obs, dtype=float).reshape(-1), labels=labels)
    except SBIError:
        return None
    if check.warn:
        st.warning(plain(check.message), icon=":material/warning:")  # it names the user's components

    return check


def model_check_view(model_check: Optional[dict]) -> bool:
    """Show the run's misspecification event ``model_check`` (:class:`~sbi_ui.tracker.RunTracker`):
    a warning when the model rarely makes data like the observation, a caption otherwise or when the
    test could not be made. Returns False when there is no such event (a run from before it)."""
    if not model_check:
        return False
    if model_check.get("p_value") is None:
        reason = str(model_check.get("reason") or "the simulations did not allow it")
        st.caption(":material/help: The misspecification test could not be made: " + plain(reason))
    elif model_check.get("misspecified"):
        st.warning(plain(str(model_check.get("verdict") or "")), icon=":material/warning:")
    else:  # one line, so the charts stay on the first screen (projector mode); the whole verdict on hover
        st.caption(f":material/check_circle: Your observation looks like data the model produces "
                   f"(misspecification test, p = {float(model_check['p_value']):.2g}).",
                   help=plain(str(model_check.get("verdict") or "")))
    return True

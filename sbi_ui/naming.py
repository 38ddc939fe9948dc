"""How models, runs and methods are named for people: titles, one-line labels, status badges.

Method titles and "is it sequential" come from the method registry
(:mod:`sbi_core.methods.registry`), never from a table of names here.
Durations and times: :mod:`sbi_ui.format`.
"""

from __future__ import annotations

import streamlit as st

from sbi_core import RunSpec, SBIError, list_simulators
from sbi_core.methods.registry import METHODS, get_method
from sbi_core.store.runs import RunInfo

from sbi_ui.format import fmt_time, plural
from sbi_ui.resources import simulator

__all__ = ["STATUS_BADGE", "METHODS", "method_title", "is_abc", "is_amortized", "model_name_of", "model_title_of",
           "run_title", "run_label", "status_badge", "status_word", "rounds_text"]

STATUS_BADGE = {
    "queued": ("Queued", "gray", ":material/hourglass_top:"),
    "running": ("Running", "blue", ":material/autorenew:"),
    "done": ("Done", "green", ":material/check_circle:"),
    "failed": ("Failed", "red", ":material/error:"),
    "cancelled": ("Cancelled", "orange", ":material/cancel:"),
}


def method_title(name: str) -> str:
    """The registry's title of method ``name`` (``"Amortized NPE"``), or the name if unknown."""
    try:
        return get_method(name).title
    except SBIError:
        return str(name)


def is_abc(spec: RunSpec) -> bool:
    """Whether the run's method trains no network (ABC: it keeps the simulations closest to the observation)."""
    try:
        return get_method(spec.method).learns == "nothing"
    except SBIError:
        return False


def is_amortized(spec: RunSpec) -> bool:
    """Whether the run's posterior answers any observation (one round on the prior, a trained network)."""
    try:
        method = get_method(spec.method)
    except SBIError:
        return False
    return not method.sequential and method.learns != "nothing"


def rounds_text(spec: RunSpec) -> str:
    """``"1 round"``, ``"4 rounds"``: how many rounds the spec's run has."""
    return plural(spec.rounds, "round")


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


def status_word(status: str) -> str:
    """``"Done"``: the badge's word for a run status."""
    return STATUS_BADGE.get(status, (status,))[0]


def run_label(info: RunInfo) -> str:
    """One line naming a run in select boxes."""
    return f"{run_title(info)} · {status_word(info.status)} · {fmt_time(info.created)} · {info.id}"


def status_badge(info: RunInfo) -> None:
    label, color, icon = STATUS_BADGE.get(info.status, (info.status, "gray", None))
    st.badge(label, color=color, icon=icon)

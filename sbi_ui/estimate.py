"""How long a new run should take and where it would stand in the queue, in words
(the cost model of :mod:`sbi_core.run.cost`, calibrated on this server's finished runs).

On a busy machine (:class:`~sbi_core.run.cost.MachineLoad`: the 1-minute load average against
the cores) both the run's time and the wait for the runs ahead are scaled by how much
slower a new run would go, and the page says so: "The machine is busy (load 3.8 on 2
cores): expect about ...". :func:`current_load` reads the load (tests replace it)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from typing import Optional

import streamlit as st

from sbi_core import Prior, RunSpec
from sbi_core.run.cost import (
    CostModel,
    MachineLoad,
    calibrate_from_store,
    estimate_run,
    machine_load,
    simulation_seconds,
)

from sbi_ui.format import fmt_duration, plural
from sbi_ui.model_choice import ModelChoice
from sbi_ui.resources import jobs, simulator, store, store_root

__all__ = ["calibration", "current_load", "queue_words", "estimate"]


def calibration() -> CostModel:
    """The cost model calibrated on this server's latest finished runs (cached until another finishes)."""
    done = store().list_runs(limit=1, status="done")
    return _calibrated(store_root(), done[0].id if done else "")


@st.cache_data(show_spinner=False, max_entries=8)
def _calibrated(root: str, latest_done: str) -> CostModel:
    return calibrate_from_store(store())


@st.cache_data(show_spinner=False, max_entries=64)
def _sim_seconds(name: str, prior_json: str) -> float:
    """Seconds per simulation of built-in ``name`` under a prior (JSON of its spec; "null": the default)."""
    sim = simulator(name)
    prior_spec = json.loads(prior_json)
    return simulation_seconds(sim, Prior.from_spec(prior_spec) if prior_spec else sim.prior)


def current_load() -> Optional[MachineLoad]:
    """The machine's load now (``None`` where it cannot be read)."""
    return machine_load()


def _slowdown(load: Optional[MachineLoad]) -> float:
    """How much longer runs take now: 1 unless the machine is busy."""
    return load.slowdown if load is not None and load.busy else 1.0


QUEUE_TTL_S = 1.0  # the queue's words are worked out at most this often for all sessions together
_queue_words: dict = {}
_queue_lock = threading.Lock()


def queue_words(model: CostModel, load: Optional[MachineLoad] = None) -> tuple[str, float]:
    """Where a new run would stand in the queue, in words, and the seconds it would wait (the runs
    ahead go slower on a busy machine; ``load``: :func:`current_load` if not given).

    Shared by every session for :data:`QUEUE_TTL_S` (each Train page drawn asks; with thirty
    students waiting, every page drawn read every queued run)."""
    load = current_load() if load is None else load
    manager = jobs()
    key = (store_root(), id(manager), model, load)
    with _queue_lock:
        hit = _queue_words.get(key)
        if hit is not None and time.monotonic() - hit[0] < QUEUE_TTL_S:
            return hit[1]
    words = _queue_words_now(manager, model, load)
    with _queue_lock:
        if len(_queue_words) > 16:
            _queue_words.clear()
        _queue_words[key] = (time.monotonic(), words)
    return words


def _queue_words_now(manager, model: CostModel, load: Optional[MachineLoad]) -> tuple[str, float]:
    active = manager.list(limit=None, status=("queued", "running"))
    slots = manager.max_running
    running = [r for r in active if r.status == "running"]
    queued = [r for r in active if r.status == "queued"]
    if len(running) < slots and not queued:
        return "A worker is free: it starts at once.", 0.0
    work = sum(max(estimate_run(r.spec, model).total_s - (r.seconds or 0.0), 0.0) for r in running)
    work += sum(estimate_run(r.spec, model).total_s for r in queued)
    wait = work / slots * _slowdown(load)
    ahead = len(running) + len(queued)
    return (f"It would be number {len(queued) + 1} in the queue: {plural(ahead, 'run')} "
            f"{'is' if ahead == 1 else 'are'} ahead of it (this machine trains {plural(slots, 'run')} at a time), "
            f"so it would start in about {fmt_duration(wait)}.", wait)


def estimate(spec: RunSpec, choice: Optional[ModelChoice] = None,
             load: Optional[MachineLoad] = None) -> tuple[float, str]:
    """``(seconds, one paragraph)``: how long the run should take, and why; on a busy machine
    (``load``: :func:`current_load` if not given) the seconds are scaled and the paragraph says so.

    The model, prior and observation are ``spec``'s (a Train form's spec carries its ``choice``'s;
    ``choice`` is accepted for callers that have one, and no longer needed), so a spec from anywhere,
    such as an imported RunSpec file, gets the same estimate."""
    model = calibration()
    sims_note = ""
    ref = spec.simulator_ref
    if ref.get("kind") == "builtin":
        model = replace(model, sim_s=_sim_seconds(ref["name"], json.dumps(spec.prior, sort_keys=True)))
    else:
        model = replace(model, sim_s=0.0)
        if ref.get("kind") == "upload":
            sims_note = " Not counted: the time your own simulator takes per simulation."
    est = estimate_run(spec, model)
    basis = (f"from the {plural(model.sources, 'round')} finished on this server" if model.sources
             else "from measurements on a 2-core laptop (no run has finished on this server yet)")
    text = (f"**Estimated time: about {fmt_duration(est.total_s)}**: simulating "
            f"{fmt_duration(est.simulate_s)}, training {fmt_duration(est.train_s)} "
            f"(about {est.epochs_per_round:.0f} epochs a round; later rounds train on all simulations so far, "
            f"so they take longer). Estimated {basis}.{sims_note}")
    load = current_load() if load is None else load
    slow = _slowdown(load)
    if slow > 1.0:
        text += (f" **The machine is busy ({load.words()}): expect about {fmt_duration(est.total_s * slow)}**, "
                 f"as a run gets only part of a core while other work runs.")
    return est.total_s * slow, text

"""Events a run emits while it works, as plain JSON-serialisable dicts.

Every event has ``"type"`` and ``"time"`` (Unix seconds). Callbacks receive each
event as it happens; the run store appends them in order. The types:

``run_started``  ``spec`` (RunSpec dict), ``num_rounds``
``simulation``   ``round``, ``done``, ``total``, ``invalid`` (simulations so far in this round)
``epoch``        ``round``, ``epoch`` (1-based), ``max_epochs``, ``train_loss``, ``val_loss``,
                 ``best_epoch``, ``best_val_loss``, ``elapsed`` (seconds in this round's training)
``sampling``     ``round``, ``done``, ``total`` (steps of a slow posterior sampler, MCMC, so far)
``round``        ``round``, ``num_simulations``, ``num_invalid``, ``epochs``, ``best_epoch``,
                 ``stopped_early``, ``stopped_by_request`` (training cut short by "stop and
                 keep what is trained": the best network so far is the posterior), ``seconds`` ({propose, simulate, train, sample}, and ``reference`` when measured),
                 ``acceptance_rate``, ``proposal_fraction`` (prior mass of the region this
                 round's parameters came from: 1 for the prior, ``None`` for APT's
                 posterior proposals), ``param_names``, ``mean``,
                 ``std`` (per parameter), ``posterior_samples`` (list of ``D``-lists at the
                 observation), ``hdr_size`` (``{fraction, stderr, mass, num_prior}``: the
                 prior mass of the posterior's 90 % highest-density region,
                 :mod:`sbi_core.stats.concentration`; ``None`` while it is deferred with the
                 round's C2ST, see ``reference``), ``reference_c2st`` (C2ST of the samples
                 against the exact posterior: 0.5 = indistinguishable, 1.0 = disjoint;
                 ``None`` where it does not apply, and ``reference_c2st_reason`` says why in
                 plain words; :mod:`sbi_core.diagnostics.reference`), ``sampling`` (how the
                 posterior was sampled, or ``None`` for a flow sampled directly: MCMC
                 ``{kind: "mcmc", num_chains, num_draws, ess, rhat, seconds, warning}``,
                 ABC ``{kind: "abc", epsilon, acceptance_rate, ess, num_particles, warning}``)
``done``         ``seconds`` (total), ``stopped_by_request`` (the run ended early at a
                 "stop and keep" request, keeping the rounds it has)
``failed``       ``message`` (plain words), ``detail`` (technical detail, may be a traceback)
``cancelled``    ``round`` (the round that was running)
``reference``    ``round``, ``reference_c2st``, ``reference_c2st_reason``, ``seconds`` (of the
                 score): the C2ST against the exact posterior, measured right *after* the
                 round's event went out (so the cloud is shown a second sooner); until it
                 comes, that round event's reason is :data:`REFERENCE_PENDING`. The store
                 folds it into the round's event (:func:`fold_reference`), so a round
                 event read back from the store carries its value. When other runs
                 wait for the worker, a first ``reference`` event may say
                 :data:`REFERENCE_DEFERRED` (no value): a later one, measured once
                 nobody waits, carries the value (:mod:`sbi_core.store.turns`), and
                 ``hdr_size`` too, whose measure (the posterior's density at 11,000
                 points) was deferred with it; folded into the round's event the same way.
``misspecification``  ``round`` (0: the first round's simulations, drawn from the prior or a
                 table's rows, tested before the network trains on them), ``p_value``,
                 ``misspecified`` (``p_value < alpha``), ``alpha``, ``n_train``, ``n_calibration``,
                 ``features`` (the components most responsible first, at most three: ``label``,
                 ``value``, ``z``, ``side``), ``verdict`` (plain words), ``seconds``; or, where the
                 test could not be made, ``p_value`` ``None`` and ``reason`` (plain words).
                 :mod:`sbi_core.diagnostics.misspecification`: can the model make data like ``x_o``?
``resumed``      ``from_round`` (0-based: the first round carried out again), ``reason``
                 (``"resume"``: asked by the user; ``"restart"``: the app server restarted
                 while the run was active; ``"turn"``: it handed its worker over to a
                 waiting run after round ``from_round - 1`` and nothing is dropped), ``previous`` (the status it had), ``message``
                 (why it had ended, if it had). The store drops the unfinished round's
                 events (and the ending) when it appends this one, so the log reads as
                 one run; :mod:`sbi_core.run.checkpoint` is where it goes on from.

Losses are the estimator's negative log-likelihood per sample (lower is better).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

__all__ = [
    "Event", "EventCallback", "make_event", "EVENT_TYPES", "TERMINAL_TYPES",
    "run_started_event", "simulation_event", "sampling_event", "epoch_event", "round_event",
    "done_event", "failed_event", "cancelled_event", "resumed_event", "reference_event", "fold_reference",
    "REFERENCE_PENDING",
    "REFERENCE_DEFERRED",
    "misspecification_event",
]

Event = dict[str, Any]
EventCallback = Callable[[Event], None]

EVENT_TYPES = ("run_started", "simulation", "epoch", "sampling", "round", "done", "failed", "cancelled", "resumed",
               "reference", "misspecification")
REFERENCE_PENDING = "being measured"  # a round event's reference_c2st_reason until its reference event
# a reference event's reason when the C2ST waits for the workers to be free (runs were waiting for them)
REFERENCE_DEFERRED = "measured once no other run is waiting for a worker"
# How a run can end: the terminal event types are also the terminal run statuses of the store.
TERMINAL_TYPES = ("done", "failed", "cancelled")


def make_event(type: str, **fields: Any) -> Event:
    """An event dict of ``type`` stamped with the current time (prefer the constructors below)."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    return {"type": type, "time": time.time(), **fields}


# ---- one constructor per event type: the only places events are built -------
def run_started_event(spec: dict, num_rounds: int, param_names: list[str]) -> Event:
    return make_event("run_started", spec=spec, num_rounds=int(num_rounds), param_names=list(param_names))


def simulation_event(round: int, done: int, total: int, invalid: int) -> Event:
    return make_event("simulation", round=int(round), done=int(done), total=int(total), invalid=int(invalid))


def sampling_event(round: int, done: int, total: int) -> Event:
    return make_event("sampling", round=int(round), done=int(done), total=int(total))


def epoch_event(record: dict) -> Event:
    """``record``: one entry of :class:`~sbi_core.nn.training.TrainResult` ``.history``."""
    return make_event("epoch", **record)


def round_event(**fields: Any) -> Event:
    """The end of a round; the fields are listed in this module's docstring."""
    return make_event("round", **fields)


def done_event(seconds: Optional[float], stopped_by_request: bool = False) -> Event:
    return make_event("done", seconds=seconds, stopped_by_request=bool(stopped_by_request))


def failed_event(message: str, detail: Optional[str] = None) -> Event:
    return make_event("failed", message=message, detail=detail)


def cancelled_event(round: Optional[int] = None) -> Event:
    return make_event("cancelled", round=round)


def resumed_event(from_round: int, reason: str, previous: str, message: Optional[str] = None) -> Event:
    return make_event("resumed", from_round=int(from_round), reason=reason, previous=previous, message=message)


def reference_event(round: int, value: Optional[float], reason: Optional[str], seconds: Optional[float],
                    hdr_size: Optional[dict] = None) -> Event:
    """The C2ST of round ``round``, measured after its event; ``hdr_size``: the round's concentration
    measure where it was deferred with the C2ST (else the event has no such field)."""
    fields = dict(round=int(round), reference_c2st=value, reference_c2st_reason=reason, seconds=seconds)
    if hdr_size is not None:
        fields["hdr_size"] = hdr_size
    return make_event("reference", **fields)


MISSPECIFICATION_FEATURES = 3  # components a misspecification event names at most


def misspecification_event(round: int, result: Optional[dict] = None, reason: Optional[str] = None,
                           seconds: Optional[float] = None) -> Event:
    """The misspecification test of round ``round``'s simulations at ``x_o``: ``result`` is
    :func:`sbi_core.diagnostics.check_misspecification`'s dict, or None with the ``reason`` it could not be made."""
    if result is None:
        return make_event("misspecification", round=int(round), p_value=None, reason=reason, seconds=seconds)
    features = [{k: f.get(k) for k in ("label", "value", "z", "side")}
                for f in list(result.get("features") or [])[:MISSPECIFICATION_FEATURES]]
    return make_event("misspecification", round=int(round), p_value=float(result["p_value"]),
                      misspecified=bool(result["misspecified"]), alpha=float(result["alpha"]),
                      n_train=int(result["n_train"]), n_calibration=int(result["n_calibration"]),
                      features=features, verdict=str(result["verdict"]), seconds=seconds)


def fold_reference(round_ev: dict, reference: dict) -> dict:
    """``round_ev`` (a ``round`` event) with the C2ST of its ``reference`` event filled in, and the
    concentration measure where the reference carries one (a new dict)."""
    seconds = dict(round_ev.get("seconds") or {})
    if reference.get("seconds") is not None and reference.get("reference_c2st") is not None:
        seconds["reference"] = float(reference["seconds"])
    folded = {**round_ev, "reference_c2st": reference.get("reference_c2st"),
              "reference_c2st_reason": reference.get("reference_c2st_reason"), "seconds": seconds}
    if reference.get("hdr_size") is not None:  # measured with a deferred C2ST
        folded["hdr_size"] = reference["hdr_size"]
    return folded

"""Events a run emits while it works, as plain JSON-serialisable dicts.

Every event has ``"type"`` and ``"time"`` (Unix seconds). Callbacks receive each
event as it happens; the run store appends them in order. The types:

``run_started``  ``spec`` (RunSpec dict), ``num_rounds``
``simulation``   ``round``, ``done``, ``total``, ``invalid`` (simulations so far in this round)
``epoch``        ``round``, ``epoch`` (1-based), ``max_epochs``, ``train_loss``, ``val_loss``,
                 ``best_epoch``, ``best_val_loss``, ``elapsed`` (seconds in this round's training)
``round``        ``round``, ``num_simulations``, ``num_invalid``, ``epochs``, ``best_epoch``,
                 ``stopped_early``, ``seconds`` ({propose, simulate, train, sample}),
                 ``acceptance_rate``, ``proposal_fraction`` (prior mass of the region this
                 round's parameters came from: 1 for the prior, ``None`` for APT's
                 posterior proposals), ``param_names``, ``mean``,
                 ``std`` (per parameter), ``posterior_samples`` (list of ``D``-lists at the
                 observation)
``done``         ``seconds`` (total)
``failed``       ``message`` (plain words), ``detail`` (technical detail, may be a traceback)
``cancelled``    ``round`` (the round that was running)

Losses are the estimator's negative log-likelihood per sample (lower is better).
"""

from __future__ import annotations

import time
from typing import Any, Callable

__all__ = ["Event", "EventCallback", "make_event", "EVENT_TYPES", "TERMINAL_TYPES"]

Event = dict[str, Any]
EventCallback = Callable[[Event], None]

EVENT_TYPES = ("run_started", "simulation", "epoch", "round", "done", "failed", "cancelled")
TERMINAL_TYPES = ("done", "failed", "cancelled")


def make_event(type: str, **fields: Any) -> Event:
    """An event dict of ``type`` stamped with the current time."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    return {"type": type, "time": time.time(), **fields}

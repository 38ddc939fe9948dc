"""The "break it" option: the same run trained deliberately badly, checked beside the good one (teaching).

The broken twin keeps the good run's model, prior, observation, method and
seed, and changes two RunSpec fields: the simulation budget (at most
:data:`BROKEN_SIMULATIONS` per round) and the training (at most
:data:`BROKEN_EPOCHS` epochs). Trained on so little, an NPE flow is typically
too narrow and off-centre: on two moons with 200 test datasets its ranks pile
up at both ends (KS p < 0.01) and the true value falls outside the 90 %
intervals in about 18 % of test simulations instead of 10 %. A run trained on a
table keeps its table (the budget is the table) and gets the short training only.

The pairing (good run -> broken twin) is a small file in the good run's
``checks/`` folder, so a page reload, or another person with the store, finds it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Optional

from sbi_core.checks.results import checks_dir
from sbi_core.errors import SBIError
from sbi_core.run.spec import RunSpec

__all__ = ["BROKEN_SIMULATIONS", "BROKEN_EPOCHS", "broken_spec", "start_broken_twin", "link_broken_twin", "broken_twin"]

BROKEN_SIMULATIONS = 40
BROKEN_EPOCHS = 3
_TWIN_FILE = "broken_twin.json"


def broken_spec(spec: RunSpec) -> RunSpec:
    """``spec`` with a tiny budget and a few epochs of training (see the module docstring)."""
    table = spec.simulator_ref.get("kind") == "table"
    title = spec.title or "this run"
    return dataclasses.replace(
        spec,
        simulations_per_round=spec.simulations_per_round if table else min(spec.simulations_per_round,
                                                                            BROKEN_SIMULATIONS),
        max_epochs=min(spec.max_epochs, BROKEN_EPOCHS),
        title=f"Broken on purpose: {title}"[:200],
    )


def start_broken_twin(jobs: Any, run_id: str, options: Optional[dict] = None) -> str:
    """Start the broken twin of ``run_id`` and its checks through ``jobs`` (a :class:`~sbi_core.jobs.manager.JobManager`).

    The twin's checks wait for it to finish training, then run with ``options``
    (the good run's check options, so both are judged alike). Returns the twin's run id.
    """
    info = jobs.store.get_run(run_id)
    if info is None:
        raise SBIError(f"There is no run {run_id} in this run store.")
    spec = broken_spec(info.spec)
    twin = jobs.start(spec, title=spec.title, owner=info.owner)  # the twin belongs to the run's owner
    jobs.start_checks(twin, options)
    link_broken_twin(jobs.store, run_id, twin)
    return twin


def link_broken_twin(store: Any, run_id: str, twin: str) -> None:
    """Record ``twin`` as the broken twin of ``run_id`` (in ``run_id``'s ``checks/`` folder)."""
    folder = checks_dir(store, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{_TWIN_FILE}.tmp{os.getpid()}"
    tmp.write_text(json.dumps({"run_id": twin}))
    os.replace(tmp, folder / _TWIN_FILE)


def broken_twin(store: Any, run_id: str) -> Optional[str]:
    """The id of ``run_id``'s broken twin, if one was started and still exists."""
    try:
        twin = json.loads((checks_dir(store, run_id) / _TWIN_FILE).read_text()).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None
    return twin if isinstance(twin, str) and store.get_run(twin) is not None else None

"""A run's share of a worker that other runs wait for: one round per turn, the C2ST when nobody waits.

A run carried out by a worker that others wait for (:func:`sbi_core.jobs.worker.carry_out`
with a :class:`TakingTurns`) hands the worker over after each round while another run
is queued: the store puts it back in line (:meth:`RunStore.hand_over
<sbi_core.store.turns.RunTurns.hand_over>`), and its next turn goes on from that
round's checkpoint, drawing exactly what the uninterrupted run would have drawn. The
line serves fewer finished rounds first (:mod:`sbi_core.store.turns`), so every run's
first cloud comes before anyone's second round. A run alone never hands over.

While others wait, a round's C2ST against the exact posterior (1-3 s) is not measured
on the spot either: the executor takes it (``defer``) and measures it when the line is
empty (:func:`score_deferred_reference`; on Dask, one task at a time once no run is
queued, :meth:`~sbi_core.jobs.dask_executor.DaskExecutor.measure_deferred`). The round's
concentration measure (the prior mass of its 90 % region: the posterior's density at 11,000
points, 0.17 s of the 1.8 s round of a classroom's two-moons run) is deferred with it, from
the round's saved posterior: thirty students' first rounds then go through the worker a
tenth faster.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from sbi_core.events import reference_event
from sbi_core.store.artifacts import ArtifactMissing

__all__ = ["TakingTurns", "score_deferred_reference"]


class TakingTurns:
    """How the run ``run_id`` shares its worker (the ``hand_over`` and ``defer_reference`` of
    :func:`sbi_core.run.loop.execute`).

    Args:
        store: the :class:`~sbi_core.store.runs.RunStore` holding the line.
        run_id: the run carried out.
        defer: ``defer(round)`` schedules round ``round``'s C2ST for when the line is empty and
            returns whether it did (None: C2STs are measured on the spot).
        measures_here: whether this worker is the one that measures deferred C2STs. Another worker
            hands every C2ST to it, even while nobody waits: one process of the cluster measures them,
            one at a time.
    """

    def __init__(self, store: Any, run_id: str, defer: Optional[Callable[[int], bool]] = None,
                 measures_here: bool = True) -> None:
        self.store, self.run_id, self.defer, self.measures_here = store, run_id, defer, measures_here

    def others_waiting(self) -> bool:
        """Whether another run waits in line for a worker (asked between rounds)."""
        return self.store.others_waiting(self.run_id) > 0

    def defer_reference(self, index: int) -> bool:
        """Round ``index``'s C2ST is taken to be measured later when others wait (or always, on a worker
        that does not measure them); returns whether."""
        return (self.defer is not None and (not self.measures_here or self.others_waiting())
                and bool(self.defer(index)))


def score_deferred_reference(store: Any, run_id: str, index: int) -> Optional[float]:
    """Measure round ``index``'s C2ST against the exact posterior from its saved cloud and append the
    ``reference`` event that carries it (:mod:`sbi_core.diagnostics.reference`); returns the value.
    The event carries the round's concentration measure too (deferred with the C2ST), measured on
    the round's saved posterior.

    The exact samples, the classifier and the concentration measure draw from the run's own seed
    streams, so the values are the ones the run would have measured on the spot. Nothing is
    measured for a run that no longer exists or a round whose cloud is gone (deleted meanwhile)."""
    import numpy as np  # deferred: numpy and torch only on the worker that measures
    import torch  # deferred: see above

    from sbi_core.diagnostics.reference import ReferenceC2ST  # deferred: torch
    from sbi_core.run.loop import round_concentration, spec_to_run  # deferred: torch, the flows and the methods
    from sbi_core.stats.seeds import SeedPlan  # deferred: torch

    info = store.get_run(run_id)
    path = store.round_dir(run_id, index) / "posterior_samples.npy" if info is not None else None
    if path is None or not path.exists() or not store.reference_deferred(run_id, index):
        return None  # gone, or measured already
    inputs = spec_to_run(info.spec)
    seeds = SeedPlan(int(info.spec.seed))
    samples = torch.as_tensor(np.load(path), dtype=torch.float32)
    reference = ReferenceC2ST(inputs.simulator, inputs.prior, inputs.x_obs, seeds)
    score = reference.score(samples)
    try:  # deferred with the C2ST (sbi_core.run.loop), from the round's saved network
        hdr = round_concentration(store.load_posterior(run_id, index), inputs.prior, samples, inputs.x_obs, seeds)
    except ArtifactMissing:  # its network is gone: the Rounds page estimates the size from the cloud
        hdr = None
    if store.get_run(run_id) is None:  # deleted while it was measured
        return None
    store.append_event(run_id, reference_event(index, score.value, score.reason,
                                               score.seconds if score.value is not None else None, hdr_size=hdr))
    return score.value


"""Where a round's simulation batches run: here, one after another, or as tasks across a Dask cluster.

A round of ``N`` simulations is cut into batches ``b = 0 .. B-1`` of ``s`` rows
(``theta_b = theta[b*s : (b+1)*s]``, shape ``(n_b, D)``), and batch ``b`` comes
with its own seed ``seed_b`` (drawn by :class:`~sbi_core.simulators.sources.SimulatorSource`
from the run's ``"simulate"`` stream). A batch is a pure function of its three
parts::

    x_b = simulator.simulate(theta_b, generator=torch.Generator().manual_seed(seed_b))   # (n_b, K)

(a plain callable ``theta -> x`` owns its randomness and ignores ``seed_b``), so
where a batch runs, and in what order, changes nothing: ``x = cat(x_0, ..., x_{B-1})``
is the same on one thread as across any number of workers.

A :class:`BatchMapper` runs a list of :class:`Batch` es and yields ``x_b`` in batch
order, one at a time, so the caller reports progress and checks its cancel between
batches; closing the iterator early (a cancel) abandons the batches not yet
yielded.

* :class:`LocalMapper` (the default): a loop in the calling thread.
* :class:`DaskFanOut`: from inside a running Dask task (a run, see
  :mod:`sbi_core.jobs.dask_executor`), submits every batch as a task of its own to the
  task's cluster and gathers the results in order. It fans out only where that can
  help -- at least :data:`MIN_WORKERS` workers, at least two batches, a built-in
  :class:`~sbi_core.simulators.Simulator` that pickles -- and runs everything else
  locally: an uploaded simulator (its sandboxed child process belongs to this
  worker, and it must not be carried to others), any other callable, one batch.
  It is **off unless** ``$SBI_FANOUT=1`` (in the workers' environment): the
  built-in simulators are vectorised and simulate a whole round in milliseconds,
  so spreading their batches only adds task round trips, and a seceded run
  can let a queued run take its worker's slot (below) -- worth it for a
  simulator that is slow per call, on a cluster with workers to spare.

Waiting inside a task without deadlocking the cluster
    While a run waits for its batches it does nothing, yet holds its worker's only
    thread; if every worker held a waiting run, no batch could start. So the run's
    thread *secedes* from its worker's thread pool (``distributed.secede``) before
    it submits -- its slot then serves batches, its own first: they are submitted
    with :data:`BATCH_PRIORITY`, ahead of queued runs -- and *rejoins*
    (``distributed.rejoin``) once it has all its results, waiting if need be for
    the task then holding the slot to end, so the run's own work (training) does
    not share its worker's thread with another task. A round abandoned with
    batches outstanding (a cancel, a failed batch) cancels them and does not
    rejoin: the run is ending, and rejoining would wait for the abandoned batch
    that may be running in its slot.

    Dask's limits, worth knowing: after a task first secedes its worker counts it
    as long-running for the rest of its life, so while the run trains the worker
    may hand it one more task, which waits in the pool until the run secedes again
    (next round) or ends; and a queued *run* may take the seceded slot, in which
    case the rejoin waits for that run to secede or end.

Which mapper a simulation uses is the context's: ``with use(mapper):`` sets it for
the code inside (one thread's run; the run loop's signature does not change), and
:func:`current` reads it.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import pickle
import uuid
from typing import Any, Callable, Iterator, NamedTuple, Optional, Sequence, Union

import torch
from torch import Tensor

from sbi_core.simulators import Simulator
from sbi_core.simulators.uploaded import UploadedSimulateFn

__all__ = ["Batch", "BatchMapper", "LocalMapper", "DaskFanOut", "simulate_batch", "use", "current",
           "FANOUT_ENV", "MIN_WORKERS", "BATCH_PRIORITY"]

FANOUT_ENV = "SBI_FANOUT"  # "1": fan out where it can help (off otherwise)
MIN_WORKERS = 2
BATCH_PRIORITY = 100  # Dask priority of a batch task (higher runs first; a run's task has 0)


class Batch(NamedTuple):
    """One batch: ``simulator``, ``theta (n_b, D)`` and the seed of its own generator."""

    simulator: Union[Simulator, Callable[[Tensor], Tensor]]
    theta: Tensor
    seed: int


def simulate_batch(batch: Batch) -> Tensor:
    """``x_b`` for one batch (the unit of work, wherever it runs): a :class:`Simulator` with
    ``torch.Generator().manual_seed(seed)``; a plain callable as it is. Shapes are checked by the caller."""
    simulator, theta, seed = batch
    if isinstance(simulator, Simulator):
        return simulator.simulate(theta, generator=torch.Generator().manual_seed(int(seed)))
    return torch.as_tensor(simulator(theta), dtype=torch.float32)


class BatchMapper:
    """Interface: ``map(batches) -> iterator of x_b``, in batch order (close it to abandon the rest)."""

    def map(self, batches: Sequence[Batch]) -> Iterator[Tensor]:
        raise NotImplementedError


class LocalMapper(BatchMapper):
    """Every batch in the calling thread, in order."""

    def map(self, batches: Sequence[Batch]) -> Iterator[Tensor]:
        for batch in batches:
            yield simulate_batch(batch)


def _is_uploaded(simulator: Simulator) -> bool:
    return isinstance(simulator.simulate_fn, UploadedSimulateFn)


def _travels(simulator: Any) -> bool:
    """Whether ``simulator`` may run on another worker: a :class:`Simulator` that is not uploaded
    code and pickles by reference (so another process can import what it names)."""
    if not isinstance(simulator, Simulator) or _is_uploaded(simulator):
        return False
    try:
        pickle.dumps(simulator)
    except Exception:  # noqa: BLE001 - a lambda, a local function, an open handle: stays here
        return False
    return True


def _in_task() -> bool:
    """Whether this thread is running a Dask task (where it may secede)."""
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True


class DaskFanOut(BatchMapper):
    """Batches as tasks on a Dask cluster (see the module docstring for when and how).

    Args:
        name: prefix of the batch tasks' keys (e.g. the run's task key); each key is
            ``{name}-batch-{call}-{b}``, unique per call.
        client: a ``distributed.Client`` to submit with; ``None``: the running task's
            (``distributed.get_client()``), and outside a task every batch runs locally.
    """

    def __init__(self, name: str = "sbi", client: Any = None) -> None:
        self.name = name
        self._client = client
        self.local = LocalMapper()

    def _client_or_none(self) -> Any:
        if self._client is not None:
            return self._client
        if not _in_task():
            return None
        from distributed import get_client

        return get_client()

    def fans_out(self, batches: Sequence[Batch], client: Any) -> bool:
        """Whether these batches go to the cluster (else they run here)."""
        if os.environ.get(FANOUT_ENV, "").strip() != "1" or client is None or len(batches) < 2:
            return False
        if not _travels(batches[0].simulator):
            return False
        return len(client.nthreads()) >= MIN_WORKERS

    def map(self, batches: Sequence[Batch]) -> Iterator[Tensor]:
        client = self._client_or_none()
        if not self.fans_out(batches, client):
            yield from self.local.map(batches)
            return
        yield from self._fan_out(client, batches)

    def _fan_out(self, client: Any, batches: Sequence[Batch]) -> Iterator[Tensor]:
        from distributed import rejoin, secede

        seceded = self._client is None  # only a task thread that got its client here is in a pool
        if seceded:
            secede()  # before submitting: this worker's slot takes batches too
        call = uuid.uuid4().hex[:12]
        futures: list[Optional[Any]] = []
        try:
            for b, batch in enumerate(batches):
                rows_only = batch._replace(theta=batch.theta.clone())  # a view would carry the round's storage
                futures.append(client.submit(simulate_batch, rows_only, key=f"{self.name}-batch-{call}-{b}",
                                             pure=False, priority=BATCH_PRIORITY))
            for b, future in enumerate(futures):
                assert future is not None
                x = future.result()
                futures[b] = None  # release it on the cluster
                yield x
        finally:
            left = [f for f in futures if f is not None]
            if left:
                client.cancel(left)
            gathered = len(futures) == len(batches) and not left  # else abandoned: the run is ending
            if seceded and gathered:
                rejoin()


_CURRENT: contextvars.ContextVar[BatchMapper] = contextvars.ContextVar("sbi_batch_mapper", default=LocalMapper())


def current() -> BatchMapper:
    """The batch mapper of this context (:class:`LocalMapper` unless :func:`use` says otherwise)."""
    return _CURRENT.get()


@contextlib.contextmanager
def use(mapper: Optional[BatchMapper]) -> Iterator[BatchMapper]:
    """Simulate with ``mapper`` (``None``: locally) inside the block."""
    token = _CURRENT.set(mapper if mapper is not None else LocalMapper())
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)

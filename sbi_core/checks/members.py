"""The ensemble's extra members: the run's method trained again on the run's own simulations, other seeds.

Member ``k`` (``k = 1 .. K-1``; member 0 is the run itself) is one call of the run loop,
:func:`sbi_core.run.loop.run_sequential`, with the run's spec settings
(:func:`~sbi_core.run.loop.spec_settings`), the stored training pairs ``theta (N, D)``,
``x (N, K)`` of the run's one round as a table of simulations, and a seed of its own drawn
from the check job's seed plan: the same method, network and training settings on the same
data, differing only in initial weights, validation split and batch order. Its result is
``S`` posterior draws at ``x_o``, ``(S, D)``. It runs under :func:`torch.random.fork_rng`,
so torch's global random state is left as it was.

Where the members train
    * **in this thread** (:func:`train_members` outside a Dask task, or on a cluster of one
      worker thread): one after another, with the check job's ``cancel`` consulted after
      every epoch;
    * **as Dask tasks** (inside a check task, on a cluster with two or more worker threads):
      as :class:`~sbi_core.simulators.fanout.DaskFanOut` does with simulation batches, the
      check's thread *secedes* from its worker's pool (its slot then serves members too),
      scatters the training pairs once, submits one :func:`member_task` per member with
      :data:`MEMBER_PRIORITY` (behind every queued run: a run waiting
      for a worker goes before another user's second opinion) and gathers the draws in member order,
      consulting ``cancel`` every :data:`POLL_S` while it waits; then it *rejoins*. A member
      task sets torch's thread count to the check task's own (one per worker on the app's
      cluster), puts it back when it ends, and reads the check's cancel flag from the store.
      If the checks are cancelled or a member fails, the outstanding members are cancelled
      and the check does not rejoin (it is ending; rejoining would wait for a member that may
      hold its slot).

A member travels as a :class:`Member` (plain data that pickles): the simulator goes with it
only when it is a built-in model (its hand-made summaries may be the run's embedding); an
uploaded simulator's sandboxed process stays with the check, and the member gets the data's
shape instead, which is all the training needs of it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch
from torch import Tensor

from sbi_core.errors import Cancelled
from sbi_core.run.loop import run_sequential
from sbi_core.simulators import Simulator
from sbi_core.simulators.uploaded import UploadedSimulateFn
from sbi_core.stats.shapes import DataShape
from sbi_core.store.runs import RunStore
from sbi_core.threads import limited_threads

__all__ = ["Member", "train_member", "member_task", "train_members", "travelling_simulator", "MEMBER_PRIORITY",
           "POLL_S", "MIN_THREADS"]

MEMBER_PRIORITY = -1000  # Dask priority of a member task: below every run's task (-turn, a round of at most 20)
POLL_S = 0.5  # how often a check waiting for its members on the cluster consults its cancel
MIN_THREADS = 2  # worker threads a cluster needs before the members go to it (else: in this thread)
CANCEL_EVERY_S = 0.2  # a member task reads the store's cancel flag at most this often


@dataclass(frozen=True)
class Member:
    """Everything one extra estimator needs, as plain data.

    index: ``k`` (1 .. K-1); seed: its run seed (network, training; :class:`~sbi_core.stats.seeds.SeedPlan`).
    simulator: a built-in :class:`Simulator`, or ``None`` (an upload, a table).
    prior: the run's prior spec; x_obs: ``(K,)`` the observation; data_shape: how one simulation folds.
    settings: :func:`run_sequential`'s keyword settings (the spec's, with ``seed``,
        ``num_posterior_samples`` and ``num_threads`` left out); num_samples: ``S``, draws at ``x_o``.
    threads: torch's thread count for a member task (``None``: leave it); cancel_in: ``(store root,
        run id)`` whose check cancel flag a member task reads (``None``: none).
    """

    index: int
    seed: int
    simulator: Optional[Simulator]
    prior: list
    x_obs: Tensor
    data_shape: DataShape
    settings: dict
    num_samples: int
    threads: Optional[int] = None
    cancel_in: Optional[tuple[str, str]] = None


def travelling_simulator(simulator: Any) -> Optional[Simulator]:
    """``simulator`` when it may go with a member (a built-in :class:`Simulator`), else ``None``."""
    if isinstance(simulator, Simulator) and not isinstance(simulator.simulate_fn, UploadedSimulateFn):
        return simulator
    return None


def train_member(member: Member, theta: Tensor, x: Tensor, cancel: Optional[Callable[[], bool]] = None) -> Tensor:
    """Train ``member`` on ``theta (N, D)``, ``x (N, K)`` with the run loop; its ``(S, D)`` draws at ``x_o``."""
    with torch.random.fork_rng(devices=[]):
        result = run_sequential(member.simulator, member.prior, member.x_obs, seed=member.seed, cancel=cancel,
                                simulations=(theta, x), data_shape=member.data_shape,
                                num_posterior_samples=member.num_samples, num_threads=None, **member.settings)
    return torch.as_tensor(result.rounds[-1].posterior_samples, dtype=torch.float32)


def _store_cancel(store: RunStore, run_id: str) -> Callable[[], bool]:
    """The check's cancel flag in ``store``, read at most every :data:`CANCEL_EVERY_S`."""
    last = [0.0, False]

    def cancel() -> bool:
        now = time.monotonic()
        if not last[1] and now - last[0] >= CANCEL_EVERY_S:
            last[0], last[1] = now, bool(store.check_cancel_requested(run_id))
        return last[1]

    return cancel


def member_task(member: Member, theta: Tensor, x: Tensor) -> Tensor:
    """The Dask task of one member: :func:`train_member` with ``member.threads`` torch threads (put back
    afterwards) and the check's cancel flag read from its store."""
    store = RunStore(member.cancel_in[0]) if member.cancel_in is not None else None
    try:
        with limited_threads(member.threads):
            cancel = _store_cancel(store, member.cancel_in[1]) if store is not None else None
            return train_member(member, theta, x, cancel)
    finally:
        if store is not None:
            store.close()


def _task_client() -> Any:
    """The cluster's client when this thread runs a Dask task, else ``None``."""
    try:
        from distributed import get_client, get_worker
    except ImportError:
        return None
    try:
        get_worker()
    except ValueError:
        return None
    return get_client()


def _on_cluster(client: Any, members: Sequence[Member], theta: Tensor, x: Tensor,
                cancel: Optional[Callable[[], bool]], on_member: Callable[[int], None]) -> list[Tensor]:
    """The members as Dask tasks (see the module docstring); their draws in member order."""
    from distributed import rejoin, secede

    secede()  # before submitting: this worker's slot takes members too
    call = uuid.uuid4().hex[:12]
    futures: list[Any] = []
    gathered = False
    try:
        theta_f, x_f = client.scatter([theta, x])
        for m in members:
            futures.append(client.submit(member_task, m, theta_f, x_f, key=f"sbi-ensemble-{call}-{m.index}",
                                         pure=False, priority=MEMBER_PRIORITY))
        out = []
        for i, future in enumerate(futures):
            on_member(i)
            while True:
                if cancel is not None and cancel():
                    raise Cancelled("checks cancelled")
                try:
                    out.append(future.result(timeout=POLL_S))
                    break
                except TimeoutError:
                    continue
        gathered = True
        return out
    finally:
        left = [f for f in futures if not f.done()]
        if left:
            client.cancel(left)
        if gathered:
            rejoin()


def train_members(members: Sequence[Member], theta: Tensor, x: Tensor,
                  cancel: Optional[Callable[[], bool]] = None,
                  on_member: Optional[Callable[[int], None]] = None) -> list[Tensor]:
    """Each member's ``(S, D)`` draws at ``x_o``, in order: as Dask tasks inside a check task on a cluster
    of :data:`MIN_THREADS` or more worker threads, else one after another here. ``on_member(i)`` is called
    as member ``i`` (0-based in ``members``) is started or waited for."""
    on_member = on_member or (lambda i: None)
    client = _task_client() if members else None
    if client is not None and sum(client.nthreads().values()) >= MIN_THREADS:
        return _on_cluster(client, members, theta, x, cancel, on_member)
    out = []
    for i, m in enumerate(members):
        on_member(i)
        out.append(train_member(m, theta, x, cancel))
    return out

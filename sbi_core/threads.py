"""How many CPU threads a process computes with: the one place that sets it.

Torch (and the BLAS libraries under numpy) start one thread per core by
default. Two trainings that each take every core of a 2-core machine run
about ten times slower than the same two one after the other, because the
threads spin against each other. So every process that trains or samples
limits itself to its share: the job manager hands each worker a count, the
worker applies it, and the app's own process uses one thread.

:func:`thread_env` gives the environment variables that native libraries
read when they load (for a child process about to start), and
:func:`set_threads` applies a count to this process (torch's intra-op
threads, plus the same variables for anything it starts later) for a
process of its own (a worker); :func:`limited_threads` applies it for one block
and then puts back what the caller had, for library calls that train or sample
inside someone else's process (a notebook, a test, the app).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, Optional

__all__ = ["THREAD_ENV", "machine_cores", "thread_env", "set_threads", "limited_threads"]

THREAD_ENV = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def machine_cores() -> int:
    """How many CPU cores this process may use: the most threads a run gets (and the upper bound
    of a RunSpec's ``num_threads``). More threads than cores only slow a run down, and a count in
    the millions crashed the worker that tried to start them."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def _capped(num_threads: int) -> int:
    return min(max(1, int(num_threads)), machine_cores())


def thread_env(num_threads: int) -> dict[str, str]:
    """The environment variables that limit a new process's native libraries to ``num_threads``
    (at most this machine's cores)."""
    n = str(_capped(num_threads))
    return {name: n for name in THREAD_ENV}


def set_threads(num_threads: Optional[int]) -> None:
    """Limit this process to ``num_threads``, at most this machine's cores (``None`` leaves the setting alone)."""
    if num_threads is None:
        return
    n = _capped(num_threads)
    os.environ.update(thread_env(n))
    import torch  # here, so that a worker can call this before its first torch import

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


@contextmanager
def limited_threads(num_threads: Optional[int]) -> Iterator[None]:
    """:func:`set_threads` for the block only: afterwards torch's thread count and the variables of
    :data:`THREAD_ENV` are what they were (``None``: the block changes nothing).

    A run started from a caller's own process (``run_sequential``, ``execute``, ``train``) must not
    leave that process on its own count: a test worker left on 2 threads beside another busy one
    ran its next trainings ten times slower."""
    if num_threads is None:
        yield
        return
    import torch

    before, env = torch.get_num_threads(), {name: os.environ.get(name) for name in THREAD_ENV}
    set_threads(num_threads)
    try:
        yield
    finally:
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)

"""Child processes for tests that race several writers against one store.

Children come from a fork server (``multiprocessing``'s "forkserver" start
method), not from a fork of the test process: by the time these tests run, the
pytest process holds threads of earlier tests (Dask clients, job managers,
SQLite connections), and a plain ``fork`` copies whatever lock one of them held
at that instant into a child that can then never take it. The fork server is a
fresh single-threaded interpreter that imports the store once, so thirty
children start in milliseconds each and never inherit a held lock.

Every child is a daemon and is killed when its ``with`` block ends, so a test
that fails half-way never leaves a process that keeps pytest from exiting.
"""
from __future__ import annotations

import multiprocessing as mp
from contextlib import contextmanager
from typing import Iterator

if "forkserver" in mp.get_all_start_methods():
    CTX = mp.get_context("forkserver")
    CTX.set_forkserver_preload(["sbi_core.store.runs"])
else:  # pragma: no cover - platforms without fork
    CTX = mp.get_context("spawn")


@contextmanager
def running(procs: list, join_s: float = 30.0) -> Iterator[list]:
    """Start ``procs`` as daemons; on leaving, join each for ``join_s`` and kill what is left."""
    for p in procs:
        p.daemon = True
        p.start()
    try:
        yield procs
    finally:
        for p in procs:
            p.join(join_s)
            if p.is_alive():
                p.kill()
                p.join(5)

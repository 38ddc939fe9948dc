"""Running work: the job manager, the executor protocol it talks to (worker processes, Dask tasks),
check jobs on Dask, and resuming runs a restart interrupted.

Layer: the top of sbi_core with uploads and export (see docs/architecture.md).
"""

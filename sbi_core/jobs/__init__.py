"""Running work: the job manager, worker processes and the Dask executor, check jobs on Dask,
and resuming runs a restart interrupted.

Layer: the top of sbi_core with uploads and export (see docs/architecture.md).
"""

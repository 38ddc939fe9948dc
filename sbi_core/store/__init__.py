"""The run store: SQLite rows (:mod:`.runs`, :mod:`.db`), its errors, a run's files
(:mod:`.artifacts`) and check records.

Layer: above :mod:`sbi_core.run` (see docs/architecture.md). Loads no torch.
"""

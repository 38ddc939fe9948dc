"""Uploaded files in the run store: their folders and names (:mod:`.paths`), the quota and
garbage collection (:mod:`.quota`), saving, portable specs and admission (:mod:`.files`).

Layer: the top of sbi_core with jobs and export (see docs/architecture.md).
"""

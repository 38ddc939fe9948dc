"""Uploaded simulator code in a separate, limited process: the parent side (:mod:`.runner`)
and the script the child runs (:mod:`.child`).

Layer: below :mod:`sbi_core.simulators` (see docs/architecture.md).
"""

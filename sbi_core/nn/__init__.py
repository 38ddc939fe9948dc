"""Neural networks: conditional flows (:mod:`.flows`, the only module that imports the flow library), the ratio
classifier and the training loop with its events.

Layer: above :mod:`sbi_core.stats` (see docs/architecture.md).
"""

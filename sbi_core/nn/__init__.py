"""Neural networks: conditional flows (the only package that knows nflows), the ratio
classifier and the training loop with its events.

Layer: above :mod:`sbi_core.stats` (see docs/architecture.md).
"""

"""Posteriors: the flow posterior, the MCMC posterior of likelihood and ratio methods, the
particle posterior of ABC, their shared base and reading a saved one back.

Layer: above :mod:`sbi_core.nn` (see docs/architecture.md).
"""

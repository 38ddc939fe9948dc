"""Statistics with no knowledge of networks or runs: priors and their specs, named random
streams, rejection sampling, highest-density regions, calibration bands and the MCMC sampler.

Layer: imports only :mod:`sbi_core.errors` (see docs/architecture.md).
"""

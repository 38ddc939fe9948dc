"""MCMC for posteriors known up to a constant (neural likelihood and ratio estimation).

``p(theta | x) ∝ q(x | theta) p(theta)`` (NLE) or ``∝ r(x, theta) p(theta)``
(NRE) can be evaluated but not sampled directly. :func:`sample_mcmc` draws from
such densities for many observations at once with a vectorised slice sampler
(:mod:`.slice`), started by importance resampling (:mod:`.init`), with
independence jumps between modes after warm-up (:mod:`.jump`);
:func:`mcmc_report` says, in plain words, whether its chains mixed
(:mod:`.diagnostics`).
"""

from sbi_core.stats.mcmc.diagnostics import mcmc_report
from sbi_core.stats.mcmc.init import MCMCInitError
from sbi_core.stats.mcmc.sample import DEFAULTS, MCMCResult, sample_mcmc

__all__ = ["sample_mcmc", "MCMCResult", "mcmc_report", "MCMCInitError", "DEFAULTS"]

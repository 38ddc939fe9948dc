"""How much a posterior has concentrated: the size of its highest-density region, in prior mass.

A standard deviation says nothing learned when a posterior has two modes far
apart (two moons' two crescents): each crescent is narrow, yet the spread
between them keeps the sd near the prior's. The size of the posterior's
highest-density region (HDR) does not have that flaw.

For a posterior density ``q(theta) = p(theta | x_o)`` and a mass ``alpha``
(0.9 here), the HDR is the smallest region holding ``alpha`` of the posterior:

    R_alpha = {theta : q(theta) >= tau_alpha},   with   int_{R_alpha} q = alpha.

Its size is measured by the prior's mass

    s_alpha = P_prior(R_alpha) = int 1[q(theta) >= tau_alpha] p(theta) dtheta,

which for a uniform prior is the share of the prior's box (length, area,
volume) that ``R_alpha`` covers, however many pieces it falls into. When
nothing was learned (``q = p``), ``R_alpha`` is the prior's own 90 % region and
``s_alpha = alpha``; the smaller ``s_alpha``, the more the data pinned the
parameters down.

Monte Carlo estimate (:func:`hdr_prior_mass`): ``tau_alpha`` is the
``1 - alpha`` quantile of ``log q`` at the posterior's own samples
``theta_i ~ q``, and ``s_alpha`` the fraction of prior draws
``phi_j ~ p`` with ``log q(phi_j) >= tau_alpha``. Only the ordering of
``log q`` matters, so an unnormalised log density serves as well. The standard
error is a bootstrap over both sample sets, so it covers the error of
``tau_alpha`` as well as the binomial error of the fraction.

Where no density is at hand (rounds stored before this measure existed),
:func:`kde_log_prob` gives a Gaussian kernel density estimate of the stored
samples; kernel smoothing widens the region, so that estimate errs on the
large side (it never overstates what was learned).

:func:`hdr_intervals` is the one-dimensional version for a single parameter's
marginal: the interval(s) of the 90 % HDR of a kernel density estimate, one per
mode that holds mass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["HDR_MASS", "HdrSize", "hdr_prior_mass", "posterior_hdr_size", "samples_hdr_size", "kde_log_prob",
           "hdr_intervals", "format_intervals"]

HDR_MASS = 0.9


@dataclass(frozen=True)
class HdrSize:
    """``fraction``: the prior mass of the posterior's ``mass`` HDR; ``stderr``: its standard error;
    ``num_prior``: prior draws used (a fraction of 0 means below ``1 / num_prior``)."""

    fraction: float
    stderr: float
    mass: float
    num_prior: int

    def to_dict(self) -> dict:
        return {"fraction": self.fraction, "stderr": self.stderr, "mass": self.mass, "num_prior": self.num_prior}


def _as_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=float).reshape(-1)


def hdr_prior_mass(
    log_prob: Callable,
    posterior_samples,
    prior_samples,
    mass: float = HDR_MASS,
    num_bootstrap: int = 200,
    seed: int = 0,
) -> HdrSize:
    """Prior mass of the posterior's ``mass`` highest-density region (see the module docstring).

    ``log_prob``: ``(n, D) -> (n,)`` log density of the posterior (unnormalised is fine;
    ``-inf`` outside its support). ``posterior_samples``: ``(m, D)`` draws from it;
    ``prior_samples``: ``(n, D)`` draws from the prior. The bootstrap uses its own
    generator (``seed``); no global random state is touched.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> lp = lambda t: -0.5 * ((np.asarray(t)[:, 0] - 0.5) / 0.05) ** 2   # N(0.5, 0.05^2)
    >>> s = hdr_prior_mass(lp, rng.normal(0.5, 0.05, (4000, 1)), rng.uniform(0, 1, (20000, 1)))
    >>> abs(s.fraction - 2 * 1.645 * 0.05) < 0.01   # the interval mean +- 1.645 sd, of [0, 1]
    True
    """
    if not 0.0 < mass < 1.0:
        raise ValueError(f"mass must be between 0 and 1, got {mass}")
    lq_post = _as_numpy(log_prob(posterior_samples))
    lq_prior = _as_numpy(log_prob(prior_samples))
    lq_post = lq_post[~np.isnan(lq_post)]
    lq_prior = np.where(np.isnan(lq_prior), -np.inf, lq_prior)
    if len(lq_post) == 0 or len(lq_prior) == 0:
        raise ValueError("hdr_prior_mass needs posterior and prior samples")

    def estimate(post: np.ndarray, prior: np.ndarray) -> float:
        tau = np.quantile(post, 1.0 - mass)
        return float(np.mean(prior >= tau))

    fraction = estimate(lq_post, lq_prior)
    rng = np.random.default_rng(seed)
    boot = [
        estimate(rng.choice(lq_post, len(lq_post)), rng.choice(lq_prior, len(lq_prior)))
        for _ in range(num_bootstrap)
    ]
    return HdrSize(fraction=fraction, stderr=float(np.std(boot, ddof=1)), mass=mass, num_prior=len(lq_prior))


def kde_log_prob(samples) -> Callable[[np.ndarray], np.ndarray]:
    """A Gaussian kernel density estimate of ``samples (m, D)`` (Scott's bandwidth), as a log density.

    Columns that do not vary (fixed parameters) are left out of the estimate.
    """
    from scipy.stats import gaussian_kde

    a = np.asarray(samples, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    a = a[np.isfinite(a).all(1)]
    free = a.std(0) > 0
    if not free.any() or len(a) < 3:
        raise ValueError("a density estimate needs at least 3 samples of a parameter that varies")
    kde = gaussian_kde(a[:, free].T)

    def log_prob(theta) -> np.ndarray:
        t = np.asarray(theta, dtype=float)
        if t.ndim == 1:
            t = t[:, None]
        return kde.logpdf(t[:, free].T)

    return log_prob


def hdr_intervals(values, mass: float = HDR_MASS, grid: int = 512) -> list[tuple[float, float]]:
    """The ``mass`` highest-density interval(s) of one parameter's samples ``values (m,)``.

    A Gaussian KDE on a grid over the samples' range; the densest grid cells are
    taken until they hold ``mass`` of it, and neighbouring cells merge into
    intervals. One interval for a single mode, one per mode that holds mass otherwise.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> two = np.r_[rng.normal(-2, 0.1, 500), rng.normal(2, 0.1, 500)]
    >>> len(hdr_intervals(two))
    2
    """
    v = np.asarray(values, dtype=float).reshape(-1)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return []
    lo, hi = float(v.min()), float(v.max())
    if hi - lo <= 0 or len(v) < 3:
        return [(lo, hi)]
    from scipy.stats import gaussian_kde

    xs = np.linspace(lo, hi, grid)
    dens = gaussian_kde(v)(xs)
    order = np.argsort(dens)[::-1]
    cum = np.cumsum(dens[order]) / dens.sum()
    keep = np.zeros(grid, dtype=bool)
    keep[order[: int(np.searchsorted(cum, mass)) + 1]] = True
    out, start = [], None
    for k in range(grid):
        if keep[k] and start is None:
            start = k
        if start is not None and (k == grid - 1 or not keep[k + 1]):
            out.append((float(xs[start]), float(xs[k])))
            start = None
    return out


def format_intervals(intervals, digits: int = 3) -> str:
    """``[(a, b), (c, d)]`` -> ``"a to b or c to d"`` with ``digits`` significant digits."""
    return " or ".join(f"{a:.{digits}g} to {b:.{digits}g}" for a, b in intervals)


def posterior_hdr_size(posterior, prior, posterior_samples, x, num_prior: int = 10_000, seed: int = 0,
                       mass: float = HDR_MASS) -> HdrSize:
    """:func:`hdr_prior_mass` of a trained :class:`~sbi_core.posteriors.posterior.Posterior`
    at observation ``x``, from its ``posterior_samples (m, D)`` and ``num_prior`` draws of ``prior``
    made with a private generator seeded by ``seed`` (same seed, same number).

    A posterior whose ``log_prob`` solves an ODE per point (``expensive_log_prob`` true: FMPE,
    NPSE) is measured from its samples instead (:func:`samples_hdr_size`): its densities at the
    ``m + num_prior`` points would cost seconds to minutes every round."""
    import torch

    if getattr(posterior, "expensive_log_prob", False):
        return samples_hdr_size(posterior_samples, prior, seed=seed, mass=mass)

    g = torch.Generator().manual_seed(int(seed))
    prior_samples = prior.sample((num_prior,), generator=g)

    def log_prob(theta):  # unnormalised: only the ordering matters
        return posterior.log_prob(theta, x=x, normalize=False)

    return hdr_prior_mass(log_prob, posterior_samples, prior_samples, mass=mass, seed=int(seed))


def samples_hdr_size(posterior_samples, prior, num_prior: int = 4000, seed: int = 0,
                     mass: float = HDR_MASS) -> HdrSize:
    """:func:`hdr_prior_mass` when only samples are stored: the density is :func:`kde_log_prob`
    of ``posterior_samples (m, D)``, so the region comes out somewhat too large (never too small)."""
    import torch

    a = np.asarray(posterior_samples, dtype=float)
    g = torch.Generator().manual_seed(int(seed))
    prior_samples = prior.sample((num_prior,), generator=g).numpy()
    return hdr_prior_mass(kde_log_prob(a), a, prior_samples, mass=mass, seed=int(seed))

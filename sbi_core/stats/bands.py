"""What calibrated SBC ranks look like: the 99 % bands a rank histogram and a rank ECDF stay inside.

With ``L`` posterior draws per dataset, a calibrated posterior gives ranks
uniform on ``{0, ..., L}``.

**Histogram.** Group the ``L + 1`` rank values into ``B`` bins of ``w_b``
consecutive values (as equal as the division allows). Over ``N`` datasets the
count in bin ``b`` is ``Binomial(N, w_b / (L + 1))``; its band is the
binomial's ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles. A bar
outside its band is unusual for a calibrated posterior (about 1 bar in 100).

**ECDF difference** (Säilynoja, Bürkner & Vehtari, 2022). At ``k = 0..L-1``
the ECDF ``F_N(k) = #{i : r_i <= k} / N`` has ``N F_N(k) ~ Binomial(N, z_k)``
with ``z_k = (k + 1) / (L + 1)``; the plot shows ``F_N(k) - z_k``. Pointwise
bands would be crossed somewhere far more often than 1 % of the time, so the
band is *simultaneous*: the pointwise level ``gamma`` is lowered until a
calibrated ECDF leaves the band anywhere with probability ``1 - level``.
``gamma`` is found by simulation: for each of ``M`` sets of ``N`` uniform
ranks, ``gamma_m = 2 min_k min(P(X <= c_k), P(X >= c_k))`` with
``X ~ Binomial(N, z_k)`` and ``c_k`` that set's count, and ``gamma`` is the
``1 - level`` quantile of the ``gamma_m``. The simulation has its own seeded
numpy generator, so the band is the same every time.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["default_num_bins", "rank_bins", "rank_histogram", "binomial_band", "histogram_band", "ecdf_difference",
           "ecdf_band"]


def default_num_bins(num_datasets: int, num_posterior_samples: int) -> int:
    """About 10 datasets per bin expected, between 4 and 20 bins, never more bins than rank values."""
    return int(min(num_posterior_samples + 1, max(4, min(20, num_datasets // 10))))


def rank_bins(num_posterior_samples: int, num_bins: int) -> list[np.ndarray]:
    """The rank values ``0..L`` split into ``num_bins`` runs of consecutive values (sizes differ by at most 1)."""
    return [np.asarray(b) for b in np.array_split(np.arange(num_posterior_samples + 1), int(num_bins))]


def rank_histogram(ranks: np.ndarray, num_posterior_samples: int, num_bins: int) -> np.ndarray:
    """``(B,)`` counts of ``ranks (N,)`` in the bins of :func:`rank_bins`."""
    ranks = np.asarray(ranks).astype(int)
    return np.array([np.isin(ranks, b).sum() for b in rank_bins(num_posterior_samples, num_bins)])


def binomial_band(num_datasets: int, p, level: float = 0.99) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)``: where ``Binomial(N, p)`` falls with probability ``level``, pointwise for each ``p``."""
    from scipy.stats import binom  # scipy only where a band is drawn, not at ``import sbi_core``

    tail = (1.0 - level) / 2.0
    return binom.ppf(tail, num_datasets, p), binom.ppf(1.0 - tail, num_datasets, p)


def histogram_band(num_datasets: int, num_posterior_samples: int, num_bins: int,
                   level: float = 0.99) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(low (B,), expected (B,), high (B,))`` bin counts of calibrated ranks (the ``level`` band)."""
    p = np.array([len(b) for b in rank_bins(num_posterior_samples, num_bins)]) / (num_posterior_samples + 1)
    low, high = binomial_band(num_datasets, p, level)
    return low, num_datasets * p, high


def ecdf_difference(ranks: np.ndarray, num_posterior_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """``(z (L,), F_N(k) - z (L, D))`` for ``ranks (N, D)``: the ECDF minus the uniform CDF at ``k = 0..L-1``."""
    ranks = np.asarray(ranks, dtype=float).reshape(len(ranks), -1)
    k = np.arange(num_posterior_samples)
    z = (k + 1) / (num_posterior_samples + 1)
    ecdf = (ranks[None, :, :] <= k[:, None, None]).mean(1)
    return z, ecdf - z[:, None]


@lru_cache(maxsize=32)
def ecdf_band(num_datasets: int, num_posterior_samples: int, level: float = 0.99, num_simulations: int = 1000,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(z (L,), low (L,), high (L,))``: the simultaneous ``level`` band of ``F_N - z`` for calibrated ranks.

    A deterministic function of its arguments (a Monte Carlo of ``num_simulations`` calibrated rank sets,
    about 0.1 s), so it is computed once per setting and the read-only arrays are shared by every redraw.
    """
    from scipy.stats import binom

    n, L = int(num_datasets), int(num_posterior_samples)
    z = (np.arange(L) + 1) / (L + 1)
    rng = np.random.default_rng(seed)
    sims = rng.integers(0, L + 1, size=(num_simulations, n))
    counts = np.stack([np.bincount(s, minlength=L + 1).cumsum()[:L] for s in sims])  # (M, L)
    below = binom.cdf(counts, n, z)
    above = binom.sf(counts - 1, n, z)
    gammas = 2.0 * np.minimum(below, above).min(1)
    gamma = float(np.quantile(gammas, 1.0 - level))
    low = binom.ppf(gamma / 2.0, n, z) / n - z
    high = binom.ppf(1.0 - gamma / 2.0, n, z) / n - z
    for a in (z, low, high):
        a.setflags(write=False)
    return z, low, high

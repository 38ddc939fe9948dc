"""Rejection ABC by hand: keep the prior draws whose simulation lands within epsilon of the observation.

With prior draws ``theta_i ~ p(theta)`` and one simulation each, ``x_i ~ p(x | theta_i)``,
the accepted set

    A_eps = { theta_i : d(x_i, x_o) <= eps }

is a sample of the ABC posterior ``p_eps(theta | x_o) ∝ p(theta) P(d(x, x_o) <= eps | theta)``,
which tends to the posterior as ``eps -> 0`` (and holds ever fewer draws: the
trade-off the lesson shows). The distance is Euclidean after dividing each
component by its spread across the simulations (median absolute deviation,
scaled to match a standard deviation for a normal), so no component wins only
because of its units:

    d(x, x_o) = || (x - x_o) / s ||_2,   s_k = 1.4826 * median_i |x_ik - median(x_k)|.

This is the teaching version, on a fixed bank of simulations; the rejection
and SMC ABC *methods* are run by the method registry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sbi_core.errors import SBIError

__all__ = ["AbcBank", "scaled_distances", "accepted_within", "epsilon_for_fraction"]

_MAD_TO_SD = 1.4826


def _scale(x: np.ndarray) -> np.ndarray:
    """``(K,)`` robust spread of each component of ``x (n, K)`` (1 where a component does not vary)."""
    mad = _MAD_TO_SD * np.median(np.abs(x - np.median(x, axis=0)), axis=0)
    sd = x.std(axis=0)
    s = np.where(mad > 0, mad, sd)
    return np.where(s > 0, s, 1.0)


def scaled_distances(x: np.ndarray, x_obs: np.ndarray) -> np.ndarray:
    """``(n,)`` distances ``d(x_i, x_o)`` of simulations ``x (n, K)`` to the observation ``x_obs (K,)``.

    Rows with NaN or infinity get distance ``inf`` (never accepted).
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    obs = np.asarray(x_obs, dtype=np.float64).reshape(-1)
    if x.shape[1] != obs.shape[0]:
        raise SBIError(f"The observation has {obs.shape[0]} numbers but the simulations have {x.shape[1]}.")
    finite = np.isfinite(x).all(axis=1)
    if finite.sum() < 2:
        raise SBIError("Fewer than two simulations gave finite numbers: there is nothing to compare with.")
    d = np.full(len(x), np.inf)
    d[finite] = np.sqrt((((x[finite] - obs) / _scale(x[finite])) ** 2).sum(axis=1))
    return d


def accepted_within(distances: np.ndarray, epsilon: float) -> np.ndarray:
    """Bool ``(n,)``: which draws are accepted at tolerance ``epsilon`` (``d <= epsilon``)."""
    return np.asarray(distances) <= float(epsilon)


def epsilon_for_fraction(distances: np.ndarray, fraction: float) -> float:
    """The tolerance that accepts the closest ``fraction`` of the draws (at least one)."""
    d = np.sort(np.asarray(distances)[np.isfinite(distances)])
    k = int(np.clip(round(fraction * len(d)), 1, len(d)))
    return float(d[k - 1])


@dataclass(frozen=True)
class AbcBank:
    """Prior draws ``theta (n, D)``, their simulations ``x (n, K)`` and distances ``(n,)`` to ``x_obs``."""

    theta: np.ndarray
    x: np.ndarray
    distances: np.ndarray

    def accepted(self, epsilon: float) -> np.ndarray:
        """``(a, D)`` the accepted draws at ``epsilon``."""
        return self.theta[accepted_within(self.distances, epsilon)]

r"""The pieces of a nearest-neighbour conformal test, shared by :mod:`.ood` and :mod:`.misspecification`.

Both ask "is the point ``x_o`` (``K`` numbers) like the simulations ``x_1..x_n``?" in the same way:

* **robust standardisation** (:func:`robust_scale`): each component ``c`` is z-scored by the
  simulations' median and ``IQR_c / 1.349`` (the sd of a normal), falling back to the sd, then 1,
  where that is 0, so that no component dominates by its units and a few wild simulations do not
  set the scale;
* **k-NN distances** (:func:`knn_distances`): the Euclidean distances of each point to its ``k``
  nearest simulations in standardised units, computed in blocks of rows (:func:`distance_blocks`,
  memory ``_CHUNK x n``); a simulation's own row can be left out of its own neighbours (``exclude``);
* **the conformal p-value** (:func:`conformal_p_value`): given calibration scores ``s_1..s_m`` of
  simulations of the same distribution,

      p = (1 + #{j : s_j >= s(x_o)}) / (m + 1),

  valid (``P(p <= a) <= a`` for every level ``a``) whenever ``x_o`` and the calibration simulations
  are exchangeable (Vovk, Gammerman & Shafer 2005, *Algorithmic Learning in a Random World*;
  Angelopoulos & Bates 2021, arXiv:2107.07511, section 1 and appendix D).

Tensors: ``z (m, K)`` standardised points, ``ref (n, K)`` standardised simulations,
``ref_sq (n,)`` their squared norms; all ``numpy`` float64.
"""

from __future__ import annotations

from typing import Iterator, Optional

import numpy as np

from sbi_core.errors import SBIError

__all__ = ["as_rows", "robust_scale", "distance_blocks", "smallest", "knn_distances", "conformal_p_value", "rank_p_values"]

_CHUNK = 256  # rows of a distance block (memory: _CHUNK x n doubles)


def as_rows(x, name: str) -> np.ndarray:
    """``x`` (a tensor or array-like) as a float64 ``(n, K)`` array; a 1-D ``x`` becomes one column."""
    a = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise SBIError(f"The {name} must be a table with one row per simulation, got shape {a.shape}.")
    return a


def robust_scale(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(centre, scale)``, both ``(K,)``: the median and ``IQR / 1.349`` of ``a (n, K)`` per column
    (the sd where the IQR is 0, and 1 where that is 0 too)."""
    centre = np.median(a, axis=0)
    q25, q75 = np.quantile(a, [0.25, 0.75], axis=0)
    scale = (q75 - q25) / 1.349
    std = a.std(axis=0)
    return centre, np.where(scale > 0, scale, np.where(std > 0, std, 1.0))


def distance_blocks(z: np.ndarray, ref: np.ndarray, ref_sq: np.ndarray,
                    exclude: Optional[np.ndarray] = None) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield ``(rows, d2)``: squared distances ``d2 (b, n)`` of the rows ``rows`` of ``z (m, K)`` to every
    row of ``ref (n, K)``, ``b <= _CHUNK`` rows at a time.

    ``exclude (m,)``: the index in ``ref`` of each row itself, whose distance is set to infinity (left out of
    its own neighbours). Squared distances below ``1e-12`` are set to 0, so that exact ties (discrete data) stay ties
    despite rounding.
    """
    for s in range(0, len(z), _CHUNK):
        rows = slice(s, min(s + _CHUNK, len(z)))
        block = z[rows]
        d2 = (block ** 2).sum(1)[:, None] + ref_sq[None, :] - 2.0 * block @ ref.T
        d2[d2 < 1e-12] = 0.0
        if exclude is not None:
            d2[np.arange(len(block)), exclude[rows]] = np.inf
        yield rows, d2


def smallest(d2: np.ndarray, k: int) -> np.ndarray:
    """``(b, k)``: the square roots of the ``k`` smallest entries of each row of ``d2 (b, n)``, ascending."""
    part = np.partition(d2, k - 1, axis=1)[:, :k] if k < d2.shape[1] else d2
    return np.sqrt(np.sort(part, axis=1)[:, :k])


def knn_distances(z: np.ndarray, ref: np.ndarray, ref_sq: np.ndarray, k: int,
                  exclude: Optional[np.ndarray] = None) -> np.ndarray:
    """``(m, k)``: the distances of each row of ``z (m, K)`` to its ``k`` nearest rows of ``ref (n, K)``, ascending.

    ``exclude (m,)``: the index in ``ref`` of each row itself (left out of its own neighbours).
    """
    out = np.empty((len(z), k))
    for rows, d2 in distance_blocks(z, ref, ref_sq, exclude):
        out[rows] = smallest(d2, k)
    return out


def conformal_p_value(calibration_sorted: np.ndarray, statistic: float) -> float:
    """``(1 + #{j : s_j >= statistic}) / (m + 1)`` for ascending calibration scores ``s (m,)``."""
    m = len(calibration_sorted)
    at_least = m - int(np.searchsorted(calibration_sorted, statistic, side="left"))
    return (1 + at_least) / (m + 1)


def rank_p_values(calibration_sorted: np.ndarray, statistics: np.ndarray) -> np.ndarray:
    """:func:`conformal_p_value` of each of ``statistics (r,)`` against the same ascending scores."""
    m = len(calibration_sorted)
    at_least = m - np.searchsorted(calibration_sorted, np.asarray(statistics, dtype=np.float64), side="left")
    return (1 + at_least) / (m + 1)

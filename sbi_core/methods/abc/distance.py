"""The ABC distance: Euclidean on simulations z-scored by their own spread.

ABC accepts a parameter when its simulation lands close to the observation.
"Close" must not depend on units, so each component ``k`` of ``x`` is divided
by a scale ``s_k`` measured on the simulations themselves:

    d(x, x_o) = || (x - x_o) / s ||_2,
    s_k = 1.4826 * median_i | x_ik - median_j x_jk |        (MAD, scaled to a normal's sd).

Why the median absolute deviation and not the standard deviation: a
simulator with heavy tails or a few wild runs (common in ecology and
epidemic models) inflates the standard deviation of that component, which
would then hardly count in the distance; the MAD ignores the outliers. When a
component's MAD is 0 (e.g. a count that is mostly 0) the standard deviation
is used, and 1 when the component does not vary at all.

Simulations with NaN or infinity never match a finite observation: their
distance is ``+inf`` (always rejected), which is exact for ABC (no bias).
The scale is measured on the finite rows only.

The same rule, in numpy on a fixed bank, is the lesson's :mod:`sbi_core.methods.abc.by_hand`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sbi_core.errors import SBIError

__all__ = ["MAD_TO_SD", "robust_scale", "scaled_distances"]

MAD_TO_SD = 1.4826  # MAD of a normal times this is its standard deviation


def robust_scale(x: Tensor) -> Tensor:
    """``(K,)`` spread of each component of ``x (N, K)``: MAD, else sd, else 1 (finite rows only).

    Raises :class:`SBIError` when fewer than two rows are finite.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    x = x[torch.isfinite(x).all(1)]
    if x.shape[0] < 2:
        raise SBIError("Fewer than two simulations gave finite numbers: there is nothing to measure distances on.")
    mad = MAD_TO_SD * (x - x.median(0).values).abs().median(0).values
    sd = x.std(0)
    s = torch.where(mad > 0, mad, sd)
    return torch.where(s > 0, s, torch.ones_like(s))


def scaled_distances(x: Tensor, x_obs: Tensor, scale: Tensor) -> Tensor:
    """``(N,)`` float64 distances of ``x (N, K)`` to ``x_obs (K,)`` after dividing by ``scale (K,)``.

    Rows with NaN or infinity get ``+inf``.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    x_obs = torch.as_tensor(x_obs, dtype=torch.float64).reshape(-1)
    if x.ndim != 2 or x.shape[1] != x_obs.shape[0]:
        raise SBIError(f"The observation has {x_obs.shape[0]} numbers but the simulations have shape {tuple(x.shape)}.")
    d = (((x - x_obs) / torch.as_tensor(scale, dtype=torch.float64)) ** 2).sum(1).sqrt()
    return torch.where(torch.isfinite(x).all(1), d, torch.tensor(float("inf"), dtype=torch.float64))

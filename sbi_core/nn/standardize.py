"""Z-scoring with statistics of the training data, written once for every network.

Each network of :mod:`sbi_core.nn` sees its inputs standardised,
``(v - m) / s`` per column, with ``m`` and ``s`` the column mean and standard
deviation of the first round's training pairs (:func:`zscore_stats`);
:class:`Standardize` keeps them as buffers, so they travel with the network's
state. The flows (:mod:`.flows`), the ratio classifier (:mod:`.ratio_net`) and
the vector fields (:mod:`.vector_field`) all use these two.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["zscore_stats", "Standardize"]


def zscore_stats(data: Tensor, min_std: float = 1e-6) -> tuple[Tensor, Tensor]:
    """Column mean and standard deviation of ``data: (N, F)``.

    Columns that are (nearly) constant get a standard deviation of 1, so that
    z-scoring leaves them finite instead of dividing by zero.
    """
    mean = data.mean(0)
    std = data.std(0) if data.shape[0] > 1 else torch.ones(data.shape[1])
    std = torch.where(std > min_std, std, torch.ones_like(std))
    return mean, std


class Standardize(nn.Module):
    """``x -> (x - mean) / std`` with statistics kept as buffers (``inverse`` maps back)."""

    def __init__(self, mean: Tensor, std: Tensor):
        super().__init__()
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def inverse(self, z: Tensor) -> Tensor:
        return z * self.std + self.mean

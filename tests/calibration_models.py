"""A conjugate Gaussian model with an exact posterior, and distorted versions of it, for the calibration tests.

theta ~ N(0, I_D), x | theta ~ N(theta, s^2 I_D)  =>  theta | x ~ N(x / (1 + s^2), s^2 / (1 + s^2) I_D).

``GaussianPosterior(scale=0.5)`` is that posterior shrunk 0.5x around its
mean (overconfident), ``scale=2`` widened, ``shift=b`` moved by ``b`` in every
coordinate (biased); ``log_prob`` is the density of the distorted posterior.
"""

from __future__ import annotations

import math

import torch

NOISE = 0.5  # s


class GaussianPosterior:
    """The exact (or a distorted) posterior; ``.sample((n,), x=..., seed=...)`` and ``.log_prob(theta, x=...)``."""

    def __init__(self, scale: float = 1.0, shift: float = 0.0, noise: float = NOISE):
        self.scale, self.shift, self.noise = scale, shift, noise

    def mean_std(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        x = torch.as_tensor(x, dtype=torch.float32).reshape(-1)
        s2 = self.noise**2
        return x / (1 + s2) + self.shift, math.sqrt(s2 / (1 + s2)) * self.scale

    def sample(self, sample_shape, x, seed=None):
        mean, std = self.mean_std(x)
        g = torch.Generator()
        g.manual_seed(seed) if seed is not None else g.seed()
        return mean + std * torch.randn(*sample_shape, len(mean), generator=g)

    def log_prob(self, theta, x):
        mean, std = self.mean_std(x)
        z = (torch.as_tensor(theta) - mean) / std
        return (-0.5 * z**2 - math.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)


class SamplesOnly:
    """The same posterior without ``log_prob`` (as for ABC): HPD coverage must fall back to a KDE."""

    def __init__(self, posterior: GaussianPosterior):
        self._posterior = posterior

    def sample(self, sample_shape, x, seed=None):
        return self._posterior.sample(sample_shape, x=x, seed=seed)


def gaussian_datasets(n: int, dim: int = 2, seed: int = 0, noise: float = NOISE) -> tuple[torch.Tensor, torch.Tensor]:
    """``(thetas (n, dim), xs (n, dim))`` from the prior and the simulator."""
    g = torch.Generator().manual_seed(seed)
    thetas = torch.randn(n, dim, generator=g)
    return thetas, thetas + noise * torch.randn(n, dim, generator=g)

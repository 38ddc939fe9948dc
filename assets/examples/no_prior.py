"""Exponential decay without a PRIOR: set the prior in the prior editor."""

import numpy as np


def simulate(theta):
    rate = theta[:, :1]
    t = np.linspace(0.1, 2.0, 5)
    return np.exp(-rate * t) + 0.01 * np.random.randn(theta.shape[0], 5)

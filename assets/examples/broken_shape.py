"""Broken on purpose: drops the first simulation, so one row is missing."""

import numpy as np

PRIOR = [{"name": "mu", "dist": "normal", "loc": 0, "scale": 1}]


def simulate(theta):
    x = np.random.normal(theta[:, 0], 1.0)
    return x[1:, None]  # should be x[:, None]

"""Broken on purpose: a missing closing parenthesis (a syntax error)."""

import numpy as np

PRIOR = [{"name": "mu", "dist": "normal", "loc": 0, "scale": 1}]


def simulate(theta):
    return np.random.normal(theta[:, 0], 1.0, size=(theta.shape[0], 1)

"""Broken on purpose: a typo in a variable name (NameError on line 10)."""

import numpy as np

PRIOR = [{"name": "mu", "dist": "normal", "loc": 0, "scale": 1}]


def simulate(theta):
    mu = theta[:, 0]
    return np.random.normal(muu, 1.0)[:, None]

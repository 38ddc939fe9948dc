"""Broken on purpose: imports a package that is not installed."""

import not_a_real_package  # noqa: F401

PRIOR = [{"name": "mu", "dist": "normal", "loc": 0, "scale": 1}]


def simulate(theta):
    return theta

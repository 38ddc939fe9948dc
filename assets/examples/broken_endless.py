"""Broken on purpose: an endless loop (stopped by the time limit)."""

PRIOR = [{"name": "mu", "dist": "normal", "loc": 0, "scale": 1}]


def simulate(theta):
    while True:
        pass

"""A damped pendulum observed with noise.

A pendulum of length L (metres) starts at angle 0.5 rad and loses energy at
damping rate b (1/s). We record its angle at four times (0.5, 1, 1.5 and
2 seconds) with measurement noise of 0.05 rad, and want to learn L and b.
"""

import numpy as np

PRIOR = [
    {"name": "length", "dist": "uniform", "low": 0.2, "high": 2.0},
    {"name": "damping", "dist": "uniform", "low": 0.0, "high": 1.0},
]

OBSERVATION = [0.08, -0.33, -0.07, 0.21]

TIMES = np.array([0.5, 1.0, 1.5, 2.0])
G = 9.81
NOISE = 0.05


def simulate(theta):
    """theta: (n, 2) array of (length, damping) -> (n, 4) noisy angles."""
    length = theta[:, 0:1]
    damping = theta[:, 1:2]
    omega = np.sqrt(G / length)
    angle = 0.5 * np.exp(-damping * TIMES) * np.cos(omega * TIMES)
    return angle + NOISE * np.random.normal(size=angle.shape)

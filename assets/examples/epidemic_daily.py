"""An epidemic in a town of 1,000, counted day by day.

Each day every infected person meets others; a susceptible person catches the
disease with a probability that grows with the number infected (contact rate
beta), and each infected person recovers with probability gamma. We record how
many people are ill on each of 60 days and want to learn beta and gamma.

Written the way tutorials write it: one parameter set in, the whole series out.
DATA_SHAPE says the 60 numbers are one series, so the app draws them as a curve
and a small network learns a summary of it while the posterior trains.
"""

import numpy as np

PRIOR = [
    {"name": "beta", "dist": "uniform", "low": 0.1, "high": 1.0},
    {"name": "gamma", "dist": "uniform", "low": 0.05, "high": 0.5},
]

# 60 days observed (simulated at beta = 0.5, gamma = 0.15)
OBSERVATION = [4, 5, 10, 15, 19, 26, 36, 43, 53, 82, 100, 122, 153, 172, 210, 244, 274, 309, 322, 331,
               316, 318, 306, 279, 255, 239, 228, 217, 192, 169, 160, 138, 123, 112, 96, 81, 66, 60, 50, 43,
               36, 30, 26, 25, 20, 20, 19, 19, 15, 14, 12, 8, 8, 6, 5, 4, 4, 4, 2, 2]

DATA_SHAPE = "series"
DAYS = 60
POPULATION = 1000


def simulate(theta):
    """theta: (beta, gamma) -> 60 daily counts of people ill."""
    beta, gamma = float(theta[0]), float(theta[1])
    s, i = POPULATION - 5, 5
    ill = np.empty(DAYS)
    for day in range(DAYS):
        new = np.random.binomial(s, 1.0 - np.exp(-beta * i / POPULATION))
        recovered = np.random.binomial(i, gamma)
        s, i = s - new, i + new - recovered
        ill[day] = i
    return ill

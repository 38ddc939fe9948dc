"""A biased coin, written one parameter set at a time.

simulate gets ONE parameter set (a 1-D array [p]) and returns the number of
heads in 20 flips and the longest run of heads.
"""

import random

PRIOR = [{"name": "p", "dist": "beta", "alpha": 2, "beta": 2}]
OBSERVATION = [14, 5]


def simulate(theta):
    p = theta[0]
    flips = [random.random() < p for _ in range(20)]
    longest = run = 0
    for f in flips:
        run = run + 1 if f else 0
        longest = max(longest, run)
    return [sum(flips), longest]

r"""Is the observation like the data the network was trained on? A nearest-neighbour conformal test.

A neural posterior estimator learns ``q(theta | x)`` only where it saw
simulations ``x``. Asked about an observation unlike all of them, it still
answers, often with a narrow, confident and meaningless posterior (the network
extrapolates). So before showing a posterior, compare ``x_o`` with the
training simulations ``x_1..x_n``.

**Score.** Z-score every component by the training simulations' median and
interquartile range (``IQR / 1.349``, the sd of a normal; the sd, then 1,
where that is 0), so that no component dominates by its units. The score of a
point is its Euclidean distance to its ``k``-th nearest training simulation
(``k = 5``; a training simulation's own row does not count for itself):

    s(x) = d_(k)(x; {x_1..x_n}).

The ``k``-NN radius is a local density estimate (the ball holding ``k`` of
``n`` points has radius about ``(k / (n p(x)))^{1/K}``), so a large score
means "where the training data are thin or absent", whatever the shape of
their distribution: several modes, curved or skewed clouds, and points in the
hole between modes all score correctly. A Mahalanobis distance assumes one
elliptical cloud; it would call the empty middle between two modes typical,
which is why it is not used.

**Calibration.** ``m`` training simulations chosen at random (``m <=``
:data:`NUM_CALIBRATION`) are scored against all the others. If ``x_o`` were
one more draw from the distribution the training simulations came from, its
score and theirs would be exchangeable, and

    p = (1 + #{j : s_j >= s(x_o)}) / (m + 1)

would be a valid p-value (split/full conformal inference, Vovk et al. 2005;
leaving ``x_o`` out of the calibration points' neighbours only makes their
scores larger, so ``p`` errs on the safe side). The check warns when
``p <= max(level, 1 / (m + 1))``: with :data:`LEVEL` ``= 0.001`` that is an
observation farther from the training data than 99.9 % of the training
simulations are from the rest, a false alarm for one typical observation in a
thousand (with fewer than 999 calibration points, only when it is farther
than every one of them: a rate of ``1 / (m + 1)``). Any distribution of
``x``, any ``K``: nothing is assumed but exchangeability.

For a sequential run the training simulations are every round's (the network
of round ``r`` trained on rounds ``1..r``), so "trained on" means exactly that.

**Which components.** Per component ``c`` the result keeps the z-score and
whether ``x_o[c]`` lies beyond the training range ``[min_i x_ic, max_i x_ic]``
(by how many scale units); the message names those furthest beyond, or says
that every number is in range and only their combination is new.

The robust z-scoring, the k-NN distances and the conformal p-value are
:mod:`sbi_core.diagnostics.conformal`'s, shared with the misspecification test
(:mod:`sbi_core.diagnostics.misspecification`, which asks the same question of the
model rather than the network, and says which numbers are to blame).

**Cost.** Fitting computes ``m x n`` distances (``m = 1000``, ``n = 10,000``,
``K = 100``: a 1000 x 10,000 matrix product, well under a second), done once
per run; checking one observation is ``n`` distances (milliseconds), fast
enough for a slider. More than :data:`MAX_REFERENCE` training simulations are
subsampled at random first (a random subset keeps the exchangeability).

Example:

>>> import torch, sbi_core
>>> sim = sbi_core.get_simulator("two_moons")
>>> x = sim.simulate(sim.prior.sample((2000,), generator=torch.Generator().manual_seed(0)), seed=1)
>>> support = TrainingSupport.fit(x, seed=0)
>>> support.check(sim.default_observation).warn, support.check(sim.default_observation + 50).warn
(False, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from sbi_core.diagnostics.conformal import as_rows, conformal_p_value, knn_distances, robust_scale
from sbi_core.errors import SBIError

__all__ = ["LEVEL", "NEIGHBOURS", "NUM_CALIBRATION", "MAX_REFERENCE", "MIN_TRAINING", "ComponentOffset",
           "OODCheck", "TrainingSupport", "ood_check"]

LEVEL = 0.001  # warn at p <= LEVEL (or below every calibration score when there are too few)
NEIGHBOURS = 5  # k of the k-NN score
NUM_CALIBRATION = 1000  # training simulations scored against the rest
MAX_REFERENCE = 20_000  # training simulations kept as neighbours (a random subset beyond this)
MIN_TRAINING = 20  # finite training simulations below which the check cannot tell
_NAMED = 3  # components named in the message at most


def _kth_distance(z: np.ndarray, ref: np.ndarray, ref_sq: np.ndarray, k: int,
                  exclude: Optional[np.ndarray] = None) -> np.ndarray:
    """``(len(z),)``: distance of each row of ``z (m, K)`` to its ``k``-th nearest row of ``ref (n, K)``.

    ``exclude (m,)``: the index in ``ref`` of each row itself (left out of its own neighbours).
    """
    return knn_distances(z, ref, ref_sq, k, exclude=exclude)[:, k - 1]


@dataclass(frozen=True)
class ComponentOffset:
    """Observation component ``index`` against the training range.

    ``z``: ``(value - median) / scale``; ``side``: ``"above"`` / ``"below"`` the range, or ``None``
    inside it; ``excess``: how far beyond the range, in scale units (0 inside).
    """

    index: int
    label: str
    value: float
    low: float
    high: float
    z: float
    side: Optional[str]
    excess: float

    def words(self) -> str:
        """``"x1 = 50.3 lies beyond every training simulation (they reach at most 1.23)"``."""
        if self.side == "above":
            return f"{self.label} = {self.value:.4g} lies beyond every training simulation (they reach at most " \
                   f"{self.high:.4g})"
        if self.side == "below":
            return f"{self.label} = {self.value:.4g} lies beyond every training simulation (they go down to " \
                   f"{self.low:.4g})"
        return f"{self.label} = {self.value:.4g} ({self.z:+.1f} spreads from the middle of the training simulations)"


@dataclass(frozen=True)
class OODCheck:
    """The verdict on one observation; :attr:`message` says it in words.

    ``p_value``: the conformal p-value (module docstring); ``statistic``: the observation's score
    (z-scored distance to its ``k``-th nearest training simulation); ``threshold``: the level it is
    compared with; ``warn``: ``p_value <= threshold``; ``components``: one :class:`ComponentOffset`
    per component, furthest beyond the training range first.
    """

    p_value: float
    statistic: float
    threshold: float
    warn: bool
    num_training: int
    num_calibration: int
    components: tuple[ComponentOffset, ...]
    message: str

    @property
    def beyond(self) -> tuple[ComponentOffset, ...]:
        """The components outside the training range, furthest first."""
        return tuple(c for c in self.components if c.side is not None)


@dataclass(frozen=True)
class TrainingSupport:
    """What the test keeps of the training simulations (built by :meth:`fit`, then :meth:`check` each observation).

    ``centre``, ``scale``, ``low``, ``high``: ``(K,)`` per component; ``reference``: ``(n, K)`` z-scored
    training simulations; ``calibration``: ``(m,)`` their held-out scores.
    """

    centre: np.ndarray
    scale: np.ndarray
    low: np.ndarray
    high: np.ndarray
    reference: np.ndarray
    reference_sq: np.ndarray
    calibration: np.ndarray
    neighbours: int
    num_training: int

    @classmethod
    def fit(cls, x, neighbours: int = NEIGHBOURS, num_calibration: int = NUM_CALIBRATION, seed: int = 0,
            max_reference: int = MAX_REFERENCE) -> "TrainingSupport":
        """Z-score the training simulations ``x (n, K)`` and score ``num_calibration`` of them against the rest.

        Rows with NaN or infinity are left out. ``seed`` picks the calibration rows (and the subset when
        there are more than ``max_reference``; a ``numpy`` Generator, the global state is untouched).
        Raises :class:`~sbi_core.errors.SBIError` with fewer than :data:`MIN_TRAINING` finite rows.
        """
        a = as_rows(x, "training simulations")
        a = a[np.isfinite(a).all(1)]
        if len(a) < max(MIN_TRAINING, neighbours + 1):
            raise SBIError(f"Only {len(a)} finite training simulations: the out-of-distribution check needs at "
                           f"least {max(MIN_TRAINING, neighbours + 1)}.")
        rng = np.random.default_rng(int(seed))
        if len(a) > max_reference:
            a = a[rng.choice(len(a), size=int(max_reference), replace=False)]
        centre, scale = robust_scale(a)
        z = (a - centre) / scale
        z_sq = (z ** 2).sum(1)
        m = min(int(num_calibration), len(z))
        rows = rng.choice(len(z), size=m, replace=False)
        cal = _kth_distance(z[rows], z, z_sq, neighbours, exclude=rows)
        return cls(centre, scale, a.min(0), a.max(0), z, z_sq, np.sort(cal), int(neighbours), len(z))

    @property
    def num_calibration(self) -> int:
        return len(self.calibration)

    def check(self, x_obs, level: float = LEVEL, labels: Optional[Sequence[str]] = None) -> OODCheck:
        """Test ``x_obs (K,)`` against the training simulations (see the module docstring).

        ``labels``: ``K`` component names for the message (``x1``, ``x2``, ... otherwise).
        """
        obs = as_rows(x_obs, "observation").reshape(-1)
        k = len(self.centre)
        if obs.shape[0] != k:
            raise SBIError(f"The observation has {obs.shape[0]} numbers but the training simulations have {k}.")
        if not np.isfinite(obs).all():
            raise SBIError("The observation contains NaN or infinite values; give finite numbers.")
        z = (obs - self.centre) / self.scale
        stat = float(_kth_distance(z[None, :], self.reference, self.reference_sq, self.neighbours)[0])
        m = self.num_calibration
        p = conformal_p_value(self.calibration, stat)  # (1 + #{s_j >= stat}) / (m + 1)
        threshold = max(float(level), 1.0 / (m + 1))
        names = list(labels) if labels is not None and len(labels) == k else [f"x{c + 1}" for c in range(k)]
        comps = self._components(obs, z, names)
        warn = p <= threshold
        return OODCheck(p, stat, threshold, warn, self.num_training, m, comps,
                        _message(warn, p, stat > self.calibration[-1], m, comps))

    def _components(self, obs: np.ndarray, z: np.ndarray, names: list) -> tuple[ComponentOffset, ...]:
        """Each component against the training range, furthest beyond it (then largest ``|z|``) first."""
        out = []
        for c in range(len(obs)):
            side = "above" if obs[c] > self.high[c] else "below" if obs[c] < self.low[c] else None
            excess = (obs[c] - self.high[c] if side == "above" else self.low[c] - obs[c] if side else 0.0)
            out.append(ComponentOffset(c, str(names[c]), float(obs[c]), float(self.low[c]), float(self.high[c]),
                                       float(z[c]), side, float(excess / self.scale[c])))
        return tuple(sorted(out, key=lambda o: (-o.excess, -abs(o.z))))


def _message(warn: bool, p: float, beyond_all: bool, m: int, comps: Sequence[ComponentOffset]) -> str:
    """The verdict in plain words: what it means and what to do."""
    if not warn:
        return (f"The observation is like the simulations the network was trained on (p = {p:.2g}: "
                f"{p:.1%} of {m:,} training simulations lie at least as far from the others).")
    than = (f"than every one of {m:,} training simulations is from the others" if beyond_all
            else f"than {1 - p:.1%} of the training simulations are from the others")
    parts = [f"This observation is unlike the simulations the network was trained on (it is farther from "
             f"them {than}): the posterior below is an extrapolation and may be confidently wrong."]
    beyond = [c for c in comps if c.side is not None]
    if beyond:
        shown = "; ".join(c.words() for c in beyond[:_NAMED])
        more = f" (and {len(beyond) - _NAMED} more)" if len(beyond) > _NAMED else ""
        parts.append(f"Furthest out: {shown}{more}.")
    else:
        parts.append("Each of its numbers lies within the range of the training simulations; it is their "
                     f"combination that is new (furthest from the middle: {comps[0].words()}).")
    parts.append("Check the observation's units and the order of its numbers, or widen the prior and train again.")
    return " ".join(parts)


def ood_check(x_train, x_obs, level: float = LEVEL, labels: Optional[Sequence[str]] = None,
              seed: int = 0) -> OODCheck:
    """:meth:`TrainingSupport.fit` on ``x_train (n, K)``, then :meth:`~TrainingSupport.check` ``x_obs (K,)``."""
    return TrainingSupport.fit(x_train, seed=seed).check(x_obs, level=level, labels=labels)

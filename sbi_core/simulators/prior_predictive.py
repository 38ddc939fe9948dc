r"""Can the prior explain the observation at all? A quick prior predictive check.

Before anything is trained, simulate from the prior predictive

    theta_i ~ p(theta),   x_i ~ p(x | theta_i),   i = 1..n   (a few hundred draws),

and ask whether the observation ``x_obs`` looks like one more draw ``x ~ p(x)``.
If it does not, no parameter the prior allows reproduces the data: the
posterior piles up against the prior's edge (and a neural estimator has to
extrapolate). The fix is to widen the prior, or to check the observation.

Two tests, both on the same ``n`` simulations:

1. **Per component** ``c``: ``x_obs[c]`` against the simulations' range
   ``[min_i x_ic, max_i x_ic]`` and their central 99 % band
   ``[q_0.005, q_0.995]``. Outside the range is *outside* ("above every
   simulation"); inside the range but outside the band is the *far tail*. If
   ``x_obs ~ p(x)``, each happens with probability about ``2 / (n + 1)`` and
   ``1 %``.
2. **Jointly**: every component can be in range while the combination is
   unlike any simulation (two moons: a point inside the crescents' hole). After
   z-scoring each component by the simulations' median and interquartile
   range, the score of a point is its Euclidean distance to its ``k``-th nearest
   simulation (``k = 5``; for a simulation, its nearest *other* simulations).
   The score is a local density estimate (the ``k``-NN ball has radius about
   ``(k / (n p(x)))^{1/K}``), so under ``x_obs ~ p(x)`` the scores of ``x_obs``
   and of the simulations are exchangeable and

       p = (1 + #{i : s_i >= s_obs}) / (n + 1)

   is a valid (conformal) p-value for any shape of ``p(x)``. A Mahalanobis
   distance would assume one elliptical cloud: it calls the hole of a ring
   typical and flags the far tip of a curved, skewed or multimodal predictive
   (two moons, SLCP, the Gaussian mixture), which is why it is not used.
   ``s_obs > max_i s_i`` (``p = 1 / (n + 1)``) reads "farther from the
   simulations than any simulation is from the others": *outside*;
   ``p < 0.01``: *unusual*.

What to change. Two signals per parameter ``j``, from the prior rank
``u_ij`` of each draw among the ``n`` (an estimate of the prior CDF
``F_j(theta_ij)``) and each simulation's z-scored distance ``d_i`` to ``x_obs``:

* *edge*: the median ``u_j`` of the ``m = max(5, n / 30)`` simulations nearest
  to ``x_obs`` is above 0.85 (below 0.15): the closest the prior gets is at its
  upper (lower) end;
* *trend*: the rank correlation ``rho_j = corr(u_j, rank d)`` is at most -0.3
  (at least 0.3): larger (smaller) values bring the simulations closer, all
  over the prior, not just near the observation (this catches a parameter whose
  effect is masked near the observation by another one).

A parameter with a signal, and no two signals pointing opposite ways, should
be widened that way. When no parameter has one, the observation is the likelier
culprit.

Cost: ``n`` simulations (cached by the caller; a few milliseconds for the
built-ins at ``n = 300``) plus an ``n x n`` distance matrix. For a slow,
sandboxed uploaded simulator, pass the simulations already made with
:func:`check_observation`: with fewer than :data:`MIN_SIMULATIONS` finite ones
the check says it cannot tell rather than guessing.

Example:

>>> import sbi_core
>>> sim = sbi_core.get_simulator("projectile")
>>> narrow = sbi_core.Prior.from_spec([{"name": "v0", "dist": "uniform", "low": 5, "high": 15},
...                                   {"name": "angle", "dist": "uniform", "low": 10, "high": 80}])
>>> check = prior_predictive_check(sim, narrow, sim.default_observation)
>>> check.level, [h.name for h in check.hints], check.hints[0].direction
('outside', ['v0'], 'higher')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from sbi_core.errors import SBIError

__all__ = [
    "MIN_SIMULATIONS",
    "ComponentCheck",
    "ParameterHint",
    "PredictiveCheck",
    "check_observation",
    "prior_predictive_check",
    "observation_ranges",
]

MIN_SIMULATIONS = 20  # finite simulations below which the check says it cannot tell
NUM_SIMULATIONS = 300  # the default n
BAND = 0.99  # central band per component
NEIGHBOURS = 5  # k of the k-NN score
UNUSUAL_P = 0.01  # joint p-value below which the observation is "unusual"
EDGE = 0.15  # a parameter leans on an edge of its prior when its median rank is beyond EDGE / 1 - EDGE
TREND = 0.3  # |rank correlation| of a parameter with the distance to the observation that counts as a trend
_MAX_JOINT = 1000  # simulations used by the joint test (an n x n distance matrix)


@dataclass(frozen=True)
class ComponentCheck:
    """Observation component ``index`` against the simulations.

    ``status`` is ``"inside"``, ``"tail"`` (outside the central 99 % band, inside
    the range) or ``"outside"`` (beyond every simulation); ``side`` is
    ``"above"`` / ``"below"`` (``None`` when inside).
    """

    index: int
    label: str
    value: float
    low: float  # smallest simulation
    high: float  # largest simulation
    band_low: float
    band_high: float
    status: str
    side: Optional[str]


@dataclass(frozen=True)
class ParameterHint:
    """Parameter ``index`` leans on an edge of its prior near the observation.

    ``direction`` is ``"higher"`` or ``"lower"``: the values the data ask for;
    ``edge`` the prior's current end on that side (``None`` where it is unbounded).
    """

    index: int
    name: str
    label: str
    dist: str
    direction: str
    edge: Optional[float]

    def advice(self) -> str:
        """What to change, in words: ``"widen the prior of v0 [m/s] upwards (it ends at 15)"``.

        For an unbounded side (normal, lognormal, ...): ``"move the prior of beta towards
        higher values (or widen it)"``.
        """
        way = "upwards" if self.direction == "higher" else "downwards"
        if self.edge is not None and math.isfinite(self.edge):
            end = "ends" if self.direction == "higher" else "starts"
            return f"widen the prior of {self.label} {way} (it {end} at {self.edge:.4g})"
        return f"move the prior of {self.label} towards {self.direction} values (or widen it)"


@dataclass(frozen=True)
class PredictiveCheck:
    """The result of a prior predictive check; :meth:`message` says it in words.

    ``level``: ``"ok"``, ``"unusual"`` (a component in the far tail, or joint
    p-value < 0.01), ``"outside"`` (a component beyond every simulation, or the
    observation farther from the simulations than any of them) or ``"unknown"``
    (too few finite simulations; ``reason`` says why).
    """

    level: str
    n_simulations: int
    n_failed: int
    components: tuple[ComponentCheck, ...] = ()
    joint_pvalue: Optional[float] = None
    joint_outside: bool = False
    hints: tuple[ParameterHint, ...] = ()
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.level == "ok"

    @property
    def outside(self) -> tuple[ComponentCheck, ...]:
        return tuple(c for c in self.components if c.status == "outside")

    @property
    def tail(self) -> tuple[ComponentCheck, ...]:
        return tuple(c for c in self.components if c.status == "tail")

    def message(self) -> str:
        """One paragraph for a person: what is wrong and what to change ("" when all is well)."""
        if self.level == "ok":
            return ""
        if self.level == "unknown":
            return self.reason
        n = self.n_simulations
        parts = []
        if self.level == "outside":
            if self.outside:
                parts.append(
                    "The observation lies outside what this prior's simulations produce: "
                    + "; ".join(_beyond(c, n) for c in self.outside) + "."
                )
            else:
                parts.append(
                    f"Each number of the observation is within the range of {n} simulations from this prior, "
                    "but their combination is unlike every one of them (it is farther from its nearest "
                    "simulations than any simulation is from the others)."
                )
            parts.append("Hardly any parameter value the prior allows reproduces it, so the posterior would "
                         "pile up against the edge of the prior.")
        else:
            if self.tail:
                parts.append("The observation is unusual under this prior: "
                             + "; ".join(_in_tail(c, n) for c in self.tail) + ".")
            else:
                parts.append(f"The observation is unusual under this prior: only {self.joint_pvalue:.1%} of "
                             f"{n} simulations from it lie as far from the others.")
        if self.hints:
            fixes = [h.advice() for h in self.hints]
            parts.append("To fix it, " + _and(fixes) + ", or change the observation.")
        else:
            parts.append("No parameter leans on an edge of its prior near the observation, so check the "
                         "observation itself (its order and units), or widen the prior.")
        if self.n_failed:
            parts.append(f"({self.n_failed} simulations returned NaN or infinity and were left out.)")
        return " ".join(parts)


def _beyond(c: ComponentCheck, n: int) -> str:
    if c.side == "above":
        return f"{c.label} = {c.value:.4g} is above all {n} simulations (at most {c.high:.4g})"
    return f"{c.label} = {c.value:.4g} is below all {n} simulations (at least {c.low:.4g})"


def _in_tail(c: ComponentCheck, n: int) -> str:
    bound = c.band_high if c.side == "above" else c.band_low
    return (f"{c.label} = {c.value:.4g} is {c.side} 99 % of {n} simulations "
            f"({'above' if c.side == 'above' else 'below'} {bound:.4g})")


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _labels(labels: Optional[Sequence[str]], n: int, stem: str) -> list[str]:
    if labels is not None and len(labels) == n:
        return [str(s) for s in labels]
    return [f"{stem}{i + 1}" for i in range(n)]


def _zscore(x: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Centre by the median, scale by IQR / 1.349 (the sd of a normal); std, then 1, where that is 0."""
    med = np.median(x, axis=0)
    q25, q75 = np.quantile(x, [0.25, 0.75], axis=0)
    scale = (q75 - q25) / 1.349
    std = x.std(axis=0)
    scale = np.where(scale > 0, scale, np.where(std > 0, std, 1.0))
    return [(a - med) / scale for a in (x, *others)]


def _knn_scores(z: np.ndarray, z_obs: np.ndarray, k: int) -> tuple[np.ndarray, float, np.ndarray]:
    """Leave-one-out k-NN distance of every simulation, that of the observation, and its distances."""
    d_sims = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d_sims, np.inf)
    k = min(k, len(z) - 1)
    s = np.partition(d_sims, k - 1, axis=1)[:, k - 1]
    d_obs = np.sqrt(((z - z_obs) ** 2).sum(-1))
    s_obs = float(np.partition(d_obs, k - 1)[k - 1])
    return s, s_obs, d_obs


def _component_checks(x: np.ndarray, obs: np.ndarray, olabs: Sequence[str]) -> list[ComponentCheck]:
    """Where each component of ``obs (K,)`` falls among the simulations ``x (n, K)``: ``outside``
    their range, in the ``tail`` (outside the central ``BAND``), or ``inside``."""
    lo, hi = x.min(axis=0), x.max(axis=0)
    b_lo, b_hi = np.quantile(x, [(1 - BAND) / 2, (1 + BAND) / 2], axis=0)
    comps = []
    for c in range(x.shape[1]):
        v = float(obs[c])
        if v > hi[c] or v < lo[c]:
            status, side = "outside", "above" if v > hi[c] else "below"
        elif v > b_hi[c] or v < b_lo[c]:
            status, side = "tail", "above" if v > b_hi[c] else "below"
        else:
            status, side = "inside", None
        comps.append(ComponentCheck(c, olabs[c], v, float(lo[c]), float(hi[c]), float(b_lo[c]),
                                    float(b_hi[c]), status, side))
    return comps


def _level(comps: Sequence[ComponentCheck], p: float, joint_outside: bool) -> str:
    """The overall verdict: ``outside``, ``unusual`` or ``ok``, from the components and the joint score."""
    if any(c.status == "outside" for c in comps) or joint_outside:
        return "outside"
    if any(c.status == "tail" for c in comps) or p < UNUSUAL_P:
        return "unusual"
    return "ok"


def check_observation(
    x,
    x_obs,
    theta=None,
    prior=None,
    obs_labels: Optional[Sequence[str]] = None,
    param_labels: Optional[Sequence[str]] = None,
) -> PredictiveCheck:
    """Check ``x_obs (K,)`` against simulations ``x (n, K)`` made at prior draws ``theta (n, D)``.

    ``theta`` and ``prior`` (a :class:`~sbi_core.stats.priors.Prior`) are optional:
    with them the result names the parameters to widen (:class:`ParameterHint`).
    Rows of ``x`` with NaN or infinity are left out and counted.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(len(x), -1) if x.ndim != 2 else x
    obs = np.asarray(x_obs, dtype=np.float64).reshape(-1)
    if x.shape[1] != obs.shape[0]:
        raise SBIError(f"The observation has {obs.shape[0]} numbers but the simulations have {x.shape[1]}.")
    finite = np.isfinite(x).all(axis=1)
    n_failed = int((~finite).sum())
    x = x[finite]
    th = None if theta is None else np.asarray(theta, dtype=np.float64).reshape(len(finite), -1)[finite]
    n, k = x.shape
    if n < MIN_SIMULATIONS:
        why = (f"Only {n} of {n + n_failed} simulations from the prior gave finite numbers, too few to tell "
               "whether the observation is among what the prior produces.")
        return PredictiveCheck("unknown", n, n_failed, reason=why)
    if not np.isfinite(obs).all():
        return PredictiveCheck("unknown", n, n_failed, reason="The observation has NaN or infinite numbers.")
    comps = _component_checks(x, obs, _labels(obs_labels, k, "x"))
    # joint: k-NN score of the observation among the simulations' leave-one-out scores
    sub = slice(None) if n <= _MAX_JOINT else np.linspace(0, n - 1, _MAX_JOINT).astype(int)
    z, z_obs = _zscore(x[sub], obs[None, :])
    s, s_obs, d_obs = _knn_scores(z, z_obs[0], NEIGHBOURS)
    p = float((1 + (s >= s_obs).sum()) / (len(s) + 1))
    joint_outside = bool(s_obs > s.max())
    level = _level(comps, p, joint_outside)
    hints: tuple[ParameterHint, ...] = ()
    if level != "ok" and th is not None and prior is not None:
        hints = _hints(th[sub], d_obs, prior, param_labels)
    return PredictiveCheck(level, n, n_failed, tuple(comps), p, joint_outside, hints)


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho: the correlation of the ranks (0 when either has no spread)."""
    ra, rb = a.argsort().argsort().astype(float), b.argsort().argsort().astype(float)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def _hints(theta: np.ndarray, d_obs: np.ndarray, prior, param_labels) -> tuple[ParameterHint, ...]:
    """Parameters with an edge or trend signal (module docstring), and which way to widen them."""
    n = len(theta)
    m = max(NEIGHBOURS, n // 30)
    near = np.argsort(d_obs)[:m]
    ranks = theta.argsort(axis=0).argsort(axis=0) / max(n - 1, 1)  # empirical prior CDF at each draw
    labs = _labels(param_labels, theta.shape[1], "theta")
    out = []
    for j, marg in enumerate(prior.marginals):
        if marg.is_fixed or np.ptp(theta[:, j]) == 0:
            continue
        u = float(np.median(ranks[near, j]))
        rho = _rank_correlation(theta[:, j], d_obs)
        signals = set()
        if u > 1 - EDGE or u < EDGE:
            signals.add("higher" if u > 1 - EDGE else "lower")
        if abs(rho) >= TREND:
            signals.add("higher" if rho < 0 else "lower")
        if len(signals) == 1:
            direction = signals.pop()
            lo, hi = marg.support
            edge = hi if direction == "higher" else lo
            edge = edge if math.isfinite(edge) and not (direction == "lower" and edge == 0 and
                                                       marg.dist in ("lognormal", "gamma")) else None
            out.append(ParameterHint(j, marg.name, labs[j], marg.dist, direction, edge))
    return tuple(out)


def prior_predictive_check(
    simulator,
    prior,
    x_obs,
    num_simulations: int = NUM_SIMULATIONS,
    seed: int = 0,
    obs_labels: Optional[Sequence[str]] = None,
    param_labels: Optional[Sequence[str]] = None,
) -> PredictiveCheck:
    """Simulate ``num_simulations`` draws from ``prior`` and :func:`check_observation` ``x_obs``.

    ``simulator`` is a :class:`~sbi_core.simulators.Simulator` (its labels are
    used unless given) or any callable ``Tensor[n, D] -> Tensor[n, K]``. Its own
    generator is seeded (``seed``; global RNG state is untouched). A simulator
    that fails with an :class:`~sbi_core.errors.SBIError` gives level
    ``"unknown"`` with its message as the reason.
    """
    import torch

    g = torch.Generator().manual_seed(int(seed))
    theta = prior.sample((int(num_simulations),), generator=g)
    try:
        if hasattr(simulator, "simulate"):
            x = simulator.simulate(theta, seed=int(seed) + 1)
        else:
            x = simulator(theta)
    except SBIError as err:
        return PredictiveCheck("unknown", 0, int(num_simulations),
                               reason=f"The prior predictive check could not simulate: {err}")
    if obs_labels is None and hasattr(simulator, "obs_labels"):
        obs_labels = simulator.obs_labels()
    if param_labels is None and hasattr(simulator, "param_labels") and \
            list(getattr(simulator, "param_names", [])) == list(prior.names):
        param_labels = simulator.param_labels()
    return check_observation(np.asarray(x, dtype=np.float64), x_obs, theta.numpy(), prior,
                             obs_labels, param_labels)


def observation_ranges(x, x_obs=None, coverage: float = 0.98, pad: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Per component, a range for choosing an observation: ``(low (K,), high (K,))``.

    The central ``coverage`` band of the simulations ``x (n, K)`` (finite rows).
    With ``x_obs``, each end is moved out where needed so that it lies at least
    ``pad`` times the range's width beyond the observation: an observation near
    or outside the edge of the simulations never sits pinned at the end of a
    slider. A component with no spread gets a width of 1.
    """
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a).all(axis=1)]
    if len(a) == 0:
        raise SBIError("There are no finite simulations to take the ranges from.")
    tail = (1 - coverage) / 2
    lo, hi = np.quantile(a, tail, axis=0), np.quantile(a, 1 - tail, axis=0)
    width = np.where(hi > lo, hi - lo, 1.0)
    if x_obs is None:
        return np.where(hi > lo, lo, lo - width / 2), np.where(hi > lo, hi, hi + width / 2)
    obs = np.asarray(x_obs, dtype=np.float64).reshape(-1)
    width = np.maximum(hi, obs) - np.minimum(lo, obs)
    width = np.where(width > 0, width, 1.0)
    return np.minimum(lo, obs - pad * width), np.maximum(hi, obs + pad * width)

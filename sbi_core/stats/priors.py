"""Priors: products of independent, named one-dimensional marginals.

A prior over ``D`` parameters is

    p(theta) = prod_{i=1..D} p_i(theta_i),

where each ``p_i`` is one of a few families a scientist can reason about:

=========== ========================================= ==========================
family      numbers                                   support
=========== ========================================= ==========================
uniform     low < high                                [low, high]
normal      loc, scale > 0                            R
lognormal   loc, scale > 0  (of log theta)            (0, inf)
beta        alpha > 0, beta > 0, low < high           [low, high], Beta rescaled
gamma       concentration > 0, rate > 0               (0, inf)
halfnormal  scale > 0                                 [0, inf)
fixed       value                                     {value}  (held constant)
=========== ========================================= ==========================

A *fixed* parameter is a point mass: it is always sampled at its value and its
log density is 0 there and ``-inf`` elsewhere. Estimators learn only the free
parameters (``Prior.free_mask``) and put fixed ones back when they sample.

Specs are plain JSON: a list of ``{"name": ..., "dist": ..., <numbers>}``.
Every malformed spec raises :class:`PriorSpecError`, whose message names the
parameter and says what to fix.
"""

from __future__ import annotations


import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import torch
from torch import Tensor
from torch.distributions import Beta, Gamma, HalfNormal, LogNormal, Normal

from sbi_core.stats.prior_spec import FAMILIES, PriorSpecError, check_marginals, check_spec_shape, parse_marginal

__all__ = ["Prior", "Marginal", "PriorSpecError", "FAMILIES"]


# central mass shown for unbounded marginals when a plot needs finite bounds
PLOT_MASS = 0.999


@dataclass(frozen=True)
class Marginal:
    """One named, validated one-dimensional prior marginal."""

    name: str
    dist: str
    params: dict[str, float]

    @classmethod
    def from_spec(cls, spec: Any, index: int = 0) -> "Marginal":
        """The marginal of one entry of a prior spec (checked by :func:`~sbi_core.stats.prior_spec.parse_marginal`)."""
        return cls(*parse_marginal(spec, index))

    def to_spec(self) -> dict[str, Any]:
        return {"name": self.name, "dist": self.dist, **self.params}

    # ---- support -------------------------------------------------------
    @property
    def support(self) -> tuple[float, float]:
        """Closed interval containing the support (may be infinite)."""
        p = self.params
        if self.dist in ("uniform", "beta"):
            return p["low"], p["high"]
        if self.dist in ("lognormal", "gamma", "halfnormal"):
            return 0.0, math.inf
        if self.dist == "fixed":
            return p["value"], p["value"]
        return -math.inf, math.inf

    @property
    def is_fixed(self) -> bool:
        return self.dist == "fixed"

    def contains(self, values: Tensor) -> Tensor:
        """Boolean mask of ``values`` (any shape) inside the support."""
        lo, hi = self.support
        if self.is_fixed:
            return values == lo
        ok = torch.isfinite(values)
        if self.dist in ("lognormal", "gamma"):
            return ok & (values > 0)
        return ok & (values >= lo) & (values <= hi)

    # ---- distribution --------------------------------------------------
    def _torch(self):
        """The torch distribution of a normal, lognormal, beta (on ``[0, 1]``), gamma or half-normal
        marginal (``None`` for the others), built once per marginal: :meth:`log_prob` runs in every MCMC
        step. Its parameters were checked by :func:`~sbi_core.stats.prior_spec.parse_marginal` and
        :meth:`log_prob` passes it only points of the support, so torch checks neither again."""
        if "_torch_dist" not in self.__dict__:  # a frozen dataclass: cached beside its fields
            object.__setattr__(self, "_torch_dist", self._build_torch())
        return self.__dict__["_torch_dist"]

    def _build_torch(self):
        p = self.params
        t = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
        if self.dist == "normal":
            return Normal(t(p["loc"]), t(p["scale"]), validate_args=False)
        if self.dist == "lognormal":
            return LogNormal(t(p["loc"]), t(p["scale"]), validate_args=False)
        if self.dist == "beta":
            return Beta(t(p["alpha"]), t(p["beta"]), validate_args=False)
        if self.dist == "gamma":
            return Gamma(t(p["concentration"]), t(p["rate"]), validate_args=False)
        if self.dist == "halfnormal":
            return HalfNormal(t(p["scale"]), validate_args=False)
        return None

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` values, shape ``(n,)``, using ``generator`` if given."""
        p = self.params
        if self.dist == "fixed":
            return torch.full((n,), p["value"])
        if self.dist == "uniform":
            u = torch.rand(n, generator=generator)
            return p["low"] + (p["high"] - p["low"]) * u
        if self.dist in ("normal", "lognormal", "halfnormal"):
            z = torch.randn(n, generator=generator)
            if self.dist == "normal":
                return p["loc"] + p["scale"] * z
            if self.dist == "lognormal":
                return torch.exp(p["loc"] + p["scale"] * z)
            return p["scale"] * z.abs()
        if self.dist == "gamma":
            return _gamma(p["concentration"], n, generator) / p["rate"]
        # beta via two gammas: X/(X+Y), X~G(a), Y~G(b)
        a = _gamma(p["alpha"], n, generator)
        b = _gamma(p["beta"], n, generator)
        return p["low"] + (p["high"] - p["low"]) * a / (a + b)

    def log_prob(self, values: Tensor) -> Tensor:
        """Log density of ``values`` (any shape); ``-inf`` outside the support."""
        values = values.to(torch.float32)
        inside = self.contains(values)
        p = self.params
        if self.dist == "fixed":
            return torch.where(inside, 0.0, -math.inf)
        if self.dist == "uniform":
            lp = torch.full_like(values, -math.log(p["high"] - p["low"]))
            return torch.where(inside, lp, -math.inf)
        safe = torch.where(inside, values, torch.full_like(values, self._safe_point()))
        if self.dist == "beta":
            width = p["high"] - p["low"]
            u = ((safe - p["low"]) / width).clamp(1e-7, 1 - 1e-7)
            lp = self._torch().log_prob(u) - math.log(width)
        else:
            lp = self._torch().log_prob(safe)
        return torch.where(inside, lp, -math.inf)

    def _safe_point(self) -> float:
        lo, hi = self.support
        if math.isfinite(lo) and math.isfinite(hi):
            return 0.5 * (lo + hi)
        return 1.0 if lo == 0.0 else 0.0

    def icdf(self, q: float) -> float:
        """Quantile function (used for plotting bounds)."""
        p = self.params
        if self.dist == "fixed":
            return p["value"]
        if self.dist == "uniform":
            return p["low"] + q * (p["high"] - p["low"])
        if self.dist in ("normal", "lognormal", "halfnormal"):
            z = Normal(0.0, 1.0).icdf(torch.tensor(q if self.dist != "halfnormal" else 0.5 + q / 2))
            if self.dist == "normal":
                return p["loc"] + p["scale"] * float(z)
            if self.dist == "lognormal":
                return math.exp(p["loc"] + p["scale"] * float(z))
            return p["scale"] * float(z)
        # gamma / beta: no closed-form quantile in torch; use scipy
        from scipy import stats

        if self.dist == "gamma":
            return float(stats.gamma.ppf(q, p["concentration"], scale=1.0 / p["rate"]))
        return float(
            p["low"] + (p["high"] - p["low"]) * stats.beta.ppf(q, p["alpha"], p["beta"])
        )

    def _scipy(self):
        """The frozen scipy distribution (not for uniform or fixed)."""
        from scipy import stats

        p = self.params
        if self.dist == "normal":
            return stats.norm(p["loc"], p["scale"])
        if self.dist == "lognormal":
            return stats.lognorm(p["scale"], scale=math.exp(p["loc"]))
        if self.dist == "halfnormal":
            return stats.halfnorm(scale=p["scale"])
        if self.dist == "gamma":
            return stats.gamma(p["concentration"], scale=1.0 / p["rate"])
        return stats.beta(p["alpha"], p["beta"], loc=p["low"], scale=p["high"] - p["low"])

    def sample_between(
        self, n: int, low: float, high: float, generator: torch.Generator | None = None
    ) -> Tensor:
        """``(n,)`` draws from this marginal restricted to ``[low, high]``.

        Inverse-CDF sampling: ``u ~ U(F(low), F(high))``, ``theta = F^-1(u)``,
        which is exact for the truncated density ``p(theta) 1[low <= theta <= high] / Z``.
        Where the interval holds (numerically) no mass, draws are uniform on it.
        """
        lo, hi = max(low, self.support[0]), min(high, self.support[1])
        if self.is_fixed:
            return torch.full((n,), self.params["value"])
        if not lo < hi:
            raise ValueError(f"Parameter '{self.name}': empty interval [{low:g}, {high:g}] in the support.")
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        if self.dist == "uniform":
            return (lo + (hi - lo) * u).float()
        dist = self._scipy()
        f_lo, f_hi = dist.cdf(lo), dist.cdf(hi)
        if not f_hi - f_lo > 1e-12 and math.isfinite(lo) and math.isfinite(hi):
            return (lo + (hi - lo) * u).float()  # far in a tail: the density is flat to float precision
        values = dist.ppf(f_lo + (f_hi - f_lo) * u.numpy())
        return torch.from_numpy(values).float().clamp(lo, hi)

    def plot_bounds(self, mass: float = PLOT_MASS) -> tuple[float, float]:
        """The support box, or the central ``mass`` interval where it is unbounded."""
        lo, hi = self.support
        if self.is_fixed:
            w = max(abs(lo) * 0.1, 0.5)
            return lo - w, hi + w
        tail = (1.0 - mass) / 2
        if not math.isfinite(lo):
            lo = self.icdf(tail)
        elif self.dist in ("lognormal", "gamma"):
            lo = self.icdf(tail)
        if not math.isfinite(hi):
            hi = self.icdf(1 - tail)
        return float(lo), float(hi)

    def mean_std(self) -> tuple[float, float]:
        """Mean and standard deviation of the marginal."""
        p = self.params
        if self.dist == "fixed":
            return p["value"], 0.0
        if self.dist == "uniform":
            return 0.5 * (p["low"] + p["high"]), (p["high"] - p["low"]) / math.sqrt(12)
        if self.dist == "beta":
            a, b, w = p["alpha"], p["beta"], p["high"] - p["low"]
            m = a / (a + b)
            v = a * b / ((a + b) ** 2 * (a + b + 1))
            return p["low"] + w * m, w * math.sqrt(v)
        d = self._torch()
        return float(d.mean), float(d.stddev)


def _gamma(concentration: float, n: int, generator: torch.Generator | None) -> Tensor:
    """Gamma(concentration, 1) samples with an explicit generator.

    Marsaglia & Tsang (2000): for k >= 1, d = k - 1/3, c = 1/sqrt(9d); draw
    z ~ N(0,1), v = (1 + c z)^3, accept if log u < z^2/2 + d - d v + d log v.
    For k < 1 use G(k) = G(k + 1) * U^(1/k).
    """
    k = concentration
    boost = None
    if k < 1:
        boost = torch.rand(n, generator=generator).clamp_min(1e-12) ** (1.0 / k)
        k = k + 1.0
    d = k - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = torch.empty(n)
    filled = 0
    while filled < n:
        m = max(2 * (n - filled), 16)
        z = torch.randn(m, generator=generator)
        v = (1 + c * z) ** 3
        u = torch.rand(m, generator=generator).clamp_min(1e-12)
        ok = (v > 0) & (torch.log(u) < 0.5 * z**2 + d - d * v + d * torch.log(v.clamp_min(1e-12)))
        good = (d * v)[ok][: n - filled]
        out[filled : filled + len(good)] = good
        filled += len(good)
    return out * boost if boost is not None else out


class Prior:
    """Product of independent named marginals over ``D`` parameters.

    Build it with :meth:`from_spec`; ``theta`` tensors have shape ``(N, D)``
    with columns in the order of :attr:`names`.
    """

    def __init__(self, marginals: Sequence[Marginal]):
        check_marginals([(m.name, m.dist) for m in marginals])
        self.marginals: tuple[Marginal, ...] = tuple(marginals)

    # ---- construction ---------------------------------------------------
    @classmethod
    def from_spec(cls, spec: Iterable[dict[str, Any]] | "Prior") -> "Prior":
        """Build from a JSON-like list of marginal specs (see module docstring)."""
        if isinstance(spec, Prior):
            return spec
        check_spec_shape(spec)
        return cls([Marginal.from_spec(s, i) for i, s in enumerate(spec)])

    @classmethod
    def uniform_box(cls, names: Sequence[str], low: float, high: float) -> "Prior":
        return cls.from_spec(
            [{"name": n, "dist": "uniform", "low": low, "high": high} for n in names]
        )

    def to_spec(self) -> list[dict[str, Any]]:
        return [m.to_spec() for m in self.marginals]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Prior) and self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash(repr(self.to_spec()))

    def __repr__(self) -> str:
        return f"Prior({self.to_spec()!r})"

    # ---- shape -----------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [m.name for m in self.marginals]

    @property
    def dim(self) -> int:
        return len(self.marginals)

    @property
    def free_mask(self) -> Tensor:
        """Bool ``(D,)``: True for parameters that are not fixed."""
        return torch.tensor([not m.is_fixed for m in self.marginals])

    @property
    def fixed_values(self) -> Tensor:
        """``(D,)`` with each fixed parameter's value (0 for free ones)."""
        return torch.tensor(
            [m.params["value"] if m.is_fixed else 0.0 for m in self.marginals]
        )

    # ---- distribution ----------------------------------------------------
    def sample(
        self, sample_shape: tuple[int, ...] = (1,), generator: torch.Generator | None = None
    ) -> Tensor:
        """Draw ``theta`` of shape ``(*sample_shape, D)``."""
        shape = tuple(torch.Size(sample_shape))
        n = math.prod(shape) if shape else 1
        cols = [m.sample(n, generator) for m in self.marginals]
        return torch.stack(cols, dim=-1).reshape(*shape, self.dim)

    def sample_in_box(
        self, n: int, low: Tensor, high: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """``(n, D)`` draws from the prior restricted to the box ``[low, high]`` (each ``(D,)``).

        The marginals are independent, so the restricted prior is the product
        of the restricted marginals (:meth:`Marginal.sample_between`).
        """
        cols = [m.sample_between(n, float(lo), float(hi), generator) for m, lo, hi in zip(self.marginals, low, high)]
        return torch.stack(cols, dim=-1)

    def box_mass(self, low: Tensor, high: Tensor) -> float:
        """Prior probability of the box ``[low, high]`` (each ``(D,)``)."""
        mass = 1.0
        for m, lo, hi in zip(self.marginals, low.tolist(), high.tolist()):
            if m.is_fixed:
                continue
            a, b = max(lo, m.support[0]), min(hi, m.support[1])
            if m.dist == "uniform":
                mass *= max(b - a, 0.0) / (m.params["high"] - m.params["low"])
            else:
                dist = m._scipy()
                mass *= max(float(dist.cdf(b) - dist.cdf(a)), 0.0)
        return mass

    def log_prob(self, theta: Tensor) -> Tensor:
        """Joint log density, ``theta: (..., D) -> (...)``; ``-inf`` outside support."""
        theta = torch.as_tensor(theta, dtype=torch.float32)
        self._check(theta)
        return sum(m.log_prob(theta[..., i]) for i, m in enumerate(self.marginals))

    def support_contains(self, theta: Tensor) -> Tensor:
        """Bool ``(...)``: whether each ``theta: (..., D)`` lies in the support."""
        theta = torch.as_tensor(theta, dtype=torch.float32)
        self._check(theta)
        ok = torch.ones(theta.shape[:-1], dtype=torch.bool)
        for i, m in enumerate(self.marginals):
            ok &= m.contains(theta[..., i])
        return ok

    def _check(self, theta: Tensor) -> None:
        if theta.ndim == 0 or theta.shape[-1] != self.dim:
            raise ValueError(
                f"theta must have {self.dim} columns ({', '.join(self.names)}), "
                f"got shape {tuple(theta.shape)}."
            )

    # ---- summaries --------------------------------------------------------
    @property
    def bounds(self) -> Tensor:
        """``(D, 2)`` plotting bounds: the support, or the central 99.9 %."""
        return torch.tensor([m.plot_bounds() for m in self.marginals])

    @property
    def support_bounds(self) -> Tensor:
        """``(D, 2)`` support intervals (may contain +-inf)."""
        return torch.tensor([m.support for m in self.marginals])

    @property
    def mean(self) -> Tensor:
        return torch.tensor([m.mean_std()[0] for m in self.marginals])

    @property
    def stddev(self) -> Tensor:
        return torch.tensor([m.mean_std()[1] for m in self.marginals])

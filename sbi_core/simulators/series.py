r"""Series and trials simulators: one simulation is a whole time series, or a set of repeated trials.

Every model here returns its simulations *flat*, ``x: (N, K)``, and declares how the ``K``
numbers fold (:class:`~sbi_core.stats.shapes.DataShape`): a series ``(1, T)`` is its ``T``
values in time order; trials ``(M, D)`` are trial 1's ``D`` numbers, then trial 2's, and so on.

AR(1) series (D = 2, K = 100, series (1, 100))
    x_1 ~ N(0, sigma^2 / (1 - phi^2))  (the stationary start),
    x_t = phi x_{t-1} + sigma eps_t,  eps_t ~ N(0, 1),  t = 2..100;
    priors phi ~ U(-0.95, 0.95), sigma ~ U(0.2, 2).
    Exact likelihood (Hamilton 1994, Time Series Analysis, section 5.2), with
        Q(phi) = (1 - phi^2) x_1^2 + sum_{t=2}^T (x_t - phi x_{t-1})^2
               = x_1^2 + sum_{t=2}^T x_t^2 - 2 phi sum_{t=2}^T x_t x_{t-1} + phi^2 sum_{t=2}^{T-1} x_t^2,
        log p(x | phi, sigma) = -T/2 log(2 pi) - T log sigma + 1/2 log(1 - phi^2) - Q(phi) / (2 sigma^2).
    The prior is flat on its box, so the posterior is this likelihood restricted to the box. It is
    evaluated on a 400 x 400 grid of cells (float64, log space), then on a second 400 x 400 grid
    over the cells within e^-30 of the highest one (so a narrow posterior still gets fine cells);
    a sample is a cell drawn with probability proportional to its density, and a uniform point
    inside it. For fixed sigma the phi-part is a Gaussian in phi (mean B / C, variance sigma^2 / C)
    times sqrt(1 - phi^2), truncated to the box; integrating sigma out gives the marginal
        p(phi | x) oc sqrt(1 - phi^2) Q(phi)^{-k} [P(k, Q / (2 a^2)) - P(k, Q / (2 b^2))],
    k = (T - 1) / 2, P the regularised lower incomplete gamma function, (a, b) = (0.2, 2): the
    tests check the grid sampler against it.

SIR epidemic, daily counts (D = 2, K = 100, series (1, 100))
    The chain-binomial epidemic of :mod:`sbi_core.simulators.science` (same population, start,
    priors and random draws), observed as the number infected I_t on days t = 1..100 instead of
    six summary numbers. With the same theta and seed, the series is the first 100 days of the
    epidemic that the summary model summarises. No closed-form posterior.

Repeated measurements of one quantity (D = 1, K = 20, trials (20, 1))
    y_j = mu + eps_j,  eps_j ~ N(0, 1) (known noise),  j = 1..20;  prior mu ~ N(0, 2^2).
    Conjugate normal update (Gelman et al. 2013, Bayesian Data Analysis, section 2.5) from the
    n trials present (missing trials are NaN rows and carry no information):
        precision  tau_n = 1 / 2^2 + n / 1^2,   mu | y ~ N( (sum_j y_j) / tau_n,  1 / tau_n ).

Drift-diffusion model of decisions (D = 4, K = 100, trials (50, 2))
    Ratcliff (1978); Ratcliff & McKoon (2008), Neural Computation 20, 873-922. Evidence X starts at
    z a and drifts between two boundaries, 0 and a:
        dX = v dt + dW  (W a standard Wiener process: noise sd 1 per sqrt(second)),
    simulated by Euler-Maruyama with dt = 1 ms, X_{k+1} = X_k + v dt + sqrt(dt) eps_k, until the
    first step k with X_k >= a (choice 1, the "upper" answer) or X_k <= 0 (choice 0). The
    reaction time is rt = t0 + k dt (seconds). A trial still undecided after 5 s (5,000 steps) is
    cut there: rt = t0 + 5 s and the choice is the boundary it is closer to (X >= a / 2: 1).
    Each simulation is 50 independent trials (rt, choice). Priors (noise sd 1, as in HDDM,
    Wiecki et al. 2013; Ratcliff & McKoon's values, given for noise sd 0.1, times 10):
    v ~ U(-3, 3) 1/s, a ~ U(0.5, 2.5), z ~ U(0.3, 0.7), t0 ~ U(0.1, 0.5) s. Parameters outside
    their sense (a <= 0, z outside [0, 1], t0 < 0, from an edited prior) are clamped to it.
    Walkers of all simulations move together in blocks of 32 steps; those that decided drop out,
    so the cost is the total decision time, not 5 s for everyone (about 0.3 s for 1,000
    simulations of 50 trials on one thread). No closed-form posterior.

Every ``_simulate_*`` takes ``theta: (N, D)`` float32 and a ``torch.Generator`` and returns
``x: (N, K)`` float32; every ``_reference_*`` takes ``x_obs: (K,)``, ``num_samples`` and a
generator and returns ``(num_samples, D)``.

Hand-made summary statistics
    Each model also carries the summaries a scientist would compute by hand, a fixed function
    ``_summaries_*: x (N, K) -> (N, S)`` float32 registered under the model's name
    (:func:`sbi_core.nn.handmade.register_summary`; ``Simulator.handmade_summary``), which the
    ``"handmade"`` embedding reads instead of a learned summary. For trials they are computed
    over the trials present (missing trials are NaN rows), so they answer for 1 to ``M`` trials
    and do not depend on the trials' order. Each function's docstring states its summaries.

>>> sim = drift_diffusion()
>>> sim.data_shape.describe()
'up to 50 repeated trials of 2 numbers each'
>>> x = sim.simulate(sim.true_theta.repeat(3, 1), seed=0)
>>> tuple(x.shape), sim.data_shape.fold(x.numpy()).shape
((3, 100), (3, 50, 2))
>>> trials = gaussian_trials()
>>> x_obs = torch.as_tensor(trials.data_shape.observation([[1.0], [2.0], [3.0]]))  # 3 of 20 trials
>>> int(torch.isnan(x_obs).sum())
17
>>> round(float(trials.reference_posterior(x_obs, 20_000, seed=0).mean()), 1)  # 6 / 3.25 = 1.85
1.8
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sbi_core.nn.handmade import register_summary
from sbi_core.simulators.base import Simulator
from sbi_core.simulators.registry import register
from sbi_core.simulators.science import (
    _SIR_DECLINE_DAYS,
    _SIR_GROWTH_DAYS,
    _SIR_I0,
    _SIR_POP,
    _sir_infected_curve,
)
from sbi_core.stats.priors import Prior
from sbi_core.stats.shapes import DataShape


def _grid_draw(log_density: Tensor, num_samples: int, generator: torch.Generator) -> Tensor:
    """Indices ``(num_samples,)`` of cells of the flat ``log_density`` drawn with probability
    proportional to ``exp(log_density)`` (inverse CDF on the cumulative sum, float64)."""
    w = torch.exp(log_density - log_density.max())
    cdf = torch.cumsum(w, dim=0)
    u = torch.rand(num_samples, generator=generator, dtype=torch.float64) * cdf[-1]
    return torch.searchsorted(cdf, u, right=True).clamp(max=w.numel() - 1)


# ---------------------------------------------------------------------------
# AR(1) series
# ---------------------------------------------------------------------------
_AR1_STEPS = 100
_AR1_PHI = (-0.95, 0.95)
_AR1_SIGMA = (0.2, 2.0)
_AR1_GRID = 400  # cells per axis, each of the two passes
_AR1_ZOOM = 30.0  # second pass: cells within e^-30 of the highest one


def _ar1_paths(theta: Tensor, generator: torch.Generator, steps: int = _AR1_STEPS) -> Tensor:
    """``theta: (N, 2) = (phi, sigma)`` -> ``x: (N, steps)`` float32, started from the stationary law.

    Where ``|phi| >= 1`` (only from an edited prior) there is no stationary law, and
    ``x_1 ~ N(0, sigma^2)``.
    """
    phi = theta[:, 0].to(torch.float64)
    sigma = theta[:, 1].to(torch.float64)
    eps = torch.randn(theta.shape[0], steps, generator=generator, dtype=torch.float64)
    stationary = 1.0 - phi**2
    start_sd = torch.where(stationary > 0, sigma / stationary.clamp_min(1e-12).sqrt(), sigma)
    xs = [start_sd * eps[:, 0]]
    for t in range(1, steps):
        xs.append(phi * xs[-1] + sigma * eps[:, t])
    return torch.stack(xs, dim=1).to(torch.float32)


def _simulate_ar1(theta: Tensor, generator: torch.Generator) -> Tensor:
    """``theta: (N, 2) = (phi, sigma)`` -> ``x: (N, 100)``."""
    return _ar1_paths(theta, generator)


def _ar1_log_posterior(x: Tensor, phi: Tensor, sigma: Tensor) -> Tensor:
    """Unnormalised log posterior ``(P, S)`` on the grid ``phi (P,)`` x ``sigma (S,)`` for the
    series ``x (T,)`` under the flat prior (module docstring: the exact Gaussian likelihood)."""
    x = x.to(torch.float64)
    t = x.numel()
    first = x[0] ** 2
    rest = (x[1:] ** 2).sum()  # sum_{t=2}^T x_t^2
    cross = (x[1:] * x[:-1]).sum()  # sum_{t=2}^T x_t x_{t-1}
    inner = (x[1:-1] ** 2).sum()  # sum_{t=2}^{T-1} x_t^2
    q = (first + rest - 2 * phi * cross + phi**2 * inner)[:, None]  # (P, 1)
    s = sigma[None, :]
    return 0.5 * torch.log1p(-phi**2)[:, None] - t * torch.log(s) - q / (2 * s**2)


def _ar1_cells(lo: tuple[float, float], hi: tuple[float, float], n: int) -> tuple[Tensor, Tensor]:
    """Left edges of ``n`` cells per axis over ``[lo, hi]`` (float64): ``(phi (n,), sigma (n,))``."""
    return tuple(torch.linspace(lo[i], hi[i], n + 1, dtype=torch.float64)[:-1] for i in range(2))


def _ar1_grid_posterior(
    x: Tensor, num_samples: int, generator: torch.Generator, cells: int = _AR1_GRID
) -> Tensor:
    """Samples ``(num_samples, 2)`` of ``(phi, sigma) | x`` for a series ``x (T,)`` of any length.

    Pass 1 covers the prior's box; pass 2 covers the cells of pass 1 within ``e^-30`` of its
    highest (plus one cell on every side), again with ``cells x cells`` cells. A sample is a cell of
    pass 2, drawn with probability proportional to the density at its centre, and a uniform
    point inside it.
    """
    box_lo, box_hi = (_AR1_PHI[0], _AR1_SIGMA[0]), (_AR1_PHI[1], _AR1_SIGMA[1])
    width = [(box_hi[i] - box_lo[i]) / cells for i in range(2)]
    phi, sigma = _ar1_cells(box_lo, box_hi, cells)
    logp = _ar1_log_posterior(x, phi + width[0] / 2, sigma + width[1] / 2)
    keep = (logp >= logp.max() - _AR1_ZOOM).nonzero()
    first = (keep.min(dim=0).values - 1).clamp(min=0)  # one cell more on every side
    last = (keep.max(dim=0).values + 2).clamp(max=cells)  # one past the last cell kept
    lo = tuple(box_lo[i] + int(first[i]) * width[i] for i in range(2))
    hi = tuple(box_hi[i] if int(last[i]) == cells else box_lo[i] + int(last[i]) * width[i] for i in range(2))
    width = [(hi[i] - lo[i]) / cells for i in range(2)]
    phi, sigma = _ar1_cells(lo, hi, cells)
    logp = _ar1_log_posterior(x, phi + width[0] / 2, sigma + width[1] / 2)
    idx = _grid_draw(logp.reshape(-1), num_samples, generator)
    jitter = torch.rand(num_samples, 2, generator=generator, dtype=torch.float64)
    out = torch.stack(
        [phi[idx // cells] + jitter[:, 0] * width[0], sigma[idx % cells] + jitter[:, 1] * width[1]], dim=1
    )
    return torch.maximum(torch.minimum(out.to(torch.float32), torch.tensor(box_hi)), torch.tensor(box_lo))


def _reference_ar1(x_obs: Tensor, num_samples: int, generator: torch.Generator) -> Tensor:
    """Exact (grid) posterior of ``(phi, sigma)`` given the series ``x_obs: (100,)``."""
    if not torch.isfinite(x_obs).all():
        raise ValueError("The AR(1) series must be 100 finite numbers.")
    return _ar1_grid_posterior(x_obs, num_samples, generator)


_AR1_LAGS = (1, 2, 3)


def _summaries_ar1(x: Tensor) -> Tensor:
    """Hand-made summaries of AR(1) series ``x: (N, T)`` -> ``(N, 5)``: the mean
    ``m = (1/T) sum_t x_t``, the log variance ``log v`` with ``v = (1/T) sum_t (x_t - m)^2``,
    and the lag-1, lag-2 and lag-3 autocorrelations
    ``r_k = (1/(T v)) sum_{t=1}^{T-k} (x_t - m)(x_{t+k} - m)``.

    ``r_1`` and ``v`` are near-sufficient for ``(phi, sigma)``: the exact likelihood depends on
    the series through ``sum x_t^2`` and ``sum x_t x_{t-1}`` (and the end points), and
    ``r_1 ~ phi``, ``v ~ sigma^2 / (1 - phi^2)``. The mean and the higher lags are what a
    scientist checks by habit (a mean far from 0, or ``r_2 ~ r_1^2`` failing, says the model
    is wrong). Computed in float64; ``v`` is floored at ``1e-12``.
    """
    z = x.to(torch.float64)
    mean = z.mean(dim=1)
    c = z - mean[:, None]
    var = (c**2).mean(dim=1).clamp_min(1e-12)
    t = z.shape[1]
    lags = [(c[:, : t - k] * c[:, k:]).sum(dim=1) / (t * var) for k in _AR1_LAGS]
    return torch.stack([mean, var.log(), *lags], dim=1).to(torch.float32)


register_summary("ar1_series", _summaries_ar1,
                 ["mean", "log variance", "lag-1 autocorrelation", "lag-2 autocorrelation", "lag-3 autocorrelation"])


@register("ar1_series")
def ar1_series() -> Simulator:
    t = _AR1_STEPS
    return Simulator(
        name="ar1_series",
        title="AR(1) series",
        description=(
            "A wiggly line over time in which every value remembers part of the one before, plus a "
            f"fresh random kick. We record {t} steps x1, ..., x{t} of an autoregressive process of order 1, "
            "a building block of time-series models (think of the daily deviation of a temperature from "
            "its seasonal normal). At each step the previous value is multiplied by phi and a random "
            "kick with standard deviation sigma is added. phi (no unit) is the memory: near 1 the line "
            "drifts in long, slow swings; near 0 every step is fresh noise; below 0 the line zigzags, "
            "each value tending to the other side of zero from the one before. sigma is the size of the "
            "kicks, in the units of x. The line starts as if it had been running for ever "
            "(the stationary start), so no time point is special. Both parameters have flat priors. "
            "The whole series is the data, so a network learns its own summary of it (or you choose "
            "one); because the likelihood is Gaussian, the exact posterior is computed on a fine grid "
            "and you can compare any estimate with it."
        ),
        equations=(
            r"x_t = \phi\, x_{t-1} + \sigma\,\varepsilon_t,\quad \varepsilon_t \sim \mathcal{N}(0, 1),"
            r"\quad t = 2, \dots, 100,\qquad x_1 \sim \mathcal{N}\!\left(0,\ \frac{\sigma^2}{1 - \phi^2}\right) \\"
            r" \log p(x \mid \phi, \sigma) = -\frac{T}{2}\log 2\pi - T \log\sigma"
            r" + \tfrac12 \log(1 - \phi^2) - \frac{Q(\phi)}{2\sigma^2} \\"
            r" Q(\phi) = (1 - \phi^2)\,x_1^2 + \sum_{t=2}^{T} (x_t - \phi\, x_{t-1})^2,\quad T = 100 \\"
            r" \phi \sim \mathcal{U}(-0.95,\ 0.95),\quad \sigma \sim \mathcal{U}(0.2,\ 2)"
        ),
        param_names=["phi", "sigma"],
        param_units=["", ""],
        obs_names=[f"step {i + 1}" for i in range(t)],
        obs_units=[""] * t,
        prior=Prior.from_spec(
            [
                {"name": "phi", "dist": "uniform", "low": _AR1_PHI[0], "high": _AR1_PHI[1]},
                {"name": "sigma", "dist": "uniform", "low": _AR1_SIGMA[0], "high": _AR1_SIGMA[1]},
            ]
        ),
        true_theta=[0.7, 1.0],
        simulate_fn=_simulate_ar1,
        reference_fn=_reference_ar1,
        tags=("teaching", "closed-form", "series"),
        data_shape=DataShape.series(t),
        handmade_summary="ar1_series",
    )


# ---------------------------------------------------------------------------
# SIR epidemic, daily counts
# ---------------------------------------------------------------------------
_SIR_SERIES_DAYS = 100


def _simulate_sir_series(theta: Tensor, generator: torch.Generator) -> Tensor:
    """``theta: (N, 2) = (beta [1/day], gamma [1/day])`` -> infected ``I_1..I_100: (N, 100)``."""
    curve, _ = _sir_infected_curve(theta, generator, days=_SIR_SERIES_DAYS)
    return curve[:, 1:].to(torch.float32)


def _summaries_sir_series(x: Tensor) -> Tensor:
    """Hand-made summaries of daily infected counts ``x = (I_1, ..., I_100): (N, 100)`` -> ``(N, 6)``.

    With the known start ``I_0 = 10`` put in front, the curve ``I_0..I_100`` gives what the summary
    model (``_simulate_sir`` of :mod:`sbi_core.simulators.science`, over 160 days) keeps, on 100 days:

    * the peak ``max_t I_t / 1000`` and the peak day ``argmax_t I_t`` (the first, for ties);
    * the mean ``(1/101) sum_{t=0}^{100} I_t / 1000``;
    * the early growth rate ``(log(1 + I_14) - log(1 + I_0)) / 14`` per day;
    * the decline after the peak ``(log(1 + peak) - log(1 + I_{t'})) / 21`` per day with
      ``t' = min(peak day + 21, 100)`` (clamped to the series end);
    * the last day ``I_100 / 1000``, in place of the final size (the susceptibles left are not observed).

    Growth mostly measures ``beta - gamma``; the peak and its timing tell ``R0 = beta / gamma``; the
    decline measures ``gamma``. The final size of the 160-day model is not observed here.
    """
    n = x.shape[0]
    curve = torch.cat([torch.full((n, 1), float(_SIR_I0), dtype=torch.float64), x.to(torch.float64)], dim=1)
    last = curve.shape[1] - 1
    peak, peak_day = curve.max(dim=1)
    log_curve = torch.log1p(curve.clamp_min(0.0))
    growth = (log_curve[:, _SIR_GROWTH_DAYS] - log_curve[:, 0]) / _SIR_GROWTH_DAYS
    later = (peak_day + _SIR_DECLINE_DAYS).clamp(max=last)
    decline = (torch.log1p(peak.clamp_min(0.0)) - log_curve.gather(1, later[:, None])[:, 0]) / _SIR_DECLINE_DAYS
    out = torch.stack([peak / _SIR_POP, peak_day.to(torch.float64), curve.mean(dim=1) / _SIR_POP, growth,
                       decline, curve[:, -1] / _SIR_POP], dim=1)
    return out.to(torch.float32)


register_summary("sir_series", _summaries_sir_series,
                 ["peak / 1000", "peak day", "mean / 1000", "early growth rate", "decline after the peak",
                  "last day / 1000"])


@register("sir_series")
def sir_series() -> Simulator:
    days = _SIR_SERIES_DAYS
    return Simulator(
        name="sir_series",
        title="SIR epidemic, daily counts",
        description=(
            f"The SIR epidemic again, now seen whole: how many people are infected on each of the first "
            f"{days} days. It is the same epidemic, seen day by day: a town of "
            f"{_SIR_POP} people, {_SIR_I0} of them infected on day 0; each day a susceptible person "
            "catches the disease with a chance that grows with the number of infected people (beta, "
            "per day, is the infection rate) and each infected person recovers with a daily chance set "
            "by gamma (per day; 1/gamma is the average number of days someone stays infectious, and "
            "beta/gamma is the basic reproduction number R0). The summary version of this model "
            "(\"SIR epidemic\") keeps only six numbers of the curve: its peak, the peak day, the final "
            "size and so on. Here the data are all 100 daily counts, so nothing is thrown away, and a "
            "network has to learn for itself which features of the curve tell beta and gamma apart. "
            "With the same parameters and random seed, this series is exactly the first 100 days of "
            "the epidemic the summary version describes. The priors are the same as there."
        ),
        equations=(
            r"C_t \sim \operatorname{Bin}\!\left(S_{t-1},\ 1 - e^{-\beta I_{t-1}/N}\right),\quad"
            r" D_t \sim \operatorname{Bin}\!\left(I_{t-1},\ 1 - e^{-\gamma}\right) \\"
            r" S_t = S_{t-1} - C_t,\quad I_t = I_{t-1} + C_t - D_t,\quad R_t = R_{t-1} + D_t \\"
            r" N = 1000,\ I_0 = 10,\qquad x = (I_1, I_2, \dots, I_{100})\ \text{(people, day by day)} \\"
            r" \beta \sim \operatorname{LogNormal}(\ln 0.4,\ 0.5),\quad"
            r" \gamma \sim \operatorname{LogNormal}(\ln 0.125,\ 0.2)"
        ),
        param_names=["beta", "gamma"],
        param_units=["1/day", "1/day"],
        obs_names=[f"day {t + 1}" for t in range(days)],
        obs_units=["people"] * days,
        prior=Prior.from_spec(
            [
                {"name": "beta", "dist": "lognormal", "loc": math.log(0.4), "scale": 0.5},
                {"name": "gamma", "dist": "lognormal", "loc": math.log(0.125), "scale": 0.2},
            ]
        ),
        true_theta=[0.4, 0.125],
        simulate_fn=_simulate_sir_series,
        reference_fn=None,
        tags=("science", "epidemiology", "stochastic", "series"),
        data_shape=DataShape.series(days),
        handmade_summary="sir_series",
    )


# ---------------------------------------------------------------------------
# repeated measurements of one quantity
# ---------------------------------------------------------------------------
_GT_TRIALS = 20
_GT_NOISE = 1.0  # known measurement sd
_GT_PRIOR_SD = 2.0


def _simulate_gaussian_trials(theta: Tensor, generator: torch.Generator) -> Tensor:
    """``theta: (N, 1) = mu`` -> ``y: (N, 20)``, 20 trials of one number each."""
    eps = torch.randn(theta.shape[0], _GT_TRIALS, generator=generator)
    return theta[:, :1] + _GT_NOISE * eps


def _gaussian_trials_posterior(x_obs: Tensor) -> tuple[float, float, int]:
    """Mean, sd and number of trials of the conjugate posterior of ``mu`` given ``x_obs: (20,)``
    (NaN: a missing trial)."""
    y = x_obs.to(torch.float64).reshape(-1)
    present = y[~torch.isnan(y)]
    if not torch.isfinite(present).all():
        raise ValueError("A trial of the observation is infinite: give finite numbers, or NaN for a missing trial.")
    n = present.numel()
    precision = 1.0 / _GT_PRIOR_SD**2 + n / _GT_NOISE**2
    mean = float(present.sum()) / _GT_NOISE**2 / precision
    return mean, 1.0 / math.sqrt(precision), n


def _summaries_gaussian_trials(x: Tensor) -> Tensor:
    """Hand-made summaries of sets of readings ``x: (N, 20)`` (NaN: a missing trial) -> ``(N, 3)``,
    over the ``n`` readings present: their mean ``ybar = (1/n) sum_j y_j``, the log of their sample
    standard deviation ``log sqrt(sum_j (y_j - ybar)^2 / (n - 1))`` (0 for a single reading, whose
    spread cannot be measured; the sd floored at ``1e-6``) and ``n``.

    ``(ybar, n)`` is sufficient for ``mu`` (the conjugate posterior of the module docstring depends
    on the readings only through ``sum_j y_j = n ybar`` and ``n``); the sd checks the known noise.
    A set without any reading (not a valid simulation) gives ``(0, 0, 0)``.
    """
    y = x.to(torch.float64)
    present = ~torch.isnan(y)
    n = present.sum(dim=1)
    filled = torch.where(present, y, torch.zeros(()))
    mean = filled.sum(dim=1) / n.clamp_min(1)
    sq = torch.where(present, (y - mean[:, None]) ** 2, torch.zeros(())).sum(dim=1)
    sd = (sq / (n - 1).clamp_min(1)).sqrt().clamp_min(1e-6)
    log_sd = torch.where(n >= 2, sd.log(), torch.zeros(()))
    return torch.stack([mean, log_sd, n.to(torch.float64)], dim=1).to(torch.float32)


register_summary("gaussian_trials", _summaries_gaussian_trials,
                 ["mean of the readings", "log sd of the readings", "number of readings"])


def _reference_gaussian_trials(x_obs: Tensor, num_samples: int, generator: torch.Generator) -> Tensor:
    """Exact posterior ``N(sum y / tau_n, 1 / tau_n)`` from the trials present -> ``(num_samples, 1)``."""
    mean, sd, _ = _gaussian_trials_posterior(x_obs)
    z = torch.randn(num_samples, 1, generator=generator, dtype=torch.float64)
    return (mean + sd * z).to(torch.float32)


@register("gaussian_trials")
def gaussian_trials() -> Simulator:
    m = _GT_TRIALS
    return Simulator(
        name="gaussian_trials",
        title="Repeated measurements of one quantity",
        description=(
            f"The same quantity is measured {m} times with a noisy instrument, and we want to know its "
            "true value. Think of weighing the same object again and again on a cheap scale: each "
            "reading is the true value mu plus an independent error with a known standard deviation "
            f"of {_GT_NOISE:g} (in the units of the readings). Before measuring we believe mu is "
            f"probably within a few units of 0: a normal prior with standard deviation {_GT_PRIOR_SD:g}. "
            "The order of the readings does not matter, and a data set may hold fewer than "
            f"{m} of them (the missing ones are left empty): the posterior uses the readings that are "
            "there. It is known exactly: a normal distribution whose width shrinks like one over the "
            "square root of the number of readings, so four times as many readings halve the "
            "uncertainty. Try an observation with only 3 readings and compare."
        ),
        equations=(
            r"y_j = \mu + \varepsilon_j,\quad \varepsilon_j \sim \mathcal{N}(0, 1),\quad"
            r" j = 1, \dots, n,\ n \le 20 \\"
            r" \mu \sim \mathcal{N}(0,\ 2^2) \\"
            r" \mu \mid y \sim \mathcal{N}\!\left(\frac{\sum_j y_j}{\tau_n},\ \frac{1}{\tau_n}\right),"
            r"\quad \tau_n = \frac{1}{2^2} + n"
        ),
        param_names=["mu"],
        param_units=[""],
        obs_names=[f"trial {j + 1}" for j in range(m)],
        obs_units=[""] * m,
        prior=Prior.from_spec([{"name": "mu", "dist": "normal", "loc": 0.0, "scale": _GT_PRIOR_SD}]),
        true_theta=[1.5],
        simulate_fn=_simulate_gaussian_trials,
        reference_fn=_reference_gaussian_trials,
        tags=("teaching", "closed-form", "trials"),
        data_shape=DataShape.trials(m, 1),
        handmade_summary="gaussian_trials",
    )


# ---------------------------------------------------------------------------
# drift-diffusion model
# ---------------------------------------------------------------------------
_DDM_TRIALS = 50
_DDM_DT = 1e-3  # s
_DDM_MAX_STEPS = 5000  # 5 s
_DDM_BLOCK = 32  # steps simulated at once before finished walkers drop out


def _ddm_decisions(v: Tensor, a: Tensor, z: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Euler-Maruyama walkers ``(W,)`` between 0 and ``a`` from ``z a``: steps taken ``(W,)`` int64
    and choices ``(W,)`` float32 (1: upper boundary). Undecided after 5,000 steps: 5,000 steps and
    the nearer boundary."""
    w = v.numel()
    steps = torch.full((w,), _DDM_MAX_STEPS, dtype=torch.int64)
    choice = torch.zeros(w)
    active = torch.arange(w)
    pos = z * a
    drift = v * _DDM_DT
    bound = a
    sd = math.sqrt(_DDM_DT)
    done_steps = 0
    while active.numel() and done_steps < _DDM_MAX_STEPS:
        b = min(_DDM_BLOCK, _DDM_MAX_STEPS - done_steps)
        path = torch.randn(active.numel(), b, generator=generator).mul_(sd).add_(drift[:, None])
        path = path.cumsum_(dim=1).add_(pos[:, None])  # X after each of the b steps
        low, high = torch.aminmax(path, dim=1)
        decided = (high >= bound) | (low <= 0)
        fin = decided.nonzero().squeeze(1)
        if fin.numel():  # only the walkers that decided in this block are searched step by step
            up = path[fin] >= bound[fin, None]
            k = (up | (path[fin] <= 0)).to(torch.uint8).argmax(dim=1)  # the first step that left (0, a)
            steps[active[fin]] = done_steps + k + 1
            choice[active[fin]] = up.gather(1, k[:, None]).squeeze(1).to(torch.float32)
        go_on = (~decided).nonzero().squeeze(1)
        active, pos, drift, bound = active[go_on], path[go_on, -1], drift[go_on], bound[go_on]
        done_steps += b
    if active.numel():
        choice[active] = (pos >= bound / 2).to(torch.float32)
    return steps, choice


def _simulate_drift_diffusion(theta: Tensor, generator: torch.Generator) -> Tensor:
    """``theta: (N, 4) = (v [1/s], a, z, t0 [s])`` -> ``(N, 100)``: 50 trials of (rt [s], choice)."""
    n = theta.shape[0]
    th = theta.to(torch.float32).repeat_interleave(_DDM_TRIALS, dim=0)  # trial-major per simulation
    v = th[:, 0]
    a = th[:, 1].clamp_min(1e-3)
    z = th[:, 2].clamp(0.0, 1.0)
    t0 = th[:, 3].clamp_min(0.0)
    steps, choice = _ddm_decisions(v, a, z, generator)
    rt = t0 + steps.to(torch.float32) * _DDM_DT
    return torch.stack([rt, choice], dim=1).reshape(n, 2 * _DDM_TRIALS)


_DDM_QUANTILES = (0.1, 0.3, 0.5, 0.7, 0.9)
_DDM_NO_TRIALS_RT = 0.0  # s: the quantiles of a choice never made (with its indicator set)


def _summaries_drift_diffusion(x: Tensor) -> Tensor:
    """Hand-made summaries of sets of trials ``x: (N, 100)``, 50 trials of (rt [s], choice), NaN rows
    missing -> ``(N, 14)``, over the ``n`` trials present:

    * the proportion of upper choices ``(1/n) sum_j choice_j`` (choice ``>= 0.5``: upper);
    * for the lower choice (0), then the upper one (1): the 10, 30, 50, 70 and 90 % quantiles of the
      reaction times of the trials with that choice (linear interpolation between order statistics),
      and an indicator that is 1 when no trial has that choice (its quantiles are then
      ``_DDM_NO_TRIALS_RT = 0`` s, below any reaction time);
    * ``n``.

    These are the statistics of the classic fitting methods of the diffusion model (the quantile
    method, Ratcliff & Tuerlinckx 2002, Psychonomic Bulletin & Review 9, 438-481): the choice
    proportion tells the drift ``v`` and the bias ``z``, the fastest quantiles ``t0``, the spread of
    the quantiles the boundary ``a``. They do not depend on the order of the trials.
    """
    t = x.to(torch.float64).reshape(x.shape[0], _DDM_TRIALS, 2)
    rt, choice = t[..., 0], t[..., 1]
    present = ~torch.isnan(t).all(dim=2)
    n = present.sum(dim=1)
    upper = present & (choice >= 0.5)
    proportion = upper.sum(dim=1) / n.clamp_min(1)
    q = torch.tensor(_DDM_QUANTILES, dtype=torch.float64)
    parts = [proportion[:, None]]
    for chosen in (present & ~upper, upper):
        masked = torch.where(chosen, rt, torch.full_like(rt, float("nan")))
        quantiles = torch.nanquantile(masked, q, dim=1).T  # (N, 5), NaN where the choice was never made
        none = chosen.sum(dim=1) == 0
        quantiles = torch.where(none[:, None], torch.full_like(quantiles, _DDM_NO_TRIALS_RT), quantiles)
        parts += [quantiles, none.to(torch.float64)[:, None]]
    parts.append(n.to(torch.float64)[:, None])
    return torch.cat(parts, dim=1).to(torch.float32)


register_summary("drift_diffusion", _summaries_drift_diffusion,
                 ["proportion of upper choices"]
                 + [f"lower choice: rt {int(p * 100)} % quantile" for p in _DDM_QUANTILES]
                 + ["no lower choices"]
                 + [f"upper choice: rt {int(p * 100)} % quantile" for p in _DDM_QUANTILES]
                 + ["no upper choices", "number of trials"])


@register("drift_diffusion")
def drift_diffusion() -> Simulator:
    m = _DDM_TRIALS
    return Simulator(
        name="drift_diffusion",
        title="Reaction times and choices (drift-diffusion model)",
        description=(
            f"A person makes {m} quick two-way decisions; we record how long each took and which way "
            "they chose. Picture a cloud of moving dots on a screen: is it drifting left or right? The "
            "drift-diffusion model (Ratcliff & McKoon 2008) says the brain adds up noisy evidence, "
            "moment by moment, until the total reaches one of two thresholds, and then answers. The "
            "drift v (per second) is how fast evidence builds up towards the upper answer (negative: "
            "towards the lower one), so an easy task has a large drift. The boundary separation a is "
            "how much evidence the person wants before answering: a large a means slow but careful "
            "answers, a small a fast but error-prone ones (the speed-accuracy trade-off). The starting "
            "point z, as a fraction of a, is a bias towards one answer (0.5: none). The non-decision "
            "time t0 (seconds) is the time for seeing the screen and pressing the key, added to every "
            f"response. Each data set is {m} trials of (reaction time in seconds, choice: 1 upper, "
            "0 lower), in any order. The evidence is simulated in steps of 1 millisecond; a trial "
            "still undecided after 5 seconds is stopped there and counted as the answer it was "
            "closer to. There is no closed-form posterior."
        ),
        equations=(
            r"dX_t = v\,dt + dW_t,\quad X_0 = z\,a,\quad"
            r" \text{until } X_t \ge a\ (\text{choice } 1) \text{ or } X_t \le 0\ (\text{choice } 0) \\"
            r" X_{k+1} = X_k + v\,\Delta + \sqrt{\Delta}\,\varepsilon_k,\quad"
            r" \varepsilon_k \sim \mathcal{N}(0, 1),\quad \Delta = 1\ \mathrm{ms},\ k \le 5000 \\"
            r" \mathrm{rt} = t_0 + k^\ast \Delta\ \mathrm{s},\qquad 50 \text{ independent trials }"
            r"(\mathrm{rt}_j, \mathrm{choice}_j) \\"
            r" v \sim \mathcal{U}(-3, 3),\ a \sim \mathcal{U}(0.5, 2.5),\ z \sim \mathcal{U}(0.3, 0.7),"
            r"\ t_0 \sim \mathcal{U}(0.1, 0.5)\ \mathrm{s}"
        ),
        param_names=["v", "a", "z", "t0"],
        param_units=["1/s", "", "", "s"],
        obs_names=[f"trial {j + 1} {part}" for j in range(m) for part in ("rt", "choice")],
        obs_units=["s", ""] * m,
        prior=Prior.from_spec(
            [
                {"name": "v", "dist": "uniform", "low": -3.0, "high": 3.0},
                {"name": "a", "dist": "uniform", "low": 0.5, "high": 2.5},
                {"name": "z", "dist": "uniform", "low": 0.3, "high": 0.7},
                {"name": "t0", "dist": "uniform", "low": 0.1, "high": 0.5},
            ]
        ),
        true_theta=[1.0, 1.5, 0.5, 0.3],
        simulate_fn=_simulate_drift_diffusion,
        reference_fn=None,
        tags=("science", "neuroscience", "trials", "stochastic"),
        data_shape=DataShape.trials(m, 2),
        handmade_summary="drift_diffusion",
    )

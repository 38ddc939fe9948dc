r"""Science simulators: mechanistic models observed through summary statistics.

SIR epidemic, chain binomial (D = 2, K = 6)
    Population N = 1000, I_0 = 10 infected, S_0 = 990, R_0 = 0. Each day t = 1..160
        new infections  C_t ~ Binomial(S_{t-1}, 1 - exp(-beta I_{t-1} / N)),
        recoveries      D_t ~ Binomial(I_{t-1}, 1 - exp(-gamma)),
        S_t = S_{t-1} - C_t,  I_t = I_{t-1} + C_t - D_t,  R_t = R_{t-1} + D_t.
    Summaries of the infected curve I_0..I_160:
        peak = max_t I_t / N,  peak_day = argmax_t I_t,  final = (N - S_160) / N,
        mean_inf = mean_t I_t / N,
        growth = [log(1 + I_14) - log(1 + I_0)] / 14,
        decline = [log(1 + I_p) - log(1 + I_{min(p + 21, 160)})] / 21,  p = peak_day.
    Priors: beta ~ LogNormal(log 0.4, 0.5), gamma ~ LogNormal(log 0.125, 0.2).

Lotka-Volterra predator-prey (D = 4, K = 9)
    dx/dt = alpha x - beta x y,  dy/dt = delta x y - gamma y,  x(0) = 30, y(0) = 1,
    integrated as d(log x)/dt = alpha - beta y, d(log y)/dt = delta x - gamma with RK4,
    dt = 0.05 over t in [0, 20]; log-populations are clamped to [-20, 12] so that every
    prior draw stays finite. Observed at t = 0, 0.5, ..., 20 (41 points) as
    u_t = log x_t + 0.1 e, v_t = log y_t + 0.1 e' (sbibm's LogNormal(log x, 0.1) noise).
    Summaries: mean u, mean v, log var u, log var v, lag-1 and lag-2 autocorrelation of
    u and of v, and the correlation of u and v.
    Priors (sbibm): alpha, gamma ~ LogNormal(-0.125, 0.5); beta, delta ~ LogNormal(-3, 0.5).

Every ``_simulate_*`` takes ``theta: (N, D)`` float32 and a ``torch.Generator`` and
returns ``x: (N, K)`` float32. Neither model has a closed-form posterior.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sbi_core.simulators.base import Simulator
from sbi_core.simulators.registry import register
from sbi_core.stats.priors import Prior

# ---------------------------------------------------------------------------
# SIR
# ---------------------------------------------------------------------------
_SIR_POP = 1000
_SIR_I0 = 10
_SIR_DAYS = 160
_SIR_GROWTH_DAYS = 14
_SIR_DECLINE_DAYS = 21


def _sir_infected_curve(theta: Tensor, generator: torch.Generator, days: int = _SIR_DAYS) -> tuple[Tensor, Tensor]:
    """Chain-binomial epidemic. ``theta: (N, 2) = (beta, gamma)`` -> ``I: (N, days + 1)``, ``S_end: (N,)``.

    The draws of day ``t`` do not depend on ``days``: a shorter epidemic is the start of a longer
    one with the same generator (the daily series model, :mod:`sbi_core.simulators.series`, uses that).
    """
    n = theta.shape[0]
    beta = theta[:, 0].to(torch.float64)
    p_rec = -torch.expm1(-theta[:, 1].to(torch.float64))
    s = torch.full((n,), float(_SIR_POP - _SIR_I0), dtype=torch.float64)
    i = torch.full((n,), float(_SIR_I0), dtype=torch.float64)
    curve = [i]
    for _ in range(days):
        p_inf = -torch.expm1(-beta * i / _SIR_POP)
        new_inf = torch.binomial(s, p_inf, generator=generator)
        new_rec = torch.binomial(i, p_rec, generator=generator)
        s = s - new_inf
        i = i + new_inf - new_rec
        curve.append(i)
    return torch.stack(curve, dim=1), s


def _simulate_sir(theta: Tensor, generator: torch.Generator) -> Tensor:
    """``theta: (N, 2) = (beta [1/day], gamma [1/day])`` -> summaries ``(N, 6)``."""
    curve, s_end = _sir_infected_curve(theta, generator)
    peak, peak_day = curve.max(dim=1)
    log_curve = torch.log1p(curve)
    growth = (log_curve[:, _SIR_GROWTH_DAYS] - log_curve[:, 0]) / _SIR_GROWTH_DAYS
    later = (peak_day + _SIR_DECLINE_DAYS).clamp(max=_SIR_DAYS)
    decline = (torch.log1p(peak) - log_curve.gather(1, later[:, None])[:, 0]) / _SIR_DECLINE_DAYS
    x = torch.stack(
        [
            peak / _SIR_POP,
            peak_day.to(torch.float64),
            (_SIR_POP - s_end) / _SIR_POP,
            curve.mean(dim=1) / _SIR_POP,
            growth,
            decline,
        ],
        dim=1,
    )
    return x.to(torch.float32)


@register("sir")
def sir() -> Simulator:
    return Simulator(
        name="sir",
        title="SIR epidemic",
        description=(
            f"An infectious disease spreads through a town of {_SIR_POP} people. Everyone is "
            "Susceptible, Infected or Recovered (and then immune). On day 0, "
            f"{_SIR_I0} people are infected. Each day every susceptible person may catch the "
            "disease, with a chance that grows with the number of infected people; beta "
            "(per day) is the infection rate, roughly how many people one infected person would "
            "infect per day in a fully susceptible town. Each infected person recovers with a "
            "daily chance set by gamma (per day); 1/gamma is the average number of days someone "
            "stays infectious, and beta/gamma is the famous basic reproduction number R0. The "
            "simulation is random, so the same beta and gamma give somewhat different epidemics. "
            f"Over {_SIR_DAYS} days we do not keep the whole curve but six numbers that describe "
            "it: the largest fraction infected at once (peak), the day of that peak, the "
            "fraction ever infected (final), the average fraction infected, the early growth "
            "rate (how fast log-cases rise over the first two weeks) and the decline rate (how "
            "fast they fall in the three weeks after the peak)."
        ),
        equations=(
            r"C_t \sim \operatorname{Bin}\!\left(S_{t-1},\ 1 - e^{-\beta I_{t-1}/N}\right),\quad"
            r" D_t \sim \operatorname{Bin}\!\left(I_{t-1},\ 1 - e^{-\gamma}\right) \\"
            r" S_t = S_{t-1} - C_t,\quad I_t = I_{t-1} + C_t - D_t,\quad R_t = R_{t-1} + D_t \\"
            r" N = 1000,\ I_0 = 10,\ t = 1, \dots, 160\ \text{days},\quad R_0 = \beta / \gamma \\"
            r" \beta \sim \operatorname{LogNormal}(\ln 0.4,\ 0.5),\quad"
            r" \gamma \sim \operatorname{LogNormal}(\ln 0.125,\ 0.2)"
        ),
        param_names=["beta", "gamma"],
        param_units=["1/day", "1/day"],
        obs_names=["peak", "peak_day", "final", "mean_inf", "growth", "decline"],
        obs_units=["", "day", "", "", "1/day", "1/day"],
        prior=Prior.from_spec(
            [
                {"name": "beta", "dist": "lognormal", "loc": math.log(0.4), "scale": 0.5},
                {"name": "gamma", "dist": "lognormal", "loc": math.log(0.125), "scale": 0.2},
            ]
        ),
        true_theta=[0.4, 0.125],
        simulate_fn=_simulate_sir,
        reference_fn=None,
        tags=("science", "epidemiology", "stochastic"),
    )


# ---------------------------------------------------------------------------
# Lotka-Volterra
# ---------------------------------------------------------------------------
_LV_X0, _LV_Y0 = 30.0, 1.0
_LV_T_END = 20.0
_LV_DT = 0.05
_LV_OBS_EVERY = 10  # steps between observations: every 0.5 time units
_LV_LOG_MIN, _LV_LOG_MAX = -20.0, 12.0
_LV_NOISE = 0.1


def _lv_log_rates(u: Tensor, v: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
    """d(log x)/dt, d(log y)/dt for log-populations ``u, v: (N,)``, ``theta: (N, 4)``."""
    alpha, beta, gamma, delta = theta.unbind(dim=1)
    x = torch.exp(u.clamp(_LV_LOG_MIN, _LV_LOG_MAX))
    y = torch.exp(v.clamp(_LV_LOG_MIN, _LV_LOG_MAX))
    return alpha - beta * y, delta * x - gamma


def _lv_log_trajectory(theta: Tensor) -> tuple[Tensor, Tensor]:
    """RK4 in log space: ``theta: (N, 4)`` -> ``log x, log y: (N, 41)`` at t = 0, 0.5, ..., 20."""
    theta = theta.to(torch.float64)
    n = theta.shape[0]
    u = torch.full((n,), math.log(_LV_X0), dtype=torch.float64)
    v = torch.full((n,), math.log(_LV_Y0), dtype=torch.float64)
    us, vs = [u], [v]
    steps = round(_LV_T_END / _LV_DT)
    h = _LV_DT
    for step in range(1, steps + 1):
        k1u, k1v = _lv_log_rates(u, v, theta)
        k2u, k2v = _lv_log_rates(u + h / 2 * k1u, v + h / 2 * k1v, theta)
        k3u, k3v = _lv_log_rates(u + h / 2 * k2u, v + h / 2 * k2v, theta)
        k4u, k4v = _lv_log_rates(u + h * k3u, v + h * k3v, theta)
        u = (u + h / 6 * (k1u + 2 * k2u + 2 * k3u + k4u)).clamp(_LV_LOG_MIN, _LV_LOG_MAX)
        v = (v + h / 6 * (k1v + 2 * k2v + 2 * k3v + k4v)).clamp(_LV_LOG_MIN, _LV_LOG_MAX)
        if step % _LV_OBS_EVERY == 0:
            us.append(u)
            vs.append(v)
    return torch.stack(us, dim=1), torch.stack(vs, dim=1)


def _autocorr(z: Tensor, lag: int) -> Tensor:
    """Lag-``lag`` autocorrelation of each row of ``z: (N, T)`` -> ``(N,)``."""
    c = z - z.mean(dim=1, keepdim=True)
    return (c[:, lag:] * c[:, :-lag]).sum(dim=1) / (c**2).sum(dim=1).clamp_min(1e-12)


def _simulate_lotka_volterra(theta: Tensor, generator: torch.Generator) -> Tensor:
    """``theta: (N, 4) = (alpha, beta, gamma, delta)`` -> summaries ``(N, 9)``."""
    log_x, log_y = _lv_log_trajectory(theta)
    u = log_x + _LV_NOISE * torch.randn(log_x.shape, generator=generator, dtype=torch.float64)
    v = log_y + _LV_NOISE * torch.randn(log_y.shape, generator=generator, dtype=torch.float64)
    cu, cv = u - u.mean(dim=1, keepdim=True), v - v.mean(dim=1, keepdim=True)
    var_u, var_v = cu.pow(2).mean(dim=1), cv.pow(2).mean(dim=1)
    xcorr = (cu * cv).mean(dim=1) / torch.sqrt(var_u * var_v).clamp_min(1e-12)
    x = torch.stack(
        [
            u.mean(dim=1),
            v.mean(dim=1),
            torch.log(var_u.clamp_min(1e-12)),
            torch.log(var_v.clamp_min(1e-12)),
            _autocorr(u, 1),
            _autocorr(u, 2),
            _autocorr(v, 1),
            _autocorr(v, 2),
            xcorr,
        ],
        dim=1,
    )
    return x.to(torch.float32)


@register("lotka_volterra")
def lotka_volterra() -> Simulator:
    return Simulator(
        name="lotka_volterra",
        title="Lotka-Volterra predator-prey",
        description=(
            "Two animal populations, prey x (think hares) and predators y (lynx), rise and fall "
            "in cycles. Prey multiply at rate alpha on their own and are eaten at a rate that "
            "grows with the number of predators (beta per predator); predators grow at a rate "
            "that grows with the amount of prey (delta per prey) and die off at rate gamma "
            "without food. All rates are per unit of time (a year, say). We start with 30 prey "
            "and 1 predator and follow both for 20 time units, counting each population every "
            "half unit with about 10% counting error. Instead of the 82 counts we report nine "
            "summary numbers of the log-counts: the average and log-variance of each "
            "population, how similar each series is to itself half a unit and one unit later "
            "(autocorrelation at lags 1 and 2, which reflects the cycle length) and how strongly "
            "the two series move together. The priors are those of the SBI benchmark (sbibm)."
        ),
        equations=(
            r"\frac{dx}{dt} = \alpha x - \beta x y,\quad \frac{dy}{dt} = \delta x y - \gamma y,"
            r"\quad x(0) = 30,\ y(0) = 1,\ t \in [0, 20] \\"
            r" u_j = \ln x(t_j) + 0.1\,\varepsilon_j,\quad v_j = \ln y(t_j) + 0.1\,\varepsilon'_j,"
            r"\quad t_j = 0, 0.5, \dots, 20 \\"
            r" s = \bigl(\bar u,\ \bar v,\ \ln \operatorname{Var} u,\ \ln \operatorname{Var} v,"
            r"\ \rho_1(u),\ \rho_2(u),\ \rho_1(v),\ \rho_2(v),\ \operatorname{corr}(u, v)\bigr) \\"
            r" \alpha, \gamma \sim \operatorname{LogNormal}(-0.125,\ 0.5),\quad"
            r" \beta, \delta \sim \operatorname{LogNormal}(-3,\ 0.5)"
        ),
        param_names=["alpha", "beta", "gamma", "delta"],
        param_units=["1/t", "1/t", "1/t", "1/t"],
        obs_names=[
            "mean_log_prey",
            "mean_log_pred",
            "logvar_prey",
            "logvar_pred",
            "ac1_prey",
            "ac2_prey",
            "ac1_pred",
            "ac2_pred",
            "corr",
        ],
        obs_units=[""] * 9,
        prior=Prior.from_spec(
            [
                {"name": "alpha", "dist": "lognormal", "loc": -0.125, "scale": 0.5},
                {"name": "beta", "dist": "lognormal", "loc": -3.0, "scale": 0.5},
                {"name": "gamma", "dist": "lognormal", "loc": -0.125, "scale": 0.5},
                {"name": "delta", "dist": "lognormal", "loc": -3.0, "scale": 0.5},
            ]
        ),
        true_theta=[0.6859157, 0.10761319, 0.88789904, 0.116794825],  # sbibm observation 1
        simulate_fn=_simulate_lotka_volterra,
        reference_fn=None,
        tags=("science", "ecology", "ode"),
    )

r"""Benchmark simulators, defined exactly as in the SBI benchmark (sbibm, Lueckmann et al. 2021).

Matching sbibm's definitions keeps C2ST scores comparable with published numbers.

Two moons (D = 2, K = 2)
    theta ~ U(-1, 1)^2;  a ~ U(-pi/2, pi/2),  r ~ N(0.1, 0.01^2);
    p = (r cos a + 0.25, r sin a);
    x = p + (-|theta1 + theta2| / sqrt 2, (-theta1 + theta2) / sqrt 2).
    Posterior: the map theta -> shift is two-to-one and measure preserving on each
    branch, so draw p, set u = x - p (needs u1 <= 0), take theta1 + theta2 = +-sqrt2 |u1|
    with probability 1/2 each and theta2 - theta1 = sqrt2 u2, and reject draws outside the box.

Gaussian linear (D = K = 10)
    theta ~ N(0, 0.1 I),  x ~ N(theta, 0.1 I)  (0.1 is a variance);
    posterior N(x / 2, 0.05 I).

SLCP, simple likelihood complex posterior (D = 5, K = 8)
    theta ~ U(-3, 3)^5;  m = (theta1, theta2),  s1 = theta3^2,  s2 = theta4^2,
    rho = tanh(theta5);  S = [[s1^2 + eps, rho s1 s2], [rho s1 s2, s2^2 + eps]], eps = 1e-6;
    x = four iid draws of N(m, S), flattened (x1, y1, ..., x4, y4). No closed-form posterior,
    but the likelihood is: the reference posterior is sampled by MCMC (sbi_core.stats.mcmc) on
    log p(x | theta) + log p(theta), with exact mode weights: the posterior is unchanged by
    theta3 -> -theta3 and theta4 -> -theta4 (S depends on their squares only), so each draw's
    signs of theta3 and theta4 are redrawn uniformly, which puts exactly 1/4 of the mass in each of the four mirror modes.

Gaussian mixture (D = K = 2)
    theta ~ U(-10, 10)^2;  x ~ 0.5 N(theta, I) + 0.5 N(theta, 0.01 I).
    The likelihood is symmetric in theta and x, so the posterior is the same mixture
    centred on x_obs, truncated to the box (rejection sampling).

Every ``_simulate_*`` takes ``theta: (N, D)`` float32 and a ``torch.Generator`` and
returns ``x: (N, K)`` float32; every ``_reference_*`` takes ``x_obs: (K,)``,
``num_samples`` and a generator and returns ``(num_samples, D)``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from sbi_core.simulators.base import Simulator
from sbi_core.simulators.registry import register
from sbi_core.stats.mcmc import sample_mcmc
from sbi_core.stats.priors import Prior

_SQRT2 = math.sqrt(2.0)


def _rejection_fill(
    propose: Callable[[int], Tensor], accept: Callable[[Tensor], Tensor], num_samples: int, dim: int
) -> Tensor:
    """Draw batches from ``propose(m) -> (m, dim)`` until ``num_samples`` pass ``accept``.

    Raises ``RuntimeError`` when almost nothing is accepted (an impossible observation).
    """
    out = torch.empty(num_samples, dim)
    filled, proposed = 0, 0
    while filled < num_samples:
        m = max(2 * (num_samples - filled), 1024)
        cand = propose(m)
        good = cand[accept(cand)][: num_samples - filled]
        out[filled : filled + len(good)] = good
        filled += len(good)
        proposed += m
        if proposed > 1000 * num_samples + 1_000_000 and filled < num_samples:
            raise RuntimeError(
                f"Reference sampler accepted only {filled} of {proposed} proposals: "
                "the observation is (almost) impossible under this model and prior."
            )
    return out


def _in_box(theta: Tensor, bound: float) -> Tensor:
    """Bool ``(M,)``: rows of ``theta: (M, D)`` inside ``[-bound, bound]^D``."""
    return (theta.abs() <= bound).all(dim=1)


# ---------------------------------------------------------------------------
# two moons
# ---------------------------------------------------------------------------
_TM_BOUND = 1.0
_TM_OFFSET, _TM_R_LOC, _TM_R_SCALE = 0.25, 0.1, 0.01


def _two_moons_base(n: int, generator: torch.Generator) -> Tensor:
    """``(n, 2)`` draws of ``p = (r cos a + 0.25, r sin a)``."""
    a = (torch.rand(n, generator=generator) - 0.5) * math.pi
    r = _TM_R_LOC + _TM_R_SCALE * torch.randn(n, generator=generator)
    return torch.stack([r * torch.cos(a) + _TM_OFFSET, r * torch.sin(a)], dim=1)


def _two_moons_shift(theta: Tensor) -> Tensor:
    """The deterministic part ``(N, 2) -> (N, 2)``: ``(-|t1 + t2| / sqrt2, (t2 - t1) / sqrt2)``."""
    z0 = (theta[:, 0] + theta[:, 1]) / _SQRT2
    z1 = (theta[:, 1] - theta[:, 0]) / _SQRT2
    return torch.stack([-z0.abs(), z1], dim=1)


def _simulate_two_moons(theta: Tensor, generator: torch.Generator) -> Tensor:
    """``theta: (N, 2)`` -> ``x: (N, 2)``."""
    return _two_moons_base(theta.shape[0], generator) + _two_moons_shift(theta)


def _reference_two_moons(x_obs: Tensor, num_samples: int, generator: torch.Generator) -> Tensor:
    """Exact posterior samples ``(num_samples, 2)`` given ``x_obs: (2,)``."""

    def propose(m: int) -> Tensor:
        u = x_obs - _two_moons_base(m, generator)  # = shift(theta) for a consistent p
        sign = torch.where(torch.rand(m, generator=generator) < 0.5, -1.0, 1.0)
        total = sign * _SQRT2 * (-u[:, 0])  # theta1 + theta2
        diff = _SQRT2 * u[:, 1]  # theta2 - theta1
        theta = torch.stack([(total - diff) / 2, (total + diff) / 2], dim=1)
        # a positive u1 cannot equal -|z0|: mark the draw as outside the box
        return torch.where((u[:, :1] <= 0), theta, torch.full_like(theta, math.inf))

    return _rejection_fill(propose, lambda t: _in_box(t, _TM_BOUND), num_samples, 2)


@register("two_moons")
def two_moons() -> Simulator:
    return Simulator(
        name="two_moons",
        title="Two moons",
        description=(
            "Two parameters shift a point on a thin crescent; a hidden sign makes the posterior two "
            "crescent moons. "
            "The two parameters theta1 and theta2 are abstract numbers between -1 and 1. The "
            "simulator first draws a random point on a thin half-ring (a crescent moon of radius "
            "about 0.1) and then shifts it by an amount that depends on the parameters through "
            "an absolute value, which forgets the sign of theta1 + theta2. The observation x is "
            "the shifted 2-D point. Because of the absolute value, two different parameter "
            "regions explain the same data equally well, and the posterior consists of two "
            "crescent moons: a good test of whether a method can find several modes and thin "
            "curved shapes. The exact posterior is known and sampled by rejection. It is a standard "
            "test problem of the SBI benchmark (sbibm), defined exactly as there, so scores compare "
            "with published ones."
        ),
        equations=(
            r"a \sim \mathcal{U}(-\tfrac{\pi}{2}, \tfrac{\pi}{2}),\quad r \sim \mathcal{N}(0.1, 0.01^2),"
            r"\quad p = (r\cos a + 0.25,\ r \sin a) \\"
            r" x = p + \left(-\frac{|\theta_1 + \theta_2|}{\sqrt 2},\ "
            r"\frac{-\theta_1 + \theta_2}{\sqrt 2}\right) \\"
            r" \theta \sim \mathcal{U}(-1, 1)^2"
        ),
        param_names=["theta1", "theta2"],
        param_units=["", ""],
        obs_names=["x1", "x2"],
        obs_units=["", ""],
        prior=Prior.uniform_box(["theta1", "theta2"], -_TM_BOUND, _TM_BOUND),
        true_theta=[-0.8176656, -0.5756806],  # sbibm two_moons observation 1
        simulate_fn=_simulate_two_moons,
        reference_fn=_reference_two_moons,
        tags=("benchmark", "sbibm", "closed-form", "multimodal"),
    )


# ---------------------------------------------------------------------------
# gaussian linear
# ---------------------------------------------------------------------------
_GL_DIM = 10
_GL_PRIOR_VAR, _GL_NOISE_VAR = 0.1, 0.1


def _simulate_gaussian_linear(theta: Tensor, generator: torch.Generator) -> Tensor:
    """``theta: (N, 10)`` -> ``x: (N, 10)`` with ``x ~ N(theta, 0.1 I)``."""
    return theta + math.sqrt(_GL_NOISE_VAR) * torch.randn(theta.shape, generator=generator)


def _reference_gaussian_linear(x_obs: Tensor, num_samples: int, generator: torch.Generator) -> Tensor:
    """Posterior ``N(x / 2, 0.05 I)`` given ``x_obs: (10,)`` -> ``(num_samples, 10)``."""
    post_var = 1.0 / (1.0 / _GL_PRIOR_VAR + 1.0 / _GL_NOISE_VAR)
    mean = post_var / _GL_NOISE_VAR * x_obs
    return mean + math.sqrt(post_var) * torch.randn(num_samples, _GL_DIM, generator=generator)


@register("gaussian_linear")
def gaussian_linear() -> Simulator:
    names = [f"theta{i + 1}" for i in range(_GL_DIM)]
    return Simulator(
        name="gaussian_linear",
        title="Gaussian linear (10-D)",
        description=(
            "Ten numbers, each measured once with Gaussian noise: an easy model in ten dimensions, "
            "solved exactly. "
            "Ten unknown numbers theta1..theta10 are each measured once, directly, with Gaussian "
            "noise of variance 0.1: x_i is theta_i plus noise. The prior is also Gaussian with "
            "variance 0.1 around zero. The exact posterior is Gaussian too: centred halfway "
            "between the prior mean 0 and the observation, with variance 0.05 in every "
            "direction. It is easy in principle but has ten dimensions, which tests how well a "
            "method scales: a method must get the width of the posterior right in every direction, "
            "not only its centre, and errors add up over the ten parameters. It is a standard test "
            "problem of the SBI benchmark (sbibm), defined exactly as there."
        ),
        equations=(
            r"x \sim \mathcal{N}(\theta,\ 0.1\, I_{10}),\quad \theta \sim \mathcal{N}(0,\ 0.1\, I_{10}) \\"
            r" \theta \mid x \sim \mathcal{N}\!\left(\tfrac{1}{2} x,\ 0.05\, I_{10}\right)"
        ),
        param_names=names,
        param_units=[""] * _GL_DIM,
        obs_names=[f"x{i + 1}" for i in range(_GL_DIM)],
        obs_units=[""] * _GL_DIM,
        prior=Prior.from_spec(
            [{"name": n, "dist": "normal", "loc": 0.0, "scale": math.sqrt(_GL_PRIOR_VAR)} for n in names]
        ),
        # sbibm gaussian_linear observation 1
        true_theta=[
            0.27184236, 0.6762953, 0.17189318, -0.04218617, -0.82151634,
            0.024290232, -0.24255924, -0.16438946, -0.13595216, 0.26958188,
        ],
        simulate_fn=_simulate_gaussian_linear,
        reference_fn=_reference_gaussian_linear,
        tags=("benchmark", "sbibm", "closed-form"),
    )


# ---------------------------------------------------------------------------
# SLCP
# ---------------------------------------------------------------------------
_SLCP_BOUND = 3.0
_SLCP_DRAWS = 4
_SLCP_EPS = 1e-6


def _simulate_slcp(theta: Tensor, generator: torch.Generator) -> Tensor:
    """``theta: (N, 5)`` -> ``x: (N, 8)``, four iid 2-D Gaussian draws flattened.

    Uses the explicit Cholesky factor of S: x = m + (l11 z1, l21 z1 + l22 z2).
    """
    n = theta.shape[0]
    m = theta[:, None, :2]  # (N, 1, 2)
    s1, s2 = theta[:, 2] ** 2, theta[:, 3] ** 2
    rho = torch.tanh(theta[:, 4])
    var1, var2, cov = s1**2 + _SLCP_EPS, s2**2 + _SLCP_EPS, rho * s1 * s2
    l11 = torch.sqrt(var1)
    l21 = cov / l11
    l22 = torch.sqrt((var2 - l21**2).clamp_min(0.0))
    z = torch.randn(n, _SLCP_DRAWS, 2, generator=generator)
    x0 = l11[:, None] * z[..., 0]
    x1 = l21[:, None] * z[..., 0] + l22[:, None] * z[..., 1]
    return (m + torch.stack([x0, x1], dim=-1)).reshape(n, 2 * _SLCP_DRAWS)


def _slcp_log_likelihood(theta: Tensor, x_obs: Tensor) -> Tensor:
    """``log p(x_obs | theta)``: ``theta (..., 5)``, ``x_obs (8,)`` -> ``(...)``, the four draws' Gaussian densities."""
    s1, s2 = theta[..., 2] ** 2, theta[..., 3] ** 2
    var1, var2, cov = s1**2 + _SLCP_EPS, s2**2 + _SLCP_EPS, torch.tanh(theta[..., 4]) * s1 * s2
    det = var1 * var2 - cov**2
    d = x_obs.to(theta.dtype).reshape(_SLCP_DRAWS, 2) - theta[..., None, :2]  # (..., 4, 2)
    quad = (var2[..., None] * d[..., 0] ** 2 - 2 * cov[..., None] * d[..., 0] * d[..., 1]
            + var1[..., None] * d[..., 1] ** 2) / det[..., None]
    return -_SLCP_DRAWS * (math.log(2 * math.pi) + 0.5 * torch.log(det)) - 0.5 * quad.sum(-1)


# MCMC settings of the reference (bench/mcmc.py): 100 chains, one draw every 8 sweeps after 100
# warm-up sweeps, no mode jumps (the mirror modes are symmetrised exactly, see the module docstring,
# and runs with jumps found no other mode); for 10,000 samples the chains' R-hat is below 1.01 and
# the bulk ESS close to the number of draws
_SLCP_CHAINS, _SLCP_WARMUP, _SLCP_THIN, _SLCP_CANDIDATES = 100, 100, 8, 20_000


def _reference_slcp(x_obs: Tensor, num_samples: int, generator: torch.Generator) -> Tensor:
    """Posterior samples ``(num_samples, 5)`` given ``x_obs: (8,)``, by slice sampling (see the module docstring)."""
    x64 = x_obs.to(torch.float64)

    def log_post(theta: Tensor) -> Tensor:  # (G, C, 5) -> (G, C); the uniform prior is the box
        inside = (theta.abs() <= _SLCP_BOUND).all(-1)
        return torch.where(inside, _slcp_log_likelihood(theta, x64), -torch.inf)

    def candidates(m: int) -> Tensor:
        return (torch.rand(m, 5, generator=generator, dtype=torch.float64) * 2 - 1) * _SLCP_BOUND

    res = sample_mcmc(log_post, candidates, num_samples, num_chains=_SLCP_CHAINS, warmup=_SLCP_WARMUP,
                      thin=_SLCP_THIN, num_init_candidates=_SLCP_CANDIDATES, generator=generator, jumps=False)
    theta = res.samples[0]
    signs = torch.where(torch.rand(num_samples, 2, generator=generator, dtype=theta.dtype) < 0.5, -1.0, 1.0)
    theta[:, 2:4] = theta[:, 2:4].abs() * signs
    return theta.to(torch.float32)


@register("slcp")
def slcp() -> Simulator:
    names = [f"theta{i + 1}" for i in range(5)]
    obs = [f"{c}{j + 1}" for j in range(_SLCP_DRAWS) for c in ("u", "v")]
    return Simulator(
        name="slcp",
        title="SLCP (simple likelihood, complex posterior)",
        description=(
            "Five parameters shape a 2-D Gaussian seen through four points: a simple likelihood, a "
            "four-mode posterior. "
            "Five abstract parameters shape a 2-D Gaussian cloud: theta1 and theta2 are its "
            "centre, theta3 and theta4 set its spread along each axis (through their squares, so "
            "their signs do not matter) and theta5 sets how tilted it is (through tanh, a "
            "correlation between -1 and 1). We observe four random points from this cloud, "
            "(u1, v1) to (u4, v4). The likelihood is a plain Gaussian, yet the posterior is "
            "awkward: the sign symmetries of theta3 and theta4 create four separate modes and the "
            "few data points leave it wide and oddly shaped, which is hard for methods that expect one "
            "bump. There is no closed-form posterior, but the likelihood is known, so a long MCMC run "
            "gives reference samples to compare with. It is a standard test problem of the SBI "
            "benchmark (sbibm), defined exactly as there."
        ),
        equations=(
            r"m = (\theta_1, \theta_2),\quad s_1 = \theta_3^2,\quad s_2 = \theta_4^2,"
            r"\quad \rho = \tanh \theta_5 \\"
            r" S = \begin{pmatrix} s_1^2 & \rho s_1 s_2 \\ \rho s_1 s_2 & s_2^2 \end{pmatrix},"
            r"\quad (u_j, v_j) \sim \mathcal{N}(m, S),\ j = 1..4 \\"
            r" \theta \sim \mathcal{U}(-3, 3)^5"
        ),
        param_names=names,
        param_units=[""] * 5,
        obs_names=obs,
        obs_units=[""] * len(obs),
        prior=Prior.uniform_box(names, -_SLCP_BOUND, _SLCP_BOUND),
        # the classic SLCP test point (Papamakarios et al. 2019; sbibm observation 1 differs)
        true_theta=[0.7, -2.9, -1.0, -0.9, 0.6],
        simulate_fn=_simulate_slcp,
        reference_fn=_reference_slcp,
        tags=("benchmark", "sbibm", "multimodal"),
    )


# ---------------------------------------------------------------------------
# gaussian mixture
# ---------------------------------------------------------------------------
_GM_BOUND = 10.0
_GM_SCALES = (1.0, 0.1)  # standard deviations of the two components


def _mixture_draws(centre: Tensor, n: int, generator: torch.Generator) -> Tensor:
    """``(n, 2)`` draws of ``0.5 N(centre, I) + 0.5 N(centre, 0.01 I)``; centre ``(n, 2)`` or ``(2,)``."""
    broad = torch.rand(n, 1, generator=generator) < 0.5
    scale = torch.where(broad, _GM_SCALES[0], _GM_SCALES[1])
    return centre + scale * torch.randn(n, 2, generator=generator)


def _simulate_gaussian_mixture(theta: Tensor, generator: torch.Generator) -> Tensor:
    """``theta: (N, 2)`` -> ``x: (N, 2)``, one mixture component chosen per row."""
    return _mixture_draws(theta, theta.shape[0], generator)


def _reference_gaussian_mixture(x_obs: Tensor, num_samples: int, generator: torch.Generator) -> Tensor:
    """Posterior samples ``(num_samples, 2)``: the mixture around ``x_obs`` truncated to the box."""
    return _rejection_fill(
        lambda m: _mixture_draws(x_obs, m, generator),
        lambda t: _in_box(t, _GM_BOUND),
        num_samples,
        2,
    )


@register("gaussian_mixture")
def gaussian_mixture() -> Simulator:
    return Simulator(
        name="gaussian_mixture",
        title="Gaussian mixture",
        description=(
            "The centre of a 2-D measurement, sometimes sharp, sometimes blurred: a narrow spike on a "
            "broad posterior. "
            "The parameters theta1, theta2 are the unknown centre of a 2-D measurement. Each "
            "simulation flips a fair coin: heads, the measurement x lands near the centre with a "
            "spread of 1; tails, it lands very close with a spread of 0.1. So the posterior is a "
            "sharp spike sitting on a broad bump, both centred on the observation (cut off at the "
            "prior box from -10 to 10). Methods that smooth too much miss the spike; methods that "
            "are too confident miss the bump. The exact posterior is known. It is a standard test "
            "problem of the SBI benchmark (sbibm), defined exactly as there."
        ),
        equations=(
            r"x \sim \tfrac12\,\mathcal{N}(\theta, I) + \tfrac12\,\mathcal{N}(\theta, 0.01\, I) \\"
            r" \theta \sim \mathcal{U}(-10, 10)^2 \\"
            r" p(\theta \mid x) \propto \left[\tfrac12\,\mathcal{N}(\theta; x, I)"
            r" + \tfrac12\,\mathcal{N}(\theta; x, 0.01\, I)\right] \mathbb{1}[\theta \in [-10, 10]^2]"
        ),
        param_names=["theta1", "theta2"],
        param_units=["", ""],
        obs_names=["x1", "x2"],
        obs_units=["", ""],
        prior=Prior.uniform_box(["theta1", "theta2"], -_GM_BOUND, _GM_BOUND),
        true_theta=[-9.527071, -1.4817104],  # sbibm gaussian_mixture observation 1
        simulate_fn=_simulate_gaussian_mixture,
        reference_fn=_reference_gaussian_mixture,
        tags=("benchmark", "sbibm", "closed-form", "multiscale"),
    )

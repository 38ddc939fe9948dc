r"""Teaching simulators: small models whose answer a student can check by hand.

Linear regression (D = 2, K = 10)
    y_i = b0 + b1 x_i + eps_i,  eps_i ~ N(0, 0.5^2),  x_i = linspace(-1, 1, 10);
    prior b0, b1 ~ N(0, 1).  With design matrix X = [1, x] the posterior is
    Gaussian: Sigma = (X^T X / sigma^2 + I)^-1,  mu = Sigma X^T y / sigma^2.

Coin flip (D = 1, K = 1)
    h ~ Binomial(20, p),  prior p ~ Beta(2, 2);  posterior Beta(2 + h, 2 + 20 - h).

Projectile (D = 2, K = 4) and projectile with linear drag (D = 3, K = 4)
    A ball leaves the ground at speed v0 and angle a. Without drag
    R = v0^2 sin(2a) / g,  H = v0^2 sin^2(a) / (2 g).
    With linear drag (acceleration -k v) and E(t) = (1 - e^{-k t}) / k,
    x(t) = v0x E(t),  y(t) = v0y E(t) - (g / k)(t - E(t)),
    H = v0y / k - (g / k^2) log(1 + k v0y / g); the landing time T solves y(T) = 0
    (Newton's method, started at the drag-free flight time 2 v0y / g).
    Observed: three throws' distances d_j = R (1 + 0.03 u_j) + 0.5 w_j and the
    apex height h = H (1 + 0.05 u) + 0.3 w (u, w standard normal).

Damped oscillator (D = 2, K = 8)
    x'' + 2 zeta omega x' + omega^2 x = 0, x(0) = 1, x'(0) = 0; for zeta < 1
    x(t) = e^{-zeta omega t} [cos(omega_d t) + zeta / sqrt(1 - zeta^2) sin(omega_d t)],
    omega_d = omega sqrt(1 - zeta^2); observed at t = 0.5, 1.0, ..., 4.0 s with
    N(0, 0.05^2) noise.

Every ``_simulate_*`` takes ``theta: (N, D)`` float32 and a ``torch.Generator``
and returns ``x: (N, K)`` float32; every ``_reference_*`` takes
``x_obs: (K,)``, ``num_samples`` and a generator and returns ``(num_samples, D)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sbi_core.simulators.base import Simulator
from sbi_core.simulators.registry import register
from sbi_core.stats.priors import Marginal, Prior

# ---------------------------------------------------------------------------
# linear regression
# ---------------------------------------------------------------------------
_LR_SIGMA = 0.5
_LR_X = torch.linspace(-1.0, 1.0, 10)


def _lr_design() -> Tensor:
    """``(10, 2)`` float64 design matrix ``[1, x_i]``."""
    x = _LR_X.to(torch.float64)
    return torch.stack([torch.ones_like(x), x], dim=1)


def _simulate_linear_regression(theta: Tensor, generator: torch.Generator) -> Tensor:
    """``theta: (N, 2) = (b0, b1)`` -> ``y: (N, 10)``."""
    b0, b1 = theta[:, :1], theta[:, 1:2]
    eps = torch.randn(theta.shape[0], _LR_X.numel(), generator=generator)
    return b0 + b1 * _LR_X + _LR_SIGMA * eps


def _reference_linear_regression(x_obs: Tensor, num_samples: int, generator: torch.Generator) -> Tensor:
    """Exact conjugate posterior of ``(b0, b1)`` given ``y: (10,)`` -> ``(num_samples, 2)``."""
    X = _lr_design()
    y = x_obs.to(torch.float64)
    precision = X.T @ X / _LR_SIGMA**2 + torch.eye(2, dtype=torch.float64)
    cov = torch.linalg.inv(precision)
    mean = cov @ (X.T @ y) / _LR_SIGMA**2
    chol = torch.linalg.cholesky(cov)
    z = torch.randn(num_samples, 2, generator=generator, dtype=torch.float64)
    return (mean + z @ chol.T).to(torch.float32)


@register("linear_regression")
def linear_regression() -> Simulator:
    n = _LR_X.numel()
    return Simulator(
        name="linear_regression",
        title="Linear regression",
        description=(
            "The simplest statistical model: a straight line plus noise. We measure a quantity y "
            f"at {n} fixed positions x, evenly spaced from -1 to 1 (y1 is at x = -1, y10 at x = +1). "
            "The true relation is a line with intercept b0 (the value of y at x = 0) and slope b1 "
            "(how much y grows per unit of x), and every measurement is blurred by independent "
            f"Gaussian noise with a known standard deviation of {_LR_SIGMA}. Both parameters start "
            "with a standard normal prior. Because everything is Gaussian, the exact posterior is "
            "known in closed form, so you can see how close a neural estimate gets to the truth."
        ),
        equations=(
            r"y_i = b_0 + b_1 x_i + \varepsilon_i,\quad \varepsilon_i \sim \mathcal{N}(0, 0.5^2),"
            r"\quad x_i \in \{-1, \dots, 1\}\ (10\ \text{points}) \\"
            r" b_0, b_1 \sim \mathcal{N}(0, 1) \\"
            r" \Sigma_{\text{post}} = \left(X^\top X / \sigma^2 + I\right)^{-1},\quad"
            r" \mu_{\text{post}} = \Sigma_{\text{post}} X^\top y / \sigma^2"
        ),
        param_names=["b0", "b1"],
        param_units=["", ""],
        obs_names=[f"y{i + 1}" for i in range(n)],
        obs_units=[""] * n,
        prior=Prior.from_spec(
            [
                {"name": "b0", "dist": "normal", "loc": 0.0, "scale": 1.0},
                {"name": "b1", "dist": "normal", "loc": 0.0, "scale": 1.0},
            ]
        ),
        true_theta=[0.5, -1.2],
        simulate_fn=_simulate_linear_regression,
        reference_fn=_reference_linear_regression,
        tags=("teaching", "closed-form"),
    )


# ---------------------------------------------------------------------------
# coin flip
# ---------------------------------------------------------------------------
_COIN_FLIPS = 20
_COIN_A, _COIN_B = 2.0, 2.0


def _simulate_coin_flip(theta: Tensor, generator: torch.Generator) -> Tensor:
    """``theta: (N, 1) = p`` -> ``heads: (N, 1)``, the number of heads in 20 flips."""
    u = torch.rand(theta.shape[0], _COIN_FLIPS, generator=generator)
    return (u < theta[:, :1]).sum(dim=1, keepdim=True).to(torch.float32)


def _reference_coin_flip(x_obs: Tensor, num_samples: int, generator: torch.Generator) -> Tensor:
    """Posterior ``Beta(2 + h, 2 + 20 - h)`` given ``heads: (1,)`` -> ``(num_samples, 1)``."""
    h = float(x_obs[0].round().clamp(0, _COIN_FLIPS))
    post = Marginal.from_spec(
        {"name": "p", "dist": "beta", "alpha": _COIN_A + h, "beta": _COIN_B + _COIN_FLIPS - h}
    )
    return post.sample(num_samples, generator).reshape(num_samples, 1)


@register("coin_flip")
def coin_flip() -> Simulator:
    return Simulator(
        name="coin_flip",
        title="Coin flip",
        description=(
            f"A possibly unfair coin is flipped {_COIN_FLIPS} times and we only record how many "
            "times it landed heads. The unknown parameter p is the probability of heads on a single "
            "flip (0.5 for a fair coin). Before seeing any data we believe p is probably near 0.5 "
            "but could be anything between 0 and 1: a Beta(2, 2) prior. With h heads observed, "
            "the exact posterior is Beta(2 + h, 2 + 20 - h), the textbook example of a conjugate "
            "update: every head adds one to the first number, every tail one to the second."
        ),
        equations=(
            r"h \sim \operatorname{Binomial}(20, p) \\"
            r" p \sim \operatorname{Beta}(2, 2) \\"
            r" p \mid h \sim \operatorname{Beta}(2 + h,\ 2 + 20 - h)"
        ),
        param_names=["p"],
        param_units=[""],
        obs_names=["heads"],
        obs_units=["flips"],
        prior=Prior.from_spec(
            [{"name": "p", "dist": "beta", "alpha": _COIN_A, "beta": _COIN_B, "low": 0.0, "high": 1.0}]
        ),
        true_theta=[0.7],
        simulate_fn=_simulate_coin_flip,
        reference_fn=_reference_coin_flip,
        tags=("teaching", "closed-form"),
    )


# ---------------------------------------------------------------------------
# projectile (with and without linear drag)
# ---------------------------------------------------------------------------
_G = 9.81
_THROWS = 3
_DIST_REL, _DIST_ABS = 0.03, 0.5  # throw-to-throw spread (fraction) and tape error [m]
_HEIGHT_REL, _HEIGHT_ABS = 0.05, 0.3  # apex height read off a video
_K_MIN = 1e-6  # drag below this is treated as (numerically) zero
_NEWTON_STEPS = 30


def _drag_free_flight(v0: Tensor, angle_deg: Tensor) -> tuple[Tensor, Tensor]:
    """Range and apex height ``(N,)`` each, for ``v0, angle_deg: (N,)``."""
    a = torch.deg2rad(angle_deg.to(torch.float64))
    v0 = v0.to(torch.float64)
    return v0**2 * torch.sin(2 * a) / _G, (v0 * torch.sin(a)) ** 2 / (2 * _G)


def _linear_drag_flight(v0: Tensor, angle_deg: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
    """Range and apex height ``(N,)`` each under linear drag ``k: (N,)`` [1/s].

    Works in float64: the closed forms subtract nearly equal numbers when k is small.
    y(t) is concave and the drag-free flight time lies at or beyond the root, so Newton's
    method started there approaches the landing time monotonically from the right.
    """
    a = torch.deg2rad(angle_deg.to(torch.float64))
    v0 = v0.to(torch.float64)
    k = k.to(torch.float64).clamp_min(_K_MIN)
    vx, vy = v0 * torch.cos(a), v0 * torch.sin(a)
    height = vy / k - _G / k**2 * torch.log1p(k * vy / _G)
    t = 2 * vy / _G
    for _ in range(_NEWTON_STEPS):
        e = -torch.expm1(-k * t) / k
        y = vy * e - _G / k * (t - e)
        dy = (vy + _G / k) * torch.exp(-k * t) - _G / k
        t = t - y / dy
    e = -torch.expm1(-k * t) / k
    return vx * e, height


def _observe_throws(rng: Tensor, height: Tensor, generator: torch.Generator) -> Tensor:
    """Noisy distances of 3 throws and a noisy apex height: ``(N,), (N,) -> (N, 4)`` float32."""
    n = rng.shape[0]
    rng, height = rng.to(torch.float32)[:, None], height.to(torch.float32)[:, None]
    u = torch.randn(n, _THROWS + 1, generator=generator)
    w = torch.randn(n, _THROWS + 1, generator=generator)
    d = rng * (1 + _DIST_REL * u[:, :_THROWS]) + _DIST_ABS * w[:, :_THROWS]
    h = height * (1 + _HEIGHT_REL * u[:, _THROWS:]) + _HEIGHT_ABS * w[:, _THROWS:]
    return torch.cat([d, h], dim=1)


def _simulate_projectile(theta: Tensor, generator: torch.Generator) -> Tensor:
    """``theta: (N, 2) = (v0 [m/s], angle [deg])`` -> ``(N, 4) = (d1, d2, d3, h)`` [m]."""
    rng, height = _drag_free_flight(theta[:, 0], theta[:, 1])
    return _observe_throws(rng, height, generator)


def _simulate_projectile_drag(theta: Tensor, generator: torch.Generator) -> Tensor:
    """``theta: (N, 3) = (v0 [m/s], angle [deg], k [1/s])`` -> ``(N, 4) = (d1, d2, d3, h)`` [m]."""
    rng, height = _linear_drag_flight(theta[:, 0], theta[:, 1], theta[:, 2])
    return _observe_throws(rng, height, generator)


_PROJECTILE_OBS = dict(
    obs_names=[f"d{j + 1}" for j in range(_THROWS)] + ["h"],
    obs_units=["m"] * (_THROWS + 1),
)
_PROJECTILE_PRIOR = [
    {"name": "v0", "dist": "uniform", "low": 5.0, "high": 30.0},
    {"name": "angle", "dist": "uniform", "low": 10.0, "high": 80.0},
]
_PROJECTILE_NOISE_TEX = (
    r" d_j = R\,(1 + 0.03\,u_j) + 0.5\,w_j,\ j = 1..3,\quad"
    r" h = H\,(1 + 0.05\,u) + 0.3\,w,\quad u, w \sim \mathcal{N}(0, 1)"
)


@register("projectile")
def projectile() -> Simulator:
    return Simulator(
        name="projectile",
        title="Projectile",
        description=(
            "A ball is thrown from ground level with launch speed v0 (metres per second) at an "
            "angle (degrees above the horizontal); there is no air resistance and gravity is "
            "g = 9.81 m/s². The same throw is repeated three times and we measure where the ball "
            "lands (d1, d2, d3, in metres): real throws vary by a few percent and the tape measure "
            "adds about half a metre of error. We also estimate the highest point of the flight, h, "
            "from a video, which is less precise. Distance alone cannot tell a flat throw from a "
            "steep one: angles a and 90° - a give exactly the same range, so the posterior from "
            "distances would have two mirror-image peaks. The height breaks the tie (a steep throw "
            "goes much higher), which is why it is part of the observation."
        ),
        equations=(
            r"R = \frac{v_0^2 \sin 2\alpha}{g},\quad H = \frac{v_0^2 \sin^2 \alpha}{2g},"
            r"\quad g = 9.81\ \mathrm{m/s^2} \\"
            + _PROJECTILE_NOISE_TEX
            + r" \\ v_0 \sim \mathcal{U}(5, 30),\quad \alpha \sim \mathcal{U}(10^\circ, 80^\circ)"
        ),
        param_names=["v0", "angle"],
        param_units=["m/s", "deg"],
        prior=Prior.from_spec(_PROJECTILE_PRIOR),
        true_theta=[18.0, 35.0],
        simulate_fn=_simulate_projectile,
        reference_fn=None,
        tags=("teaching", "physics"),
        **_PROJECTILE_OBS,
    )


@register("projectile_drag")
def projectile_drag() -> Simulator:
    return Simulator(
        name="projectile_drag",
        title="Projectile with air drag",
        description=(
            "The projectile again, now with air resistance. Besides the launch speed v0 (m/s) "
            "and the launch angle (degrees), a third parameter k (per second) says how strongly "
            "the air slows the ball: the drag force is proportional to the velocity, so every "
            "second the ball loses roughly a fraction k of its speed on top of what gravity does. "
            "k = 0 is the drag-free throw; a large k makes throws shorter and lower and makes the "
            "flat and steep throws no longer mirror images. We observe the landing distances of "
            "three repeated throws (d1..d3, metres) and the highest point reached (h, metres), all "
            "with the same measurement noise as in the drag-free version. Speed and drag partly "
            "compensate each other (a faster throw in thicker air lands in the same place), so "
            "expect a curved, correlated posterior."
        ),
        equations=(
            r"\ddot{\mathbf r} = -g\,\hat{\mathbf y} - k\,\dot{\mathbf r},\quad"
            r" E(t) = \frac{1 - e^{-kt}}{k} \\"
            r" x(t) = v_0 \cos\alpha\, E(t),\quad"
            r" y(t) = v_0 \sin\alpha\, E(t) - \frac{g}{k}\,\bigl(t - E(t)\bigr) \\"
            r" H = \frac{v_0 \sin\alpha}{k} - \frac{g}{k^2}\ln\!\Bigl(1 + \frac{k v_0 \sin\alpha}{g}\Bigr),"
            r"\quad R = x(T),\ y(T) = 0 \\"
            + _PROJECTILE_NOISE_TEX
            + r" \\ v_0 \sim \mathcal{U}(5, 30),\ \alpha \sim \mathcal{U}(10^\circ, 80^\circ),"
            r"\ k \sim \mathcal{U}(0, 0.5)"
        ),
        param_names=["v0", "angle", "k"],
        param_units=["m/s", "deg", "1/s"],
        prior=Prior.from_spec(
            _PROJECTILE_PRIOR + [{"name": "k", "dist": "uniform", "low": 0.0, "high": 0.5}]
        ),
        true_theta=[18.0, 35.0, 0.15],
        simulate_fn=_simulate_projectile_drag,
        reference_fn=None,
        tags=("teaching", "physics"),
        **_PROJECTILE_OBS,
    )


# ---------------------------------------------------------------------------
# damped oscillator
# ---------------------------------------------------------------------------
_OSC_TIMES = torch.arange(1, 9, dtype=torch.float32) * 0.5  # 0.5, 1.0, ..., 4.0 s
_OSC_NOISE = 0.05


def _simulate_damped_oscillator(theta: Tensor, generator: torch.Generator) -> Tensor:
    """``theta: (N, 2) = (omega [rad/s], zeta)`` -> positions ``(N, 8)`` at t = 0.5..4 s.

    Underdamped closed form (the prior keeps zeta <= 0.5 < 1).
    """
    omega, zeta = theta[:, :1], theta[:, 1:2].clamp(max=0.999)
    root = torch.sqrt(1 - zeta**2)
    wd_t = omega * root * _OSC_TIMES
    pos = torch.exp(-zeta * omega * _OSC_TIMES) * (torch.cos(wd_t) + zeta / root * torch.sin(wd_t))
    return pos + _OSC_NOISE * torch.randn(pos.shape, generator=generator)


@register("damped_oscillator")
def damped_oscillator() -> Simulator:
    return Simulator(
        name="damped_oscillator",
        title="Damped oscillator",
        description=(
            "A mass on a spring, pulled 1 unit from its rest position and released, swings back "
            "and forth while friction slowly takes its energy away. The angular frequency omega "
            "(radians per second) sets how fast it swings: one full swing takes 2π/omega seconds. "
            "The damping ratio zeta (no unit) sets how quickly the swings die out: near 0 it "
            "rings for a long time, at 0.5 it is almost still after a couple of swings. We record "
            "the position at 8 moments, every half second from 0.5 s to 4 s, with a small "
            "measurement error (standard deviation 0.05). Frequency shows up as where the curve "
            "crosses zero, damping as how fast the peaks shrink."
        ),
        equations=(
            r"\ddot x + 2\zeta\omega\,\dot x + \omega^2 x = 0,\quad x(0) = 1,\ \dot x(0) = 0 \\"
            r" x(t) = e^{-\zeta\omega t}\left[\cos(\omega_d t) + \frac{\zeta}{\sqrt{1-\zeta^2}}"
            r"\sin(\omega_d t)\right],\quad \omega_d = \omega\sqrt{1-\zeta^2} \\"
            r" x_j = x(t_j) + \mathcal{N}(0, 0.05^2),\quad t_j = 0.5, 1.0, \dots, 4.0\ \mathrm{s} \\"
            r" \omega \sim \mathcal{U}(0.5, 3),\quad \zeta \sim \mathcal{U}(0.01, 0.5)"
        ),
        param_names=["omega", "zeta"],
        param_units=["rad/s", ""],
        obs_names=[f"x(t={float(t):.1f})" for t in _OSC_TIMES],
        obs_units=[""] * _OSC_TIMES.numel(),
        prior=Prior.from_spec(
            [
                {"name": "omega", "dist": "uniform", "low": 0.5, "high": 3.0},
                {"name": "zeta", "dist": "uniform", "low": 0.01, "high": 0.5},
            ]
        ),
        true_theta=[1.8, 0.15],
        simulate_fn=_simulate_damped_oscillator,
        reference_fn=None,
        tags=("teaching", "physics"),
    )

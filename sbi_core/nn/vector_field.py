"""Conditional vector fields ``v(theta_t, t, x)``: continuous normalizing flows for FMPE and NPSE.

A network of ``(theta_t, t, x)`` defines an ODE ``d theta_t / dt = v(theta_t, t, x)``
that carries a simple base distribution at one end of ``[0, 1]`` (the *noise*
end) to ``q(theta | x)`` at the other (the *data* end). Two ways to train it,
each a *path* of distributions between the two ends:

* ``"flow_matching"`` (FMPE; Lipman et al., 2023, arXiv:2210.02747; Wildberger,
  Dax et al., 2023, arXiv:2305.17161): the optimal-transport path
  ``theta_t = (1 - (1 - sigma_min) t) z + t theta``, ``z ~ N(0, I)``, noise at
  ``t = 0``, data at ``t = 1``. The network regresses the conditional velocity
  ``u = theta - (1 - sigma_min) z``:
  ``L = E_t E_z E_(theta, x) |v(theta_t, t, x) - u|^2 / D``, whose minimiser is the
  marginal velocity that carries ``N(0, I)`` to the posterior. Training times are
  drawn from ``p(t) = (1 + alpha) t^alpha`` (``time_exponent = alpha``; sampled as
  ``u^(1 / (1 + alpha))``, as in the authors' code), which favours the data end for ``alpha > 0``.
* ``"vp"`` / ``"ve"`` (NPSE; Song et al., 2021, arXiv:2011.13456; Sharrock et al.,
  arXiv:2210.04872; Geffner et al., arXiv:2209.14249): a diffusion
  ``theta_t = m(t) theta + sigma(t) eps`` with data at ``t = t_min`` and noise at
  ``t = 1``; variance preserving (``m = exp(-t^2 (b_max - b_min) / 4 - t b_min / 2)``,
  ``sigma^2 = 1 - m^2``) or variance exploding (``m = 1``,
  ``sigma = s_min (s_max / s_min)^t``). The network predicts the noise,
  ``score = -eps_hat / sigma(t)``, trained by denoising score matching with the usual
  weighting ``lambda(t) = sigma(t)^2``: ``L = E_t E_eps |eps_hat - eps|^2 / D``, training
  times drawn so that ``log sigma(t)`` is uniform. The network's output is added to the
  noise prediction that is exact for ``N(0, I)`` parameters, ``sigma y / (m^2 + sigma^2)``
  (an untrained network samples the z-scored prior, not a blow-up of it).
  Samples come from the probability-flow ODE
  ``d theta / dt = f(theta, t) - g(t)^2 score / 2`` (the default) or the reverse SDE
  with a Langevin corrector (``sampler="sde"``, predictor-corrector, Song et al. Alg. 3).
  The ODE is solved in equal steps of ``log sigma`` (VE: ``t`` itself; VP:
  ``log(sigma / m)``, as uniform steps of ``t`` put most of VP's noise levels into the
  last step).

Everything happens in standardised units: ``theta`` and ``x`` are z-scored with the
first round's statistics (:mod:`.standardize`), and the network's input
``theta_t`` is divided by its standard deviation along the path
(``sqrt((1 - (1 - sigma_min) t)^2 + t^2)`` for flow matching, ``sqrt(1 + sigma^2)``
for VE, 1 for VP) so that it sees numbers of unit scale at every ``t``.

**The network** (:class:`VectorFieldNet`): sinusoidal features of ``t`` and the
(standardised or embedded) ``x`` go through one MLP into a conditioning vector ``c``;
``theta_t`` enters a stack of residual blocks, each adding a projection of ``c``
(or, with ``residual=False``, a plain MLP on ``[theta_t, c]`` of the same depth).
The output layer starts at zero. With a learned summary of ``x``
(:mod:`.embeddings`) the embedding network replaces the z-scoring of ``x`` and
trains with the field, as it does with a flow.

**Sampling and densities.** Samples solve the ODE with a fixed-step solver
(:mod:`.ode`; ``steps`` and ``solver`` in the config; ``density_steps`` for densities).
With the exact field of a Gaussian (``N(0.7, 0.05^2)`` in z-scored units) in place of
the network, RK4 in 20 steps draws mean 0.699 and sd 0.0500 by flow matching, 0.699 and
0.0503 by VP (``t_min`` = 1e-5; with 1e-3 the sd was ``sqrt(0.05^2 + sigma(t_min)^2)`` =
0.0513), 0.696 and 0.0515 by VE (``sigma_min`` = 0.01 widens it so; its base
``N(0, 1 + sigma_max^2)`` ignores the posterior's mean). ``log_prob`` integrates the
probability-flow ODE back from the data end with the divergence of ``v``
(exact: ``D`` backward passes per evaluation, or Hutchinson's estimate with one),
so a density costs about ``(D + 1)`` times a sample's work, plus the backward passes' memory.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any, Optional

import torch
from torch import Tensor, nn

from sbi_core.nn.embeddings import Embedding, build_embedding, checked_config_dict, embedding_config, make_embedding
from sbi_core.nn.ode import SOLVERS, check_solver, divergence, odeint
from sbi_core.nn.standardize import Standardize, zscore_stats

__all__ = ["PATHS", "SAMPLERS", "VectorFieldConfig", "VectorFieldNet", "ConditionalVectorField",
           "build_vector_field"]

PATHS = ("flow_matching", "vp", "ve")
SAMPLERS = ("ode", "sde")
CHUNK_ROWS = 50_000  # rows per network pass when sampling (memory)
LOG_PROB_ROWS = 10_000  # rows per pass when a density needs the backward passes


@dataclass(frozen=True)
class VectorFieldConfig:
    """Architecture, path and sampler of a conditional vector field (JSON-serialisable).

    path: ``"flow_matching"`` (FMPE), ``"vp"`` or ``"ve"`` (NPSE).
    theta_dim, x_dim: ``D`` and ``K``.
    hidden_features: width of the network; num_blocks: its residual blocks.
    time_features: sinusoidal features of ``t``; residual: residual blocks (else a plain MLP).
    sigma_min: flow matching: the path's width at the data end; VE: the smallest noise.
    sigma_max: VE: the largest noise. beta_min, beta_max: VP's noise rates. t_min: the data end
        of a diffusion (its ODE stops there).
    time_exponent: flow matching's ``alpha`` (training times ``p(t) ~ t^alpha``).
    steps, solver: the ODE solver (:data:`sbi_core.nn.ode.SOLVERS`) that draws samples and densities;
        density_steps: the steps of ``log_prob`` and ``to_base`` (``None``: ``steps``).
    sampler: ``"ode"`` (probability flow) or, for a diffusion, ``"sde"`` (predictor-corrector).
    corrector_steps, snr: the Langevin corrector of ``"sde"`` sampling (steps per predictor step,
        signal-to-noise ratio).
    embedding: the learned summary of ``x`` (an :class:`~sbi_core.nn.embeddings.EmbeddingConfig`
        dict) or ``None`` (the z-scored ``x``).
    """

    path: str
    theta_dim: int
    x_dim: int
    hidden_features: int = 64
    num_blocks: int = 3
    time_features: int = 16
    residual: bool = True
    sigma_min: float = 1e-4
    sigma_max: float = 10.0
    beta_min: float = 0.1
    beta_max: float = 20.0
    t_min: float = 1e-5
    time_exponent: float = 0.0
    steps: int = 10
    solver: str = "rk4"
    density_steps: Optional[int] = None
    sampler: str = "ode"
    corrector_steps: int = 1
    snr: float = 0.16
    embedding: Optional[dict] = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.path not in PATHS:
            raise ValueError(f"path must be one of {', '.join(map(repr, PATHS))}, got {self.path!r}")
        if self.theta_dim < 1 or self.x_dim < 1:
            raise ValueError("theta_dim and x_dim must be at least 1")
        if self.hidden_features < 1 or self.num_blocks < 1 or self.time_features < 2:
            raise ValueError("hidden_features and num_blocks must be at least 1, time_features at least 2")
        check_solver(self.solver, self.steps)
        if self.density_steps is not None:
            check_solver(self.solver, self.density_steps)
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(map(repr, SAMPLERS))}, got {self.sampler!r}")
        if self.sampler == "sde" and self.path == "flow_matching":
            raise ValueError("sampler 'sde' is for a diffusion (path 'vp' or 've'); flow matching samples by its ODE")
        if not 0.0 <= self.sigma_min < 1.0 and self.path == "flow_matching":
            raise ValueError(f"sigma_min must be in [0, 1) for flow matching, got {self.sigma_min}")
        if self.path == "ve" and not 0.0 < self.sigma_min < self.sigma_max:
            raise ValueError("a VE diffusion needs 0 < sigma_min < sigma_max")
        if self.path == "vp" and not 0.0 < self.beta_min < self.beta_max:
            raise ValueError("a VP diffusion needs 0 < beta_min < beta_max")
        if not 0.0 < self.t_min < 0.5:
            raise ValueError(f"t_min must be in (0, 0.5), got {self.t_min}")
        if self.time_exponent <= -1.0:
            raise ValueError(f"time_exponent must be above -1, got {self.time_exponent}")
        object.__setattr__(self, "embedding", checked_config_dict(self.embedding, self.x_dim))

    @property
    def context_features(self) -> int:
        """What the network reads of ``x``: ``F`` with an embedding, else ``K``."""
        return int(self.embedding["features"]) if self.embedding is not None else self.x_dim

    @property
    def evaluations_per_sample(self) -> int:
        """Network passes one draw costs (the solver's per step, times the steps; plus the corrector's)."""
        if self.sampler == "sde":
            return self.steps * (1 + self.corrector_steps)
        return self.steps * SOLVERS[self.solver]


# ---------------------------------------------------------------------------
# the paths: where theta_t lies at time t, what the network regresses, the ODE it defines
# ---------------------------------------------------------------------------
class _FlowMatching:
    """The optimal-transport path: noise at ``t = 0``, data at ``t = 1``; the network is the velocity."""

    t_noise, t_data = 0.0, 1.0

    def __init__(self, cfg: VectorFieldConfig):
        self.sigma_min = float(cfg.sigma_min)
        self.alpha = float(cfg.time_exponent)

    def train_times(self, n: int, generator: torch.Generator) -> Tensor:
        return torch.rand(n, generator=generator) ** (1.0 / (1.0 + self.alpha))

    def noised(self, theta: Tensor, noise: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """``(theta_t, target)`` for data ``theta (B, D)``, noise ``z (B, D)``, times ``t (B, 1)``."""
        y = (1.0 - (1.0 - self.sigma_min) * t) * noise + t * theta
        return y, theta - (1.0 - self.sigma_min) * noise

    def input_scale(self, t: Tensor) -> Tensor:
        return torch.rsqrt((1.0 - (1.0 - self.sigma_min) * t) ** 2 + t**2)

    def velocity(self, out: Tensor, y: Tensor, t: Tensor) -> Tensor:
        return out

    def baseline(self, y: Tensor, t: Tensor) -> float:
        """What the network's output is added to: nothing (a zero field maps ``N(0, I)`` onto itself)."""
        return 0.0

    def base_std(self) -> float:
        return 1.0

    def solver_ends(self) -> tuple[float, float]:
        """The solver's variable ``s`` at the noise and the data end (here ``s = t``)."""
        return self.t_noise, self.t_data

    def time_of(self, s: float) -> tuple[float, float]:
        """``t(s)`` and ``dt/ds``."""
        return s, 1.0


class _Diffusion:
    """A VP or VE diffusion: data at ``t = t_min``, noise at ``t = 1``; the network predicts the noise."""

    t_noise = 1.0

    def __init__(self, cfg: VectorFieldConfig):
        self.kind = cfg.path
        self.t_data = float(cfg.t_min)
        self.beta_min, self.beta_max = float(cfg.beta_min), float(cfg.beta_max)
        self.sigma_min, self.sigma_max = float(cfg.sigma_min), float(cfg.sigma_max)

    def train_times(self, n: int, generator: torch.Generator) -> Tensor:
        """Times whose noise levels are log-uniform between ``sigma(t_min)`` and ``sigma(1)`` (VE: uniform ``t``)."""
        u = torch.rand(n, generator=generator)
        if self.kind == "ve":
            return self.t_data + (1.0 - self.t_data) * u
        ends = torch.tensor([self.t_data, 1.0], dtype=torch.float64)
        lo, hi = torch.log(self.mean_sigma(ends)[1])
        sigma2 = torch.exp(2.0 * (lo + (hi - lo) * u.double()))
        log_m = 0.5 * torch.log1p(-sigma2)  # -log m = t^2 (b_max - b_min) / 4 + t b_min / 2: solve for t
        a, b = 0.25 * (self.beta_max - self.beta_min), 0.5 * self.beta_min
        t = (-b + torch.sqrt(b * b - 4.0 * a * log_m)) / (2.0 * a)
        return t.clamp(self.t_data, 1.0).float()

    def mean_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """``m(t)`` and ``sigma(t)``: ``theta_t = m theta + sigma eps``."""
        if self.kind == "vp":
            log_m = -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min
            return torch.exp(log_m), torch.sqrt(-torch.expm1(2.0 * log_m))
        sigma = self.sigma_min * (self.sigma_max / self.sigma_min) ** t
        return torch.ones_like(t), sigma

    def noised(self, theta: Tensor, noise: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        m, s = self.mean_sigma(t)
        return m * theta + s * noise, noise

    def input_scale(self, t: Tensor) -> Tensor:
        if self.kind == "vp":
            return torch.ones_like(t)
        return torch.rsqrt(1.0 + self.mean_sigma(t)[1] ** 2)

    def drift_g2(self, y: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """The forward SDE's drift ``f(y, t)`` and squared diffusion ``g(t)^2``."""
        if self.kind == "vp":
            beta = self.beta_min + t * (self.beta_max - self.beta_min)
            return -0.5 * beta * y, beta
        sigma = self.mean_sigma(t)[1]
        return torch.zeros_like(y), 2.0 * sigma**2 * math.log(self.sigma_max / self.sigma_min)

    def baseline(self, y: Tensor, t: Tensor) -> Tensor:
        """The noise prediction that is exact when the (z-scored) parameters are ``N(0, I)``:
        ``sigma y / (m^2 + sigma^2)``; the network learns the rest (an untrained one samples ``N(0, I)``)."""
        m, sigma = self.mean_sigma(t)
        return sigma * y / (m**2 + sigma**2)

    def score(self, out: Tensor, t: Tensor) -> Tensor:
        return -out / self.mean_sigma(t)[1]

    def velocity(self, out: Tensor, y: Tensor, t: Tensor) -> Tensor:
        """The probability-flow ODE: ``f - g^2 score / 2``."""
        f, g2 = self.drift_g2(y, t)
        return f - 0.5 * g2 * self.score(out, t)

    def base_std(self) -> float:
        return 1.0 if self.kind == "vp" else math.sqrt(1.0 + self.sigma_max**2)

    def solver_ends(self) -> tuple[float, float]:
        """The solver's variable ``s`` at the noise and the data end: ``t`` for VE (whose ``log sigma`` is
        linear in ``t``), ``log(sigma(t) / m(t))`` for VP (half the negative log signal-to-noise ratio), so that
        equal steps of ``s`` are equal steps of the log noise level."""
        if self.kind == "ve":
            return self.t_noise, self.t_data
        return tuple(0.5 * math.log(math.expm1(-2.0 * self._log_m(t))) for t in (self.t_noise, self.t_data))

    def _log_m(self, t: float) -> float:
        return -0.25 * t * t * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def time_of(self, s: float) -> tuple[float, float]:
        """``t(s)`` and ``dt/ds``; VP: ``s = log(sigma / m)``, ``1 / m^2 = 1 + e^(2s)``,
        ``ds/dt = beta / (2 sigma^2)``."""
        if self.kind == "ve":
            return s, 1.0
        ratio2 = math.exp(2.0 * s)  # sigma^2 / m^2
        log_m = -0.5 * math.log1p(ratio2)
        a, b = 0.25 * (self.beta_max - self.beta_min), 0.5 * self.beta_min
        t = (-b + math.sqrt(b * b - 4.0 * a * log_m)) / (2.0 * a)
        beta = self.beta_min + t * (self.beta_max - self.beta_min)
        return t, 2.0 * (ratio2 / (1.0 + ratio2)) / beta


def make_path(cfg: VectorFieldConfig):
    """The path object of ``cfg.path``."""
    return _FlowMatching(cfg) if cfg.path == "flow_matching" else _Diffusion(cfg)


# ---------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------
class _TimeFeatures(nn.Module):
    """``t (B,) -> (B, F + 1)``: ``t`` and ``sin``/``cos`` of ``t`` at ``F / 2`` frequencies from 1 to 100."""

    def __init__(self, features: int):
        super().__init__()
        self.register_buffer("freqs", torch.exp(torch.linspace(0.0, math.log(100.0), features // 2)))

    def forward(self, t: Tensor) -> Tensor:
        angles = t[:, None] * self.freqs
        return torch.cat([t[:, None], torch.sin(angles), torch.cos(angles)], 1)


class _Block(nn.Module):
    """``h + W2 silu(W1 silu(h) + C silu(c))``: a residual block that reads the conditioning ``c``."""

    def __init__(self, hidden: int):
        super().__init__()
        self.inner = nn.Linear(hidden, hidden)
        self.cond = nn.Linear(hidden, hidden)
        self.outer = nn.Linear(hidden, hidden)

    def forward(self, h: Tensor, c: Tensor) -> Tensor:
        a = self.inner(nn.functional.silu(h)) + self.cond(c)
        return h + self.outer(nn.functional.silu(a))


class VectorFieldNet(nn.Module):
    """``(y (B, D), t (B,), context (B, C)) -> (B, D)`` (see the module docstring).

    The conditioning ``c = MLP([time features, context])``; residual: ``h = W y + c``, then
    ``num_blocks`` :class:`_Block`; plain: an MLP of ``2 num_blocks`` hidden layers on ``[y, c]``.
    """

    def __init__(self, theta_dim: int, context_features: int, hidden: int, num_blocks: int, time_features: int,
                 residual: bool = True):
        super().__init__()
        self.time = _TimeFeatures(time_features)
        width = 2 * (time_features // 2) + 1
        self.condition = nn.Sequential(nn.Linear(width + context_features, hidden), nn.SiLU(),
                                       nn.Linear(hidden, hidden), nn.SiLU())
        self.residual = bool(residual)
        if self.residual:
            self.inp = nn.Linear(theta_dim, hidden)
            self.blocks = nn.ModuleList([_Block(hidden) for _ in range(num_blocks)])
        else:
            layers: list[nn.Module] = [nn.Linear(theta_dim + hidden, hidden), nn.SiLU()]
            for _ in range(2 * num_blocks - 1):
                layers += [nn.Linear(hidden, hidden), nn.SiLU()]
            self.mlp = nn.Sequential(*layers)
        self.out = nn.Linear(hidden, theta_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, y: Tensor, t: Tensor, context: Tensor) -> Tensor:
        c = self.condition(torch.cat([self.time(t), context], 1))
        if self.residual:
            h = self.inp(y) + c
            for block in self.blocks:
                h = block(h, c)
            return self.out(nn.functional.silu(h))
        return self.out(self.mlp(torch.cat([y, c], 1)))


# ---------------------------------------------------------------------------
# the conditional vector field: standardisation, network, path, solvers
# ---------------------------------------------------------------------------
class ConditionalVectorField(nn.Module):
    """``q(theta | x)`` as a continuous normalizing flow, with z-scoring built in.

    Args:
        cfg: the architecture, path and sampler.
        theta_mean, theta_std: ``(D,)`` z-scoring statistics of theta.
        x_mean, x_std: ``(K,)`` z-scoring statistics of x (unused with an embedding).
        embedding_net: with ``cfg.embedding``, the (fitted) embedding network; ``None`` builds
            an unfitted one (to load a state into).
    """

    def __init__(self, cfg: VectorFieldConfig, theta_mean: Tensor, theta_std: Tensor, x_mean: Tensor,
                 x_std: Tensor, embedding_net: Optional[Embedding] = None):
        super().__init__()
        self.cfg = cfg
        self.theta_z = Standardize(theta_mean, theta_std)
        if cfg.embedding is None:
            self.embed: nn.Module = Standardize(x_mean, x_std)
        else:
            self.embed = embedding_net if embedding_net is not None else make_embedding(cfg.embedding)
        self.net = VectorFieldNet(cfg.theta_dim, cfg.context_features, cfg.hidden_features, cfg.num_blocks,
                                  cfg.time_features, cfg.residual)

    @property
    def path(self):
        return make_path(self.cfg)

    @property
    def embedding(self) -> Optional[Embedding]:
        """The learned summary of ``x``, or ``None`` (the z-scored ``x`` itself)."""
        return self.embed if isinstance(self.embed, Embedding) else None

    def augment(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """The training loop's hook: the embedding's augmentation of a batch ``x (B, K)`` (none without one)."""
        net = self.embedding
        return x if net is None else net.augment(x, generator)

    def with_sampling(self, **settings) -> "ConditionalVectorField":
        """A copy sharing this network's weights whose config has other ``steps``, ``solver``,
        ``density_steps``, ``sampler``, ``corrector_steps`` or ``snr`` (``None`` keeps one; anything else is
        a ``TypeError``)."""
        allowed = {"steps", "solver", "density_steps", "sampler", "corrector_steps", "snr"}
        unknown = sorted(set(settings) - allowed)
        if unknown:
            raise TypeError(f"unknown sampling setting(s): {', '.join(unknown)}; known: {', '.join(sorted(allowed))}")
        cfg = replace(self.cfg, **{k: v for k, v in settings.items() if v is not None})
        other = ConditionalVectorField.__new__(ConditionalVectorField)
        other.__dict__.update(self.__dict__)  # the same modules and buffers, another config
        other.__dict__["cfg"] = cfg
        return other

    # ---- the field ------------------------------------------------------------
    def _output(self, y: Tensor, t: Tensor, context: Tensor) -> Tensor:
        """The network's output at ``y (B, D)`` (standardised), times ``t (B,)``."""
        path = self.path
        tt = t[:, None]
        return self.net(y * path.input_scale(tt), t, context) + path.baseline(y, tt)

    def velocity(self, y: Tensor, t: float | Tensor, context: Tensor) -> Tensor:
        """``dy/dt`` of the sampling ODE at standardised ``y (B, D)``, ``context (B, C)`` (embedded)."""
        t = torch.as_tensor(t, dtype=y.dtype).expand(y.shape[0]) if not torch.is_tensor(t) or t.ndim == 0 else t
        return self.path.velocity(self._output(y, t, context), y, t[:, None])

    def context(self, x: Tensor) -> Tensor:
        """The network's view of ``x (B, K)``: z-scored, or the learned summary."""
        return self.embed(x)

    # ---- training -------------------------------------------------------------
    def loss(self, theta: Tensor, x: Tensor, generator: torch.Generator, repeats: int = 1) -> Tensor:
        """Per-pair loss ``(B,)`` of ``theta (B, D)``, ``x (B, K)`` (original units), averaged over
        ``repeats`` draws of time and noise per pair from ``generator``."""
        path = self.path
        y0 = self.theta_z(theta)
        context = self.context(x)
        if repeats > 1:
            y0, context = y0.repeat(repeats, 1), context.repeat(repeats, 1)
        t = path.train_times(y0.shape[0], generator)
        noise = torch.randn(y0.shape, generator=generator)
        y, target = path.noised(y0, noise, t[:, None])
        err = ((self._output(y, t, context) - target) ** 2).mean(1)
        return err.reshape(repeats, -1).mean(0) if repeats > 1 else err

    # ---- sampling -------------------------------------------------------------
    def _solve(self, y: Tensor, context: Tensor, generator: Optional[torch.Generator]) -> Tensor:
        """Carry base draws ``y (B, D)`` to the data end (standardised units)."""
        path, cfg = self.path, self.cfg
        if cfg.sampler == "sde":
            return self._predictor_corrector(y, context, generator)
        return odeint(partial(self._ds_velocity, path, context), y, *path.solver_ends(), cfg.steps, cfg.solver)

    def _ds_velocity(self, path, context: Tensor, s: float, y: Tensor) -> Tensor:
        """``dy/ds`` in the solver's variable ``s`` (:meth:`time_of` of the path): ``v(y, t(s)) dt/ds``."""
        t, dt_ds = path.time_of(s)
        return self.velocity(y, t, context) * dt_ds

    def _predictor_corrector(self, y: Tensor, context: Tensor, generator: Optional[torch.Generator]) -> Tensor:
        """The reverse SDE from ``t = 1`` to ``t_min``: Euler-Maruyama predictor steps, each followed by
        ``corrector_steps`` Langevin steps at signal-to-noise ratio ``snr`` (Song et al., 2021, Alg. 3);
        the last predictor step adds no noise."""
        path, cfg = self.path, self.cfg
        grid = torch.linspace(*path.solver_ends(), cfg.steps + 1, dtype=torch.float64)  # equal steps of s
        times = torch.tensor([path.time_of(float(v))[0] for v in grid])
        for i in range(cfg.steps):
            t, dt = times[i].expand(y.shape[0]), float(times[i] - times[i + 1])
            for _ in range(cfg.corrector_steps):
                score = path.score(self._output(y, t, context), t[:, None])
                noise = torch.randn(y.shape, generator=generator)
                # the step from the batch's mean norms, as in Song et al.'s code (each row's own: a
                # near-zero score makes it explode; on two moons C2ST 0.82 instead of 0.55)
                ratio = noise.norm(dim=1).mean() / score.norm(dim=1).mean().clamp_min(1e-12)
                step = 2.0 * (cfg.snr * ratio) ** 2
                y = y + step * score + torch.sqrt(2.0 * step) * noise
            score = path.score(self._output(y, t, context), t[:, None])
            f, g2 = path.drift_g2(y, t[:, None])
            y = y - (f - g2 * score) * dt
            if i + 1 < cfg.steps:
                y = y + torch.sqrt(g2 * dt) * torch.randn(y.shape, generator=generator)
        return y

    def _sample_rows(self, context: Tensor, generator: Optional[torch.Generator]) -> Tensor:
        """One draw per row of ``context (B, C)``, in original units, ``CHUNK_ROWS`` at a time."""
        out = []
        std = self.path.base_std()
        with torch.no_grad():
            for c in context.split(CHUNK_ROWS):
                y = std * torch.randn(c.shape[0], self.cfg.theta_dim, generator=generator)
                out.append(self.theta_z.inverse(self._solve(y, c, generator)))
        return torch.cat(out) if out else torch.empty(0, self.cfg.theta_dim)

    def sample(self, num_samples: int, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``(num_samples, D)`` draws of ``theta ~ q(. | x)`` for one ``x (K,)`` (randomness from ``generator``)."""
        with torch.no_grad():
            context = self.context(x.reshape(1, -1)).expand(int(num_samples), -1)
        return self._sample_rows(context, generator)

    def sample_batched(self, num_samples: int, xs: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``(N, num_samples, D)`` draws of ``theta ~ q(. | x_i)`` for ``xs (N, K)``, solved together."""
        with torch.no_grad():
            context = self.context(xs).repeat_interleave(int(num_samples), dim=0)
        return self._sample_rows(context, generator).reshape(xs.shape[0], int(num_samples), self.cfg.theta_dim)

    # ---- densities ------------------------------------------------------------
    def _to_noise(self, y: Tensor, context: Tensor, with_divergence: bool,
                  probe: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """Carry standardised ``y (B, D)`` back along the probability-flow ODE to the noise end; with
        ``with_divergence`` also ``l = int_{t_data}^{t_noise} div v dt`` (``(B,)``, else zeros)."""
        path, cfg, d = self.path, self.cfg, self.cfg.theta_dim
        s_noise, s_data = path.solver_ends()
        steps = cfg.steps if cfg.density_steps is None else cfg.density_steps
        if not with_divergence:
            with torch.no_grad():
                z = odeint(partial(self._ds_velocity, path, context), y, s_data, s_noise, steps, cfg.solver)
            return z, torch.zeros(y.shape[0])

        def augmented(s: float, state: Tensor) -> Tensor:
            v, div = divergence(lambda yy: self._ds_velocity(path, context, s, yy), state[:, :d], probe)
            return torch.cat([v, div[:, None]], 1)

        start = torch.cat([y, torch.zeros(y.shape[0], 1)], 1)
        end = odeint(augmented, start, s_data, s_noise, steps, cfg.solver)
        return end[:, :d], end[:, d]

    def log_prob(self, theta: Tensor, x: Tensor, hutchinson: bool = False,
                 generator: Optional[torch.Generator] = None) -> Tensor:
        """``log q(theta_i | x_i)``: ``theta (N, D)``, ``x (N, K)`` -> ``(N,)``, by the probability-flow ODE.

        Exact divergence by default (``D`` backward passes per evaluation); ``hutchinson``: one
        Rademacher probe per row from ``generator`` (unbiased, noisier). The base is ``N(0, s^2 I)`` at the
        noise end (``s`` = 1, or ``sqrt(1 + sigma_max^2)`` for VE); the z-scoring adds ``-sum log std``.
        """
        d = self.cfg.theta_dim
        std = self.path.base_std()
        out = []
        for th, xx in zip(theta.split(LOG_PROB_ROWS), x.split(LOG_PROB_ROWS)):
            with torch.no_grad():
                context = self.context(xx)
            probe = None
            if hutchinson:
                probe = torch.randint(0, 2, th.shape, generator=generator).to(th.dtype) * 2.0 - 1.0
            z, l = self._to_noise(self.theta_z(th), context, True, probe)
            log_base = -0.5 * (z**2).sum(1) / std**2 - d * (math.log(std) + 0.5 * math.log(2 * math.pi))
            out.append(log_base + l)
        lp = torch.cat(out) if out else torch.empty(0)
        return lp - torch.log(self.theta_z.std).sum()

    def to_base(self, theta: Tensor, x: Tensor) -> Tensor:
        """``(N, D)``: each ``theta_i`` carried by the ODE to the noise end at its own ``x_i``, scaled to
        ``N(0, I)`` (the map whose image of ``q(. | x)`` is the base distribution)."""
        with torch.no_grad():
            context = self.context(x)
            z, _ = self._to_noise(self.theta_z(theta), context, False)
        return z / self.path.base_std()

    # ---- persistence -------------------------------------------------------
    def to_payload(self) -> dict:
        """A dict that :meth:`from_payload` turns back into an equal network."""
        return {"config": asdict(self.cfg), "state": self.state_dict()}

    @classmethod
    def from_payload(cls, payload: dict) -> "ConditionalVectorField":
        cfg = VectorFieldConfig(**payload["config"])
        D, K = cfg.theta_dim, cfg.x_dim
        net = cls(cfg, torch.zeros(D), torch.ones(D), torch.zeros(K), torch.ones(K))
        net.load_state_dict(payload["state"])
        return net


def build_vector_field(path: str, theta: Tensor, x: Tensor, *, embedding: Any = None, data_shape: Any = None,
                       embedding_features: Optional[int] = None, **settings) -> ConditionalVectorField:
    """A fresh vector field z-scored on training data ``theta (N, D)``, ``x (N, K)`` (flat).

    settings: any :class:`VectorFieldConfig` field (``hidden_features``, ``num_blocks``, ``steps``, ...).
    embedding, data_shape, embedding_features: the learned summary of ``x``, as for
    :func:`sbi_core.nn.flows.build_flow`.

    Weights are initialised from torch's current RNG; callers wanting a reproducible network
    build it under :func:`torch.random.fork_rng` with a seed.
    """
    emb_cfg = (embedding_config(embedding, data_shape, x_dim=x.shape[1], features=embedding_features)
               if embedding is not None else None)
    cfg = VectorFieldConfig(path=path, theta_dim=theta.shape[1], x_dim=x.shape[1],
                            embedding=None if emb_cfg is None else emb_cfg.to_dict(), **settings)
    tm, ts = zscore_stats(theta)
    if emb_cfg is None:
        return ConditionalVectorField(cfg, tm, ts, *zscore_stats(x))
    net = build_embedding(emb_cfg, x)
    K = x.shape[1]
    return ConditionalVectorField(cfg, tm, ts, torch.zeros(K), torch.ones(K), embedding_net=net)

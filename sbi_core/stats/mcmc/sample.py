r"""``sample_mcmc``: posterior samples of an unnormalised density, for many observations at once.

Given ``G`` unnormalised log densities ``log p_g(theta) = log p(theta | x_g) + const``
(a neural likelihood or ratio times the prior, one per observation ``x_g``),
``sample_mcmc`` runs ``C`` slice-sampling chains per group (:mod:`.slice`),
started by importance resampling of candidate points (:mod:`.init`), and
returns the draws kept after ``warmup`` sweeps, one every ``thin`` sweeps.
During warm-up the slice widths adapt; then they are fixed, and after every
sweep each chain also tries a jump from a mixture around the warmed-up states
(:mod:`.jump`), so well-separated modes exchange chains and get their right
weights. All ``G * C`` chains advance together: the density is called on
``(G, 2 C, D)`` batches, so a network is evaluated on batches, not points.

Each chain keeps ``ceil(num_samples / C)`` draws; the samples of a group are
its chains' draws pooled and shuffled (so any first ``n`` of them are a fair
subsample), cut to ``num_samples``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor

from sbi_core.errors import Cancelled, SBIError
from sbi_core.stats.mcmc.init import resample_init
from sbi_core.stats.mcmc.jump import MixtureProposal
from sbi_core.stats.mcmc.slice import SliceRun, SliceSchedule, run_slice

__all__ = ["MCMCResult", "sample_mcmc", "DEFAULTS"]

# Chosen by measurement (bench/mcmc.py, bench/RESULTS.md section "mcmc").
# 50 chains of 30 warm-up sweeps, one draw kept every 2 sweeps: for 1,000 samples an ESS of about
# 800-950 and R-hat below 1.05 on two moons, a correlated 5-D Gaussian and an NSF likelihood
DEFAULTS = {"num_chains": 50, "warmup": 30, "thin": 2, "num_init_candidates": 2000}
PROGRESS_CALLS = 20  # on_progress is called at most this many times


@dataclass
class MCMCResult:
    """What :func:`sample_mcmc` returns.

    ``samples``: ``(G, num_samples, D)`` pooled, shuffled draws per group;
    ``draws``: ``(G, C, num_draws, D)`` the kept draws of each chain, in order (for diagnostics);
    ``seconds``: wall time, initialisation included; ``num_evaluations``: points the density was
    evaluated at, initialisation included; ``widths``: ``(G, C, D)`` slice widths after warm-up;
    ``jump_rate``: accepted mode jumps per sweep (:mod:`.jump`; ``None`` without jumps).
    """

    samples: Tensor
    draws: Tensor
    seconds: float
    num_evaluations: int
    widths: Optional[Tensor] = None
    jump_rate: Optional[float] = None


def _check(num_samples: int, num_groups: int, num_chains: int, warmup: int, thin: int, num_init: int) -> None:
    if num_samples < 1 or num_groups < 1 or num_chains < 1:
        raise SBIError("MCMC needs at least one sample, one observation and one chain.")
    if warmup < 0 or thin < 1:
        raise SBIError("MCMC warm-up must be 0 or more sweeps and thinning at least 1.")
    if num_init < 1:
        raise SBIError("MCMC needs at least one candidate starting point.")


def _progress_hook(total: int, on_progress, cancel) -> Callable[[int], None]:
    """``sweeps_done -> None``: reports progress at most PROGRESS_CALLS times and honours ``cancel``."""
    step = max(total / PROGRESS_CALLS, 1)
    state = {"next": step}

    def hook(done: int) -> None:
        if cancel is not None and cancel():
            raise Cancelled("MCMC sampling was cancelled.")
        if on_progress is not None and done >= state["next"] - 1e-9:
            on_progress(min(done, total), total)
            state["next"] = (math.floor(done / step + 1e-9) + 1) * step

    return hook


def _run(log_prob, x0: Tensor, lp0: Tensor, spread: Tensor, warmup: int, num_draws: int, thin: int,
         jumps: bool, generator, on_progress, cancel) -> tuple[SliceRun, int]:
    """Warm-up (widths adapt), then sampling from the warmed-up states with fixed widths and jumps."""
    g, c, d = x0.shape

    def flat_log_prob(points: Tensor) -> Tensor:  # (G C, 2, D) -> (G C, 2), one call on (G, 2 C, D)
        with torch.no_grad():
            return log_prob(points.reshape(g, 2 * c, d)).reshape(g * c, 2)

    total = g * c * (warmup + num_draws * thin)
    hook = _progress_hook(total, on_progress, cancel)
    widths = (2.0 * spread)[:, None, :].expand(g, c, d).reshape(g * c, d)
    x, lp, evals = x0.reshape(g * c, d), lp0.reshape(g * c), 0
    if warmup > 0:
        run = run_slice(flat_log_prob, x, lp, widths, SliceSchedule(warmup, 0, 1), generator=generator, on_sweeps=hook)
        x, lp, widths, evals = run.x, run.lp, run.widths, run.evaluations
    states = x.reshape(g, c, d)
    spread = torch.where(states.std(dim=1) > 0, states.std(dim=1), spread) if c > 1 else spread
    jump = MixtureProposal.around(states, spread) if jumps else None
    done = g * c * warmup
    run = run_slice(flat_log_prob, x, lp, widths, SliceSchedule(0, num_draws, thin), generator=generator,
                    on_sweeps=lambda n: hook(done + n), jump=jump, groups=torch.arange(g).repeat_interleave(c))
    return run, evals + run.evaluations


def sample_mcmc(
    log_prob: Callable[[Tensor], Tensor],
    init_sampler: Callable[[int], Tensor],
    num_samples: int,
    *,
    num_groups: int = 1,
    num_chains: int = DEFAULTS["num_chains"],
    warmup: int = DEFAULTS["warmup"],
    thin: int = DEFAULTS["thin"],
    num_init_candidates: int = DEFAULTS["num_init_candidates"],
    generator: Optional[torch.Generator] = None,
    on_progress: Optional[Callable[[int, int], None]] = None,
    cancel: Optional[Callable[[], bool]] = None,
    jumps: bool = True,
) -> MCMCResult:
    """Draw ``num_samples`` per group from ``G`` unnormalised densities by slice sampling.

    Args:
        log_prob: ``theta (G, B, D) -> (G, B)`` unnormalised log density of group ``g`` at
            ``theta[g, b]`` (``-inf`` outside the support), for any batch size ``B``: it is called
            on ``B = 2 C`` points per group while sampling (:mod:`.slice`) and ``B = M`` candidates
            at the start. Called without gradients.
        init_sampler: ``m -> (m, D)`` candidate starting points (e.g. prior draws).
        num_samples: samples wanted per group.
        num_groups: ``G``, e.g. the number of observations.
        num_chains: ``C`` chains per group.
        warmup: sweeps per chain discarded while the slice widths adapt (then fixed).
        thin: keep one draw every ``thin`` sweeps after warm-up.
        num_init_candidates: ``M`` candidates for the importance-resampling start (:mod:`.init`).
        generator: source of every random number (``None``: torch's global generator).
        on_progress: ``(done, total) -> None`` in sweeps over all chains, called at most 20 times.
        cancel: ``() -> bool``, polled every iteration; when it returns True,
            :class:`sbi_core.errors.Cancelled` is raised.
        jumps: after every sweep after warm-up, propose a jump from a mixture around the
            warmed-up states (:mod:`.jump`), so chains move between well-separated modes.

    Returns:
        :class:`MCMCResult`.

    Example:

    >>> target = lambda t: -0.5 * (t ** 2).sum(-1)        # standard normal, (G, C, D) -> (G, C)
    >>> g = torch.Generator().manual_seed(0)
    >>> res = sample_mcmc(target, lambda m: 4 * torch.rand(m, 2, generator=g) - 2, 500, generator=g)
    >>> res.samples.shape
    torch.Size([1, 500, 2])
    """
    _check(num_samples, num_groups, num_chains, warmup, thin, num_init_candidates)
    start = time.perf_counter()
    x0, lp0, spread = resample_init(log_prob, init_sampler, num_groups, num_chains,
                                    num_init_candidates, generator)
    g, c, d = x0.shape
    num_draws = math.ceil(num_samples / c)
    run, evals = _run(log_prob, x0, lp0, spread, warmup, num_draws, thin, jumps, generator, on_progress, cancel)
    draws = run.draws.reshape(g, c, num_draws, d)
    pooled = draws.reshape(g, c * num_draws, d)
    order = torch.rand(g, c * num_draws, generator=generator).argsort(dim=1)[:, :num_samples]
    samples = pooled.gather(1, order[..., None].expand(-1, -1, d))
    return MCMCResult(samples=samples, draws=draws, seconds=time.perf_counter() - start,
                      num_evaluations=evals + g * num_init_candidates, widths=run.widths.reshape(g, c, d),
                      jump_rate=float(run.jumps.sum()) / (g * c * num_draws * thin) if jumps else None)

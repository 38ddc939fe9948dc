r"""A vectorised slice sampler: every chain of every group advanced together.

Slice sampling (Neal 2003, "Slice sampling", Ann. Statist. 31(3)) updates one
coordinate ``i`` of the state ``theta`` at a time. With ``f`` the unnormalised
density along that coordinate (the others held fixed):

1. draw the height ``log y = log f(theta_i) - E``, ``E ~ Exp(1)`` (``y ~ U(0, f(theta_i))``);
2. *step out*: place an interval of width ``w`` at random around ``theta_i``,
   ``L = theta_i - w V``, ``R = L + w``, and move ``L`` left (``R`` right) by ``w``
   while that end is still inside the slice ``{t : log f(t) >= log y}``, at most
   ``J = floor(m U)`` (``K = m - 1 - J``) times;
3. *shrink*: propose ``t ~ U(L, R)``; accept when ``log f(t) >= log y``, else
   move the end on ``t``'s side of ``theta_i`` onto ``t`` and propose again.

The update leaves ``p`` invariant for any fixed ``w`` (Neal, section 4); a
sweep updates every coordinate once, in a random order. The widths ``w`` are
adapted during warm-up only, per chain and coordinate, as the running mean of
the final interval ``R - L`` of each update (as sbi's ``SliceSamplerVectorized``
does); after warm-up they are fixed, so the kept draws come from a valid chain.

Vectorisation. Each chain is a small state machine (stepping out, shrinking)
and every iteration evaluates the density at **two points per chain**, in one
batch for all chains: while stepping out, the next left and the next right
end (the two ends step independently in Neal's procedure); while shrinking,
the proposal ``t1 ~ U(L, R)`` and the proposal ``t2`` that would follow if
``t1`` were rejected (drawn from the interval already shrunk on ``t1``), so
``t2`` is used exactly when the sequential procedure would have proposed it.
The chain is the same as Neal's, in about half the calls; a network is
evaluated on ``2 G C`` points at a time, which costs little more than ``G C``.
Chains at different stages or coordinates do not wait for each other. The
density is called on a ``(G, 2 C, D)`` batch: ``G`` groups (one per
observation), two points for each of its ``C`` chains.

With a ``jump`` proposal (:mod:`.jump`), a chain that finishes a sweep spends
its next evaluation on an independence Metropolis-Hastings proposal before it
starts the next sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import torch
from torch import Tensor

from sbi_core.stats.mcmc.jump import MixtureProposal

__all__ = ["SliceSchedule", "SliceRun", "run_slice", "MAX_STEPS_OUT"]

_STEP, _SHRINK, _DONE, _JUMP = 0, 1, 2, 3
MAX_STEPS_OUT = 32  # Neal's m: at most this many widths stepped out per update
_MIN_INTERVAL = 1e-9  # a shrunk interval narrower than this (times w) keeps the current value


@dataclass(frozen=True)
class SliceSchedule:
    """How many sweeps each chain runs: ``warmup`` discarded, then ``num_draws`` kept every ``thin``."""

    warmup: int
    num_draws: int
    thin: int

    @property
    def num_sweeps(self) -> int:
        return self.warmup + self.num_draws * self.thin


class SliceRun(NamedTuple):
    """What :func:`run_slice` returns; ``N`` chains, ``D`` dimensions."""

    draws: Tensor  # (N, num_draws, D) kept draws
    evaluations: int  # points the density was evaluated at
    widths: Tensor  # (N, D) slice widths at the end
    jumps: Tensor  # (N,) accepted independence jumps
    x: Tensor  # (N, D) final states
    lp: Tensor  # (N,) log density at the final states


class _Chains:
    """State of ``N`` chains in ``D`` dimensions (every tensor has leading dimension ``N``)."""

    def __init__(self, x: Tensor, lp: Tensor, widths: Tensor, generator: Optional[torch.Generator],
                 jump: Optional[MixtureProposal] = None, groups: Optional[Tensor] = None):
        n, d = x.shape
        self.g = generator
        self.jump, self.groups = jump, groups
        self.jump_to = torch.zeros_like(x)  # the independence proposal of chains in stage _JUMP
        self.jumps = torch.zeros(n, dtype=torch.long)  # accepted jumps, per chain
        self.x, self.lp, self.w = x.clone(), lp.clone(), widths.clone()
        self.n_adapt = torch.zeros(n, d, dtype=x.dtype)
        self.order = self.orders(n, d)
        self.i = torch.zeros(n, dtype=torch.long)  # position within the sweep's order
        self.sweep = torch.zeros(n, dtype=torch.long)  # completed sweeps
        self.stage = torch.full((n,), _STEP, dtype=torch.long)
        self.logy, self.left, self.right, self.p1, self.p2 = (torch.zeros(n, dtype=x.dtype) for _ in range(5))
        self.open_l, self.open_r = (torch.zeros(n, dtype=torch.bool) for _ in range(2))
        self.j_l, self.j_r = (torch.zeros(n, dtype=torch.long) for _ in range(2))
        self.ar = torch.arange(n)
        self.d = self.order[:, 0].clone()  # coordinate being updated

    def orders(self, n: int, d: int) -> Tensor:
        return torch.rand(n, d, generator=self.g).argsort(dim=1)

    def begin(self, mask: Tensor, u: Tensor) -> None:
        """Start a coordinate update (height, random interval, step-out budgets) for chains in ``mask``."""
        self.d = torch.where(mask, self.order.gather(1, self.i[:, None]).squeeze(1), self.d)
        w, xi = self.w[self.ar, self.d], self.x[self.ar, self.d]
        left = xi - w * u[:, 1]
        j = (MAX_STEPS_OUT * u[:, 2]).long().clamp_max(MAX_STEPS_OUT - 1)
        self.logy = torch.where(mask, self.lp + torch.log1p(-u[:, 0]), self.logy)  # log f - Exp(1)
        self.left = torch.where(mask, left, self.left)
        self.right = torch.where(mask, left + w, self.right)
        self.j_l = torch.where(mask, j, self.j_l)
        self.j_r = torch.where(mask, MAX_STEPS_OUT - 1 - j, self.j_r)
        self.open_l, self.open_r = self.open_l | mask, self.open_r | mask
        self.stage = torch.where(mask, _STEP, self.stage)

    def propose(self, mask: Tensor, u: Tensor, xi: Tensor) -> None:
        """Draw ``t1 ~ U(L, R)`` and ``t2`` from the interval shrunk on ``t1``, for chains in ``mask``."""
        p1 = self.left + u[:, 3] * (self.right - self.left)
        lo = torch.where(p1 < xi, p1, self.left)
        hi = torch.where(p1 < xi, self.right, p1)
        self.p1 = torch.where(mask, p1, self.p1)
        self.p2 = torch.where(mask, lo + u[:, 4] * (hi - lo), self.p2)

    def candidates(self) -> Tensor:
        """``(N, 2, D)``: the two points each chain evaluates next."""
        xi = self.x[self.ar, self.d]
        step, shrink = self.stage == _STEP, self.stage == _SHRINK
        v1 = torch.where(step & self.open_l, self.left, torch.where(shrink, self.p1, xi))
        v2 = torch.where(step & self.open_r, self.right, torch.where(shrink, self.p2, xi))
        points = self.x[:, None, :].repeat(1, 2, 1)
        points[self.ar, 0, self.d] = v1
        points[self.ar, 1, self.d] = v2
        if self.jump is not None:
            points[:, 0] = torch.where((self.stage == _JUMP)[:, None], self.jump_to, points[:, 0])
        return points

    def shrink_on(self, mask: Tensor, t: Tensor, xi: Tensor) -> None:
        """Move the end on ``t``'s side of the current value onto ``t`` (a rejected proposal)."""
        self.left = torch.where(mask & (t < xi), t, self.left)
        self.right = torch.where(mask & (t >= xi), t, self.right)


def _step_out(ch: _Chains, inside: Tensor, w: Tensor) -> Tensor:
    """Move still-open ends that are inside the slice; returns chains whose two ends are now final."""
    step = ch.stage == _STEP
    go_l = step & ch.open_l & inside[:, 0] & (ch.j_l > 0)
    go_r = step & ch.open_r & inside[:, 1] & (ch.j_r > 0)
    ch.left, ch.j_l = torch.where(go_l, ch.left - w, ch.left), ch.j_l - go_l.long()
    ch.right, ch.j_r = torch.where(go_r, ch.right + w, ch.right), ch.j_r - go_r.long()
    ch.open_l, ch.open_r = go_l, go_r
    return step & ~go_l & ~go_r


def _shrink(ch: _Chains, inside: Tensor, lp: Tensor, xi: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """Accept ``t1`` or ``t2``, or shrink on both; returns (accepted, stuck) masks."""
    shrink = ch.stage == _SHRINK
    a1 = shrink & inside[:, 0]
    a2 = shrink & ~inside[:, 0] & inside[:, 1]
    rejected = shrink & ~inside[:, 0] & ~inside[:, 1]
    interval = torch.where(a1, ch.right - ch.left, 0.0)  # width of the interval the accepted draw came from
    ch.shrink_on(shrink & ~inside[:, 0], ch.p1, xi)
    interval = torch.where(a2, ch.right - ch.left, interval)
    ch.shrink_on(rejected, ch.p2, xi)
    accepted = a1 | a2
    ch.x[ch.ar, ch.d] = torch.where(a1, ch.p1, torch.where(a2, ch.p2, xi))
    ch.lp = torch.where(a1, lp[:, 0], torch.where(a2, lp[:, 1], ch.lp))
    stuck = rejected & ((ch.right - ch.left) < _MIN_INTERVAL * w)
    interval = torch.where(stuck, w, interval)  # a stuck update says nothing about the width
    return accepted | stuck, torch.where(accepted | stuck, interval, 0.0)


def _adapt(ch: _Chains, moved: Tensor, interval: Tensor, sched: SliceSchedule) -> None:
    """Warm-up only: running mean of the final interval, per chain and coordinate."""
    adapt = moved & (ch.sweep < sched.warmup)
    n, w = ch.n_adapt[ch.ar, ch.d], ch.w[ch.ar, ch.d]
    ch.w[ch.ar, ch.d] = torch.where(adapt, w + (interval - w) / (n + 1), w)
    ch.n_adapt[ch.ar, ch.d] = n + adapt.to(n.dtype)


def _advance(ch: _Chains, moved: Tensor, sched: SliceSchedule, draws: Tensor, u: Tensor) -> None:
    """Next coordinate for chains that finished an update; record draws at the end of a sweep."""
    n, dim = ch.x.shape
    ch.i = ch.i + moved.long()
    swept = ch.i >= dim
    if bool(swept.any()):
        ch.i = torch.where(swept, 0, ch.i)
        ch.order = torch.where(swept[:, None], ch.orders(n, dim), ch.order)
        ch.sweep = ch.sweep + swept.long()
        k = ch.sweep - sched.warmup  # sweeps completed after warm-up
        keep = swept & (k > 0) & (k % sched.thin == 0)
        if bool(keep.any()):
            rows = keep.nonzero().squeeze(1)
            draws[rows, k[rows] // sched.thin - 1] = ch.x[rows]
        ch.stage = torch.where(swept & (ch.sweep >= sched.num_sweeps), _DONE, ch.stage)
        if ch.jump is not None:  # after a sweep: an independence proposal first (see .jump)
            jumping = swept & (ch.stage != _DONE)
            ch.jump_to = torch.where(jumping[:, None], ch.jump.sample(ch.groups, ch.g), ch.jump_to)
            ch.stage = torch.where(jumping, _JUMP, ch.stage)
            moved = moved & ~jumping
    ch.begin(moved & (ch.stage != _DONE), u)


def _accept_jumps(ch: _Chains, jumping: Tensor, lp_to: Tensor, u: Tensor) -> None:
    """Metropolis-Hastings for chains in ``jumping`` (those in stage _JUMP); they then start the next sweep."""
    if not bool(jumping.any()):
        return
    rows = jumping.nonzero().squeeze(1)  # only these need the mixture density
    groups, here, there = ch.groups[rows], ch.x[rows], ch.jump_to[rows]
    log_ratio = lp_to[rows] - ch.lp[rows] + ch.jump.log_prob(here, groups) - ch.jump.log_prob(there, groups)
    take = torch.log1p(-u[rows]) < log_ratio  # log U < log ratio, U ~ U(0, 1]
    ch.x[rows] = torch.where(take[:, None], there, here)
    ch.lp[rows] = torch.where(take, lp_to[rows], ch.lp[rows])
    ch.jumps[rows] += take.long()
    ch.begin(jumping, torch.rand(ch.x.shape[0], 3, generator=ch.g, dtype=ch.x.dtype))


def _iterate(ch: _Chains, lp: Tensor, sched: SliceSchedule, draws: Tensor) -> None:
    """Advance every chain given the density ``lp (N, 2)`` at its two candidates."""
    u = torch.rand(ch.x.shape[0], 6, generator=ch.g, dtype=ch.x.dtype)
    jumping = ch.stage == _JUMP  # evaluated their jump; left alone by the slice steps below
    xi, w = ch.x[ch.ar, ch.d].clone(), ch.w[ch.ar, ch.d]
    inside = lp >= ch.logy[:, None]
    ready = _step_out(ch, inside, w)
    moved, interval = _shrink(ch, inside, lp, xi, w)
    rejected = (ch.stage == _SHRINK) & ~moved
    ch.propose(ready | rejected, u, xi)
    ch.stage = torch.where(ready, _SHRINK, ch.stage)
    _adapt(ch, moved, interval, sched)
    _advance(ch, moved, sched, draws, u)
    if ch.jump is not None:
        _accept_jumps(ch, jumping, lp[:, 0], u[:, 5])


def run_slice(
    log_prob: Callable[[Tensor], Tensor],
    x0: Tensor,
    lp0: Tensor,
    widths: Tensor,
    sched: SliceSchedule,
    *,
    generator: Optional[torch.Generator] = None,
    on_sweeps: Optional[Callable[[int], None]] = None,
    jump: Optional[MixtureProposal] = None,
    groups: Optional[Tensor] = None,
) -> SliceRun:
    """Run ``N`` slice-sampling chains.

    Args:
        log_prob: ``(N, 2, D) -> (N, 2)`` unnormalised log density (``-inf`` outside the support).
        x0: ``(N, D)`` starting points, each with a finite ``lp0``.
        lp0: ``(N,)`` ``log_prob`` at ``x0``.
        widths: ``(N, D)`` initial interval widths (adapted during warm-up).
        sched: sweeps to run per chain.
        generator: source of every random number.
        on_sweeps: called after each iteration with the number of sweeps completed so far,
            summed over chains (it may raise to stop the run, e.g. on cancellation).
        jump: the independence proposal tried after every sweep (:mod:`.jump`), or None for none.
        groups: ``(N,)`` the group of each chain (needed with ``jump``).

    Returns:
        :class:`SliceRun`.
    """
    n, _ = x0.shape
    ch = _Chains(x0, lp0, widths, generator, jump, groups)
    draws = torch.empty(n, sched.num_draws, x0.shape[1], dtype=x0.dtype)
    ch.begin(torch.ones(n, dtype=torch.bool), torch.rand(n, 5, generator=generator, dtype=x0.dtype))
    evaluations = 0
    while bool((ch.stage != _DONE).any()):
        lp = log_prob(ch.candidates())
        lp = torch.nan_to_num(lp.detach().to(x0.dtype), nan=-torch.inf, neginf=-torch.inf)
        evaluations += 2 * n
        _iterate(ch, lp, sched, draws)
        if on_sweeps is not None:
            on_sweeps(int(ch.sweep.sum()))
    return SliceRun(draws, evaluations, ch.w, ch.jumps, ch.x, ch.lp)

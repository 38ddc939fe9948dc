"""Test datasets and their posterior draws, shared by every calibration check.

A calibration check (SBC, TARP, expected coverage, z-scores) starts from
``N`` test datasets ``(theta_i, x_i)`` with ``theta_i ~ p(theta)`` and
``x_i ~ p(x | theta_i)``, and ``L`` posterior draws at each ``x_i``:

    samples[i, l] ~ q(theta | x_i),   i = 1..N,  l = 1..L,   shape (N, L, D).

The checks differ only in what they compute from ``(theta_i, samples[i])``,
so a job draws the samples once (:func:`sample_for_datasets`, or
:func:`draw_for_datasets`, which also drops invalid rows) and passes them to
each check with ``samples=``.

Rows whose ``x`` (or ``theta``) holds NaN or infinity cannot be conditioned on;
:func:`drop_invalid` removes them and says how many it removed. Every check
drops them the same way, so passing the full ``thetas``/``xs`` with samples
drawn for the full set, or the already-cleaned ones, gives the same result.

Randomness: one ``torch.Generator`` seeded with ``seed`` drives all draws.
For a posterior with ``sample_batched(L, xs, generator=)``
(:class:`sbi_core.Posterior`) the
datasets go through the flow in chunks; otherwise each dataset gets its own
integer seed drawn from that generator and one ``.sample((L,), x=x_i, seed=...)``
call (or ``generator=``, whichever the object accepts; an object taking
neither samples from its own randomness and is then not reproducible).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import Tensor

from sbi_core.errors import SBIError

__all__ = [
    "ProgressCallback",
    "DatasetDraws",
    "valid_rows",
    "drop_invalid",
    "sample_for_datasets",
    "draw_for_datasets",
    "resolve_samples",
]

# on_event(done, total): called as datasets are sampled; it may raise to cancel the check.
ProgressCallback = Callable[[int, int], None]

CHUNK_ROWS = 20_000  # posterior draws per sample_batched call (datasets * L), for progress and memory


@dataclass(frozen=True)
class DatasetDraws:
    """Test datasets with invalid rows removed, and ``L`` posterior draws at each.

    thetas: ``(N, D)`` true parameters; xs: ``(N, K)`` their simulations;
    samples: ``(N, L, D)`` posterior draws; n_dropped: rows removed for NaN/inf.
    """

    thetas: Tensor
    xs: Tensor
    samples: Tensor
    n_dropped: int

    @property
    def n_datasets(self) -> int:
        return int(self.thetas.shape[0])

    @property
    def num_posterior_samples(self) -> int:
        return int(self.samples.shape[1])


def _as_pairs(thetas: Tensor, xs: Tensor) -> tuple[Tensor, Tensor]:
    thetas = torch.as_tensor(thetas, dtype=torch.float32)
    xs = torch.as_tensor(xs, dtype=torch.float32)
    if thetas.ndim == 1:
        thetas = thetas[:, None]
    if xs.ndim == 1:
        xs = xs[:, None]
    if thetas.ndim != 2 or xs.ndim != 2:
        raise SBIError(
            f"thetas must be (N, D) and xs (N, K); got shapes {tuple(thetas.shape)} and {tuple(xs.shape)}."
        )
    if thetas.shape[0] != xs.shape[0]:
        raise SBIError(
            f"thetas has {thetas.shape[0]} rows but xs has {xs.shape[0]}; give one simulation per parameter set."
        )
    return thetas, xs


def valid_rows(thetas: Tensor, xs: Tensor) -> Tensor:
    """Bool ``(N,)``: rows where both ``thetas (N, D)`` and ``xs (N, K)`` are finite."""
    thetas, xs = _as_pairs(thetas, xs)
    return torch.isfinite(xs).all(1) & torch.isfinite(thetas).all(1)


def drop_invalid(thetas: Tensor, xs: Tensor) -> tuple[Tensor, Tensor, int]:
    """``(thetas, xs, n_dropped)``: the rows of ``thetas (N, D)``, ``xs (N, K)`` that are finite.

    Raises :class:`SBIError` for mismatched shapes, or when no row is left.
    """
    thetas, xs = _as_pairs(thetas, xs)
    ok = valid_rows(thetas, xs)
    if not bool(ok.any()):
        raise SBIError(
            f"All {len(ok)} test simulations contain NaN or infinite values; "
            "nothing is left to check. Check the simulator's output."
        )
    return thetas[ok], xs[ok], int((~ok).sum())


def _accepts(fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _sample_one(posterior: Any, num_samples: int, x: Tensor, seed: int) -> Tensor:
    if _accepts(posterior.sample, "seed"):
        return posterior.sample((num_samples,), x=x, seed=seed)
    if _accepts(posterior.sample, "generator"):
        return posterior.sample((num_samples,), x=x, generator=torch.Generator().manual_seed(seed))
    return posterior.sample((num_samples,), x=x)


def sample_for_datasets(
    posterior: Any,
    xs: Tensor,
    num_posterior_samples: int = 100,
    seed: Optional[int] = None,
    on_event: Optional[ProgressCallback] = None,
) -> Tensor:
    """``(N, L, D)`` posterior draws, ``L = num_posterior_samples`` at each row of ``xs (N, K)``.

    ``posterior`` is anything with ``.sample((L,), x=x)``; with a
    ``sample_batched(L, xs, generator=)`` method (sbi_core's signature, not
    sbi's) it is used instead (much faster for a flow). ``xs`` must be finite (see :func:`drop_invalid`).
    ``on_event(done, total)`` is called after each chunk of datasets.
    """
    xs = torch.as_tensor(xs, dtype=torch.float32)
    if xs.ndim == 1:
        xs = xs[:, None]
    if not bool(torch.isfinite(xs).all()):
        raise SBIError("xs contains NaN or infinite values; remove those rows first (drop_invalid).")
    num = int(num_posterior_samples)
    if num < 1:
        raise SBIError(f"num_posterior_samples must be at least 1, got {num_posterior_samples}.")
    g = torch.Generator()
    g.manual_seed(int(seed)) if seed is not None else g.seed()
    n = xs.shape[0]
    parts: list[Tensor] = []
    if hasattr(posterior, "sample_batched") and _accepts(posterior.sample_batched, "generator"):
        step = max(1, CHUNK_ROWS // num)
        for start in range(0, n, step):
            parts.append(posterior.sample_batched(num, xs[start : start + step], generator=g))
            if on_event is not None:
                on_event(min(start + step, n), n)
    else:
        seeds = torch.randint(0, 2**62, (n,), generator=g).tolist()
        every = max(1, n // 50)
        for i in range(n):
            parts.append(torch.as_tensor(_sample_one(posterior, num, xs[i], seeds[i]), dtype=torch.float32)[None])
            if on_event is not None and ((i + 1) % every == 0 or i + 1 == n):
                on_event(i + 1, n)
    samples = torch.cat(parts)
    if samples.ndim == 2:  # a 1-D parameter sampled as (L,)
        samples = samples[..., None]
    return samples


def draw_for_datasets(
    thetas: Tensor,
    xs: Tensor,
    posterior: Any,
    num_posterior_samples: int = 100,
    seed: Optional[int] = None,
    on_event: Optional[ProgressCallback] = None,
) -> DatasetDraws:
    """Drop invalid rows of ``thetas (N, D)``, ``xs (N, K)`` and draw ``L`` posterior samples at each."""
    thetas, xs, n_dropped = drop_invalid(thetas, xs)
    samples = sample_for_datasets(posterior, xs, num_posterior_samples, seed=seed, on_event=on_event)
    return DatasetDraws(thetas, xs, samples, n_dropped)


def resolve_samples(
    thetas: Tensor,
    xs: Tensor,
    posterior: Any,
    num_posterior_samples: int,
    seed: Optional[int],
    on_event: Optional[ProgressCallback],
    samples: Optional[Tensor],
) -> DatasetDraws:
    """What every check starts from: valid rows and their draws, given or drawn now.

    ``samples`` (``(N, L, D)``, one row per row of ``thetas``) are reused when
    given, with the same rows dropped as from ``thetas``/``xs``; otherwise they
    are drawn from ``posterior`` (:func:`draw_for_datasets`).
    """
    if samples is None:
        return draw_for_datasets(thetas, xs, posterior, num_posterior_samples, seed=seed, on_event=on_event)
    thetas, xs = _as_pairs(thetas, xs)
    samples = torch.as_tensor(samples, dtype=torch.float32)
    if samples.ndim != 3 or samples.shape[0] != thetas.shape[0] or samples.shape[2] != thetas.shape[1]:
        raise SBIError(
            f"samples must have shape (N, L, D) = ({thetas.shape[0]}, L, {thetas.shape[1]}), one row of "
            f"posterior draws per test dataset; got {tuple(samples.shape)}."
        )
    ok = valid_rows(thetas, xs)
    thetas, xs, n_dropped = drop_invalid(thetas, xs)
    return DatasetDraws(thetas, xs, samples[ok], n_dropped)

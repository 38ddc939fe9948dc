"""Simulation-based calibration (SBC; Talts et al., 2018).

Draw test datasets ``theta*_i ~ p(theta)``, ``x_i ~ p(x | theta*_i)`` and
``L`` posterior samples ``theta_il ~ q(theta | x_i)``. For each parameter
``d`` the rank of the truth among the samples is

    r_id = #{ l : theta_ild < theta*_id },   0 <= r_id <= L.

If ``q`` is the true posterior, ``theta*_i`` and the ``L`` samples are
``L + 1`` exchangeable draws from ``p(theta | x_i)``, so ``r_id`` is uniform
on ``{0, ..., L}``. A posterior that is too narrow (overconfident) piles
ranks up at both ends (a U shape); one that is too wide, in the middle; a
biased one, at one end. With ``reduce_fn = f`` the rank is of ``f(theta)``
instead of a coordinate (``f = log q(. | x)`` gives expected coverage of the
highest-density regions, Deistler et al., 2022).

:func:`check_sbc` tests uniformity two ways per parameter: a Kolmogorov-Smirnov
test of ``r / L`` against ``U(0, 1)`` (p-value; small means miscalibrated) and a
C2ST between the ranks and as many uniform ranks (0.5 means indistinguishable).
It also compares the prior with the *data-averaged posterior* (one draw per
dataset, ``theta_i1``): for a calibrated posterior
``E_x[q(theta | x)] = p(theta)``, so their C2ST should be near 0.5. Both C2STs train
their folds at once (:func:`~sbi_core.diagnostics.c2st.c2st`'s ``engine="torch"``: the
benchmark's classifier and training rule, a third of scikit-learn's time).

Rows whose ``x`` holds NaN or infinity are dropped first
(:func:`sbi_core.diagnostics.batched.drop_invalid` reports how many).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import torch
from torch import Tensor

from sbi_core.diagnostics.batched import ProgressCallback, resolve_samples
from sbi_core.diagnostics.c2st import c2st
from sbi_core.errors import SBIError

__all__ = ["run_sbc", "sbc_ranks", "check_sbc"]

# f(theta (L, D), x (K,)) -> (L,): a statistic whose rank is taken instead of a coordinate.
ReduceFn = Callable[[Tensor, Tensor], Tensor]


def sbc_ranks(
    thetas: Tensor,
    samples: Tensor,
    xs: Optional[Tensor] = None,
    reduce_fn: Union[None, ReduceFn, Sequence[ReduceFn]] = None,
) -> Tensor:
    """Ranks ``(N, F)`` of ``thetas (N, D)`` among ``samples (N, L, D)``.

    Without ``reduce_fn``: per coordinate, ``F = D``. With one function or a
    list of ``F`` functions ``f(theta (L, D), x (K,)) -> (L,)``: the rank of
    ``f(theta*_i, x_i)`` among ``f(samples_i, x_i)`` (needs ``xs (N, K)``).
    Float tensor of integers in ``0..L``.
    """
    if reduce_fn is None:
        return (samples < thetas[:, None, :]).sum(1).to(torch.float32)
    fns = [reduce_fn] if callable(reduce_fn) else list(reduce_fn)
    if xs is None:
        raise SBIError("sbc_ranks with reduce_fn needs xs, the observation of each dataset.")
    ranks = torch.zeros(thetas.shape[0], len(fns))
    with torch.no_grad():
        for i in range(thetas.shape[0]):
            for j, fn in enumerate(fns):
                stat = torch.as_tensor(fn(samples[i], xs[i])).reshape(-1)
                truth = torch.as_tensor(fn(thetas[i : i + 1], xs[i])).reshape(-1)
                ranks[i, j] = float((stat < truth).sum())
    return ranks


def run_sbc(
    thetas: Tensor,
    xs: Tensor,
    posterior: Any,
    num_posterior_samples: int = 100,
    seed: Optional[int] = None,
    on_event: Optional[ProgressCallback] = None,
    reduce_fn: Union[None, ReduceFn, Sequence[ReduceFn]] = None,
    *,
    samples: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor]:
    """``(ranks, dap_samples)`` of SBC on test datasets ``thetas (N, D)``, ``xs (N, K)``.

    Args:
        posterior: anything with ``.sample((L,), x=...)`` (ignored when ``samples`` is given).
        num_posterior_samples: ``L``, draws per dataset.
        seed: seeds the posterior draws (reproducible); ``None`` draws fresh randomness.
        on_event: ``on_event(done, total)`` as datasets are sampled; may raise to cancel.
        reduce_fn: see :func:`sbc_ranks`.
        samples: ``(N, L, D)`` draws already made for these datasets (see
            :mod:`.batched`), so several checks share one sampling pass.

    Returns:
        ranks ``(N', F)`` (floats ``0..L``) and ``dap_samples (N', D)``, one
        posterior draw per dataset, for the ``N'`` rows whose ``x`` and ``theta``
        are finite (the others are dropped; ``drop_invalid`` counts them).
    """
    draws = resolve_samples(thetas, xs, posterior, num_posterior_samples, seed, on_event, samples)
    ranks = sbc_ranks(draws.thetas, draws.samples, draws.xs, reduce_fn)
    return ranks, draws.samples[:, 0, :].clone()


def _ks_uniform_pvalues(ranks: Tensor, num_posterior_samples: int) -> Tensor:
    """KS p-value of ``ranks[:, d] / L`` against ``U(0, 1)``, per column: ``(F,)``."""
    scaled = ranks.double().numpy() / float(num_posterior_samples)
    from scipy.stats import kstest  # scipy only when a check runs, not at ``import sbi_core``

    return torch.tensor([kstest(col, "uniform").pvalue for col in scaled.T], dtype=torch.float32)


def check_sbc(
    ranks: Tensor,
    prior_samples: Tensor,
    dap_samples: Tensor,
    num_posterior_samples: int = 100,
    num_c2st_repetitions: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Uniformity of SBC ranks and prior-vs-data-averaged-posterior checks.

    Args:
        ranks: ``(N, F)`` from :func:`run_sbc`.
        prior_samples: ``(M, D)`` prior draws, e.g. the test ``thetas``; cut to
            the size of ``dap_samples`` for the C2ST when larger.
        dap_samples: ``(N, D)`` from :func:`run_sbc`.
        num_posterior_samples: the ``L`` the ranks were computed with.
        num_c2st_repetitions: C2STs of the ranks against fresh uniform ranks, averaged.
        seed: seeds the uniform reference ranks and the classifiers.

    Returns:
        ``ks_pvals`` (F,): KS p-values of ``ranks / L`` vs ``U(0, 1)``;
        ``c2st_ranks`` (F,): mean C2ST accuracy between the ranks and uniform
        integer ranks on ``0..L``; ``c2st_ranks_std`` (F,): its spread over
        repetitions (0 for one); ``c2st_dap`` (D,): C2ST accuracy between prior
        and data-averaged posterior, per parameter; ``n_datasets``: ``N``.
    """
    ranks = torch.as_tensor(ranks, dtype=torch.float32)
    prior_samples = torch.as_tensor(prior_samples, dtype=torch.float32)
    dap_samples = torch.as_tensor(dap_samples, dtype=torch.float32)
    if ranks.ndim != 2 or ranks.shape[0] < 2:
        raise SBIError(f"ranks must be (N, F) with N >= 2 datasets; got shape {tuple(ranks.shape)}.")
    if prior_samples.ndim != 2 or dap_samples.ndim != 2 or prior_samples.shape[1] != dap_samples.shape[1]:
        raise SBIError(
            f"prior_samples and dap_samples must both be (N, D) with the same D; "
            f"got {tuple(prior_samples.shape)} and {tuple(dap_samples.shape)}."
        )
    L = int(num_posterior_samples)
    if float(ranks.max()) > L or float(ranks.min()) < 0:
        raise SBIError(
            f"ranks lie outside 0..{L}; pass the num_posterior_samples the ranks were computed with."
        )
    n, num_stats = ranks.shape
    reps = max(1, int(num_c2st_repetitions))
    g = torch.Generator().manual_seed(int(seed))
    scores = torch.zeros(reps, num_stats)
    for rep in range(reps):
        for j in range(num_stats):
            uniform = torch.randint(0, L + 1, (n, 1), generator=g).to(torch.float32)
            scores[rep, j] = c2st(uniform, ranks[:, j : j + 1], seed=int(seed) + rep, engine="torch")
    c2st_dap = torch.tensor(
        [c2st(prior_samples[:, d : d + 1], dap_samples[:, d : d + 1], seed=int(seed), engine="torch")
         for d in range(dap_samples.shape[1])],
        dtype=torch.float32,
    )
    return {
        "ks_pvals": _ks_uniform_pvalues(ranks, L),
        "c2st_ranks": scores.mean(0),
        "c2st_ranks_std": scores.std(0, correction=0 if reps == 1 else 1),
        "c2st_dap": c2st_dap,
        "n_datasets": n,
    }

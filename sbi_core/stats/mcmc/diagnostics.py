r"""Did the chains mix? Bulk ESS and rank-normalised R-hat per parameter, in plain words.

For ``C`` chains of ``n`` kept draws of one parameter, ArviZ computes

* the **rank-normalised split R-hat** (Vehtari et al. 2021, "Rank-normalization,
  folding, and localization: an improved R-hat"): each chain is split in two
  halves, the pooled draws are replaced by normal scores of their ranks, and
  ``R-hat = sqrt(var_pooled / mean(var_within))``. Chains that explore the
  same distribution give 1; above 1.1 (the threshold here; 1.01 is the strict
  one) some chains sit where others do not go.
* the **bulk effective sample size**: ``C n / (1 + 2 sum_t rho_t)`` on the
  rank-normalised draws, the number of independent draws worth as much as the
  correlated ones for the posterior's centre.

:func:`mcmc_report` turns these into the JSON-serialisable dict a posterior
keeps as ``sampling_report``, with a warning for a student when the chains
have not mixed (R-hat above 1.1) or the draws are worth few independent ones
(ESS below 10 % of the draws, or below 100).
"""

from __future__ import annotations

import math
import warnings
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["RHAT_LIMIT", "mcmc_report", "ess_rhat"]

RHAT_LIMIT = 1.1
MIN_ESS = 100
MIN_ESS_FRACTION = 0.1


def _finite_or_none(v: float) -> Optional[float]:
    return float(v) if math.isfinite(float(v)) else None


def ess_rhat(draws: Tensor) -> tuple[list[Optional[float]], list[Optional[float]]]:
    """Bulk ESS and rank-normalised R-hat per dimension of ``draws (C, n, D)`` (``None`` where undefined)."""
    import arviz  # imported here: it is slow to import and only diagnostics need it

    arr = torch.as_tensor(draws).detach().to(torch.float64).cpu().numpy()
    ess, rhat = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few draws or constant chains: values become nan, reported as None
        for j in range(arr.shape[2]):
            x = np.ascontiguousarray(arr[:, :, j])
            ess.append(_finite_or_none(arviz.ess(x, method="bulk")))
            rhat.append(_finite_or_none(arviz.rhat(x, method="rank")) if arr.shape[0] * arr.shape[1] >= 8 else None)
    return ess, rhat


def _warning(ess: list, rhat: list, num_chains: int, num_draws: int, names: Sequence[str]) -> Optional[str]:
    """A plain-words warning for the worst problem, or ``None`` when the chains look fine."""
    total = num_chains * num_draws
    r = [(v if v is not None else math.inf) for v in rhat]
    worst = max(range(len(r)), key=lambda j: r[j]) if r else None
    if worst is not None and r[worst] > RHAT_LIMIT:
        value = "undefined" if not math.isfinite(r[worst]) else f"{r[worst]:.2f}"
        return (f"The MCMC chains have not mixed (R-hat {value} for {names[worst]}, above {RHAT_LIMIT}): "
                "the samples may miss part of the posterior. More chains or a longer warm-up would help; "
                "the round's cloud may be wrong.")
    e = [(v if v is not None else 0.0) for v in ess]
    low = min(range(len(e)), key=lambda j: e[j]) if e else None
    if low is not None and (e[low] < MIN_ESS_FRACTION * total or e[low] < min(MIN_ESS, total)):
        return (f"The MCMC draws are strongly correlated: {total} draws are worth only about "
                f"{e[low]:.0f} independent ones for {names[low]}, so the posterior's shape is uncertain. "
                "More samples, more chains or more thinning would help.")
    return None


def mcmc_report(draws: Tensor, param_names: Optional[Sequence[str]] = None, *,
                seconds: Optional[float] = None) -> dict:
    """Diagnostics of one group's chains, as a JSON-serialisable dict.

    Args:
        draws: ``(C, n, D)`` kept draws of ``C`` chains (``MCMCResult.draws[g]``).
        param_names: ``D`` names used in the warning (default ``theta1..thetaD``).
        seconds: the sampling time to report (e.g. ``MCMCResult.seconds``).

    Returns:
        ``{"kind": "mcmc", "num_chains", "num_draws" (per chain), "ess": [D], "rhat": [D],
        "seconds", "warning": str or None}``; an ESS or R-hat that is undefined is ``None``.
    """
    draws = torch.as_tensor(draws)
    if draws.dim() != 3:
        raise ValueError(f"draws must have shape (chains, draws, D); got {tuple(draws.shape)}.")
    c, n, d = draws.shape
    names = list(param_names) if param_names is not None else [f"theta{j + 1}" for j in range(d)]
    ess, rhat = ess_rhat(draws)
    return {"kind": "mcmc", "num_chains": int(c), "num_draws": int(n), "ess": ess, "rhat": rhat,
            "seconds": float(seconds or 0.0), "warning": _warning(ess, rhat, c, n, names)}

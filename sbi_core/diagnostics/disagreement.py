r"""Do estimators trained with different seeds agree at one observation? A cheap second opinion.

Train ``K >= 2`` estimators of one method on the same simulations, differing only in their
seed (initial weights, validation split, batch order), and draw ``S_k`` posterior samples
at ``x_o`` from each (a *deep ensemble*: Lakshminarayanan, Pritzel & Blundell 2017, "Simple
and scalable predictive uncertainty estimation using deep ensembles", NeurIPS). Where the
members agree, the answer does not hinge on the luck of training; where they disagree, at
least some of them are wrong there, however narrow each one's posterior looks. Agreement is
no proof of a right posterior (members share the data and the method, so they may share a
bias); disagreement is evidence of a wrong one.

**Location** (between against within, as in Gelman & Rubin 1992, "Inference from iterative
simulation using multiple sequences", Statistical Science 7). For parameter ``d``, member
``k`` has draws with mean ``m_kd`` and standard deviation ``s_kd``. Let

    B_d = sd_k(m_kd)                       (sample sd over the K members, ddof 1)
    W_d = sqrt( mean_k s_kd^2 )            (the members' typical posterior sd)
    r_d = B_d / W_d

so ``r_d`` says how far apart the members put the parameter, in posterior standard
deviations. Treating the members as chains, Gelman-Rubin's potential scale reduction is
``R_d = sqrt(1 + r_d^2)`` (for many draws per member). The classical rule calls chains
converged when ``R < 1.1`` (Gelman et al. 2013, *Bayesian Data Analysis*, 3rd ed., 11.5), that
is ``r_d < sqrt(1.1^2 - 1) = 0.458``: :data:`LOCATION_THRESHOLD`. Above it the members' means
are spread over about half a posterior sd or more, a shift one sees by eye in their marginals.
(The stricter ``R < 1.01`` of Vehtari et al. 2021 is meant for MCMC, where more draws always
help; trained estimators differ by seed even when each is good, so the classical rule is the
fair one.) Monte Carlo noise alone gives ``r_d`` about ``1 / sqrt(S)``: 0.03 for 1,000 draws
and 0.07 for :data:`MIN_DRAWS` (200), well under the threshold.

**Width.** Members may agree on the centre and not on the spread (one overconfident). Let
``w_d = max_k s_kd / min_k s_kd``. The members disagree on the width of ``d`` when
``w_d > 1.5`` (:data:`WIDTH_THRESHOLD`): for normal marginals the narrower member's central
90 % interval then holds at most ``P(|Z| < 1.645 / 1.5) = 73 %`` of the wider member's mass.
Monte Carlo noise alone spreads each ``log s_kd`` by about ``1 / sqrt(2 (S - 1))``, so ``log w_d``,
the range of ``K`` of them, is about ``c_K / sqrt(2 (S - 1))`` (``c_K`` the expected range of ``K``
standard normals, 2.33 for five): for ``S = 200`` that is ``w_d`` about 1.12, far under 1.5 (``log 1.5``
is 8 of those standard deviations); it is why a member needs :data:`MIN_DRAWS` draws.

:func:`ensemble_disagreement` returns these numbers per parameter, the parameters the
members disagree on, and a verdict in plain words that names them.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor

from sbi_core.errors import SBIError

__all__ = ["ensemble_disagreement", "LOCATION_THRESHOLD", "WIDTH_THRESHOLD", "MIN_DRAWS", "MIN_MEMBERS"]

LOCATION_THRESHOLD = math.sqrt(1.1**2 - 1.0)  # r_d above this: Gelman-Rubin's R above 1.1 (0.458)
WIDTH_THRESHOLD = 1.5  # largest member sd / smallest member sd above this: they disagree on the width
MIN_DRAWS = 200  # finite draws each member needs (so Monte Carlo noise alone stays far under both thresholds)
MIN_MEMBERS = 2


def _member(draws, k: int, dim: Optional[int]) -> Tensor:
    """Member ``k``'s finite draws as float64 ``(S_k, D)``, or an SBIError saying what is wrong."""
    t = torch.as_tensor(draws).detach().to(torch.float64)
    if t.ndim == 1:
        t = t.reshape(-1, 1)
    if t.ndim != 2:
        raise SBIError(f"The draws of estimator {k + 1} must be a table of samples (S, D), got shape "
                       f"{tuple(t.shape)}.")
    if dim is not None and t.shape[1] != dim:
        raise SBIError(f"Estimator {k + 1} has draws of {t.shape[1]} parameters, the first has {dim}.")
    t = t[torch.isfinite(t).all(1)]
    if len(t) < MIN_DRAWS:
        raise SBIError(f"Estimator {k + 1} has {len(t)} finite posterior draws; at least {MIN_DRAWS} are needed "
                       "to compare the estimators.")
    return t


def _listed(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _verdict(k: int, rows: list[dict]) -> str:
    bad = [r for r in rows if r["disagree"]]
    who = f"The {k} estimators (trained on the same simulations, with different seeds)"
    if not bad:
        worst = max(rows, key=lambda r: r["statistic"])
        return (f"{who} agree at your observation: the spread of their means is at most {worst['statistic']:.2f} "
                f"posterior standard deviations (for {worst['name']}) and their widths match. "
                "The answer does not depend on the luck of training (though the estimators could still share a "
                "bias).")
    parts = []
    for r in bad:
        why = []
        if r["location"]:
            why.append(f"the spread of their means is {r['statistic']:.2f} posterior standard deviations")
        if r["width"]:
            why.append(f"the widest is {r['width_ratio']:.1f} times as wide as the narrowest")
        parts.append(f"{r['name']} ({' and '.join(why)})")
    return (f"{who} disagree at your observation about {_listed(parts)}: the posterior of "
            f"{_listed([r['name'] for r in bad])} depends on the luck of training, so at least some of them "
            "are wrong there. Train on more simulations or for longer, or distrust "
            f"{'that parameter' if len(bad) == 1 else 'those parameters'} here.")


def ensemble_disagreement(draws: Sequence, names: Optional[Sequence[str]] = None,
                          threshold: float = LOCATION_THRESHOLD,
                          width_threshold: float = WIDTH_THRESHOLD) -> dict:
    """Where ``K`` estimators' posteriors at one observation disagree (see the module docstring).

    Args:
        draws: ``K >= 2`` tables of posterior draws at ``x_o``, one per estimator, each ``(S_k, D)``
            (tensors or arrays; rows with NaN or infinity are left out; ``S_k`` may differ).
        names: ``D`` parameter names (default ``theta1 .. thetaD``).
        threshold: ``r_d`` above which the members disagree on the location of parameter ``d``.
        width_threshold: ``max_k s_kd / min_k s_kd`` above which they disagree on its width.

    Returns a JSON-ready dict: ``num_members`` ``K``, ``num_draws`` (``S_k`` each), ``names``,
    ``means`` and ``sds`` (``K`` lists of ``D``), ``statistic`` (``r_d``, ``D``), ``rhat``
    (``sqrt(1 + r_d^2)``), ``width_ratio`` (``w_d``), ``between_sd`` (``B_d``), ``within_sd``
    (``W_d``), ``parameters`` (one dict per parameter with all of these and ``location``,
    ``width``, ``disagree``), ``disagree`` (the names the members disagree on), ``agree``,
    ``threshold``, ``width_threshold`` and ``verdict`` (plain words naming those parameters).

    Raises :class:`SBIError` for fewer than two members, members of different dimensions, a
    member with fewer than :data:`MIN_DRAWS` finite draws or names that do not fit.
    """
    draws = list(draws)
    if len(draws) < MIN_MEMBERS:
        raise SBIError(f"Comparing estimators needs at least {MIN_MEMBERS} of them, got {len(draws)}.")
    members = []
    for k, d in enumerate(draws):
        members.append(_member(d, k, members[0].shape[1] if members else None))
    dim = members[0].shape[1]
    names = [f"theta{i + 1}" for i in range(dim)] if names is None else [str(n) for n in names]
    if len(names) != dim:
        raise SBIError(f"{len(names)} parameter names for draws of {dim} parameters.")
    means = torch.stack([m.mean(0) for m in members])  # (K, D)
    sds = torch.stack([m.std(0) for m in members])  # (K, D)
    between = means.std(0)  # (D,), ddof 1
    within = sds.pow(2).mean(0).sqrt()  # (D,)
    tiny = torch.finfo(torch.float64).tiny
    r = torch.where(within > 0, between / within.clamp_min(tiny), torch.where(between > 0, math.inf, 0.0))
    width = torch.where(sds.min(0).values > 0, sds.max(0).values / sds.min(0).values.clamp_min(tiny),
                        torch.where(sds.max(0).values > 0, math.inf, 1.0))
    rows = []
    for i, name in enumerate(names):
        location, wide = bool(r[i] > threshold), bool(width[i] > width_threshold)
        rows.append({"name": name, "member_means": means[:, i].tolist(), "member_sds": sds[:, i].tolist(),
                     "statistic": float(r[i]), "rhat": math.sqrt(1.0 + float(r[i]) ** 2),
                     "width_ratio": float(width[i]), "between_sd": float(between[i]),
                     "within_sd": float(within[i]), "location": location, "width": wide,
                     "disagree": location or wide})
    disagree = [row["name"] for row in rows if row["disagree"]]
    return {
        "num_members": len(members), "num_draws": [len(m) for m in members], "names": names,
        "means": means.tolist(), "sds": sds.tolist(), "statistic": [row["statistic"] for row in rows],
        "rhat": [row["rhat"] for row in rows], "width_ratio": [row["width_ratio"] for row in rows],
        "between_sd": between.tolist(), "within_sd": within.tolist(), "parameters": rows,
        "disagree": disagree, "agree": not disagree, "threshold": float(threshold),
        "width_threshold": float(width_threshold), "verdict": _verdict(len(members), rows),
    }

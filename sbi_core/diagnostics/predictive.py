"""Posterior predictive check: does data simulated from the posterior look like the observation?

Given posterior draws ``theta_m ~ q(theta | x_obs)``, ``m = 1..M``, simulate
``x_m ~ p(x | theta_m)``: draws of the posterior predictive
``p(x | x_obs) = int p(x | theta) q(theta | x_obs) dtheta``. Per observation
component ``k``, with ``F_k`` the empirical distribution of ``x_mk``:

* the central ``level`` predictive band ``[Q_k((1 - level) / 2), Q_k((1 + level) / 2)]``
  and whether ``x_obs,k`` lies inside it;
* the two-sided predictive p-value

      p_k = min(1, 2 min(P(x_mk <= x_obs,k), P(x_mk >= x_obs,k))),

  small when the observation sits in a tail of what the posterior predicts.

If the posterior explains the data, most components are inside their bands
(about ``level`` of them, more when the components are correlated); a
posterior in the wrong place leaves many outside. Simulations that return
NaN or infinity are left out and counted.

Repeated trials (:class:`~sbi_core.stats.shapes.DataShape` of kind ``trials``) are
exchangeable, so trial ``j`` of one set has nothing to do with trial ``j`` of
another: the check compares what a set of trials says instead, the mean and the
standard deviation of each of the ``D`` numbers over the ``m`` observed trials
(the mean only for one trial), with each predictive set cut to its first ``m``
trials (iid, so a set of ``m``). A series or an image is checked point by point
as a vector is (pages draw the bands as a fan chart).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import Tensor

from sbi_core.errors import SBIError
from sbi_core.stats.shapes import DataShape

__all__ = ["PredictiveCheck", "posterior_predictive_check", "MAX_PLOTTED", "trial_summaries", "trial_feature_names"]

MAX_PLOTTED = 200  # predictive simulations kept for plotting


@dataclass(frozen=True)
class PredictiveCheck:
    """Posterior predictive check at one observation.

    simulations: ``(m, K)`` valid predictive simulations, thinned evenly to at most ``MAX_PLOTTED`` rows.
    lower, upper: ``(K,)`` the central ``level`` band per component.
    inside: ``(K,)`` bool, ``x_obs`` within the band.
    p_values: ``(K,)`` two-sided predictive p-values.
    fraction_inside: share of components inside their band.
    level: the band's level; n_simulations: valid simulations used; n_invalid: NaN/inf simulations left out.
    observed: ``(K,)`` the observed values checked (``x_obs``, or for trials their summaries).
    names: the names of the checked values when they are not the observation's own numbers
        (trials: ``"mean of rt"``, ``"sd of rt"``, ...), else ``None``.
    """

    simulations: Tensor
    lower: Tensor
    upper: Tensor
    inside: Tensor
    p_values: Tensor
    fraction_inside: float
    level: float
    n_simulations: int
    n_invalid: int
    observed: Optional[Tensor] = None
    names: Optional[list] = None


def trial_summaries(x: Tensor, shape: DataShape, num_trials: int,
                    feature_names: Optional[list] = None) -> tuple[Tensor, list[str]]:
    """What sets of trials say: ``x (N, K)`` flat sets cut to their first ``num_trials`` trials ->
    ``(N, S)`` per-feature means (and standard deviations when ``num_trials > 1``), with names.

    A set with fewer present trials than ``num_trials`` gets NaN (it is then left out as invalid).
    """
    m, d = shape.dims
    rows = x.reshape(x.shape[0], m, d)[:, :num_trials].double()
    features = list(feature_names or [f"value {j + 1}" for j in range(d)])
    parts, names = [rows.mean(1)], [f"mean of {f}" for f in features]
    if num_trials > 1:
        parts.append(rows.std(1))
        names += [f"sd of {f}" for f in features]
    return torch.cat(parts, 1).float(), names


def trial_feature_names(obs_names: Optional[list], shape: DataShape) -> list[str]:
    """The ``D`` names of one trial's numbers from a trials model's ``K`` names (``"trial 1 rt"`` -> ``"rt"``)."""
    d = shape.trial_width
    if not obs_names or len(obs_names) != shape.size:
        return ["the trials"] if d == 1 else [f"value {j + 1}" for j in range(d)]
    first = [str(n) for n in obs_names[:d]]
    stripped = [n.split(" ", 2)[-1] if n.lower().startswith("trial ") and n.count(" ") >= 2 else n for n in first]
    return stripped if d > 1 or stripped[0] != first[0] else ["the trials"]


def _simulate(simulator: Any, theta: Tensor, seed: Optional[int]) -> Tensor:
    """``simulator`` on ``theta (M, D)``: a Simulator's ``simulate(theta, seed=)``, or a plain callable."""
    simulate = getattr(simulator, "simulate", None)
    if callable(simulate):
        try:
            takes_seed = "seed" in inspect.signature(simulate).parameters
        except (TypeError, ValueError):
            takes_seed = False
        return simulate(theta, seed=seed) if takes_seed else simulate(theta)
    if not callable(simulator):
        raise SBIError("simulator must be a Simulator or a function theta (n, D) -> x (n, K).")
    return simulator(theta)


def posterior_predictive_check(
    simulator: Any,
    posterior_samples: Tensor,
    x_obs: Tensor,
    level: float = 0.9,
    seed: Optional[int] = None,
    data_shape: Optional[DataShape] = None,
    obs_names: Optional[list] = None,
) -> PredictiveCheck:
    """Simulate from ``posterior_samples (M, D)`` and compare with ``x_obs (K,)``.

    ``simulator``: a :class:`~sbi_core.simulators.base.Simulator` (its noise is
    seeded with ``seed``) or any callable ``Tensor (M, D) -> Tensor (M, K)``.
    ``data_shape``: how one simulation folds (default: the simulator's, else a vector); for
    trials the check compares their summaries (module docstring), named from ``obs_names``.
    """
    if data_shape is None:
        data_shape = getattr(simulator, "data_shape", None)
    if obs_names is None:
        obs_names = getattr(simulator, "obs_names", None)
    if not 0 < float(level) < 1:
        raise SBIError(f"level must be between 0 and 1, got {level}.")
    theta = torch.as_tensor(posterior_samples, dtype=torch.float32)
    if theta.ndim == 1:
        theta = theta[:, None]
    x_obs = torch.as_tensor(x_obs, dtype=torch.float32).reshape(-1)
    trials = data_shape is not None and data_shape.kind == "trials"
    if trials:
        x_obs = torch.as_tensor(data_shape.observation(x_obs.numpy()), dtype=torch.float32)  # says what to fix
    elif not bool(torch.isfinite(x_obs).all()):
        raise SBIError("The observation contains NaN or infinite values; give finite numbers.")
    with torch.no_grad():
        sims = torch.as_tensor(_simulate(simulator, theta, seed), dtype=torch.float32)
    if sims.ndim == 1:
        sims = sims[:, None]
    if sims.shape != (theta.shape[0], x_obs.shape[0]):
        raise SBIError(
            f"The simulator returned shape {tuple(sims.shape)} for {theta.shape[0]} parameter sets; "
            f"expected ({theta.shape[0]}, {x_obs.shape[0]}), one row per set with as many numbers as the observation."
        )
    names = None
    if trials:
        m = int(data_shape.trial_counts(x_obs[None].numpy())[0])
        features = trial_feature_names(obs_names, data_shape)
        x_obs, names = trial_summaries(x_obs[None], data_shape, m, features)
        x_obs = x_obs[0]
        sims = trial_summaries(sims, data_shape, m, features)[0]
    ok = torch.isfinite(sims).all(1)
    sims, n_invalid = sims[ok], int((~ok).sum())
    if sims.shape[0] < 2:
        raise SBIError(
            f"Only {sims.shape[0]} of {len(ok)} predictive simulations are finite; the check needs at least 2."
        )
    s = sims.double()
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    lower, upper = torch.quantile(s, q, dim=0)
    obs = x_obs.double()
    inside = (obs >= lower) & (obs <= upper)
    below, above = (s <= obs).double().mean(0), (s >= obs).double().mean(0)
    p_values = torch.clamp(2 * torch.minimum(below, above), max=1.0)
    keep = torch.linspace(0, sims.shape[0] - 1, min(MAX_PLOTTED, sims.shape[0])).round().long()
    return PredictiveCheck(
        simulations=sims[keep],
        lower=lower.float(),
        upper=upper.float(),
        inside=inside,
        p_values=p_values.float(),
        fraction_inside=float(inside.double().mean()),
        level=float(level),
        n_simulations=int(sims.shape[0]),
        n_invalid=n_invalid,
        observed=x_obs,
        names=names,
    )

"""The run loop: simulate -> train -> posterior, round after round.

Round ``r`` (0-based) of a run at observation ``x_o``:

1. draw ``N`` parameters from the proposal: the prior in round 0; afterwards
   the previous posterior ``p_{r-1}(theta | x_o)`` (``"snpe"``, APT) or the
   prior truncated to its high-density region (``"tsnpe"``);
2. simulate ``x_i ~ p(x | theta_i)`` in batches, dropping and counting pairs
   with NaN or infinite output;
3. train the estimator on all pairs so far (:mod:`sbi_core.methods`);
4. snapshot the posterior and draw samples at ``x_o``.

``method="npe"`` is the amortized special case: a single round on the prior.
Every step emits events (:mod:`sbi_core.events`) as it happens, and a cancel
check is consulted between simulation batches and after every epoch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import torch
from torch import Tensor

from .errors import SBIError
from .events import EventCallback, make_event
from .methods import SNPE, TSNPE, TruncatedPrior
from .posterior import Posterior
from .priors import Prior
from .simulators import Simulator, get_simulator
from .spec import METHODS, RunSpec, RunSpecError
from .training import Cancelled, set_threads

__all__ = ["RoundResult", "RunResult", "run_sequential", "execute", "resolve_simulator"]

SimulatorLike = Union[Simulator, Callable[[Tensor], Tensor]]
MAX_INVALID_FRACTION = 0.5


@dataclass
class RoundResult:
    """Everything one round produced.

    theta: ``(N, D)`` valid parameters simulated this round; x: ``(N, K)``.
    posterior_samples: ``(m, D)`` samples of this round's posterior at ``x_o``.
    seconds: wall time of ``simulate``, ``train`` and ``sample``.
    """

    index: int
    proposal: Union[Prior, Posterior, TruncatedPrior]
    theta: Tensor
    x: Tensor
    num_invalid: int
    history: list[dict]
    best_epoch: int
    stopped_early: bool
    posterior: Posterior
    posterior_samples: Tensor
    acceptance_rate: float
    seconds: dict[str, float]

    @property
    def num_simulations(self) -> int:
        return self.theta.shape[0] + self.num_invalid


@dataclass
class RunResult:
    """A finished run: its rounds, the observation and the prior."""

    rounds: list[RoundResult]
    x_obs: Tensor
    prior: Prior
    param_names: list[str]
    seconds: float = 0.0
    spec: Optional[RunSpec] = None
    simulator: Optional[SimulatorLike] = field(default=None, repr=False)

    @property
    def posterior(self) -> Posterior:
        """The final round's posterior (``default_x`` set to ``x_obs``)."""
        return self.rounds[-1].posterior


def _simulate_round(
    simulator: SimulatorLike,
    theta: Tensor,
    generator: torch.Generator,
    round_index: int,
    on_event: EventCallback | None,
    cancel: Callable[[], bool] | None,
    batch_size: Optional[int],
) -> Tensor:
    n = theta.shape[0]
    batch = batch_size or max(100, math.ceil(n / 10))
    parts: list[Tensor] = []
    invalid = 0
    for start in range(0, n, batch):
        chunk = theta[start : start + batch]
        if isinstance(simulator, Simulator):
            x = simulator.simulate(chunk, generator=generator)
        else:
            x = torch.as_tensor(simulator(chunk), dtype=torch.float32)
        if x.ndim == 1:
            x = x[:, None]
        if x.shape[0] != chunk.shape[0]:
            raise SBIError(
                f"The simulator returned {x.shape[0]} rows for {chunk.shape[0]} parameter sets; "
                "it must return one row per parameter set."
            )
        parts.append(x)
        invalid += int((~torch.isfinite(x).all(1)).sum())
        done = start + chunk.shape[0]
        if on_event is not None:
            on_event(make_event("simulation", round=round_index, done=done, total=n, invalid=invalid))
        if cancel is not None and cancel():
            raise Cancelled(f"cancelled while simulating round {round_index + 1}")
    return torch.cat(parts)


def run_sequential(
    simulator: SimulatorLike,
    prior: Prior | list,
    x_obs: Tensor,
    method: str = "snpe",
    num_rounds: int = 5,
    simulations_per_round: int = 1000,
    seed: int = 0,
    on_event: EventCallback | None = None,
    *,
    cancel: Callable[[], bool] | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
    density_estimator: str = "nsf",
    hidden_features: int = 50,
    num_transforms: int = 5,
    num_posterior_samples: int = 1000,
    simulation_batch_size: Optional[int] = None,
    num_threads: Optional[int] = None,
    num_atoms: int = 10,
    simulations: Optional[tuple[Tensor, Tensor]] = None,
    **training,
) -> RunResult:
    """Run NPE (one round, amortized) or SNPE (``num_rounds`` rounds) at ``x_obs``.

    Args:
        simulator: a :class:`Simulator` (seeded from ``seed``) or any callable
            ``theta (n, D) -> x (n, K)`` (which then owns its randomness).
        prior: a :class:`Prior` or a prior spec.
        x_obs: ``(K,)`` the observation.
        method: ``"snpe"`` (sequential, APT: proposals are the previous
            posterior), ``"tsnpe"`` (sequential: proposals are the prior
            truncated to the previous posterior's high-density region) or
            ``"npe"`` (amortized: one round on the prior; ``num_rounds`` is
            then ignored).
        on_event: called with every event as it happens.
        cancel: returns True to stop; the run raises :class:`Cancelled`.
        on_round: called with each :class:`RoundResult` as soon as it exists.
        simulations: ``(theta (N, D), x (N, K))`` already simulated (a table
            of simulations): trains amortized NPE on them; ``simulator`` may
            then be ``None`` and ``method`` must be ``"npe"``.
        **training: :class:`~sbi_core.training.TrainConfig` fields.
    """
    if method not in METHODS:
        raise SBIError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}.")
    if simulations is not None and method != "npe":
        raise SBIError("A table of simulations can only train amortized NPE (sequential rounds need a simulator).")
    if simulations is None and simulator is None:
        raise SBIError("Give a simulator or a table of simulations.")
    prior = Prior.from_spec(prior)
    set_threads(num_threads)
    rounds_total = 1 if method == "npe" else int(num_rounds)
    x_obs = torch.as_tensor(x_obs, dtype=torch.float32).reshape(-1)
    if not torch.isfinite(x_obs).all():
        raise SBIError("The observation contains NaN or infinite values; give finite numbers.")
    if isinstance(simulator, Simulator):
        if simulator.theta_dim != prior.dim:
            raise SBIError(
                f"The prior has {prior.dim} parameters but {simulator.title} takes {simulator.theta_dim} "
                f"({', '.join(simulator.param_names)})."
            )
        if simulator.x_dim != x_obs.shape[0]:
            raise SBIError(
                f"The observation has {x_obs.shape[0]} numbers but {simulator.title} produces "
                f"{simulator.x_dim} ({', '.join(simulator.obs_names)})."
            )

    flow = dict(density_estimator=density_estimator, hidden_features=hidden_features,
                num_transforms=num_transforms, seed=seed)
    if method == "tsnpe":
        estimator = TSNPE(prior, **flow, **training)
    else:  # APT; "npe" is its first round alone
        estimator = SNPE(prior, **flow, num_atoms=num_atoms, **training)
    g_theta = torch.Generator().manual_seed(seed + 1_000_003)
    g_sim = torch.Generator().manual_seed(seed + 2_000_003)
    g_post = torch.Generator().manual_seed(seed + 3_000_017)
    g_proposal = torch.Generator().manual_seed(seed + 4_000_037)
    prior_mean, prior_std = prior.mean, prior.stddev
    proposal: Union[Prior, Posterior, TruncatedPrior] = prior
    result = RunResult(rounds=[], x_obs=x_obs, prior=prior, param_names=prior.names, simulator=simulator)
    run_start = time.perf_counter()

    for r in range(rounds_total):
        t0 = time.perf_counter()
        t_proposed = t0
        if simulations is not None:
            theta, x = (torch.as_tensor(a, dtype=torch.float32) for a in simulations)
            if on_event is not None:
                on_event(make_event("simulation", round=0, done=theta.shape[0], total=theta.shape[0],
                                    invalid=int((~torch.isfinite(x).all(1)).sum())))
        else:
            if r == 0:
                theta = prior.sample((simulations_per_round,), generator=g_theta)
            else:
                proposal = estimator.next_proposal(result.rounds[-1].posterior, x_obs, g_proposal)
                theta = proposal.sample((simulations_per_round,), x=x_obs, generator=g_theta)
            t_proposed = time.perf_counter()
            x = _simulate_round(simulator, theta, g_sim, r, on_event, cancel, simulation_batch_size)
        if r == 0 and x.shape[1] != x_obs.shape[0]:
            raise SBIError(
                f"The observation has {x_obs.shape[0]} numbers but the simulator returns {x.shape[1]} per run."
            )
        invalid = int((~torch.isfinite(x).all(1)).sum())
        if invalid > MAX_INVALID_FRACTION * theta.shape[0]:
            raise SBIError(
                f"{invalid} of {theta.shape[0]} simulations in round {r + 1} returned NaN or infinity. "
                "Check the simulator for parameter values in the prior's range, or narrow the prior."
            )
        t1 = time.perf_counter()
        estimator.append_simulations(theta, x)
        posterior = estimator.train(on_event=on_event, cancel=cancel)
        posterior.set_default_x(x_obs)
        t2 = time.perf_counter()
        samples = posterior.sample((num_posterior_samples,), x=x_obs, generator=g_post)
        t3 = time.perf_counter()
        fit = estimator.last_result
        ok = torch.isfinite(x).all(1)
        rr = RoundResult(
            index=r,
            proposal=proposal,
            theta=theta[ok],
            x=x[ok],
            num_invalid=invalid,
            history=fit.history,
            best_epoch=fit.best_epoch,
            stopped_early=fit.stopped_early,
            posterior=posterior,
            posterior_samples=samples,
            acceptance_rate=float(posterior.last_acceptance_rate or 1.0),
            seconds={"propose": t_proposed - t0, "simulate": t1 - t_proposed, "train": t2 - t1, "sample": t3 - t2},
        )
        result.rounds.append(rr)
        if on_round is not None:
            on_round(rr)
        if on_event is not None:
            mean, std = samples.mean(0), samples.std(0)
            on_event(
                make_event(
                    "round",
                    round=r,
                    num_rounds=rounds_total,
                    num_simulations=rr.num_simulations,
                    num_invalid=invalid,
                    epochs=fit.epochs,
                    best_epoch=fit.best_epoch,
                    stopped_early=fit.stopped_early,
                    seconds=rr.seconds,
                    acceptance_rate=rr.acceptance_rate,
                    proposal_fraction=1.0 if isinstance(proposal, Prior) else getattr(proposal, "prior_fraction", None),
                    param_names=prior.names,
                    mean=mean.tolist(),
                    std=std.tolist(),
                    prior_mean=prior_mean.tolist(),
                    prior_std=prior_std.tolist(),
                    posterior_samples=samples.tolist(),
                )
            )
    result.seconds = time.perf_counter() - run_start
    return result


def resolve_simulator(spec: RunSpec) -> Simulator:
    """The :class:`Simulator` a spec refers to (built-in or uploaded)."""
    ref = spec.simulator_ref
    kind = ref.get("kind")
    if kind == "builtin":
        try:
            return get_simulator(ref.get("name", ""))
        except KeyError as err:
            raise RunSpecError(str(err.args[0])) from None
    if kind == "upload":
        from .simulators.uploaded import load_simulator

        options = {k: v for k, v in ref.items() if k in ("timeout", "memory_mb")}
        return load_simulator(ref["path"], prior=spec.prior, **options)
    raise RunSpecError(f"Unknown simulator kind {kind!r}; use 'builtin', 'upload' or 'table'.")


def execute(
    spec: RunSpec,
    on_event: EventCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
) -> RunResult:
    """Run a :class:`RunSpec` end to end (what a worker process and the CLI call).

    Emits ``run_started``, then the loop's events; on cancel, emits
    ``cancelled`` and re-raises :class:`Cancelled`. Does not emit ``done`` or
    ``failed``: the caller decides how to record the outcome.
    """
    spec.validate()
    set_threads(spec.num_threads)
    simulations = None
    if spec.simulator_ref.get("kind") == "table":
        from .tables import load_training_pairs

        if spec.prior is None or spec.observation is None:
            raise RunSpecError("A run on a table of simulations needs a prior and an observation.")
        if spec.method != "npe":
            raise RunSpecError("A table of simulations can only train amortized NPE: choose method 'npe'.")
        simulator = None
        prior = Prior.from_spec(spec.prior)
        simulations = load_training_pairs(spec.simulator_ref, prior)
    else:
        simulator = resolve_simulator(spec)
        prior = Prior.from_spec(spec.prior) if spec.prior is not None else simulator.prior
    x_obs = (
        torch.tensor(spec.observation, dtype=torch.float32)
        if spec.observation is not None
        else simulator.default_observation
    )
    rounds = 1 if spec.method == "npe" else spec.num_rounds
    if on_event is not None:
        on_event(make_event("run_started", spec=spec.to_dict(), num_rounds=rounds, param_names=prior.names))
    current = {"round": 0}

    def track(event: dict) -> None:
        if "round" in event:
            current["round"] = event["round"]
        if on_event is not None:
            on_event(event)

    try:
        result = run_sequential(
            simulator,
            prior,
            x_obs,
            method=spec.method,
            num_rounds=rounds,
            simulations_per_round=spec.simulations_per_round,
            seed=spec.seed,
            on_event=track,
            cancel=cancel,
            on_round=on_round,
            density_estimator=spec.density_estimator,
            hidden_features=spec.hidden_features,
            num_transforms=spec.num_transforms,
            num_posterior_samples=spec.num_posterior_samples,
            max_epochs=spec.max_epochs,
            batch_size=spec.batch_size,
            learning_rate=spec.learning_rate,
            validation_fraction=spec.validation_fraction,
            patience=spec.patience,
            simulations=simulations,
        )
    except Cancelled:
        if on_event is not None:
            on_event(make_event("cancelled", round=current["round"]))
        raise
    result.spec = spec
    return result

"""The run loop: propose -> simulate -> train -> snapshot, round after round.

Round ``r`` (0-based) of a run at observation ``x_o``:

1. **propose**: draw ``N`` parameters from the prior in round 0; afterwards
   from what the method's proposal rule makes of the last posterior (the
   posterior itself for ``"snpe"``, the prior truncated to its high-density
   region for ``"tsnpe"``; one-round methods such as ``"npe"`` stop after
   round 0);
2. **simulate** ``x_i ~ p(x | theta_i)`` through a
   :class:`~sbi_core.simulators.sources.SimulationSource` (a simulator in batches, or a
   table of simulations made earlier), counting pairs with NaN or infinite
   output;
3. **train** the method's estimator on every pair so far (:mod:`sbi_core.methods`);
4. **snapshot** the posterior at ``x_o``, draw samples from it and measure
   how much of the prior its 90 % region still covers (:mod:`sbi_core.stats.concentration`)
   and, for a built-in with an exact posterior under its default prior, how well
   a classifier tells those samples from exact ones (C2ST,
   :mod:`sbi_core.diagnostics.reference`; measured after the round's event has
   gone out, and sent as a ``reference`` event, so the cloud is not held up).

Each step emits its events as it happens (constructors in
:mod:`sbi_core.events`); every random choice comes from a named stream of the
run's :class:`~sbi_core.stats.seeds.SeedPlan`; a cancel check is consulted between
simulation batches and after every epoch.

A stop-and-keep request (``stop``) ends the run early without losing work:
asked during training, the round's training ends after the current epoch with
its best network, and that network becomes the round's posterior (sampled and
reported like any round, with ``stopped_by_request`` set); asked while
simulating or between rounds, the finished rounds are kept. Either way the run
returns normally with ``RunResult.stopped_by_request``; only when no round can
be kept (round 1 still simulating) does it raise :class:`Cancelled`.

**Taking turns.** A worker shared by many runs (a class) asks ``hand_over``
between rounds, after at least one round: when it says another run waits, the run
returns with ``RunResult.handed_over_before`` set to the next round, to be resumed
from that round's checkpoint later (:mod:`sbi_core.store.turns`). Likewise
``defer_reference(r)`` may take round ``r``'s C2ST against the exact posterior off
the worker's hands (to be measured when nobody waits): the run then sends a
``reference`` event with reason :data:`~sbi_core.events.REFERENCE_DEFERRED`, and the
round's concentration measure goes with it (its event's ``hdr_size`` is ``None`` until
the deferred ``reference`` event brings it).

:func:`spec_to_run` is the one mapping from a :class:`~sbi_core.run.spec.RunSpec`
onto :func:`run_sequential`; :func:`execute` runs a spec with it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Optional, Union

import torch
from torch import Tensor

from sbi_core.diagnostics.misspecification import ModelSupport
from sbi_core.diagnostics.reference import ReferenceC2ST
from sbi_core.errors import Cancelled, RunSpecError, SBIError
from sbi_core.events import (
    EventCallback,
    REFERENCE_DEFERRED,
    REFERENCE_PENDING,
    cancelled_event,
    misspecification_event,
    reference_event,
    round_event,
    run_started_event,
    sampling_event,
)
from sbi_core.methods.base import Estimator, Method
from sbi_core.methods.registry import get_method
from sbi_core.methods.tsnpe import TruncatedPrior
from sbi_core.nn.embeddings import handmade_embedding
from sbi_core.nn.training import RunControl, TrainResult, keep_requested
from sbi_core.posteriors.posterior import Posterior
from sbi_core.run.checkpoint import Checkpoint
from sbi_core.run.spec import RunSpec
from sbi_core.simulators import Simulator, get_simulator
from sbi_core.simulators.sources import (
    SimulationSource,
    SimulatorLike,
    SimulatorSource,
    TableSource,
    check_invalid,
)
from sbi_core.simulators.uploaded import load_simulator
from sbi_core.stats.concentration import posterior_hdr_size
from sbi_core.stats.priors import Prior
from sbi_core.stats.seeds import SeedPlan
from sbi_core.stats.shapes import HANDMADE, DataShape, embedding_for
from sbi_core.tables import load_training_pairs
from sbi_core.threads import limited_threads

__all__ = ["RoundResult", "RunResult", "RunInputs", "run_sequential", "spec_to_run", "spec_settings", "execute",
           "resolve_simulator", "round_concentration"]

_DEFAULTS = {f.name: f.default for f in fields(RunSpec)}  # run_sequential's defaults are RunSpec's


@dataclass
class RoundResult:
    """Everything one round produced.

    theta: ``(N, D)`` valid parameters simulated this round; x: ``(N, K)``.
    posterior_samples: ``(m, D)`` samples of this round's posterior at ``x_o``.
    seconds: wall time of ``propose``, ``simulate``, ``train`` and ``sample`` (and ``reference``
    when the C2ST against the exact posterior was measured).
    reference_c2st: that C2ST (0.5 = indistinguishable, 1.0 = disjoint), or ``None`` and
    ``reference_c2st_reason`` says why.
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
    stopped_by_request: bool = False  # training ended early at a stop-and-keep request
    reference_c2st: Optional[float] = None
    reference_c2st_reason: Optional[str] = None
    sampling: Optional[dict] = None  # how the posterior was sampled: MCMC's ESS and R-hat, ABC's epsilon
    checkpoint: Optional[bytes] = field(default=None, repr=False)  # the loop after this round (checkpoints=True)

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
    stopped_by_request: bool = False  # ended early, keeping its rounds, at a stop-and-keep request
    handed_over_before: Optional[int] = None  # the round it goes on from on its next turn (see "Taking turns")

    @property
    def posterior(self) -> Posterior:
        """The final round's posterior (``default_x`` set to ``x_obs``)."""
        return self.rounds[-1].posterior


# ---------------------------------------------------------------------------
# inputs: checked once, here
# ---------------------------------------------------------------------------
def data_shape_of(simulator, x_obs_len: int, data_shape: Any = None) -> DataShape:
    """How one simulation of this run folds: ``data_shape`` if given (a :class:`DataShape` or its
    dict), else the simulator's own (:attr:`Simulator.data_shape`), else a vector of the
    observation's length (a plain callable, a table without a declared shape)."""
    if data_shape is not None:
        return DataShape.from_spec(data_shape)
    if isinstance(simulator, Simulator):
        return simulator.data_shape
    return DataShape.vector(x_obs_len)


def _embedding_of(embedding: Any, simulator: Any, shape: DataShape) -> Any:
    """The method's ``embedding`` argument for the run's ``embedding``: ``"handmade"`` becomes the
    simulator's own summaries (:func:`~sbi_core.nn.embeddings.handmade_embedding`), or a
    :class:`~sbi_core.stats.shapes.DataShapeError` (an :class:`SBIError`) where the model has none (an
    upload, a table, a built-in model without them); anything else is passed on as it is."""
    if embedding != HANDMADE:
        return embedding
    name = simulator.handmade_summary if isinstance(simulator, Simulator) else None
    embedding_for(HANDMADE, shape, summary=name)  # refused, with what to choose instead, without a summary
    return handmade_embedding(name)


def _check_inputs(simulator, prior, x_obs, method: str, simulations,
                  data_shape: Any = None) -> tuple[Method, Prior, Tensor, DataShape]:
    """The method, the prior, ``x_obs (K,)`` flat (a set of fewer trials padded with NaN rows:
    :meth:`DataShape.observation`) and the data shape, or an :class:`SBIError` saying what does not fit."""
    m = get_method(method)
    if simulations is not None and m.sequential:
        raise SBIError("A table of simulations can only train amortized NPE (sequential rounds need a simulator).")
    if simulations is None and simulator is None:
        raise SBIError("Give a simulator or a table of simulations.")
    prior = Prior.from_spec(prior)
    x_obs = torch.as_tensor(x_obs, dtype=torch.float32)
    shape = data_shape_of(simulator, x_obs.numel(), data_shape)
    if isinstance(simulator, Simulator) and simulator.theta_dim != prior.dim:
        raise SBIError(
            f"The prior has {prior.dim} parameters but {simulator.title} takes {simulator.theta_dim} "
            f"({', '.join(simulator.param_names)})."
        )
    if shape.kind == "trials":
        x_obs = torch.as_tensor(shape.observation(x_obs.numpy()), dtype=torch.float32)  # says what to fix
    else:
        if not torch.isfinite(x_obs).all():
            raise SBIError("The observation contains NaN or infinite values; give finite numbers.")
        if isinstance(simulator, Simulator) and simulator.x_dim != x_obs.numel():
            raise SBIError(
                f"The observation has {x_obs.numel()} numbers but {simulator.title} produces "
                f"{simulator.x_dim} ({shape.describe()}"
                + (f": {', '.join(simulator.obs_names)})." if shape.is_vector else ").")
            )
        x_obs = torch.as_tensor(shape.observation(x_obs.numpy()), dtype=torch.float32)
    return m, prior, x_obs, shape


@dataclass
class _Loop:
    """What stays fixed while a run goes round: its parts and its random streams."""

    method: Method
    estimator: Estimator
    source: SimulationSource
    prior: Prior
    x_obs: Tensor
    num_rounds: int
    simulations_per_round: int
    num_posterior_samples: int
    seeds: SeedPlan
    on_event: EventCallback | None
    cancel: Callable[[], bool] | None
    reference: Optional[ReferenceC2ST] = None  # the exact posterior, where the run has one
    checkpoints: bool = False  # capture a Checkpoint after every round
    hand_over: Optional[Callable[[], bool]] = None  # another run waits for this worker (see "Taking turns")
    defer_reference: Optional[Callable[[int], bool]] = None  # took round r's C2ST to measure later
    obs_names: Optional[list[str]] = None  # the observation's component names (the simulator's), for the verdicts
    g_theta: torch.Generator = field(init=False)
    g_post: torch.Generator = field(init=False)
    g_proposal: torch.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.g_theta = self.seeds.generator("theta")
        self.g_post = self.seeds.generator("posterior")
        self.g_proposal = self.seeds.generator("proposal")

    def emit(self, event: dict) -> None:
        if self.on_event is not None:
            self.on_event(event)


# ---------------------------------------------------------------------------
# one round
# ---------------------------------------------------------------------------
def _propose(loop: _Loop, r: int, last: Optional[RoundResult]):
    """Round ``r``'s proposal and its ``(N, D)`` parameters (a table's own parameters for a table)."""
    if loop.source.fixed_theta is not None:
        return loop.prior, loop.source.fixed_theta
    if last is None:
        return loop.prior, loop.prior.sample((loop.simulations_per_round,), generator=loop.g_theta)
    proposal = loop.estimator.next_proposal(last.posterior, loop.x_obs, loop.g_proposal)
    if isinstance(proposal, Prior):  # a rule may keep (or go back to) the prior
        return proposal, proposal.sample((loop.simulations_per_round,), generator=loop.g_theta)
    return proposal, proposal.sample((loop.simulations_per_round,), x=loop.x_obs, generator=loop.g_theta)


def _sample_kwargs(loop: _Loop, posterior, r: int) -> dict:
    """Progress and cancel hooks for a posterior sampled by a slow method (MCMC), none for the others."""
    if not getattr(posterior, "reports_progress", False):
        return {}
    def on_progress(done: int, total: int) -> None:
        loop.emit(sampling_event(r, done, total))
    return {"on_progress": on_progress, "cancel": loop.cancel}


def _snapshot(loop: _Loop, r: int) -> tuple[Posterior, Tensor, Tensor, float]:
    """The current estimate as the posterior at ``x_o``; its samples (what checks score), the round's
    cloud (the samples, or what the method shows instead: ABC's accepted particles) and the seconds."""
    posterior = loop.estimator.build_posterior(default_x=loop.x_obs)
    t = time.perf_counter()
    samples = posterior.sample((loop.num_posterior_samples,), x=loop.x_obs, generator=loop.g_post,
                               **_sample_kwargs(loop, posterior, r))
    cloud = getattr(posterior, "cloud", None)
    return posterior, samples, samples if cloud is None else cloud, time.perf_counter() - t


def _test_model(loop: _Loop, x: Tensor) -> None:
    """Could the model have made ``x_o``? The misspecification test
    (:class:`~sbi_core.diagnostics.misspecification.ModelSupport`: ``x_o``'s distance to its k-th nearest
    simulation, with a conformal p-value calibrated on the simulations themselves) on the first round's
    ``x (N, K)`` -- drawn from the prior, or a table's rows -- sent as a ``misspecification`` event before
    the network trains, so the live view can say so before the first cloud. It draws from a seed stream of
    its own (``"misspecification"``, in NumPy), so the run draws exactly what it draws without it."""
    t = time.perf_counter()
    try:
        support = ModelSupport.fit(x.detach().cpu().numpy(), seed=loop.seeds.seed_of("misspecification"))
        result = support.check(loop.x_obs.detach().cpu().numpy().reshape(-1), labels=loop.obs_names)
    except SBIError as err:  # too few finite simulations to tell: say so
        loop.emit(misspecification_event(0, reason=str(err), seconds=time.perf_counter() - t))
        return
    loop.emit(misspecification_event(0, result, seconds=time.perf_counter() - t))


def _one_round(loop: _Loop, r: int, last: Optional[RoundResult]) -> tuple[RoundResult, Tensor]:
    """Propose, simulate, train and snapshot round ``r`` (raises :class:`Cancelled` when asked);
    returns the round and the ``(m, D)`` samples its C2ST scores. A C2ST that has to be measured
    is left :data:`REFERENCE_PENDING` (:func:`_score_reference`, after the round's event)."""
    t0 = time.perf_counter()
    proposal, theta = _propose(loop, r, last)
    t1 = time.perf_counter()
    x = loop.source.simulate(theta, r, loop.on_event, loop.cancel)
    if x.shape[1] != loop.x_obs.shape[0]:
        raise SBIError(
            f"The observation has {loop.x_obs.shape[0]} numbers but the simulator returns {x.shape[1]} per run."
        )
    invalid = check_invalid(x, r, biased_by_dropping=loop.method.learns in ("likelihood", "ratio"))
    if r == 0:
        _test_model(loop, x)
    t2 = time.perf_counter()
    loop.estimator.append_simulations(theta, x)
    fit: TrainResult = loop.estimator.fit(on_event=loop.on_event, cancel=loop.cancel)
    t3 = time.perf_counter()
    posterior, samples, cloud, sample_s = _snapshot(loop, r)
    measure = loop.reference is not None and loop.reference.applies
    ref = loop.reference.score(samples) if loop.reference is not None and not measure else None  # says why not
    ok = torch.isfinite(x).all(1)
    seconds = {"propose": t1 - t0, "simulate": t2 - t1, "train": t3 - t2, "sample": sample_s}
    return RoundResult(
        index=r, proposal=proposal, theta=theta[ok], x=x[ok], num_invalid=invalid, history=fit.history,
        best_epoch=fit.best_epoch, stopped_early=fit.stopped_early, posterior=posterior,
        posterior_samples=cloud, acceptance_rate=float(posterior.last_acceptance_rate or 1.0),
        seconds=seconds, stopped_by_request=fit.stopped_by_request,
        sampling=getattr(posterior, "sampling_report", None),
        reference_c2st=None,
        reference_c2st_reason=REFERENCE_PENDING if measure else (ref.reason if ref is not None else None),
    ), samples


def _score_reference(loop: _Loop, rr: RoundResult, samples: Tensor) -> None:
    """Measure round ``rr``'s pending C2ST against the exact posterior and emit its ``reference`` event."""
    ref = loop.reference.score(samples)
    rr.reference_c2st, rr.reference_c2st_reason = ref.value, ref.reason
    if ref.value is not None:
        rr.seconds = {**rr.seconds, "reference": ref.seconds}  # a new dict: the round event keeps its own
    loop.emit(reference_event(rr.index, ref.value, ref.reason, ref.seconds if ref.value is not None else None))


def round_concentration(posterior: Any, prior: Prior, samples: Tensor, x_obs: Tensor, seeds: SeedPlan) -> dict:
    """The ``hdr_size`` of a round's event: the prior mass of ``posterior``'s 90 % region, from its
    cloud ``samples (m, D)`` at ``x_obs`` (:func:`~sbi_core.stats.concentration.posterior_hdr_size`,
    seeded by the run's ``"concentration"`` stream, so a deferred measure gives the same value)."""
    return posterior_hdr_size(posterior, prior, samples, x_obs, seed=seeds.seed_of("concentration")).to_dict()


def _round_event(loop: _Loop, rr: RoundResult, concentration: bool = True) -> dict:
    """The ``round`` event of a finished round (fields: :mod:`sbi_core.events`); without
    ``concentration`` its ``hdr_size`` is left ``None`` (deferred with the round's C2ST)."""
    samples, fit_history = rr.posterior_samples, rr.history
    proposal = rr.proposal
    hdr = round_concentration(rr.posterior, loop.prior, samples, loop.x_obs, loop.seeds) if concentration else None
    return round_event(
        round=rr.index, num_rounds=loop.num_rounds, num_simulations=rr.num_simulations,
        num_invalid=rr.num_invalid, epochs=len(fit_history), best_epoch=rr.best_epoch,
        stopped_early=rr.stopped_early, stopped_by_request=rr.stopped_by_request, seconds=rr.seconds,
        acceptance_rate=rr.acceptance_rate,
        proposal_fraction=1.0 if isinstance(proposal, Prior) else getattr(proposal, "prior_fraction", None),
        param_names=loop.prior.names, mean=samples.mean(0).tolist(), std=samples.std(0).tolist(),
        prior_mean=loop.prior.mean.tolist(), prior_std=loop.prior.stddev.tolist(),
        posterior_samples=samples.tolist(), hdr_size=hdr,
        reference_c2st=rr.reference_c2st, reference_c2st_reason=rr.reference_c2st_reason,
        sampling=rr.sampling,
    )


def _deferred(loop: _Loop, rr: RoundResult, samples: Tensor) -> bool:
    """Whether round ``rr``'s C2ST is taken to be measured later (from its saved cloud, which must
    then be the samples the C2ST scores)."""
    return loop.defer_reference is not None and rr.posterior_samples is samples and bool(loop.defer_reference(rr.index))


def _keep_round(loop: _Loop, r: int, last: Optional[RoundResult]) -> Optional[tuple[RoundResult, Tensor]]:
    """Round ``r`` (:func:`_one_round`), or ``None`` when a stop-and-keep request arrived before it
    trained anything."""
    try:
        return _one_round(loop, r, last)
    except Cancelled:
        if last is not None and keep_requested(loop.cancel) and not loop.cancel():
            return None  # asked while simulating: the finished rounds are the result
        raise


# ---------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------
def run_sequential(
    simulator: SimulatorLike,
    prior: Prior | list,
    x_obs: Tensor,
    method: str = _DEFAULTS["method"],
    num_rounds: int = _DEFAULTS["num_rounds"],
    simulations_per_round: int = _DEFAULTS["simulations_per_round"],
    seed: int = _DEFAULTS["seed"],
    on_event: EventCallback | None = None,
    *,
    cancel: Callable[[], bool] | None = None,
    stop: Callable[[], bool] | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
    density_estimator: str = _DEFAULTS["density_estimator"],
    hidden_features: int = _DEFAULTS["hidden_features"],
    num_transforms: int = _DEFAULTS["num_transforms"],
    num_posterior_samples: int = _DEFAULTS["num_posterior_samples"],
    simulation_batch_size: Optional[int] = None,
    num_threads: Optional[int] = None,
    simulations: Optional[tuple[Tensor, Tensor]] = None,
    checkpoints: bool = False,
    resume: Optional[Checkpoint] = None,
    hand_over: Callable[[], bool] | None = None,
    defer_reference: Callable[[int], bool] | None = None,
    embedding: Optional[str] = "auto",
    data_shape: Any = None,
    **settings,
) -> RunResult:
    """Run ``method`` at ``x_obs``: ``num_rounds`` rounds for a sequential method, one otherwise.

    Args:
        simulator: a :class:`Simulator` (seeded from ``seed``) or any callable
            ``theta (n, D) -> x (n, K)`` (which then owns its randomness).
        prior: a :class:`Prior` or a prior spec.
        x_obs: ``(K,)`` the observation.
        method: a name of the method registry (:mod:`sbi_core.methods.registry`):
            ``"snpe"`` (APT), ``"tsnpe"`` (truncated proposals) or ``"npe"``
            (amortized: one round on the prior; ``num_rounds`` is then ignored).
        on_event: called with every event as it happens.
        cancel: returns True to stop; the run raises :class:`Cancelled`.
        stop: returns True to stop and keep what is trained (see the module
            docstring); the run returns with ``stopped_by_request`` set.
        on_round: called with each :class:`RoundResult` as soon as it exists.
        simulations: ``(theta (N, D), x (N, K))`` already simulated (a table
            of simulations): trains a one-round method on them; ``simulator``
            may then be ``None``.
        checkpoints: give every :class:`RoundResult` the loop's state after it
            (``checkpoint``, bytes of a :class:`~sbi_core.run.checkpoint.Checkpoint`).
        resume: a checkpoint of an earlier run of the same arguments: go on from
            the round after it, drawing exactly what that run would have drawn.
            The result's rounds then start with the checkpoint's round (its
            ``on_round`` and ``round`` event are not repeated).
        hand_over: asked between rounds (never before this call's first round):
            True hands the worker over to a waiting run; the result's
            ``handed_over_before`` is then the round to resume from.
        defer_reference: ``defer_reference(r)`` returns True when it takes round
            ``r``'s pending C2ST to measure later (see the module docstring).
        embedding: the summary of the data the network learns with it
            (:data:`~sbi_core.run.spec.EMBEDDINGS`; ``"auto"``: by the data shape,
            ``"none"`` or ``None``: the numbers as they are; ``"handmade"``: a built-in model's own
            summary statistics, ``Simulator.handmade_summary``).
        data_shape: how one simulation folds (:class:`~sbi_core.stats.shapes.DataShape` or its
            dict); default: the simulator's, else a vector. ``x_obs`` may then be given in
            that shape, and a set of trials with fewer trials than simulated.
        num_threads: torch threads while this call runs (``None``: the caller's count); the
            caller's own count and thread variables are back when it returns
            (:func:`~sbi_core.threads.limited_threads`).
        **settings: the method's options (``num_atoms`` for ``"snpe"``) and
            :class:`~sbi_core.nn.training.TrainConfig` fields.

    Defaults are the :class:`~sbi_core.run.spec.RunSpec` defaults.
    """
    m, prior, x_obs, shape = _check_inputs(simulator, prior, x_obs, method, simulations, data_shape)
    with limited_threads(num_threads):  # the caller's own count again afterwards
        options = {k: settings.pop(k) for k in list(settings) if k in m.options}
        settings.pop("num_atoms", None)  # an APT option: other methods have no atoms
        seeds = SeedPlan(int(seed))
        if not shape.is_vector or embedding not in ("auto", "none", None):  # a vector as it is: the method's own default
            settings.update(embedding=None if embedding == "none" else _embedding_of(embedding, simulator, shape),
                            data_shape=shape)
        estimator = m.build(prior, density_estimator=density_estimator, hidden_features=hidden_features,
                            num_transforms=num_transforms, seed=seed, **options, **settings)
        if hasattr(estimator, "set_observation"):  # ABC measures distances to the observation
            estimator.set_observation(x_obs)
        source = (TableSource(*simulations) if simulations is not None
                  else SimulatorSource(simulator, seeds.generator("simulate"), simulation_batch_size))
        loop = _Loop(m, estimator, source, prior, x_obs, m.rounds(num_rounds), int(simulations_per_round),
                     int(num_posterior_samples), seeds, on_event, RunControl(cancel, stop) if stop is not None else cancel,
                     reference=ReferenceC2ST(None if simulations is not None else simulator, prior, x_obs, seeds))
        result = RunResult(rounds=[], x_obs=x_obs, prior=prior, param_names=prior.names, simulator=simulator)
        if resume is not None:
            resume.restore(loop)
            result.rounds.append(resume.last)
        loop.checkpoints = bool(checkpoints)
        loop.hand_over, loop.defer_reference = hand_over, defer_reference
        names = list(getattr(simulator, "obs_names", None) or [])
        loop.obs_names = names if len(names) == int(x_obs.reshape(-1).shape[0]) else None
        start = time.perf_counter()
        _run_rounds(loop, result, on_round, first=0 if resume is None else resume.round + 1)
        result.seconds = time.perf_counter() - start
        return result


def _run_rounds(loop: _Loop, result: RunResult, on_round: Callable[[RoundResult], None] | None,
                first: int = 0) -> None:
    """Run rounds ``first, ...`` into ``result``, stopping early (keeping what is finished) at a
    stop-and-keep request."""
    for r in range(first, loop.num_rounds):
        if r > 0 and keep_requested(loop.cancel):
            result.stopped_by_request = True  # asked between rounds: keep the finished ones
            return
        if r > first and loop.hand_over is not None and loop.hand_over():
            result.handed_over_before = r  # another run waits: it gets the worker, this one goes on later
            return
        kept = _keep_round(loop, r, result.rounds[-1] if result.rounds else None)
        if kept is None:
            result.stopped_by_request = True
            return
        rr, samples = kept
        if loop.checkpoints:
            rr.checkpoint = Checkpoint.of(loop, rr).to_bytes()
        result.rounds.append(rr)
        if on_round is not None:
            on_round(rr)
        # while other runs wait, the round's C2ST and concentration measure (0.2 s of a 1.8 s round of
        # 300 simulations) are taken later, when the line is empty (sbi_core.jobs.turns)
        deferred = rr.reference_c2st_reason == REFERENCE_PENDING and _deferred(loop, rr, samples)
        loop.emit(_round_event(loop, rr, concentration=not deferred))  # the cloud goes out first ...
        if rr.reference_c2st_reason == REFERENCE_PENDING:
            if deferred:  # ... then its C2ST against the exact posterior, or later
                rr.reference_c2st_reason = REFERENCE_DEFERRED
                loop.emit(reference_event(rr.index, None, REFERENCE_DEFERRED, None))
            else:
                _score_reference(loop, rr, samples)
        if rr.stopped_by_request:
            result.stopped_by_request = True
            return


# ---------------------------------------------------------------------------
# a RunSpec onto the loop
# ---------------------------------------------------------------------------
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
        if not ref.get("path"):
            raise RunSpecError(
                "This RunSpec carries its simulator file inside; run it with `python -m sbi_core spec.json`, "
                "or store the file first with sbi_core.uploads.files.admit_spec(spec, folder)."
            )
        options = {k: v for k, v in ref.items() if k in ("timeout", "memory_mb", "data_shape")}
        return load_simulator(ref["path"], prior=spec.prior, **options)
    raise RunSpecError(f"Unknown simulator kind {kind!r}; use 'builtin', 'upload' or 'table'.")



@dataclass
class RunInputs:
    """What :func:`run_sequential` gets for a :class:`RunSpec`: positional parts and keyword settings."""

    simulator: Optional[SimulatorLike]
    prior: Prior
    x_obs: Tensor
    settings: dict[str, Any]

    @property
    def num_rounds(self) -> int:
        return int(self.settings["num_rounds"])


def _table_pairs(spec: RunSpec) -> tuple[Prior, tuple[Tensor, Tensor]]:
    if spec.prior is None or spec.observation is None:
        raise RunSpecError("A run on a table of simulations needs a prior and an observation.")
    if spec.is_sequential:
        raise RunSpecError("A table of simulations can only train amortized NPE: choose method 'npe'.")
    prior = Prior.from_spec(spec.prior)
    return prior, load_training_pairs(spec.simulator_ref, prior)


_SPEC_SETTINGS = ("method", "simulations_per_round", "seed", "density_estimator", "embedding", "hidden_features",
                  "num_transforms", "num_posterior_samples", "max_epochs", "batch_size", "learning_rate",
                  "validation_fraction", "patience", "num_threads")


def spec_settings(spec: RunSpec) -> dict[str, Any]:
    """:func:`run_sequential`'s keyword settings of a spec: its method, budget, network and training
    settings and ``num_rounds`` (not the simulator, prior, observation or a table's pairs)."""
    return {n: getattr(spec, n) for n in _SPEC_SETTINGS} | {"num_rounds": spec.rounds}


def spec_to_run(spec: RunSpec) -> RunInputs:
    """The one mapping from a :class:`RunSpec` onto :func:`run_sequential` (validates the spec first)."""
    spec.validate()
    simulations = None
    if spec.simulator_ref.get("kind") == "table":
        simulator = None
        prior, simulations = _table_pairs(spec)
    else:
        simulator = resolve_simulator(spec)
        prior = Prior.from_spec(spec.prior) if spec.prior is not None else simulator.prior
    x_obs = (torch.tensor(spec.observation, dtype=torch.float32) if spec.observation is not None
             else simulator.default_observation)
    settings = spec_settings(spec)
    settings.update(simulations=simulations)
    if simulations is not None and spec.simulator_ref.get("data_shape") is not None:
        settings["data_shape"] = DataShape.from_spec(spec.simulator_ref["data_shape"], size=simulations[1].shape[1])
    return RunInputs(simulator, prior, x_obs, settings)


def execute(
    spec: RunSpec,
    on_event: EventCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
    stop: Callable[[], bool] | None = None,
    resume: Optional[Checkpoint] = None,
    hand_over: Callable[[], bool] | None = None,
    defer_reference: Callable[[int], bool] | None = None,
) -> RunResult:
    """Run a :class:`RunSpec` end to end (what a worker process and the CLI call).

    Emits ``run_started`` (not when it resumes from a checkpoint of this spec's
    run: that run started long ago), then the loop's events; on cancel, emits
    ``cancelled`` and re-raises :class:`Cancelled`. Does not emit ``done`` or
    ``failed``: the caller decides how to record the outcome. Every round
    carries its checkpoint (:mod:`sbi_core.run.checkpoint`). ``hand_over`` and
    ``defer_reference``: see :func:`run_sequential` (a worker shared by many runs).
    """
    inputs = spec_to_run(spec)
    if on_event is not None and resume is None:
        on_event(run_started_event(spec.to_dict(), inputs.num_rounds, inputs.prior.names))
    current = {"round": 0 if resume is None else resume.round + 1}

    def track(event: dict) -> None:
        if "round" in event:
            current["round"] = event["round"]
        if on_event is not None:
            on_event(event)

    try:
        result = run_sequential(inputs.simulator, inputs.prior, inputs.x_obs, on_event=track, cancel=cancel,
                                stop=stop, on_round=on_round, checkpoints=True, resume=resume, hand_over=hand_over,
                                defer_reference=defer_reference, **inputs.settings)
    except Cancelled:
        if on_event is not None:
            on_event(cancelled_event(current["round"]))
        raise
    result.spec = spec
    return result

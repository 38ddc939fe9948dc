"""How long a run takes: the estimate shown before Start and the time left during a run.

A round ``r`` (0-based) of ``N`` simulations costs about

    T_r = N s  +  E_r z (c S(n_r) + b w_r n_r)  +  o

* ``s``: seconds per simulation (the simulator's own cost);
* ``n_r``: the pairs trained on. Sequential rounds train on *every* pair so
  far, ``n_r = (r + 1) N``, so an epoch of round 4 costs up to four times one
  of round 1;
* ``S(n)``: optimiser steps per epoch (:func:`~sbi_core.nn.training.auto_batch_size`
  makes it about 8 up to 8,000 pairs, then it grows with ``n``), ``c`` the
  seconds of one step's fixed cost, ``b`` the seconds per pair and epoch;
* ``z``: the estimator's size relative to the default flow, NSF with 5 layers
  of 50 units: ``(num_transforms / 5) (hidden_features / 50) ** 0.5``, times
  0.7 for MAF (measured: 10 layers cost 2.5x, 100 units 1.6x, MAF 0.73x);
* ``w_r``: a pair's cost in the loss: 1 for maximum likelihood (round 1,
  amortized NPE, every TSNPE round) and ``apt_weight`` for APT's later rounds,
  whose contrastive loss evaluates the flow on 10 parameter sets per pair
  (measured: 4.7-8.6, while the fixed cost per step stays about the same);
* ``E_r``: epochs of the round. Early stopping ends it ``patience`` epochs
  after its best one: ``E_r = min(max_epochs, B_r + patience)``, with ``B_1``
  the typical best epoch of the first round (a network trained from scratch)
  and ``B_r = B_later sqrt(r)`` for the rounds after it, which go on training
  the previous round's network but take longer as the pooled data grow
  (measured, two moons, twice: best epochs 15, 24, 30 in rounds 2-4, against
  15, 21, 26 from the square root);
* ``o``: a round's other work (proposing, sampling the posterior).

Why the old time-left estimate was 2-3x too low: it was ``elapsed (1 - f) / f``
with every round an equal share ``f``, so round 1 -- the cheapest, with the
fewest pairs and the plain loss -- set the pace for all. Two moons, 4 rounds x
1,000, 4 layers of 50 units, one busy thread: round 1 trained 69 epochs at
1.1 s, rounds 2-4 25-40 epochs at 3.1-5.8 s; at the end of round 1 that
estimate said 3 min 42 s left, 6 min 50 s remained. :func:`seconds_left`
applies the formula instead, with the coefficients rescaled to the pace the
run itself shows (:meth:`CostModel.calibrated` on its finished rounds, and the
round in progress).

A busy machine: the estimate before Start is scaled by :class:`MachineLoad`'s
``slowdown``: with the 1-minute load average ``L`` on ``C`` cores, a new run's
thread gets about ``C / (L + 1)`` of a core once ``L + 1 > C`` (4 min where 2 min
were estimated at load 3 on 2 cores). The load is read by :func:`machine_load`,
whose sources can be injected (tests). During a run the time left is measured
instead: :func:`seconds_left` with ``elapsed_s`` is at least the time this run has
taken per unit of predicted work so far, times the predicted work left, so the
load, and whatever the formula leaves out, count as much as they did until now.

The defaults were measured on the 2-core development machine (CPU seconds of
one torch thread, two moons); the Train page recalibrates them on the rounds
finished on its server, so they only matter for the very first run there.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Mapping, Optional, Sequence

from sbi_core.methods.catalogue import CATALOGUE, method_info
from sbi_core.nn.training import auto_batch_size, vector_field_batch_size

__all__ = ["CostModel", "RunEstimate", "RoundTiming", "size_factor", "pairs_trained", "steps_per_epoch",
           "estimate_run", "seconds_left", "seconds_done", "timings_from_events", "calibrate_from_store",
           "simulation_seconds", "MachineLoad", "machine_load", "BUSY_SLOWDOWN"]

BUSY_SLOWDOWN = 1.2  # a machine on which a new run would take 20 % longer than alone is called busy
VECTOR_FIELDS = tuple(name for name, m in CATALOGUE.items() if m.network == "vector_field")
"""Methods whose automatic batches are :func:`~sbi_core.nn.training.vector_field_batch_size`'s."""


def size_factor(density_estimator: str, num_transforms: int, hidden_features: int) -> float:
    """``z``: one pair's cost in the flow relative to an NSF of 5 layers of 50 units."""
    z = (max(1, int(num_transforms)) / 5) * math.sqrt(max(1, int(hidden_features)) / 50)
    return z * (0.7 if density_estimator == "maf" else 1.0)


def pairs_trained(method: str, round_index: int, simulations_per_round: int) -> int:
    """``n_r``: every round of a sequential method trains on all pairs so far."""
    return int(simulations_per_round) * (int(round_index) + 1 if method_info(method).sequential else 1)


def steps_per_epoch(num_pairs: int, validation_fraction: float = 0.1, method: Optional[str] = None) -> int:
    """``S(n)``: optimiser steps of one epoch, plus one for the validation pass. A vector field
    (``method`` in :data:`VECTOR_FIELDS`) takes smaller automatic batches (about 64 steps per epoch)."""
    n_train = max(1, int(round(num_pairs * (1 - validation_fraction))))
    rule = vector_field_batch_size if method in VECTOR_FIELDS else auto_batch_size
    return math.ceil(n_train / rule(n_train)) + 1


def _is_apt(method: str, round_index: int) -> bool:
    return method == "snpe" and round_index > 0


@dataclass(frozen=True)
class CostModel:
    """The coefficients of the formula in the module docstring (seconds)."""

    sim_s: float = 2e-5  # s (two moons is vectorised: ~20 us per simulation)
    step_s: float = 0.05  # c
    pair_s: float = 7e-5  # b
    apt_weight: float = 7.0  # w of APT rounds after the first
    best_epoch: float = 40.0  # B_1
    best_epoch_later: float = 15.0  # B_later (round 2; round r+1: B_later sqrt(r))
    round_overhead_s: float = 0.3  # o
    sources: int = 0  # measured rounds behind the coefficients (0: the defaults)

    def epochs(self, round_index: int, max_epochs: int, patience: int) -> float:
        """``E_r``: expected epochs of round ``round_index``."""
        best = self.best_epoch if round_index == 0 else self.best_epoch_later * math.sqrt(round_index)
        return float(min(int(max_epochs), best + int(patience)))

    def epoch_seconds(self, spec, round_index: int) -> float:
        """Seconds of one epoch of round ``round_index`` of a run of ``spec``."""
        n = pairs_trained(spec.method, round_index, spec.simulations_per_round)
        w = self.apt_weight if _is_apt(spec.method, round_index) else 1.0
        z = size_factor(spec.density_estimator, spec.num_transforms, spec.hidden_features)
        return z * (self.step_s * steps_per_epoch(n, spec.validation_fraction, spec.method) + self.pair_s * w * n)

    def with_apt_pace(self, spec, round_index: int, epoch_s: float) -> "CostModel":
        """The model whose ``apt_weight`` explains ``epoch_s`` seconds per epoch of an APT round."""
        n = pairs_trained(spec.method, round_index, spec.simulations_per_round)
        z = size_factor(spec.density_estimator, spec.num_transforms, spec.hidden_features)
        fixed = self.step_s * steps_per_epoch(n, spec.validation_fraction, spec.method)
        return replace(self, apt_weight=max(1.0, (epoch_s / z - fixed) / (self.pair_s * n)))

    def with_plain_pace(self, spec, round_index: int, epoch_s: float) -> "CostModel":
        """The model with ``c`` and ``b`` scaled to explain ``epoch_s`` per epoch of a plain-loss round."""
        k = epoch_s / self.epoch_seconds(spec, round_index)
        return replace(self, step_s=self.step_s * k, pair_s=self.pair_s * k)

    def calibrated(self, timings: Iterable["RoundTiming"]) -> "CostModel":
        """The model rescaled to measured rounds (medians of measured / predicted).

        The compute coefficients ``c`` and ``b`` scale together (a slower or
        busier machine is slower at both), from the plain-loss rounds; then
        ``apt_weight`` from the APT rounds. ``s``, ``B_1``, ``B_later`` and
        ``o`` are the medians of what was measured, the best epochs their upper
        quartiles. A coefficient without a
        measurement keeps its value.
        """
        timings = [t for t in timings if t.spec is not None]
        if not timings:
            return self
        measured = [t for t in timings if t.epochs > 0 and t.train_s > 0]
        plain = [self.with_plain_pace(t.spec, t.round_index, t.train_s / t.epochs).step_s / self.step_s
                 for t in measured if not _is_apt(t.spec.method, t.round_index)]
        model = self
        if plain:
            k = _median(plain)
            model = replace(model, step_s=self.step_s * k, pair_s=self.pair_s * k)
        apt = [model.with_apt_pace(t.spec, t.round_index, t.train_s / t.epochs).apt_weight
               for t in measured if _is_apt(t.spec.method, t.round_index)]
        if apt:
            model = replace(model, apt_weight=_median(apt))
        sim = [t.simulate_s / t.num_simulations for t in timings if t.num_simulations > 0 and t.simulate_s > 0]
        first = [t.best_epoch for t in timings if t.best_epoch > 0 and not t.capped and t.round_index == 0]
        later = [t.best_epoch / math.sqrt(t.round_index) for t in timings
                 if t.best_epoch > 0 and not t.capped and t.round_index > 0]
        other = [t.other_s for t in timings if t.other_s >= 0]
        return replace(
            model,
            sim_s=_median(sim) if sim else model.sim_s,
            best_epoch=_quantile(first, 0.75) if first else model.best_epoch,
            best_epoch_later=_quantile(later, 0.75) if later else model.best_epoch_later,
            round_overhead_s=_median(other) if other else model.round_overhead_s,
            sources=len(timings),
        )


@dataclass(frozen=True)
class RoundTiming:
    """One finished round as measured (its ``round`` event), with the spec of its run."""

    spec: object
    round_index: int
    num_simulations: int
    simulate_s: float
    train_s: float
    other_s: float
    epochs: int
    best_epoch: int
    capped: bool  # ended at max_epochs or at a stop request: its best epoch says little


def timings_from_events(spec, round_events: Sequence[Mapping]) -> list[RoundTiming]:
    """The :class:`RoundTiming` of each ``round`` event of a run of ``spec``."""
    out = []
    for ev in round_events:
        secs = ev.get("seconds") or {}
        epochs = int(ev.get("epochs") or 0)
        out.append(RoundTiming(
            spec=spec,
            round_index=int(ev.get("round", 0)),
            num_simulations=int(ev.get("num_simulations") or 0),
            simulate_s=float(secs.get("simulate", 0.0)),
            train_s=float(secs.get("train", 0.0)),
            # everything between training and the round event: proposing, sampling and the C2ST score
            other_s=sum(float(secs.get(k, 0.0)) for k in ("propose", "sample", "reference")),
            epochs=epochs,
            best_epoch=int(ev.get("best_epoch") or 0),
            capped=bool(ev.get("stopped_by_request")) or epochs >= int(spec.max_epochs),
        ))
    return out


@dataclass(frozen=True)
class RunEstimate:
    """Seconds a whole run is expected to take, and its parts."""

    simulate_s: float
    train_s: float
    other_s: float
    epochs_per_round: float

    @property
    def total_s(self) -> float:
        return self.simulate_s + self.train_s + self.other_s


def _rounds(spec) -> int:
    return method_info(spec.method).rounds(spec.num_rounds)


def estimate_run(spec, model: CostModel) -> RunEstimate:
    """The expected time of a run of ``spec`` before it starts."""
    rounds = _rounds(spec)
    epochs = [model.epochs(r, spec.max_epochs, spec.patience) for r in range(rounds)]
    train = sum(e * model.epoch_seconds(spec, r) for r, e in enumerate(epochs))
    return RunEstimate(simulate_s=rounds * spec.simulations_per_round * model.sim_s, train_s=train,
                       other_s=rounds * model.round_overhead_s, epochs_per_round=sum(epochs) / rounds)


def seconds_left(
    spec,
    model: CostModel,
    rounds_done: int,
    simulations_done: int,
    epochs_done: int,
    best_epoch: Optional[int],
    train_elapsed_s: float,
    elapsed_s: Optional[float] = None,
) -> float:
    """Seconds until a run of ``spec`` ends, from where it stands.

    ``rounds_done`` rounds are finished (``model`` should already be
    :meth:`~CostModel.calibrated` on them); the round in progress has
    simulated ``simulations_done`` pairs and trained ``epochs_done`` epochs in
    ``train_elapsed_s`` seconds, its best so far at ``best_epoch``. Its pace
    rescales the model once more, and it trains at least the epochs early
    stopping still needs (``patience`` after the best epoch so far).

    ``elapsed_s``: the run's own wall time so far. Once a round has finished,
    the answer is at least the work left at the pace the run has shown overall,
    ``elapsed_s`` times the predicted work left over the predicted work done
    (:func:`seconds_done`): the formula's pace comes from training alone, while a
    busy machine also slows simulating, sampling and the gaps between them.
    """
    rounds = _rounds(spec)
    r = int(rounds_done)
    if r >= rounds:
        return 0.0
    left = _model_seconds_left(spec, model, r, simulations_done, epochs_done, best_epoch, train_elapsed_s)
    if elapsed_s is not None and elapsed_s > 0 and r >= 1:
        done = seconds_done(spec, _at_pace(spec, model, r, epochs_done, train_elapsed_s), r, simulations_done,
                            epochs_done)
        if done > 0:
            left = max(left, float(elapsed_s) * left / done)
    return float(left)


def _at_pace(spec, model: CostModel, r: int, epochs_done: int, train_elapsed_s: float) -> CostModel:
    """``model`` rescaled to the pace of round ``r`` in progress (if it has trained an epoch)."""
    if epochs_done > 0 and train_elapsed_s > 0:
        pace = train_elapsed_s / epochs_done
        return model.with_apt_pace(spec, r, pace) if _is_apt(spec.method, r) else model.with_plain_pace(spec, r, pace)
    return model


def seconds_done(spec, model: CostModel, rounds_done: int, simulations_done: int, epochs_done: int) -> float:
    """The seconds ``model`` predicts for the work a run of ``spec`` has done: ``rounds_done`` whole rounds
    (their expected epochs), then the round in progress's simulations and epochs so far."""
    r = int(rounds_done)
    n = int(spec.simulations_per_round)
    done = 0.0
    for k in range(r):
        done += n * model.sim_s + model.epochs(k, spec.max_epochs, spec.patience) * model.epoch_seconds(spec, k)
        done += model.round_overhead_s
    if r < _rounds(spec):
        done += min(int(simulations_done), n) * model.sim_s + int(epochs_done) * model.epoch_seconds(spec, r)
    return done


def _model_seconds_left(spec, model: CostModel, r: int, simulations_done: int, epochs_done: int,
                        best_epoch: Optional[int], train_elapsed_s: float) -> float:
    """:func:`seconds_left` from the formula alone (the pace of the round in progress, early stopping)."""
    rounds = _rounds(spec)
    model = _at_pace(spec, model, r, epochs_done, train_elapsed_s)
    expected = model.epochs(r, spec.max_epochs, spec.patience)
    if best_epoch:
        expected = max(expected, min(int(spec.max_epochs), int(best_epoch) + int(spec.patience)))
    epochs_left = max(0.0, expected - epochs_done)
    if 0 < epochs_done < spec.max_epochs:
        epochs_left = max(epochs_left, 1.0)
    n = int(spec.simulations_per_round)
    left = max(0, n - int(simulations_done)) * model.sim_s + epochs_left * model.epoch_seconds(spec, r)
    left += model.round_overhead_s
    for k in range(r + 1, rounds):
        left += n * model.sim_s + model.epochs(k, spec.max_epochs, spec.patience) * model.epoch_seconds(spec, k)
        left += model.round_overhead_s
    return float(left)


@dataclass(frozen=True)
class MachineLoad:
    """How busy the machine is: the 1-minute load average (runnable threads) and its cores."""

    load: float
    cores: int

    @property
    def slowdown(self) -> float:
        """How much longer a new run (one more busy thread) takes than on an idle machine:
        ``(load + 1) / cores``, at least 1."""
        return max(1.0, (max(0.0, float(self.load)) + 1.0) / max(1, int(self.cores)))

    @property
    def busy(self) -> bool:
        """Whether a new run would be slowed by :data:`BUSY_SLOWDOWN` or more."""
        return self.slowdown >= BUSY_SLOWDOWN

    def words(self) -> str:
        """``"load 3.8 on 2 cores"``."""
        return f"load {self.load:.1f} on {self.cores} core{'s' if self.cores != 1 else ''}"


def _cpu_count() -> int:
    try:
        import psutil

        return int(psutil.cpu_count() or 0) or (os.cpu_count() or 1)
    except ImportError:
        return os.cpu_count() or 1


def machine_load(loadavg: Callable[[], Sequence[float]] = os.getloadavg,
                 cpu_count: Callable[[], int] = _cpu_count) -> Optional[MachineLoad]:
    """The machine's :class:`MachineLoad` now (``None`` where the load cannot be read).

    Both are machine-wide (in a container too, where both are the host's), so their ratio holds.
    """
    try:
        load = float(loadavg()[0])
        cores = max(1, int(cpu_count()))
    except (OSError, AttributeError, IndexError, TypeError, ValueError):  # no load average (Windows)
        return None
    return MachineLoad(load, cores) if math.isfinite(load) else None


def calibrate_from_store(store, model: Optional[CostModel] = None, limit: int = 20) -> CostModel:
    """``model`` (default: :class:`CostModel`) calibrated on the ``limit`` latest finished runs of ``store``.

    Only their training pace, best epochs and per-round overhead carry over
    to another model; the simulation cost is the simulator's own
    (:func:`simulation_seconds`).
    """
    model = model or CostModel()
    timings: list[RoundTiming] = []
    for info in store.list_runs(limit=limit, status="done"):
        rounds = [ev for _, ev in store.events(info.id, types=("round",))]
        try:
            timings += timings_from_events(info.spec, rounds)
        except (AttributeError, TypeError, ValueError):  # a spec stored by older code
            continue
    sim_s = model.sim_s
    return replace(model.calibrated(timings), sim_s=sim_s)


def simulation_seconds(simulator, prior, n: int = 200, seed: int = 0) -> float:
    """Seconds per simulation of a built-in simulator, timed on ``n`` draws from ``prior`` (own generator)."""
    import time

    import torch

    g = torch.Generator().manual_seed(seed)
    theta = prior.sample((n,), generator=g)
    t0 = time.perf_counter()
    simulator.simulate(theta, generator=g)
    return (time.perf_counter() - t0) / n


def _quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values``, interpolated linearly between order statistics."""
    v = sorted(float(x) for x in values)
    pos = q * (len(v) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def _median(values: Sequence[float]) -> float:
    return _quantile(values, 0.5)

"""A run's events folded into what the pages draw: losses per epoch, round clouds, progress.

:class:`RunTracker` reads only the events it has not seen (``after`` the last
sequence number), so a page rerun every fraction of a second costs one small
query; the session keeps one tracker per run (:func:`sbi_ui.session.tracker`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from sbi_core.events import fold_reference
from sbi_core.run.cost import CostModel, seconds_left, timings_from_events
from sbi_core.store.runs import RunInfo, RunStore

from sbi_ui.format import fmt_duration, plural
from sbi_ui.naming import is_abc

__all__ = ["RunTracker"]


@dataclass
class RunTracker:
    """What a run's events say so far; :meth:`update` reads only events not seen yet."""

    run_id: str
    after: int = 0
    num_rounds: Optional[int] = None
    param_names: list = field(default_factory=list)
    sims: dict = field(default_factory=dict)  # round -> (done, total, invalid)
    sampling: dict = field(default_factory=dict)  # round -> (done, total) steps of an MCMC sampler
    ep_round: list = field(default_factory=list)
    ep_epoch: list = field(default_factory=list)
    ep_train: list = field(default_factory=list)
    ep_val: list = field(default_factory=list)
    max_epochs: dict = field(default_factory=dict)  # round -> max epochs
    best_so_far: dict = field(default_factory=dict)  # round -> best epoch (running)
    epoch_elapsed: dict = field(default_factory=dict)  # round -> seconds of training so far
    rounds: list = field(default_factory=list)  # round events without the samples
    samples: list = field(default_factory=list)  # (m, D) array per finished round
    terminal: Optional[dict] = None
    started_at: Optional[float] = None
    model_check: Optional[dict] = None  # the misspecification event of the first round's simulations

    def update(self, st_: RunStore) -> bool:
        """Fold new events in; True if there were any."""
        new = st_.events(self.run_id, after=self.after)
        for seq, ev in new:
            self.after = seq
            self._fold(ev)
        return bool(new)

    def _fold(self, ev: dict) -> None:
        t = ev.get("type")
        if t == "run_started":
            self.num_rounds = ev.get("num_rounds")
            self.param_names = list(ev.get("param_names") or [])
            self.started_at = ev.get("time")
        elif t == "simulation":
            self.sims[int(ev["round"])] = (int(ev["done"]), int(ev["total"]), int(ev.get("invalid", 0)))
        elif t == "sampling":
            self.sampling[int(ev["round"])] = (int(ev["done"]), int(ev["total"]))
        elif t == "epoch":
            r = int(ev["round"])
            self.ep_round.append(r)
            self.ep_epoch.append(int(ev["epoch"]))
            self.ep_train.append(_float(ev.get("train_loss")))
            self.ep_val.append(_float(ev.get("val_loss")))
            self.max_epochs[r] = int(ev.get("max_epochs") or 0)
            if ev.get("best_epoch") is not None:
                self.best_so_far[r] = int(ev["best_epoch"])
            self.epoch_elapsed[r] = float(ev.get("elapsed") or 0.0)
        elif t == "round":
            samples = np.asarray(ev.get("posterior_samples") or [], dtype=float)
            info = {k: v for k, v in ev.items() if k != "posterior_samples"}
            self.rounds.append(info)
            self.samples.append(samples.reshape(len(samples), -1) if samples.size else samples.reshape(0, 0))
            if info.get("best_epoch") is not None:
                self.best_so_far[int(info["round"])] = int(info["best_epoch"])
            if info.get("num_rounds"):
                self.num_rounds = int(info["num_rounds"])
        elif t in ("done", "failed", "cancelled"):
            self.terminal = ev
        elif t == "resumed":
            self._forget_from(int(ev.get("from_round") or 0))
        elif t == "misspecification":
            self.model_check = {k: v for k, v in ev.items() if k != "type"}
        elif t == "reference":  # the C2ST of a round already drawn
            for i, info in enumerate(self.rounds):
                if int(info["round"]) == int(ev.get("round", -1)):
                    self.rounds[i] = fold_reference(info, ev)

    def _forget_from(self, r0: int) -> None:
        """A resumed run: drop what was folded of rounds ``r0, ...`` (redone now) and the ending."""
        keep = [i for i, r in enumerate(self.ep_round) if r < r0]
        for name in ("ep_round", "ep_epoch", "ep_train", "ep_val"):
            values = getattr(self, name)
            setattr(self, name, [values[i] for i in keep])
        for name in ("sims", "sampling", "max_epochs", "best_so_far", "epoch_elapsed"):
            setattr(self, name, {r: v for r, v in getattr(self, name).items() if r < r0})
        kept = [i for i, info in enumerate(self.rounds) if int(info["round"]) < r0]
        self.rounds = [self.rounds[i] for i in kept]
        self.samples = [self.samples[i] for i in kept]
        self.terminal = None
        if r0 <= 0:
            self.model_check = None

    # ---- summaries ----------------------------------------------------------
    @property
    def rounds_done(self) -> int:
        return len(self.rounds)

    @property
    def current_round(self) -> int:
        """0-based round in progress (or the last one)."""
        seen = list(self.sims) + self.ep_round + [r["round"] for r in self.rounds]
        return max(seen) if seen else 0

    @property
    def simulations_done(self) -> int:
        return sum(d for d, _, _ in self.sims.values())

    @property
    def epochs_done(self) -> int:
        return len(self.ep_epoch)

    def epochs_in(self, r: int) -> int:
        return sum(1 for x in self.ep_round if x == r)

    @property
    def stopped_by_request(self) -> bool:
        """Whether the run ended early at a "stop and keep what is trained" request."""
        return bool((self.terminal or {}).get("stopped_by_request")) or any(
            r.get("stopped_by_request") for r in self.rounds)

    def seconds_left(self, info: RunInfo, base: Optional[CostModel] = None) -> Optional[float]:
        """Expected seconds until the run ends (:func:`sbi_core.run.cost.seconds_left`).

        ``base`` (calibrated on other runs of this server) is rescaled to this
        run's own finished rounds and the pace of the round in progress; once a
        round has finished, the run's own elapsed time per unit of work done sets
        a floor (a busy machine slows everything, not only training).
        """
        if info.status != "running":
            return 0.0 if info.is_terminal else None
        spec = info.spec
        model = (base or CostModel()).calibrated(timings_from_events(spec, self.rounds))
        r = self.rounds_done
        done = self.sims.get(r, (0, 0, 0))[0]
        return seconds_left(spec, model, r, done, self.epochs_in(r), self.best_so_far.get(r),
                            self.epoch_elapsed.get(r, 0.0), elapsed_s=info.seconds)

    def progress(self, info: RunInfo, base: Optional[CostModel] = None) -> tuple[float, str, Optional[float]]:
        """``(fraction done, one-line text, seconds left or None)`` for the progress bar.

        The fraction is the time spent over the time spent plus the time left,
        the time left coming from the cost model (:meth:`seconds_left`).
        """
        spec = info.spec
        total_rounds = self.num_rounds or spec.rounds
        if info.status == "done":
            return 1.0, self.finished_text(info, total_rounds), 0.0
        if info.status == "queued":
            return 0.0, "Waiting for a free worker...", None
        r = self.current_round
        done, total, _ = self.sims.get(r, (0, spec.simulations_per_round, 0))
        max_ep = self.max_epochs.get(r, spec.max_epochs)
        eta = self.seconds_left(info, base)
        elapsed = info.seconds or 0.0
        frac = float(np.clip(elapsed / (elapsed + eta), 0.0, 0.99)) if eta is not None and elapsed + eta > 0 else 0.0
        parts = [f"Round {min(r + 1, total_rounds)} of {total_rounds}", f"simulations {done:,}/{total:,}"]
        if _trains_network(spec):
            parts.append(f"epoch {self.epochs_in(r)} (at most {max_ep})")
        if r in self.sampling and len(self.rounds) <= r:
            s_done, s_total = self.sampling[r]
            parts.append(f"MCMC sampling {100 * s_done // max(s_total, 1)}%")
        parts.append(f"about {fmt_duration(eta)} left" if eta is not None else "estimating time left...")
        return frac, " · ".join(parts), eta

    def finished_text(self, info: RunInfo, total_rounds: int) -> str:
        """The one line that sums up a finished run, in plain words."""
        training = f" and {plural(self.epochs_done, 'epoch')} of training" if _trains_network(info.spec) else ""
        work = f"{self.simulations_done:,} simulations{training} in {fmt_duration(info.seconds)}"
        if self.stopped_by_request and self.rounds:
            last = self.rounds[-1]
            k = int(last["round"]) + 1
            kept = f"round {k}" if k == 1 else f"rounds 1-{k}"
            how = (f"round {k}'s training was cut short after {plural(int(last.get('epochs') or 0), 'epoch')}, "
                   f"and its best network (epoch {last.get('best_epoch')}) is its posterior"
                   if last.get("stopped_by_request") else f"round {k} had finished")
            return (f"Stopped at your request after {k} of {plural(total_rounds, 'planned round')}: "
                    f"{kept} kept; {how}. {work[0].upper()}{work[1:]}.")
        what = "simulating and training" if _trains_network(info.spec) else "simulating and accepting"
        return f"Finished: {plural(total_rounds, 'round')} of {what}, {work}."

    def best_epochs(self) -> dict:
        return dict(self.best_so_far)


def _trains_network(spec) -> bool:
    """Whether the spec's method trains a network (ABC does not: it accepts close simulations)."""
    return not is_abc(spec)


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")

"""A run's events folded into what the pages draw: losses per epoch, round clouds, progress.

:class:`RunTracker` reads only the events it has not seen (``after`` the last
sequence number), so a page rerun every fraction of a second costs one small
query; the session keeps one tracker per run (``ui_common.tracker``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from sbi_core.store import RunInfo, RunStore

from pages.ui_format import fmt_duration

__all__ = ["RunTracker"]


@dataclass
class RunTracker:
    """What a run's events say so far; :meth:`update` reads only events not seen yet."""

    run_id: str
    after: int = 0
    num_rounds: Optional[int] = None
    param_names: list = field(default_factory=list)
    sims: dict = field(default_factory=dict)  # round -> (done, total, invalid)
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

    def progress(self, info: RunInfo) -> tuple[float, str, Optional[float]]:
        """``(fraction done, one-line text, seconds left or None)`` for the progress bar.

        The fraction weighs simulation and training by the time they took in the
        finished rounds; the epochs of the round in progress are expected to be
        about as many as the finished rounds needed (early stopping), else the maximum.
        """
        spec = info.spec
        total_rounds = self.num_rounds or (1 if spec.method == "npe" else spec.num_rounds)
        if info.status == "done":
            return 1.0, f"Finished: {total_rounds} round(s), {self.simulations_done:,} simulations, " \
                        f"{self.epochs_done} epochs in {fmt_duration(info.seconds)}.", 0.0
        if info.status == "queued":
            return 0.0, "Waiting for a free worker...", None
        r = self.current_round
        finished = self.rounds_done
        sim_share = 0.15
        if self.rounds:
            secs = [x.get("seconds") or {} for x in self.rounds]
            tot = sum(sum(s.values()) for s in secs)
            if tot > 0:
                sim_share = float(np.clip(sum(s.get("simulate", 0.0) for s in secs) / tot, 0.02, 0.95))
        done, total, _ = self.sims.get(r, (0, spec.simulations_per_round, 0))
        sim_frac = done / total if total else 0.0
        max_ep = self.max_epochs.get(r, spec.max_epochs)
        expected = float(np.mean([x.get("epochs", max_ep) for x in self.rounds])) if self.rounds else max_ep
        expected = max(1.0, min(expected * 1.15, max_ep))
        ep_frac = min(self.epochs_in(r) / expected, 0.97)
        in_round = 0.0 if r < finished else sim_share * sim_frac + (1 - sim_share) * ep_frac
        frac = float(np.clip((finished + in_round) / max(total_rounds, 1), 0.0, 0.99))
        elapsed = info.seconds or 0.0
        eta = elapsed * (1 - frac) / frac if frac > 0.03 and elapsed > 1 else None
        parts = [f"Round {min(r + 1, total_rounds)} of {total_rounds}",
                 f"simulations {done:,}/{total:,}",
                 f"epoch {self.epochs_in(r)} (at most {max_ep})"]
        parts.append(f"about {fmt_duration(eta)} left" if eta is not None else "estimating time left...")
        return frac, " · ".join(parts), eta

    def best_epochs(self) -> dict:
        return dict(self.best_so_far)


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")

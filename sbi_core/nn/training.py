"""The epoch loop: minibatch Adam with a validation split and early stopping.

Given pairs ``(theta_i, x_i)`` and a per-sample loss ``l(theta, x)`` (for NPE,
``-log q(theta | x)``), training minimises the mean loss over a training split
and tracks the mean loss over a held-out validation split. After every epoch

* the callback receives an ``epoch`` event (before :func:`train` returns),
* the cancel check is consulted (raising :class:`Cancelled`),
* the best weights so far (lowest validation loss) are remembered; training
  stops after ``patience`` epochs without improvement, or at ``max_epochs``,
  or when a :class:`RunControl` asks to stop and keep what is trained, and
  the best weights are restored.

Gradients are clipped to a maximum norm; randomness (the split, the batch
order, anything the loss draws) comes from a ``torch.Generator`` seeded by the
caller, so the loop never touches torch's global RNG.

**Augmentation.** A network may define ``augment(x, generator) -> x``: every
training batch's ``x`` passes through it before the loss (a set network keeps
a random subset of each set's trials, :mod:`sbi_core.nn.embeddings`, so that
it learns to answer for any number of them). The validation split is augmented
*once*, right after the split, with the same generator: its loss then measures
the task the network trains for (every trial count, not only full sets) and
stays comparable from epoch to epoch, as early stopping needs. A network
without the hook (or whose hook draws nothing) trains exactly as before.

**A noisy loss.** Flow matching and denoising score matching draw a time and a
noise per pair, so their loss on fixed pairs is itself random, and a
validation loss drawn afresh every epoch would make early stopping follow the
noise. A caller may pass ``validation_loss`` (e.g. the same loss averaged over
several draws per pair) and ``validation_generator``: the validation loss then
draws from that generator, reset to its starting state before every epoch's
pass, so each validation pair sees the same draws every epoch and the
validation loss changes only with the network. Without them the validation
loss is ``loss_fn`` drawing from ``generator``, as before.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import Tensor, nn

from sbi_core.errors import Cancelled
from sbi_core.events import EventCallback, epoch_event
from sbi_core.nn.embeddings import Embedding
from sbi_core.threads import limited_threads

__all__ = [
    "TrainConfig", "TrainResult", "Cancelled", "CancelToken", "RunControl", "keep_requested", "train", "LossFn",
    "auto_batch_size", "vector_field_batch_size",
]

# loss(theta (B, D), x (B, K), generator) -> per-sample loss (B,)
LossFn = Callable[[Tensor, Tensor, torch.Generator], Tensor]


class CancelToken:
    """A thread-safe-enough flag: ``token.cancel()``; ``token()`` tells whether it was set."""

    def __init__(self) -> None:
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def __call__(self) -> bool:
        return self._cancelled


class RunControl:
    """The two ways a person can stop a run, read after every epoch and simulation batch.

    ``cancel()`` true: stop at once; the round in progress is dropped
    (:func:`train` raises :class:`Cancelled`).
    ``keep()`` true: stop and keep what is trained; :func:`train` ends after
    the current epoch with the best weights so far restored (exactly as when
    early stopping fires) and reports ``stopped_by_request``, so the round's
    posterior is that network.

    A ``RunControl`` is itself a cancel check (``control()`` is ``cancel()``):
    code that only knows cancelling (the methods) passes it along unchanged.
    """

    def __init__(self, cancel: Callable[[], bool] | None = None, keep: Callable[[], bool] | None = None) -> None:
        self._cancel = cancel
        self._keep = keep

    def __call__(self) -> bool:
        return bool(self._cancel is not None and self._cancel())

    def keep(self) -> bool:
        return bool(self._keep is not None and self._keep())


def keep_requested(cancel: Callable[[], bool] | None) -> bool:
    """Whether ``cancel`` is a :class:`RunControl` whose stop-and-keep request is set."""
    return isinstance(cancel, RunControl) and cancel.keep()


@dataclass
class TrainConfig:
    """Training schedule.

    The defaults were chosen for speed on a 2-core CPU at no loss of accuracy
    (see ``bench/RESULTS.md``): batches that grow with the data
    (:func:`auto_batch_size`; per-step cost on a CPU is mostly fixed overhead,
    so large batches are nearly free), a learning rate of 2e-3 that halves
    when the validation loss stalls, and early stopping.

    batch_size: ``None`` picks :func:`auto_batch_size`.
    num_threads: torch threads for this process (``None`` leaves the setting alone).
    """

    max_epochs: int = 200
    batch_size: Optional[int] = None
    learning_rate: float = 2e-3
    validation_fraction: float = 0.1
    patience: int = 10
    clip_max_norm: float = 5.0
    lr_decay_patience: int = 4
    lr_decay_factor: float = 0.5
    min_validation: int = 2
    num_threads: Optional[int] = None


@dataclass
class TrainResult:
    """What one call of :func:`train` did."""

    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf
    epochs: int = 0
    stopped_early: bool = False
    stopped_by_request: bool = False  # a RunControl asked to stop and keep the best network
    seconds: float = 0.0


SUMMARY_MAX_BATCH = 256  # largest automatic batch when a network also learns a summary of the data


def auto_batch_size(num_train: int, learned_summary: bool = False) -> int:
    """About 8 steps per epoch, between 64 and 1024 pairs per batch (at most
    :data:`SUMMARY_MAX_BATCH` with a learned summary of the data).

    On a CPU a step of these small networks costs mostly fixed overhead, so
    on 10,000 two-moons simulations batches of 1024 train 1.4x faster than
    batches of 512 at the same C2ST (0.578 vs 0.572, within noise). A summary
    network (a 1-D CNN, a set network) learns from more, smaller steps: on
    10,000 AR(1) series of 100 steps (NSF, ``"cnn1d"``, 5 observations) batches of
    1024 ran to the 200-epoch limit in 125 s at a mean C2ST of 0.620, batches of
    256 stopped after 86 epochs at 0.587.
    """
    if learned_summary:
        return int(min(SUMMARY_MAX_BATCH, max(64, num_train // 8)))
    return int(min(1024, max(64, num_train // 8)))


def vector_field_batch_size(num_train: int, learned_summary: bool = False) -> int:
    """The automatic batch size of a vector field: about 64 steps per epoch, between 64 and 256 pairs
    (``learned_summary`` changes nothing: 256 is already the cap with a learned summary of the data).

    The regression target of flow and score matching is noisy, so these networks
    learn from more, smaller steps than a flow's maximum likelihood does (whose
    automatic batch, :func:`auto_batch_size`, makes about 8 steps).
    Measured (FMPE on two moons, 10,000 simulations, mean C2ST at 3 observations,
    ``time_exponent`` 4, patience 20): batches of 256 and 128 at learning rate 1e-3 scored
    0.70 and 0.60; batches of 128 and 64 at 2e-3 0.58 and 0.57, 64 in 1.2 times 128's time.
    """
    return int(min(256, max(64, num_train // 64)))


def _split(n: int, fraction: float, minimum: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    perm = torch.randperm(n, generator=generator)
    n_val = min(max(int(round(fraction * n)), minimum), n - 1)
    return perm[n_val:], perm[:n_val]


def _mean_loss(loss_fn: LossFn, theta: Tensor, x: Tensor, generator: torch.Generator, batch: int) -> float:
    total = 0.0
    with torch.no_grad():
        for i in range(0, theta.shape[0], batch):
            total += float(loss_fn(theta[i : i + batch], x[i : i + batch], generator).sum())
    return total / theta.shape[0]


def _split_pairs(theta: Tensor, x: Tensor, cfg: TrainConfig, generator: torch.Generator,
                 learned_summary: bool = False):
    """Split ``theta (N, D)``, ``x (N, K)`` into training and validation parts and pick the batch size.

    Draws one ``randperm(N)`` from ``generator``. Returns
    ``(th_tr (N_tr, D), x_tr (N_tr, K), th_va (N_va, D), x_va (N_va, K), batch)``.
    """
    n = theta.shape[0]
    if n < 4:
        raise ValueError(f"need at least 4 training pairs, got {n}")
    train_idx, val_idx = _split(n, cfg.validation_fraction, cfg.min_validation, generator)
    th_tr, x_tr = theta[train_idx], x[train_idx]
    th_va, x_va = theta[val_idx], x[val_idx]
    batch = max(1, min(cfg.batch_size or auto_batch_size(th_tr.shape[0], learned_summary), th_tr.shape[0]))
    return th_tr, x_tr, th_va, x_va, batch


def _optimizer(net: nn.Module, cfg: TrainConfig):
    """Adam over ``net``'s parameters and the scheduler that lowers its rate when validation stalls.

    Adam's fused kernel (one call for every tensor, on the CPU too) rather than a loop over the
    network's tensors: on a two-moons NSF (89 tensors, batches of 64, one thread) a step's update
    takes about 0.5 ms instead of 3.3 ms of a 17 ms step. The same update in exact arithmetic;
    rounding differs in the last bits, so runs of this version do not repeat those of earlier ones
    bit for bit (they repeat their own).
    """
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate, fused=True)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=cfg.lr_decay_factor, patience=cfg.lr_decay_patience
    )
    return optimizer, scheduler


def _augmenter(net: nn.Module) -> Optional[Callable[[Tensor, torch.Generator], Tensor]]:
    """The network's ``augment(x (B, K), generator) -> (B, K)`` hook, or None."""
    hook = getattr(net, "augment", None)
    return hook if callable(hook) else None


def _train_epoch(net: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: LossFn, th_tr: Tensor, x_tr: Tensor,
                 batch: int, clip_max_norm: float, generator: torch.Generator) -> float:
    """One pass of minibatch steps over ``th_tr (N, D)``, ``x_tr (N, K)`` in a random order.

    Draws ``randperm(N)`` from ``generator``, then per batch whatever the network's
    ``augment`` hook and the loss draw; a trailing batch of one pair is skipped.
    Returns the mean training loss of the epoch.
    """
    augment = _augmenter(net)
    net.train()
    order = torch.randperm(th_tr.shape[0], generator=generator)
    total, count = 0.0, 0
    for i in range(0, len(order), batch):
        idx = order[i : i + batch]
        if len(idx) < 2 and count > 0:
            continue
        optimizer.zero_grad(set_to_none=True)
        xb = x_tr[idx] if augment is None else augment(x_tr[idx], generator)
        losses = loss_fn(th_tr[idx], xb, generator)
        loss = losses.mean()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), clip_max_norm)
        optimizer.step()
        total += float(loss.detach()) * len(idx)
        count += len(idx)
    net.eval()
    return total / max(count, 1)


def _snapshot(net: nn.Module) -> dict:
    """A copy of ``net``'s state (the best epoch's network, kept while training goes on): each tensor
    cloned, anything else deep-copied: 0.44 ms for a two-moons NSF's 89 tensors, where
    ``copy.deepcopy(net.state_dict())`` took 3.1 ms at every improving epoch."""
    return {k: v.clone() if isinstance(v, Tensor) else copy.deepcopy(v) for k, v in net.state_dict().items()}


def _finite_or_none(value: float) -> Optional[float]:
    """``value`` if it is finite, else ``None`` (for the epoch records)."""
    return value if math.isfinite(value) else None


def _epoch_record(round_index: int, epoch: int, cfg: TrainConfig, train_loss: float, val_loss: float,
                  result: TrainResult, elapsed: float, optimizer: torch.optim.Optimizer) -> dict:
    """The history entry (and ``epoch`` event payload) of one epoch."""
    return {
        "round": round_index,
        "epoch": epoch,
        "max_epochs": cfg.max_epochs,
        "train_loss": train_loss,
        "val_loss": _finite_or_none(val_loss),
        "best_epoch": result.best_epoch,
        "best_val_loss": _finite_or_none(result.best_val_loss),
        "elapsed": elapsed,
        "learning_rate": optimizer.param_groups[0]["lr"],
    }


def _should_stop(result: TrainResult, since_best: int, cfg: TrainConfig, cancel: Callable[[], bool] | None) -> bool:
    """After an epoch: whether a stop-and-keep request or early stopping ends training (flags set on ``result``)."""
    if keep_requested(cancel):
        result.stopped_by_request = True
        return True
    if since_best >= cfg.patience:
        result.stopped_early = True
        return True
    return False


def train(
    net: nn.Module,
    theta: Tensor,
    x: Tensor,
    loss_fn: LossFn,
    config: TrainConfig | None = None,
    generator: torch.Generator | None = None,
    on_event: EventCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    round_index: int = 0,
    validation_loss: LossFn | None = None,
    validation_generator: torch.Generator | None = None,
) -> TrainResult:
    """Fit ``net`` by minimising ``loss_fn`` on ``theta (N, D)``, ``x (N, K)``.

    Returns the history (one dict per epoch) with the best weights restored
    into ``net``. Raises :class:`Cancelled` if ``cancel()`` becomes true; if
    ``cancel`` is a :class:`RunControl` whose ``keep()`` becomes true, training
    ends after that epoch (at least one epoch is always trained) with
    ``stopped_by_request`` set. ``validation_loss`` (default ``loss_fn``) scores the
    validation split; with ``validation_generator`` it draws from that generator reset
    to the same state every epoch (see "A noisy loss" in the module docstring).
    """
    cfg = config or TrainConfig()
    with limited_threads(cfg.num_threads):  # the caller's own count again afterwards
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        # a network that also learns a summary of x (hand-made summaries train as a plain vector does)
        learned = any(isinstance(m, Embedding) and m.learned for m in net.modules())
        th_tr, x_tr, th_va, x_va, batch = _split_pairs(theta, x, cfg, g, learned)
        augment = _augmenter(net)
        if augment is not None:
            with torch.no_grad():
                x_va = augment(x_va, g)  # once: a fixed validation task (see the module docstring)
        optimizer, scheduler = _optimizer(net, cfg)
        val_fn = loss_fn if validation_loss is None else validation_loss
        val_state = None if validation_generator is None else validation_generator.get_state()
        result = TrainResult()
        best_state = _snapshot(net)
        since_best = 0
        start = time.perf_counter()

        for epoch in range(1, cfg.max_epochs + 1):
            train_loss = _train_epoch(net, optimizer, loss_fn, th_tr, x_tr, batch, cfg.clip_max_norm, g)
            if val_state is not None:
                validation_generator.set_state(val_state)  # the same draws every epoch
            val_loss = _mean_loss(val_fn, th_va, x_va, g if validation_generator is None else validation_generator,
                                  4 * batch)
            if not math.isfinite(val_loss):
                val_loss = math.inf
            scheduler.step(val_loss)
            if val_loss < result.best_val_loss:
                result.best_val_loss, result.best_epoch = val_loss, epoch
                best_state = _snapshot(net)
                since_best = 0
            else:
                since_best += 1
            record = _epoch_record(round_index, epoch, cfg, train_loss, val_loss, result,
                                   time.perf_counter() - start, optimizer)
            result.history.append(record)
            result.epochs = epoch
            if on_event is not None:
                on_event(epoch_event(record))
            if cancel is not None and cancel():
                net.load_state_dict(best_state)
                raise Cancelled(f"cancelled during training of round {round_index + 1}, epoch {epoch}")
            if _should_stop(result, since_best, cfg, cancel):
                break

        net.load_state_dict(best_state)
        net.eval()
        result.seconds = time.perf_counter() - start
        return result

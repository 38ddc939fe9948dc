r"""Many small MLP classifiers trained at once: the classifiers of L-C2ST (:mod:`.lc2st`).

A permutation test needs the *same* classifier trained ``H + 1`` times: once on the real
labels and ``H`` times on permuted ones (or on data drawn under the null). Trained one after
another (sbi trains ``H + 1`` scikit-learn ``MLPClassifier``\ s), the cost is ``H + 1`` fits of a
tiny network, dominated by Python overhead. Here the ``H + 1`` networks are one batched
network: every weight carries a leading member axis ``H``,

    h_1 = relu(X W_1[h] + b_1[h]),  h_2 = relu(h_1 W_2[h] + b_2[h]),  logit = h_2 w_3[h] + b_3[h],

so one batched matrix product (``torch.matmul`` over ``(H, B, F) x (H, F, W)``) steps all
members together. The loss is the sum over members of each member's mean binary cross-entropy,
and Adam (Kingma & Ba 2015; written out in :class:`_Adam`) acts elementwise, so every member follows exactly the updates it
would follow alone: the members are independent classifiers that share only the order of the
minibatches (and, for permutation tests, the input rows; their labels differ).

**Early stopping.** A fraction of the rows (the same rows for every member) is held out; after
each epoch each member's validation loss is measured, its weights are kept when that loss is
the best so far, and a member stops improving after ``patience`` epochs without a better loss
(scikit-learn's ``early_stopping``, on the loss rather than the accuracy); a member that has stopped
stays stopped, its best weights kept, exactly as if it had been trained alone. Training ends when
every member has stopped (or after ``max_epochs``). Only the members still running are pushed
through the network (a stopped member's weights may still drift with Adam's momentum, but they are
no longer looked at), so a test whose null members stop early costs little more than its longest
member's training.

Shapes: ``features`` ``(R, F)`` shared by every member or ``(H, R, F)`` one set per member;
``labels`` ``(H, R)`` in ``{0, 1}``; :meth:`EnsembleMLP.predict_proba` takes ``(B, F)`` or
``(H, B, F)`` and returns ``(H, B)``: each member's probability of class 1.
Randomness comes only from the ``torch.Generator`` given (initial weights, the validation rows,
minibatch order); torch's global random state is untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["EnsembleSettings", "EnsembleMLP", "train_ensemble"]


@dataclass(frozen=True)
class EnsembleSettings:
    """How each member is built and trained (the same for every member).

    hidden: units of each of the two hidden layers; batch_size: rows per step; lr: Adam's step;
    weight_decay: L2 penalty (added to Adam's gradient); max_epochs, patience: early stopping on
    the validation loss; validation_fraction: rows held out for it.
    """

    hidden: int = 32
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-4
    max_epochs: int = 200
    patience: int = 10
    validation_fraction: float = 0.1


class EnsembleMLP:
    """``H`` trained two-hidden-layer MLP classifiers (see the module docstring)."""

    def __init__(self, params: list[Tensor], epochs: int):
        self.params = params
        self.epochs = epochs  # epochs run (the longest member's)

    @property
    def members(self) -> int:
        return int(self.params[0].shape[0])

    @staticmethod
    def _logits(params: list[Tensor], x: Tensor) -> Tensor:
        w1, b1, w2, b2, w3, b3 = params
        h = torch.relu(torch.matmul(x, w1) + b1)
        h = torch.relu(torch.matmul(h, w2) + b2)
        return (torch.matmul(h, w3) + b3).squeeze(-1)

    def predict_proba(self, x: Tensor, chunk: int = 20_000) -> Tensor:
        """``(H, B)``: each member's probability of class 1 at ``x (B, F)`` (or ``(H, B, F)``)."""
        x = torch.as_tensor(x, dtype=torch.float32)
        with torch.no_grad():
            parts = [torch.sigmoid(self._logits(self.params, x[..., s:s + chunk, :]))
                     for s in range(0, x.shape[-2], chunk)]
        return torch.cat(parts, dim=-1)


def _init(members: int, fan_in: int, fan_out: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    bound = 1.0 / math.sqrt(fan_in)  # torch.nn.Linear's default, per member
    w = (torch.rand(members, fan_in, fan_out, generator=g) * 2 - 1) * bound
    b = (torch.rand(members, 1, fan_out, generator=g) * 2 - 1) * bound
    return w, b


class _Adam:
    """Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient, as ``torch.optim.Adam``
    computes it; written out because the first ``torch.optim`` step of a process imports
    ``torch._dynamo`` (about a second), which a check in a fresh process would pay."""

    def __init__(self, params: list[Tensor], lr: float, weight_decay: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.wd, self.betas, self.eps = params, lr, weight_decay, betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self, grads: tuple[Tensor, ...]) -> None:
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            g = g.add(p, alpha=self.wd) if self.wd else g
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcdiv_(m, (v / c2).sqrt_().add_(self.eps), value=-self.lr / c1)


def _bce(logits: Tensor, labels: Tensor) -> Tensor:
    """``(H,)``: each member's mean binary cross-entropy over its rows."""
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(-1)


def train_ensemble(features: Tensor, labels: Tensor, settings: EnsembleSettings,
                   generator: torch.Generator) -> EnsembleMLP:
    """Train ``H = labels.shape[0]`` classifiers of ``features`` (``(R, F)`` or ``(H, R, F)``) at once."""
    x = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.float32)
    members, rows = y.shape
    shared = x.ndim == 2
    f = x.shape[-1]
    s = settings
    w1, b1 = _init(members, f, s.hidden, generator)
    w2, b2 = _init(members, s.hidden, s.hidden, generator)
    w3, b3 = _init(members, s.hidden, 1, generator)
    params = [p.requires_grad_() for p in (w1, b1, w2, b2, w3, b3)]
    adam = _Adam(params, s.lr, s.weight_decay)

    order = torch.randperm(rows, generator=generator)
    n_val = max(1, int(round(s.validation_fraction * rows))) if rows >= 20 else 0
    val, train = order[:n_val], order[n_val:]
    x_val = x[val] if shared else x[:, val]
    y_val = y[:, val]
    best = [p.detach().clone() for p in params]
    best_loss = torch.full((members,), math.inf)
    waited = torch.zeros(members, dtype=torch.long)
    active = torch.arange(members)
    epochs = 0
    for epoch in range(s.max_epochs):
        epochs = epoch + 1
        perm = train[torch.randperm(len(train), generator=generator)]
        for start in range(0, len(perm), s.batch_size):
            idx = perm[start:start + s.batch_size]
            sub = [p[active] for p in params] if len(active) < members else params
            xb = x[idx] if shared else x[active[:, None], idx[None, :]] if len(active) < members else x[:, idx]
            loss = _bce(EnsembleMLP._logits(sub, xb), y[active][:, idx]).sum()
            adam.step(torch.autograd.grad(loss, params))
        if n_val == 0:
            continue
        with torch.no_grad():
            vl = _bce(EnsembleMLP._logits(params, x_val), y_val)
            running = waited < s.patience  # a member that has stopped stays stopped, as it would alone
            better = running & (vl < best_loss - 1e-6)
            best_loss = torch.where(better, vl, best_loss)
            waited = torch.where(better, torch.zeros_like(waited), waited + running.long())
            for b, p in zip(best, params):
                b[better] = p.detach()[better]
        active = (waited < s.patience).nonzero().flatten()
        if len(active) == 0:
            break
    if n_val == 0:
        best = [p.detach().clone() for p in params]
    return EnsembleMLP(best, epochs)

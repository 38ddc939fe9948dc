r"""Many small MLP classifiers trained at once: the classifiers of L-C2ST (:mod:`.lc2st`) and the
folds of the C2ST (:func:`train_folds`, used by :func:`sbi_core.diagnostics.c2st.c2st` with ``engine="torch"``).

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

**A fold per member** (:func:`train_folds`). A ``K``-fold cross-validated C2ST fits the same
classifier ``K`` times, each on its own training rows; scikit-learn fits them one after another, and
for the small networks of a C2ST each fit is a few thousand Python-level minibatch steps. Here the
``K`` fits are the members of one batched network, trained exactly by scikit-learn's
``MLPClassifier`` rule with its defaults: Glorot-uniform initial weights, minibatches of
``min(200, R)`` rows, the mean binary cross-entropy plus ``alpha/2 * ||W||^2`` over the batch size,
scikit-learn's form of Adam (``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``), and no held-out rows: a
member stops once its epoch's training loss has not fallen by ``tol`` for more than
``n_iter_no_change`` epochs in a row, and keeps its last weights. The forward and backward passes are
written out (three batched matrix products each way), with no autograd, so that a step costs a few
dozen small tensor operations for every fold together.

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

__all__ = ["EnsembleSettings", "EnsembleMLP", "train_ensemble", "train_folds"]


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


def _init(members: int, fan_in: int, fan_out: int, g: torch.Generator, glorot: bool = False) -> tuple[Tensor, Tensor]:
    """A layer's weights ``(H, fan_in, fan_out)`` and biases ``(H, 1, fan_out)``, uniform on ``+-bound``:
    ``1 / sqrt(fan_in)`` (torch.nn.Linear's default, per member), or with ``glorot`` scikit-learn's for a
    ReLU network, ``sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio 2010,
    https://proceedings.mlr.press/v9/glorot10a.html)."""
    bound = math.sqrt(6.0 / (fan_in + fan_out)) if glorot else 1.0 / math.sqrt(fan_in)
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


def _fold_loss_and_grad(layers: list[Tensor], flat: Tensor, is_weight: Tensor, xb: Tensor, yb: Tensor, wb: Tensor,
                        alpha: float) -> tuple[Tensor, Tensor]:
    """One minibatch of :func:`train_folds`, forward and backward, written out.

    Args:
        layers: ``W1 (H, F, W)``, ``b1 (H, 1, W)``, ``W2 (H, W, W)``, ``b2``, ``w3 (H, W, 1)``, ``b3 (H, 1, 1)``:
            views of ``flat (H, P)``; is_weight: ``(P,)`` 1 where ``flat`` holds a weight, 0 a bias.
        xb: ``(H, B, F)`` rows; yb: ``(H, B)`` labels; wb: ``(H, B)`` 1 for a real row, 0 for padding.
        alpha: the L2 penalty.

    Returns:
        ``(H,)`` each member's batch loss times its ``n_b`` real rows, and ``(H, P)`` the gradient of the
        batch loss ``(1 / n_b) sum_i w_i BCE(z_i, y_i) + (alpha / 2n_b) ||W||^2`` (scikit-learn's).
    """
    w1, c1, w2, c2, w3, c3 = layers
    count = wb.sum(1, keepdim=True).clamp_(min=1.0)  # (H, 1) real rows in this batch
    a1 = torch.baddbmm(c1, xb, w1)
    h1 = a1.clamp(min=0)
    a2 = torch.baddbmm(c2, h1, w2)
    h2 = a2.clamp(min=0)
    z = torch.baddbmm(c3, h2, w3).squeeze(-1)  # (H, B) logits
    # cross-entropy softplus(z) - y z over the real rows, and the L2 term
    rows_loss = ((torch.nn.functional.softplus(z) - yb * z) * wb).sum(1) + (0.5 * alpha) * (flat * flat) @ is_weight
    dz = ((torch.sigmoid(z) - yb) * (wb / count))[..., None]  # (H, B, 1)
    d2 = torch.bmm(dz, w3.transpose(1, 2)).mul_(h2.sign())  # ReLU's derivative: 1 where it passed
    d1 = torch.bmm(d2, w2.transpose(1, 2)).mul_(h1.sign())
    grad = torch.cat([torch.bmm(xb.transpose(1, 2), d1).flatten(1), d1.sum(1),
                      torch.bmm(h1.transpose(1, 2), d2).flatten(1), d2.sum(1),
                      torch.bmm(h2.transpose(1, 2), dz).flatten(1), dz.sum(1)], dim=1)
    grad.addcmul_(flat * is_weight, alpha / count)  # the L2 penalty's gradient
    return rows_loss, grad


def train_folds(features: Tensor, labels: Tensor, weights: Tensor, hidden: int, generator: torch.Generator, *,
                max_epochs: int = 200, batch_size: int = 200, lr: float = 1e-3, alpha: float = 1e-4,
                tol: float = 1e-4, n_iter_no_change: int = 10) -> EnsembleMLP:
    """Train one two-hidden-layer classifier per member, by scikit-learn's ``MLPClassifier`` rule.

    Args:
        features: ``(H, R, F)`` each member's training rows.
        labels: ``(H, R)`` in ``{0, 1}``.
        weights: ``(H, R)`` 1 for a real row, 0 for padding (members with fewer rows are padded to ``R``).
        hidden: units ``W`` of each hidden layer.
        generator: the only source of randomness (initial weights, the order of the rows each epoch).
        max_epochs, batch_size, lr, alpha, tol, n_iter_no_change: scikit-learn's ``max_iter``,
            ``batch_size`` (at most ``R``), ``learning_rate_init``, ``alpha``, ``tol``, ``n_iter_no_change``.

    Returns:
        the members' last weights; ``epochs`` is the number of epochs the longest member ran.

    Each member's weights are one row of a ``(H, P)`` buffer (``W1 (F, W)``, ``b1``, ``W2 (W, W)``,
    ``b2``, ``w3 (W, 1)``, ``b3``, in that order), so that Adam updates every weight of every member
    in a handful of operations; a stopped member's row is left as it is.
    """
    x = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.float32)
    wt = torch.as_tensor(weights, dtype=torch.float32)
    members, rows, f = x.shape
    batch = max(1, min(int(batch_size), rows))
    shapes = [(f, hidden), (1, hidden), (hidden, hidden), (1, hidden), (hidden, 1), (1, 1)]
    sizes = [a * b for a, b in shapes]
    flat = torch.cat([t.flatten(1) for t in (*_init(members, f, hidden, generator, glorot=True),
                                            *_init(members, hidden, hidden, generator, glorot=True),
                                            *_init(members, hidden, 1, generator, glorot=True))], dim=1)  # (H, P)
    layers = [part.view(members, *shape) for part, shape in zip(torch.split(flat, sizes, dim=1), shapes)]
    is_weight = torch.cat([torch.full((n,), float(k % 2 == 0)) for k, n in enumerate(sizes)])  # (P,) not a bias
    m = torch.zeros_like(flat)
    v = torch.zeros_like(flat)
    b1, b2, eps = 0.9, 0.999, 1e-8
    per_member = wt.sum(1).clamp(min=1.0)  # (H,) real rows
    best = torch.full((members,), math.inf)
    stale = torch.zeros(members, dtype=torch.long)
    running = torch.ones(members, dtype=torch.bool)
    steps = 0
    epochs = 0
    for _ in range(int(max_epochs)):
        epochs += 1
        keep = running.float()[:, None]  # (H, 1): a stopped member's weights stay as they were
        order = torch.randperm(rows, generator=generator)
        total = torch.zeros(members)
        for start in range(0, rows, batch):
            idx = order[start:start + batch]
            rows_loss, grad = _fold_loss_and_grad(layers, flat, is_weight, x[:, idx], y[:, idx], wt[:, idx], alpha)
            total += rows_loss
            steps += 1
            step = lr * math.sqrt(1 - b2 ** steps) / (1 - b1 ** steps)
            m.mul_(b1).add_(grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            flat.addcdiv_(m * keep, v.sqrt().add_(eps), value=-step)
        loss = total / per_member
        worse = loss > best - tol
        stale = torch.where(running & worse, stale + 1, torch.where(running, torch.zeros_like(stale), stale))
        best = torch.where(running, torch.minimum(best, loss), best)
        running = running & (stale <= n_iter_no_change)
        if not bool(running.any()):
            break
    return EnsembleMLP(layers, epochs)

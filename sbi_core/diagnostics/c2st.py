"""Diagnostics of posterior quality.

Classifier two-sample test (C2ST), as the SBI benchmark (Lueckmann et al.,
2021) defines it: given samples ``P`` (reference) and ``Q`` (candidate) of the
same size, z-score both with the reference's mean and standard deviation,
label them 0 and 1 and report the 5-fold shuffled cross-validated accuracy of
an MLP classifier with two hidden layers of ``10 * D`` units. An accuracy of
0.5 means the classifier cannot tell the sets apart; 1.0 means they are
disjoint.

Two engines train that classifier:

- ``engine="sklearn"`` (the default): scikit-learn's ``MLPClassifier``, five fits one after
  another, exactly as the benchmark (and sbi's ``c2st``) computes it. ``bench/`` scores with it, so
  its numbers stand beside the published ones.
- ``engine="torch"``: the same network, initial weights, minibatches, Adam and stopping rule (on
  the training loss, as scikit-learn's default), with the ``K`` folds trained at once as the members
  of one batched network (:func:`sbi_core.diagnostics.ensemble.train_folds`). Same test, other
  random draws: on 8 models x 3 candidates (``bench/c2st_engines.py``, ``bench/RESULTS.md``) the
  two means over three seeds differ by at most 0.03, about the test's own scatter, and
  ``tests/test_diagnostics.py`` checks them against each other and against the accuracy of the
  best possible classifier of two shifted Gaussians, ``Phi(delta / 2)``. The torch engine takes a
  quarter to a half of scikit-learn's time on one thread (2.9x less over that benchmark). The app's
  scores use it: each round's C2ST against the exact posterior (:mod:`.reference`), SBC's C2ST of
  the ranks (:mod:`.sbc`) and the Compare page's.

References: Lopez-Paz & Oquab, "Revisiting classifier two-sample tests", ICLR 2017,
https://arxiv.org/abs/1610.06545; Lueckmann et al., "Benchmarking simulation-based inference",
AISTATS 2021, https://arxiv.org/abs/2101.04653.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from sbi_core.diagnostics.ensemble import train_folds

__all__ = ["c2st", "ENGINES"]

ENGINES = ("sklearn", "torch")


def c2st(
    reference: Tensor,
    candidate: Tensor,
    seed: int = 1,
    n_folds: int = 5,
    max_iter: int = 1000,
    engine: str = "sklearn",
) -> float:
    """C2ST accuracy between ``reference (N, D)`` and ``candidate (M, D)``.

    Sets of different sizes are cut to the smaller size (the benchmark uses
    equal sizes). ``max_iter``: the classifier's epochs at most; ``engine``: one of
    :data:`ENGINES` (see the module docstring). Returns a float in [0, 1].
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    p = torch.as_tensor(reference, dtype=torch.float64).reshape(len(reference), -1).numpy()
    q = torch.as_tensor(candidate, dtype=torch.float64).reshape(len(candidate), -1).numpy()
    if p.shape[1] != q.shape[1]:
        raise ValueError(f"reference has {p.shape[1]} columns, candidate {q.shape[1]}")
    n = min(len(p), len(q))
    p, q = p[:n], q[:n]
    mean, std = p.mean(0), p.std(0)
    std = np.where(std > 1e-12, std, 1.0)
    data = np.concatenate([(p - mean) / std, (q - mean) / std])
    labels = np.concatenate([np.zeros(n), np.ones(n)])
    dim = data.shape[1]
    if engine == "torch":
        return _c2st_folds_at_once(data, labels, seed, n_folds, max_iter)
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        activation="relu",
        hidden_layer_sizes=(10 * dim, 10 * dim),
        max_iter=max_iter,
        solver="adam",
        random_state=seed,
    )
    folds = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(clf, data, labels, cv=folds, scoring="accuracy")
    return float(np.mean(scores))


def _c2st_folds_at_once(data: np.ndarray, labels: np.ndarray, seed: int, n_folds: int, max_iter: int) -> float:
    """The ``engine="torch"`` C2ST of the z-scored ``data (2n, D)`` with ``labels (2n,)``.

    The folds are scikit-learn's shuffled ``KFold``'s: the rows in a random order cut into ``K``
    folds, the first ``2n mod K`` one row longer. A fold with one training (or test) row fewer than
    the others is padded with a row of weight 0. The score is the mean of the folds' accuracies.
    """
    x = torch.as_tensor(data, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.float32)
    rows, dim = x.shape
    if not 2 <= n_folds <= rows:
        raise ValueError(f"n_folds must be between 2 and the number of rows ({rows}); got {n_folds}")
    g = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(rows, generator=g)
    sizes = [rows // n_folds + (1 if k < rows % n_folds else 0) for k in range(n_folds)]
    folds = list(torch.split(order, sizes))
    test_len, train_len = max(sizes), rows - min(sizes)

    def padded(index: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        pad = length - len(index)
        weight = torch.cat([torch.ones(len(index)), torch.zeros(pad)])
        return torch.cat([index, index[:pad]]), weight

    train = [padded(torch.cat([f for j, f in enumerate(folds) if j != k]), train_len) for k in range(n_folds)]
    test = [padded(f, test_len) for f in folds]
    train_idx, train_w = torch.stack([i for i, _ in train]), torch.stack([w for _, w in train])
    test_idx, test_w = torch.stack([i for i, _ in test]), torch.stack([w for _, w in test])
    model = train_folds(x[train_idx], y[train_idx], train_w, 10 * dim, g, max_epochs=max_iter)
    right = ((model.predict_proba(x[test_idx]) > 0.5).float() == y[test_idx]).float()
    return float(((right * test_w).sum(1) / test_w.sum(1)).mean())

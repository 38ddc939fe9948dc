"""Diagnostics of posterior quality.

Classifier two-sample test (C2ST), as the SBI benchmark (Lueckmann et al.,
2021) defines it: given samples ``P`` (reference) and ``Q`` (candidate) of the
same size, z-score both with the reference's mean and standard deviation,
label them 0 and 1 and report the 5-fold shuffled cross-validated accuracy of
an MLP classifier with two hidden layers of ``10 * D`` units. An accuracy of
0.5 means the classifier cannot tell the sets apart; 1.0 means they are
disjoint.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

__all__ = ["c2st"]


def c2st(
    reference: Tensor,
    candidate: Tensor,
    seed: int = 1,
    n_folds: int = 5,
    max_iter: int = 1000,
) -> float:
    """C2ST accuracy between ``reference (N, D)`` and ``candidate (M, D)``.

    Sets of different sizes are cut to the smaller size (the benchmark uses
    equal sizes). Returns a float in [0, 1].
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neural_network import MLPClassifier

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

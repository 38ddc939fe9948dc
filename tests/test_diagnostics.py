"""C2ST: ~0.5 for one distribution, ~1.0 for disjoint ones."""

import math

import pytest
import torch

from sbi_core import c2st


def test_same_distribution_is_half():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2000, 2, generator=g), torch.randn(2000, 2, generator=g)
    assert c2st(a, b) == pytest.approx(0.5, abs=0.05)


def test_disjoint_is_one():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1000, 3, generator=g), torch.randn(1000, 3, generator=g) + 10
    assert c2st(a, b) > 0.99


def test_shifted_is_in_between_and_scale_invariant():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2000, 2, generator=g), torch.randn(2000, 2, generator=g) + 1.0
    score = c2st(a, b)
    assert 0.65 < score < 0.85
    assert c2st(a * 1000, b * 1000) == pytest.approx(score, abs=0.02)


def test_shape_mismatch():
    with pytest.raises(ValueError):
        c2st(torch.zeros(10, 2), torch.zeros(10, 3))


# ---- the torch engine: the same classifier, its five folds trained at once ----------------------
def _shifted(n: int, delta: float, seed: int, dim: int = 2):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, dim, generator=g), torch.randn(n, dim, generator=g)
    b[:, 0] += delta
    return a, b


@pytest.mark.parametrize("delta", [0.0, 1.0, 2.0])
def test_torch_engine_reaches_the_best_classifiers_accuracy(delta):
    # two unit Gaussians a distance delta apart: no classifier beats Phi(delta / 2)
    best = 0.5 * (1 + math.erf(delta / 2 / math.sqrt(2)))
    a, b = _shifted(1000, delta, seed=3)
    assert c2st(a, b, max_iter=200, engine="torch") == pytest.approx(best, abs=0.03)


def test_torch_engine_agrees_with_scikit_learn():
    # sd 1 against sd 1.3 in 5 dimensions: the classifier must learn a curved boundary
    pairs = [(torch.randn(200, 5, generator=torch.Generator().manual_seed(s)),
              1.3 * torch.randn(200, 5, generator=torch.Generator().manual_seed(100 + s))) for s in range(3)]
    ours = [c2st(a, b, seed=s, max_iter=200, engine="torch") for s, (a, b) in enumerate(pairs)]
    theirs = [c2st(a, b, seed=s, max_iter=200) for s, (a, b) in enumerate(pairs)]
    assert sum(ours) / 3 == pytest.approx(sum(theirs) / 3, abs=0.04)
    assert min(ours) > 0.54  # it tells them apart, as scikit-learn does (0.58-0.61)


def test_torch_engine_is_reproducible_scale_invariant_and_takes_uneven_folds():
    a, b = _shifted(437, 1.0, seed=5)  # 874 rows: folds of 175 and 174
    score = c2st(a, b, seed=2, max_iter=100, engine="torch")
    assert c2st(a, b, seed=2, max_iter=100, engine="torch") == score
    assert c2st(a, b, seed=3, max_iter=100, engine="torch") != score
    assert c2st(a * 1000, b * 1000, seed=2, max_iter=100, engine="torch") == pytest.approx(score, abs=0.02)
    assert c2st(torch.zeros(30, 1), torch.ones(30, 1) * 5, n_folds=3, engine="torch") == 1.0


def test_unknown_engine_and_too_many_folds_say_what_to_use():
    with pytest.raises(ValueError, match="sklearn, torch"):
        c2st(torch.zeros(10, 2), torch.zeros(10, 2), engine="keras")
    with pytest.raises(ValueError, match="n_folds"):
        c2st(torch.zeros(2, 2), torch.ones(2, 2), n_folds=5, engine="torch")


def test_fold_gradient_is_the_gradient_of_scikit_learns_batch_loss():
    from sbi_core.diagnostics.ensemble import _fold_loss_and_grad, _init

    g = torch.Generator().manual_seed(0)
    members, rows, f, hidden, alpha = 3, 17, 2, 6, 1e-2
    parts = [*_init(members, f, hidden, g, True), *_init(members, hidden, hidden, g, True), *_init(members, hidden, 1, g, True)]
    flat = torch.cat([p.flatten(1) for p in parts], dim=1)
    shapes = [p.shape[1:] for p in parts]
    layers = [t.view(members, *s) for t, s in zip(torch.split(flat, [s.numel() for s in shapes], dim=1), shapes)]
    is_weight = torch.cat([torch.full((s.numel(),), float(k % 2 == 0)) for k, s in enumerate(shapes)])
    x = torch.randn(members, rows, f, generator=g)
    y = (torch.rand(members, rows, generator=g) > 0.5).float()
    w = torch.ones(members, rows)
    w[1, -1] = 0.0  # a padded row: no part in the loss
    rows_loss, grad = _fold_loss_and_grad(layers, flat, is_weight, x, y, w, alpha)

    # the same loss through autograd, member by member
    p = flat.clone().requires_grad_()
    split = torch.split(p, [s.numel() for s in shapes], dim=1)
    w1, c1, w2, c2, w3, c3 = [t.view(members, *s) for t, s in zip(split, shapes)]
    z = (torch.relu(torch.relu(x @ w1 + c1) @ w2 + c2) @ w3 + c3).squeeze(-1)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")
    n = w.sum(1)
    l2 = 0.5 * alpha * sum((t ** 2).sum((1, 2)) for t in (w1, w2, w3))
    loss = (bce * w).sum(1) / n + l2 / n
    (expected,) = torch.autograd.grad(loss.sum(), p)
    torch.testing.assert_close(grad, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(rows_loss, (loss * n).detach(), rtol=1e-5, atol=1e-6)

"""C2ST: ~0.5 for one distribution, ~1.0 for disjoint ones."""

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

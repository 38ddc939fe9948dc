"""Rejection sampling in adaptive batches."""

import pytest
import torch

from sbi_core.stats.rejection import RejectionTooSlow, rejection_sample


def test_keeps_only_accepted_draws_and_estimates_the_rate():
    g = torch.Generator().manual_seed(0)
    samples, rate = rejection_sample(lambda m: torch.rand(m, 2, generator=g), lambda t: t[:, 0] < 0.25,
                                     5000, max_seconds=10.0)
    assert samples.shape == (5000, 2)
    assert (samples[:, 0] < 0.25).all()
    assert rate == pytest.approx(0.25, abs=0.02)
    # accepted draws keep the proposal's shape inside the region: uniform on [0, 0.25)
    assert samples[:, 0].mean() == pytest.approx(0.125, abs=0.005)


def test_gives_up_when_acceptance_is_too_low():
    with pytest.raises(RejectionTooSlow) as err:
        rejection_sample(lambda m: torch.rand(m, 1), lambda t: t[:, 0] < 1e-6, 100,
                         max_seconds=10.0, min_acceptance=1e-3)
    assert err.value.rate < 1e-3

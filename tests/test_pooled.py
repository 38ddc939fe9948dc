"""The pooled training set of neural methods: invalid pairs dropped and counted, fixed parameters left out."""

import pytest
import torch

from sbi_core import Prior, SBIError
from sbi_core.methods.pooled import MIN_PAIRS, PooledPairs

PRIOR = Prior.from_spec([{"name": "a", "dist": "uniform", "low": 0.0, "high": 1.0},
                         {"name": "k", "dist": "fixed", "value": 2.5}])


def test_rounds_pool_their_valid_free_columns():
    pairs = PooledPairs(PRIOR)
    assert pairs.round == -1 and pairs.last_theta() is None
    theta = torch.tensor([[0.1, 2.5], [0.2, 2.5], [0.3, 2.5]])
    x = torch.tensor([[1.0], [float("nan")], [3.0]])
    assert pairs.append(theta, x) == 1
    assert pairs.append(theta * torch.tensor([2.0, 1.0]), torch.ones(3, 1)) == 0
    assert (pairs.round, pairs.num_simulations, pairs.num_invalid) == (1, 5, 1)
    first_theta, first_x = pairs.first()
    assert first_theta.flatten().tolist() == pytest.approx([0.1, 0.3]) and first_x.tolist() == [[1.0], [3.0]]
    assert pairs.last_theta().shape == (3, 1)
    with pytest.raises(SBIError, match=f"Only 5 valid simulations.*1 returned NaN.*at least {MIN_PAIRS}"):
        pairs.training_set()
    pairs.append(torch.full((10, 2), 0.5), torch.zeros(10, 1))
    theta_all, x_all = pairs.training_set()
    assert theta_all.shape == (15, 1) and x_all.shape == (15, 1)


def test_a_wrong_shape_says_what_is_expected():
    with pytest.raises(SBIError, match=r"theta must have shape \(N, 2\) for parameters a, k"):
        PooledPairs(PRIOR).append(torch.zeros(4, 3), torch.zeros(4, 1))

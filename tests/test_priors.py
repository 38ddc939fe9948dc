"""Priors: families, sampling, densities, support, bounds and every bad spec."""

import math

import pytest
import torch
from scipy import stats

from sbi_core import Prior, PriorSpecError

SPEC = [
    {"name": "a", "dist": "uniform", "low": -1.0, "high": 1.0},
    {"name": "b", "dist": "normal", "loc": 0.0, "scale": 1.0},
    {"name": "c", "dist": "lognormal", "loc": 0.0, "scale": 0.5},
    {"name": "d", "dist": "beta", "alpha": 2.0, "beta": 5.0, "low": 1.0, "high": 3.0},
    {"name": "e", "dist": "gamma", "concentration": 2.0, "rate": 3.0},
    {"name": "f", "dist": "halfnormal", "scale": 2.0},
    {"name": "g", "dist": "fixed", "value": 4.0},
]


@pytest.fixture
def prior():
    return Prior.from_spec(SPEC)


def test_round_trip(prior):
    assert Prior.from_spec(prior.to_spec()) == prior
    assert prior.names == list("abcdefg")
    assert prior.dim == 7
    assert prior.free_mask.tolist() == [True] * 6 + [False]


def test_design_example():
    prior = Prior.from_spec(SPEC[:3])
    theta = prior.sample((100,))
    assert theta.shape == (100, 3)
    assert prior.log_prob(theta).shape == (100,)
    assert prior.to_spec() == SPEC[:3]


def test_sample_moments_match_scipy(prior):
    theta = prior.sample((40_000,), generator=torch.Generator().manual_seed(0)).double()
    ref = [
        stats.uniform(-1, 2),
        stats.norm(0, 1),
        stats.lognorm(0.5, scale=1.0),
        stats.beta(2, 5, loc=1, scale=2),
        stats.gamma(2, scale=1 / 3),
        stats.halfnorm(scale=2),
    ]
    for i, dist in enumerate(ref):
        assert theta[:, i].mean().item() == pytest.approx(dist.mean(), abs=0.03 * dist.std() * 3)
        assert theta[:, i].std().item() == pytest.approx(dist.std(), rel=0.05)
    assert (theta[:, 6] == 4.0).all()


def test_log_prob_matches_scipy(prior):
    theta = prior.sample((50,), generator=torch.Generator().manual_seed(1))
    lp = prior.log_prob(theta).double()
    t = theta.double().numpy()
    expected = (
        stats.uniform(-1, 2).logpdf(t[:, 0])
        + stats.norm(0, 1).logpdf(t[:, 1])
        + stats.lognorm(0.5, scale=1.0).logpdf(t[:, 2])
        + stats.beta(2, 5, loc=1, scale=2).logpdf(t[:, 3])
        + stats.gamma(2, scale=1 / 3).logpdf(t[:, 4])
        + stats.halfnorm(scale=2).logpdf(t[:, 5])
    )
    assert torch.allclose(lp, torch.tensor(expected), atol=1e-3)


def test_outside_support_is_minus_inf(prior):
    theta = prior.sample((4,), generator=torch.Generator().manual_seed(2))
    bad = theta.clone()
    bad[0, 0] = 1.5  # uniform above high
    bad[1, 2] = -0.1  # lognormal negative
    bad[2, 3] = 0.5  # beta below low
    bad[3, 6] = 4.5  # fixed parameter off its value
    lp = prior.log_prob(bad)
    assert torch.isinf(lp).all() and (lp < 0).all()
    assert not prior.support_contains(bad).any()
    assert prior.support_contains(theta).all()
    assert torch.isfinite(prior.log_prob(theta)).all()


def test_nan_is_outside_support(prior):
    theta = prior.sample((1,))
    theta[0, 1] = float("nan")
    assert not prior.support_contains(theta).any()
    assert prior.log_prob(theta).item() == -math.inf


def test_bounds(prior):
    b = prior.bounds
    assert b.shape == (7, 2)
    assert b[0].tolist() == [-1.0, 1.0]
    assert b[3].tolist() == [1.0, 3.0]
    # normal: central 99.9 %
    assert b[1, 0].item() == pytest.approx(stats.norm.ppf(0.0005), rel=1e-3)
    assert b[1, 1].item() == pytest.approx(stats.norm.ppf(0.9995), rel=1e-3)
    assert b[2, 1].item() == pytest.approx(stats.lognorm(0.5).ppf(0.9995), rel=1e-3)
    assert b[4, 1].item() == pytest.approx(stats.gamma(2, scale=1 / 3).ppf(0.9995), rel=1e-3)
    assert b[5, 0].item() == 0.0
    assert b[6, 0] < 4.0 < b[6, 1]
    assert torch.isfinite(b).all()


def test_sampling_is_seeded_and_leaves_global_rng_alone(prior):
    state = torch.get_rng_state()
    a = prior.sample((10,), generator=torch.Generator().manual_seed(5))
    b = prior.sample((10,), generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert torch.equal(state, torch.get_rng_state())


def test_aliases_and_case():
    p = Prior.from_spec([{"name": "x", "dist": "Gaussian", "loc": 0, "scale": 1}])
    assert p.marginals[0].dist == "normal"


BAD = [
    ({"name": "a", "dist": "uniform", "low": 1.0, "high": 1.0}, "'low' (1) must be smaller"),
    ({"name": "a", "dist": "uniform", "low": 2.0, "high": 1.0}, "must be smaller"),
    ({"name": "a", "dist": "normal", "loc": 0.0, "scale": 0.0}, "'scale' must be greater than 0"),
    ({"name": "a", "dist": "normal", "loc": 0.0, "scale": -1.0}, "'scale' must be greater than 0"),
    ({"name": "a", "dist": "lognormal", "loc": 0.0, "scale": -0.5}, "greater than 0"),
    ({"name": "a", "dist": "beta", "alpha": 0.0, "beta": 1.0}, "'alpha' must be greater than 0"),
    ({"name": "a", "dist": "gamma", "concentration": 1.0, "rate": 0.0}, "'rate' must be greater than 0"),
    ({"name": "a", "dist": "halfnormal", "scale": 0}, "greater than 0"),
    ({"name": "a", "dist": "cauchy", "loc": 0, "scale": 1}, "unknown family 'cauchy'"),
    ({"name": "a", "dist": "normal", "loc": 0.0}, "needs 'scale'"),
    ({"name": "a", "dist": "normal", "loc": "zero", "scale": 1}, "'loc' must be a number"),
    ({"name": "a", "dist": "normal", "loc": float("nan"), "scale": 1}, "'loc' must be finite"),
    ({"name": "a", "dist": "uniform", "low": 0, "high": float("inf")}, "'high' must be finite"),
    ({"name": "a", "dist": "normal", "loc": None, "scale": 1}, "'loc' must be a number"),
    ({"name": "a", "dist": "normal", "loc": True, "scale": 1}, "'loc' must be a number"),
    ({"name": "a", "dist": "normal", "loc": 0, "scale": 1, "low": 3}, "remove 'low'"),
    ({"name": "", "dist": "normal", "loc": 0, "scale": 1}, "needs a non-empty text 'name'"),
    ({"dist": "normal", "loc": 0, "scale": 1}, "needs a non-empty text 'name'"),
    ({"name": "a", "loc": 0, "scale": 1}, "'dist' must be one of"),
    ("a ~ N(0, 1)", "must be a mapping"),
]


@pytest.mark.parametrize("entry,message", BAD)
def test_bad_marginal_spec(entry, message):
    with pytest.raises(PriorSpecError) as err:
        Prior.from_spec([entry])
    assert message in str(err.value)
    if isinstance(entry, dict) and entry.get("name"):
        assert "'a'" in str(err.value)


@pytest.mark.parametrize(
    "spec,message",
    [
        ([], "at least one parameter"),
        ("uniform", "list of parameters"),
        ({"name": "a"}, "list of parameters"),
        (
            [{"name": "a", "dist": "normal", "loc": 0, "scale": 1}, {"name": "a", "dist": "normal", "loc": 0, "scale": 1}],
            "used twice",
        ),
        ([{"name": "a", "dist": "fixed", "value": 1.0}], "leave at least one free"),
    ],
)
def test_bad_prior_spec(spec, message):
    with pytest.raises(PriorSpecError, match=message):
        Prior.from_spec(spec)


def test_wrong_theta_width_is_clear(prior):
    with pytest.raises(ValueError, match="7 columns"):
        prior.log_prob(torch.zeros(3, 2))

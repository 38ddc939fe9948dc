"""Can I trust it at my observation? (issue 23): the misspecification test
(sbi_core.diagnostics.misspecification) and L-C2ST (sbi_core.diagnostics.lc2st).

Misspecification: two sensors of one quantity that disagree are flagged although each reading
lies inside its usual range; the model's own observations are flagged at about the nominal rate;
the verdict names the numbers to look at. L-C2ST: on a conjugate Gaussian model whose posterior is
known, the exact posterior passes and an overconfident or shifted one fails, in both variants
(standard, with posterior draws; NF, in the flow's base space). Shapes are checked with clear
errors, and every result is reproducible from its seed without touching the global random state.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

import sbi_core
from sbi_core import SBIError
from sbi_core.diagnostics.lc2st import LC2ST, PP_LEVELS, clear_null_cache, null_cache_info, run_lc2st
from sbi_core.diagnostics.misspecification import ModelSupport, check_misspecification

pytestmark = pytest.mark.timeout(300)

SIGMA = 0.5  # x = theta + N(0, SIGMA^2 I), theta ~ N(0, I)


# ---- models ------------------------------------------------------------------------------------
def two_sensors(n: int, seed: int) -> torch.Tensor:
    """``(n, 2)``: two sensors reading one quantity ``mu ~ U(-3, 3)``, each with N(0, 0.1^2) noise."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.rand(n, 1, generator=g) * 6 - 3
    return mu + 0.1 * torch.randn(n, 2, generator=g)


def gaussian_pairs(n: int, seed: int, d: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(n, d, generator=g)
    return theta, theta + SIGMA * torch.randn(n, d, generator=g)


class GaussianPosterior:
    """The posterior of the conjugate model, ``N(x / (1 + s^2), s^2 / (1 + s^2) I)``, or a wrong one:
    its sd times ``scale`` (< 1: overconfident) and its mean moved by ``shift``. ``nf=True`` adds the
    affine map to its base space, ``to_base(theta, xs) = (theta - mean(xs)) / sd``, as a flow's."""

    def __init__(self, scale: float = 1.0, shift: float = 0.0, nf: bool = True):
        self.sd = scale * SIGMA / math.sqrt(1 + SIGMA ** 2)
        self.shift = shift
        if nf:
            self.to_base = lambda theta, xs: (torch.as_tensor(theta) - self.mean(xs)) / self.sd

    def mean(self, x) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32) / (1 + SIGMA ** 2) + self.shift

    def sample(self, sample_shape, x, seed=None):
        g = torch.Generator().manual_seed(int(seed))
        x = torch.as_tensor(x, dtype=torch.float32).reshape(-1)
        return self.mean(x) + self.sd * torch.randn(*sample_shape, x.shape[0], generator=g)

    def sample_batched(self, num, xs, generator=None):
        xs = torch.as_tensor(xs, dtype=torch.float32)
        return self.mean(xs)[:, None, :] + self.sd * torch.randn(xs.shape[0], num, xs.shape[1], generator=generator)

    def log_prob(self, theta, x):
        z = (torch.as_tensor(theta) - self.mean(x)) / self.sd
        return (-0.5 * z ** 2 - math.log(self.sd) - 0.5 * math.log(2 * math.pi)).sum(-1)


def _no_markdown(text: str) -> bool:
    return not any(mark in text for mark in ("**", "`", "#", "__", "]("))


# ---- misspecification --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sensors():
    return two_sensors(5000, seed=0)


def test_two_sensors_that_disagree_are_flagged_though_each_reading_is_in_range(sensors):
    res = check_misspecification(sensors, torch.tensor([0.5, 1.5]))
    assert res["p_value"] < 0.01 and res["misspecified"] and res["method"] == "knn"
    assert res["n_train"] == 5000 and res["n_calibration"] == 1000 and res["n_invalid"] == 0
    assert res["p_value"] == pytest.approx(1 / 1001) and res["min_p_value"] == pytest.approx(1 / 1001)
    feats = res["features"]
    assert [f["label"] for f in feats] and {f["label"] for f in feats} == {"x[0]", "x[1]"}
    assert all(f["side"] is None and f["marginal_p_value"] > 0.2 for f in feats)  # each alone is ordinary
    assert all(f["p_value_without"] >= 0.05 for f in feats)  # without either one the rest looks ordinary
    verdict = res["verdict"]
    assert "rarely produces data like yours" in verdict and "combination" in verdict
    assert "x[0]" in verdict and "x[1]" in verdict and _no_markdown(verdict)


def test_observations_of_the_model_itself_pass_at_about_the_nominal_rate(sensors):
    """100 observations the model made: false alarms at alpha = 0.05 at most 10 (P(Bin(100, 0.05) > 10) = 1.1 %),
    and p-values spread over [0, 1]."""
    fresh = two_sensors(100, seed=123)
    for method in ("knn", "mmd"):
        support = ModelSupport.fit(sensors, method=method)  # fitted once, checked 100 times
        p = np.array([support.check(x)["p_value"] for x in fresh])
        assert (p < 0.05).sum() <= 10, (method, np.sort(p)[:12])
        assert 0.35 < p.mean() < 0.65 and (p > 0.5).sum() >= 30, (method, p.mean())
    res = check_misspecification(sensors, fresh[0])
    assert res == ModelSupport.fit(sensors).check(fresh[0])
    assert not res["misspecified"] and "looks like data the model produces" in res["verdict"]
    assert _no_markdown(res["verdict"])


def test_a_reading_beyond_every_simulation_is_named_first(sensors):
    res = check_misspecification(sensors, [10.0, 0.6], labels=["left", "right"])
    assert res["misspecified"]
    first = res["features"][0]
    assert first["label"] == "left" and first["side"] == "above" and first["excess"] > 2
    assert first["z"] > 4 and first["marginal_p_value"] < 0.001
    assert "Look at left = 10" in res["verdict"] and "above every simulation" in res["verdict"]


def test_the_mmd_variant_flags_a_far_observation_and_reports_its_bandwidth(sensors):
    far = check_misspecification(sensors, [10.0, 10.0], method="mmd")
    assert far["method"] == "mmd" and far["misspecified"] and far["bandwidth"] > 0 and far["k"] is None
    near = check_misspecification(sensors, [0.5, 0.55], method="mmd")
    assert not near["misspecified"] and far["statistic"] > near["statistic"]


def test_invalid_simulations_are_dropped_and_counted(sensors):
    x = sensors[:500].clone()
    x[:7, 0] = float("nan")
    x[7:10, 1] = float("inf")
    res = check_misspecification(x, [0.0, 0.0])
    assert res["n_invalid"] == 10 and res["n_train"] == 490 and res["n_calibration"] == 490


def test_held_out_calibration_simulations_and_an_embedding(sensors):
    res = check_misspecification(sensors[:4000], [0.5, 1.5], x_calibration=sensors[4000:])
    assert res["calibration"] == "held-out" and res["n_calibration"] == 1000 and res["misspecified"]
    # a summary that keeps only the disagreement of the sensors
    diff = check_misspecification(sensors, [0.5, 1.5], embedding=lambda x: x[:, :1] - x[:, 1:])
    assert diff["misspecified"] and [f["label"] for f in diff["features"]] == ["s[0]"]
    assert diff["features"][0]["p_value_without"] is None  # one feature: nothing to leave out


@pytest.mark.parametrize("x_obs, words", [
    ([0.1, 0.2, 0.3], "3 numbers but each simulation has 2"),
    ([float("nan"), 0.2], "NaN or infinite"),
    ([[0.1, 0.2], [0.3, 0.4]], "one observation"),
])
def test_a_wrong_observation_is_an_sbierror_saying_what_is_wrong(sensors, x_obs, words):
    with pytest.raises(SBIError, match=words):
        check_misspecification(sensors, x_obs)


def test_too_few_simulations_or_an_unknown_method_is_an_sbierror(sensors):
    few = sensors[:30].clone()
    few[:15] = float("nan")
    with pytest.raises(SBIError, match="Only 15 of the 30 simulations are finite"):
        check_misspecification(few, [0.0, 0.0])
    with pytest.raises(SBIError, match="method must be one of"):
        check_misspecification(sensors, [0.0, 0.0], method="energy")


def test_misspecification_is_reproducible_and_leaves_the_global_random_state_alone(sensors):
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    a = check_misspecification(sensors, [0.3, 0.5], seed=3)
    b = check_misspecification(sensors, [0.3, 0.5], seed=3)
    assert a == b
    assert torch.equal(torch.get_rng_state(), torch_state) and np.random.get_state()[1].tolist() == np_state[1].tolist()
    assert sbi_core.check_misspecification is check_misspecification  # the public name


# ---- L-C2ST ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def calibration():
    """1,000 held-out pairs of the conjugate model, and an observation it made."""
    theta, x = gaussian_pairs(1000, seed=1)
    _, x_obs = gaussian_pairs(1, seed=99)
    return theta, x, x_obs[0]


@pytest.mark.parametrize("variant", ["nf", "standard"])
def test_lc2st_passes_the_exact_posterior_and_fails_wrong_ones(calibration, variant):
    theta, x, x_obs = calibration
    cases = {"exact": GaussianPosterior(), "overconfident": GaussianPosterior(scale=0.5),
             "shifted": GaussianPosterior(shift=0.3)}
    res = {name: run_lc2st(theta, x, post, x_obs, num_null=50, variant=variant) for name, post in cases.items()}
    assert all(r["variant"] == variant for r in res.values())
    assert res["exact"]["p_value"] > 0.05 and not res["exact"]["rejected"]
    for name in ("overconfident", "shifted"):
        assert res[name]["rejected"] and res[name]["p_value"] == pytest.approx(1 / 51), name
        assert res[name]["statistic"] > max(res[name]["null_statistics"]), name
    assert "No evidence against the posterior" in res["exact"]["verdict"]
    assert "not to be trusted" in res["overconfident"]["verdict"]
    assert all(_no_markdown(r["verdict"]) for r in res.values())


def test_lc2st_result_carries_the_local_pp_plot_and_picks_nf_for_a_flow(calibration):
    theta, x, x_obs = calibration
    res = run_lc2st(theta, x, GaussianPosterior(scale=0.5), x_obs, num_null=20, num_posterior_samples=300)
    assert res["variant"] == "nf" and res["num_null"] == 20 and len(res["null_statistics"]) == 20
    pp = res["pp"]
    assert len(pp["levels"]) == len(pp["cdf"]) == len(pp["null_low"]) == len(pp["null_high"]) == PP_LEVELS
    assert pp["cdf"][-1] == 1.0 and all(a <= b for a, b in zip(pp["cdf"], pp["cdf"][1:]))
    assert all(lo <= hi for lo, hi in zip(pp["null_low"], pp["null_high"]))
    assert res["probabilities"].shape == (300,) and res["samples"].shape == (300, 2)
    # overconfident: most of its draws sit where it has more mass than the truth (probability below 1/2)
    at = round(0.4 * (PP_LEVELS - 1))
    assert pp["levels"][at] == pytest.approx(0.4) and pp["cdf"][at] > 0.5 > pp["null_high"][at]
    standard = run_lc2st(theta, x, GaussianPosterior(nf=False), x_obs, num_null=5)
    assert standard["variant"] == "standard"


def test_lc2st_nf_null_is_trained_once_per_calibration_set(calibration):
    theta, x, x_obs = calibration
    clear_null_cache()
    first = LC2ST.fit(theta, x, GaussianPosterior(), num_null=30, seed=11)
    start = time.process_time()  # CPU of this process: a busy machine does not change it
    second = LC2ST.fit(theta, x, GaussianPosterior(scale=0.5), num_null=30, seed=11)
    assert second.null_cached and not first.null_cached and second.null is first.null
    assert null_cache_info()["size"] == 1
    assert time.process_time() - start < 2.0
    many = [second.test(xo)["p_value"] for xo in gaussian_pairs(5, seed=5)[1]]  # one fit, many observations
    assert all(p < 0.05 for p in many)


def test_lc2st_is_reproducible_and_leaves_the_global_random_state_alone(calibration):
    theta, x, x_obs = calibration
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    a = run_lc2st(theta, x, GaussianPosterior(nf=False), x_obs, num_null=10, seed=4)
    b = run_lc2st(theta, x, GaussianPosterior(nf=False), x_obs, num_null=10, seed=4)
    c = run_lc2st(theta, x, GaussianPosterior(nf=False), x_obs, num_null=10, seed=5)
    assert a["p_value"] == b["p_value"] and a["statistic"] == b["statistic"]
    assert a["null_statistics"] == b["null_statistics"] and np.array_equal(a["probabilities"], b["probabilities"])
    assert a["null_statistics"] != c["null_statistics"]
    assert torch.equal(torch.get_rng_state(), torch_state) and np.random.get_state()[1].tolist() == np_state[1].tolist()
    assert sbi_core.run_lc2st is run_lc2st


def test_lc2st_wrong_inputs_are_sbierrors_before_any_training(calibration):
    theta, x, x_obs = calibration
    post = GaussianPosterior()
    start = time.process_time()  # CPU of this process: a busy machine does not change it
    with pytest.raises(SBIError, match="3 numbers but the calibration simulations have 2"):
        run_lc2st(theta, x, post, [0.1, 0.2, 0.3])
    with pytest.raises(SBIError, match="NaN or infinite"):
        run_lc2st(theta, x, post, [float("nan"), 0.2])
    with pytest.raises(SBIError, match="thetas has 1000 rows but xs has 999"):
        run_lc2st(theta, x[:-1], post, x_obs)
    with pytest.raises(SBIError, match="L-C2ST needs at least"):
        run_lc2st(theta[:20], x[:20], post, x_obs)
    with pytest.raises(SBIError, match="variant='nf' needs a normalizing-flow posterior"):
        run_lc2st(theta, x, GaussianPosterior(nf=False), x_obs, variant="nf")
    with pytest.raises(SBIError, match="variant must be one of"):
        run_lc2st(theta, x, post, x_obs, variant="fast")
    assert time.process_time() - start < 1.0


@pytest.mark.slow
def test_lc2st_on_a_trained_sbi_core_flow_uses_its_base_space():
    """A real NPE posterior: ``to_base`` inverts the flow's sampling map, and L-C2ST-NF runs on it."""
    prior = sbi_core.Prior.from_spec([{"name": "a", "dist": "normal", "loc": 0.0, "scale": 1.0},
                                      {"name": "b", "dist": "normal", "loc": 0.0, "scale": 1.0}])
    theta, x = gaussian_pairs(2000, seed=2)
    post = sbi_core.NPE(prior, density_estimator="maf", hidden_features=20, num_transforms=2, seed=0).train(
        theta, x, max_epochs=30)
    x_obs = torch.tensor([0.3, -0.5])
    z = torch.randn(400, 2, generator=torch.Generator().manual_seed(7))
    drawn = post.flow.sample(400, x_obs, generator=torch.Generator().manual_seed(7))  # theta = T(z; x_obs)
    assert torch.allclose(post.to_base(drawn, x_obs), z, atol=1e-4)
    assert post.to_base(drawn, x_obs.expand(400, -1)).shape == (400, 2)
    theta_c, x_c = gaussian_pairs(1000, seed=3)
    res = run_lc2st(theta_c, x_c, post, x_obs, num_null=30)
    assert res["variant"] == "nf" and 0 < res["p_value"] <= 1 and res["n_calibration"] == 1000


@pytest.mark.slow
def test_lc2st_with_scikit_learn_classifiers(calibration):
    theta, x, x_obs = calibration
    res = run_lc2st(theta, x, GaussianPosterior(scale=0.5, nf=False), x_obs, num_null=4, classifier="sklearn")
    assert res["classifier"] == "sklearn" and res["num_null"] == 4
    assert res["p_value"] == pytest.approx(1 / 5) and res["statistic"] > max(res["null_statistics"])  # as far as 4 go

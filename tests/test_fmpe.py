"""FMPE and NPSE: conditional vector fields (sbi_core.nn.vector_field), their ODE solvers and posteriors."""

from __future__ import annotations

import json
import math

import pytest
import torch

import sbi_core
from sbi_core import FMPE, NPSE, SBIError
from sbi_core.nn.ode import divergence, odeint
from sbi_core.nn.vector_field import ConditionalVectorField, VectorFieldConfig
from sbi_core.posteriors.files import load_posterior
from sbi_core.posteriors.vector_field import VectorFieldPosterior
from sbi_core.run.cost import steps_per_epoch

TINY = dict(hidden_features=16, num_blocks=1, max_epochs=2, patience=100)
METHODS = {"fmpe": FMPE, "npse": NPSE}


@pytest.fixture(scope="module")
def pairs():
    """300 linear-regression pairs (2 parameters, 10 numbers per simulation)."""
    sim = sbi_core.get_simulator("linear_regression")
    g = torch.Generator().manual_seed(0)
    theta = sim.prior.sample((300,), generator=g)
    return sim, theta, sim.simulate(theta, generator=g)


@pytest.fixture(scope="module")
def trained(pairs):
    """Each method's posterior after a short training (shared by the fast tests)."""
    sim, theta, x = pairs
    return {name: cls(sim.prior, seed=1, **TINY).train(theta, x) for name, cls in METHODS.items()}


# ---------------------------------------------------------------------------
# the solvers
# ---------------------------------------------------------------------------
def test_fixed_step_solvers_converge_at_their_order():
    """dy/dt = -y t on [0, 2] (y = y0 exp(-t^2 / 2)): halving the step divides the error by 2, 4, 16."""
    y0 = torch.tensor([[1.0], [-2.0]], dtype=torch.float64)
    exact = y0 * math.exp(-2.0)
    for solver, order in (("euler", 1), ("midpoint", 2), ("rk4", 4)):
        errors = [float((odeint(lambda t, y: -t * y, y0, 0.0, 2.0, n, solver) - exact).abs().max())
                  for n in (16, 32)]
        assert errors[0] / errors[1] == pytest.approx(2.0**order, rel=0.25), solver
    backwards = odeint(lambda t, y: -t * y, exact, 2.0, 0.0, 64, "rk4")  # t1 < t0 runs backwards
    assert torch.allclose(backwards, y0, atol=1e-6)
    with pytest.raises(ValueError, match="solver must be one of"):
        odeint(lambda t, y: y, y0, 0.0, 1.0, 4, "dopri5")


def test_divergence_exact_and_hutchinson():
    a = torch.tensor([[2.0, 1.0, 0.0], [0.5, -1.0, 3.0], [0.0, 1.0, 0.25]])
    y = torch.randn(4000, 3, generator=torch.Generator().manual_seed(0))
    v, div = divergence(lambda yy: yy @ a.T + yy**2, y)
    assert torch.allclose(v, y @ a.T + y**2)
    assert torch.allclose(div, torch.trace(a) + 2 * y.sum(1), atol=1e-5)
    probe = torch.randint(0, 2, y.shape, generator=torch.Generator().manual_seed(1)).float() * 2 - 1
    _, est = divergence(lambda yy: yy @ a.T + yy**2, y, probe)
    assert float((est - div).mean()) == pytest.approx(0.0, abs=0.1)  # unbiased


def _random_field(path: str, **cfg) -> ConditionalVectorField:
    """A 2-D field with random (non-zero) output weights: a non-trivial flow to test densities on."""
    config = VectorFieldConfig(path=path, theta_dim=2, x_dim=1, hidden_features=16, num_blocks=1, **cfg)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = ConditionalVectorField(config, torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.5]), torch.zeros(1),
                                     torch.ones(1))
        torch.nn.init.normal_(net.net.out.weight, std=0.3)
    return net.eval()


@pytest.mark.parametrize("path", ["flow_matching", "vp", "ve"])
def test_log_prob_of_the_ode_integrates_to_one(path):
    """Whatever the field, the ODE is a change of variables: exp(log_prob) sums to 1 over a grid."""
    net = _random_field(path, steps=16)
    samples = net.sample(20_000, torch.tensor([0.3]), generator=torch.Generator().manual_seed(0))
    lo, hi = samples.quantile(0.0005, 0), samples.quantile(0.9995, 0)
    lo, hi = lo - 0.3 * (hi - lo), hi + 0.3 * (hi - lo)
    n = 120
    g0, g1 = torch.linspace(float(lo[0]), float(hi[0]), n), torch.linspace(float(lo[1]), float(hi[1]), n)
    grid = torch.cartesian_prod(g0, g1)
    lp = net.log_prob(grid, torch.full((grid.shape[0], 1), 0.3))
    mass = float(lp.exp().sum()) * float((g0[1] - g0[0]) * (g1[1] - g1[0]))
    assert torch.isfinite(lp).all() and mass == pytest.approx(1.0, abs=0.03)


MU, SD = 0.7, 0.05  # a narrow Gaussian "posterior" in z-scored units


def _exact_gaussian_output(self, y, t, context):
    """What a perfect network outputs for N(MU, SD^2) data: the path's exact velocity or noise prediction."""
    path, tt = self.path, t[:, None]
    if self.cfg.path == "flow_matching":
        a = 1 - (1 - path.sigma_min) * tt
        var, d = a**2 + tt**2 * SD**2, y - tt * MU
        return (MU + tt * SD**2 / var * d) - (1 - path.sigma_min) * (a / var * d)
    m, sigma = path.mean_sigma(tt)
    return sigma * (y - m * MU) / (m**2 * SD**2 + sigma**2)


@pytest.mark.parametrize("path, mean_tol, sd_tol, lp_tol",
                         [("flow_matching", 0.002, 0.02, 0.02), ("vp", 0.002, 0.02, 0.02), ("ve", 0.006, 0.04, 0.1)])
def test_the_exact_field_of_a_gaussian_gives_it_back(path, mean_tol, sd_tol, lp_tol, monkeypatch):
    """With the exact field in place of the network, the solver draws the Gaussian and log_prob is its density
    (VE is widened by its sigma_min = 0.01 and its base ignores the mean; see sbi_core.nn.vector_field)."""
    monkeypatch.setattr(ConditionalVectorField, "_output", _exact_gaussian_output)
    cfg = VectorFieldConfig(path=path, theta_dim=1, x_dim=1, steps=20, **({"sigma_min": 0.01} if path == "ve" else {}))
    net = ConditionalVectorField(cfg, torch.zeros(1), torch.ones(1), torch.zeros(1), torch.ones(1))
    s = net.sample(20_000, torch.zeros(1), generator=torch.Generator().manual_seed(0))
    assert float(s.mean()) == pytest.approx(MU, abs=mean_tol) and float(s.std()) == pytest.approx(SD, rel=sd_tol)
    points = torch.tensor([[MU], [MU + SD]])
    exact = -0.5 * ((points[:, 0] - MU) / SD) ** 2 - math.log(SD) - 0.5 * math.log(2 * math.pi)
    assert torch.allclose(net.log_prob(points, torch.zeros(2, 1)), exact, atol=lp_tol)


def test_sampler_error_falls_with_the_step_count(pairs):
    """For a fixed trained network and base noise, the error of the draws against a very fine solution
    falls with the steps for every solver (from 8 steps on: fewer are too coarse for the field's curvature
    near the data end), and RK4's falls fastest."""
    sim, theta, x = pairs
    post = FMPE(sim.prior, hidden_features=32, num_blocks=2, max_epochs=30, patience=100, seed=1).train(theta, x)

    def draws(steps, solver):
        return post.field.with_sampling(steps=steps, solver=solver).sample(
            500, sim.default_observation, generator=torch.Generator().manual_seed(3))

    fine = draws(1000, "rk4")
    errors = {solver: [float((draws(n, solver) - fine).abs().mean()) for n in (8, 16, 32, 64)]
              for solver in ("euler", "midpoint", "rk4")}
    for solver, e in errors.items():
        assert all(b < a for a, b in zip(e, e[1:])), (solver, e)
    assert errors["rk4"][-1] < 0.01 * errors["euler"][-1] and errors["rk4"][-1] < 1e-4, errors


# ---------------------------------------------------------------------------
# the methods' posteriors
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(METHODS))
def test_samples_log_prob_and_support(name, trained):
    post = trained[name]
    x_o = sbi_core.get_simulator("linear_regression").default_observation
    assert isinstance(post, VectorFieldPosterior)
    s = post.sample((40,), x=x_o, seed=0)
    assert s.shape == (40, 2) and torch.isfinite(s).all()
    assert post.sample((2, 3), x=x_o, seed=0).shape == (2, 3, 2)
    lp = post.log_prob(s[:10], x=x_o)
    assert lp.shape == (10,) and torch.isfinite(lp).all()
    assert post.log_prob(s[0], x=x_o).shape == (1,)
    # unnormalised differs by the constant log Z_hat(x) (0 here: a normal prior has no bounds)
    assert torch.allclose(post.log_prob(s[:10], x=x_o, normalize=False), lp, atol=1e-5)
    batched = post.sample_batched(6, torch.stack([x_o, x_o + 0.5]), seed=0)
    assert batched.shape == (2, 6, 2) and torch.isfinite(batched).all()
    z = post.to_base(s[:10], x_o)
    assert z.shape == (10, 2) and torch.isfinite(z).all()


def test_draws_outside_a_bounded_prior_are_rejected():
    sim = sbi_core.get_simulator("two_moons")
    g = torch.Generator().manual_seed(0)
    theta = sim.prior.sample((200,), generator=g)
    post = FMPE(sim.prior, **TINY).train(theta, sim.simulate(theta, generator=g))
    x_o = sim.default_observation
    s = post.sample((300,), x=x_o, seed=0)
    assert torch.isfinite(sim.prior.log_prob(s)).all()  # all inside [-1, 1]^2
    assert 0.0 < post.last_acceptance_rate <= 1.0
    outside = torch.tensor([[1.5, 0.0], [0.0, -3.0]])
    assert torch.isinf(post.log_prob(outside, x=x_o)).all()


@pytest.mark.parametrize("name", list(METHODS))
def test_a_seed_reproduces(name, pairs):
    sim, theta, x = pairs
    x_o = sim.default_observation
    first = METHODS[name](sim.prior, seed=5, **TINY).train(theta, x)
    again = METHODS[name](sim.prior, seed=5, **TINY).train(theta, x)
    other = METHODS[name](sim.prior, seed=6, **TINY).train(theta, x)
    state = torch.random.get_rng_state()
    a, b = first.sample((50,), x=x_o, seed=0), again.sample((50,), x=x_o, seed=0)
    assert torch.equal(a, b)
    assert not torch.equal(a, other.sample((50,), x=x_o, seed=0))
    assert not torch.equal(a, first.sample((50,), x=x_o, seed=1))
    assert torch.equal(torch.random.get_rng_state(), state)  # sampling never touches the global generator


def test_validation_loss_is_deterministic(pairs):
    """With the weights frozen (learning rate 0) every epoch's validation loss is the same number:
    the noise draws are fixed, not the training loss's fresh ones."""
    sim, theta, x = pairs
    est = FMPE(sim.prior, learning_rate=0.0, **{**TINY, "max_epochs": 3})
    est.train(theta, x)
    val = [e["val_loss"] for e in est.last_result.history]
    train = [e["train_loss"] for e in est.last_result.history]
    assert val[0] == val[1] == val[2]
    assert len(set(train)) == 3  # the training loss draws anew


def test_npse_samplers_and_paths(pairs):
    sim, theta, x = pairs
    x_o = sim.default_observation
    ve = NPSE(sim.prior, **TINY).train(theta, x)  # VE by default
    sde = ve.with_sampling(sampler="sde", steps=10)
    assert sde.evaluations_per_sample == 20 and ve.evaluations_per_sample == 40  # 10 x (1 + 1); 10 x 4
    s = sde.sample((30,), x=x_o, seed=0)
    assert s.shape == (30, 2) and torch.isfinite(s).all()
    assert not torch.equal(s, ve.sample((30,), x=x_o, seed=0))
    vp = NPSE(sim.prior, sde="vp", **TINY).train(theta, x)
    assert ve.field.cfg.path == "ve" and vp.field.cfg.path == "vp"
    assert torch.isfinite(vp.log_prob(vp.sample((5,), x=x_o, seed=0), x=x_o)).all()
    assert torch.isfinite(vp.with_sampling(sampler="sde").sample((5,), x=x_o, seed=0)).all()
    with pytest.raises(SBIError, match="'vp'"):
        NPSE(sim.prior, sde="subvp")


def test_saved_posterior_loads_back(trained, tmp_path):
    x_o = sbi_core.get_simulator("linear_regression").default_observation
    for name, post in trained.items():
        post = post.with_default_x(x_o).with_sampling(steps=7, solver="midpoint")
        post.save(tmp_path / f"{name}.pt")
        back = load_posterior(tmp_path / f"{name}.pt")
        assert isinstance(back, VectorFieldPosterior) and back.field.cfg == post.field.cfg
        assert torch.equal(back.sample((20,), seed=3), post.sample((20,), seed=3))
        assert torch.allclose(back.log_prob(post.sample((4,), seed=1)), post.log_prob(post.sample((4,), seed=1)))


def test_wrong_input_says_what_to_fix(pairs, trained):
    sim, theta, x = pairs
    post = trained["fmpe"]
    with pytest.raises(SBIError, match="theta must have shape"):
        FMPE(sim.prior, **TINY).train(theta[:, :1], x)
    with pytest.raises(SBIError, match="one row per theta row"):
        NPSE(sim.prior, **TINY).train(theta, x[:10])
    with pytest.raises(SBIError, match="Give both theta and x"):
        FMPE(sim.prior, **TINY).train(theta)
    with pytest.raises(SBIError, match="has 3 numbers but the model produces 10"):
        post.sample((5,), x=torch.zeros(3))
    with pytest.raises(SBIError, match="NaN or infinite"):
        post.log_prob(theta[:2], x=torch.full((10,), float("nan")))
    with pytest.raises(SBIError, match="solver must be one of"):
        post.with_sampling(solver="dopri5")
    with pytest.raises(SBIError, match="steps must be at least 1"):
        post.with_sampling(steps=0)
    with pytest.raises(SBIError, match="time_exponent must be above -1"):
        FMPE(sim.prior, time_exponent=-2)
    with pytest.raises(SBIError, match="sampler 'sde' is for a diffusion"):
        FMPE(sim.prior, sampler="sde")
    with pytest.raises(TypeError, match="unknown training setting"):
        FMPE(sim.prior, max_epoch=3)


def test_a_learned_summary_trains_with_the_field():
    """A series model: the default summary (a 1-D CNN) trains with the field; observations in the series' shape."""
    sim = sbi_core.get_simulator("ar1_series")
    g = torch.Generator().manual_seed(0)
    theta = sim.prior.sample((100,), generator=g)
    x = sim.simulate(theta, generator=g)
    post = FMPE(sim.prior, embedding="auto", data_shape=sim.data_shape, **{**TINY, "max_epochs": 1}).train(theta, x)
    assert post.field.embedding is not None and post.field.cfg.embedding["kind"] == "cnn1d"
    x_o = sim.default_observation
    s = post.sample((10,), x=x_o.reshape(1, -1), seed=0)
    assert s.shape == (10, 2) and torch.equal(s, post.sample((10,), x=x_o, seed=0))


# ---------------------------------------------------------------------------
# accuracy
# ---------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", list(METHODS))
def test_linear_gaussian_mean_and_covariance(name):
    """Linear regression (a linear-Gaussian model: its posterior is Gaussian and exact) at two observations.

    Measured at 3,000 simulations over 4 observations (largest error of a mean, in posterior sds; sd ratios):
    NPE 0.04-0.22, 0.96-1.05; FMPE 0.12-0.20, 0.99-1.12; NPSE (3 training seeds) 0.12-0.55, 0.90-1.19."""
    sim = sbi_core.get_simulator("linear_regression")
    g = torch.Generator().manual_seed(0)
    theta = sim.prior.sample((3000,), generator=g)
    post = METHODS[name](sim.prior, seed=0).train(theta, sim.simulate(theta, generator=g))
    for seed in (0, 1):
        x_o = sim.simulate(sim.prior.sample((1,), generator=g), generator=g)[0]
        # 2,000 posterior draws (5,000 cost a fifth of the test): their mean is known to 0.02 sd, their
        # sd to 2 % and their correlation to about 0.02 (NPSE's widest sd ratio here: 1.19 with 2,000
        # draws and with 5,000), against 20,000 exact draws (cheap)
        ref = sim.reference_posterior(x_o, 20_000, seed=seed)
        s = post.sample((2000,), x=x_o, seed=seed)
        sd = ref.std(0)
        assert ((s.mean(0) - ref.mean(0)).abs() < 0.6 * sd).all()
        assert torch.allclose(s.std(0), sd, rtol=0.25)
        corr = lambda a: float(torch.corrcoef(a.T)[0, 1])  # noqa: E731
        assert corr(s) == pytest.approx(corr(ref), abs=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["tsfmpe", "tsnpse"])
def test_truncated_variants_propose_from_a_shrinking_region_and_close_in_on_the_posterior(method):
    """TSFMPE and TSNPSE: TSNPE's truncated proposals on a vector field, plain loss on every round's pairs.

    Two moons, 3 rounds of 400 simulations, a small network (measured, training seeds 0 / 1: the region
    1.0 -> 0.43 -> 0.15 and 0.25 -> 0.22 of the prior for TSFMPE, 0.75 -> 0.34 and 0.66 -> 0.37 for TSNPSE;
    the C2ST against the exact posterior 0.65 -> 0.53 and 0.66 -> 0.53, 0.92 -> 0.48 and 0.96 -> 0.57)."""
    from sbi_core.methods.tsnpe import EXPENSIVE_REFERENCES, TruncatedPrior

    sim = sbi_core.get_simulator("two_moons")
    events = []
    run = sbi_core.run_sequential(sim, sim.prior, sim.default_observation, method=method, num_rounds=3,
                                  simulations_per_round=400, max_epochs=60, hidden_features=32, num_transforms=2,
                                  num_posterior_samples=1000, seed=0, on_event=events.append)
    assert run.rounds[0].proposal is sim.prior
    assert all(isinstance(r.proposal, TruncatedPrior) for r in run.rounds[1:])
    fractions = [e["proposal_fraction"] for e in events if e["type"] == "round"]
    assert fractions[0] == 1.0 and 0 < fractions[2] < 0.6, fractions
    for r in run.rounds[1:]:
        assert r.proposal.num_reference == EXPENSIVE_REFERENCES  # not 100,000 ODE densities a round
        assert r.proposal.contains(r.theta).all()  # every later round's parameters came from its region
    first, last = run.rounds[0].reference_c2st, run.rounds[-1].reference_c2st
    assert last < first and last < 0.62, (first, last)


def test_truncated_variants_are_catalogued_checked_in_their_region_and_written_for_sbi():
    from sbi_core.checks.plan import plan_checks
    from sbi_core.export.script import spec_to_script
    from sbi_core.methods.catalogue import method_info
    from sbi_core.run.spec import RunSpec

    for method, kin in (("tsfmpe", "fmpe"), ("tsnpse", "npse")):
        info = method_info(method)
        assert info.sequential and info.truncated and info.network == "vector_field"
        assert info.options == method_info(kin).options and info.loss_smoothing == method_info(kin).loss_smoothing
        spec = RunSpec(simulator="two_moons", method=method, num_rounds=3)
        plan = plan_checks(spec)
        assert plan.kind == "truncated" and plan.test_data == "truncated"
        assert info.title.split()[-1] in plan.summary and not plan.applies("zscore")
        script = spec_to_script(spec, "sbi")
        assert f"inference = {kin.upper()}(prior=prior" in script
        assert "RestrictedPrior(prior, accept_reject_fn" in script and "force_first_round_loss=True" in script
    assert steps_per_epoch(10_000, 0.1, "tsfmpe") == steps_per_epoch(10_000, 0.1, "fmpe")


def test_costs_know_the_smaller_batches_and_the_costly_density(trained):
    assert steps_per_epoch(10_000, 0.1, "fmpe") == steps_per_epoch(10_000, 0.1, "npse") > 5 * steps_per_epoch(10_000)
    assert all(post.expensive_log_prob for post in trained.values())  # the round's HDR size reads the samples


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("method", ["fmpe", "npse", "tsfmpe"])
def test_every_page_renders_with_a_finished_run_and_its_loss_is_drawn_smoothed(tmp_path, monkeypatch, method):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from sbi_core.jobs.worker import run_worker
    from sbi_core.run.spec import RunSpec
    from sbi_core.store.runs import RunStore
    from sbi_ui import keys as K

    root = Path(__file__).resolve().parent.parent
    monkeypatch.setenv("SBI_STORE_DIR", str(tmp_path / "store"))
    store = RunStore(tmp_path / "store")
    rounds = 2 if method.startswith("ts") else 1  # TSFMPE: a truncated second round for the Rounds page
    rid = store.create_run(RunSpec(simulator="two_moons", method=method, num_rounds=rounds, simulations_per_round=300,
                                   max_epochs=6, hidden_features=16, num_transforms=2, num_posterior_samples=200,
                                   num_threads=1, title=f"every page: {method}"))
    assert run_worker(store, rid) == "done", store.get_run(rid).message
    at = AppTest.from_file(str(root / "app.py"), default_timeout=120)
    at.query_params[K.QP_RUN] = rid
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    for name in sorted(p.name for p in (root / "pages").glob("*.py") if p.name != "__init__.py"):
        at.switch_page(f"pages/{name}")
        at.run()
        assert not at.exception, (name, [e.value for e in at.exception])
        assert not [e.value for e in at.error if "Something went wrong" in str(e.value)], name
    at.switch_page("pages/train.py")
    at.run()
    loss = next(c for c in at.get("plotly_chart") if "train_loss_chart" in str(getattr(c, "key", "")))
    names = [t.get("name") for t in json.loads(loss.proto.spec)["data"]]
    assert "training loss (mean of 5 epochs)" in names and "training loss, each epoch" in names

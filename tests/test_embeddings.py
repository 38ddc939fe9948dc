"""Embedding networks (learned summaries): shapes, sets of trials, training hooks, persistence,
the estimators and posteriors that read shaped data, and (slow) accuracy on two models with exact posteriors."""

import json
import math
import pickle

import pytest
import torch

import sbi_core
from sbi_core.errors import SBIError
from sbi_core.methods.pooled import PooledPairs
from sbi_core.nn.embeddings import (
    EMBEDDINGS, Embedding, EmbeddingConfig, build_embedding, data_shape_for, drop_trials, embedding_config, make_embedding,
    resolve_embedding,
)
from sbi_core.nn.flows import ConditionalFlow, FlowConfig, build_flow
from sbi_core.nn.ratio_net import RatioNet, build_ratio_net
from sbi_core.nn.training import TrainConfig, train
from sbi_core.posteriors.files import load_posterior
from sbi_core.stats.priors import Prior
from sbi_core.stats.shapes import DataShape

SHAPES = {
    "mlp": DataShape.vector(7),
    "cnn1d": DataShape.series(40, channels=2),
    "gru": DataShape.series(25),
    "cnn2d": DataShape.image(12, 10, channels=3),
    "set": DataShape.trials(6, 2),
    "set_attention": DataShape.trials(6, 2),
}
SMALL = dict(features=5, hidden=16)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _net(kind, seed=0, **options):
    shape = SHAPES[kind]
    x = torch.randn(30, shape.size, generator=_gen(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_embedding(embedding_config(kind, shape, **{**SMALL, **options}), x), x


def _sets(n=4, m=6, d=2, present=(6, 3, 1, 4), seed=1):
    """``(n, m * d)`` flat sets with ``present[i]`` trials each (trailing NaN rows)."""
    x = torch.randn(n, m, d, generator=_gen(seed))
    for i, k in enumerate(present):
        x[i, k:] = float("nan")
    return x.reshape(n, m * d)


# ---- the networks ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", EMBEDDINGS)
def test_every_kind_maps_flat_rows_to_features_and_passes_gradients(kind):
    net, x = _net(kind)
    x = x.clone().requires_grad_(True)
    out = net(x)
    assert out.shape == (30, 5) and torch.isfinite(out).all()
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.parameters())


def test_cnn1d_options_causal_and_plain_keep_shapes():
    for options in ({"causal": True}, {"residual": False, "design": "dilated"}, {"pooling": "mean_max"},
                    {"kernel_size": 3}, {"design": "dilated", "pooling": "mean_max"}):
        net, x = _net("cnn1d", **options)
        assert net(x).shape == (30, 5)
    causal, x = _net("cnn1d", causal=True, design="dilated")
    # a causal stack without pooling: the features at time t do not change when later times do
    later = x.clone().reshape(30, 2, 40)
    later[:, :, 30:] += 1.0
    c, t = causal.shape.dims

    def trunk(v):
        h = causal.lift((v.reshape(-1, c, t) - causal.mean[:, None]) / causal.std[:, None])
        for i, conv in enumerate(causal.convs):
            pad = (causal.config.kernel_size - 1) * 2**i
            h = h + torch.relu(conv(torch.nn.functional.pad(h, (pad, 0))))
        return h

    assert torch.allclose(trunk(x)[..., :30], trunk(later.reshape(30, -1))[..., :30], atol=1e-6)


def test_statistics_are_kept_as_buffers_and_ignore_missing_values():
    x = _sets(present=(6, 3, 1, 4))
    net = build_embedding(embedding_config("set", DataShape.trials(6, 2), **SMALL), x)
    rows = x.reshape(-1, 2)
    rows = rows[~torch.isnan(rows).all(1)]
    assert torch.allclose(net.mean, rows.mean(0), atol=1e-5) and torch.allclose(net.std, rows.std(0), atol=1e-5)
    assert set(dict(net.named_buffers())) == {"mean", "std"}


@pytest.mark.parametrize("kind", ["set", "set_attention"])
def test_set_networks_are_exactly_permutation_invariant(kind):
    net, _ = _net(kind)
    x = torch.randn(5, 6, 2, generator=_gen(3))
    perm = torch.randperm(6, generator=_gen(4))
    with torch.no_grad():
        assert torch.allclose(net(x.reshape(5, -1)), net(x[:, perm].reshape(5, -1)), atol=1e-5)


@pytest.mark.parametrize("kind", ["set", "set_attention"])
def test_missing_trials_are_ignored_wherever_they_are(kind):
    net, _ = _net(kind)
    trials = torch.randn(3, 2, generator=_gen(5))
    front = torch.full((6, 2), float("nan"))
    front[:3] = trials
    spread = torch.full((6, 2), float("nan"))
    spread[[5, 1, 3]] = trials
    with torch.no_grad():
        a, b = net(front.reshape(1, -1)), net(spread.reshape(1, -1))
        assert torch.isfinite(a).all() and torch.allclose(a, b, atol=1e-5)
        # a different number of trials (the same values, one more) gives a different summary
        more = front.clone()
        more[3] = trials[0]
        assert not torch.allclose(a, net(more.reshape(1, -1)), atol=1e-4)


def test_trial_subsets_are_reproducible_and_remove_whole_trials_only():
    shape = DataShape.trials(6, 2)
    x = _sets(n=200, present=[6, 3, 1, 4] * 50)
    a, b = drop_trials(x, shape, _gen(7)), drop_trials(x, shape, _gen(7))
    assert torch.equal(a.isnan(), b.isnan()) and torch.equal(torch.nan_to_num(a), torch.nan_to_num(b))
    t, before = a.reshape(200, 6, 2), x.reshape(200, 6, 2)
    missing = t.isnan()
    assert torch.equal(missing.all(-1), missing.any(-1))  # whole trials only
    kept = (~missing.all(-1)).sum(1)
    had = (~before.isnan().all(-1)).sum(1)
    assert (kept >= 1).all() and (kept <= had).all() and (kept < had).any()
    assert (~missing.all(-1))[:, :1].all() and (missing.all(-1).int().diff(dim=1) >= 0).all()  # trailing NaN
    for i in range(200):  # every kept trial is one of the row's own trials
        own = before[i][~before[i].isnan().all(-1)]
        for trial in t[i][~missing[i].all(-1)]:
            assert (own == trial).all(-1).any()
    net, _ = _net("set")
    series = torch.randn(5, 80)
    assert _net("cnn1d")[0].augment(series, _gen(0)) is series  # other kinds: identity
    assert net.augment(x, _gen(7)).isnan().sum() == a.isnan().sum()


def test_resolve_and_shapes_say_what_fits():
    assert resolve_embedding("auto", DataShape.vector(3)) is None
    assert resolve_embedding("auto", DataShape.image(8, 8)) == "cnn2d"
    assert resolve_embedding("auto", DataShape.trials(5, 1)) == "set"
    with pytest.raises(SBIError, match="'cnn1d', 'gru' or 'mlp'"):
        resolve_embedding("cnn2d", DataShape.series(30))
    with pytest.raises(SBIError, match="'set' or 'set_attention'"):
        resolve_embedding(None, DataShape.trials(5, 1))
    assert data_shape_for("cnn1d", (10, 30)) == DataShape.series(30)
    assert data_shape_for("gru", (10, 2, 30)) == DataShape.series(30, 2)
    assert data_shape_for("cnn2d", (10, 3, 8, 9)) == DataShape.image(8, 9, 3)
    assert data_shape_for("set", (10, 20)) == DataShape.trials(20, 1)
    assert data_shape_for(None, (10, 4)) == DataShape.vector(4)
    assert data_shape_for("auto", (10, 50, 2)) == DataShape.trials(50, 2)
    with pytest.raises(SBIError, match="height and width"):
        data_shape_for("cnn2d", (10, 64))


# ---- flows, classifiers, payloads -------------------------------------------------------
@pytest.mark.parametrize("kind", EMBEDDINGS)
def test_flow_payload_round_trip_with_an_embedding(kind):
    shape = SHAPES[kind]
    theta = torch.randn(40, 2, generator=_gen(0))
    x = _sets(n=40, present=[6, 2, 1, 5] * 10) if shape.kind == "trials" else torch.randn(40, shape.size)
    flow = build_flow("nsf", theta, x, hidden_features=8, num_transforms=1, embedding=kind, data_shape=shape,
                      embedding_features=4)
    assert flow.cfg.context_features == 4 and flow.cfg.embedding["kind"] == kind
    payload = flow.to_payload()
    again = ConditionalFlow.from_payload(pickle.loads(pickle.dumps(payload)))
    with torch.no_grad():
        lp = flow.log_prob(theta, x)
        assert torch.isfinite(lp).all() and torch.allclose(lp, again.log_prob(theta, x))


def test_embedding_configs_are_json_and_rebuild_the_same_network():
    net, x = _net("cnn1d", causal=True)
    text = json.dumps(net.config.to_dict())
    again = make_embedding(EmbeddingConfig.from_dict(json.loads(text)))
    again.load_state_dict(net.state_dict())
    assert again.config == net.config and torch.equal(again(x), net(x))


def test_the_gaussian_guide_changes_gradients_not_loss_values():
    from sbi_core.methods.npe import MaximumLikelihood, _guided_loss
    from sbi_core.methods.snpe import AtomicLoss

    theta, x = torch.randn(40, 2, generator=_gen(0)), _sets(n=40, present=[6, 2, 1, 5] * 10)
    flow = build_flow("nsf", theta, x, hidden_features=8, num_transforms=1, embedding="set",
                      data_shape=DataShape.trials(6, 2))
    log_q, gaussian = flow.log_prob_and_gaussian(theta, x)
    assert torch.allclose(log_q, flow.log_prob(theta, x), atol=1e-5) and gaussian.shape == (40,)
    for rule, r in ((MaximumLikelihood(), 0), (AtomicLoss(4), 1)):
        plain = rule(flow.log_prob, lambda t: torch.zeros(len(t)), theta, x, _gen(1), r)
        guided = _guided_loss(flow, lambda t: torch.zeros(len(t)), rule, r, theta, x, _gen(1))
        assert torch.allclose(plain, guided, atol=1e-5)
        grads = []
        for loss in (plain, guided):
            flow.zero_grad()
            loss.mean().backward()
            grads.append(flow.affine.log_scale.grad.clone())
        assert not torch.allclose(grads[0], grads[1])


def test_old_payloads_without_embedding_keys_load_unchanged():
    theta, x = torch.randn(50, 2), torch.randn(50, 3)
    flow = build_flow("maf", theta, x, hidden_features=8, num_transforms=1)
    payload = flow.to_payload()
    payload["config"].pop("embedding")
    old = ConditionalFlow.from_payload(payload)
    assert old.cfg.embedding is None and old.embedding is None
    assert torch.allclose(old.log_prob(theta, x), flow.log_prob(theta, x))
    assert torch.equal(old.augment(x, _gen(0)), x)
    net = build_ratio_net(theta, x, hidden_features=8)
    payload = net.to_payload()
    payload["config"].pop("embedding")
    assert torch.allclose(RatioNet.from_payload(payload)(theta, x), net(theta, x))
    assert FlowConfig(kind="nsf", theta_dim=1, x_dim=2).embedding is None


def test_ratio_net_with_a_set_embedding_round_trips():
    theta, x = torch.randn(40, 1), _sets(n=40, present=[6, 2, 1, 5] * 10)
    net = build_ratio_net(theta, x, hidden_features=8, embedding="set_attention",
                          data_shape=DataShape.trials(6, 2), embedding_features=4)
    again = RatioNet.from_payload(net.to_payload())
    with torch.no_grad():
        assert torch.isfinite(net(theta, x)).all() and torch.allclose(net(theta, x), again(theta, x))


def test_training_uses_the_hook_reproducibly_and_leaves_other_networks_alone():
    theta, x = torch.randn(64, 1, generator=_gen(0)), _sets(n=64, present=[6] * 64)

    def fresh(kind):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return build_flow("nsf", theta, x if kind else x[:, :3], hidden_features=8, num_transforms=1,
                              embedding=kind, data_shape=DataShape.trials(6, 2) if kind else None)

    def run(flow, data):
        thinned = []

        def loss(th, xb, g):
            thinned.append(int(xb.isnan().any(-1).sum()))
            return -flow.log_prob(th, xb)

        history = train(flow, theta, data, loss, TrainConfig(max_epochs=2), generator=_gen(3)).history
        return [h["train_loss"] for h in history], thinned

    first = run(fresh("set"), x)
    assert run(fresh("set"), x) == first
    assert sum(first[1]) > 0  # full sets were thinned: some rows lost trials
    plain = run(fresh(None), x[:, :3])
    assert sum(plain[1]) == 0 and run(fresh(None), x[:, :3]) == plain


def test_pooled_pairs_keep_sets_with_missing_trials_and_drop_partial_ones():
    prior = Prior.from_spec([{"name": "a", "dist": "normal", "loc": 0.0, "scale": 1.0}])
    x = _sets(n=4, present=(6, 3, 1, 4)).reshape(4, 6, 2)
    x[3, 0, 1] = float("nan")  # a partly missing trial: invalid
    pairs = PooledPairs(prior, embedding="set")
    assert pairs.append(torch.zeros(4, 1), x) == 1
    assert pairs.data_shape == DataShape.trials(6, 2) and pairs.first()[1].shape == (3, 12)
    with pytest.raises(SBIError, match="got a batch of shape"):
        pairs.append(torch.zeros(2, 1), torch.zeros(2, 7, 2))
    assert pairs.append(torch.zeros(2, 1), torch.zeros(2, 4, 2)) == 0  # fewer trials: padded


# ---- estimators and posteriors ------------------------------------------------------------
PRIOR = Prior.from_spec([{"name": "a", "dist": "uniform", "low": -1.0, "high": 1.0}])
TINY = dict(hidden_features=8, num_transforms=1, max_epochs=2, embedding_features=4)


def _series(n=120, t=20, seed=0):
    g = _gen(seed)
    theta = PRIOR.sample((n,), generator=g)
    return theta, theta + 0.5 * torch.randn(n, t, generator=g)


def test_npe_with_cnn1d_trains_on_series_and_reads_them_in_any_form(tmp_path):
    theta, x = _series()
    post = sbi_core.NPE(PRIOR, embedding="cnn1d", **TINY).train(theta, x)
    assert post.data_shape == DataShape.series(20)
    assert post.sample((5,), x=x[0], seed=0).shape == (5, 1)
    assert torch.equal(post.sample((5,), x=x[0][None], seed=0), post.sample((5,), x=x[0], seed=0))
    assert post.log_prob(theta[:3], x=x[0]).shape == (3,)
    with pytest.raises(SBIError, match=r"series of 20 time points.*got shape \(19,\)"):
        post.sample((5,), x=x[0, :19])
    assert post.sample_batched(3, x[:4], seed=0).shape == (4, 3, 1)
    post.save(tmp_path / "p.pt")
    back = load_posterior(tmp_path / "p.pt")
    assert back.data_shape == post.data_shape
    assert torch.allclose(back.log_prob(theta[:3], x=x[0]), post.log_prob(theta[:3], x=x[0]))


@pytest.mark.parametrize("method", ["npe", "nre"])
def test_an_embedding_given_with_options_is_built_with_them(method):
    # {"kind": ..., options} reaches the network (the options were once dropped, leaving the kind's defaults)
    theta, x = _series()
    emb = {"kind": "cnn1d", "design": "dilated", "hidden": 8, "kernel_size": 5}
    sizes = dict(TINY, num_transforms=None) if method == "nre" else TINY  # NRE's net has no transforms
    est = getattr(sbi_core, method.upper())(PRIOR, embedding=emb, **{k: v for k, v in sizes.items() if v is not None})
    est.train(theta, x)
    nets = [m for m in est.__dict__.values() if isinstance(m, torch.nn.Module)]
    cfgs = [m.config for net in nets for m in net.modules() if isinstance(m, Embedding)]
    assert [(c.design, c.hidden, c.kernel_size) for c in cfgs] == [("dilated", 8, 5)]


def test_npe_reads_multichannel_series_and_images_in_their_shape():
    theta, x = _series(t=24)
    post = sbi_core.NPE(PRIOR, embedding="gru", **TINY).train(theta, x.reshape(-1, 2, 12))
    assert post.data_shape == DataShape.series(12, 2)
    assert post.sample((2,), x=x[0].reshape(2, 12), seed=0).shape == (2, 1)
    post = sbi_core.NPE(PRIOR, embedding="cnn2d", **TINY).train(theta, x.reshape(-1, 4, 6))
    assert post.data_shape == DataShape.image(4, 6)
    assert torch.equal(post.sample((2,), x=x[0].reshape(4, 6), seed=0), post.sample((2,), x=x[0], seed=0))


def test_npe_with_a_set_answers_any_number_of_trials_and_refuses_too_many():
    g = _gen(2)
    theta = PRIOR.sample((150,), generator=g)
    x = theta[:, None, :] + torch.randn(150, 8, 1, generator=g)
    npe = sbi_core.NPE(PRIOR, embedding="set", **TINY)
    post = npe.train(theta, x)
    assert post.data_shape == DataShape.trials(8, 1)
    for n in (1, 3, 8):
        assert post.sample((4,), x=x[0, :n], seed=0).shape == (4, 1)
    assert torch.equal(post.sample((4,), x=x[0, :3, 0], seed=0), post.sample((4,), x=x[0, :3], seed=0))
    with pytest.raises(SBIError, match="9 trials.*at most 8"):
        post.sample((4,), x=torch.zeros(9, 1))
    xs = torch.full((2, 8), float("nan"))
    xs[0, :2], xs[1] = x[0, :2, 0], x[1, :, 0]
    assert post.sample_batched(3, xs, seed=0).shape == (2, 3, 1)
    xs[0, 5] = 1.0  # fine: a trial present after a missing one
    post.sample_batched(3, xs, seed=0)
    back = pickle.loads(pickle.dumps(npe))  # a checkpoint holds the estimator
    assert back.data_shape == npe.data_shape


def test_embedding_settings_are_checked_early_and_methods_without_networks_refuse_them():
    with pytest.raises(SBIError, match="one of"):
        sbi_core.NPE(PRIOR, embedding="wavelet")
    with pytest.raises(SBIError, match="cnn2d embedding reads an image"):
        sbi_core.NPE(PRIOR, embedding="cnn2d", data_shape={"kind": "series", "shape": [30]})
    theta, x = _series()
    with pytest.raises(SBIError, match="NLE"):
        sbi_core.NLE(PRIOR, embedding="cnn1d")
    # repeated trials: NLE models one trial and sums over the set (tests/test_nle_trials.py)
    sbi_core.NLE(PRIOR, data_shape=DataShape.trials(10, 2))
    sbi_core.NLE(PRIOR, embedding="auto", data_shape=DataShape.series(20))  # a series: its flat numbers


@pytest.mark.parametrize("name", ["npe", "snpe", "tsnpe", "nre", "snre", "nle", "snle"])
def test_registry_builds_take_embedding_and_data_shape(name):
    from sbi_core.methods.registry import get_method

    est = get_method(name).build(PRIOR, density_estimator="nsf", hidden_features=8, num_transforms=1, seed=0,
                                 embedding="auto", data_shape=DataShape.vector(3), max_epochs=1)
    assert est.embedding in ("auto", None)


def test_nre_with_a_set_embedding_samples_any_number_of_trials():
    g = _gen(4)
    theta = PRIOR.sample((120,), generator=g)
    x = theta[:, None, :] + torch.randn(120, 5, 1, generator=g)
    post = sbi_core.NRE(PRIOR, embedding="set", hidden_features=8, max_epochs=2, embedding_features=4,
                        num_chains=4, warmup=5).train(theta, x)
    assert post.data_shape == DataShape.trials(5, 1)
    assert post.sample((8,), x=x[0, :2], seed=0).shape == (8, 1)
    assert torch.isfinite(post.log_prob(theta[:3], x=x[0, :2])).all()


def test_vector_estimators_are_unchanged_by_the_embedding_plumbing():
    """``embedding=None`` and ``"auto"`` on a vector build the very network of before."""
    theta, x = _series(t=3)
    a = sbi_core.NPE(PRIOR, hidden_features=8, num_transforms=1, max_epochs=2).train(theta, x)
    b = sbi_core.NPE(PRIOR, hidden_features=8, num_transforms=1, max_epochs=2, embedding="auto",
                     data_shape=DataShape.vector(3)).train(theta, x)
    assert a.flow.cfg.embedding is None and b.flow.cfg.embedding is None
    assert torch.equal(a.sample((5,), x=x[0], seed=0), b.sample((5,), x=x[0], seed=0))
    assert a.data_shape == DataShape.vector(3)


# ---- accuracy (slow) -----------------------------------------------------------------------
@pytest.mark.slow
def test_set_npe_matches_the_conjugate_posterior_at_1_5_and_20_trials():
    """theta ~ N(0, 1), x_j ~ N(theta, 1): with n trials the posterior is N(sum x / (1 + n), 1 / (1 + n)).

    Sample means and standard deviations: without the Gaussian guide of :mod:`sbi_core.methods.npe`
    about 0.3 % of the draws at 20 trials sat at prior-scale distances (standard deviation 1.5 times
    the exact one).
    """
    prior = Prior.from_spec([{"name": "mu", "dist": "normal", "loc": 0.0, "scale": 1.0}])
    g = _gen(0)
    theta = torch.randn(3000, 1, generator=g)
    x = theta[:, None, :] + torch.randn(3000, 20, 1, generator=g)
    post = sbi_core.NPE(prior, embedding="set", hidden_features=32, num_transforms=2, seed=0).train(theta, x)
    obs = torch.randn(8, 1, generator=_gen(9))
    obs = obs[:, None, :] + torch.randn(8, 20, 1, generator=_gen(10))
    for n in (1, 5, 20):
        mean_err, sd_ratio = [], []
        for i in range(8):
            s = post.sample((4000,), x=obs[i, :n], seed=i)[:, 0]
            mean, sd = float(obs[i, :n].sum()) / (1 + n), 1 / math.sqrt(1 + n)
            mean_err.append(abs(float(s.mean()) - mean) / sd)
            sd_ratio.append(float(s.std()) / sd)
        assert sum(mean_err) / 8 < 0.3, (n, mean_err)  # measured 0.14, 0.03, 0.07
        assert abs(sum(sd_ratio) / 8 - 1) < 0.25, (n, sd_ratio)  # measured 0.98, 0.97, 1.06


@pytest.mark.slow
def test_cnn1d_npe_recovers_an_ar1_coefficient_like_the_exact_grid_posterior():
    """x_t = phi x_{t-1} + e_t (x_0 = 0, e_t ~ N(0, 1), T = 50), phi ~ U(-0.9, 0.9)."""
    prior = Prior.from_spec([{"name": "phi", "dist": "uniform", "low": -0.9, "high": 0.9}])

    def simulate(phi, g):
        x, prev = torch.zeros(len(phi), 50), torch.zeros(len(phi))
        noise = torch.randn(len(phi), 50, generator=g)
        for t in range(50):
            prev = phi[:, 0] * prev + noise[:, t]
            x[:, t] = prev
        return x

    g = _gen(0)
    theta = prior.sample((3000,), generator=g)
    post = sbi_core.NPE(prior, embedding="cnn1d", hidden_features=32, num_transforms=2, seed=0).train(
        theta, simulate(theta, g))
    true = prior.sample((8,), generator=_gen(5))
    obs = simulate(true, _gen(6))
    grid = torch.linspace(-0.9, 0.9, 2001, dtype=torch.float64)
    mean_err, sd_ratio = [], []
    for i in range(8):
        xs = obs[i].double()
        prev = torch.cat([torch.zeros(1, dtype=torch.float64), xs[:-1]])
        w = torch.softmax(-0.5 * ((xs[None] - grid[:, None] * prev[None]) ** 2).sum(1), 0)
        mean = float((w * grid).sum())
        sd = float((w * (grid - mean) ** 2).sum().sqrt())
        s = post.sample((4000,), x=obs[i], seed=i)[:, 0]
        mean_err.append(abs(float(s.mean()) - mean) / sd)
        sd_ratio.append(float(s.std()) / sd)
    assert sum(mean_err) / 8 < 0.5, mean_err  # measured 0.28
    assert 0.75 < sum(sd_ratio) / 8 < 1.33, sd_ratio  # measured 0.93


@pytest.mark.parametrize("t", [100, 37, 8, 5])
def test_a_strided_cnn1d_reads_any_length_like_the_pyramid(t):
    shape = DataShape.series(t)
    nets = {d: make_embedding(embedding_config({"kind": "cnn1d", "design": d}, shape)) for d in ("pyramid", "strided")}
    assert sum(p.numel() for p in nets["strided"].parameters()) == sum(p.numel() for p in nets["pyramid"].parameters())
    assert nets["strided"](torch.randn(3, t)).shape == nets["pyramid"](torch.randn(3, t)).shape


def test_a_series_is_read_by_the_strided_cnn_unless_a_saved_config_says_pyramid():
    """The strided design is the default (faster and closer to the exact posterior on AR(1): see
    ``CONV1D_DESIGNS``); a network saved with the pyramid design is rebuilt as a pyramid, and the two
    compute different summaries from the same weights (so the design must travel with the weights)."""
    shape = DataShape.series(100)
    default = embedding_config("auto", shape)
    assert (default.kind, default.design) == ("cnn1d", "strided")
    saved = embedding_config({"kind": "cnn1d", "design": "pyramid"}, shape).to_dict()
    assert EmbeddingConfig.from_dict(saved).design == "pyramid"
    torch.manual_seed(0)
    pyramid = make_embedding(EmbeddingConfig.from_dict(saved))
    strided = make_embedding(default)
    strided.load_state_dict(pyramid.state_dict())
    x = torch.randn(4, 100)
    assert not torch.allclose(pyramid(x), strided(x))

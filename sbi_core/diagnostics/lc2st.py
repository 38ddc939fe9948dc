r"""Is the posterior right *at my observation*? The local classifier two-sample test (L-C2ST).

Global checks (SBC, TARP, coverage) average over observations: a posterior can pass them and
still be wrong at the one ``x_o`` that matters. L-C2ST (Linhart, Gramfort & Rodrigues 2023,
"L-C2ST: Local Diagnostics for Posterior Approximations in Simulation-Based Inference",
NeurIPS, arXiv:2306.03580) tests

    H0(x_o):  q(theta | x_o) = p(theta | x_o)

with a classifier trained once on calibration simulations and evaluated at any ``x_o``.

**Standard L-C2ST** (``variant="standard"``). From ``N`` calibration pairs
``(theta_i, x_i) ~ p(theta) p(x | theta)`` held out from training, draw one
``theta~_i ~ q(theta | x_i)`` each, and train a classifier ``d(theta, x)`` to tell

    class 1: (theta_i, x_i)   (the true joint p(theta, x))   from
    class 0: (theta~_i, x_i)  (the estimated joint q(theta | x) p(x)).

The Bayes-optimal classifier is ``d*(theta, x) = p(theta | x) / (p(theta | x) + q(theta | x))``,
so ``H0(x_o)`` holds iff ``d*(theta, x_o) = 1/2`` for ``q(. | x_o)``-almost every ``theta``
(the paper's theorem 1). The statistic is the mean squared distance to chance over ``n``
draws ``theta_1..theta_n ~ q(theta | x_o)`` (``num_posterior_samples``; the paper's "MSE" statistic):

    T(x_o) = (1/n) sum_j (d(theta_j, x_o) - 1/2)^2.

Its null distribution comes from the same classifier trained ``H`` times (``num_null``) on the same
rows with the class labels permuted (exchangeable when ``q = p``), each evaluated at the same
``(theta_j, x_o)``; the p-value is the permutation test's

    p = (1 + #{h : T_h >= T(x_o)}) / (H + 1).

None of the ``H + 1`` classifiers depends on ``x_o``: they are trained once
(:meth:`LC2ST.fit`) and every observation then costs ``n`` posterior draws and ``H + 1``
forward passes (:meth:`LC2ST.test`).

**L-C2ST-NF** (``variant="nf"``, the paper's section 3.2). When ``q`` is a normalizing flow
``theta = T(z; x)``, ``z ~ N(0, I)``, the test moves to the flow's base space: ``q(. | x) = p(. | x)``
iff ``z = T^{-1}(theta; x)`` is ``N(0, I)`` and independent of ``x`` under the true joint
(theorem 4, eq. 17). So the classes are

    class 1: (T^{-1}(theta_i; x_i), x_i)   and   class 0: (z_i, x_i),  z_i ~ N(0, I),

the classifier is evaluated at ``x_o`` on ``z_j ~ N(0, I)`` (no posterior draws), and the null
classifiers are trained on ``N(0, I)`` draws in *both* classes: they depend only on the
calibration ``x_i``, not on the posterior nor on ``x_o``, so they are trained once and cached
(:func:`null_cache_info`) for every posterior (every round, every run) tested on the same
calibration set. The posterior must offer ``to_base(theta (N, D), xs (N, K)) -> z (N, D')``
(:meth:`sbi_core.Posterior.to_base`); ``variant="auto"`` takes NF when it does.

**Local P-P plot** (the paper's figure 3). The empirical CDF of the predicted probabilities
``d(theta_j, x_o)`` on a grid of levels ``a`` in ``[0, 1]``, ``F(a) = #{j : d_j <= a} / n``; under
``H0`` it is the step of a point mass at ``1/2``. The null classifiers' CDFs give a band (their
``alpha/2`` and ``1 - alpha/2`` quantiles at each ``a``). Mass below ``1/2`` (draws the classifier
calls "estimated") marks where ``q`` puts more weight than ``p`` (``q`` too narrow, or off-centre
there); mass above, where it puts less.

**Classifier** (``classifier``): ``"mlp"`` (default), ``H + 1`` two-hidden-layer MLPs trained as
one batched network with early stopping (:mod:`.ensemble`); or ``"sklearn"``: scikit-learn's
``MLPClassifier`` with sbi's defaults (hidden ``(10 D, 10 D)``, adam, early stopping with 50
epochs' patience), fitted one after another (slower; for comparison). Inputs are z-scored with
the calibration set's statistics (both classes pooled, so permutations leave them unchanged).

**Shapes.** ``thetas (N, D)``, ``xs (N, K)`` (rows with NaN or infinity dropped and counted),
``x_obs (K,)`` or ``(1, K)``; ``posterior.sample((n,), x=x_obs, seed=...)`` returns ``(n, D)``
(with ``sample_batched(L, xs, generator=)`` the calibration draws come in one pass).
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from torch import Tensor

from sbi_core.diagnostics.batched import _sample_one, drop_invalid, sample_for_datasets
from sbi_core.diagnostics.ensemble import EnsembleMLP, EnsembleSettings, train_ensemble
from sbi_core.errors import SBIError

__all__ = ["LC2ST", "run_lc2st", "null_cache_info", "clear_null_cache", "NUM_NULL", "NUM_POSTERIOR_SAMPLES", "MIN_CALIBRATION",
           "VARIANTS", "CLASSIFIERS", "PP_LEVELS"]

NUM_NULL = 100  # H: classifiers trained under the null
NUM_POSTERIOR_SAMPLES = 1000  # n: evaluation draws at x_o
MIN_CALIBRATION = 50  # calibration pairs below which the test cannot tell
VARIANTS = ("auto", "standard", "nf")
CLASSIFIERS = ("mlp", "sklearn")
PP_LEVELS = 101  # grid of the local P-P plot on [0, 1]
_NULL_CACHE_SIZE = 8
_NULL_CACHE: "OrderedDict[str, Any]" = OrderedDict()
_STREAMS = {"calibration": 1, "classifier": 2, "null": 3, "evaluation": 4, "base_draws": 5, "null_draws": 6}


def _seed(seed: int, stream: str) -> int:
    """An independent seed for ``stream``, derived from ``seed`` (no global random state involved)."""
    return int(np.random.SeedSequence([int(seed), _STREAMS[stream]]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _generator(seed: int, stream: str) -> torch.Generator:
    return torch.Generator().manual_seed(_seed(seed, stream))


class _SklearnMembers:
    """``H`` scikit-learn ``MLPClassifier``\\ s with sbi's defaults, one per set of labels (or of features)."""

    def __init__(self, features: Tensor, labels: Tensor, seed: int, theta_dim: int):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        hidden = 10 * theta_dim
        self.fitted = []
        for h in range(labels.shape[0]):
            x = (features if features.ndim == 2 else features[h]).numpy()
            clf = MLPClassifier(hidden_layer_sizes=(hidden, hidden), activation="relu", solver="adam", max_iter=1000,
                                early_stopping=True, n_iter_no_change=50, random_state=seed + h)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                self.fitted.append(clf.fit(x, labels[h].numpy().astype(np.int64)))

    @property
    def members(self) -> int:
        return len(self.fitted)

    def predict_proba(self, x: Tensor) -> Tensor:
        x = torch.as_tensor(x, dtype=torch.float32)
        return torch.stack([torch.as_tensor(c.predict_proba((x if x.ndim == 2 else x[h]).numpy())[:, 1],
                                            dtype=torch.float32) for h, c in enumerate(self.fitted)])


def _train(features: Tensor, labels: Tensor, classifier: str, seed: int, theta_dim: int,
           settings: EnsembleSettings):
    if classifier == "sklearn":
        return _SklearnMembers(features, labels, seed % (2**31), theta_dim)
    return train_ensemble(features, labels, settings, torch.Generator().manual_seed(seed))


def clear_null_cache() -> None:
    """Forget every cached L-C2ST-NF null ensemble."""
    _NULL_CACHE.clear()


def null_cache_info() -> dict:
    """How many L-C2ST-NF null ensembles are cached (at most ``_NULL_CACHE_SIZE``), and their keys."""
    return {"size": len(_NULL_CACHE), "keys": list(_NULL_CACHE)}


def _nf_null(xs_std: Tensor, base_dim: int, num_null: int, classifier: str, seed: int, settings: EnsembleSettings):
    """The ``H`` null classifiers of L-C2ST-NF: ``N(0, I)`` draws in both classes beside the calibration ``x``;
    cached by the calibration set, the base dimension and the training settings."""
    key = hashlib.sha1(xs_std.numpy().tobytes() + repr((base_dim, num_null, classifier, seed, settings)).encode()
                       ).hexdigest()
    if key in _NULL_CACHE:
        _NULL_CACHE.move_to_end(key)
        return _NULL_CACHE[key], True
    n = xs_std.shape[0]
    z = torch.randn(num_null, 2 * n, base_dim, generator=_generator(seed, "null_draws"))
    feats = torch.cat([z, torch.cat([xs_std, xs_std]).expand(num_null, -1, -1)], dim=2)
    labels = torch.cat([torch.ones(n), torch.zeros(n)]).expand(num_null, -1)
    null = _train(feats, labels, classifier, _seed(seed, "null"), base_dim, settings)
    _NULL_CACHE[key] = null
    while len(_NULL_CACHE) > _NULL_CACHE_SIZE:
        _NULL_CACHE.popitem(last=False)
    return null, False


def _observation(x_obs, k: int) -> Tensor:
    """``x_obs`` as a finite ``(K,)`` float32 tensor of ``k`` numbers, or an :class:`SBIError` saying what is wrong."""
    x = torch.as_tensor(x_obs.detach() if hasattr(x_obs, "detach") else np.asarray(x_obs, dtype=np.float64),
                        dtype=torch.float32)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1:
        raise SBIError(f"x_obs must be one observation, shape (K,) or (1, K); got shape {tuple(x.shape)}.")
    if x.shape[0] != k:
        raise SBIError(f"The observation has {x.shape[0]} numbers but the calibration simulations have {k}: give "
                       "the observation's numbers in the same order and number as the simulator's output.")
    if not bool(torch.isfinite(x).all()):
        raise SBIError("The observation contains NaN or infinite values; give finite numbers.")
    return x


def _stats(probs: Tensor) -> Tensor:
    """``(...,)``: the MSE statistic ``mean_j (d_j - 1/2)^2`` over the last axis of ``probs``."""
    return ((probs - 0.5) ** 2).mean(-1)


@dataclass
class LC2ST:
    """An L-C2ST fitted on a calibration set: :meth:`fit` once, then :meth:`test` any observation.

    ``observed``: the classifier trained on the real classes; ``null``: the ``H`` null classifiers;
    ``theta_mean``/``theta_std`` ``(D,)`` and ``x_mean``/``x_std`` ``(K,)``: the inputs' z-scoring
    (``theta`` ones unused by NF, whose inputs are already standard); ``base_dim``: ``D'`` (NF).
    """

    posterior: Any
    variant: str
    classifier: str
    observed: Any
    null: Any
    theta_mean: Tensor
    theta_std: Tensor
    x_mean: Tensor
    x_std: Tensor
    num_posterior_samples: int
    seed: int
    n_calibration: int
    n_invalid: int
    base_dim: Optional[int] = None
    null_cached: bool = False
    epochs: Optional[int] = None

    @property
    def num_null(self) -> int:
        return int(self.null.members)

    @classmethod
    def fit(cls, thetas: Tensor, xs: Tensor, posterior: Any, *, num_posterior_samples: int = NUM_POSTERIOR_SAMPLES,
            num_null: int = NUM_NULL, classifier: str = "mlp", seed: int = 0, variant: str = "auto",
            settings: Optional[EnsembleSettings] = None) -> "LC2ST":
        """Train the classifiers on the calibration pairs ``thetas (N, D)``, ``xs (N, K)`` (module docstring)."""
        if variant not in VARIANTS:
            raise SBIError(f"variant must be one of {', '.join(VARIANTS)}; got {variant!r}.")
        if classifier not in CLASSIFIERS:
            raise SBIError(f"classifier must be one of {', '.join(CLASSIFIERS)}; got {classifier!r}.")
        if int(num_null) < 1 or int(num_posterior_samples) < 1:
            raise SBIError("num_null and num_posterior_samples must be at least 1.")
        has_base = callable(getattr(posterior, "to_base", None))
        if variant == "nf" and not has_base:
            raise SBIError("variant='nf' needs a normalizing-flow posterior with a to_base(theta, xs) map to its base "
                           "distribution; use variant='standard' for this posterior.")
        variant = "nf" if variant == "auto" and has_base else "standard" if variant == "auto" else variant
        thetas, xs, n_invalid = drop_invalid(thetas, xs)
        if len(xs) < MIN_CALIBRATION:
            raise SBIError(f"Only {len(xs)} valid calibration simulations: L-C2ST needs at least {MIN_CALIBRATION} "
                           "(a few thousand for a sharp test), simulated apart from the training data.")
        settings = settings or EnsembleSettings()
        x_mean, x_std = xs.mean(0), xs.std(0)
        x_std = torch.where(x_std > 1e-12, x_std, torch.ones_like(x_std))
        xs_std = (xs - x_mean) / x_std
        n, dim = thetas.shape
        if variant == "nf":
            z = torch.as_tensor(posterior.to_base(thetas, xs), dtype=torch.float32).detach()
            if z.ndim != 2 or z.shape[0] != n:
                raise SBIError(f"posterior.to_base returned shape {tuple(z.shape)}; expected ({n}, D).")
            ok = torch.isfinite(z).all(1)
            z, xs_std, n_invalid = z[ok], xs_std[ok], n_invalid + int((~ok).sum())
            n, base_dim = z.shape
            eps = torch.randn(n, base_dim, generator=_generator(seed, "base_draws"))
            feats = torch.cat([torch.cat([z, eps]), torch.cat([xs_std, xs_std])], dim=1)
            labels = torch.cat([torch.ones(n), torch.zeros(n)])[None]
            observed = _train(feats, labels, classifier, _seed(seed, "classifier"), base_dim, settings)
            null, cached = _nf_null(xs_std, base_dim, int(num_null), classifier, seed, settings)
            return cls(posterior, "nf", classifier, observed, null, torch.zeros(dim), torch.ones(dim), x_mean, x_std,
                       int(num_posterior_samples), int(seed), n, n_invalid, base_dim, cached,
                       getattr(observed, "epochs", None))
        theta_q = sample_for_datasets(posterior, xs, 1, seed=_seed(seed, "calibration"))[:, 0, :]
        if theta_q.shape != thetas.shape:
            raise SBIError(f"The posterior's draws have shape {tuple(theta_q.shape)}; expected {tuple(thetas.shape)}.")
        both = torch.cat([thetas, theta_q])
        t_mean, t_std = both.mean(0), both.std(0)
        t_std = torch.where(t_std > 1e-12, t_std, torch.ones_like(t_std))
        feats = torch.cat([(both - t_mean) / t_std, torch.cat([xs_std, xs_std])], dim=1)
        truth = torch.cat([torch.ones(n), torch.zeros(n)])
        g = _generator(seed, "null_draws")
        labels = torch.stack([truth] + [truth[torch.randperm(2 * n, generator=g)] for _ in range(int(num_null))])
        if classifier == "sklearn":
            observed = _train(feats, labels[:1], classifier, _seed(seed, "classifier"), dim, settings)
            null = _train(feats, labels[1:], classifier, _seed(seed, "null"), dim, settings)
        else:
            both_nets = train_ensemble(feats, labels, settings, _generator(seed, "classifier"))
            observed = EnsembleMLP([p[:1] for p in both_nets.params], both_nets.epochs)
            null = EnsembleMLP([p[1:] for p in both_nets.params], both_nets.epochs)
        return cls(posterior, "standard", classifier, observed, null, t_mean, t_std, x_mean, x_std,
                   int(num_posterior_samples), int(seed), n, n_invalid, None, False, getattr(observed, "epochs", None))

    def test(self, x_obs, alpha: float = 0.05) -> dict[str, Any]:
        """The L-C2ST at ``x_obs (K,)``: a dict with ``p_value``, ``statistic``, ``null_statistics`` (list of
        ``H``), ``variant``, ``rejected`` (``p_value < alpha``), ``alpha``, ``pp`` (the local P-P plot:
        ``levels``, ``cdf``, ``null_low``, ``null_high``, lists of :data:`PP_LEVELS`), ``probabilities`` ``(n,)``
        and ``samples`` ``(n, D)`` (the evaluation draws, ``theta`` for standard and ``z`` for NF, as numpy
        arrays: where the classifier tells ``q`` from ``p``), ``num_null``, ``num_posterior_samples``,
        ``n_calibration``, ``n_invalid``, ``classifier``, ``null_cached`` and ``verdict`` (plain words)."""
        x = _observation(x_obs, self.x_mean.shape[0])
        n = self.num_posterior_samples
        x_row = ((x - self.x_mean) / self.x_std)[None].expand(n, -1)
        if self.variant == "nf":
            samples = torch.randn(n, self.base_dim, generator=_generator(self.seed, "evaluation"))
            feats = torch.cat([samples, x_row], dim=1)
        else:
            samples = torch.as_tensor(_sample_one(self.posterior, n, x, _seed(self.seed, "evaluation")),
                                      dtype=torch.float32).reshape(n, -1)
            feats = torch.cat([(samples - self.theta_mean) / self.theta_std, x_row], dim=1)
        probs = self.observed.predict_proba(feats)[0]
        null_probs = self.null.predict_proba(feats)
        stat, null_stats = float(_stats(probs)), _stats(null_probs)
        h = len(null_stats)
        p = (1 + int((null_stats >= stat).sum())) / (h + 1)
        levels = torch.linspace(0, 1, PP_LEVELS)
        cdf = torch.searchsorted(probs.sort().values, levels, right=True) / n  # #{d_j <= a} / n
        null_sorted = null_probs.sort(dim=1).values.contiguous()
        null_cdf = torch.searchsorted(null_sorted, levels.expand(h, -1).contiguous(), right=True) / n  # (H, levels)
        band = torch.quantile(null_cdf, torch.tensor([alpha / 2, 1 - alpha / 2]), dim=0)
        rejected = bool(p < alpha)
        return {
            "p_value": float(p),
            "statistic": stat,
            "null_statistics": [float(s) for s in null_stats],
            "variant": self.variant,
            "rejected": rejected,
            "alpha": float(alpha),
            "pp": {"levels": levels.tolist(), "cdf": cdf.tolist(), "null_low": band[0].tolist(),
                   "null_high": band[1].tolist()},
            "probabilities": probs.numpy(),
            "samples": samples.numpy(),
            "num_null": h,
            "num_posterior_samples": n,
            "n_calibration": self.n_calibration,
            "n_invalid": self.n_invalid,
            "classifier": self.classifier,
            "null_cached": self.null_cached,
            "verdict": _verdict(rejected, float(p), float(alpha), h, self.n_calibration, probs),
        }


def _verdict(rejected: bool, p: float, alpha: float, h: int, n_cal: int, probs: Tensor) -> str:
    """The result in plain words."""
    if not rejected:
        return (f"No evidence against the posterior at your observation (L-C2ST p = {p:.2g}): a classifier trained "
                f"on {n_cal:,} calibration simulations could not tell the estimator's draws here from true "
                f"parameters better than {h} classifiers trained where the estimator is exact. This does not "
                "prove it exact: the test is only as sharp as its classifier and its calibration simulations.")
    low = float((probs < 0.5).float().mean())
    where = (f"{low:.0%} of its draws lie where the classifier calls them the estimator's rather than the truth's: "
             "the estimator puts too much weight there (it is likely too narrow or off-centre here)"
             if low >= 0.5 else
             f"{1 - low:.0%} of its draws lie where the true posterior has more weight than the estimator: "
             "the estimator is likely too wide here, or misses part of the posterior")
    return (f"The posterior at your observation is not to be trusted (L-C2ST p = {p:.2g}, below {alpha:g}): a "
            f"classifier tells the estimator's draws here from true parameters better than all but a few of "
            f"{h} classifiers trained where the estimator is exact. {where[0].upper() + where[1:]}. Train on more "
            "simulations, train longer or use a more flexible estimator, and check again.")


def run_lc2st(thetas: Tensor, xs: Tensor, posterior: Any, x_obs, *,
              num_posterior_samples: int = NUM_POSTERIOR_SAMPLES, num_null: int = NUM_NULL, classifier: str = "mlp",
              seed: int = 0, alpha: float = 0.05, variant: str = "auto",
              settings: Optional[EnsembleSettings] = None) -> dict[str, Any]:
    """L-C2ST of ``posterior`` at ``x_obs (K,)`` from calibration pairs ``thetas (N, D)``, ``xs (N, K)``.

    :meth:`LC2ST.fit` then :meth:`LC2ST.test` (see the module docstring for the maths and the result's keys).
    To test many observations, fit once and call ``test`` for each: the classifiers do not depend on ``x_obs``.
    Deterministic for a given ``seed`` (separate ``torch.Generator`` streams; no global random state is touched).
    """
    xs_ = torch.as_tensor(xs)
    _observation(x_obs, xs_.shape[1] if xs_.ndim == 2 else 1)  # a wrong observation fails before any training
    test = LC2ST.fit(thetas, xs, posterior, num_posterior_samples=num_posterior_samples, num_null=num_null,
                     classifier=classifier, seed=seed, variant=variant, settings=settings)
    return test.test(x_obs, alpha=alpha)

r"""How far a run's posterior is from the exact one: C2ST against the reference posterior, per round.

Five built-in models know their posterior in closed form
(:attr:`~sbi_core.simulators.Simulator.has_reference_posterior`): their
``reference_posterior(x_o)`` draws exact samples of

    p_0(theta | x_o)  ∝  p(x_o | theta) p_0(theta)

under the model's **default** prior ``p_0``. Under any other prior ``p_1``
the posterior is ``p_1(theta | x_o) ∝ p(x_o | theta) p_1(theta)``, a different
distribution, so the comparison applies only when the run's prior is the
model's default (compared as :meth:`~sbi_core.stats.priors.Prior.to_spec`), the
simulator is that built-in and the observation has its ``K`` numbers.
Otherwise the score is ``None`` and :attr:`ReferenceScore.reason` says why in
plain words.

The score is the classifier two-sample test of :mod:`.c2st` (the SBI
benchmark's: an MLP told to separate ``n`` exact samples from ``n`` samples of
the round's posterior, 5-fold cross-validated accuracy; its five folds trained
at once, ``engine="torch"``, see :mod:`.c2st`): 0.5 means the two
sets cannot be told apart (the posterior is right), 1.0 that they are
disjoint. With ``n`` samples a side the accuracy of two equal distributions
scatters by about ``sqrt(0.25 / (2 n))`` around 0.5 (0.022 at ``n = 500``),
so values a few hundredths above 0.5 are noise.

Cost, and the sample size. The classifier has two hidden layers of ``10 D``
units and trains until its loss stops improving, which for two clearly
different sets is the full ``max_iter`` epochs. Measured on one thread of a
busy 2-core machine (sklearn 5-fold, two moons after 200 simulations, C2ST
near 0.87): ``n = 1000`` a side takes 12-22 s, ``n = 500`` 6-14 s, and with
at most 200 epochs ``n = 500`` takes 2 s (``D = 10`` at ``n = 200``: 4 s);
a good posterior (C2ST near 0.5) converges early and takes under 1 s. With the
folds trained at once (``engine="torch"``) ``n = 500`` at 200 epochs takes 0.2-0.3 s
where scikit-learn's five fits take 0.6-0.8 s (quiet machine, one thread). The
score here uses :data:`MAX_ITER` = 200 epochs and
:func:`reference_sample_size`: ``n D^2`` near 2000 within ``[200, 500]``
(500 for ``D <= 2``, 200 from ``D = 3`` on). Fewer samples and epochs make
the classifier weaker, never stronger: the value is a slight *under*statement
of the benchmark's C2ST (two moons: 0.80 where 1000 epochs on 500 samples give
0.87, and 0.53 where they give 0.56; measured with scikit-learn's fits, from
which the folds trained at once differ by at most about 0.03), 0.5 stays 0.5,
and the ordering of rounds is kept. The candidate is the first ``n`` of the round's kept posterior
samples (the cloud the app shows; they are independent draws, so any ``n`` of
them are a fair subsample); with fewer kept, all of them and as many exact
ones. The exact samples are drawn once per run (:class:`ReferenceC2ST` keeps
them) and reused every round.

The classifier runs on as many threads as torch has in this process
(:mod:`sbi_core.threads` sets that share); with scikit-learn, numpy's BLAS took
every core, and on a shared 2-core machine that alone made one score take 14 s
instead of 3.

Randomness: the exact samples come from the run's named stream
``"reference_posterior"`` and the classifier's folds and weights from
``"reference_c2st"`` (:class:`~sbi_core.stats.seeds.SeedPlan`), so adding this
score changes no other number of the run.

Example:

>>> import sbi_core
>>> sim = sbi_core.get_simulator("gaussian_mixture")
>>> ref = ReferenceC2ST(sim, sim.prior, sim.default_observation, seeds=0)
>>> exact = sim.reference_posterior(sim.default_observation, 500, seed=1)
>>> 0.4 < ref.score(exact).value < 0.6
True
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import Tensor

from sbi_core.diagnostics.c2st import c2st
from sbi_core.stats.priors import Prior
from sbi_core.stats.seeds import SeedPlan

__all__ = ["MIN_SAMPLES", "MAX_ITER", "ReferenceScore", "ReferenceC2ST", "reference_sample_size", "reference_unavailable"]

MIN_SAMPLES = 100  # posterior samples below which the score would be mostly noise (say so instead)
MAX_ITER = 200  # classifier epochs (module docstring: about 2-3 s a round)
_COST = 2000  # n * D**2 kept near this
_MIN_N, _MAX_N = 200, 500


def reference_sample_size(dim: int) -> int:
    """Samples a side for a ``dim``-parameter C2ST: ``2000 / dim**2`` within ``[200, 500]``, in hundreds."""
    n = _COST / max(int(dim), 1) ** 2
    return int(min(_MAX_N, max(_MIN_N, round(n / 100) * 100)))


def reference_unavailable(simulator, prior: Prior, x_obs: Tensor) -> Optional[str]:
    """Why the exact posterior cannot be compared with for this run, in plain words; ``None`` when it can.

    Args:
        simulator: the run's simulator (a :class:`~sbi_core.simulators.Simulator`, a callable, or ``None``
            for a table of simulations).
        prior: the run's prior.
        x_obs: ``(K,)`` the run's observation.
    """
    if simulator is None:
        return "A run on a table of simulations has no exact posterior to compare with."
    if not getattr(simulator, "has_reference_posterior", False):
        return "This model's exact posterior is not known in closed form, so there is nothing exact to compare with."
    if Prior.from_spec(prior).to_spec() != simulator.prior.to_spec():
        return (f"Custom prior: the exact posterior of {simulator.title} is known only under the model's "
                "default prior, so it is not compared with here. Train with the default prior to see it.")
    x = torch.as_tensor(x_obs).reshape(-1)
    if x.shape[0] != simulator.x_dim:
        return (f"The observation has {x.shape[0]} numbers but {simulator.title} produces {simulator.x_dim}, "
                "so its exact posterior does not apply.")
    return None


@dataclass(frozen=True)
class ReferenceScore:
    """One round's C2ST against the exact posterior.

    ``value``: accuracy in [0, 1] (0.5 = indistinguishable, 1.0 = disjoint), or ``None``;
    ``reason``: why there is no value (``None`` when there is one);
    ``num_samples``: samples a side; ``seconds``: time it took (the exact draw included, the first time).
    """

    value: Optional[float]
    reason: Optional[str]
    num_samples: int = 0
    seconds: float = 0.0


class ReferenceC2ST:
    """The exact posterior of one run, drawn once, against which each round's samples are scored.

    Args:
        simulator, prior, x_obs: the run's (see :func:`reference_unavailable`).
        seeds: the run's :class:`~sbi_core.stats.seeds.SeedPlan` (or its seed).
        num_samples: samples a side; default :func:`reference_sample_size` of the prior's dimension.
    """

    def __init__(self, simulator, prior: Prior, x_obs: Tensor, seeds: Union[SeedPlan, int],
                 num_samples: Optional[int] = None) -> None:
        self.simulator = simulator
        self.prior = Prior.from_spec(prior)
        self.x_obs = torch.as_tensor(x_obs, dtype=torch.float32).reshape(-1)
        self.seeds = seeds if isinstance(seeds, SeedPlan) else SeedPlan(int(seeds))
        self.num_samples = int(num_samples or reference_sample_size(self.prior.dim))
        self.reason = reference_unavailable(simulator, self.prior, self.x_obs)
        self._exact: Optional[Tensor] = None

    @property
    def applies(self) -> bool:
        return self.reason is None

    def exact_samples(self) -> Tensor:
        """``(num_samples, D)`` exact posterior samples at ``x_obs`` (drawn on the first call)."""
        if self._exact is None:
            g = self.seeds.generator("reference_posterior")
            self._exact = self.simulator.reference_posterior(self.x_obs, self.num_samples, generator=g)
        return self._exact

    def score(self, samples: Tensor) -> ReferenceScore:
        """C2ST of ``samples (m, D)`` (a round's posterior at ``x_obs``) against the exact posterior."""
        if self.reason is not None:
            return ReferenceScore(None, self.reason)
        t = time.perf_counter()
        q = torch.as_tensor(samples, dtype=torch.float32).reshape(len(samples), -1)
        q = q[torch.isfinite(q).all(1)][: self.num_samples]
        if len(q) < MIN_SAMPLES:
            return ReferenceScore(None, f"Only {len(q)} posterior samples were kept this round; the comparison "
                                        f"with the exact posterior needs at least {MIN_SAMPLES}.")
        exact = self.exact_samples()[: len(q)]
        # torch's threads (this process's share of the cores, set by sbi_core.threads) train the classifier
        value = c2st(exact, q, seed=self.seeds.seed_of("reference_c2st") % 2**32, max_iter=MAX_ITER, engine="torch")
        return ReferenceScore(value, None, len(q), time.perf_counter() - t)

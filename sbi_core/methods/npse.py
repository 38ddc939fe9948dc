"""Neural posterior score estimation (NPSE; Sharrock et al., arXiv:2210.04872; Geffner et al., arXiv:2209.14249).

A diffusion ``theta_t = m(t) theta + sigma(t) eps`` carries the pairs' (z-scored)
parameters to noise as ``t`` goes from ``t_min`` to 1, and a network learns the
score of its marginals given ``x`` by denoising score matching (Song et al.,
ICLR 2021, arXiv:2011.13456): it predicts the noise, ``score = -eps_hat / sigma(t)``,

    L = E_{t ~ U(t_min, 1), eps, (theta, x)} |eps_hat(theta_t, t, x) - eps|^2,

which is the score-matching loss with the usual weighting ``lambda(t) = sigma(t)^2``;
training noise levels are log-uniform. Its minimiser is the score of the diffused
posterior for every ``x`` (amortized, as NPE). ``sde="ve"`` (the default) is
variance exploding (``sigma`` from 0.01 to 10 in z-scored units), ``sde="vp"``
variance preserving (``beta`` from 0.1 to 20, as Song et al.). Measured on two moons
(10,000 simulations, mean C2ST at 3 observations): VE 0.560 (another training seed
0.555), VP 0.620; on linear regression (3,000 simulations) VP's posteriors came out
10-40 % too narrow, VE's within 20 % (see :mod:`.vector_field`).

Samples solve the probability-flow ODE ``d theta / dt = f - g^2 score / 2`` from the
noise end (``sampler="ode"``, the default, RK4 in 10 steps; its density comes from the
same ODE run backwards with the divergence), or the reverse SDE with a Langevin corrector
(``sampler="sde"``, predictor-corrector; its draws have no density of their own,
so ``log_prob`` still uses the ODE). On two moons the SDE with 50 steps (100 network
passes a draw) scored 0.545 against the ODE's 0.560 (40 passes). Draws outside the prior's support are
rejected, as for NPE (:class:`~sbi_core.posteriors.vector_field.VectorFieldPosterior`).
"""

from __future__ import annotations

from typing import Optional

from sbi_core.errors import SBIError
from sbi_core.methods.base import Method
from sbi_core.methods.tsnpe import TruncatedProposal
from sbi_core.methods.vector_field import VectorFieldEstimator
from sbi_core.stats.priors import Prior

__all__ = ["NPSE", "TSNPSE", "METHOD", "METHOD_TSNPSE", "DEFAULTS"]

DEFAULTS = dict(hidden_features=128, num_blocks=3, sde="ve", steps=10, solver="rk4", sampler="ode")


class NPSE(VectorFieldEstimator):
    """Neural posterior score estimation: ``NPSE(prior).train(theta, x)`` returns a posterior for any ``x``.

    Args:
        prior: the prior over ``D`` parameters.
        hidden_features, num_blocks: the network's width and residual blocks.
        seed: seeds the initial weights and all training randomness.
        sde: ``"ve"`` (variance exploding) or ``"vp"`` (variance preserving).
        steps, solver: the probability-flow ODE's solver; sampler: ``"ode"`` or ``"sde"``
            (predictor-corrector: ``steps`` Euler-Maruyama steps, each with one Langevin corrector step).
        embedding, data_shape, embedding_features: a learned summary of ``x``, as for
            :class:`~sbi_core.methods.npe.NPE`.
        **settings: other network settings (``beta_min``, ``beta_max``, ``sigma_min``, ``sigma_max``,
            ``t_min``, ``residual``, ``time_features``, ``density_steps``, ``corrector_steps``, ``snr``),
            ``num_transforms`` (read as ``num_blocks``), and any :class:`~sbi_core.nn.training.TrainConfig` field.

    >>> import sbi_core
    >>> sim = sbi_core.get_simulator("linear_regression")
    >>> theta = sim.prior.sample((200,)); x = sim.simulate(theta, seed=0)
    >>> post = NPSE(sim.prior, hidden_features=16, num_blocks=1, max_epochs=2).train(theta, x)
    >>> post.sample((5,), x=x[0], seed=0).shape
    torch.Size([5, 2])
    """

    _NETWORK = ("beta_min", "beta_max", "sigma_min", "sigma_max", "t_min", "residual", "time_features",
                "density_steps", "corrector_steps", "snr")

    def __init__(self, prior: Prior, hidden_features: int = DEFAULTS["hidden_features"],
                 num_blocks: int = DEFAULTS["num_blocks"], seed: int = 0, *, sde: str = DEFAULTS["sde"],
                 steps: int = DEFAULTS["steps"], solver: str = DEFAULTS["solver"],
                 sampler: str = DEFAULTS["sampler"], num_transforms: Optional[int] = None, **settings):
        if sde not in ("vp", "ve"):
            raise SBIError(f"NPSE's sde must be 'vp' (variance preserving) or 've' (variance exploding), got {sde!r}.")
        network = {k: settings.pop(k) for k in list(settings) if k in self._NETWORK}
        if sde == "ve":
            network.setdefault("sigma_min", 0.01)
        super().__init__(prior, sde, hidden_features=hidden_features, num_blocks=num_blocks, seed=seed,
                         num_transforms=num_transforms, steps=steps, solver=solver, sampler=sampler,
                         network=network, **settings)


METHOD = Method.of("npse", build=NPSE)


def TSNPSE(prior: Prior, *args, quantile: float = 1e-4, **kwargs) -> NPSE:
    """Sequential NPSE with truncated-prior proposals (as TSNPE; Deistler et al., 2022, arXiv:2210.04815).

    Round ``r > 0`` draws from the prior truncated to the last posterior's ``1 - quantile``
    highest-density region at the observation, and the network keeps training with the plain
    score matching loss on the pairs of every round (:mod:`sbi_core.methods.tsnpe` says why that
    stays valid, and what setting the region costs for a vector field).

    Args:
        prior, hidden_features, ...: as :class:`NPSE`.
        quantile: ``eps``, the posterior mass left outside each proposal's region.
    """
    return NPSE(prior, *args, proposal=TruncatedProposal(float(quantile)), **kwargs)


METHOD_TSNPSE = Method.of("tsnpse", build=TSNPSE)

"""Posterior: an immutable snapshot of a trained flow, restricted to the prior.

The flow ``q(theta_free | x)`` may put some mass outside the prior's support
("leakage"). The posterior is the flow truncated to the support ``S``:

    p(theta | x) = q(theta | x) 1[theta in S] / Z(x),   Z(x) = P_q(theta in S | x).

Sampling is rejection (:mod:`sbi_core.stats.rejection`): draw from ``q`` in
batches and keep draws inside ``S``; the acceptance rate is reported. Sampling
stops with a :class:`PosteriorSamplingError` when acceptance is so low that
the requested samples cannot be had in ``max_sampling_time`` seconds.

The normaliser used by ``log_prob`` is a fixed Monte Carlo estimate,

    Z_hat(x) = (1 / M) sum_m 1[theta_m in S],   theta_m ~ q(. | x),  M = 10,000,

from base noise of a generator seeded with a constant, so it is a function of
the network and ``x`` alone: the same whatever was called before (it is
memoised per ``x``, never taken from the acceptance of a ``sample`` call).

A posterior is immutable: :meth:`Posterior.with_default_x` returns a new
posterior (sharing the frozen network) instead of changing this one.

Fixed parameters of the prior are not modelled: they are inserted at their
value in every sample, and ``log_prob`` ignores them (after checking they
equal their value). The observation's shape rules and that insertion are
:class:`~sbi_core.posteriors.base.PosteriorBase`'s.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from sbi_core.errors import SBIError
from sbi_core.nn.flows import ConditionalFlow
from sbi_core.posteriors.base import PosteriorBase
from sbi_core.stats.priors import Prior
from sbi_core.stats.rejection import RejectionTooSlow, rejection_sample
from sbi_core.stats.seeds import make_generator

__all__ = ["Posterior", "PosteriorSamplingError"]


class PosteriorSamplingError(SBIError):
    """Too few flow samples fall inside the prior's support."""


NORMALIZER_DRAWS = 10_000  # M in Z_hat(x): flow draws per observation
NORMALIZER_SEED = 0  # seed of the base noise behind Z_hat(x), the same for every x


class Posterior(PosteriorBase):
    """``p(theta | x)`` from a trained conditional flow; an immutable snapshot.

    Args:
        flow: the trained network; it is deep-copied and frozen, so later
            training does not change this posterior.
        prior: the prior over all ``D`` parameters (fixed ones included).
        default_x: ``(K,)`` observation used when ``x`` is not given.
        data_shape: how one simulation folds (:class:`~sbi_core.stats.shapes.DataShape` or its
            dict); ``None``: the flow's embedding's shape, else a vector. Observations may then
            come in that shape (see :class:`~sbi_core.posteriors.base.PosteriorBase`).

    ``last_acceptance_rate`` is a diagnostic only: the fraction of flow draws
    kept by the most recent :meth:`sample` call. Densities never use it.
    """

    def __init__(self, flow: ConditionalFlow, prior: Prior, default_x: Optional[Tensor] = None,
                 data_shape=None):
        self._flow = copy.deepcopy(flow).eval()
        for p in self._flow.parameters():
            p.requires_grad_(False)
        self._init_fixed(prior)
        embedding = getattr(self._flow.cfg, "embedding", None)
        self._init_data_shape(data_shape if data_shape is not None or embedding is None else embedding["data_shape"])
        self._init_default_x(default_x)
        self.last_acceptance_rate: Optional[float] = None
        self._log_z: dict[bytes, float] = {}  # memo of the pure function x -> log Z_hat(x)

    # ---- shapes (theta_dim, default_x, with_default_x: PosteriorBase) -------
    @property
    def x_dim(self) -> int:
        return self._flow.cfg.x_dim

    @property
    def flow(self) -> ConditionalFlow:
        return self._flow

    # ---- sampling -------------------------------------------------------------
    def sample(
        self,
        sample_shape: tuple[int, ...] = (1,),
        x: Optional[Tensor] = None,
        seed: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
        max_sampling_time: float = 30.0,
        min_acceptance: float = 1e-4,
    ) -> Tensor:
        """``(*sample_shape, D)`` samples of ``p(theta | x)`` inside the prior's support."""
        shape, n = self._draw_count(sample_shape)
        x = self._check_x(x)
        g = make_generator(seed, generator)

        def propose(m: int) -> Tensor:
            return self._full(self._flow.sample(m, x, generator=g))

        try:
            samples, self.last_acceptance_rate = rejection_sample(
                propose, self._inside, n, max_seconds=max_sampling_time, min_acceptance=min_acceptance
            )
        except RejectionTooSlow as slow:
            raise PosteriorSamplingError(
                f"Only {100 * slow.rate:.3g}% of the estimator's samples fall inside the prior, "
                "so sampling would take too long. The observation may be implausible under "
                "the prior, or the estimator needs more simulations or training."
            ) from None
        return samples.reshape(*shape, self.theta_dim)

    def sample_batched(
        self,
        num_samples: int,
        xs: Tensor,
        seed: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
        max_sampling_time: float = 30.0,
        min_acceptance: float = 1e-4,
        max_rows: int = 100_000,
    ) -> Tensor:
        """``(N, num_samples, D)`` samples of ``p(theta | x_i)`` for every row of ``xs (N, K)``.

        The same truncated posterior as :meth:`sample`, drawn for many
        observations at once: each rejection round pushes base noise for every
        observation still short of samples through the flow in one pass (with
        each draw's own ``x`` as context, at most ``max_rows`` draws per pass),
        and each observation keeps its first ``num_samples`` draws inside the
        support. Reproducible from ``seed`` / ``generator``; the draws differ from
        ``N`` calls of :meth:`sample` with the same seed. Raises
        :class:`PosteriorSamplingError` when, for some observation, acceptance is
        below ``min_acceptance`` or sampling exceeds ``max_sampling_time``
        seconds (checked after 10,000 draws of that observation, as in :meth:`sample`).
        """
        xs = self._check_xs(xs)
        n, want, dim = xs.shape[0], int(num_samples), self.theta_dim
        if want < 1:
            raise SBIError(f"num_samples must be at least 1, got {num_samples}.")
        g = make_generator(seed, generator)
        out = torch.empty(n, want, dim)
        have = torch.zeros(n, dtype=torch.long)  # kept so far (at most want)
        accepted = torch.zeros(n, dtype=torch.long)  # inside the support, kept or not
        drawn = torch.zeros(n, dtype=torch.long)
        start = time.perf_counter()
        with torch.no_grad():
            while bool((have < want).any()):
                pending = (have < want).nonzero().flatten()
                rate = torch.where(drawn[pending] > 0, accepted[pending] / drawn[pending].clamp_min(1), 1.0)
                need = (want - have[pending]) / rate.clamp_min(1e-3) * 1.2
                m = int(min(max(float(need.max()), 16.0), max_rows))
                for chunk in pending.split(max(1, max_rows // m)):
                    free = self._flow.sample_batched(m, xs[chunk], generator=g)
                    theta = self._full(free.reshape(-1, free.shape[-1])).reshape(len(chunk), m, dim)
                    ok = self._inside(theta)
                    slot = have[chunk, None] + ok.cumsum(1) - 1
                    keep = ok & (slot < want)
                    out[chunk[:, None].expand(-1, m)[keep], slot[keep]] = theta[keep]
                    accepted[chunk] += ok.sum(1)
                    have[chunk] = torch.clamp(have[chunk] + ok.sum(1), max=want)
                    drawn[chunk] += m
                self._check_batched_progress(have, accepted, drawn, want, start, max_sampling_time, min_acceptance)
        self.last_acceptance_rate = float(accepted.sum()) / float(drawn.sum())
        return out

    @staticmethod
    def _check_batched_progress(have, accepted, drawn, want, start, max_seconds, min_acceptance) -> None:
        """Raise :class:`PosteriorSamplingError` for the first observation that cannot finish in time."""
        short = (have < want) & (drawn >= 10_000)
        if not bool(short.any()):
            return
        rates = accepted / drawn.clamp_min(1)
        too_slow = short & ((rates < min_acceptance) | (time.perf_counter() - start > max_seconds))
        if bool(too_slow.any()):
            i = int(too_slow.nonzero()[0])
            raise PosteriorSamplingError(
                f"For observation {i} (row {i} of xs) only {100 * float(rates[i]):.3g}% of the estimator's "
                "samples fall inside the prior, so sampling would take too long. That observation may be "
                "implausible under the prior, or the estimator needs more simulations or training."
            )

    # ---- density --------------------------------------------------------------
    def log_prob(self, theta: Tensor, x: Optional[Tensor] = None, normalize: bool = True) -> Tensor:
        """``log p(theta | x)``: ``theta (N, D) -> (N,)``; ``-inf`` outside the prior's support.

        With ``normalize`` the truncated density is divided by ``Z_hat(x)``
        (see the module docstring): the same value whatever was called before.
        """
        x = self._check_x(x)
        theta = self._theta_rows(theta)
        inside = self.prior.support_contains(theta)
        with torch.no_grad():
            free = theta[:, self._free]
            safe = torch.where(inside[:, None], free, self._flow_center())
            lp = self._flow.log_prob(safe, x.expand(theta.shape[0], -1))
        if normalize:
            lp = lp - self._log_normalizer(x)
        return torch.where(inside, lp, torch.tensor(-math.inf))

    def to_base(self, theta: Tensor, xs: Tensor) -> Tensor:
        """``(N, Df)``: each ``theta_i`` of ``theta (N, D)`` mapped to the flow's base space at its own
        ``xs[i]`` (``xs (N, K)``, or one ``(K,)`` observation for every row),

            z_i = T^{-1}(theta_i; x_i),   so that  z ~ N(0, I_Df)  when  theta ~ q(. | x).

        Only the ``Df`` free parameters are mapped (fixed ones are not modelled). This is the
        untruncated flow ``q``: for a posterior that leaks out of the prior's support the
        truncated posterior's draws are not exactly ``N(0, I)`` in this space. L-C2ST-NF
        (:mod:`sbi_core.diagnostics.lc2st`) tests the flow through this map.
        """
        theta = self._theta_rows(theta)
        xs = torch.as_tensor(xs, dtype=torch.float32)
        xs = self._check_x(xs).expand(theta.shape[0], -1) if xs.ndim == 1 else self._check_xs(xs)
        if xs.shape[0] != theta.shape[0]:
            raise SBIError(f"theta has {theta.shape[0]} rows but xs has {xs.shape[0]}; give one x per theta.")
        with torch.no_grad():
            return self._flow.to_base(theta[:, self._free], xs)

    def _flow_center(self) -> Tensor:
        return self.prior.mean[self._free]

    def _log_normalizer(self, x: Tensor) -> float:
        """``log Z_hat(x)``: a deterministic function of the network and ``x`` (memoised)."""
        key = x.numpy().tobytes()
        if key not in self._log_z:
            g = torch.Generator().manual_seed(NORMALIZER_SEED)
            with torch.no_grad():
                theta = self._full(self._flow.sample(NORMALIZER_DRAWS, x, generator=g))
            rate = float(self.prior.support_contains(theta).float().mean())
            self._log_z[key] = math.log(max(rate, 1e-12))
        return self._log_z[key]

    # ---- persistence ------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the network, prior and default observation to ``path`` (torch file)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "format": "sbi_core.posterior/1",
                "flow": self._flow.to_payload(),
                "prior": self.prior.to_spec(),
                "default_x": None if self._default_x is None else self._default_x.tolist(),
                "data_shape": None if self._data_shape is None else self._data_shape.to_dict(),
            },
            path,
        )

    @classmethod
    def load(cls, path: str | Path) -> "Posterior":
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != "sbi_core.posterior/1":
            raise SBIError(f"{path} is not a saved sbi_core posterior.")
        flow = ConditionalFlow.from_payload(payload["flow"])
        dx = payload["default_x"]
        return cls(flow, Prior.from_spec(payload["prior"]), None if dx is None else torch.tensor(dx),
                   data_shape=payload.get("data_shape"))

    def __repr__(self) -> str:
        return f"Posterior({self._flow.cfg.kind}, D={self.theta_dim}, K={self.x_dim})"

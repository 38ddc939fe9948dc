"""Shared pieces of the benchmarks: observations, reference posteriors, C2ST, reports.

Observations follow the SBI benchmark's recipe: parameters drawn from the
prior with a fixed seed, one simulation each; the reference posterior at each
observation comes from the model's closed-form sampler.
"""

from __future__ import annotations

import importlib.util
import platform
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

import sbi_core
from sbi_core import c2st

RESULTS = Path(__file__).with_name("RESULTS.md")
NUM_REFERENCE = 10_000


@dataclass
class Observation:
    theta: torch.Tensor  # (D,)
    x: torch.Tensor  # (K,)
    reference: torch.Tensor  # (NUM_REFERENCE, D)


def observations(task: str, count: int, seed: int = 1000) -> list[Observation]:
    """``count`` observations of ``task`` with reference posterior samples."""
    sim = sbi_core.get_simulator(task)
    g = torch.Generator().manual_seed(seed)
    out = []
    while len(out) < count:
        theta = sim.prior.sample((1,), generator=g)[0]
        x = sim.simulate(theta, generator=g)
        try:
            ref = sim.reference_posterior(x, NUM_REFERENCE, generator=g)
        except RuntimeError:  # an observation the reference sampler cannot reach
            continue
        out.append(Observation(theta, x, ref))
    return out


def training_data(task: str, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` prior-predictive pairs ``(theta (n, D), x (n, K))``."""
    sim = sbi_core.get_simulator(task)
    g = torch.Generator().manual_seed(seed)
    theta = sim.prior.sample((n,), generator=g)
    return theta, sim.simulate(theta, generator=g)


def sbi_prior(prior):
    """sbi's torch distribution for a prior of all-uniform (``BoxUniform``) or all-normal marginals."""
    from sbi.utils import BoxUniform
    from torch.distributions import Independent, Normal

    dists = {m.dist for m in prior.marginals}
    if dists == {"uniform"}:
        b = prior.support_bounds
        return BoxUniform(b[:, 0], b[:, 1])
    if dists == {"normal"}:
        loc = torch.tensor([m.params["loc"] for m in prior.marginals])
        scale = torch.tensor([m.params["scale"] for m in prior.marginals])
        return Independent(Normal(loc, scale), 1)
    raise ValueError(f"no sbi prior for {dists}")


def mean_c2st(sample_fn, obs: list[Observation]) -> float:
    """Mean C2ST over observations; ``sample_fn(x, n) -> (n, D)``."""
    scores = [c2st(o.reference, sample_fn(o.x, NUM_REFERENCE)) for o in obs]
    return sum(scores) / len(scores)


@contextmanager
def timer():
    t = {"seconds": 0.0}
    start = time.perf_counter()
    yield t
    t["seconds"] = time.perf_counter() - start


def machine() -> str:
    import os

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section between markers ``<!-- name -->`` in RESULTS.md."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def browser_support():
    """The browser helpers shared with the tests (``tests/browser_support.py``), loaded as a module."""
    path = Path(__file__).resolve().parents[1] / "tests" / "browser_support.py"
    spec = importlib.util.spec_from_file_location("browser_support", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

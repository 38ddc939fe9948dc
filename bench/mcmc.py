"""MCMC: sbi_core's vectorised slice sampler vs sbi's and pyro's samplers on the same potentials.

Three unnormalised posteriors, each sampled by every sampler in one process
with one torch thread:

(a) two moons: the exact two-moons posterior density at the default observation
    (analytic likelihood of the crescent, uniform box prior): two thin, curved modes;
(b) a 5-D Gaussian with correlations 0.6^|i-j| and scales 0.5..2.5;
(c) an NLE-shaped potential: log q(x_o | theta) of an nflows NSF (sbi_core.nn.flows.build_flow,
    random weights, 5 parameters, 8 data) plus a uniform box prior [-3, 3]^5; each call
    evaluates the flow, the cost that dominates NLE sampling.

Samplers: sbi_core.stats.mcmc.sample_mcmc (its defaults); sbi 0.27's
SliceSamplerVectorized with the settings sbi's MCMCPosterior uses by default
(20 chains, 200 warm-up sweeps, widths tuned over 50, initial width 0.01),
started from the same importance-resampled points (sbi's default "resample"
start; sbi itself draws 10,000 candidates per chain, which is not counted here);
pyro 1.9.2's NUTS (4 chains one after the other, 200 warm-up steps each, tree
depth at most 8 instead of 10 to bound its time, on the box mapped to the real
line by tanh, since NUTS needs an unbounded space; it needs gradients, so its
evaluation count is not comparable and is not reported).
Reported: seconds for 1,000 posterior samples, density evaluations, bulk ESS
(min over parameters) and ESS per second, largest rank-normalised R-hat
(ArviZ), and for two moons the share of samples in the mode with
theta1 + theta2 > 0 (exactly 0.5).

    python bench/mcmc.py [--samples 1000] [--skip-sbi] [--skip-pyro] [--sweep] [--no-write]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

import sbi_core
from sbi_core.stats.mcmc import DEFAULTS, mcmc_report, sample_mcmc
from sbi_core.stats.mcmc.init import resample_init
from common import machine, write_section


# ---------------------------------------------------------------------------
# potentials: log_prob (G, B, D) -> (G, B), a candidate sampler, a box half-width (or None)
# ---------------------------------------------------------------------------
def two_moons():
    x_o = sbi_core.get_simulator("two_moons").default_observation

    def log_prob(t):
        z0 = (t[..., 0] + t[..., 1]) / math.sqrt(2)
        z1 = (t[..., 1] - t[..., 0]) / math.sqrt(2)
        q0, q1 = x_o[0] + z0.abs() - 0.25, x_o[1] - z1  # p - (0.25, 0): polar (rho, phi), |phi| < pi/2
        rho = torch.sqrt(q0**2 + q1**2)
        lp = -0.5 * ((rho - 0.1) / 0.01) ** 2 - torch.log(rho)
        ok = (q0 > 0) & (t.abs() <= 1).all(-1)
        return torch.where(ok, lp, -torch.inf)

    return "two moons (2-D, bimodal)", log_prob, 2, 1.0


def gaussian5():
    idx = torch.arange(5.0)
    scale = 0.5 + 0.5 * idx
    cov = 0.6 ** (idx[:, None] - idx[None, :]).abs() * scale[:, None] * scale[None, :]
    prec = torch.linalg.inv(cov)

    def log_prob(t):
        return -0.5 * torch.einsum("gbi,ij,gbj->gb", t, prec, t)

    return "5-D correlated Gaussian", log_prob, 5, 8.0


def flow_nle():
    from sbi_core.nn.flows import build_flow

    with torch.random.fork_rng():
        torch.manual_seed(0)
        th, xs = torch.rand(1000, 5) * 6 - 3, torch.randn(1000, 8)
        flow = build_flow("nsf", xs, th).eval()  # q(x | theta): x is the flow's variable
        x_o = torch.randn(8) * 0.5
    for p in flow.parameters():
        p.requires_grad_(False)

    def log_prob(t):
        flat = t.reshape(-1, 5)
        lp = flow.log_prob(x_o.expand(len(flat), 8), flat.float()).to(t.dtype).reshape(t.shape[:-1])
        return torch.where((t.abs() <= 3).all(-1), lp, -torch.inf)

    return "NLE flow potential (NSF, 5-D)", log_prob, 5, 3.0


POTENTIALS = {"a": two_moons, "b": gaussian5, "c": flow_nle}


def _candidates(dim, half, g):
    return lambda m: (torch.rand(m, dim, generator=g) * 2 - 1) * half


def _summary(draws: torch.Tensor, seconds: float, evals: int, is_moons: bool) -> dict:
    rep = mcmc_report(draws)
    ess = min((e or 0.0) for e in rep["ess"])
    rhat = max((r if r is not None else math.inf) for r in rep["rhat"])
    row = {"seconds": seconds, "evals": evals, "ess": ess, "ess_s": ess / seconds, "rhat": rhat}
    flat = draws.reshape(-1, draws.shape[-1])
    row["mode"] = float(((flat[:, 0] + flat[:, 1]) > 0).float().mean()) if is_moons else None
    return row


# ---------------------------------------------------------------------------
# samplers
# ---------------------------------------------------------------------------
def run_ours(log_prob, dim, half, n, seed, **settings):
    g = torch.Generator().manual_seed(seed)
    res = sample_mcmc(log_prob, _candidates(dim, half, g), n, generator=g, **settings)
    return res.draws[0], res.seconds, res.num_evaluations


def run_sbi(log_prob, dim, half, n, seed, num_chains=20, warmup=200, tuning=50, init_width=0.01):
    from sbi.samplers.mcmc.slice_numpy import SliceSamplerVectorized

    g = torch.Generator().manual_seed(seed)
    np.random.seed(seed)  # sbi's slice sampler draws from numpy's global generator
    calls = {"n": 0}

    def np_log_prob(params: np.ndarray) -> np.ndarray:
        calls["n"] += len(params)
        with torch.no_grad():
            return log_prob(torch.as_tensor(params, dtype=torch.float32)[None])[0].double().numpy()

    start = time.perf_counter()
    x0, _, _ = resample_init(log_prob, _candidates(dim, half, g), 1, num_chains, 10_000, g)
    sampler = SliceSamplerVectorized(np_log_prob, x0[0].double().numpy(), num_chains=num_chains, thin=1,
                                     tuning=tuning, verbose=False, init_width=init_width)
    per_chain = math.ceil(n / num_chains)
    draws = torch.as_tensor(sampler.run(warmup + per_chain))[:, warmup:, :]
    return draws.float(), time.perf_counter() - start, calls["n"] + 10_000


def run_pyro(log_prob, dim, half, n, seed, num_chains=4, warmup=200):
    import pyro
    from pyro.infer import MCMC, NUTS

    def theta_of(z):
        return half * torch.tanh(z)

    def potential(params):
        z = params["z"]
        t = theta_of(z)
        log_jac = (math.log(half) + torch.log1p(-torch.tanh(z) ** 2 + 1e-12)).sum()
        return -(log_prob(t[None, None])[0, 0] + log_jac)

    g = torch.Generator().manual_seed(seed)
    start, chains, evals = time.perf_counter(), [], 0
    x0, _, _ = resample_init(log_prob, _candidates(dim, half, g), 1, num_chains, 10_000, g)
    per_chain = math.ceil(n / num_chains)
    with torch.random.fork_rng():
        pyro.set_rng_seed(seed)
        for c in range(num_chains):
            z0 = torch.atanh((x0[0, c] / half).clamp(-0.999999, 0.999999))
            kernel = NUTS(potential_fn=potential, max_tree_depth=8)
            mcmc = MCMC(kernel, num_samples=per_chain, warmup_steps=warmup, initial_params={"z": z0},
                        disable_progbar=True)
            mcmc.run()
            chains.append(theta_of(mcmc.get_samples()["z"]).detach())
    draws = torch.stack(chains)
    return draws.float(), time.perf_counter() - start, evals


def measure(key, n, seed, skip_sbi, skip_pyro):
    title, log_prob, dim, half = POTENTIALS[key]()
    rows = []
    moons = key == "a"
    d, s, e = run_ours(log_prob, dim, half, n, seed)
    rows.append((title, "sbi_core slice (defaults)", _summary(d, s, e, moons)))
    print(rows[-1], flush=True)
    if not skip_sbi:
        d, s, e = run_sbi(log_prob, dim, half, n, seed)
        rows.append((title, "sbi 0.27 SliceSamplerVectorized (sbi defaults)", _summary(d, s, e, moons)))
        print(rows[-1], flush=True)
    if not skip_pyro:
        d, s, e = run_pyro(log_prob, dim, half, n, seed)
        rows.append((title, "pyro 1.9.2 NUTS (4 chains, 200 warm-up, tree depth <= 8)", _summary(d, s, 0, moons)))
        print(rows[-1], flush=True)
    return rows


def slcp_reference(num_samples=10_000, seed=0):
    """Seconds for the SLCP reference posterior, and R-hat / ESS of the same run's chains (signs folded)."""
    from sbi_core.simulators.benchmark import (_SLCP_CANDIDATES, _SLCP_THIN, _SLCP_WARMUP, _SLCP_CHAINS,
                                               _slcp_log_likelihood)

    sim = sbi_core.get_simulator("slcp")
    x_o = sim.default_observation
    start = time.perf_counter()
    sim.reference_posterior(x_o, num_samples, seed=seed)
    seconds = time.perf_counter() - start

    def log_post(t):
        return torch.where((t.abs() <= 3).all(-1), _slcp_log_likelihood(t, x_o.double()), -torch.inf)

    g = torch.Generator().manual_seed(seed)
    res = sample_mcmc(log_post, lambda m: (torch.rand(m, 5, generator=g, dtype=torch.float64) * 2 - 1) * 3,
                      num_samples, num_chains=_SLCP_CHAINS, warmup=_SLCP_WARMUP,
                      thin=_SLCP_THIN, num_init_candidates=_SLCP_CANDIDATES, generator=g, jumps=False)
    draws = res.draws[0].clone()
    draws[..., 2:4] = draws[..., 2:4].abs()
    rep = mcmc_report(draws)
    return seconds, min(rep["ess"]), max(rep["rhat"])


def sweep(n, seed, keys):
    """ESS/s and R-hat of sbi_core's sampler under other settings (to choose the defaults)."""
    grid = [dict(num_chains=c, warmup=w, thin=t) for c, w, t in
            [(20, 30, 1), (20, 50, 1), (20, 100, 1), (20, 50, 2), (40, 30, 1), (50, 50, 1), (50, 50, 2)]]
    rows = []
    for key in keys:
        title, log_prob, dim, half = POTENTIALS[key]()
        for st in grid:
            d, s, e = run_ours(log_prob, dim, half, n, seed, **st)
            rows.append((title, st, _summary(d, s, e, key == "a")))
            print(rows[-1], flush=True)
    return rows


def _fmt(r: dict) -> str:
    mode = "" if r["mode"] is None else f"{r['mode']:.2f}"
    return f"{r['seconds']:.2f} | {r['evals']:,} | {r['ess']:.0f} | {r['ess_s']:.0f} | {r['rhat']:.3f} | {mode}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--potentials", default="abc")
    ap.add_argument("--skip-sbi", action="store_true")
    ap.add_argument("--skip-pyro", action="store_true")
    ap.add_argument("--sweep", action="store_true", help="also try other settings of sbi_core's sampler")
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args()
    torch.set_num_threads(1)

    rows = []
    for key in args.potentials:
        rows += measure(key, args.samples, args.seed, args.skip_sbi, args.skip_pyro)
    lines = [
        f"{args.samples:,} posterior samples per sampler and potential, 1 torch thread; {machine()}. "
        f"sbi_core defaults: {DEFAULTS}.",
        f"Command: `python bench/mcmc.py{' --sweep' if args.sweep else ''}`",
        "",
        "| potential | sampler | seconds | evaluations | min bulk ESS | ESS/s | max R-hat | mode share (0.5) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {t} | {name} | {_fmt(r)} |" for t, name, r in rows]
    if args.sweep:
        lines += ["", "Settings of sbi_core's sampler (same potentials and sample count):", "",
                  "| potential | chains, warm-up, thin | seconds | evaluations | min bulk ESS | ESS/s | max R-hat "
                  "| mode share |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        for t, st, r in sweep(args.samples, args.seed, args.potentials):
            lines.append(f"| {t} | {st['num_chains']}, {st['warmup']}, {st['thin']} | {_fmt(r)} |")
    secs, ess, rhat = slcp_reference()
    lines += ["", f"SLCP reference posterior (`sbi_core.get_simulator('slcp').reference_posterior`, slice sampling "
              f"on the analytic likelihood, signs of theta3 and theta4 symmetrised): 10,000 samples in "
              f"{secs:.1f} s; the same run's chains (|theta3|, |theta4|): min bulk ESS {ess:.0f}, max R-hat {rhat:.3f}."]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section("mcmc", "## MCMC: slice sampler for NLE / NRE posteriors\n\n" + report)


if __name__ == "__main__":
    main()

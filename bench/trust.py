"""Trust at one observation (issue 23): sbi_core's misspecification test and L-C2ST beside sbi 0.27's.

**Misspecification.** Two sensors read one quantity, ``x = (mu + e1, mu + e2)``,
``mu ~ U(-3, 3)``, ``e ~ N(0, 0.1^2)``; ``--simulations`` simulations of this model are the
training data. Each test gets the same observations:

* three single ones: sensors that disagree by 10 noise sds ``(0.5, 1.5)`` (each reading inside its
  usual range; the model never produces the pair), a pair beyond the prior ``(4, 4)``, a typical
  pair ``(0.5, 0.55)``;
* ``--observations`` observations of the model itself (false alarms at alpha = 0.05);
* ``--power-observations`` observations of sensors three times noisier than the model says
  (``e ~ N(0, 0.3^2)``: a misspecified noise model; the share flagged is the power).

Tests: sbi_core ``check_misspecification`` (k-NN, the default, and MMD), each fitted once
(``ModelSupport.fit``) and checked per observation; sbi's ``calc_misspecification_mmd`` in x-space
with its defaults (1,000 shuffles) for the three single observations, and with
``--sbi-shuffles`` shuffles for the many (its time per observation grows with the shuffles).

**L-C2ST.** The conjugate Gaussian model ``theta ~ N(0, I_2)``, ``x = theta + N(0, 0.5^2 I)``,
whose posterior ``N(x / 1.25, 0.2 I)`` is known. Five posteriors with ``sample`` and the exact
affine map to a flow's base space (``to_base``): the exact one, overconfident (sd x 0.5 and x 0.8)
and shifted (mean + 0.3 and + 0.1, in parameter units; the posterior sd is 0.45). ``--calibration``
held-out pairs (seed 1); each test is fitted once per posterior and then evaluated at
``--observations`` observations of the model (false alarms, exact posterior) or
``--power-observations`` (power, the others). Both libraries use ``--null`` null classifiers and
1,000 evaluation draws per observation:

* sbi_core ``LC2ST.fit`` / ``.test`` (``run_lc2st`` is the two in one), variants ``nf`` and
  ``standard``, its batched MLP classifiers (:mod:`sbi_core.diagnostics.ensemble`);
* sbi ``LC2ST`` (permutation null) and ``LC2ST_NF`` with their defaults (scikit-learn
  ``MLPClassifier``); sbi's NF null classifiers are trained once and passed to the other
  posteriors' tests (``trained_clfs_null``), as ours are cached.

One fit serves all observations of a posterior, so the rejections of one row are correlated (one
classifier); they measure that fit, not the average over fits.

**Independent tries** (``--independent N``; ``--only-independent`` runs just this part): what a user
meets -- one set of simulations (or calibration pairs), one fit, one observation. ``N`` times, each
misspecification test gets fresh simulations of the two-sensor model (seed ``2000 + i``) and a
fresh observation of it, and sbi_core's L-C2ST (each variant) is fitted to the exact posterior on a
fresh calibration set (seed ``1000 + i``, the fit's own seed ``i``) and tests one fresh observation
of the model; the share of rejections at alpha = 0.05 is the false-alarm rate, with its 95 %
Clopper-Pearson interval. (sbi's L-C2STs are left out here: its NF null takes about 26 s per
calibration set, 45 minutes for 100.)

    python bench/trust.py [--quick] [--calibration 1000] [--null 100] [--observations 100]
                          [--power-observations 20] [--simulations 5000] [--sbi-shuffles 200]
                          [--independent 100] [--only-independent]
                          [--skip-sbi] [--no-write] [--threads 1]

Run sbi with its venv: ``/tmp/sbivenv/bin/python bench/trust.py``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings

import numpy as np
import torch

from common import machine, write_section
from sbi_core.diagnostics.lc2st import LC2ST
from sbi_core.diagnostics.misspecification import ModelSupport

SIGMA = 0.5
ALPHA = 0.05
EVAL = 1000  # posterior (or base) draws per observation, both libraries


# ---- models ------------------------------------------------------------------------------------
def sensors(n: int, seed: int, noise: float = 0.1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mu = torch.rand(n, 1, generator=g) * 6 - 3
    return mu + noise * torch.randn(n, 2, generator=g)


def gaussian_pairs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(n, 2, generator=g)
    return theta, theta + SIGMA * torch.randn(n, 2, generator=g)


class GaussianPosterior:
    """``N(x / (1 + s^2) + shift, (scale s)^2 / (1 + s^2) I)``: exact at ``scale = 1, shift = 0``."""

    def __init__(self, scale: float = 1.0, shift: float = 0.0):
        self.sd = scale * SIGMA / math.sqrt(1 + SIGMA ** 2)
        self.shift = shift

    def mean(self, x) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32) / (1 + SIGMA ** 2) + self.shift

    def sample(self, sample_shape, x, seed=None):
        g = torch.Generator().manual_seed(int(seed))
        x = torch.as_tensor(x, dtype=torch.float32).reshape(-1)
        return self.mean(x) + self.sd * torch.randn(*sample_shape, x.shape[0], generator=g)

    def sample_batched(self, num, xs, generator=None):
        xs = torch.as_tensor(xs, dtype=torch.float32)
        return self.mean(xs)[:, None, :] + self.sd * torch.randn(xs.shape[0], num, xs.shape[1], generator=generator)

    def to_base(self, theta, xs):
        return (torch.as_tensor(theta, dtype=torch.float32) - self.mean(xs)) / self.sd


POSTERIORS = {
    "exact": GaussianPosterior(),
    "sd x 0.5": GaussianPosterior(scale=0.5),
    "mean + 0.3": GaussianPosterior(shift=0.3),
    "sd x 0.8": GaussianPosterior(scale=0.8),
    "mean + 0.1": GaussianPosterior(shift=0.1),
}


# ---- misspecification --------------------------------------------------------------------------
SINGLE = {"disagree (0.5, 1.5)": [0.5, 1.5], "beyond (4, 4)": [4.0, 4.0], "typical (0.5, 0.55)": [0.5, 0.55]}


def misspecification_rows(args) -> list[dict]:
    x = sensors(args.simulations, seed=0)
    own = sensors(args.observations, seed=123)
    noisy = sensors(args.power_observations, seed=456, noise=0.3)
    rows = []
    for method in ("knn", "mmd"):
        start = time.perf_counter()
        support = ModelSupport.fit(x, method=method)
        fit = time.perf_counter() - start
        start = time.perf_counter()
        p_own = [support.check(o)["p_value"] for o in own]
        per_obs = (time.perf_counter() - start) / len(own)
        rows.append({"library": "sbi_core", "test": f"check_misspecification ({method})",
                     "single": {k: support.check(v)["p_value"] for k, v in SINGLE.items()},
                     "false": sum(p < ALPHA for p in p_own), "n_false": len(own),
                     "power": sum(support.check(o)["p_value"] < ALPHA for o in noisy), "n_power": len(noisy),
                     "fit": fit, "per_obs": per_obs, "note": ""})
        print(f"  sbi_core {method}: {rows[-1]}", flush=True)
    if args.skip_sbi:
        return rows
    from sbi.diagnostics.misspecification import calc_misspecification_mmd

    def sbi_p(obs, shuffles):
        torch.manual_seed(0)  # sbi draws its shuffles from torch's global generator
        return float(calc_misspecification_mmd(torch.as_tensor([obs], dtype=torch.float32), x,
                                               n_shuffle=shuffles)[0])

    start = time.perf_counter()
    single = {k: sbi_p(v, 1000) for k, v in SINGLE.items()}
    per_default = (time.perf_counter() - start) / len(SINGLE)
    start = time.perf_counter()
    p_own = [sbi_p(o.tolist(), args.sbi_shuffles) for o in own]
    per_obs = (time.perf_counter() - start) / len(own)
    rows.append({"library": "sbi 0.27", "test": "calc_misspecification_mmd (x_space)", "single": single,
                 "false": sum(p < ALPHA for p in p_own), "n_false": len(own),
                 "power": sum(sbi_p(o.tolist(), args.sbi_shuffles) < ALPHA for o in noisy), "n_power": len(noisy),
                 "fit": 0.0, "per_obs": per_default,
                 "note": f"many observations with {args.sbi_shuffles} shuffles: {per_obs * 1000:.0f} ms each"})
    print(f"  sbi: {rows[-1]}", flush=True)
    return rows


# ---- L-C2ST ------------------------------------------------------------------------------------
def ours(variant: str, args, thetas, xs, obs_false, obs_power) -> dict:
    out = {"library": "sbi_core", "test": f"L-C2ST ({variant})", "cells": {}, "fits": [], "per_obs": []}
    for name, post in POSTERIORS.items():
        start = time.perf_counter()
        test = LC2ST.fit(thetas, xs, post, num_null=args.null, variant=variant, num_posterior_samples=EVAL)
        out["fits"].append(time.perf_counter() - start)
        obs = obs_false if name == "exact" else obs_power
        start = time.perf_counter()
        p = [test.test(o, alpha=ALPHA)["p_value"] for o in obs]
        out["per_obs"].append((time.perf_counter() - start) / len(obs))
        out["cells"][name] = (sum(q < ALPHA for q in p), len(obs), float(np.median(p)))
        print(f"  sbi_core {variant} {name}: {out['cells'][name]} fit {out['fits'][-1]:.1f} s", flush=True)
    return out


def theirs(variant: str, args, thetas, xs, obs_false, obs_power) -> dict:
    from sbi.diagnostics.lc2st import LC2ST as SbiLC2ST, LC2ST_NF

    base = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
    out = {"library": "sbi 0.27", "test": f"{'LC2ST_NF' if variant == 'nf' else 'LC2ST'}", "cells": {}, "fits": [],
           "per_obs": []}
    null = None
    for name, post in POSTERIORS.items():
        g = torch.Generator().manual_seed(7)
        draws = post.sample_batched(1, xs, generator=g)[:, 0, :]
        start = time.perf_counter()
        if variant == "nf":
            test = LC2ST_NF(thetas, xs, draws, flow_inverse_transform=post.to_base, flow_base_dist=base,
                            num_eval=EVAL, num_trials_null=args.null, trained_clfs_null=null)
            test.train_on_observed_data(verbosity=0)
            if null is None:
                test.train_under_null_hypothesis(verbosity=0)
                null = test.trained_clfs_null
        else:
            test = SbiLC2ST(thetas, xs, draws, num_trials_null=args.null)
            test.train_on_observed_data(verbosity=0).train_under_null_hypothesis(verbosity=0)
        out["fits"].append(time.perf_counter() - start)
        obs = obs_false if name == "exact" else obs_power
        start = time.perf_counter()
        if variant == "nf":
            p = [test.p_value(o) for o in obs]
        else:
            p = [test.p_value(post.sample((EVAL,), x=o, seed=11), o) for o in obs]
        out["per_obs"].append((time.perf_counter() - start) / len(obs))
        out["cells"][name] = (sum(q < ALPHA for q in p), len(obs), float(np.median(p)))
        print(f"  sbi {variant} {name}: {out['cells'][name]} fit {out['fits'][-1]:.1f} s", flush=True)
    return out


def lc2st_rows(args) -> list[dict]:
    thetas, xs = gaussian_pairs(args.calibration, seed=1)
    _, obs_false = gaussian_pairs(args.observations, seed=99)
    _, obs_power = gaussian_pairs(args.power_observations, seed=98)
    rows = []
    for variant in ("nf", "standard"):
        rows.append(ours(variant, args, thetas, xs, obs_false, obs_power))
        if not args.skip_sbi:
            rows.append(theirs(variant, args, thetas, xs, obs_false, obs_power))
    return rows


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact binomial confidence interval of ``k`` successes in ``n`` tries (Clopper & Pearson 1934)."""
    from scipy.stats import beta

    tail = (1.0 - level) / 2.0
    low = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1.0 - tail, k + 1, n - k))
    return low, high


def independent_rows(args) -> list[dict]:
    """False alarms over ``args.independent`` independent tries: the misspecification tests, each time on
    fresh simulations of the two-sensor model and a fresh observation of it; sbi_core's L-C2ST (each
    variant), each time on a fresh calibration set, fit and observation of the exact posterior."""
    rows = []
    tests = [("sbi_core check_misspecification (knn)", "knn"), ("sbi_core check_misspecification (mmd)", "mmd")]
    if not args.skip_sbi:
        tests.append((f"sbi 0.27 calc_misspecification_mmd (x_space, {args.sbi_shuffles} shuffles)", "sbi"))
    for label, method in tests:
        p = []
        for i in range(args.independent):
            x = sensors(args.simulations, seed=2000 + i)
            obs = sensors(1, seed=6000 + i)[0]
            if method == "sbi":
                from sbi.diagnostics.misspecification import calc_misspecification_mmd

                torch.manual_seed(i)  # sbi draws its shuffles from torch's global generator
                p.append(float(calc_misspecification_mmd(obs[None, :], x, n_shuffle=args.sbi_shuffles)[0]))
            else:
                p.append(ModelSupport.fit(x, method=method, seed=i).check(obs)["p_value"])
        rows.append(_independent_row(label, p))
        print(f"  independent {label}: {rows[-1]['false']}/{len(p)}", flush=True)
    for variant in ("nf", "standard"):
        p = []
        for i in range(args.independent):
            thetas, xs = gaussian_pairs(args.calibration, seed=1000 + i)
            _, obs = gaussian_pairs(1, seed=5000 + i)
            test = LC2ST.fit(thetas, xs, POSTERIORS["exact"], num_null=args.null, variant=variant,
                             num_posterior_samples=EVAL, seed=i)
            p.append(test.test(obs[0], alpha=ALPHA)["p_value"])
        rows.append(_independent_row(f"sbi_core L-C2ST ({variant})", p))
        print(f"  independent {variant}: {rows[-1]['false']}/{len(p)}", flush=True)
    return rows


def _independent_row(label: str, p: list[float]) -> dict:
    from scipy.stats import kstest

    k = sum(q < ALPHA for q in p)
    return {"test": label, "false": k, "n": len(p), "ci": clopper_pearson(k, len(p)), "median": float(np.median(p)),
            "ks": float(kstest(p, "uniform").pvalue)}


def independent_report(args, rows: list[dict]) -> str:
    lines = [
        f"{machine()}; {args.threads} torch thread(s); alpha = {ALPHA}. "
        "Command: `" + " ".join(["python", "bench/trust.py", *sys.argv[1:]]) + "`",
        "",
        f"What one user meets, {args.independent} times over: misspecification, a fresh set of "
        f"{args.simulations:,} simulations of the two-sensor model and one fresh observation of it; L-C2ST, the "
        f"exact posterior of the conjugate Gaussian with a fresh calibration set of {args.calibration:,} pairs, a "
        f"fresh fit ({args.null} null classifiers) and one fresh observation of the model. The false-alarm rate "
        "should be at most alpha; under the null the "
        "p-values should be uniform or, for a conservative test, lean to 1 (KS p-value against the uniform; "
        f"with {args.null} null classifiers the p-values are steps of 1/{args.null + 1}).",
        "",
        "| test | false alarms | rate (95 % CI) | median p | KS uniformity p |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lo, hi = r["ci"]
        lines.append(f"| {r['test']} | {r['false']}/{r['n']} | {r['false'] / r['n']:.0%} "
                     f"({lo:.0%} to {hi:.0%}) | {r['median']:.2f} | {r['ks']:.2g} |")
    return "\n".join(lines)


# ---- report ------------------------------------------------------------------------------------
def report(args, miss: list[dict], lc: list[dict]) -> str:
    lines = [
        f"{machine()}; {args.threads} torch thread(s); alpha = {ALPHA}. "
        "Command: `" + " ".join([sys.executable if "sbivenv" in sys.executable else "python", "bench/trust.py",
                                 *sys.argv[1:]]) + "`",
        "",
        f"**Misspecification** (two sensors of one quantity, {args.simulations:,} simulations of the model). "
        "p-values at three observations; false alarms among observations of the model itself; power against "
        "sensors three times noisier than the model says. Times: fit once, then per observation.",
        "",
        "| library | test | " + " | ".join(f"p {k}" for k in SINGLE) + " | false alarms | power (noise x 3) "
        "| fit (s) | per observation (ms) |",
        "|---|---|" + "---:|" * (len(SINGLE) + 4),
    ]
    for r in miss:
        cells = " | ".join(f"{r['single'][k]:.3g}" for k in SINGLE)
        note = f" ({r['note']})" if r["note"] else ""
        lines.append(f"| {r['library']} | {r['test']} | {cells} | {r['false']}/{r['n_false']} "
                     f"| {r['power']}/{r['n_power']} | {r['fit']:.2f} | {r['per_obs'] * 1000:.1f}{note} |")
    lines += [
        "",
        f"**L-C2ST** (conjugate Gaussian, D = 2, {args.calibration:,} calibration pairs, {args.null} null "
        f"classifiers, {EVAL:,} evaluation draws). Exact posterior: false alarms among {args.observations} "
        f"observations; the others: rejections among {args.power_observations} observations (power); the "
        "median p-value in brackets. One fit per posterior; fit time: first posterior / mean of the rest (NF: "
        "the first trains the null classifiers, the rest reuse them).",
        "",
        "| library | test | " + " | ".join(POSTERIORS) + " | fit (s) | per observation (ms) |",
        "|---|---|" + "---:|" * (len(POSTERIORS) + 2),
    ]
    for r in lc:
        cells = " | ".join(f"{r['cells'][k][0]}/{r['cells'][k][1]} ({r['cells'][k][2]:.2g})" for k in POSTERIORS)
        rest = sum(r["fits"][1:]) / max(1, len(r["fits"]) - 1)
        lines.append(f"| {r['library']} | {r['test']} | {cells} | {r['fits'][0]:.1f} / {rest:.1f} "
                     f"| {1000 * sum(r['per_obs']) / len(r['per_obs']):.0f} |")
    ours_t = {r["test"]: sum(r["fits"]) for r in lc if r["library"] == "sbi_core"}
    theirs_t = {r["test"]: sum(r["fits"]) for r in lc if r["library"] != "sbi_core"}
    if theirs_t:
        lines += ["", "Total fit time over the five posteriors: " + "; ".join(
            f"{a} {ours_t[a]:.1f} s vs {b} {theirs_t[b]:.1f} s (**{theirs_t[b] / ours_t[a]:.0f}x**)"
            for a, b in zip(ours_t, theirs_t)) + "."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small run (about a minute)")
    ap.add_argument("--calibration", type=int, default=None, help="L-C2ST calibration pairs (1000; quick 500)")
    ap.add_argument("--null", type=int, default=None, help="null classifiers (100; quick 30)")
    ap.add_argument("--observations", type=int, default=None, help="observations for false alarms (100; quick 20)")
    ap.add_argument("--power-observations", type=int, default=None, help="observations for power (20; quick 10)")
    ap.add_argument("--simulations", type=int, default=5000, help="misspecification: simulations of the model")
    ap.add_argument("--sbi-shuffles", type=int, default=None, help="sbi MMD shuffles for many observations "
                                                                   "(200; quick 100)")
    ap.add_argument("--independent", type=int, default=None,
                    help="independent fits for the false-alarm rate (100; quick 20)")
    ap.add_argument("--only-independent", action="store_true", help="run only the independent-fits part")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-sbi", action="store_true", help="sbi_core only (no sbi install needed)")
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args()
    quick = args.quick
    for name, full, small in (("calibration", 1000, 500), ("null", 100, 30), ("observations", 100, 20),
                              ("power_observations", 20, 10), ("sbi_shuffles", 200, 100), ("independent", 100, 20)):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    print("L-C2ST over independent fits", flush=True)
    body = independent_report(args, independent_rows(args))
    print(body)
    if not args.no_write:
        write_section("trust-independent", "## Trust tests: false alarms over independent tries (`bench/trust.py`)\n\n"
                      + body)
    if args.only_independent:
        return
    start = time.perf_counter()
    print("misspecification", flush=True)
    miss = misspecification_rows(args)
    print("L-C2ST", flush=True)
    lc = lc2st_rows(args)
    body = report(args, miss, lc) + f"\n\nWhole run: {time.perf_counter() - start:.0f} s."
    print(body)
    if not args.no_write:
        write_section("trust", "## Trust at one observation: misspecification and L-C2ST beside sbi\n\n" + body)


if __name__ == "__main__":
    main()

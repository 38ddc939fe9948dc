"""Run every check that applies to a stored, finished run, and gather the results.

The job (one call of :func:`run_checks`):

1. **plan** which checks apply (:func:`~.plan.plan_checks`);
2. **test data**: ``N`` pairs ``(theta_i, x_i)`` from the prior, TSNPE's last
   truncated region, or a table run's validation rows (:mod:`.testset`);
3. **draw once**: ``L`` posterior samples at every ``x_i``, ``(N, L, D)``
   (:func:`sbi_core.diagnostics.sample_for_datasets`); SBC ranks, coverage
   (HPD and central), TARP, z-scores and recovery are all computed from these
   same draws;
4. **at the observation**: the posterior predictive check (simulating from
   the run's own posterior samples at ``x_o``), where the model has an exact
   posterior each round's C2ST against it, the misspecification test (is
   ``x_o`` like the model's own simulations from the prior?,
   :func:`sbi_core.diagnostics.check_misspecification`) and, on the test
   datasets, the local C2ST at ``x_o`` (:func:`sbi_core.diagnostics.run_lc2st`) and, when
   ``ensemble_members`` asks for it, the ensemble: ``K - 1`` more estimators of the run's
   method trained on its stored simulations with seeds of their own (:mod:`.members`, as Dask
   tasks inside a check task), their draws at ``x_o`` beside the run's and where they
   disagree (:func:`sbi_core.diagnostics.ensemble_disagreement`);
5. **verdicts** in plain words (:mod:`.verdicts`).

Only free parameters are checked (a fixed one's posterior is its value).
Every random choice comes from the check job's own :class:`~sbi_core.stats.seeds.SeedPlan`
(its seed: :class:`~.options.CheckOptions`), never from the run's streams or
global state. ``on_progress(fraction, step)`` is called as the job goes;
``cancel()`` is consulted between steps and sampling chunks and raises
:class:`~sbi_core.errors.Cancelled`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import torch

from sbi_core.checks import verdicts as V
from sbi_core.checks.members import Member, train_members, travelling_simulator
from sbi_core.checks.options import CheckOptions
from sbi_core.checks.plan import CheckPlan, plan_checks
from sbi_core.checks.results import CheckResults
from sbi_core.checks.testset import TestSet, simulate_test_set, table_test_set
from sbi_core.diagnostics import (
    check_misspecification,
    check_sbc,
    check_tarp,
    ensemble_disagreement,
    expected_coverage,
    posterior_predictive_check,
    recovery,
    run_lc2st,
    run_sbc,
    run_tarp,
    sample_for_datasets,
    zscore_contraction,
)
from sbi_core.diagnostics.coverage import DEFAULT_LEVELS
from sbi_core.diagnostics.disagreement import MIN_DRAWS
from sbi_core.diagnostics.reference import ReferenceC2ST
from sbi_core.errors import Cancelled, SBIError
from sbi_core.methods.tsnpe import TruncatedPrior
from sbi_core.run.loop import resolve_simulator, spec_settings
from sbi_core.run.spec import RunSpec
from sbi_core.simulators import Simulator
from sbi_core.stats.priors import Prior
from sbi_core.stats.seeds import SeedPlan
from sbi_core.stats.shapes import DataShape

__all__ = ["run_checks", "ProgressFn", "PREDICTIVE_SAMPLES", "ENSEMBLE_SAMPLES"]

# on_progress(fraction 0..1, step in words)
ProgressFn = Callable[[float, str], None]
PREDICTIVE_SAMPLES = 1000  # posterior draws at x_o simulated for the predictive check
_WHERE = {"prior": "", "truncated": " from the truncated region", "table": " (held-out table rows)"}


@dataclass
class _Job:
    """What one check job works with; ``tick`` reports progress and honours cancel."""

    store: Any
    run_id: str
    spec: RunSpec
    options: CheckOptions
    on_progress: Optional[ProgressFn]
    cancel: Optional[Callable[[], bool]]
    seeds: SeedPlan = field(init=False)
    summary: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    verdicts: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.seeds = SeedPlan(int(self.options.seed))

    def tick(self, fraction: float, step: str) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("checks cancelled")
        if self.on_progress is not None:
            self.on_progress(float(fraction), step)

    def span(self, lo: float, hi: float, step: str) -> Callable[[int, int], None]:
        """A ``(done, total)`` callback mapping onto progress ``lo..hi``."""
        return lambda done, total: self.tick(lo + (hi - lo) * done / max(total, 1), step)


# ---------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------
def _simulator(spec: RunSpec):
    return resolve_simulator(spec)


def _load_posterior(store: Any, run_id: str, index: int):
    """A saved round's posterior; loading builds a flow, whose initial weights would draw from torch's
    global generator, so it runs on a fork of it (global state is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        return store.load_posterior(run_id, index)


def _prior(spec: RunSpec, simulator) -> Prior:
    return Prior.from_spec(spec.prior) if spec.prior is not None else simulator.prior


def _x_obs(spec: RunSpec, simulator) -> torch.Tensor:
    if spec.observation is not None:
        return torch.tensor(spec.observation, dtype=torch.float32)
    return simulator.default_observation


def _test_set(job: _Job, plan: CheckPlan, simulator, prior: Prior, x_obs, rounds: list[int]) -> TestSet:
    n = job.options.num_datasets
    if plan.test_data == "table":
        folder = job.store.round_dir(job.run_id, rounds[0])
        theta, x = np.load(folder / "theta.npy"), np.load(folder / "x.npy")
        return table_test_set(theta, x, job.spec, limit=n)
    proposal = prior
    if plan.test_data == "truncated":
        job.tick(0.03, "Finding the last round's truncated region")
        previous = _load_posterior(job.store, job.run_id, rounds[-2])
        proposal = TruncatedPrior(prior, previous, x_obs, num_reference=20_000,
                                  generator=job.seeds.generator("region"))
    return simulate_test_set(simulator, proposal, n, job.seeds, plan.test_data,
                             on_progress=job.span(0.05, 0.3, "Simulating test datasets"), cancel=job.cancel)


# ---------------------------------------------------------------------------
# the checks on test datasets (all from one (N, L, D) draw)
# ---------------------------------------------------------------------------
def _dataset_checks(job: _Job, plan: CheckPlan, posterior, prior: Prior, test: TestSet) -> None:
    L = job.options.num_posterior_samples
    free = prior.free_mask
    names = [n for n, f in zip(prior.names, free.tolist()) if f]
    theta, xs = test.theta, test.x
    samples = sample_for_datasets(posterior, xs, L, seed=job.seeds.seed_of("posterior"),
                                  on_event=job.span(0.3, 0.7, "Drawing posterior samples for every test dataset"))
    theta_f, samples_f = theta[:, free], samples[:, :, free]
    n, where = test.size, _WHERE[test.source]
    job.arrays.update(theta=theta_f.numpy(), xs=xs.numpy())
    job.summary["test_set"] = test.to_dict()
    job.summary["checked_names"] = names

    job.tick(0.72, "Ranking the true values (SBC)")
    ranks, dap = run_sbc(theta_f, xs, None, L, samples=samples_f)
    sbc = check_sbc(ranks, theta_f, dap, L, seed=job.seeds.seed_of("sbc") % (2**31))
    u = (ranks.double() + 0.5) / (L + 1)
    tails = ((u < 0.05) | (u > 0.95)).double().mean(0)
    job.arrays.update(ranks=ranks.numpy().astype(np.int32), dap=dap.numpy())
    job.summary["sbc"] = {"num_posterior_samples": L, "ks_pvals": sbc["ks_pvals"], "c2st_ranks": sbc["c2st_ranks"],
                          "c2st_dap": sbc["c2st_dap"], "tails": tails, "mean_rank": u.mean(0)}
    job.verdicts["sbc"] = V.sbc_verdicts(names, sbc["ks_pvals"].tolist(), tails.tolist(), u.mean(0).tolist(), n, where)

    job.tick(0.8, "Measuring coverage")
    levels = list(DEFAULT_LEVELS)
    hpd = expected_coverage(theta, xs, posterior, levels, L, samples=samples, kind="hpd")
    central = expected_coverage(theta_f, xs, None, levels, L, samples=samples_f, kind="central")
    i90, i50 = levels.index(0.9), levels.index(0.5)
    outside90 = 1.0 - central.coverage[i90]
    job.arrays.update(coverage_levels=np.asarray(levels), coverage_hpd=hpd.coverage.numpy(),
                      coverage_hpd_se=hpd.stderr.numpy(), coverage_central=central.coverage.numpy(),
                      coverage_central_se=central.stderr.numpy())

    rec = recovery(theta_f, samples_f)
    err = (rec.means.double() - theta_f.double()) / rec.stds.double().clamp_min(1e-12)
    bias_sd, bias_se = err.mean(0), err.std(0) / np.sqrt(n)
    job.summary["coverage"] = {"density": hpd.density, "hpd50": float(hpd.coverage[i50]),
                               "hpd90": float(hpd.coverage[i90]), "central50": central.coverage[i50],
                               "outside90": outside90, "bias_sd": bias_sd, "bias_sd_se": bias_se}
    job.verdicts["coverage"] = (V.hpd_verdicts(float(hpd.coverage[i90]), n, hpd.density, where)
                                + V.coverage_verdicts(names, outside90.tolist(), n, bias_sd.tolist(),
                                                      bias_se.tolist(), where))

    if plan.applies("tarp"):
        job.tick(0.85, "Computing TARP")
        ecp, alpha = run_tarp(theta_f, xs, None, L, seed=job.seeds.seed_of("tarp"), samples=samples_f)
        atc, ks = check_tarp(ecp, alpha)
        job.arrays.update(tarp_ecp=ecp.numpy(), tarp_alpha=alpha.numpy())
        job.summary["tarp"] = {"atc": atc, "ks_pval": ks}
        job.verdicts["tarp"] = V.tarp_verdicts(atc, ks, n, where)

    if plan.applies("recovery"):
        job.arrays.update(post_mean=rec.means.numpy(), post_std=rec.stds.numpy())
        job.summary["recovery"] = {"r2": rec.r2, "correlation": rec.correlation}
        job.verdicts["recovery"] = V.recovery_verdicts(names, rec.correlation.tolist(), where)

    if plan.applies("zscore"):
        zs = zscore_contraction(theta_f, samples_f, prior.stddev[free])
        large = (zs.z.abs() > 3).double().nanmean(0)
        contraction = zs.contraction.double().nanmean(0)
        job.arrays.update(zscore=zs.z.numpy(), contraction=zs.contraction.numpy())
        job.summary["zscore"] = {"mean_contraction": contraction, "fraction_beyond_3": large,
                                 "mean_z": zs.z.double().nanmean(0), "sd_z": torch.tensor(np.nanstd(zs.z.numpy(), 0))}
        job.verdicts["zscore"] = V.zscore_verdicts(names, contraction.tolist(), large.tolist())


# ---------------------------------------------------------------------------
# the checks at the observation
# ---------------------------------------------------------------------------
def _observation_samples(job: _Job, posterior, x_obs, rounds: list[int]) -> torch.Tensor:
    """The run's own posterior samples at ``x_o`` (last round), else fresh ones."""
    path = job.store.round_dir(job.run_id, rounds[-1]) / "posterior_samples.npy"
    if path.is_file():
        saved = torch.as_tensor(np.load(path, allow_pickle=False), dtype=torch.float32)
        if len(saved) >= 2:
            return saved[:PREDICTIVE_SAMPLES]
    return posterior.sample((PREDICTIVE_SAMPLES,), x=x_obs, generator=job.seeds.generator("observation"))


def _predictive(job: _Job, simulator, posterior, x_obs, rounds: list[int], obs_names: list[str]) -> None:
    job.tick(0.9, "Simulating from the posterior at the observation (predictive check)")
    samples = _observation_samples(job, posterior, x_obs, rounds)
    ppc = posterior_predictive_check(simulator, samples, x_obs, level=0.9, seed=job.seeds.seed_of("predictive"))
    job.arrays.update(ppc_simulations=ppc.simulations.numpy(), ppc_lower=ppc.lower.numpy(),
                      ppc_upper=ppc.upper.numpy(), ppc_inside=ppc.inside.numpy(), ppc_pvalues=ppc.p_values.numpy(),
                      x_obs=ppc.observed.numpy())
    job.summary["predictive"] = {"level": ppc.level, "fraction_inside": ppc.fraction_inside,
                                 "num_simulations": ppc.n_simulations, "num_invalid": ppc.n_invalid}
    shape = getattr(simulator, "data_shape", None)
    if ppc.names is not None:  # trials: their summaries were checked, by these names
        job.summary["predictive"]["names"] = list(ppc.names)
    elif shape is not None and not shape.is_vector:
        job.summary["predictive"]["data_shape"] = shape.to_dict()  # drawn as a fan chart (series) or per pixel
    job.verdicts["predictive"] = V.predictive_verdicts(ppc.names or obs_names, ppc.inside.tolist(), ppc.level)


def _reference_c2st(job: _Job, simulator, prior: Prior, x_obs) -> None:
    """Each round's C2ST against the exact posterior: the value the run recorded live (``round`` events,
    :mod:`sbi_core.diagnostics.reference`) where there is one, else the same score computed now (the run's
    own seed, so it is the number the live view would have shown)."""
    live = {ev.get("round"): ev.get("reference_c2st") for _, ev in job.store.events(job.run_id, types=("round",))}
    reference = ReferenceC2ST(simulator, prior, x_obs, SeedPlan(int(job.spec.seed)))
    rounds = job.store.round_samples(job.run_id)
    values = []
    for r, samples in enumerate(rounds):
        job.tick(0.93 + 0.06 * r / max(len(rounds), 1), f"Comparing round {r + 1} with the exact posterior (C2ST)")
        value = live.get(r)
        if not isinstance(value, (int, float)):
            value = reference.score(torch.as_tensor(samples, dtype=torch.float32)).value
        if value is None:  # e.g. too few kept samples: said so, the other checks stand
            job.summary.setdefault("skipped", {})["reference_c2st"] = (
                reference.reason or f"Round {r + 1} kept too few posterior samples to compare with the exact one.")
            return
        values.append(float(value))
    job.arrays["reference_c2st"] = np.asarray(values, dtype=float)
    job.summary["reference_c2st"] = {"c2st": values}
    job.verdicts["reference_c2st"] = V.reference_verdicts(values)


MAX_FEATURES_KEPT = 20  # components of the observation the misspecification result keeps, most responsible first


def _model_simulations(job: _Job, plan: CheckPlan, rounds: list[int]) -> Optional[np.ndarray]:
    """The model's own simulations from the prior: the first round's ``x (N, K)`` (a table run's rows), or
    ``None`` when they were not kept."""
    try:
        x = np.load(job.store.round_dir(job.run_id, rounds[0]) / "x.npy", allow_pickle=False)
    except (OSError, ValueError):
        return None
    return x.reshape(len(x), -1) if x.ndim > 2 else x


def _misspecification(job: _Job, plan: CheckPlan, x_obs, rounds: list[int], obs_names: list[str]) -> None:
    job.tick(0.86, "Comparing your observation with the model's own simulations (misspecification test)")
    x_train = _model_simulations(job, plan, rounds)
    if x_train is None:
        job.summary.setdefault("skipped", {})["misspecification"] = (
            "The misspecification test needs the simulations of the run's first round, which were not kept.")
        return
    x_o = torch.as_tensor(x_obs, dtype=torch.float32).reshape(-1)
    labels = obs_names if len(obs_names) == x_o.shape[0] else None
    try:
        res = check_misspecification(torch.as_tensor(x_train, dtype=torch.float32), x_o, labels=labels,
                                     seed=job.seeds.seed_of("misspecification"))
    except SBIError as err:  # too few valid simulations, say: the other checks stand
        job.summary.setdefault("skipped", {})["misspecification"] = str(err)
        return
    keep = ("p_value", "statistic", "method", "misspecified", "alpha", "n_train", "n_calibration", "n_invalid",
            "min_p_value", "k")
    job.summary["misspecification"] = {k: res[k] for k in keep if k in res} | {
        "features": [dict(f) for f in res["features"][:MAX_FEATURES_KEPT]], "verdict": res["verdict"]}
    job.verdicts["misspecification"] = V.misspecification_verdicts(bool(res["misspecified"]), res["verdict"])


def _lc2st(job: _Job, posterior, test: TestSet, x_obs) -> None:
    job.tick(0.88, "Testing the posterior at your observation (local C2ST)")
    try:
        res = run_lc2st(test.theta, test.x, posterior, torch.as_tensor(x_obs, dtype=torch.float32).reshape(-1),
                        seed=job.seeds.seed_of("lc2st"))
    except SBIError as err:
        job.summary.setdefault("skipped", {})["lc2st"] = str(err)
        return
    pp = res["pp"]
    job.arrays.update(lc2st_levels=np.asarray(pp["levels"], dtype=float), lc2st_cdf=np.asarray(pp["cdf"], dtype=float),
                      lc2st_null_low=np.asarray(pp["null_low"], dtype=float),
                      lc2st_null_high=np.asarray(pp["null_high"], dtype=float),
                      lc2st_null_statistics=np.asarray(res["null_statistics"], dtype=float))
    keep = ("p_value", "statistic", "variant", "rejected", "alpha", "num_null", "num_posterior_samples",
            "n_calibration", "n_invalid", "classifier")
    job.summary["lc2st"] = {k: res[k] for k in keep if k in res} | {"verdict": res["verdict"]}
    off_model = bool(job.summary.get("misspecification", {}).get("misspecified"))
    job.verdicts["lc2st"] = V.lc2st_verdicts(bool(res["rejected"]), res["verdict"], off_model)


ENSEMBLE_SAMPLES = PREDICTIVE_SAMPLES  # draws at x_o per extra member (the run's own: its saved ones)
_NOT_MEMBER_SETTINGS = ("seed", "num_posterior_samples", "num_threads", "simulations")


def _members(job: _Job, simulator, prior: Prior, x_obs, x: np.ndarray, num_samples: int) -> list[Member]:
    """The ``K - 1`` extra members: the spec's settings, one round on the stored pairs, seeds
    ``seed_of("ensemble_k") mod 2^31`` of the check job's plan (so checking twice trains the same members)."""
    settings = {k: v for k, v in spec_settings(job.spec).items() if k not in _NOT_MEMBER_SETTINGS}
    settings["num_rounds"] = 1
    shape_spec = job.spec.simulator_ref.get("data_shape")
    if isinstance(simulator, Simulator):
        shape = simulator.data_shape
    elif shape_spec is not None:  # a table's confirmed reading of its columns
        shape = DataShape.from_spec(shape_spec, size=x.shape[1])
    else:
        shape = DataShape.vector(x.shape[1])
    # a member task reads the check's cancel flag from the store, where a check job (with a cancel) has one
    cancel_in = (str(job.store.root), job.run_id) if job.cancel is not None and hasattr(job.store, "root") else None
    return [Member(index=k, seed=job.seeds.seed_of(f"ensemble_{k}") % (2**31),
                   simulator=travelling_simulator(simulator), prior=prior.to_spec(),
                   x_obs=torch.as_tensor(x_obs, dtype=torch.float32), data_shape=shape, settings=settings,
                   num_samples=num_samples, threads=torch.get_num_threads(), cancel_in=cancel_in)
            for k in range(1, job.options.ensemble_members)]


def _ensemble(job: _Job, simulator, prior: Prior, posterior, x_obs, rounds: list[int]) -> None:
    """Train ``K - 1`` more estimators on the run's stored pairs and compare all ``K`` at ``x_o``."""
    k_all = job.options.ensemble_members
    job.tick(0.885, f"Training {k_all - 1} more estimator{'s' if k_all > 2 else ''} with other seeds (ensemble)")
    folder = job.store.round_dir(job.run_id, rounds[0])
    try:
        theta = np.load(folder / "theta.npy", allow_pickle=False)
        x = np.load(folder / "x.npy", allow_pickle=False)
    except (OSError, ValueError):
        job.summary.setdefault("skipped", {})["ensemble"] = (
            "Comparing estimators needs the simulations the run trained on, which were not kept.")
        return
    x = x.reshape(len(x), -1) if x.ndim > 2 else x
    own = _observation_samples(job, posterior, x_obs, rounds)
    if len(own) < MIN_DRAWS:  # too few kept: fresh draws of the run's own posterior
        own = posterior.sample((ENSEMBLE_SAMPLES,), x=x_obs, generator=job.seeds.generator("ensemble"))
    members = _members(job, simulator, prior, x_obs, x, ENSEMBLE_SAMPLES)
    started = time.perf_counter()

    def on_member(i: int) -> None:
        job.tick(0.885 + 0.013 * i / len(members),
                 f"Training estimator {i + 2} of {k_all} with another seed (ensemble)")

    draws = train_members(members, torch.as_tensor(theta, dtype=torch.float32),
                          torch.as_tensor(x, dtype=torch.float32), cancel=job.cancel, on_member=on_member)
    free = prior.free_mask
    names = [n for n, f in zip(prior.names, free.tolist()) if f]
    every = [torch.as_tensor(own, dtype=torch.float32)[:, free]] + [d[:, free] for d in draws]
    try:
        res = ensemble_disagreement(every, names)
    except SBIError as err:  # e.g. a member whose draws are all NaN: said so, the other checks stand
        job.summary.setdefault("skipped", {})["ensemble"] = str(err)
        return
    job.arrays.update(ensemble_draws=torch.cat(every).numpy(),
                      ensemble_member=np.concatenate([np.full(len(d), i, dtype=np.int32)
                                                      for i, d in enumerate(every)]))
    job.summary["ensemble"] = res | {"seeds": [int(job.spec.seed)] + [m.seed for m in members],
                                     "seconds": time.perf_counter() - started}
    job.verdicts["ensemble"] = V.ensemble_verdicts(res)


# ---------------------------------------------------------------------------
# the job
# ---------------------------------------------------------------------------
def run_checks(
    store: Any,
    run_id: str,
    options: CheckOptions | dict | None = None,
    on_progress: Optional[ProgressFn] = None,
    cancel: Optional[Callable[[], bool]] = None,
) -> CheckResults:
    """Every check that applies to the finished run ``run_id`` of ``store`` (a :class:`~sbi_core.store.runs.RunStore`).

    Returns the :class:`CheckResults` (not saved: :func:`~.results.save_results`).
    Raises :class:`SBIError` with a plain message when the run cannot be checked
    (no trained posterior, a failing uploaded simulator, too few valid test
    simulations) and :class:`~sbi_core.errors.Cancelled` when ``cancel()`` turns true.
    """
    started = time.perf_counter()
    info = store.get_run(run_id)
    if info is None:
        raise SBIError(f"There is no run {run_id} in this run store.")
    spec = info.spec
    job = _Job(store, run_id, spec, CheckOptions.from_dict(options).resolved(spec.seed), on_progress, cancel)
    rounds = [i for i in store.rounds_saved(run_id) if (store.round_dir(run_id, i) / "posterior.pt").is_file()]
    if not rounds:
        raise SBIError("This run has no trained posterior to check (no round finished).")
    plan = plan_checks(spec, rounds_done=len(rounds))
    job.tick(0.01, "Loading the posterior")
    posterior = _load_posterior(store, run_id, rounds[-1])
    simulator = None if plan.kind == "table" else _simulator(spec)
    prior = Prior.from_spec(spec.prior) if simulator is None else _prior(spec, simulator)
    x_obs = torch.tensor(spec.observation, dtype=torch.float32) if simulator is None else _x_obs(spec, simulator)
    obs_names = list(getattr(simulator, "obs_names", None) or [f"x{k + 1}" for k in range(x_obs.shape[0])])
    job.summary.update(run_id=run_id, plan=plan.to_dict(), options=job.options.to_dict(), param_names=prior.names,
                       obs_names=obs_names, rounds_checked=len(rounds))
    test = None
    if plan.needs_test_data:
        test = _test_set(job, plan, simulator, prior, x_obs, rounds)
        _dataset_checks(job, plan, posterior, prior, test)
    if plan.applies("misspecification"):
        _misspecification(job, plan, x_obs, rounds, obs_names)
    if plan.applies("lc2st") and test is not None:
        _lc2st(job, posterior, test, x_obs)
    if job.options.ensemble_members:
        if plan.applies("ensemble"):
            _ensemble(job, simulator, prior, posterior, x_obs, rounds)
        else:
            job.summary.setdefault("skipped", {})["ensemble"] = plan.item("ensemble").reason
    if plan.applies("predictive"):
        _predictive(job, simulator, posterior, x_obs, rounds, obs_names)
    if plan.applies("reference_c2st"):
        _reference_c2st(job, simulator, prior, x_obs)
    verdicts = {k: [v.to_dict() for v in vs] for k, vs in job.verdicts.items()}
    job.summary["overall"] = V.overall_verdict(verdicts).to_dict()
    job.summary["verdicts"] = verdicts
    job.summary["seconds"] = time.perf_counter() - started
    job.tick(1.0, "Done")
    return CheckResults(job.summary, job.arrays)

r"""A comparison: several inference methods raced on one model, prior and observation.

A comparison is a list of ordinary runs, one :class:`~sbi_core.RunSpec` per
(method, budget), identical in everything else (simulator, prior,
observation, network settings, seed). The job manager queues them and runs
them one after another (on a 2-core machine one run at a time), and the
store keeps their events like any run's. This module holds the arithmetic
around that, and nothing that draws:

* **the specs** (:func:`comparison_specs`). A budget ``B`` is the *total*
  number of simulations a method may use. A one-round method (NPE, rejection
  ABC) spends it in one round; a sequential one (SNPE, SNLE, SMC-ABC ...)
  splits it into ``R`` rounds of ``floor(B / R)`` simulations, so every
  method gets the same budget (up to ``R - 1`` simulations lost to rounding).
  For data that is not a plain vector, several *summaries of the data* (the
  RunSpec's ``embedding``: a learned network, the model's hand-made summary
  statistics, the raw numbers) may be compared too: each method that reads the
  data through a summary (:data:`SUMMARY_FAMILIES`: NPE's and NRE's) runs once
  per budget and summary, the others once per budget;
* **one row per run** (:func:`compare_row`): status, rounds, simulations
  used, time, the final C2ST, and what the method's sampler reports (ABC's
  acceptance rate and :math:`\varepsilon`, MCMC's effective sample size and
  :math:`\hat R`), read defensively from the round events;
* **the "C2ST against simulations" curves** (:func:`c2st_curves`): after round
  ``r`` of a run, ``x_r = \sum_{s \le r} n_s`` (the cumulative simulations)
  and ``y_r`` the round's C2ST against the exact posterior, where the model
  has one (:mod:`sbi_core.diagnostics.reference`);
* **the fallback** when no round has an exact C2ST: the most accurate run is
  taken as the reference (:func:`reference_run`) and every other run's final
  samples are scored against its final samples (:func:`fallback_c2st`). The
  rule: among finished runs with samples, prefer a *sequential neural* method
  (it spends its budget near the observation and its network smooths the
  samples), then the most simulations, then the latest round. 0.5 then means
  "indistinguishable from the reference run", not "exact".

C2ST (classifier two-sample test, :func:`sbi_core.diagnostics.c2st`) is the
cross-validated accuracy of a classifier told to separate the two sample
sets: 0.5 means they cannot be told apart, 1.0 that they do not overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from sbi_core.diagnostics.c2st import c2st
from sbi_core.errors import SBIError
from sbi_core.methods.catalogue import method_info
from sbi_core.run.ids import is_run_id
from sbi_core.run.spec import RunSpec
from sbi_core.stats.shapes import embedding_short
from sbi_core.tables.common import split_whole_numbers

__all__ = [
    "DEFAULT_BUDGET", "DEFAULT_ROUNDS", "DEFAULT_MAX_EPOCHS", "MAX_RUNS", "BUDGET_RANGE",
    "SUMMARY_FAMILIES", "CompareRow", "comparison_base", "parse_budgets", "split_budget", "comparison_specs",
    "compare_row", "name_summaries", "rows_from_store",
    "c2st_curves", "reference_run", "fallback_c2st", "parse_run_ids",
]

DEFAULT_BUDGET = 2000  # total simulations per method: a two-method race takes a minute or two on 2 cores
DEFAULT_ROUNDS = 4  # rounds of a sequential method (generations of SMC-ABC)
DEFAULT_MAX_EPOCHS = 60  # per round: caps the slowest round of a class demo
MAX_RUNS = 12  # methods x budgets (x summaries) in one comparison
SUMMARY_FAMILIES = ("posterior", "ratio")  # what a method learns (Method.learns) when it reads the data through a summary
BUDGET_RANGE = (100, 100_000)
_MIN_PER_ROUND = 20  # RunSpec's smallest simulations_per_round


# ---- building a comparison ----------------------------------------------------------
def comparison_base(model_fields: Mapping[str, Any], max_epochs: int = DEFAULT_MAX_EPOCHS, seed: int = 0,
                    **settings: Any) -> RunSpec:
    """The spec every run of a comparison shares: the model's fields (``simulator``, ``prior``,
    ``observation``, ``true_theta``), the guided demo's small network (:meth:`RunSpec.demo`: seconds
    per round on a laptop), ``max_epochs`` and ``seed``; ``settings`` override any other field."""
    demo = RunSpec.demo()
    fields = dict(method="npe", num_rounds=1, density_estimator=demo.density_estimator,
                  hidden_features=demo.hidden_features, num_transforms=demo.num_transforms,
                  patience=demo.patience, num_posterior_samples=demo.num_posterior_samples)
    fields.update(model_fields)
    fields.update(settings)
    return RunSpec(**fields, max_epochs=int(max_epochs), seed=int(seed))


def parse_budgets(text: str) -> list[int]:
    """``"1000, 4000"`` -> ``[1000, 4000]``: budgets separated by commas, spaces or semicolons.

    ``"1,000"`` is one thousand (a thousands separator, by the rules of
    :func:`sbi_core.tables.common.split_whole_numbers`), never the budget 1.

    Raises :class:`SBIError` for anything that is not a whole number in :data:`BUDGET_RANGE`.
    Duplicates are dropped; the order is kept.
    """
    parts = split_whole_numbers(text)
    if not parts:
        raise SBIError("Type at least one budget: the total number of simulations each method may use.")
    out: list[int] = []
    lo, hi = BUDGET_RANGE
    for p, value, piece in parts:
        if value is None:
            raise SBIError(f"A budget is a whole number of simulations, like 2000 or 2,000; {p!r} is not.")
        if not lo <= value <= hi:
            hint = ""
            if "," in p:  # "500,100": groups of three digits
                hint = (f" ({p} was read as {value}: a comma between groups of three digits separates "
                        "thousands. Separate several budgets with a space or a semicolon, e.g. 500; 1000)")
            elif piece != p:  # "1,5": commas that do not group thousands separate budgets
                read = [t for t, _, q in parts if q == piece]
                hint = (f" ({piece} was read as the budgets {' and '.join(read)}: a comma separates budgets "
                        "unless it groups thousands, like 1,000. Budgets are whole numbers of simulations)")
            raise SBIError(f"Each budget must be from {lo:,} to {hi:,} simulations; {value:,} is not{hint}.")
        if value not in out:
            out.append(value)
    return out


def split_budget(method: str, budget: int, num_rounds: int) -> tuple[int, int]:
    """``(rounds, simulations per round)`` of ``method`` on ``budget`` total simulations.

    A one-round method takes the whole budget in one round; a sequential one
    ``num_rounds`` rounds of ``budget // num_rounds`` (at least 20 each, else an
    :class:`SBIError` saying to use fewer rounds or a larger budget).
    """
    m = method_info(method)
    rounds = m.rounds(int(num_rounds))
    per_round = int(budget) // rounds
    if per_round < _MIN_PER_ROUND:
        raise SBIError(
            f"{m.title}: {budget:,} simulations in {rounds} rounds leaves {per_round} per round; a round needs "
            f"at least {_MIN_PER_ROUND}. Use fewer rounds or a larger budget."
        )
    return rounds, per_round


def _takes_summary(method: str) -> bool:
    """Whether ``method`` reads the data through a summary (an embedding), so that summaries are compared for it."""
    return method_info(method).learns in SUMMARY_FAMILIES


def comparison_specs(base: RunSpec, methods: Sequence[str], budgets: Sequence[int],
                     num_rounds: int = DEFAULT_ROUNDS, summaries: Optional[Sequence[str]] = None) -> list[RunSpec]:
    """One RunSpec per (method, budget, summary), in that order (methods outer), all else taken from ``base``.

    ``base`` fixes the model, prior, observation, network, training settings and
    seed; each spec gets its method, its rounds and simulations per round
    (:func:`split_budget`) and a title naming both. ``summaries``: the RunSpec
    ``embedding`` values to compare (``None``: ``base.embedding`` alone). With one
    summary there is one run per (method, budget), titled as without summaries;
    with several, a method of :data:`SUMMARY_FAMILIES` runs once per summary (its
    title names it); any other method (ABC, NLE: they read the data as it is)
    runs once per budget with ``base.embedding``. Raises :class:`SBIError` without
    methods, budgets or summaries, with an unknown method, or with more than
    :data:`MAX_RUNS` runs.
    """
    methods = list(dict.fromkeys(methods))
    budgets = [int(b) for b in dict.fromkeys(budgets)]
    summaries = [base.embedding] if summaries is None else list(dict.fromkeys(summaries))
    if not methods:
        raise SBIError("Pick at least one method to compare.")
    if not budgets:
        raise SBIError("Give at least one budget (total simulations per method).")
    if not summaries:
        raise SBIError("Pick at least one summary of the data to compare.")
    several = len(summaries) > 1
    per_method = {m: summaries if _takes_summary(m) else [base.embedding] for m in methods}
    total = sum(len(budgets) * len(s) for s in per_method.values())
    if total > MAX_RUNS:
        what = f"{len(methods)} methods x {len(budgets)} budgets" + (f" x {len(summaries)} summaries" if several else "")
        raise SBIError(f"{what} makes {total} runs; a comparison holds at most {MAX_RUNS}. "
                       f"Pick fewer methods{', budgets or summaries' if several else ' or budgets'}.")
    specs = []
    for name in methods:
        title = method_info(name).title
        for budget in budgets:
            rounds, per_round = split_budget(name, budget, num_rounds)
            for summary in per_method[name]:
                named = f", {embedding_short(summary)}" if several and _takes_summary(name) else ""
                specs.append(replace(base, method=name, num_rounds=rounds, simulations_per_round=per_round,
                                     embedding=summary, title=f"Compare: {title}, {budget:,} simulations{named}"))
    return specs


def parse_run_ids(text: Optional[str]) -> list[str]:
    """The run ids of a ``?compare=<id1>,<id2>`` value: well-formed ids only, in order, at most :data:`MAX_RUNS`."""
    ids = [p.strip().lower() for p in str(text or "").split(",")]
    return list(dict.fromkeys(i for i in ids if is_run_id(i)))[:MAX_RUNS]


# ---- one row per run -------------------------------------------------------------------
@dataclass(frozen=True)
class CompareRow:
    """What the comparison shows about one run (``None``: not known, or not this method's)."""

    run_id: str
    method: str
    method_title: str
    learns: str
    sequential: bool
    budget: int  # simulations the spec plans: rounds x simulations per round
    status: str
    rounds_done: int
    num_rounds: int
    simulations: int  # used so far (the round in progress included)
    seconds: Optional[float]
    c2st: Optional[float]  # the last round's C2ST against the exact posterior
    acceptance_rate: Optional[float] = None  # ABC
    epsilon: Optional[float] = None  # ABC
    ess: Optional[float] = None  # MCMC: the lowest per-parameter ESS (ABC: the particles' ESS)
    rhat: Optional[float] = None  # MCMC: the highest per-parameter R-hat
    warning: Optional[str] = None  # the sampler's warning in plain words
    message: Optional[str] = None  # why a failed run failed
    embedding: str = "auto"  # the run's summary of the data (its RunSpec's embedding)
    summary_label: Optional[str] = None  # the summary in words, where the comparison compares several

    @property
    def label(self) -> str:
        """``"Sequential SNPE · 2,000 sims"``: names the run among the comparison's (with its summary,
        ``"... · hand-made summaries"``, where :func:`name_summaries` set one)."""
        return f"{self.method_title} · {self.budget:,} sims" + (f" · {self.summary_label}" if self.summary_label else "")


def _finite(v: Any) -> Optional[float]:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _sampling_fields(sampling: Any) -> dict:
    """ABC's and MCMC's numbers from a round event's ``sampling`` (``None`` or a dict of either kind)."""
    if not isinstance(sampling, dict):
        return {}
    kind = sampling.get("kind")
    out: dict = {"warning": sampling.get("warning") or None}
    if kind == "abc":
        out.update(acceptance_rate=_finite(sampling.get("acceptance_rate")),
                   epsilon=_finite(sampling.get("epsilon")), ess=_finite(sampling.get("ess")))
    elif kind == "mcmc":
        ess = [v for v in map(_finite, np.atleast_1d(sampling.get("ess") or []).tolist()) if v is not None]
        rhat = [v for v in map(_finite, np.atleast_1d(sampling.get("rhat") or []).tolist()) if v is not None]
        out.update(ess=min(ess) if ess else None, rhat=max(rhat) if rhat else None)
    return out


def compare_row(info: Any, rounds: Sequence[Mapping], simulated: Optional[int] = None,
                failure: Optional[Mapping] = None) -> CompareRow:
    """The row of one run.

    ``info``: its :class:`~sbi_core.store.runs.RunInfo`; ``rounds``: its ``round``
    events in order (samples not needed); ``simulated``: simulations so far with
    the round in progress (default: the finished rounds'); ``failure``: its
    ``failed`` event, whose message stands in for a missing stored one.
    """
    spec = info.spec
    try:
        m = method_info(spec.method)
        title, learns, sequential, total = m.title, m.learns, m.sequential, m.rounds(spec.num_rounds)
    except SBIError:  # a stored run of a method this server no longer has
        title, learns, sequential, total = str(spec.method), "posterior", True, int(spec.num_rounds)
    used = sum(int(r.get("num_simulations") or 0) for r in rounds)
    last = rounds[-1] if rounds else {}
    message = None
    if info.status == "failed":
        message = info.message or (failure or {}).get("message") or "The run failed."
    return CompareRow(
        run_id=info.id, method=spec.method, method_title=title, learns=learns, sequential=sequential,
        budget=total * int(spec.simulations_per_round), status=info.status, rounds_done=len(rounds),
        num_rounds=int(last.get("num_rounds") or total), simulations=max(used, int(simulated or 0)),
        seconds=info.seconds, c2st=_finite(last.get("reference_c2st")), message=message,
        embedding=str(getattr(spec, "embedding", "auto")), **_sampling_fields(last.get("sampling")),
    )


def name_summaries(rows: Sequence[CompareRow]) -> list[CompareRow]:
    """``rows`` with :attr:`CompareRow.summary_label` set on the runs that read the data through a
    summary (:data:`SUMMARY_FAMILIES`), when those runs use more than one summary; unchanged otherwise."""
    takes = [r for r in rows if r.learns in SUMMARY_FAMILIES]
    if len({r.embedding for r in takes}) < 2:
        return list(rows)
    return [replace(r, summary_label=embedding_short(r.embedding)) if r.learns in SUMMARY_FAMILIES else r
            for r in rows]


def rows_from_store(store: Any, run_ids: Sequence[str]) -> list[CompareRow]:
    """The rows of ``run_ids`` read from a :class:`~sbi_core.store.runs.RunStore` (unknown ids are skipped)."""
    rows = []
    for rid in run_ids:
        info = store.get_run(rid)
        if info is None:
            continue
        events = [ev for _, ev in store.events(rid, types=("simulation", "round", "failed"))]
        rounds = [ev for ev in events if ev["type"] == "round"]
        sims: dict = {}
        for ev in events:
            if ev["type"] == "simulation":
                sims[int(ev["round"])] = int(ev.get("done") or 0)
        failure = next((ev for ev in events if ev["type"] == "failed"), None)
        rows.append(compare_row(info, rounds, sum(sims.values()), failure))
    return name_summaries(rows)


# ---- accuracy against simulations ----------------------------------------------------
def c2st_curves(rounds_by_run: Mapping[str, Sequence[Mapping]]) -> dict[str, tuple[list[int], list[float]]]:
    """``{run id: (cumulative simulations after each round, its C2ST)}`` for rounds that have an exact
    C2ST (``reference_c2st``); runs without one are left out, so ``{}`` means "no exact posterior"."""
    out = {}
    for rid, rounds in rounds_by_run.items():
        xs, ys, total = [], [], 0
        for r in rounds:
            total += int(r.get("num_simulations") or 0)
            v = _finite(r.get("reference_c2st"))
            if v is not None:
                xs.append(total)
                ys.append(v)
        if xs:
            out[rid] = (xs, ys)
    return out


def reference_run(rows: Sequence[CompareRow]) -> Optional[CompareRow]:
    """The run the others are scored against when there is no exact posterior (the module's rule):
    a finished run with a round; sequential neural methods first, then the most simulations, then
    the most rounds. ``None`` when no run qualifies."""
    done = [r for r in rows if r.status == "done" and r.rounds_done > 0]
    if not done:
        return None

    def rank(r: CompareRow) -> tuple:
        return (r.sequential and r.learns != "nothing", r.learns != "nothing", r.simulations, r.rounds_done)

    return max(done, key=rank)


def fallback_c2st(final_samples: Mapping[str, Any], reference: str, seed: int = 0, num_samples: int = 500,
                  max_iter: int = 200) -> dict[str, float]:
    """C2ST of each run's final samples against the reference run's: ``{run id: accuracy}``.

    ``final_samples``: ``{run id: (m, D) array}``; the reference itself and
    runs with fewer than 20 samples are left out. Each side is cut to
    ``num_samples`` (the first ones: independent draws) and the classifier
    trains ``max_iter`` epochs, as the per-round reference C2ST does
    (:mod:`sbi_core.diagnostics.reference`: its folds trained at once, a few tenths of a second each).
    """
    import torch

    ref = np.asarray(final_samples.get(reference, []), dtype=float)
    if ref.ndim != 2 or len(ref) < 20:
        return {}
    ref = ref[np.isfinite(ref).all(1)][:num_samples]
    out = {}
    for rid, samples in final_samples.items():
        a = np.asarray(samples, dtype=float)
        if rid == reference or a.ndim != 2 or a.shape[1] != ref.shape[1]:
            continue
        a = a[np.isfinite(a).all(1)][:num_samples]
        if len(a) < 20:
            continue
        out[rid] = c2st(torch.as_tensor(ref), torch.as_tensor(a), seed=seed, max_iter=max_iter, engine="torch")
    return out

"""Which calibration checks apply to a run, and why, in plain words.

A check asks whether the posterior is right *on average over datasets*: draw
``theta_i`` from some distribution ``p~``, simulate ``x_i ~ p(x | theta_i)``
and ask where ``theta_i`` falls in ``q(theta | x_i)``. If ``q`` is the
posterior under the prior ``p~``, ``theta_i`` is just one more posterior draw,
so its rank is uniform (SBC), a level-``a`` region holds it a fraction ``a``
of the time (coverage, TARP), and so on. That only tests ``q`` where it is
meant to be right:

* **amortized** (one round on the prior, or a run whose only finished round
  drew from the prior): ``q(theta | x)`` should be the posterior for every
  ``x``, so the test parameters come from the prior: every check applies;
* **sequential** (SNPE): from round 2 on the network is trained for ``x_o``
  only; across the prior it is not meant to be right, so the prior-wide
  checks would fail for the wrong reason and are left out. What applies: the
  predictive check at ``x_o`` and, for a built-in model with an exact
  posterior (under its own prior), the C2ST of each round's posterior against
  it;
* **TSNPE**: its rounds draw from the prior truncated to the last
  posterior's high-density region, and its network is approximately the
  posterior for data simulated there: SBC, coverage, TARP and recovery are
  computed with test parameters from that region (said so on every plot);
* **ABC** (rejection or SMC): the posterior is the simulations closest to
  ``x_o``, so it exists at ``x_o`` only: as for sequential runs, only the
  predictive check and the C2ST against an exact posterior apply;
* **a table of simulations** (no simulator): there is no fresh data, so the
  checks use the table's validation rows, which the network never took a
  gradient step on (they only chose when training stopped); the predictive
  check needs a simulator and is skipped.

The **ensemble** (asked for with ``CheckOptions.ensemble_members``) retrains the run's method
on the run's own stored simulations with other seeds and compares the estimators at ``x_o``.
That is the same method on the same data only where every training pair came from the prior in
the run's one round: an amortized neural method (NPE, FMPE, NPSE, NLE, NRE), or NPE on a table.
A sequential run's later pairs came from its own proposals, ABC trains no network: there it is
skipped, with the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from sbi_core.methods.catalogue import method_info
from sbi_core.run.spec import RunSpec
from sbi_core.simulators import get_simulator
from sbi_core.stats.priors import Prior

__all__ = ["CheckItem", "CheckPlan", "plan_checks", "CHECK_KEYS", "CHECK_TITLES"]

CHECK_TITLES = {
    "sbc": "Simulation-based calibration (ranks)",
    "coverage": "Expected coverage",
    "tarp": "TARP coverage",
    "zscore": "Posterior z-score against contraction",
    "recovery": "Parameter recovery",
    "predictive": "Posterior predictive check at the observation",
    "reference_c2st": "Distance to the exact posterior (C2ST), round by round",
    "misspecification": "Could the model have made your data? (misspecification test)",
    "lc2st": "Is the posterior right at your observation? (local C2ST)",
    "ensemble": "Do estimators trained with other seeds agree at your observation? (ensemble)",
}
CHECK_KEYS = tuple(CHECK_TITLES)
_PRIOR_WIDE = ("sbc", "coverage", "tarp", "zscore", "recovery")


@dataclass(frozen=True)
class CheckItem:
    """One check: whether it applies to the run, and why (or why not), in a sentence."""

    key: str
    title: str
    applies: bool
    reason: str


@dataclass(frozen=True)
class CheckPlan:
    """What the checks of one run do.

    kind: ``"amortized"``, ``"sequential"``, ``"truncated"`` (TSNPE), ``"abc"`` or ``"table"``.
    test_data: where the test datasets come from: ``"prior"``, ``"truncated"``
        (the last TSNPE region), ``"table"`` (validation rows) or ``"none"``.
    summary: a paragraph for people.
    """

    kind: str
    test_data: str
    summary: str
    items: tuple[CheckItem, ...]

    def applies(self, key: str) -> bool:
        return any(i.key == key and i.applies for i in self.items)

    def item(self, key: str) -> CheckItem:
        return next(i for i in self.items if i.key == key)

    @property
    def needs_test_data(self) -> bool:
        return any(self.applies(k) for k in _PRIOR_WIDE)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "test_data": self.test_data, "summary": self.summary,
                "items": [asdict(i) for i in self.items]}

    @classmethod
    def from_dict(cls, data: dict) -> "CheckPlan":
        return cls(data["kind"], data["test_data"], data["summary"],
                   tuple(CheckItem(**i) for i in data["items"]))


def _has_exact_posterior(spec: RunSpec) -> tuple[bool, str]:
    """Whether the run's model has a closed-form posterior under the run's prior (and why not)."""
    ref = spec.simulator_ref
    if ref.get("kind") != "builtin":
        return False, "Only some built-in models have an exact posterior to compare with; this model has none."
    try:
        sim = get_simulator(ref.get("name", ""))
    except KeyError:
        return False, "The run's model is not one of this server's built-in models."
    if not sim.has_reference_posterior:
        return False, f"{sim.title} has no exact posterior in closed form to compare with."
    if spec.prior is not None and Prior.from_spec(spec.prior) != sim.prior:
        return False, (f"The exact posterior of {sim.title} is known under its default prior only, and this run "
                       "changed the prior.")
    return True, f"{sim.title} has an exact posterior: each round's posterior at the observation is compared with it."


MISSPECIFICATION_WHY = ("Compares your observation with the model's own simulations from the prior (the first "
                        "round's): a nearest-neighbour test whose p-value is calibrated on those simulations.")
LC2ST_WHY = ("A classifier learns, on the test datasets, to tell the posterior's draws from true parameters; "
             "at your observation it is compared with classifiers trained where the posterior is right by "
             "construction (Linhart et al. 2023).")
LC2ST_NOT_HERE = ("Not applicable: the local C2ST learns from test datasets across the prior (or the truncated "
                  "region), which this run's posterior is not meant to answer for.")


ENSEMBLE_WHY = ("Trains more estimators of the run's method on the run's own simulations, each with a seed of its "
                "own, and compares their posteriors at your observation with the run's (a deep ensemble, "
                "Lakshminarayanan et al. 2017). It runs when you ask for it: set how many estimators to compare.")
ENSEMBLE_NOT_ABC = ("Not applicable: ABC trains no network, so there is no luck of training for other seeds to "
                    "show.")
ENSEMBLE_NOT_SEQUENTIAL = ("Not applicable: training more estimators on the run's simulations is the same method "
                           "on the same data only when every simulation came from the prior in one round (an "
                           "amortized method). This run is sequential: its later rounds simulated from its own "
                           "posterior, and a new estimator could not be trained the way the run was.")


def _ensemble(spec: RunSpec) -> tuple[bool, str]:
    """Whether more estimators of ``spec``'s method can be trained on the run's stored simulations, and why:
    a neural method of one round on the prior (or on a table)."""
    if method_info(spec.method).learns == "nothing":
        return False, ENSEMBLE_NOT_ABC
    if spec.is_sequential:
        return False, ENSEMBLE_NOT_SEQUENTIAL
    return True, ENSEMBLE_WHY


def _items(applies: dict, reasons: dict, ensemble: tuple[bool, str]) -> tuple[CheckItem, ...]:
    """The plan's items; the checks at the observation follow the others: the misspecification test
    applies to every run (it needs only the model's simulations), the local C2ST where test datasets are,
    the ensemble where ``ensemble`` (:func:`_ensemble`) says."""
    applies = {"misspecification": True, "lc2st": any(applies[k] for k in _PRIOR_WIDE),
               "ensemble": ensemble[0]} | applies
    reasons = {"misspecification": MISSPECIFICATION_WHY,
               "lc2st": LC2ST_WHY if applies["lc2st"] else LC2ST_NOT_HERE, "ensemble": ensemble[1]} | reasons
    return tuple(CheckItem(k, CHECK_TITLES[k], bool(applies[k]), reasons[k]) for k in CHECK_KEYS)


def _abc_plan(exact: bool, base_reasons: dict, ensemble: tuple[bool, str]) -> CheckPlan:
    """ABC keeps the simulations closest to the observation: its posterior exists at ``x_o`` only."""
    applies = {k: False for k in _PRIOR_WIDE} | {"predictive": True, "reference_c2st": exact}
    reasons = {k: ("Not applicable: ABC's posterior is made of the simulations closest to this observation, so "
                   "there is no posterior for other data to test across the prior (that needs an amortized "
                   "method such as NPE, NLE or NRE).") for k in _PRIOR_WIDE}
    return CheckPlan("abc", "none", (
        "This run used ABC: it kept the simulations closest to the observation, so its posterior answers this "
        "observation only. Prior-wide calibration checks (SBC, coverage, TARP) need a posterior for every "
        "dataset and do not apply. What applies: the predictive check at the observation"
        + (", and the distance to the exact posterior." if exact else ".")),
        _items(applies, reasons | base_reasons, ensemble))


def plan_checks(spec: RunSpec, rounds_done: Optional[int] = None) -> CheckPlan:
    """The checks that apply to a run of ``spec`` with ``rounds_done`` finished rounds (default: all)."""
    rounds = spec.rounds if rounds_done is None else int(rounds_done)
    exact, exact_why = _has_exact_posterior(spec)
    ensemble = _ensemble(spec)
    table = spec.simulator_ref.get("kind") == "table"
    if table:
        applies = {k: True for k in _PRIOR_WIDE} | {"predictive": False, "reference_c2st": False}
        reasons = {k: "Computed on the table's validation rows: simulations the network never trained on "
                      "(they only decided when training stopped)." for k in _PRIOR_WIDE}
        reasons["predictive"] = ("Skipped: the run was trained on a table of simulations, so there is no simulator "
                                 "to simulate new data from the posterior.")
        reasons["reference_c2st"] = "Skipped: a table of simulations has no exact posterior to compare with."
        reasons["misspecification"] = ("Compares your observation with the table's simulations: a nearest-neighbour "
                                       "test whose p-value is calibrated on those simulations.")
        return CheckPlan("table", "table", (
            "This run was trained on an uploaded table of simulations, so no fresh test data can be simulated. "
            "The calibration checks use the table's validation rows instead (held out from training); the "
            "predictive check needs a simulator and is skipped."), _items(applies, reasons, ensemble))
    base_reasons = {"predictive": "Simulates data from the posterior at the observation and compares them with it.",
                    "reference_c2st": exact_why}
    if method_info(spec.method).learns == "nothing":
        return _abc_plan(exact, base_reasons, ensemble)
    if not spec.is_sequential or rounds <= 1:
        applies = {k: True for k in _PRIOR_WIDE} | {"predictive": True, "reference_c2st": exact}
        reasons = {k: "Test parameters drawn from the prior, data simulated from them." for k in _PRIOR_WIDE}
        why = ("The posterior was trained on simulations from the whole prior (amortized), so it should be right "
               "for any data the model can produce: every check applies, with test data simulated from the prior.")
        if spec.is_sequential:
            why = ("Only the first round of this sequential run finished, and that round drew from the whole prior, "
                   "so its posterior is amortized: every check applies, with test data simulated from the prior.")
        return CheckPlan("amortized", "prior", why, _items(applies, reasons | base_reasons, ensemble))
    not_here = ("Not applicable: a sequential posterior is trained for the observation only, so across the prior it "
                "is not meant to be right, and this check would fail for the wrong reason.")
    info = method_info(spec.method)
    if info.truncated:  # TSNPE, TSFMPE, TSNPSE
        short = info.title.split()[-1]
        applies = {"sbc": True, "coverage": True, "tarp": True, "zscore": False, "recovery": True,
                   "predictive": True, "reference_c2st": exact}
        inside = f"Test parameters drawn from the last round's truncated region (where {short}'s posterior is valid)."
        reasons = {"sbc": inside, "coverage": inside, "tarp": inside, "recovery": inside,
                   "zscore": ("Not applicable: contraction compares the posterior with the whole prior, which this "
                              "truncated run was not trained across.")}
        return CheckPlan("truncated", "truncated", (
            f"{short} trains its later rounds on parameters from the prior truncated to the region where the posterior "
            "puts its mass, and its posterior is approximately right for data simulated from there. So SBC, coverage, "
            "TARP and recovery are computed with test parameters from the last round's truncated region, not "
            "the whole prior; the predictive check tests the observation itself."),
            _items(applies, reasons | base_reasons, ensemble))
    applies = {k: False for k in _PRIOR_WIDE} | {"predictive": True, "reference_c2st": exact}
    reasons = {k: not_here for k in _PRIOR_WIDE}
    return CheckPlan("sequential", "none", (
        "This run is sequential: after its first round it simulated only near the observation, so its posterior is "
        "valid near the observation, not across the prior. Prior-wide calibration checks (SBC, coverage, TARP) do "
        "not apply. What applies: the predictive check at the observation"
        + (", and the distance to the exact posterior round by round." if exact else ".")),
        _items(applies, reasons | base_reasons, ensemble))

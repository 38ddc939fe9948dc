"""Plain-words verdicts computed from the checks' numbers.

Each verdict is one sentence and a kind: ``"good"``, ``"warn"``, ``"bad"`` or
``"info"``. The thresholds are statistical, so a calibrated posterior is
rarely called miscalibrated by chance:

* **coverage** of the central 90 % interval, per parameter: over ``N`` test
  datasets the share outside it has standard error ``sqrt(0.1 * 0.9 / N)``;
  more than 3 standard errors above 10 % is *overconfident* (intervals too
  narrow), more than 3 below is *underconfident* (too wide);
* **bias**: the posterior mean's offset from the truth in posterior standard
  deviations, ``b = mean_i (m_i - theta_i) / s_i``; biased when ``|b| > 0.3``
  and ``|b|`` is more than 3 standard errors from 0;
* **SBC**: ranks are non-uniform when the KS p-value is below 0.01; the shape
  says why: too many ranks in the outer 10 % (both ends) is overconfident, too
  few underconfident, a mean rank off 0.5 biased (each measured in standard
  errors; every shape more than 2 off is named, else the largest);
* **HPD coverage**: the 90 % level against 3 binomial standard errors;
  **TARP**: its area to the diagonal (ATC) more than 3 calibrated standard
  deviations from 0, or its KS p-value below 0.01;
* **recovery**: the correlation of posterior means with the true values;
  **contraction**: ``1 - Var_post / Var_prior`` on average;
* **predictive check**: whether every component of the observation lies in
  its 90 % predictive band; **reference C2ST**: the last round's accuracy
  (0.5 is indistinguishable from the exact posterior);
* **ensemble**: estimators trained with other seeds disagree on a parameter when
  the spread of their means exceeds 0.458 posterior sds (Gelman-Rubin's R-hat above
  1.1) or one is more than 1.5 times as wide as another
  (:mod:`sbi_core.diagnostics.disagreement`); a *warning*, and *bad* when the spread
  of their means exceeds one posterior sd (then at least one member is off by about a
  posterior sd or more).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

__all__ = [
    "Verdict", "pct", "coverage_verdicts", "sbc_verdicts", "hpd_verdicts", "tarp_verdicts", "zscore_verdicts",
    "recovery_verdicts", "predictive_verdicts", "reference_verdicts", "misspecification_verdicts", "lc2st_verdicts",
    "ensemble_verdicts", "overall_verdict",
]

SIGMAS = 3.0  # how many standard errors from nominal before a verdict says "mis-calibrated"
KS_ALPHA = 0.01
ATC_SD_SCALE = 0.17  # sd of TARP's ATC for a calibrated posterior is about this / sqrt(N)


@dataclass(frozen=True)
class Verdict:
    """One sentence about a check and its kind (``good``, ``warn``, ``bad`` or ``info``)."""

    kind: str
    text: str

    def to_dict(self) -> dict:
        return asdict(self)


def pct(fraction: float) -> str:
    """``0.312 -> "31 %"`` (a space before the sign, as in the app's texts)."""
    return f"{100 * float(fraction):.0f} %"


def _se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / max(n, 1))


def coverage_verdicts(names: Sequence[str], outside90: Sequence[float], n: int,
                      bias_sd: Optional[Sequence[float]] = None,
                      bias_sd_se: Optional[Sequence[float]] = None, where: str = "") -> list[Verdict]:
    """One verdict per parameter from the share of datasets outside its central 90 % interval (and its bias)."""
    out, se = [], _se(0.1, n)
    for d, name in enumerate(names):
        f = float(outside90[d])
        sims = f"{n} test simulations{where}"
        if f - 0.1 > SIGMAS * se:
            out.append(Verdict("bad", f"Overconfident for {name}: the true value fell outside its 90 % interval in "
                                      f"{pct(f)} of the {sims} (10 % expected): the intervals are too narrow."))
        elif 0.1 - f > SIGMAS * se:
            out.append(Verdict("warn", f"Underconfident for {name}: the true value fell outside its 90 % interval "
                                       f"in only {pct(f)} of the {sims} (10 % expected): the intervals are wider "
                                       "than they need to be."))
        else:
            out.append(Verdict("good", f"Well calibrated for {name}: the true value fell outside its 90 % interval "
                                       f"in {pct(f)} of the {sims} (10 % expected; the difference is within "
                                       "chance)."))
        if bias_sd is not None and bias_sd_se is not None:
            b, s = float(bias_sd[d]), float(bias_sd_se[d])
            if abs(b) > 0.3 and abs(b) > SIGMAS * s:
                side = "above" if b > 0 else "below"
                out.append(Verdict("bad", f"Biased for {name}: the posterior mean lies on average {abs(b):.2f} "
                                          f"posterior standard deviations {side} the true value."))
    return out


def sbc_verdicts(names: Sequence[str], ks_pvals: Sequence[float], tails: Sequence[float],
                 mean_rank: Sequence[float], n: int, where: str = "") -> list[Verdict]:
    """One verdict per parameter from its rank uniformity (KS) and the shape of its rank histogram."""
    out = []
    for d, name in enumerate(names):
        p = float(ks_pvals[d])
        if p >= KS_ALPHA:
            out.append(Verdict("good", f"The ranks of {name} look uniform{where} (KS p = {p:.2g}): no sign of "
                                       "miscalibration."))
            continue
        z_tails = (float(tails[d]) - 0.1) / _se(0.1, n)
        z_mean = (float(mean_rank[d]) - 0.5) / math.sqrt(1 / 12 / max(n, 1))
        shift = (f"they lean to one side (mean rank {float(mean_rank[d]):.2f} instead of 0.50): the posterior of "
                 f"{name} tends to lie {'below' if z_mean > 0 else 'above'} the true value (biased)")
        width = (f"{pct(tails[d])} of them sit in the outer tenth (10 % expected), a U shape: the posterior of "
                 f"{name} is too narrow (overconfident)" if z_tails > 0 else
                 f"only {pct(tails[d])} of them sit in the outer tenth (10 % expected), a hump: the posterior of "
                 f"{name} is too wide (underconfident)")
        found = sorted(((abs(z_mean), shift), (abs(z_tails), width)), reverse=True)
        why = "; and ".join(text for z, text in found if z > 2) or found[0][1]
        out.append(Verdict("bad", f"The ranks of {name} are not uniform{where} (KS p = {p:.2g}): {why}."))
    return out


def hpd_verdicts(hpd90: float, n: int, density: str = "log_prob", where: str = "") -> list[Verdict]:
    """The joint 90 % highest-density region against its nominal level."""
    se = _se(0.9, n)
    how = "" if density == "log_prob" else " (densities estimated from the draws)"
    if 0.9 - hpd90 > SIGMAS * se:
        return [Verdict("bad", f"Overconfident overall{how}: the 90 % highest-density region held the true "
                               f"parameters in only {pct(hpd90)} of the test simulations{where}.")]
    if hpd90 - 0.9 > SIGMAS * se:
        return [Verdict("warn", f"Underconfident overall{how}: the 90 % highest-density region held the true "
                                f"parameters in {pct(hpd90)} of the test simulations{where} (90 % expected).")]
    return [Verdict("good", f"The 90 % highest-density region held the true parameters in {pct(hpd90)} of the test "
                            f"simulations{where} (90 % expected; within chance){how}.")]


def tarp_verdicts(atc: float, ks_pval: float, n: int, where: str = "") -> list[Verdict]:
    """TARP: miscalibrated when ATC is more than 3 of its calibrated standard deviations from 0, or KS p < 0.01.

    For a calibrated posterior ATC has a standard deviation of about
    ``0.17 / sqrt(N)`` (measured by simulating uniform TARP counts, ``L = 100``);
    the KS test between the curve and the grid alone is weak.
    """
    sd = ATC_SD_SCALE / math.sqrt(max(n, 1))
    if abs(atc) <= SIGMAS * sd and ks_pval >= KS_ALPHA:
        return [Verdict("good", f"The TARP curve follows the diagonal{where} (ATC {atc:+.3f}, within chance of 0): "
                                "no sign of miscalibration.")]
    if atc < 0:
        return [Verdict("bad", f"The TARP curve lies below the diagonal{where} (ATC {atc:+.3f}; a calibrated "
                               f"posterior stays within about ±{SIGMAS * sd:.3f}): the posterior is overconfident or "
                               "biased.")]
    return [Verdict("warn", f"The TARP curve lies above the diagonal{where} (ATC {atc:+.3f}; a calibrated posterior "
                            f"stays within about ±{SIGMAS * sd:.3f}): the posterior is underconfident (too wide).")]


def zscore_verdicts(names: Sequence[str], contraction: Sequence[float], large_z: Sequence[float]) -> list[Verdict]:
    """Per parameter: how much the data shrink the posterior, and how often the truth is > 3 sd away."""
    out = []
    for d, name in enumerate(names):
        c, big = float(contraction[d]), float(large_z[d])
        if c < 0.1:
            out.append(Verdict("info", f"The data say little about {name}: its posterior is nearly as wide as the "
                                       f"prior (contraction {c:.2f}; 1 would be a point)."))
        else:
            out.append(Verdict("good" if c >= 0.5 else "info",
                               f"{name}: the posterior keeps on average {pct(max(0.0, 1 - c))} of the prior's "
                               f"variance (contraction {c:.2f})."))
        if big > 0.05:
            out.append(Verdict("bad", f"For {name} the true value was more than 3 posterior standard deviations "
                                      f"from the posterior mean in {pct(big)} of the test simulations (under 1 % "
                                      "expected): overconfident."))
    return out


def recovery_verdicts(names: Sequence[str], correlation: Sequence[float], where: str = "") -> list[Verdict]:
    """Per parameter, from the correlation of posterior means with the true values."""
    out = []
    for d, name in enumerate(names):
        r = float(correlation[d])
        if not math.isfinite(r):
            out.append(Verdict("info", f"{name}: the posterior mean does not vary, so recovery cannot be measured."))
        elif r >= 0.9:
            out.append(Verdict("good", f"{name} is recovered well{where}: posterior means follow the true values "
                                       f"closely (correlation {r:.2f})."))
        elif r >= 0.5:
            out.append(Verdict("info", f"{name} is recovered roughly{where} (correlation {r:.2f}): the data pin it "
                                       "down only in part."))
        else:
            out.append(Verdict("warn", f"{name} is hardly recovered{where} (correlation {r:.2f}): either the data "
                                       "carry little information about it, or the network has not learnt it."))
    return out


def predictive_verdicts(obs_names: Sequence[str], inside: Sequence[bool], level: float = 0.9) -> list[Verdict]:
    """Whether the observation lies inside its predictive bands, beyond what chance leaves outside.

    Even a perfect posterior leaves about ``1 - level`` of the components outside
    their bands; the number outside, ``o`` of ``K``, is judged against
    ``Binomial(K, 1 - level)`` (components treated as independent): a tail
    probability below 0.01 is bad, below 0.05 a warning.
    """
    from scipy.stats import binom

    inside = [bool(v) for v in inside]
    k = len(inside)
    outside = [n for n, ok in zip(obs_names, inside) if not ok]
    if not outside:
        return [Verdict("good", f"The observation looks like data the posterior predicts: all {k} "
                                f"components lie inside their {pct(level)} predictive bands.")]
    listed = ", ".join(outside[:6]) + (f" and {len(outside) - 6} more" if len(outside) > 6 else "")
    tail = float(binom.sf(len(outside) - 1, k, 1 - level))
    if tail >= 0.05:
        return [Verdict("good" if tail >= 0.2 else "info",
                        f"Components inside their {pct(level)} predictive bands: {k - len(outside)} of {k} ({listed} "
                        f"outside). Even a perfect posterior leaves about {pct(1 - level)} outside, so this is within "
                        "chance.")]
    return [Verdict("bad" if tail < 0.01 else "warn",
                    f"{len(outside)} of {k} components of the observation ({listed}) lie outside their "
                    f"{pct(level)} predictive bands, more than chance explains: simulations from the posterior do "
                    "not reproduce them (a poor posterior, or a model that cannot produce this observation).")]


def reference_verdicts(c2st_by_round: Sequence[float]) -> list[Verdict]:
    """From the last round's C2ST against the exact posterior."""
    vals = [float(v) for v in c2st_by_round]
    if not vals:
        return []
    last, k = vals[-1], len(vals)
    where = f"after round {k}" if k > 1 else "after its round"
    if last <= 0.6:
        return [Verdict("good", f"Close to the exact posterior {where}: a classifier trained to tell their samples "
                                f"apart is right in only {pct(last)} of cases (50 % is guessing).")]
    if last <= 0.75:
        return [Verdict("warn", f"Near the exact posterior {where}, but distinguishable (C2ST {last:.2f}; 0.5 is "
                                "indistinguishable, 1 is disjoint).")]
    return [Verdict("bad", f"Far from the exact posterior {where} (C2ST {last:.2f}; 0.5 is indistinguishable, 1 is "
                           "disjoint).")]


def misspecification_verdicts(misspecified: bool, text: str) -> list[Verdict]:
    """The misspecification test's sentence (:func:`sbi_core.diagnostics.check_misspecification`'s ``verdict``):
    ``bad`` when the model rarely makes data like the observation (every posterior is then suspect), else ``good``."""
    return [Verdict("bad" if misspecified else "good", str(text))]


def lc2st_verdicts(rejected: bool, text: str, off_model: bool = False) -> list[Verdict]:
    """The local C2ST's sentence (:func:`sbi_core.diagnostics.run_lc2st`'s ``verdict``): ``bad`` when the
    classifier tells the posterior's draws at the observation from the truth, else ``good``; but where the
    misspecification test found the observation unlike the model's data (``off_model``), a pass is no
    evidence (the classifier learnt only where the model's data are) and says so."""
    if off_model and not rejected:
        return [Verdict("warn", "No evidence against the posterior at your observation, but this says little "
                                "here: the classifier learnt from the model's simulations, and your observation is "
                                "unlike them (see the misspecification test above). " + str(text))]
    return [Verdict("bad" if rejected else "good", str(text))]


ENSEMBLE_BAD_SPREAD = 1.0  # member means spread over more than one posterior sd: "bad", not only "warn"


def ensemble_verdicts(result: dict) -> list[Verdict]:
    """The ensemble's sentence (:func:`sbi_core.diagnostics.ensemble_disagreement`'s ``verdict``): ``good``
    when the estimators agree, else ``warn``, or ``bad`` when on some parameter the spread of their means
    exceeds :data:`ENSEMBLE_BAD_SPREAD` posterior standard deviations."""
    if result.get("agree"):
        return [Verdict("good", str(result["verdict"]))]
    worst = max((float(p["statistic"]) for p in result.get("parameters", []) if p.get("location")), default=0.0)
    return [Verdict("bad" if worst > ENSEMBLE_BAD_SPREAD else "warn", str(result["verdict"]))]


def overall_verdict(verdicts: dict) -> Verdict:
    """One sentence over all checks: the worst finding first."""
    flat = [Verdict(**v) if isinstance(v, dict) else v for vs in verdicts.values() for v in vs]
    bad = [v for v in flat if v.kind == "bad"]
    warn = [v for v in flat if v.kind == "warn"]
    if bad:
        more = f" ({len(bad) - 1} more finding{'s' if len(bad) > 2 else ''} below)" if len(bad) > 1 else ""
        return Verdict("bad", f"Do not trust this posterior yet. {bad[0].text}{more}")
    if warn:
        return Verdict("warn", f"Mostly fine, with a caveat. {warn[0].text}")
    if not flat:
        return Verdict("info", "No check produced a verdict.")
    return Verdict("good", "No problem found: every check that applies to this run is consistent with a "
                           "well-calibrated posterior.")

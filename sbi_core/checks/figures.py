"""The figures of stored check results: which chart shows which check, drawn from the saved arrays.

One mapping for the Check page and the HTML report, so both draw the same
builders (:mod:`sbi_core.plots.calibration`) from the same arrays.
"""

from __future__ import annotations

from typing import Optional, Sequence

from sbi_core import plots
from sbi_core.checks.results import CheckResults
from sbi_core.plots.calibration import PREDICTIVE_CHECK_TITLE
from sbi_core.stats.shapes import DataShape

__all__ = ["CHECK_CHARTS", "check_figure", "charts_of"]

# (chart name, the check it shows), in the order the Check page draws them
CHECK_CHARTS: tuple[tuple[str, str], ...] = (
    ("sbc_ranks", "sbc"),
    ("sbc_ecdf", "sbc"),
    ("coverage", "coverage"),
    ("tarp", "tarp"),
    ("zscore", "zscore"),
    ("recovery", "recovery"),
    ("predictive", "predictive"),
    ("reference_c2st", "reference_c2st"),
    ("misspecification", "misspecification"),
    ("lc2st_pp", "lc2st"),
    ("ensemble", "ensemble"),
)


def charts_of(check: str) -> list[str]:
    """The chart names that show ``check``."""
    return [name for name, key in CHECK_CHARTS if key == check]


def check_figure(name: str, results: CheckResults, labels: Sequence[str],
                 obs_labels: Optional[Sequence[str]] = None):
    """Chart ``name`` of ``results``, or ``None`` when its check did not run.

    ``labels``: one per checked parameter; ``obs_labels``: one per observation
    component (the stored names are used when they do not fit).
    """
    a, s = results.arrays, results.summary
    check = dict(CHECK_CHARTS)[name]
    if not results.has(check):
        return None
    if name in ("sbc_ranks", "sbc_ecdf"):
        build = plots.sbc_rank_figure if name == "sbc_ranks" else plots.sbc_ecdf_figure
        return build(a["ranks"], s["sbc"]["num_posterior_samples"], labels)
    if name == "coverage":
        return plots.coverage_figure(a["coverage_levels"], a["coverage_hpd"], a["coverage_hpd_se"],
                                     a["coverage_central"], labels)
    if name == "tarp":
        return plots.tarp_figure(a["tarp_alpha"], a["tarp_ecp"], len(a["theta"]))
    if name == "zscore":
        return plots.zscore_contraction_figure(a["zscore"], a["contraction"], labels)
    if name == "recovery":
        return plots.recovery_figure(a["theta"], a["post_mean"], a["post_std"], labels)
    if name == "predictive":
        names = (s["predictive"].get("names")
                 or (obs_labels if obs_labels and len(obs_labels) == len(a["x_obs"]) else s.get("obs_names")))
        shape = s["predictive"].get("data_shape")
        if shape is not None:  # a series or an image: the posterior predictive around the observation
            return plots.data_preview(a["ppc_simulations"], DataShape.from_spec(shape), observed=a["x_obs"],
                                      names=names, title=PREDICTIVE_CHECK_TITLE, label="posterior predictive")
        return plots.predictive_check_figure(a["x_obs"], a["ppc_lower"], a["ppc_upper"], names,
                                             a["ppc_simulations"], s["predictive"]["level"])
    if name == "misspecification":
        m = s["misspecification"]
        return plots.misspecification_figure(m.get("features", []), m["p_value"], m.get("alpha", 0.05))
    if name == "lc2st_pp":
        return plots.lc2st_pp_figure(a["lc2st_levels"], a["lc2st_cdf"], a["lc2st_null_low"], a["lc2st_null_high"],
                                     s["lc2st"]["p_value"])
    if name == "ensemble":
        e = s["ensemble"]
        flags = [bool(p.get("disagree")) for p in e.get("parameters", [])]
        return plots.ensemble_figure(a["ensemble_draws"], a["ensemble_member"], labels, flags, e.get("seeds"))
    return plots.reference_c2st_figure(a["reference_c2st"])

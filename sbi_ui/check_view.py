"""The Check page's results: which checks apply, then every plot with how to read it and its verdicts.

Results of one run, or of a run and its broken twin side by side (one row per
check, a column per run), are loaded from the store
(:func:`sbi_core.checks.load_results`, cached per file version).
"""

from __future__ import annotations

from typing import Optional, Sequence

import streamlit as st

from sbi_core.checks import CheckPlan, CheckResults, checks_dir, load_results
from sbi_core.checks.figures import check_figure
from sbi_core.stats.shapes import DataShape

from sbi_ui import keys as K
from sbi_ui.charts import chart
from sbi_ui.check_texts import HOW_TO_READ, PREDICTIVE_BY_SHAPE, WHERE_WORDS
from sbi_ui.resources import store
from sbi_ui.user_text import plain

__all__ = ["plan_view", "results_view", "run_results", "verdict_lines"]

_STYLE = {"good": ("green", ":material/check_circle:"), "warn": ("orange", ":material/warning:"),
          "bad": ("red", ":material/cancel:"), "info": ("blue", ":material/info:")}


@st.cache_data(show_spinner=False, max_entries=16)
def _load(folder: str, version: float) -> Optional[CheckResults]:
    return load_results(folder)


def run_results(run_id: str) -> Optional[CheckResults]:
    """The saved check results of ``run_id`` (``None`` before its first finished check job)."""
    folder = checks_dir(store(), run_id)
    summary = folder / "summary.json"
    try:
        version = summary.stat().st_mtime
    except OSError:
        return None
    return _load(str(folder), version)


def verdict_lines(verdicts: Sequence[dict]) -> None:
    """Each verdict as one coloured line with its icon."""
    for v in verdicts:
        color, icon = _STYLE.get(v.get("kind"), _STYLE["info"])
        st.markdown(f":{color}[{icon}] {plain(v.get('text', ''))}")  # verdicts name the user's parameters



def plan_view(plan: CheckPlan) -> None:
    """What this run's checks do, and which checks do not apply (with why)."""
    st.markdown(plan.summary)
    skipped = [i for i in plan.items if not i.applies]
    if skipped:
        with st.expander(f"Checks that do not apply to this run ({len(skipped)})", icon=":material/block:"):
            for item in skipped:
                st.markdown(f"**{item.title}.** {item.reason}")


def _labels(results: CheckResults, names_to_labels: dict) -> list[str]:
    return [names_to_labels.get(n, n) for n in results.summary.get("checked_names", [])]


# (chart name, check key whose verdicts go under it, section title)
_SECTIONS = (
    ("sbc_ranks", "sbc", "Simulation-based calibration: rank histograms"),
    ("sbc_ecdf", None, "Simulation-based calibration: rank ECDF"),
    ("coverage", "coverage", "Expected coverage"),
    ("tarp", "tarp", "TARP"),
    ("zscore", "zscore", "Posterior z-score against contraction"),
    ("recovery", "recovery", "Parameter recovery"),
    ("predictive", "predictive", "Posterior predictive check at the observation"),
    ("reference_c2st", "reference_c2st", "Distance to the exact posterior"),
    ("misspecification", "misspecification", "Could the model have made your data?"),
    ("lc2st_pp", "lc2st", "Is the posterior right at your observation? (local C2ST)"),
    ("ensemble", "ensemble", "Do estimators trained with other seeds agree? (ensemble)"),
)


def _header(results: CheckResults) -> None:
    """The overall verdict of one run's checks, and what they were computed on."""
    with st.container(key=f"{K.C_CHECK_OVERALL}_{results.summary.get('run_id', '')}"):
        verdict_lines([results.summary.get("overall", {})])
    test = results.summary.get("test_set")
    opts = results.summary.get("options", {})
    if test:
        words = WHERE_WORDS.get(test["source"], "")
        dropped = (f" {test['num_invalid']} simulation{'s' if test['num_invalid'] != 1 else ''} returned NaN or "
                   "infinity and were left out." if test.get("num_invalid") else "")
        st.caption(f"{words} {test['size']:,} test datasets × {opts.get('num_posterior_samples')} posterior draws "
                   f"each; seed {opts.get('seed')}; computed in {results.summary.get('seconds', 0):.0f} s.{dropped}")
    for why in results.summary.get("skipped", {}).values():
        st.caption(f":material/block: {why}")
    ppc = results.summary.get("predictive")
    if ppc and ppc.get("num_invalid"):
        st.caption(f"Predictive check: {ppc['num_invalid']} of {ppc['num_invalid'] + ppc['num_simulations']} "
                   "simulations returned NaN or infinity and were left out.")


def _how_to_read(name: str, shown: Sequence[CheckResults]) -> str:
    """How to read check ``name``'s plot; the predictive check of a series or an image is drawn in its shape
    (a fan chart, an image grid), not as a bar per component, and read so."""
    if name == "predictive":
        for results in shown:
            spec = (results.summary.get("predictive") or {}).get("data_shape")
            if spec is None:
                continue
            try:
                kind = DataShape.from_spec(spec).kind
            except Exception:  # an unreadable stored shape: the general words
                break
            return PREDICTIVE_BY_SHAPE.get(kind, HOW_TO_READ[name])
    return HOW_TO_READ[name]


def results_view(columns: Sequence[tuple[str, Optional[CheckResults]]], names_to_labels: dict,
                 obs_labels: list) -> None:
    """One row per check: a plot per column (``(heading, results or None)``), then how to read it."""
    shown = [r for _, r in columns if r is not None]
    if not shown:
        return
    cols = st.columns(len(columns)) if len(columns) > 1 else [st.container()]
    for col, (heading, results) in zip(cols, columns):
        with col:
            if len(columns) > 1:
                st.markdown(f"##### {heading}")
            if results is not None:
                _header(results)
    for name, key, title in _SECTIONS:
        figs = [(check_figure(name, r, _labels(r, names_to_labels), obs_labels) if r is not None else None)
                for _, r in columns]
        if all(f is None for f in figs):
            continue
        st.subheader(title, divider="gray")
        cols = st.columns(len(columns)) if len(columns) > 1 else [st.container()]
        for i, (col, fig, (_, results)) in enumerate(zip(cols, figs, columns)):
            with col:
                if fig is not None:
                    chart(fig, key=K.c_check_chart(name, i))
                    if key is not None:
                        verdict_lines(results.verdicts(key))
                elif results is not None:
                    st.caption("This check does not apply to this run.")
        st.caption(_how_to_read(name, shown))

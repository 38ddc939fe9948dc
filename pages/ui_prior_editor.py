"""The prior editor: one row per parameter (family, numbers, live density), shared by the
Model page (built-in simulators) and the Your model & data page (uploads, tables).

Each editor belongs to a *model key* (a built-in simulator's name, or a key an
upload page makes up); its widgets are keyed by it (``ui_state.w_prior_family``
and ``w_prior_number``) and the last valid spec is kept in
``st.session_state[S_PRIOR_SPECS][model key]``. An invalid entry shows what to
fix and the last valid prior stays in use.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import streamlit as st

from sbi_core import Prior, PriorSpecError, plots
from sbi_core.priors import FAMILIES, Marginal

from pages import ui_state as K

FAMILY_HELP = {
    "uniform": "Every value between low and high is equally likely.",
    "normal": "Bell curve around loc with spread scale.",
    "lognormal": "Positive values whose logarithm is normal(loc, scale).",
    "beta": "Beta(alpha, beta) stretched onto [low, high].",
    "gamma": "Positive values; mean = concentration / rate.",
    "halfnormal": "Positive values, most likely near 0, spread scale.",
    "fixed": "Held constant at value: not inferred.",
}
NUMBER_HELP = {
    "low": "Lower end of the range.",
    "high": "Upper end of the range (must be larger than low).",
    "loc": "Centre (for lognormal: centre of log theta).",
    "scale": "Spread; must be greater than 0.",
    "alpha": "Beta shape alpha > 0 (larger pulls mass towards high).",
    "beta": "Beta shape beta > 0 (larger pulls mass towards low).",
    "concentration": "Gamma shape > 0.",
    "rate": "Gamma rate > 0 (mean = concentration / rate).",
    "value": "The constant value of this parameter.",
}


def guess_numbers(family: str, previous: Marginal) -> dict:
    """Sensible starting numbers for ``family`` from the marginal it replaces."""
    lo, hi = previous.plot_bounds()
    mean, std = previous.mean_std()
    std = std if std > 0 else max(abs(mean) * 0.1, 1.0)
    if family == "uniform":
        return {"low": lo, "high": hi}
    if family == "normal":
        return {"loc": mean, "scale": std}
    if family == "lognormal":
        return {"loc": math.log(mean) if mean > 0 else 0.0, "scale": 0.5}
    if family == "beta":
        return {"alpha": 2.0, "beta": 2.0, "low": lo, "high": hi}
    if family == "gamma":
        return {"concentration": 2.0, "rate": 2.0 / mean if mean > 0 else 1.0}
    if family == "halfnormal":
        return {"scale": std}
    return {"value": mean}


def forget_prior_edits(model: str) -> None:
    """Drop the kept spec and every editor widget of ``model`` (the editor starts from its default)."""
    st.session_state.setdefault(K.S_PRIOR_SPECS, {}).pop(model, None)
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(f"prior_{model}_")]:
        del st.session_state[key]


def set_prior(model: str, spec: list) -> None:
    """Make ``spec`` (already validated) the prior of ``model``'s editor, e.g. after an import."""
    forget_prior_edits(model)
    st.session_state.setdefault(K.S_PRIOR_SPECS, {})[model] = spec


def current_prior(model: str, default: Prior) -> Prior:
    """The last valid prior of ``model``'s editor (its default if never edited)."""
    spec = st.session_state.get(K.S_PRIOR_SPECS, {}).get(model)
    if spec is not None:
        try:
            prior = Prior.from_spec(spec)
            if prior.names == default.names:
                return prior
        except PriorSpecError:
            pass
    return default


def prior_editor(model: str, default: Prior, labels: Optional[Sequence[str]] = None,
                 plot_height: int = 190) -> Prior:
    """One row per parameter: family, numbers, live density. Returns the last valid prior.

    ``default`` is the prior the editor starts from (and names the parameters);
    ``labels`` label the rows (default: the parameter names).
    """
    specs = st.session_state.setdefault(K.S_PRIOR_SPECS, {})
    valid = current_prior(model, default)
    labels = list(labels) if labels is not None else list(default.names)
    families = list(FAMILIES)
    rows = []
    row_errors = {}
    for i, marg in enumerate(valid.marginals):
        default_marg = default.marginals[i]
        with st.container(border=True):
            c_name, c_family, c_numbers, c_plot = st.columns([1.0, 1.3, 3.0, 2.6], vertical_alignment="center")
            c_name.markdown(f"**{labels[i]}**")
            c_name.caption(f"default: {default_marg.dist}")
            fam_key = K.w_prior_family(model, i)
            family = c_family.selectbox(
                "Family", families, index=families.index(marg.dist), key=fam_key,
                help="The shape of this parameter's prior. " + " ".join(
                    f"**{f}**: {h}" for f, h in FAMILY_HELP.items()),
                persist_state="session",
            )
            required, optional = FAMILIES[family]
            numbers = list(required) + list(optional)
            start = dict(marg.params) if family == marg.dist else guess_numbers(family, marg)
            entry = {"name": marg.name, "dist": family}
            cols = c_numbers.columns(len(numbers))
            for col, num in zip(cols, numbers):
                entry[num] = col.number_input(
                    num, value=float(start.get(num, optional.get(num, 0.0))), step=None, format="%g",
                    key=K.w_prior_number(model, i, family, num), help=NUMBER_HELP.get(num),
                    persist_state="session",
                )
            try:
                row_marg = Marginal.from_spec(entry, i)
            except PriorSpecError as err:
                row_errors[i] = str(err)
                row_marg = None
                c_numbers.error(str(err), icon=":material/error:")
            shown = row_marg or valid.marginals[i]
            with c_plot:
                st.plotly_chart(
                    plots.marginal_figure(shown, labels[i], title=f"Prior of {labels[i]}"
                                          + ("" if row_marg else " (last valid)"), height=plot_height),
                    key=f"prior_plot_{model}_{i}", config={"displayModeBar": False},
                )
            rows.append(entry)
    try:
        new = Prior.from_spec(rows)
    except PriorSpecError as err:
        if not row_errors:
            st.error(str(err), icon=":material/error:")
        st.warning("Fix the entry above; until then the last valid prior is used.", icon=":material/history:")
        return valid
    if row_errors:
        return valid
    if new == default:
        specs.pop(model, None)
    else:
        specs[model] = new.to_spec()
    return new

"""The prior editor: one row per parameter (family, numbers, live density), shared by the
Model page (built-in simulators) and the Your model & data page (uploads, tables).

Each editor belongs to a *model key* (a built-in simulator's name, or a key an
upload page makes up); its widgets are keyed by it (``keys.w_prior_family``
and ``w_prior_number``) and the last valid spec is kept in
``st.session_state[S_PRIOR_SPECS][model key]``. An invalid entry shows what to
fix and the last valid prior stays in use.

A lognormal prior is edited in the parameter's own units: its **median**
``m = exp(loc)`` and its log-spread ``scale`` (the spec keeps ``loc = log m``
and ``scale``); the row says where the central 90 % lies,
``m * exp(-+1.645 scale)``.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import streamlit as st

from sbi_core import Prior, PriorSpecError, plots
from sbi_core.stats.priors import FAMILIES, Marginal

from sbi_ui import keys as K
from sbi_ui.charts import chart
from sbi_ui.user_text import plain, plot_text


FAMILY_HELP = {
    "uniform": "Every value between low and high is equally likely.",
    "normal": "Bell curve around loc with spread scale.",
    "lognormal": "Positive values whose logarithm is normal: set its median (in the parameter's units) "
                 "and the spread of its logarithm.",
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
    "median": "The middle value, in the parameter's own units: half of the prior lies below it, half above. "
              "(The spec stores its logarithm, loc = log(median).)",
}
FAMILY_NUMBER_HELP = {
    ("lognormal", "scale"): "Spread of log(theta), > 0. 0.5 puts 90 % of the prior between the median "
                            "divided by 2.3 and the median times 2.3; 0.2 between /1.4 and x1.4.",
}
MEDIAN = "median"  # the number a lognormal row shows instead of its loc


def _shown_numbers(family: str, numbers: list, start: dict) -> tuple[list, dict]:
    """The numbers a row shows and their starting values: a lognormal's median replaces its loc."""
    if family != "lognormal":
        return numbers, start
    shown = dict(start)
    shown[MEDIAN] = float(f"{math.exp(float(start.get('loc', 0.0))):.12g}")  # 0.125, not 0.12500000000000003
    return [MEDIAN if n == "loc" else n for n in numbers], shown


def _spec_numbers(name: str, family: str, values: dict, start: dict) -> dict:
    """The spec's numbers from what the row shows: ``loc = log(median)`` for a lognormal.

    A median left at its starting value keeps the starting loc exactly (exp and
    log do not round-trip bit for bit, and an untouched prior must stay the default).
    """
    if family != "lognormal":
        return values
    out = dict(values)
    median = out.pop(MEDIAN)
    start_loc = float(start.get("loc", 0.0))
    if not median > 0:
        raise PriorSpecError(f"Parameter '{name}': the median of a lognormal prior must be greater than 0, "
                             f"got {median:g}.")
    out["loc"] = start_loc if math.isclose(median, math.exp(start_loc), rel_tol=1e-11) else math.log(median)
    return out


def _lognormal_caption(marg: Marginal) -> str:
    """``Median 0.4; 90 % of the prior between 0.176 and 0.91 (as logs: loc -0.916, scale 0.5).``"""
    p = marg.params
    return (f"Median {math.exp(p['loc']):.3g}; 90 % of the prior between {marg.icdf(0.05):.3g} and "
            f"{marg.icdf(0.95):.3g} (shaded; as logs: loc {p['loc']:.3g}, scale {p['scale']:.3g}).")


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
            c_name.markdown(f"**{plain(labels[i])}**")
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
            shown, shown_start = _shown_numbers(family, numbers, start)
            values = {}
            cols = c_numbers.columns(len(shown))
            for col, num in zip(cols, shown):
                values[num] = col.number_input(
                    num, value=float(shown_start.get(num, optional.get(num, 0.0))), step=None, format="%g",
                    key=K.w_prior_number(model, i, family, num),
                    help=FAMILY_NUMBER_HELP.get((family, num), NUMBER_HELP.get(num)),
                    persist_state="session",
                )
            try:
                entry.update(_spec_numbers(marg.name, family, values, start))
                row_marg = Marginal.from_spec(entry, i)
            except PriorSpecError as err:
                row_errors[i] = str(err)
                row_marg = None
                c_numbers.error(plain(err), icon=":material/error:")
            if row_marg is not None and family == "lognormal":
                c_numbers.caption(_lognormal_caption(row_marg))
            shown = row_marg or valid.marginals[i]
            with c_plot:
                chart(
                    plots.marginal_figure(shown, labels[i], title=f"Prior of {plot_text(labels[i])}"
                                          + ("" if row_marg else " (last valid)"), height=plot_height),
                    key=f"prior_plot_{model}_{i}", config={"displayModeBar": False},
                )
            rows.append(entry)
    try:
        new = Prior.from_spec(rows)
    except PriorSpecError as err:
        if not row_errors:
            st.error(plain(err), icon=":material/error:")
        st.warning("Fix the entry above; until then the last valid prior is used.", icon=":material/history:")
        return valid
    if row_errors:
        return valid
    if new == default:
        specs.pop(model, None)
    else:
        specs[model] = new.to_spec()
    return new

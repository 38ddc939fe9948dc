"""The Compare page's view of one comparison: a row per run (status, round, simulations, time, a link
to its rounds), the final clouds side by side, the C2ST-against-simulations curve and the table of
results, redrawn from the store while a run is queued or running.

All numbers come from :mod:`sbi_core.run.compare` and every figure from
:mod:`sbi_core.plots.compare`; this module only lays them out.
"""

from __future__ import annotations

from typing import Optional

import pandas as pd
import streamlit as st

from sbi_core import SBIError
from sbi_core.plots.compare import compare_c2st_figure, compare_clouds_figure, method_colors
from sbi_core.run.compare import CompareRow, c2st_curves, compare_row, fallback_c2st, name_summaries, reference_run

from sbi_ui import keys as K
from sbi_ui.axes import axis_pickers
from sbi_ui.charts import chart
from sbi_ui.compare_state import forget_comparison
from sbi_ui.compare_texts import CLOUDS_CAPTION, EXACT_C2ST_CAPTION, FALLBACK_C2ST_CAPTION
from sbi_ui.format import fmt_duration, plural
from sbi_ui.messages import flash
from sbi_ui.naming import status_badge
from sbi_ui.navigation import ROUNDS
from sbi_ui.owner import can_control
from sbi_ui.resources import jobs
from sbi_ui.run_context import run_context, run_not_found, shown_truth
from sbi_ui.session import WATCH_S, tracker, url_params
from sbi_ui.user_text import plain

__all__ = ["compare_view", "comparison_methods"]


def _rows(ids: list) -> tuple[list, dict, dict]:
    """``(rows, infos, trackers)`` of the runs still in the store, in the comparison's order (each run's
    summary of the data named where the comparison compares several: :func:`name_summaries`)."""
    infos = {rid: jobs().status(rid) for rid in ids}
    infos = {rid: info for rid, info in infos.items() if info is not None}
    trs = {rid: tracker(rid) for rid in infos}
    rows = [compare_row(infos[rid], trs[rid].rounds, trs[rid].simulations_done, trs[rid].terminal) for rid in infos]
    return name_summaries(rows), infos, trs


def _round_text(row: CompareRow, tr) -> str:
    if row.status == "running":
        return f"round {min(tr.current_round + 1, row.num_rounds)} of {row.num_rounds}"
    return f"{row.rounds_done} of {plural(row.num_rounds, 'round')}"


def _status_rows(rows: list, trs: dict) -> None:
    """One line per run; a failed run's message (never a traceback) and a sampler's warning under it."""
    with st.container(key=K.C_COMPARE_STATUS, border=True):
        widths = [2.2, 1, 1.2, 1.3, 0.9, 1.1]
        for col, head in zip(st.columns(widths), ("method", "status", "round", "simulations used", "time")):
            col.caption(f"**{head}**")
        for row in rows:
            c = st.columns(widths, vertical_alignment="center")
            c[0].markdown(f"**{row.method_title}** · {row.budget:,} sims"
                          + (f" · {row.summary_label}" if row.summary_label else ""))
            with c[1]:
                status_badge(row)
            c[2].write(_round_text(row, trs[row.run_id]))
            c[3].write(f"{row.simulations:,}")
            c[4].write(fmt_duration(row.seconds) if row.seconds is not None else "-")
            c[5].page_link(ROUNDS, label="Rounds", icon=":material/animation:", query_params=url_params(row.run_id),
                           help="Open this run round by round.")
            if row.status == "failed":
                st.error(f"{row.method_title} failed: {plain(row.message)}", icon=":material/error:")
            elif row.warning:
                st.warning(f"{row.method_title}: {row.warning}", icon=":material/warning:")


@st.cache_data(show_spinner="Comparing each method's samples with the most accurate run's...", max_entries=16)
def _fallback_scores(reference: str, key: tuple, _samples: dict) -> dict:
    """C2ST against the reference run (cached per reference and the finished rounds of every run)."""
    return fallback_c2st(_samples, reference)


def _c2st(rows: list, trs: dict, labels: dict, colors: dict) -> tuple[dict, Optional[str]]:
    """The C2ST chart (exact where the model has it, else against the most accurate run); returns the
    final C2ST per run id for the table, and the reference run's id (``None``: exact, or none yet)."""
    curves = c2st_curves({r.run_id: trs[r.run_id].rounds for r in rows})
    if curves:
        chart(compare_c2st_figure([(labels[rid], *curves[rid]) for rid in curves],
                                  colors=[colors[rid] for rid in curves]), key=K.C_COMPARE_C2ST)
        st.caption(EXACT_C2ST_CAPTION)
        return {rid: ys[-1] for rid, (_, ys) in curves.items()}, None
    ref = reference_run(rows)
    done = [r for r in rows if r.status == "done" and r.rounds_done and r.run_id != (ref.run_id if ref else None)]
    if ref is None or not done:
        if any(r.rounds_done for r in rows):
            st.caption(":material/info: This model has no exact posterior; the C2ST chart appears once two runs "
                       "have finished (the others are then compared with the most accurate one).")
        return {}, None
    samples = {r.run_id: trs[r.run_id].samples[-1] for r in [ref] + done}
    scores = _fallback_scores(ref.run_id, tuple((r.run_id, r.rounds_done) for r in [ref] + done), samples)
    title = f"C2ST against the most accurate run ({labels[ref.run_id]}), not an exact posterior"
    chart(compare_c2st_figure([(labels[rid], [next(r.simulations for r in rows if r.run_id == rid)], [v])
                               for rid, v in scores.items()], title=title,
                              colors=[colors[rid] for rid in scores]), key=K.C_COMPARE_C2ST)
    st.caption(FALLBACK_C2ST_CAPTION.format(reference=labels[ref.run_id]))
    return scores, ref.run_id


def _table(rows: list, final: dict, reference: Optional[str]) -> None:
    def fmt(v, spec):
        return "" if v is None else format(v, spec)

    table = pd.DataFrame([{
        "method": r.label, "status": r.status, "simulations used": r.simulations,
        "time": fmt_duration(r.seconds) if r.seconds is not None else "",
        "final C2ST": "reference" if r.run_id == reference else fmt(final.get(r.run_id), ".2f"),
        "ABC acceptance rate": fmt(r.acceptance_rate, ".1%"), "ABC ε": fmt(r.epsilon, ".3g"),
        "ESS (lowest)": fmt(r.ess, ",.0f"), "R-hat (highest)": fmt(r.rhat, ".3f"),
        "note": "failed: see its message above" if r.status == "failed" else (
            "sampler warning: see above" if r.warning else ""),
    } for r in rows])
    optional = ["ABC acceptance rate", "ABC ε", "ESS (lowest)", "R-hat (highest)", "note"]
    table = table.drop(columns=[c for c in optional if not table[c].astype(bool).any()])
    st.dataframe(table, hide_index=True, key=K.C_COMPARE_TABLE, column_config={
        "simulations used": st.column_config.NumberColumn(format="localized"),
        "final C2ST": st.column_config.TextColumn(help="0.5 = indistinguishable from the exact posterior (or "
                                                  "the reference run), 1.0 = no overlap."),
        "ESS (lowest)": st.column_config.TextColumn(help="MCMC: effective sample size of the least mixed parameter "
                                                    "(ABC: of the weighted particles)."),
        "R-hat (highest)": st.column_config.TextColumn(help="MCMC: near 1.0 when the chains agree; above 1.1 they "
                                                       "have not mixed."),
    })
    st.caption("Time counts from a run's start (waiting in the queue not included). ABC's acceptance rate "
               "and ε, and MCMC's ESS and R-hat, get a column when a method in the comparison reports them.")


def _results(rows: list, trs: dict, infos: dict, axes: tuple) -> None:
    labels = {r.run_id: r.label for r in rows}
    colors = dict(zip(labels, method_colors(len(rows))))
    ctx = run_context(next(iter(infos.values())))
    notes = {"failed": "failed: no posterior", "cancelled": "cancelled", "queued": "waiting in the queue",
             "running": "running: no round finished yet"}
    dim = ctx.prior.dim  # a link may join runs of other models: their clouds are left out
    samples = [trs[r.run_id].samples[-1] if r.rounds_done else None for r in rows]
    samples = [a if a is not None and a.ndim == 2 and a.shape[1] == dim else None for a in samples]
    titles = [f"{r.method_title}<br>{r.simulations:,} simulations" + (f", {r.summary_label}" if r.summary_label else "")
              + ("" if r.status == "done" else f" ({r.status})") for r in rows]
    chart(compare_clouds_figure(samples, titles, axes[0], axes[1], ctx.labels, ctx.bounds, shown_truth(ctx),
                                notes=[notes.get(r.status, "another model") for r in rows]),
          key=K.C_COMPARE_CLOUDS)
    st.caption(CLOUDS_CAPTION + (" The red star is the true parameter." if shown_truth(ctx) is not None else ""))
    final, reference = _c2st(rows, trs, labels, colors)
    _table(rows, final, reference)


def comparison_methods(ids: list) -> list:
    """The methods of the comparison's runs still in the store, in order (for the page's explanation)."""
    infos = [jobs().status(rid) for rid in ids]
    return list(dict.fromkeys(info.spec.method for info in infos if info is not None))


def _cancel(ids: list) -> None:
    for rid in ids:
        info = jobs().status(rid)
        if info is not None and can_control(info):  # checked again on click: only this browser's runs
            try:
                jobs().cancel(rid)
            except SBIError as err:  # a callback's exception would show as a traceback
                flash("error", plain(err))
                return
    flash("info", "Cancel requested for the comparison's queued and running runs.")


def compare_view(ids: list) -> None:
    """The comparison of runs ``ids``; polls the store while any of them is queued or running."""
    rows, infos, trs = _rows(ids)
    missing = [rid for rid in ids if rid not in infos]
    if missing:  # a link's runs that are gone: said in words, with a way to Runs (the others are still shown)
        run_not_found(missing, forget=False)
    if not rows:
        st.info("No comparison yet. Pick the methods above and press **Start comparison**.", icon=":material/info:")
        return
    active = [r.run_id for r in rows if r.status in ("queued", "running")]
    mine = [rid for rid in active if infos.get(rid) is not None and can_control(infos[rid])]
    ctx = run_context(next(iter(infos.values())))
    axes = axis_pickers(ctx.prior.dim, ctx.labels, K.W_COMPARE_AXIS_X, K.W_COMPARE_AXIS_Y)
    seen = tuple(r.status for r in rows)

    @st.fragment(run_every=WATCH_S if active else None)
    def live() -> None:
        rows, infos, trs = _rows(ids)
        if active and tuple(r.status for r in rows) != seen and not any(
                r.status in ("queued", "running") for r in rows):
            st.rerun()  # once, when the last run ends: the page stops polling
        _status_rows(rows, trs)
        if any(r.rounds_done for r in rows):
            _results(rows, trs, infos, axes)

    live()
    buttons = iter(st.columns([1, 1, 2]))
    if mine:
        next(buttons).button("Cancel the comparison", key=K.W_COMPARE_CANCEL, icon=":material/stop_circle:",
                  on_click=_cancel, args=(mine,), help="Stop its queued and running runs; finished ones are kept.")
    if next(buttons).button("Clear this comparison", icon=":material/close:", key=K.W_COMPARE_FORGET,
                 help="Stop showing it here (its runs stay in the store, on the Runs page)."):
        forget_comparison()
        st.rerun()

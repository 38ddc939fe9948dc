"""How close each round's posterior is to the exact one (C2ST, measured by the worker), in a line and
a small chart, for the Train page's live view and the Rounds page."""

from __future__ import annotations

from typing import Optional

import streamlit as st

from sbi_core import plots
from sbi_core.events import REFERENCE_DEFERRED, REFERENCE_PENDING

from sbi_ui.charts import shared_chart
from sbi_ui.run_context import RunContext
from sbi_ui.tracker import RunTracker

__all__ = ["C2ST_HELP", "c2st_values", "awaits_reference", "reference_c2st_view"]

C2ST_HELP = (
    "For this model the exact posterior is known. After every round a small classifier is trained to tell "
    "the round's posterior samples from exact ones (C2ST, classifier two-sample test): 0.5 means it cannot "
    "tell them apart (the posterior is right), 1.0 that they do not overlap at all. A few hundredths above "
    "0.5 is noise. Sequential runs should go down round by round."
)


def c2st_values(tr: RunTracker) -> list[Optional[float]]:
    """The C2ST against the exact posterior of each finished round (``None`` where not measured)."""
    return [ev.get("reference_c2st") for ev in tr.rounds]


def awaits_reference(tr: RunTracker) -> bool:
    """Whether a finished round's C2ST against the exact posterior is still to come: being measured,
    or put off until no other run waits for a worker (:data:`~sbi_core.events.REFERENCE_DEFERRED`).
    A page showing it keeps redrawing until it arrives."""
    return any(ev.get("reference_c2st_reason") in (REFERENCE_PENDING, REFERENCE_DEFERRED) for ev in tr.rounds)


def _rounds_words(numbers: list[int]) -> str:
    """``"round 2"``, ``"rounds 1-3"``, ``"rounds 1, 3 and 4"``."""
    if len(numbers) == 1:
        return f"round {numbers[0]}"
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"rounds {numbers[0]}-{numbers[-1]}"
    return "rounds " + ", ".join(str(n) for n in numbers[:-1]) + f" and {numbers[-1]}"


def _deferred_note(tr: RunTracker) -> bool:
    """The caption on rounds whose C2ST was put off while other runs waited; returns whether any was."""
    deferred = [int(ev["round"]) + 1 for ev in tr.rounds if ev.get("reference_c2st_reason") == REFERENCE_DEFERRED]
    if deferred:
        st.caption(f":material/schedule: C2ST against the exact posterior for {_rounds_words(deferred)}: "
                   "measured once no other run is waiting for a worker (other students' runs go first).",
                   help=C2ST_HELP)
    return bool(deferred)


def _words(values: list[Optional[float]]) -> str:
    """``"0.62 after round 3 (0.91 after round 1)"``: the latest value, and the first for comparison."""
    measured = [(k + 1, v) for k, v in enumerate(values) if v is not None]
    last_round, last = measured[-1]
    text = f"**{last:.2f}** after round {last_round}"
    if len(measured) > 1:
        text += f" ({measured[0][1]:.2f} after round {measured[0][0]})"
    return text


def reference_c2st_view(tr: RunTracker, ctx: RunContext, key: str) -> None:
    """The latest C2ST in words, the per-round chart (from two rounds on), or why there is none.

    Says nothing for a model without an exact posterior; ``key`` names the chart. A round whose C2ST
    was put off while other runs waited for a worker says so (it comes later, even after the run ended).
    """
    values = c2st_values(tr)
    if any(v is not None for v in values):
        st.markdown(f"Match to the exact posterior (C2ST): {_words(values)}. 0.5 = indistinguishable from "
                    "the exact posterior, 1.0 = no overlap.", help=C2ST_HELP)
        if sum(v is not None for v in values) > 1:
            shown = [float("nan") if v is None else v for v in values]
            # versioned by the values with None kept (NaN != NaN would rebuild it every time)
            shared_chart(tr.run_id, "c2st", tuple(values), lambda: plots.reference_c2st_figure(shown), key=key)
        _deferred_note(tr)
        return
    if _deferred_note(tr):
        return
    reasons = [ev.get("reference_c2st_reason") for ev in tr.rounds if ev.get("reference_c2st_reason")]
    if reasons and reasons[-1] == REFERENCE_PENDING:
        st.caption(":material/hourglass_top: Measuring how close round "
                   f"{int(tr.rounds[-1]['round']) + 1}'s posterior is to the exact one...")
        return
    if reasons and getattr(ctx.simulator, "has_reference_posterior", False):
        st.caption(f":material/info: No comparison with the exact posterior: {reasons[-1]}")

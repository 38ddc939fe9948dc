"""The class gallery (teacher mode): everyone's latest finished posterior for one built-in model,
side by side.

One panel per owner (:mod:`sbi_ui.owner`): the newest finished run of that
browser on the chosen model, drawn as a cloud of its last round's posterior
samples (:meth:`~sbi_core.store.runs.RunStore.round_samples`) over the same two
parameters and the prior's box, so the panels compare at a glance. Each
panel's title gives that student's observation ``x``; the red star is the
parameter that generated it, where it is known and the truth is shown. Owners
are numbered "Student 1, 2, ..." in the order of their first run on the server
(a token is never shown). Runs without an owner share one panel.

The lesson, for amortized runs: each student had a different observation, and
one kind of network answered all of them; each cloud sits where that
observation's parameters are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from sbi_core import list_simulators, plots
from sbi_core.store.runs import RunInfo

from sbi_ui import keys as K
from sbi_ui.axes import axis_pickers
from sbi_ui.charts import chart
from sbi_ui.naming import model_name_of, run_title
from sbi_ui.resources import jobs, simulator, store
from sbi_ui.run_context import run_context, shown_truth
from sbi_ui.user_text import plain

__all__ = ["GALLERY_TITLE", "AMORTIZATION_CAPTION", "MAX_PANELS", "GalleryEntry", "latest_per_owner",
           "student_names", "observation_text", "gallery_figure", "gallery_view"]

GALLERY_TITLE = "Class gallery: everyone's latest posterior"
AMORTIZATION_CAPTION = (
    "Each of you had a different observation; one network answered all of you. An amortized run (NPE) "
    "trains once on simulations spread over the prior and then gives the posterior for any observation at "
    "once, which is why every cloud sits somewhere else: where the parameters that explain *that* "
    "observation are. Sequential runs focus on one observation each and tell the same story, one "
    "network per student."
)
MAX_PANELS = 48
_POINTS = 600  # per panel: enough for the shape, light for 30 panels
_NO_OWNER = "(no owner)"


@dataclass(frozen=True)
class GalleryEntry:
    """One panel: the owner's label, their latest finished run, its samples ``(m, D)``, observation and truth."""

    label: str
    info: RunInfo
    samples: Optional[np.ndarray]
    x_obs: Optional[np.ndarray]
    truth: Optional[np.ndarray]


def _owner_key(info: RunInfo) -> str:
    return info.owner or _NO_OWNER


def student_names(runs: Sequence[RunInfo]) -> dict:
    """``{owner key: "Student k"}``, numbered by each owner's first run (``runs`` in any order)."""
    first: dict = {}
    for r in runs:
        key = _owner_key(r)
        first[key] = min(first.get(key, r.created), r.created)
    names, k = {}, 0
    for key in sorted(first, key=lambda o: (first[o], o)):
        if key == _NO_OWNER:
            names[key] = "Runs without an owner"
        else:
            k += 1
            names[key] = f"Student {k}"
    return names


def latest_per_owner(runs: Sequence[RunInfo], model: str) -> list[RunInfo]:
    """The newest finished (``done``) run of each owner on built-in ``model``, in the owners' order
    of :func:`student_names`."""
    on_model = [r for r in runs if r.status == "done" and isinstance(r.spec.simulator, str)
                and model_name_of(r.spec) == model]
    latest: dict = {}
    for r in on_model:
        key = _owner_key(r)
        if key not in latest or (r.created, r.id) > (latest[key].created, latest[key].id):
            latest[key] = r
    order = student_names(runs)
    return sorted(latest.values(), key=lambda r: list(order).index(_owner_key(r)))


def observation_text(x: Optional[np.ndarray], shown: int = 3) -> str:
    """``"x = (0.12, -0.3)"``: the first ``shown`` numbers of an observation, then "..."."""
    if x is None:
        return "observation unknown"
    x = np.asarray(x, dtype=float).ravel()
    parts = [f"{v:.3g}" for v in x[:shown]] + (["..."] if x.size > shown else [])
    return "x = (" + ", ".join(parts) + ")"


def gallery_figure(entries: Sequence[GalleryEntry], ix: int, iy: int, labels: Sequence[str], bounds,
                   columns: int = 4) -> go.Figure:
    """Small multiples (:func:`sbi_core.plots.small_multiples_figure`), one panel per entry, each
    titled with its label and observation, with that panel's true parameter as a red star."""
    titles = [f"{e.label}<br><span style='font-size:11px;color:#495057'>{observation_text(e.x_obs)}</span>"
              for e in entries]
    fig = plots.small_multiples_figure([e.samples for e in entries], titles, ix, iy, labels, bounds,
                                       title=GALLERY_TITLE, columns=columns)
    cols = max(1, min(columns, len(entries)))
    one_d = np.asarray(bounds).reshape(-1, 2).shape[0] == 1 or ix == iy
    shown = False
    for k, e in enumerate(entries):
        if e.truth is None or e.samples is None or len(e.truth) <= max(ix, iy):
            continue
        r, c = k // cols + 1, k % cols + 1
        if one_d:
            fig.add_vline(x=float(e.truth[ix]), line=dict(color=plots.COLORS["truth"], dash="dot"), row=r, col=c)
            continue
        fig.add_trace(go.Scatter(
            x=[float(e.truth[ix])], y=[float(e.truth[iy])], mode="markers", name="true parameter",
            marker=dict(symbol="star", size=13, color=plots.COLORS["truth"], line=dict(color="white", width=1)),
            legendgroup="truth", showlegend=not shown), row=r, col=c)
        shown = True
    return fig


def _entries(runs: Sequence[RunInfo], model: str) -> list[GalleryEntry]:
    names = student_names(runs)
    out = []
    for info in latest_per_owner(runs, model)[:MAX_PANELS]:
        rounds = store().round_samples(info.id)
        samples = rounds[-1][:_POINTS] if rounds and len(rounds[-1]) else None
        ctx = run_context(info)
        out.append(GalleryEntry(names[_owner_key(info)], info, samples, ctx.x_obs, shown_truth(ctx)))
    return out


def gallery_view() -> None:
    """The gallery: a model picker, the panels, the amortization caption and which run each panel is."""
    runs = jobs().list(limit=None, status="done")
    models = [m for m in list_simulators() if any(latest_per_owner(runs, m))]
    if not models:
        st.info("No finished run on a built-in model yet. When the class has run the demo (or any run on "
                "a built-in model), everyone's posterior appears here.", icon=":material/info:")
        return
    model = st.selectbox("Model", models, key=K.W_GALLERY_MODEL, format_func=lambda m: simulator(m).title,
                         help="Each student's newest finished run on this model is one panel.")
    entries = _entries(runs, model)
    sim = simulator(model)
    labels = sim.param_labels()
    ix, iy = axis_pickers(len(labels), labels, K.W_GALLERY_AXIS_X, K.W_GALLERY_AXIS_Y)
    chart(gallery_figure(entries, ix, iy, labels, sim.prior.bounds.numpy()), key=K.C_GALLERY_CHART)
    st.caption(AMORTIZATION_CAPTION)
    with st.expander(f"Which run is each panel ({len(entries)})", icon=":material/list:"):
        for e in entries:
            st.markdown(f"**{e.label}**: {plain(run_title(e.info))} · `{e.info.id}` · {e.info.spec.method} · "

                        f"{observation_text(e.x_obs, shown=8)}")

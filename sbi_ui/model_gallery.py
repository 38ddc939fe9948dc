"""The Model page's gallery of built-in simulators: a thumbnail of each one's simulations and a
button that makes it the current model."""

from __future__ import annotations

import streamlit as st

from sbi_core import list_simulators, plots
from sbi_core.plots.shapes import data_preview

from sbi_ui import keys as K
from sbi_ui.charts import chart
from sbi_ui.model_choice import ModelChoice
from sbi_ui.prior_predictive_view import prior_predictive
from sbi_ui.resources import simulator

__all__ = ["GALLERY_COLUMNS", "gallery"]

GALLERY_COLUMNS = 3  # 4 squeezed the thumbnails below readability on a 1024-px projector
THUMBNAIL_SIMULATIONS = 200


# ``cache_resource``, not ``cache_data``: every read of a ``cache_data`` entry unpickles a copy, and
# unpickling a plotly figure builds and validates it again (about 30 ms a thumbnail, 0.45 CPU-s for the
# 15 on every run of the Model page, for every student). The figure is shared: draw it, never change it
# (``chart`` copies it before projector mode enlarges its text).
@st.cache_resource(show_spinner=False, max_entries=64)
def _thumbnail(name: str):
    sim = simulator(name)
    _, x = prior_predictive(name, "", THUMBNAIL_SIMULATIONS)
    shaped = data_preview(x, sim.data_shape, names=sim.obs_labels(), title="Simulations at prior draws",
                          height=230, compact=True)  # a series, image or trials: one chart of its shape
    if shaped is not None:
        return shaped
    return plots.simulations_figure(x, sim.obs_labels(), title="Simulations at prior draws",
                                    height=230, compact=True)


def _short(text: str, limit: int = 110) -> str:
    first = text.split(". ")[0].strip()
    first = first if first.endswith(".") else first + "."
    return first if len(first) <= limit else first[: limit - 1].rsplit(" ", 1)[0] + "..."


def _select_model(name: str) -> None:
    """Make built-in ``name`` current, with the prior last edited for it (if any)."""
    ModelChoice.default(name).replace(prior=st.session_state.get(K.S_PRIOR_SPECS, {}).get(name)).save()


def gallery(choice: ModelChoice) -> None:
    """One card per built-in simulator, :data:`GALLERY_COLUMNS` a row; the current one is marked."""
    names = list_simulators()
    for start in range(0, len(names), GALLERY_COLUMNS):
        cols = st.columns(GALLERY_COLUMNS)
        for col, name in zip(cols, names[start : start + GALLERY_COLUMNS]):
            sim = simulator(name)
            selected = name == choice.simulator
            with col.container(border=True, height=455):
                st.markdown(f"**{sim.title}**" + ("  :blue-badge[:material/check: selected]" if selected else ""))
                chart(_thumbnail(name), key=f"thumb_{name}", config={"staticPlot": True})
                st.button(
                    "Selected" if selected else "Use this model",
                    key=K.w_model_pick(name),
                    disabled=selected,
                    type="primary" if not selected else "secondary",
                    on_click=_select_model,
                    args=(name,),
                    help=f"Infer the {len(sim.param_names)} parameter(s) of {sim.title}: "
                    f"{', '.join(sim.param_labels())}.",
                    width="stretch",
                )
                st.caption(_short(sim.description))

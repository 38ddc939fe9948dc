"""Figure builders for the dashboard: arrays in, ``plotly.graph_objects.Figure`` out.

Every builder is a pure function of its arguments (numpy arrays, tensors or
plain lists; no store, no session, no Streamlit), so a notebook draws the same
pictures the app shows. Each figure has a title, axis titles that name the
parameter or observation (with units where the caller passes labels such as
``Simulator.param_labels()``), and a legend entry for every kind of mark.

Conventions (one look across the app):

* rounds go from light to dark (:func:`round_colors`), the latest round darkest;
* the prior's plotting box is a dashed grey rectangle, the true parameter a red
  star, the observation red;
* training loss is indigo, validation loss orange, the best epoch (where early
  stopping restores the network) a pink star.

:func:`corner_png` is the one matplotlib builder: it renders a ``corner`` plot
to PNG bytes (object-oriented matplotlib, no global pyplot state).

Modules (every public name is re-exported here, so ``from sbi_core.plots import X``
and ``plots.X`` work):

* :mod:`.style` -- colours, fonts, base layout and the shared marks;
* :mod:`.training` -- loss curves;
* :mod:`.rounds` -- posterior clouds round by round, and their animation;
* :mod:`.clouds` -- one posterior: cloud with marginals, pair plot, small multiples;
* :mod:`.priors` -- prior marginal densities;
* :mod:`.simulations` -- simulated data and the posterior predictive check;
* :mod:`.overview` -- the Home page's amortized-versus-sequential picture;
* :mod:`.calibration` -- the Check page: SBC ranks and ECDF, coverage, TARP, z-scores,
  recovery, the predictive check and the reference C2ST;
* :mod:`.trust` -- trust at one observation: the misspecification test's components,
  L-C2ST's local P–P plot and the ensemble's members side by side;
* :mod:`.shapes` -- data that is a series, an image or a set of trials: fan charts,
  image grids, trials views (``data_preview`` picks by the data shape);
* :mod:`.corner` -- the corner plot as PNG bytes.
"""

from __future__ import annotations

from sbi_core.plots.abc import EPSILON_TITLE, epsilon_figure
from sbi_core.plots.calibration import (
    COVERAGE_TITLE,
    PREDICTIVE_CHECK_TITLE,
    RECOVERY_TITLE,
    REFERENCE_C2ST_TITLE,
    SBC_ECDF_TITLE,
    SBC_RANKS_TITLE,
    TARP_TITLE,
    ZSCORE_TITLE,
    coverage_figure,
    predictive_check_figure,
    recovery_figure,
    reference_c2st_figure,
    sbc_ecdf_figure,
    sbc_rank_figure,
    tarp_figure,
    zscore_contraction_figure,
)
from sbi_core.plots.clouds import SMALL_MULTIPLES_TITLE, pair_plot_figure, posterior_figure, small_multiples_figure
from sbi_core.plots.corner import corner_png
from sbi_core.plots.overview import overview_figure
from sbi_core.plots.priors import marginal_figure
from sbi_core.plots.rounds import ANIMATION_TITLE, CLOUD_TITLE, posterior_rounds_figure, rounds_animation_figure
from sbi_core.plots.simulations import predictive_figure, simulations_figure
from sbi_core.plots.style import COLORS, round_colors, scaled_fonts
from sbi_core.plots.training import LOSS_TITLE, loss_figure
from sbi_core.plots.trust import (
    ENSEMBLE_TITLE,
    LC2ST_TITLE,
    MISSPECIFICATION_TITLE,
    ensemble_figure,
    lc2st_pp_figure,
    misspecification_figure,
)

from sbi_core.plots.shapes import (
    data_preview,
    image_grid,
    observation_figure,
    series_fan,
    series_lines,
    trials_narrowing_figure,
    trials_view,
)

__all__ = [
    "COLORS",
    "round_colors",
    "scaled_fonts",
    "loss_figure",
    "epsilon_figure",
    "EPSILON_TITLE",
    "posterior_rounds_figure",
    "rounds_animation_figure",
    "posterior_figure",
    "pair_plot_figure",
    "small_multiples_figure",
    "marginal_figure",
    "simulations_figure",
    "predictive_figure",
    "overview_figure",
    "corner_png",
    "sbc_rank_figure",
    "sbc_ecdf_figure",
    "coverage_figure",
    "tarp_figure",
    "zscore_contraction_figure",
    "recovery_figure",
    "predictive_check_figure",
    "reference_c2st_figure",
    "misspecification_figure",
    "lc2st_pp_figure",
    "ensemble_figure",
    "MISSPECIFICATION_TITLE",
    "LC2ST_TITLE",
    "ENSEMBLE_TITLE",
    "SBC_RANKS_TITLE",
    "SBC_ECDF_TITLE",
    "COVERAGE_TITLE",
    "TARP_TITLE",
    "ZSCORE_TITLE",
    "RECOVERY_TITLE",
    "PREDICTIVE_CHECK_TITLE",
    "REFERENCE_C2ST_TITLE",
    "LOSS_TITLE",
    "CLOUD_TITLE",
    "ANIMATION_TITLE",
    "SMALL_MULTIPLES_TITLE",
    "data_preview",
    "image_grid",
    "observation_figure",
    "series_fan",
    "series_lines",
    "trials_narrowing_figure",
    "trials_view",
]

"""Figure builders: titles, axis labels and legend entries are what a reader needs."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from sbi_core import get_simulator, plots

RNG = np.random.default_rng(0)
BOUNDS = np.array([[-1.0, 1.0], [-1.0, 1.0], [0.0, 2.0]])
LABELS = ["v0 [m/s]", "angle [deg]", "k [1/s]"]


def names(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data if t.name and t.showlegend is not False]


def rounds(n: int = 3, d: int = 3) -> list[np.ndarray]:
    return [RNG.normal(0, 1.0 / (k + 1), size=(400, d)) for k in range(n)]


def test_round_colors_go_light_to_dark():
    cols = plots.round_colors(4)
    assert len(cols) == 4 and plots.round_colors(0) == []

    def lum(c: str) -> float:
        r, g, b = (float(v) for v in c[c.index("(") + 1 : c.index(")")].split(","))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    assert all(lum(a) > lum(b) for a, b in zip(cols, cols[1:]))


def test_loss_figure_marks_rounds_and_best_epochs():
    r = [0] * 6 + [1] * 4
    e = list(range(1, 7)) + list(range(1, 5))
    fig = plots.loss_figure(r, e, RNG.random(10), RNG.random(10), {0: 4, 1: 2})
    assert fig.layout.title.text == plots.LOSS_TITLE == "Training and validation loss"
    assert "epoch" in fig.layout.xaxis.title.text
    assert "loss" in fig.layout.yaxis.title.text
    assert names(fig) == ["training loss", "validation loss", "best epoch (early stopping)"]
    best = fig.data[2]
    assert list(best.x) == [4, 6 + 2]  # continuous x-axis: round 2 starts after round 1's 6 epochs
    texts = [a.text for a in fig.layout.annotations]
    assert "round 1" in texts and "round 2" in texts
    assert any(s.type == "line" for s in fig.layout.shapes)  # the round boundary


def test_loss_figure_empty_says_it_waits():
    fig = plots.loss_figure([], [], [], [], None)
    assert fig.layout.title.text == plots.LOSS_TITLE
    assert "Waiting" in fig.layout.annotations[0].text


def test_posterior_rounds_figure():
    fig = plots.posterior_rounds_figure(rounds(), 0, 2, LABELS, BOUNDS, [0.1, 0.2, 0.3])
    assert fig.layout.title.text == plots.CLOUD_TITLE == "Posterior after each round"
    assert fig.layout.xaxis.title.text == "v0 [m/s]" and fig.layout.yaxis.title.text == "k [1/s]"
    assert names(fig) == ["prior range", "round 1", "round 2", "round 3", "true parameter"]
    empty = plots.posterior_rounds_figure([], 0, 1, LABELS, BOUNDS)
    assert "round 1" in empty.layout.annotations[0].text


def test_posterior_rounds_figure_one_parameter():
    fig = plots.posterior_rounds_figure(rounds(2, 1), 0, 0, ["p"], BOUNDS[:1], [0.0])
    assert fig.layout.xaxis.title.text == "p" and fig.layout.yaxis.title.text == "density"
    assert names(fig) == ["round 1", "round 2", "true parameter", "prior range"]


def test_rounds_animation_has_play_pause_and_slider():
    fig = plots.rounds_animation_figure(rounds(4), 1, 0, LABELS, BOUNDS, [0, 0, 1])
    assert fig.layout.title.text == plots.ANIMATION_TITLE == "Posterior round by round"
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["Play", "Pause"]
    assert len(fig.frames) == 4 and [f.name for f in fig.frames] == ["1", "2", "3", "4"]
    assert [s.label for s in fig.layout.sliders[0].steps] == ["1", "2", "3", "4"]
    assert fig.layout.sliders[0].active == 3  # opens on the last round
    # frame 2 shows rounds 1-2 only
    assert len(fig.frames[1].data[0].x) > 0 and len(fig.frames[1].data[2].x) == 0
    assert fig.layout.xaxis.title.text == "angle [deg]" and fig.layout.yaxis.title.text == "v0 [m/s]"
    assert "prior range" in names(fig) and "true parameter" in names(fig)
    # axes fixed: the prior box is inside the range
    assert fig.layout.yaxis.range[0] <= -1 and fig.layout.yaxis.range[1] >= 1


def test_posterior_figure_and_pair_plot():
    s = rounds(1)[0]
    fig = plots.posterior_figure(s, 0, 1, LABELS, BOUNDS, [0, 0, 1], title="Posterior at x")
    assert fig.layout.title.text == "Posterior at x"
    assert "posterior samples" in names(fig) and "true parameter" in names(fig)
    assert fig.layout.xaxis.title.text == "v0 [m/s]" and fig.layout.yaxis.title.text == "angle [deg]"
    pp = plots.pair_plot_figure(s, LABELS, [0, 0, 1], title="Pair plot")
    assert pp.layout.title.text == "Pair plot"
    assert names(pp) == ["posterior samples", "true parameter"]
    assert [pp.layout[f"xaxis{k}"].title.text for k in (7, 8, 9)] == LABELS  # bottom row
    assert pp.layout.yaxis4.title.text == LABELS[1] and pp.layout.yaxis7.title.text == LABELS[2]
    hists = [t for t in pp.data if t.type == "histogram"]
    assert len(hists) == 3  # one marginal per parameter on the diagonal
    assert not any(t.type == "splom" for t in pp.data)  # SVG only: draws without WebGL


def test_marginal_figure_for_every_family():
    from sbi_core.stats.priors import Marginal

    specs = [
        {"name": "a", "dist": "uniform", "low": 0, "high": 2},
        {"name": "a", "dist": "normal", "loc": 0, "scale": 1},
        {"name": "a", "dist": "lognormal", "loc": 0, "scale": 0.5},
        {"name": "a", "dist": "beta", "alpha": 2, "beta": 3},
        {"name": "a", "dist": "gamma", "concentration": 2, "rate": 1},
        {"name": "a", "dist": "halfnormal", "scale": 1},
        {"name": "a", "dist": "fixed", "value": 3},
    ]
    for spec in specs:
        fig = plots.marginal_figure(Marginal.from_spec(spec), "a [m]")
        assert fig.layout.title.text == "Prior of a [m]"
        assert fig.layout.xaxis.title.text == "a [m]"
        assert names(fig), spec
        if spec["dist"] != "fixed":
            y = np.asarray(fig.data[0].y)
            assert np.isfinite(y).all() and y.max() > 0


@pytest.mark.parametrize("name", ["coin_flip", "two_moons", "sir", "lotka_volterra"])
def test_simulations_and_predictive_figures(name):
    sim = get_simulator(name)
    x = sim.simulate(sim.prior.sample((60,)), seed=0).numpy()
    obs = sim.default_observation.numpy()
    fig = plots.simulations_figure(x, sim.obs_labels(), obs, title="Simulations")
    assert fig.layout.title.text == "Simulations"
    assert names(fig) == ["simulations at prior draws", "observation"]
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    ppc = plots.predictive_figure(x, obs, sim.obs_labels(), title="PPC")
    assert ppc.layout.title.text == "PPC"
    legend = names(ppc)
    assert "observation" in legend
    if sim.x_dim <= 6:
        assert "simulated from the posterior" in legend
        axis_titles = [ppc.layout[k].title.text for k in ppc.layout if k.startswith("xaxis")]
        assert set(sim.obs_labels()) <= set(axis_titles)
    else:
        assert {"90 % of simulations", "50 % of simulations", "median simulation"} <= set(legend)


def test_overview_figure():
    sim = get_simulator("two_moons")
    prior = sim.prior.sample((200,)).numpy()
    post = RNG.normal(0, 0.1, (200, 2))
    fig = plots.overview_figure(prior, [("posterior for observation 1", post)],
                                [("round 1", prior), ("round 2", post)], sim.prior.bounds.numpy(),
                                sim.param_labels(), sim.true_theta.numpy())
    assert "prior to posterior" in fig.layout.title.text
    legend = names(fig)
    assert {"simulations at prior draws", "posterior for observation 1", "round 1", "round 2",
            "prior range", "true parameter"} <= set(legend)
    assert fig.layout.xaxis.title.text == "theta1" and fig.layout.yaxis2.title.text == "theta2"


def test_corner_png_is_a_png():
    png = plots.corner_png(RNG.normal(size=(500, 3)), LABELS, [0, 0, 0], title="Round 2")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    one = plots.corner_png(RNG.normal(size=(500, 1)), ["p"], [0.0])
    assert one[:4] == b"\x89PNG"
    fixed = RNG.normal(size=(500, 2))
    fixed[:, 1] = 2.0  # a fixed parameter: a constant column
    assert plots.corner_png(fixed, ["a", "b"])[:4] == b"\x89PNG"


def test_every_animation_frame_and_slider_step_redraws():
    """A scatter transition without a redraw never removes points: frame 1 would still show round 4."""
    fig = plots.rounds_animation_figure(rounds(4), 0, 1, LABELS, BOUNDS)
    play = fig.layout.updatemenus[0].buttons[0].args[1]
    assert play["frame"]["redraw"] is True
    assert all(step.args[1]["frame"]["redraw"] is True for step in fig.layout.sliders[0].steps)
    for k, frame in enumerate(fig.frames):  # frame k: rounds 1..k+1 have points, later ones none
        assert [len(t.x) > 0 for t in frame.data] == [r <= k for r in range(4)]
        ops = [t.marker.opacity for t in frame.data[: k + 1]]
        assert all(o < ops[-1] for o in ops[:-1])  # earlier rounds faded
    # the buttons never cover the slider: it starts a fixed number of pixels to their right
    slider = fig.layout.sliders[0]
    assert slider.x == 0 and slider.pad.l >= 120


def test_narrow_clouds_are_zoomed_with_the_prior_box_inset():
    narrow = [RNG.normal([0.5, 0.2, 1.0], 0.02, size=(400, 3)) for _ in range(2)]
    for fig in (plots.rounds_animation_figure(narrow, 0, 1, LABELS, BOUNDS),
                plots.posterior_rounds_figure(narrow, 0, 1, LABELS, BOUNDS),
                plots.posterior_figure(narrow[0], 0, 1, LABELS, BOUNDS)):
        xr, yr = fig.layout.xaxis.range, fig.layout.yaxis.range
        assert xr[1] - xr[0] < 0.3 and xr[0] < 0.5 < xr[1], xr  # the box is 2 wide
        assert yr[1] - yr[0] < 0.3 and yr[0] < 0.2 < yr[1], yr
        inset = [t for t in fig.data if t.xaxis == "x9"]
        assert [t.name for t in inset] == ["whole prior range", "zoomed view"]
        assert list(fig.layout.xaxis9.range) == pytest.approx([-1.12, 1.12])
        assert min(inset[1].x) >= xr[0] - 1e-9 and max(inset[1].x) <= xr[1] + 1e-9
    wide = plots.rounds_animation_figure(rounds(2), 0, 1, LABELS, BOUNDS)
    assert wide.layout.xaxis.range[0] <= -1 and not [t for t in wide.data if t.xaxis == "x9"]


def test_pair_plot_histogram_counts_stay_off_the_neighbouring_panel():
    pp = plots.pair_plot_figure(rounds(1)[0], LABELS)
    assert pp.layout.yaxis.showticklabels is not False  # the first column keeps its axis
    assert pp.layout.yaxis5.showticklabels is False and pp.layout.yaxis9.showticklabels is False


def test_corner_titles_name_each_mode_instead_of_a_median():
    from sbi_core.stats.concentration import hdr_intervals
    from sbi_core.plots.corner import _marginal_title

    two = np.r_[RNG.normal(-0.7, 0.05, 1000), RNG.normal(0.6, 0.05, 1000)]
    title = _marginal_title("theta1", hdr_intervals(two))
    assert title.startswith("theta1, 90 % in") and title.count(" or") == 1
    lo = float(title.split("\n")[1].split(" to ")[0])
    assert lo < -0.7  # the first interval holds the left mode; no median in the empty middle


def test_the_misspecification_chart_shows_a_column_name_as_text_not_as_html():
    fig = plots.misspecification_figure(
        [{"label": '<a href="http://x">y</a>', "value": 9.0, "z": 5.0, "marginal_p_value": 0.001},
         {"label": "b & c", "value": 0.1, "z": 0.2, "marginal_p_value": 0.8}], 0.001)
    shown = [y for t in fig.data for y in t.y]
    assert "&lt;a href=\"http://x\"&gt;y&lt;/a&gt;" in shown and "b &amp; c" in shown
    assert not any("<a" in y for y in shown)

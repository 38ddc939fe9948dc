"""The charts of simulations with a shape (sbi_core.plots.shapes): a series' fan chart and lines, an
image grid, repeated trials, one observation, the narrowing of the posterior with more trials."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import plotly.graph_objects as go
import pytest

from sbi_core.plots import shapes as sp
from sbi_core.stats.shapes import DataShape


def _traces(fig, kind=None, name=None):
    return [t for t in fig.data if (kind is None or t.type == kind) and (name is None or name in (t.name or ""))]


def _axes(fig, letter="y"):
    return sorted(k for k in fig.layout.to_plotly_json() if k.startswith(f"{letter}axis"))


# ---- series ---------------------------------------------------------------------------
def test_fan_bands_are_the_quantiles_over_simulations():
    shape = DataShape.series(4)
    # 101 simulations: simulation j is j (0..100) at every time step, so quantile q is 100 q
    sims = np.repeat(np.arange(101, dtype=float)[:, None], 4, axis=1)
    obs = np.array([1.0, 2.0, 3.0, 4.0])
    fig = sp.series_fan(sims, shape, observed=obs)
    assert len(fig.data) == 6  # 2 per band, the median, the observation
    lo90, hi90, lo50, hi50, med, ob = fig.data
    np.testing.assert_allclose(lo90.y, [5.0] * 4)
    np.testing.assert_allclose(hi90.y, [95.0] * 4)
    np.testing.assert_allclose(lo50.y, [25.0] * 4)
    np.testing.assert_allclose(hi50.y, [75.0] * 4)
    np.testing.assert_allclose(med.y, [50.0] * 4)
    assert hi90.fill == "tonexty" and hi50.fill == "tonexty" and lo90.fill in (None, "none")
    assert list(ob.y) == [1.0, 2.0, 3.0, 4.0] and ob.name == "observation"
    assert ob.line.color == sp.COLORS["observation"]
    assert list(med.x) == [0, 1, 2, 3]
    assert fig.layout.xaxis.title.text == "time step" and fig.layout.yaxis.title.text == "value"


def test_fan_ignores_nan_and_infinity_and_skips_all_nan_time_steps():
    shape = DataShape.series(3)
    sims = np.array([[0.0, np.nan, 1.0], [2.0, np.nan, np.inf], [4.0, np.nan, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "All-NaN slice" warning escapes
        fig = sp.series_fan(sims, shape)
    med = _traces(fig, name="median")[0]
    assert med.y[0] == 2.0 and (med.y[1] is None or np.isnan(med.y[1]))
    assert med.y[2] == 2.0  # the infinity is left out: median of 1 and 3
    band = fig.data[1]
    assert list(band.x) == [0, 2]  # the all-NaN time step has no band


def test_fan_one_panel_per_channel_with_names_from_the_labels():
    shape = DataShape.series(10, channels=3)
    sims = np.random.default_rng(0).normal(size=(40, 30))
    names = [f"{ch}[{t}] [people]" for ch in ("S", "I", "R") for t in range(10)]
    fig = sp.series_fan(sims, shape, observed=sims[0], names=names, time_values=np.linspace(0, 9, 10) * 0.5)
    assert len(_axes(fig, "y")) == 3 and len(_axes(fig, "x")) == 3
    assert [fig.layout[a].title.text for a in _axes(fig, "y")] == ["S [people]", "I [people]", "R [people]"]
    assert len(fig.data) == 3 * 6
    assert sum(bool(t.showlegend) for t in fig.data if t.showlegend is not False) == 4  # one legend entry each
    assert fig.layout.xaxis3.title.text == "time"
    assert list(fig.data[4].x) == pytest.approx(list(np.linspace(0, 4.5, 10)))


def test_fan_survives_one_simulation_none_and_all_nan():
    shape = DataShape.series(5)
    one = sp.series_fan(np.arange(5.0)[None], shape)
    assert list(_traces(one, name="median")[0].y) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert isinstance(sp.series_fan(np.full((4, 5), np.nan), shape, observed=np.arange(5.0)), go.Figure)
    empty = sp.series_fan(None, shape)
    assert any("No simulations" in a.text for a in empty.layout.annotations)
    with pytest.raises(ValueError, match="5 numbers"):
        sp.series_fan(np.zeros((3, 6)), shape)


def test_series_lines_draws_a_few_series_as_one_trace_per_channel():
    shape = DataShape.series(20, channels=2)
    sims = np.random.default_rng(1).normal(size=(100, 40))
    fig = sp.series_lines(sims, shape, n=5, observed=sims[0])
    assert len(fig.data) == 4  # per channel: the simulations, the observation
    lines = fig.data[0]
    assert sum(v is None for v in lines.y) == 5 and lines.name == "5 simulations"
    assert isinstance(sp.series_lines(sims[:1], shape), go.Figure)
    assert isinstance(sp.series_lines(np.full((3, 40), np.nan), shape), go.Figure)


# ---- images ---------------------------------------------------------------------------
def test_image_grid_shares_the_colour_scale_and_keeps_the_aspect():
    shape = DataShape.image(4, 6)
    sims = np.random.default_rng(2).normal(size=(30, 24))
    obs = np.full(24, 10.0)
    fig = sp.image_grid(sims, shape, observed=obs, n=3)
    heat = _traces(fig, "heatmap")
    assert len(heat) == 4 and {h.coloraxis for h in heat} == {"coloraxis"}
    assert fig.layout.coloraxis.cmax == 10.0  # the observation is on the same scale
    assert np.asarray(heat[0].z).shape == (4, 6)
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis2.scaleanchor == "x2"
    assert fig.layout.xaxis.showticklabels is False
    titles = [a.text for a in fig.layout.annotations]
    assert titles[:4] == ["observation", "simulation 1", "simulation 2", "simulation 3"]
    assert any(s.line.color == sp.COLORS["observation"] for s in fig.layout.shapes)


def test_image_grid_channels_get_rows_and_their_own_scale():
    shape = DataShape.image(3, 3, channels=4)
    sims = np.random.default_rng(3).normal(size=(5, 36))
    fig = sp.image_grid(sims, shape, n=2)
    assert len(_traces(fig, "heatmap")) == 3 * 2  # three channels drawn, two images each
    assert {h.coloraxis for h in fig.data} == {"coloraxis", "coloraxis2", "coloraxis3"}
    assert "first 3 of 4 channels" in fig.layout.title.subtitle.text
    assert isinstance(sp.image_grid(np.full((2, 36), np.nan), shape), go.Figure)
    assert isinstance(sp.image_grid(sims[:1], shape, n=1), go.Figure)


# ---- trials ---------------------------------------------------------------------------
def test_trials_one_number_overlays_histograms_and_ignores_missing_trials():
    shape = DataShape.trials(5, 1)
    sims = np.random.default_rng(4).normal(size=(50, 5))
    sims[:, 3:] = np.nan  # every simulated set has 3 trials
    obs = shape.pad_trials([[0.5], [0.7]])
    fig = sp.trials_view(sims, shape, observed=obs, names=[f"rt[{m}] [s]" for m in range(5)])
    sim_h, obs_h = _traces(fig, "histogram")
    assert len(sim_h.x) == 150 and len(obs_h.x) == 2
    assert obs_h.name == "observation (2 trials)" and obs_h.histnorm == "probability density"
    assert sim_h.xbins.size == obs_h.xbins.size  # shared bins
    assert fig.layout.xaxis.title.text == "rt [s]"


def test_trials_two_numbers_scatter_and_more_numbers_say_so():
    rng = np.random.default_rng(5)
    two = DataShape.trials(4, 2)
    fig = sp.trials_view(rng.normal(size=(10, 8)), two, observed=rng.normal(size=8))
    sims_t, obs_t = fig.data
    assert len(sims_t.x) == 40 and len(obs_t.x) == 4 and obs_t.marker.color == sp.COLORS["observation"]
    assert sims_t.marker.opacity < 0.5
    three = DataShape.trials(4, 3)
    fig3 = sp.trials_view(rng.normal(size=(10, 12)), three, names=["a", "b", "c"])
    assert "first two" in fig3.layout.title.subtitle.text
    assert fig3.layout.xaxis.title.text == "a" and fig3.layout.yaxis.title.text == "b"


def test_trials_survive_one_simulation_no_simulations_and_all_missing():
    shape = DataShape.trials(3, 2)
    obs = shape.pad_trials([[1.0, 2.0]])
    assert len(sp.trials_view(None, shape, observed=obs).data) == 1
    assert isinstance(sp.trials_view(np.full((4, 6), np.nan), shape), go.Figure)
    assert isinstance(sp.trials_view(np.ones((1, 6)), shape), go.Figure)
    one = DataShape.trials(3, 1)
    assert isinstance(sp.trials_view(np.ones((2, 3)), one, observed=np.ones(3)), go.Figure)  # no spread


# ---- dispatch, names, one observation ---------------------------------------------------
def test_data_preview_dispatches_by_kind():
    rng = np.random.default_rng(6)
    assert sp.data_preview(rng.normal(size=(5, 3)), DataShape.vector(3)) is None
    series = sp.data_preview(rng.normal(size=(5, 8)), DataShape.series(8), observed=np.zeros(8))
    assert any("median" in (t.name or "") for t in series.data)
    image = sp.data_preview(rng.normal(size=(5, 4)), DataShape.image(2, 2))
    assert _traces(image, "heatmap")
    trials = sp.data_preview(rng.normal(size=(5, 4)), DataShape.trials(4, 1))
    assert _traces(trials, "histogram")


def test_names_per_channel_and_per_trial_number():
    assert sp.channel_names(DataShape.series(3)) == ["value"]
    assert sp.channel_names(DataShape.series(3, 2), ["S", "I"]) == ["S", "I"]
    assert sp.channel_names(DataShape.series(2, 2), ["x[0][0]", "x[0][1]", "x[1][0]", "x[1][1]"]) == ["x[0]", "x[1]"]
    assert sp.channel_names(DataShape.series(2), ["day_1 [cases]", "day_2 [cases]"]) == ["day [cases]"]
    assert sp.channel_names(DataShape.series(2), ["a", "b"]) == ["value"]  # no shared stem
    image = DataShape.image(2, 3)
    assert sp.channel_names(image, [f"px[{i}][{j}]" for i in range(2) for j in range(3)]) == ["px"]
    assert sp.trial_value_names(DataShape.trials(3, 2), [f"x[{m}][{d}]" for m in range(3) for d in range(2)]) \
        == ["x[0]", "x[1]"]
    assert sp.trial_value_names(DataShape.trials(3, 2)) == ["x1", "x2"]
    # the built-in models' style: a word names the index ("day 3", "trial 2 rt")
    days = DataShape.series(4)
    labels = [f"day {t + 1} [people]" for t in range(4)]
    assert sp.channel_names(days, labels) == ["people"]
    title, values = sp.time_axis(days, labels)
    assert title == "day" and list(values) == [1.0, 2.0, 3.0, 4.0]
    assert sp.time_axis(days, [f"x[{t}]" for t in range(4)])[0] == "time step"
    assert sp.channel_names(DataShape.series(3), ["step 1", "step 2", "step 3"]) == ["value"]
    ddm = DataShape.trials(3, 2)
    ddm_labels = [f"trial {m + 1} {part}" + (" [s]" if part == "rt" else "") for m in range(3)
                  for part in ("rt", "choice")]
    assert sp.trial_value_names(ddm, ddm_labels) == ["rt [s]", "choice"]
    assert sp.trial_value_names(DataShape.trials(3, 1), ["trial 1", "trial 2", "trial 3"]) == ["value"]
    fan = sp.series_fan(np.ones((3, 4)), days, names=labels)
    assert fan.layout.xaxis.title.text == "day" and fan.layout.yaxis.title.text == "people"
    assert list(fan.data[0].x) == [1.0, 2.0, 3.0, 4.0]


def test_observation_figure_and_the_narrowing_chart():
    s = DataShape.series(6)
    fig = sp.observation_figure(np.arange(6.0), s, reference=np.zeros(6))
    assert [t.name for t in fig.data] == ["the run's observation", "observation"]
    img = sp.observation_figure(np.arange(4.0), DataShape.image(2, 2), reference=np.zeros(4))
    assert [a.text for a in img.layout.annotations][:2] == ["observation", "the run's observation"]
    tr = sp.observation_figure(DataShape.trials(3, 1).pad_trials([[1.0]]), DataShape.trials(3, 1))
    assert len(tr.data) == 1
    with pytest.raises(ValueError):
        sp.observation_figure(np.zeros(3), DataShape.vector(3))
    nar = sp.trials_narrowing_figure([1, 5, 20], [[2.0, 4.0], [1.0, 2.0], [0.5, 1.0]], ["mu", "<b>s</b>"], current=5)
    assert list(nar.data[0].y) == [1.0, 0.5, 0.25]
    assert nar.data[1].name == "&lt;b&gt;s&lt;/b&gt;"  # a user's label is text, not HTML


def test_the_module_loads_no_torch():
    out = subprocess.run([sys.executable, "-c", "import sys, sbi_core.plots.shapes; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_trials_with_a_choice_draw_one_panel_per_choice_whose_areas_add_up():
    rng = np.random.default_rng(7)
    shape = DataShape.trials(10, 2)
    rt = rng.gamma(2.0, 0.3, size=(40, 10))
    choice = (rng.random((40, 10)) < 0.3).astype(float)
    sims = np.stack([rt, choice], axis=-1).reshape(40, 20)
    sims[:, 16:] = np.nan  # two missing trials in every set
    labels = [f"trial {m + 1} {p}" + (" [s]" if p == "rt" else "") for m in range(10) for p in ("rt", "choice")]
    fig = sp.trials_view(sims, shape, observed=sims[0], names=labels)
    bars = _traces(fig, "bar")
    assert len(bars) == 4  # per choice: the simulated and the observed trials
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0].startswith("choice = 0: ") and titles[1].startswith("choice = 1: ")
    sim_area = sum(float(np.sum(b.y)) * b.width for b in bars if b.legendgroup == "sims")
    assert sim_area == pytest.approx(1.0, abs=0.01)  # the slowest 0.5 % may lie beyond the last bin
    assert fig.layout.xaxis2.title.text == "rt [s]"
    assert "observation (8 trials)" in {b.name for b in bars}

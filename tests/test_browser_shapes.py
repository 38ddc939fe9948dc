"""Browser tests of models whose simulation is a series or a set of repeated trials (issue 21).

What the pages *draw* is read from the charts' SVG (not from the figures' data): the filled bands,
lines and markers of a fan chart, the bars of a trials histogram. Before the data shapes, the
Model page drew ``sir_series``' 100 days as 100 histograms (its "Next" link 7,470 px down) and
Explore offered a slider per day.

* Model page, ``sir_series``: the observation is one fan chart (two filled bands, one median line,
  one red observation line), no other chart below it, the next-step link a few hundred pixels
  under the section's heading; "8 simulations, one by one" draws 8 thin lines.
* Model page, ``gaussian_trials``: the red histogram holds exactly the observation's 20 trials
  (each bar's area over the simulated trials' total area, times 20, is a whole number of trials).
* Explore, ``sir_series`` after a short amortized run: a few moves (fewer than 10 sliders), the
  posterior cloud and the predictive fan are drawn; scaling the series draws the run's
  observation as a dashed line behind the changed one.
* Explore, ``gaussian_trials``: "Trials used" at 1, then 5, draws 1, then 5 trials; the one-parameter
  posterior histogram is zoomed to its samples (it was a sliver on the prior's whole range).
* Check, ``sir_series`` with saved checks: the posterior predictive check is a fan chart, and its
  caption reads it as one (not as "each bar ... the red marks").

The runs are tiny (300 simulations, 5 epochs; 600 and 20 for the trials) and trained in-process, their checks
computed in-process (:func:`sbi_core.checks.run_checks`), in the store of the test process's shared app server
(``tests/conftest.py``), which reads the runs from it on every page.

    python -m pytest -p no:cacheprovider -n0 tests/test_browser_shapes.py -q
"""

from __future__ import annotations

import pytest

from sbi_core import RunSpec, get_simulator
from sbi_core.checks import checks_dir, run_checks, save_results
from sbi_core.jobs.worker import run_worker
from sbi_core.store.runs import RunStore
from sbi_ui import keys as K
from sbi_ui.prior_predictive_view import SERIES_LINES, W_MODEL_SERIES_VIEW
from sbi_ui.series_explore import w_explore_scale, w_explore_trials

from browser_support import (browser_test_marks, drawn_bars, drawn_points, drawn_traces, goto, new_page,
                             page_problems, screenshot_on_failure, wait_idle)

pytestmark = browser_test_marks(420)

PAGE_MS = 90_000  # the first page that imports torch in a busy server takes a while
TRIALS = 20  # gaussian_trials' observation
OBSERVATION_TO_NEXT_PX = 1_500  # "4 · Observation" to "Next: train on this model" (was thousands of px)
TITLE_TO_NEXT_PX = 6_000  # the page's title to that link, the gallery included (was 7,470 px)


def _tiny(simulator: str, simulations: int = 300, epochs: int = 5) -> RunSpec:
    return RunSpec(simulator=simulator, method="npe", num_rounds=1, simulations_per_round=simulations,
                   max_epochs=epochs, hidden_features=16, num_transforms=2, num_posterior_samples=200, num_threads=1,
                   title=f"Browser test: {simulator}")


@pytest.fixture(scope="module")
def server(shared_server):
    with shared_server.lend(__name__) as srv:  # the test process's shared server; its runs still active are ended after
        yield srv


@pytest.fixture(scope="module")
def served(server):
    """``(server, {"sir_series": run id, "gaussian_trials": run id})``: finished amortized runs, the series
    run's checks saved, in the store of the running app server."""
    store = RunStore(server.store_dir)
    ids = {}
    # the trials run a little longer (3 s): its posterior is then narrow enough to be zoomed to
    for name, size in (("sir_series", {}), ("gaussian_trials", {"simulations": 600, "epochs": 20})):
        ids[name] = store.create_run(_tiny(name, **size))
        assert run_worker(store, ids[name]) == "done", store.get_run(ids[name]).message
    sir = ids["sir_series"]
    save_results(checks_dir(store, sir), run_checks(store, sir, {"num_datasets": 20, "num_posterior_samples": 20}))
    return server, ids


@pytest.fixture(scope="module")
def browser(shared_browser, served):
    with shared_browser.lend() as b:
        yield b


@pytest.fixture
def page(browser, served):
    p = new_page(browser, served[0].url, PAGE_MS)
    yield p
    p.context.close()


# ---- helpers --------------------------------------------------------------------------------
def _no_problems(page, where: str) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, where
    problems = page_problems(page)
    assert not problems, f"{where}: {problems}"


def _pick_model(page, name: str) -> None:
    """On the Model page: press the gallery's "Use this model" of ``name`` and wait for its section."""
    page.locator(f".st-key-{K.w_model_pick(name)}").get_by_role("button").click()
    page.get_by_role("heading", name=f"2 · {get_simulator(name).title}").wait_for()
    page.locator(".st-key-model_observation_plot .js-plotly-plot").wait_for()
    wait_idle(page, PAGE_MS)


def _top(locator) -> float:
    """The element's top on the page (scroll-independent: its offset from the page's title)."""
    return locator.evaluate(
        "(el) => el.getBoundingClientRect().top - document.querySelector('h1').getBoundingClientRect().top")


def _fan(traces: list[dict]) -> dict:
    """What a drawn fan chart has: filled bands, solid lines named median, observation lines."""
    return {
        "bands": sum(t["fill"] for t in traces),
        "medians": sum(1 for t in traces if t["line"] and t["name"].endswith("median")),
        "observations": sum(1 for t in traces if t["line"] and t["name"] == "observation"),
    }


def _trials_drawn(bars: dict, name: str, reference: str, m: int) -> list[float]:
    """The trials in each bar of the ``name`` histogram of ``m`` trials: its area over the ``reference``
    histogram's total area (both densities on shared bins), times ``m``."""
    total = sum(bars[reference])
    assert total > 0, bars
    return [m * a / total for a in bars[name]]


def _assert_whole_trials(counts: list[float], m: int) -> None:
    """``counts`` are whole numbers of trials, ``m`` in all, in at most ``m`` bars."""
    assert abs(sum(counts) - m) < 0.05 * m, (sum(counts), m, counts)
    assert all(abs(c - round(c)) < 0.1 for c in counts), counts
    assert 1 <= sum(1 for c in counts if round(c) > 0) <= m, counts


# the share of the plot area's width that the bars drawn with some height span
_BARS_WIDTH = """(key) => {
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  const bg = gd && gd.querySelector('.bglayer rect.bg');
  const boxes = gd ? Array.from(gd.querySelectorAll('.barlayer .point path')).map(p => p.getBBox())
                       .filter(b => b.height > 0) : [];
  if (!bg || !boxes.length) return 0;
  const lo = Math.min(...boxes.map(b => b.x)), hi = Math.max(...boxes.map(b => b.x + b.width));
  return (hi - lo) / bg.getBBox().width;
}"""


def _observation_legend(page, key: str) -> str:
    names = [n for n in page.locator(f".st-key-{key} .legendtext").all_text_contents() if n.startswith("observation")]
    assert len(names) == 1, names
    return names[0]


# ---- Model page -----------------------------------------------------------------------------
def test_model_page_draws_a_series_as_one_fan_chart(page, tmp_path):
    with screenshot_on_failure(page, tmp_path, "model_sir_series"):
        goto(page, "/model", PAGE_MS)
        _pick_model(page, "sir_series")
        traces = drawn_traces(page, "model_observation_plot")
        assert _fan(traces) == {"bands": 2, "medians": 1, "observations": 1}, traces
        chart = page.locator(".st-key-model_observation_plot")
        assert chart.locator(".js-plotly-plot").count() == 1
        assert chart.locator(".cartesianlayer .subplot").count() == 1, "one panel, not one per day"
        assert chart.locator(".barlayer .point").count() == 0, "no histograms"
        # nothing else is drawn under the observation's heading: the one chart, then its table and link
        heading = page.get_by_role("heading", name="4 · Observation")
        below = page.evaluate(
            """(y) => Array.from(document.querySelectorAll('.js-plotly-plot')).filter(
                   el => el.getBoundingClientRect().top > y).length""",
            heading.evaluate("(el) => el.getBoundingClientRect().top"))
        assert below == 1, below
        nxt = page.get_by_role("link", name="Next: train on this model")
        assert nxt.count() == 1
        assert 0 < _top(nxt) - _top(heading) < OBSERVATION_TO_NEXT_PX, (_top(heading), _top(nxt))
        assert _top(nxt) < TITLE_TO_NEXT_PX, _top(nxt)
        _no_problems(page, "model page, sir_series")

        # a few simulations one by one: that many thin lines and the observation, no bands
        page.locator(f".st-key-{W_MODEL_SERIES_VIEW}").get_by_text(f"{SERIES_LINES} simulations, one by one").click()
        page.wait_for_function(
            "(key) => !document.querySelector(`.st-key-${key} .scatterlayer .js-fill`)", arg="model_observation_plot")
        wait_idle(page, PAGE_MS)
        traces = drawn_traces(page, "model_observation_plot")
        assert sum(t["fill"] for t in traces) == 0, traces
        assert sum(t["segments"] for t in traces if t["name"] != "observation") == SERIES_LINES, traces
        assert _fan(traces)["observations"] == 1, traces
        _no_problems(page, "model page, sir_series as lines")


def test_model_page_draws_every_trial_of_the_observation(page, tmp_path):
    assert get_simulator("gaussian_trials").data_shape.dims[0] == TRIALS
    with screenshot_on_failure(page, tmp_path, "model_gaussian_trials"):
        goto(page, "/model", PAGE_MS)
        _pick_model(page, "gaussian_trials")
        legend = _observation_legend(page, "model_observation_plot")
        assert legend == f"observation ({TRIALS} trials)", legend
        bars = drawn_bars(page, "model_observation_plot")
        assert set(bars) == {"prior predictive trials", legend}, bars
        _assert_whole_trials(_trials_drawn(bars, legend, "prior predictive trials", TRIALS), TRIALS)
        assert page.locator(".st-key-model_observation_plot .cartesianlayer .subplot").count() == 1
        _no_problems(page, "model page, gaussian_trials")


# ---- Explore --------------------------------------------------------------------------------
def test_explore_a_series_with_a_few_moves(page, served, tmp_path):
    _, ids = served
    rid = ids["sir_series"]
    with screenshot_on_failure(page, tmp_path, "explore_sir_series"):
        goto(page, f"/explore?run={rid}", PAGE_MS)
        page.locator(".st-key-explore_predictive .js-plotly-plot").wait_for()
        wait_idle(page, PAGE_MS)
        sliders = page.locator('[data-testid="stSlider"]').count()
        assert 3 <= sliders < 10, sliders  # scale, shift, noise (+ the check's size), not one per day
        assert page.locator(f".st-key-explore_x_{rid}_0").count() == 0  # the vector page's slider per number
        posterior = drawn_points(page, "explore_posterior")
        cloud = dict(zip(posterior["names"], posterior["points"]))
        assert cloud.get("posterior samples", 0) >= 100, posterior
        assert _fan(drawn_traces(page, "explore_predictive")) == {"bands": 2, "medians": 1, "observations": 1}
        observation = drawn_traces(page, "explore_observation")
        assert [(t["name"], t["line"], t["dashed"]) for t in observation] == [("observation", True, False)]

        # scale the series: the run's observation stays behind it, dashed, and the posterior follows
        box = page.locator(f".st-key-{w_explore_scale(rid)} input[type=range]")
        before = box.input_value()
        box.focus()
        box.press("ArrowRight")
        box.press("ArrowRight")
        page.wait_for_function(
            "(key) => document.querySelectorAll(`.st-key-${key} .scatterlayer .trace`).length == 2",
            arg="explore_observation")
        wait_idle(page, PAGE_MS)
        assert box.input_value() != before
        observation = drawn_traces(page, "explore_observation")
        by_name = {t["name"]: t for t in observation}
        assert by_name["the run's observation"]["dashed"] and not by_name["observation"]["dashed"], observation
        assert by_name["the run's observation"]["d"] != by_name["observation"]["d"], "the scaled line moved"
        posterior = drawn_points(page, "explore_posterior")
        assert dict(zip(posterior["names"], posterior["points"])).get("posterior samples", 0) >= 100, posterior
        _no_problems(page, "explore, sir_series")


def test_explore_trials_draws_the_trials_in_use(page, served, tmp_path):
    _, ids = served
    rid = ids["gaussian_trials"]
    with screenshot_on_failure(page, tmp_path, "explore_gaussian_trials"):
        goto(page, f"/explore?run={rid}", PAGE_MS)
        page.locator(".st-key-explore_predictive .js-plotly-plot").wait_for()
        wait_idle(page, PAGE_MS)
        assert page.locator('[data-testid="stSlider"]').count() < 10
        assert page.locator(".st-key-explore_narrowing .js-plotly-plot").count() == 1
        bars = drawn_bars(page, "explore_observation")
        assert len(bars) == 1, bars  # the run's observation alone (no legend for one trace)
        (name,) = bars
        _assert_whole_trials(_trials_drawn(bars, name, name, TRIALS), TRIALS)  # no reference: over its own total
        # one parameter: a histogram of the posterior samples, zoomed to them (with all 20 trials it was a
        # third of the plot wide, on the prior's whole range)
        assert sum(drawn_bars(page, "explore_posterior").get("posterior samples", [])) > 0
        assert page.evaluate(_BARS_WIDTH, "explore_posterior") > 0.4
        assert page.locator(".st-key-explore_posterior .annotation-text").filter(
            has_text="zoomed: the prior's range").count() == 1

        box = page.locator(f".st-key-{w_explore_trials(rid, TRIALS)} input[type=range]")
        box.focus()
        for keys, m in ((["Home"], 1), (["ArrowRight"] * 4, 5)):
            for key in keys:
                box.press(key)
            page.wait_for_function(
                "([key, text]) => Array.from(document.querySelectorAll(`.st-key-${key} .legendtext`))"
                ".some(e => e.textContent === text)",
                arg=["explore_observation", f"observation ({m} trial{'s' if m > 1 else ''})"])
            wait_idle(page, PAGE_MS)
            assert box.input_value() == str(m)
            bars = drawn_bars(page, "explore_observation")
            legend = _observation_legend(page, "explore_observation")
            assert set(bars) == {"the run's observation", legend}, bars
            counts = _trials_drawn(bars, legend, "the run's observation", m)  # over all 20 trials' area
            _assert_whole_trials(counts, m)
            if m == 1:
                assert sum(1 for c in counts if round(c) > 0) == 1, counts
        posterior = drawn_bars(page, "explore_posterior")
        assert sum(posterior.get("posterior samples", [])) > 0, posterior
        _no_problems(page, "explore, gaussian_trials")


# ---- Check ----------------------------------------------------------------------------------
def test_check_page_draws_a_series_predictive_check_as_a_fan(page, served, tmp_path):
    _, ids = served
    with screenshot_on_failure(page, tmp_path, "check_sir_series"):
        goto(page, f"/check?run={ids['sir_series']}", PAGE_MS)
        page.locator(".st-key-check_predictive_0 .js-plotly-plot").wait_for()
        wait_idle(page, PAGE_MS)
        traces = drawn_traces(page, "check_predictive_0")
        assert _fan(traces) == {"bands": 2, "medians": 1, "observations": 1}, traces
        assert page.locator(".st-key-check_predictive_0 .cartesianlayer .subplot").count() == 1
        assert page.locator(".st-key-check_predictive_0 .barlayer .point").count() == 0
        assert page.locator(".st-key-check_sbc_ranks_0 .barlayer .point").count() > 0  # the other checks drew too
        # read as the fan it is (the words for a chart of bars said "each bar ... the red marks")
        assert page.get_by_text("at every time step the dark band holds the middle half").count() == 1
        assert page.get_by_text("each bar is the range where 90 %").count() == 0
        _no_problems(page, "check, sir_series")

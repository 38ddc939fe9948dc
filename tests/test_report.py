"""The one-file HTML report of a run (sbi_core.export.report) and figure export as PNG/SVG (sbi_core.export.figures).

The runs are tiny and trained in-process (:func:`sbi_core.jobs.worker.run_worker`, one torch thread): an amortized
NPE run whose calibration checks are run and saved, and a 2-round SNPE run without checks whose title is
hostile HTML. The figure exports drive Debian's Chromium through kaleido and are skipped without it.
"""

from __future__ import annotations

import html
import json
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sbi_core import plots
from sbi_core.checks import CHECK_KEYS, checks_dir, load_results, run_checks, save_results
from sbi_core.errors import SBIError
from sbi_core.export.figures import FigureExportError, close_exporter, figure_png, figure_svg, find_browser
from sbi_core.export.report import NO_CHECKS_TEXT, ReportError, run_report_html
from sbi_core.export.script import spec_to_script
from sbi_core.jobs.worker import run_worker
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore

pytestmark = pytest.mark.timeout(180)

HOSTILE = "<script>alert(1)</script> & \"co\""
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# the loss curves, the clouds of every round and the final pair plot
RUN_FIGURES = 3
# one figure per check, two for SBC (rank histograms and rank ECDF)
CHECK_FIGURE_TITLES = (plots.SBC_RANKS_TITLE, plots.SBC_ECDF_TITLE, plots.COVERAGE_TITLE, plots.TARP_TITLE,
                       plots.ZSCORE_TITLE, plots.RECOVERY_TITLE, plots.PREDICTIVE_CHECK_TITLE,
                       plots.REFERENCE_C2ST_TITLE, plots.MISSPECIFICATION_TITLE, plots.LC2ST_TITLE,
                       plots.ENSEMBLE_TITLE)


def finished_runs(root: Path) -> tuple[RunStore, str, str]:
    """``(store, checked, unchecked)``: an NPE run with saved checks and a 2-round SNPE run titled :data:`HOSTILE`."""
    store = RunStore(root)
    small = dict(hidden_features=16, num_transforms=2, num_threads=1)
    checked = store.create_run(RunSpec(simulator="linear_regression", method="npe", num_rounds=1,
                                       simulations_per_round=300, max_epochs=8, num_posterior_samples=200,
                                       title="Checked <b>run</b>", **small))
    unchecked = store.create_run(RunSpec(simulator="two_moons", method="snpe", num_rounds=2,
                                         simulations_per_round=150, max_epochs=3, num_posterior_samples=120,
                                         title=HOSTILE, **small))
    for rid in (checked, unchecked):
        assert run_worker(store, rid) == "done", store.get_run(rid).message
    results = run_checks(store, checked, {"num_datasets": 60, "num_posterior_samples": 20,  # 60: the local C2ST needs 50
                                          "ensemble_members": 2})  # and one more estimator, for the ensemble
    save_results(checks_dir(store, checked), results)
    return store, checked, unchecked


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return finished_runs(tmp_path_factory.mktemp("report_store"))


@pytest.fixture(scope="module")
def reports(runs):
    store, checked, unchecked = runs
    return {"checked": run_report_html(store, checked), "unchecked": run_report_html(store, unchecked)}


def plotly_divs(page: str) -> list[str]:
    return re.findall(r'<div id="([^"]+)" class="plotly-graph-div"', page)


# ---------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------
def test_report_has_the_run_facts_spec_and_script(runs, reports):
    store, checked, _ = runs
    page, spec = reports["checked"], store.get_run(checked).spec
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Checked &lt;b&gt;run&lt;/b&gt;</title>" in page and "<b>run</b>" not in page
    for fact in ("Linear regression", "npe", "1 round × 300 simulations", "Seed", "done", checked):
        assert fact in page, fact
    shown_spec = re.search(r"<h2>RunSpec</h2><pre>(.*?)</pre>", page, re.S).group(1)
    assert json.loads(html.unescape(shown_spec)) == json.loads(json.dumps(spec.to_dict(), default=str))
    script = re.search(r"<h2>Rerun it</h2>.*?<pre>(.*?)</pre>", page, re.S).group(1)
    assert html.unescape(script) == spec_to_script(spec)
    compile(html.unescape(script), "rerun.py", "exec")


def test_report_draws_one_figure_per_chart_and_every_verdict(runs, reports):
    store, checked, _ = runs
    page = reports["checked"]
    results = load_results(checks_dir(store, checked))
    assert all(results.has(k) for k in CHECK_KEYS)  # an amortized built-in run: every check applies
    assert plotly_divs(page) == [f"figure-{k}" for k in range(RUN_FIGURES + len(CHECK_FIGURE_TITLES))]
    for title in (plots.LOSS_TITLE, plots.CLOUD_TITLE, "Pair plot, round 1 (final)", *CHECK_FIGURE_TITLES):
        assert json.dumps(title)[1:-1] in page, title
    texts = [results.summary["overall"]["text"]] + [v["text"] for k in CHECK_KEYS for v in results.verdicts(k)]
    assert len(texts) > len(CHECK_KEYS)
    for text in texts:
        assert html.escape(text) in page, text
    assert NO_CHECKS_TEXT not in page


def test_report_without_checks_says_so_and_escapes_a_hostile_title(runs, reports):
    page = reports["unchecked"]
    assert NO_CHECKS_TEXT in page
    assert len(plotly_divs(page)) == RUN_FIGURES
    assert "Pair plot, round 2 (final)" in page and "2 rounds finished" in page
    escaped = html.escape(HOSTILE)
    assert f"<h1>{escaped}</h1>" in page and f"<title>{escaped}</title>" in page
    assert "alert(1)</script>" not in page
    assert "<script>alert" not in page


@pytest.mark.parametrize("which", ["checked", "unchecked"])
def test_report_needs_no_network(reports, which):
    page = reports[which]
    tags = re.findall(r"<(script|link|img|iframe|object|embed|source|video|audio)\b[^>]*>", page, re.I)
    assert {t.lower() for t in tags} == {"script"}  # inline scripts only: no link, no image
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)
    # the markup outside the inline scripts (plotly.js holds link texts it never requests by itself;
    # what the page requests when it runs is recorded in tests/test_browser_report.py)
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", page, flags=re.S | re.I)
    assert not re.search(r"""\b(?:src|href|action|poster)\s*=\s*["']?\s*(?:[a-z]+:)?//""", markup, re.I)
    css = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    assert "url(" not in css and "@import" not in css and "@font-face" not in css
    assert page.count("* plotly.js v") == 1  # the library inline, once, for every figure


def test_report_is_reproducible(runs, reports):
    store, _, unchecked = runs
    assert run_report_html(store, unchecked) == reports["unchecked"]


def test_report_of_a_missing_or_unfinished_run_says_why(runs):
    store = runs[0]
    with pytest.raises(ReportError, match="no run 'nope'"):
        run_report_html(store, "nope")
    queued = store.create_run(RunSpec(simulator="two_moons", method="npe", num_rounds=1, num_threads=1))
    with pytest.raises(ReportError, match="no finished round"):
        run_report_html(store, queued)
    assert issubclass(ReportError, SBIError)


# ---------------------------------------------------------------------------
# figures as PNG / SVG (kaleido + Chromium)
# ---------------------------------------------------------------------------
def _browser_found() -> bool:
    try:
        find_browser()
    except FigureExportError:
        return False
    return True


needs_browser = pytest.mark.skipif(not _browser_found(), reason="no Chromium for kaleido (apt-get install chromium)")


def png_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from the PNG's IHDR chunk (the first chunk, right after the magic)."""
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@needs_browser
def test_png_has_the_magic_and_the_requested_size():
    fig = plots.loss_figure([0, 0, 0], [1, 2, 3], [3.0, 2.0, 1.5], [3.2, 2.4, 2.0], {0: 3})  # height 440
    assert png_size(figure_png(fig, width=320, height=200, scale=2)) == (640, 400)
    assert png_size(figure_png(fig, width=300, scale=1)) == (300, 440)  # the layout's height
    assert png_size(figure_png(fig)) == (1400, 880)  # plotly's default width 700, at scale 2


@needs_browser
def test_svg_parses_with_an_svg_root():
    fig = plots.posterior_rounds_figure([[[0.1, 0.2], [0.3, -0.1], [0.0, 0.5]]], labels=["a", "b"])
    data = figure_svg(fig, width=400, height=300)
    root = ET.fromstring(data)
    assert root.tag.endswith("svg")
    assert (root.get("width"), root.get("height")) == ("400", "300")
    assert b"Posterior after each round" in data


def test_a_missing_browser_says_what_to_install(monkeypatch, tmp_path):
    close_exporter()
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-chromium"))
    with pytest.raises(FigureExportError, match="install"):
        figure_png(plots.loss_figure([], [], [], []))
    monkeypatch.undo()
    close_exporter()


@needs_browser
def test_a_bad_size_is_refused():
    with pytest.raises(FigureExportError, match="positive"):
        figure_png(plots.loss_figure([], [], [], []), width=100, height=100, scale=0)

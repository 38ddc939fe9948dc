"""What a user typed is shown as text (sbi_ui/user_text.py), on the pages and in the figures and report.

* :func:`plain` (property test): its output has every ASCII punctuation character backslash-escaped, so
  by CommonMark no link, image, emphasis, code span, HTML, heading, list, Streamlit colour/icon directive
  or ``$`` formula can start in it; no bare ``http://``, ``www.`` or ``name@host`` GFM would turn into a
  link; no line break; and read back (escapes resolved, word joiners dropped) it is the input's text.
* plotly text escapes ``<``: the figure helpers' labels, a prior's axis title.
* The RunSpec the report and the Runs page show names an upload's file, never its server path.
* The Runs page (AppTest) of a run titled ``![i](http://...)`` and the sidebar show the title as
  escaped text and never the run store's folder.

The browser check of every page is ``tests/test_browser_hostile_text.py``.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from sbi_core import RunSpec, plots
from sbi_core.export.report import spec_without_paths
from sbi_core.stats.priors import Prior
from sbi_core.store.runs import RunStore
from sbi_ui import keys as K
from sbi_ui.user_text import WORD_JOINER, plain, plain_paragraphs, plot_text

ROOT = Path(__file__).resolve().parent.parent
PUNCT = set(string.punctuation)
HOSTILE = [
    "![i](http://203.0.113.9/T.png)",
    "<img src=http://203.0.113.9/p.png>",
    "`a` [l](http://203.0.113.9/x) name`s.py",
    ":red[big] :material/home: :smile: $x^2$ $$y$$",
    "www.example.com https://203.0.113.9/auto me@example.com mailto:a@b.cd",
    "# heading\n- list\n1. one\n> quote\n| a | b |",
    "&lt;b&gt; &amp; &#60;img&#62; a\\b ~~s~~ _u_ *e* ü · θ₁",
    "[x]: http://203.0.113.9/ref [x] ![y][x]",
]
# GFM's literal autolinks: a scheme or "www" right before its escaped ":" or ".", or an escaped "@"
# not behind a word joiner
AUTOLINK_TRIGGER = re.compile(r"(?i)(https?|ftps?|www)\\[:.]|(?<!" + WORD_JOINER + r")\\@")


def read_back(md: str) -> str:
    """What CommonMark shows for ``md`` made only of literal characters and backslash escapes."""
    out, k = [], 0
    while k < len(md):
        ch = md[k]
        if ch == "\\":
            assert k + 1 < len(md) and md[k + 1] in PUNCT, f"a backslash escapes no punctuation at {k} in {md!r}"
            out.append(md[k + 1])
            k += 2
            continue
        assert ch not in PUNCT, f"bare punctuation {ch!r} at {k} in {md!r}"
        out.append(ch)
        k += 1
    return "".join(out).replace(WORD_JOINER, "")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
       | st.lists(st.sampled_from(sorted(PUNCT) + ["http", "www", "a", " ", "\n", "mailto", "@", "material"]),
                  max_size=30).map("".join))
def test_plain_escapes_every_markdown_construct_and_keeps_the_text(text):
    md = plain(text)
    assert "\n" not in md and "\r" not in md
    assert not AUTOLINK_TRIGGER.search(md), md
    assert read_back(md) == " ".join(text.replace(WORD_JOINER, "").split()) or WORD_JOINER in text


@pytest.mark.parametrize("text", HOSTILE)
def test_plain_on_hostile_text(text):
    md = plain(text)
    assert read_back(md) == " ".join(text.split())
    for bare in ("![", "](", "<img", "`", ":red[", ":material/", "$x", "http:", "www.", "\n#"):
        assert not re.search(r"(?<!\\)" + re.escape(bare), md), (bare, md)  # each is escaped where it occurs
    assert not AUTOLINK_TRIGGER.search(md) and "\n" not in md



def test_plain_paragraphs_keeps_paragraphs_apart_and_escapes_each():
    md = plain_paragraphs("A pendulum.\n\n![i](http://203.0.113.9/d.png)\nmore\n\n\n")
    assert md.split("\n\n") == [plain("A pendulum."), plain("![i](http://203.0.113.9/d.png) more")]


def test_plot_text_and_figure_labels_escape_html():
    assert plot_text("<a href='http://x'>k</a> & b") == "&lt;a href='http://x'&gt;k&lt;/a&gt; &amp; b"
    evil = "<img src=http://203.0.113.9/p.png>"
    prior = Prior.from_spec([{"name": evil, "dist": "uniform", "low": 0, "high": 1}])
    fig = plots.marginal_figure(prior.marginals[0])
    assert fig.layout.xaxis.title.text == plot_text(evil)
    assert "<img" not in fig.layout.title.text
    import numpy as np

    fig = plots.posterior_figure(np.random.default_rng(0).normal(size=(50, 2)), 0, 1, [evil, "b<br>"],
                                 np.array([[-3, 3], [-3, 3]]))
    texts = [fig.layout.xaxis.title.text, fig.layout.yaxis.title.text] + [t.hovertemplate or "" for t in fig.data]
    assert all("<img" not in t for t in texts) and plot_text(evil) in fig.layout.xaxis.title.text


def test_the_shown_runspec_names_the_uploaded_file_not_its_server_path(tmp_path):
    path = tmp_path / "store" / "uploads" / "0123456789abcdef" / "data.csv"
    spec = RunSpec(simulator={"kind": "table", "path": str(path), "theta_columns": ["a"], "x_columns": ["b"],
                              "name": "data.csv"}, method="npe", num_rounds=1)
    shown = spec_without_paths(spec)
    assert shown["simulator"]["path"] == "data.csv" and str(tmp_path) not in repr(shown)
    assert spec.simulator["path"] == str(path)  # the spec itself is untouched
    assert spec_without_paths(RunSpec())["simulator"] == RunSpec().simulator


@pytest.mark.timeout(120)
def test_runs_page_and_sidebar_show_a_hostile_title_as_text_and_no_store_path(tmp_path, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    store = RunStore(root)
    title = HOSTILE[0]
    rid = store.create_run(RunSpec(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=200,
                                   title=title))
    store.finish_run(rid, "cancelled", event={"type": "cancelled", "round": None})
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params[K.QP_RUN] = rid
    at.run()
    at.switch_page("pages/runs.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    texts = [str(e.value) for kind in ("markdown", "caption", "subheader", "info", "warning", "error", "success")
             for e in getattr(at, kind)]
    texts += [str(e.label) for e in at.expander]
    assert any(plain(title) in t for t in texts), texts  # the title is shown ...
    assert not any("![i](" in t for t in texts), texts  # ... and never as an image
    assert not any(str(root) in t or str(root.resolve()) in t for t in texts), texts

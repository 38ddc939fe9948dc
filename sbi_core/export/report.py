"""A stored run as one self-contained HTML file: what ran, how it trained, its posterior, its checks, its code.

:func:`run_report_html` reads only what the run store keeps (the run row, the
``epoch`` and ``round`` events, the saved posterior samples of each round and
the saved calibration-check results); no network is loaded and nothing is
simulated. The page holds, in order:

1. the run's title, model, method, budget, seed, status and times;
2. the loss curves (:func:`sbi_core.plots.loss_figure`);
3. the posterior clouds of every finished round (:func:`~sbi_core.plots.posterior_rounds_figure`)
   and the final round's pair plot (:func:`~sbi_core.plots.pair_plot_figure`);
4. the calibration checks, when the run has stored results: each check's
   figure (:mod:`sbi_core.plots.calibration`) with its verdicts in words, or one
   sentence saying that none were run;
5. the RunSpec as JSON, and the script that reruns it (:func:`~sbi_core.export.script.spec_to_script`).

The file opens offline and makes no request: plotly.js is written inline once,
before the first figure, and every later figure reuses it; the CSS is inline
and names only system fonts; there are no external images. Everything that
comes from a user (titles, parameter names, spec strings, messages) is
HTML-escaped, and plotly escapes ``<`` in the figures' JSON. The page is a pure
function of the store's contents: the figures' element ids are numbered, not
random, so the same run gives the same file.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from sbi_core import plots
from sbi_core.checks.figures import CHECK_CHARTS, charts_of, check_figure
from sbi_core.checks.plan import CHECK_TITLES
from sbi_core.checks.results import CheckResults, checks_dir, load_results
from sbi_core.errors import SBIError
from sbi_core.export.script import spec_to_script
from sbi_core.methods.catalogue import loss_smoothing
from sbi_core.run.spec import RunSpec
from sbi_core.run.summary import summary_words
from sbi_core.simulators.registry import builtin_of
from sbi_core.stats.priors import Prior

__all__ = ["ReportError", "run_report_html", "spec_without_paths", "NO_CHECKS_TEXT"]

NO_CHECKS_TEXT = "No calibration checks were run for this run (start them on the Check page)."

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1b1f2a;
       margin: 0; background: #fff; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.7rem; margin: 0 0 .2rem; } h2 { font-size: 1.3rem; border-bottom: 1px solid #dee2e6;
     padding-bottom: .2rem; margin-top: 2rem; } h3 { font-size: 1.05rem; margin: 1.2rem 0 .3rem; }
.sub { color: #495057; margin: 0 0 1rem; }
table.facts { border-collapse: collapse; } table.facts th, table.facts td { text-align: left;
     padding: .2rem 1rem .2rem 0; vertical-align: top; } table.facts th { color: #495057; font-weight: 600; }
pre { background: #f8f9fa; border: 1px solid #dee2e6; padding: .8rem; overflow-x: auto; font-size: .82rem;
      white-space: pre-wrap; word-break: break-word; }
.figure { margin: .8rem 0; break-inside: avoid; page-break-inside: avoid; }
ul.verdicts { list-style: none; padding-left: 0; } ul.verdicts li { margin: .2rem 0; padding-left: 1.4rem;
     text-indent: -1.4rem; } .good::before { content: "\\2714  "; color: #2b8a3e; }
.warn::before { content: "\\26A0  "; color: #e67700; } .bad::before { content: "\\2716  "; color: #c92a2a; }
.info::before { content: "\\2139  "; color: #1971c2; }
@media print { main { max-width: none; padding: 0; } h2 { break-after: avoid; } pre { font-size: .7rem; } }
"""


class ReportError(SBIError, LookupError):
    """No report can be made of this run (it does not exist, or no round has finished)."""


def spec_without_paths(spec: RunSpec) -> dict:
    """``spec.to_dict()`` with the server path of an uploaded simulator or table replaced by its file name.

    Where the server keeps its uploads (``/.../store/uploads/<hash>/sim.py``) is none of a reader's
    business: a report or a page names the file, never the folder it lies in."""
    shown = spec.to_dict()
    sim = shown.get("simulator")
    if isinstance(sim, dict) and isinstance(sim.get("path"), str):
        shown["simulator"] = dict(sim, path=sim["path"].replace("\\", "/").rsplit("/", 1)[-1])
    return shown


# ---------------------------------------------------------------------------
# what the store keeps about the run
# ---------------------------------------------------------------------------
@dataclass
class _RunData:
    """One run as the report draws it; ``samples``: one ``(m, D)`` array per finished round."""

    info: Any  # sbi_core.store.runs.RunInfo
    rounds: list  # the ``round`` events, in order
    epochs: list  # the ``epoch`` events, in order
    samples: list
    labels: list  # D axis titles
    bounds: Optional[np.ndarray]  # (D, 2) prior plotting box, None when unknown
    truth: Optional[np.ndarray]  # (D,) true parameter, None when unknown
    obs_labels: Optional[list]  # K names of the observation's components, None when unknown
    model: str
    checks: Optional[CheckResults]


def _axes(spec: RunSpec, names: list):
    """``(labels, bounds (D, 2) or None, truth (D,) or None, obs_labels or None, model)`` of a run."""
    sim = builtin_of(spec.simulator_ref)
    prior = Prior.from_spec(spec.prior) if spec.prior is not None else (sim.prior if sim is not None else None)
    labels = sim.param_labels() if sim is not None and sim.param_names == names else list(names)
    bounds = None if prior is None else prior.bounds.numpy().astype(float)
    if spec.true_theta is not None:
        truth = np.asarray(spec.true_theta, dtype=float)
    elif spec.observation is None and sim is not None:  # the model's default observation: its truth is known
        truth = sim.true_theta.numpy().astype(float)
    else:
        truth = None
    ref = spec.simulator_ref
    model = sim.title if sim is not None else str(ref.get("name") or ref.get("file_name") or ref.get("kind"))
    return labels, bounds, truth, (sim.obs_labels() if sim is not None else None), model


def _load(store: Any, run_id: str) -> _RunData:
    info = store.get_run(run_id)
    if info is None:
        raise ReportError(f"There is no run {run_id!r} in this run store; pick one from the run list.")
    rounds = [ev for _, ev in store.events(run_id, types=("round",))]
    samples = [np.asarray(s, dtype=float) for s in store.round_samples(run_id)]
    if not rounds or not samples:
        raise ReportError("This run has no finished round yet: make its report once a round has finished.")
    names = list(rounds[-1].get("param_names") or [f"theta{k + 1}" for k in range(samples[-1].shape[1])])
    labels, bounds, truth, obs_labels, model = _axes(info.spec, names)
    return _RunData(info=info, rounds=rounds, epochs=[ev for _, ev in store.events(run_id, types=("epoch",))],
                    samples=samples, labels=labels, bounds=bounds, truth=truth, obs_labels=obs_labels,
                    model=model, checks=load_results(checks_dir(store, run_id)))


# ---------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------
def _loss(data: _RunData):
    ep = data.epochs
    best = {int(r["round"]): int(r["best_epoch"]) for r in data.rounds if r.get("best_epoch") is not None}
    return plots.loss_figure([e["round"] for e in ep], [e["epoch"] for e in ep],
                             [_num(e.get("train_loss")) for e in ep], [_num(e.get("val_loss")) for e in ep], best,
                             smooth=loss_smoothing(data.info.spec.method))


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _posterior_figures(data: _RunData) -> list:
    last = len(data.samples)
    return [
        plots.posterior_rounds_figure(data.samples, 0, 1, data.labels, data.bounds, data.truth),
        plots.pair_plot_figure(data.samples[-1], data.labels, data.truth, title=f"Pair plot, round {last} (final)"),
    ]


def _check_sections(data: _RunData) -> list[tuple[str, list, list[dict]]]:
    """``(title, figures, verdicts)`` of every check that ran, in the Check page's order."""
    res = data.checks
    to_label = dict(zip(list(data.rounds[-1].get("param_names") or []), data.labels))
    labels = [to_label.get(n, n) for n in res.summary.get("checked_names", [])]
    checks = dict.fromkeys(key for _, key in CHECK_CHARTS)  # in the Check page's order
    return [(CHECK_TITLES[key], [check_figure(n, res, labels, data.obs_labels) for n in charts_of(key)],
             res.verdicts(key)) for key in checks if res.has(key)]


# ---------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------
_e = html.escape


class _Figures:
    """Figures as ``<div>``s: plotly.js inline with the first one only, ids numbered in order."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, fig) -> str:
        body = fig.to_html(full_html=False, include_plotlyjs=self.count == 0, div_id=f"figure-{self.count}",
                           config={"displaylogo": False, "responsive": True})
        self.count += 1
        return f'<div class="figure">{body}</div>'


def _when(t: Optional[float]) -> str:
    return "—" if t is None else _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _facts(data: _RunData) -> str:
    info, spec = data.info, data.info.spec
    done = sum(int(r.get("num_simulations") or 0) for r in data.rounds)
    seconds = info.seconds
    rows = [
        ("Model", data.model), ("Method", spec.method),
        ("Budget", f"{_count(spec.rounds, 'round')} × {spec.simulations_per_round:,} simulations; "
                   f"{_count(len(data.rounds), 'round')} finished, {done:,} simulations run"),
        ("Summary of the data", summary_words(spec)),
        ("Seed", str(spec.seed)), ("Status", info.status + (f": {info.message}" if info.message else "")),
        ("Created", _when(info.created)), ("Started", _when(info.started)), ("Finished", _when(info.finished)),
        ("Running time", "—" if seconds is None else f"{seconds:.1f} s"), ("Run id", info.id),
    ]
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="facts">{cells}</table>'


def _verdicts(items: Sequence[dict]) -> str:
    lines = "".join(f'<li class="{_e(v.get("kind", "info"))}">{_e(str(v.get("text", "")))}</li>' for v in items)
    return f'<ul class="verdicts">{lines}</ul>' if lines else ""


def _checks_html(data: _RunData, figure: _Figures) -> str:
    if data.checks is None:
        return f"<p>{_e(NO_CHECKS_TEXT)}</p>"
    summary = data.checks.summary
    parts = [_verdicts([summary["overall"]] if summary.get("overall") else [])]
    test, opts = summary.get("test_set") or {}, summary.get("options") or {}
    if test:
        parts.append(f"<p>{int(test.get('size', 0)):,} test datasets × {_e(str(opts.get('num_posterior_samples')))}"
                     f" posterior draws each; seed {_e(str(opts.get('seed')))}.</p>")
    parts += [f"<p>{_e(str(why))}</p>" for why in (summary.get("skipped") or {}).values()]
    for title, figs, verdicts in _check_sections(data):
        parts.append(f"<h3>{_e(title)}</h3>" + "".join(figure(f) for f in figs) + _verdicts(verdicts))
    return "".join(parts)


def _script_html(spec: RunSpec) -> str:
    """The script that reruns ``spec`` in a ``<pre>``, or why there is none."""
    try:
        script = spec_to_script(spec)
    except SBIError as err:
        return f"<p>No script can be written for this run: {_e(str(err))}</p>"
    return f"<p>Save as <code>rerun.py</code> and run <code>python rerun.py</code>:</p><pre>{_e(script)}</pre>"


def _page(title: str, sections: Sequence[tuple[str, str]], subtitle: str) -> str:
    body = "".join(f"<section><h2>{_e(h)}</h2>{content}</section>" for h, content in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
            f"<body><main><h1>{_e(title)}</h1><p class=\"sub\">{_e(subtitle)}</p>{body}</main></body></html>\n")


def run_report_html(store: Any, run_id: str) -> str:
    """The report of run ``run_id`` of ``store`` (a :class:`~sbi_core.store.runs.RunStore`) as one HTML page.

    The page's contents are listed in the module docstring; it opens offline (plotly.js inline).

    Raises:
        ReportError: there is no such run, or it has no finished round.
    """
    data = _load(store, run_id)
    spec = data.info.spec
    figure = _Figures()
    sections = [
        ("Run", _facts(data)),
        ("Training", figure(_loss(data))),
        ("Posterior", "".join(figure(f) for f in _posterior_figures(data))),
        ("Calibration checks", _checks_html(data, figure)),
        ("RunSpec", f"<pre>{_e(json.dumps(spec_without_paths(spec), indent=2, sort_keys=True, default=str))}</pre>"),

        ("Rerun it", _script_html(spec)),
    ]
    title = data.info.title or spec.title or f"Run {run_id}"
    return _page(title, sections, f"{data.model} · {spec.method} · run {run_id}")

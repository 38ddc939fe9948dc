"""How each round's posterior was sampled, in words: MCMC's chains, effective sample size and R-hat, or
ABC's tolerance and acceptance rate; and the warning a student needs when the chains have not mixed.

Reads the ``sampling`` field of round events (:mod:`sbi_core.events`); flow posteriors have none and
show nothing here.
"""

from __future__ import annotations

from typing import Optional

import streamlit as st

from sbi_ui.tracker import RunTracker

__all__ = ["MCMC_HELP", "ABC_HELP", "sampling_line", "sampling_notes", "abc_series"]

MCMC_HELP = (
    "This method learns a likelihood or a ratio, not the posterior itself, so its posterior samples come "
    "from Markov chain Monte Carlo: many chains walk through parameter space, each step guided by "
    "the learned network. ESS (effective sample size) says how many independent samples the correlated "
    "steps are worth; R-hat compares the chains with each other: near 1.00 means they agree, above 1.1 "
    "that they have not mixed and the cloud may miss part of the posterior."
)
ABC_HELP = (
    "ABC trains no network. It simulates, measures how far each simulation lies from the observation "
    "(on z-scored data) and keeps those closer than the tolerance ε. A smaller ε is more exact but keeps "
    "fewer simulations; ESS counts how many of the weighted particles are effectively independent."
)


def sampling_line(report: Optional[dict]) -> Optional[str]:
    """One line for a round's ``sampling`` report, or ``None`` for a flow posterior."""
    if not report:
        return None
    if report.get("kind") == "mcmc":
        ess = [float(v) for v in report.get("ess") or []]
        rhat = [float(v) for v in report.get("rhat") or []]
        text = f"MCMC: {report.get('num_chains', '?')} chains"
        if ess:
            text += f", effective sample size {min(ess):,.0f} (lowest parameter)"
        if rhat:
            text += f", R-hat {max(rhat):.2f} (worst parameter)"
        return text
    if report.get("kind") == "abc":
        parts = [f"ABC: tolerance ε {float(report.get('epsilon', float('nan'))):.3g}"]
        if report.get("acceptance_rate") is not None:
            parts.append(f"{100 * float(report['acceptance_rate']):.2g} % of simulations accepted")
        if report.get("num_particles") is not None:
            parts.append(f"{int(report['num_particles']):,} particles")
        if report.get("ess") is not None:
            parts.append(f"ESS {float(report['ess']):,.0f}")
        return ", ".join(parts)
    return None


def sampling_notes(tr: RunTracker) -> None:
    """The last round's sampling line, and a warning for every round whose sampler raised one."""
    reports = [(int(ev["round"]) + 1, ev.get("sampling")) for ev in tr.rounds if ev.get("sampling")]
    if not reports:
        return
    k, last = reports[-1]
    line = sampling_line(last)
    if line:
        st.caption(f"Round {k}: {line}.", help=MCMC_HELP if last.get("kind") == "mcmc" else ABC_HELP)
    for k, report in reports:
        if report.get("warning"):
            st.warning(f"Round {k}: {report['warning']}", icon=":material/warning:")


def abc_series(tr: RunTracker) -> tuple[list, list]:
    """Per finished generation: ``(epsilon, acceptance rate)`` lists from the round events."""
    eps, acc = [], []
    for ev in tr.rounds:
        report = ev.get("sampling") or {}
        eps.append(report.get("epsilon"))
        acc.append(report.get("acceptance_rate"))
    return eps, acc

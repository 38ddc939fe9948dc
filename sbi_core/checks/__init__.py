"""Calibration checks of a finished run: which apply, computing them, keeping the results.

- :mod:`.plan`: which checks apply to which run (amortized, sequential, TSNPE, table), and why;
- :mod:`.options`: a check job's settings (test datasets, posterior draws, seed);
- :mod:`.testset`: the test datasets (simulated, or a table run's held-out rows);
- :mod:`.compute`: :func:`run_checks`, every applicable check from one shared pass of posterior draws;
- the 99 % bands of calibrated rank histograms and rank ECDFs are statistics, in :mod:`sbi_core.stats.bands`;
- :mod:`.verdicts`: plain-words verdicts computed from the numbers;
- :mod:`.members`: the ensemble's extra estimators (the run's method retrained on its simulations with
  other seeds), one after another or as Dask tasks;
- :mod:`.breakit`: the "break it" twin (the same run trained badly) and its pairing;
- :mod:`.results`: saving and loading results under ``artifacts/<run_id>/checks/``;
- :mod:`.job`: the background job a worker process runs (``python -m sbi_core.jobs.worker --checks``).

The maths of each check lives in :mod:`sbi_core.diagnostics`; the job status in
:mod:`sbi_core.store.check_records`.
"""

from sbi_core.checks.breakit import broken_spec, broken_twin, link_broken_twin, start_broken_twin
from sbi_core.checks.compute import run_checks
from sbi_core.checks.options import CheckOptions
from sbi_core.checks.plan import CHECK_KEYS, CHECK_TITLES, CheckItem, CheckPlan, plan_checks
from sbi_core.checks.results import CheckResults, checks_dir, load_results, save_results

__all__ = [
    "run_checks",
    "broken_spec",
    "broken_twin",
    "link_broken_twin",
    "start_broken_twin",
    "CheckOptions",
    "CHECK_KEYS",
    "CHECK_TITLES",
    "CheckItem",
    "CheckPlan",
    "plan_checks",
    "CheckResults",
    "checks_dir",
    "load_results",
    "save_results",
]

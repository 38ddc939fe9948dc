"""A finished check job's results, kept with the run: ``artifacts/<run_id>/checks/``.

Two files: ``arrays.npz`` (every array a plot needs, e.g. ``ranks (N, D)``)
and ``summary.json`` (the plan, the options, the numbers each verdict rests on
and the verdicts in words). The arrays are written first and the summary
last, each to a temporary name and renamed, so a reader that finds
``summary.json`` finds complete results; reopening them is two small reads.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

__all__ = ["CheckResults", "save_results", "load_results", "checks_dir", "RESULTS_VERSION"]

RESULTS_VERSION = 1
_SUMMARY, _ARRAYS = "summary.json", "arrays.npz"


@dataclass
class CheckResults:
    """``summary`` (JSON-serialisable dict) and ``arrays`` (name -> numpy array) of one check job.

    ``summary`` keys: ``version``, ``run_id``, ``plan`` (:meth:`CheckPlan.to_dict`),
    ``options``, ``param_names``, ``obs_names``, ``test_set``, ``seconds``, one entry
    per check that ran (its numbers), ``skipped`` (check -> why it could not run)
    and ``verdicts`` (check -> list of ``{"kind", "text"}``).
    """

    summary: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def has(self, key: str) -> bool:
        """Whether check ``key`` ran and has results."""
        return key in self.summary and isinstance(self.summary[key], dict)

    def array(self, name: str) -> Optional[np.ndarray]:
        return self.arrays.get(name)

    def verdicts(self, key: str) -> list[dict]:
        return list(self.summary.get("verdicts", {}).get(key, []))


def checks_dir(store: Any, run_id: str) -> Path:
    """``artifacts/<run_id>/checks/`` of ``store`` (not created)."""
    return Path(store.artifacts_root) / run_id / "checks"


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "detach"):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def save_results(folder: Path, results: CheckResults) -> Path:
    """Write ``results`` into ``folder`` (created), arrays first, summary last; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
              for k, v in results.arrays.items()}
    tmp = folder / f"{_ARRAYS}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    os.replace(tmp, folder / _ARRAYS)
    tmp = folder / f"{_SUMMARY}.tmp{os.getpid()}"
    tmp.write_text(json.dumps({"version": RESULTS_VERSION, **results.summary}, default=_json_default, indent=1))
    os.replace(tmp, folder / _SUMMARY)
    return folder


def load_results(folder: Path) -> Optional[CheckResults]:
    """The results saved in ``folder``, or ``None`` when there are none (or they are unreadable)."""
    folder = Path(folder)
    try:
        summary = json.loads((folder / _SUMMARY).read_text())
        with np.load(folder / _ARRAYS, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    if not isinstance(summary, dict) or summary.get("version") != RESULTS_VERSION:
        return None
    return CheckResults(summary, arrays)

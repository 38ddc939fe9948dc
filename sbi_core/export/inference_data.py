"""A run as an ArviZ ``InferenceData``: its posterior samples, every round, the observation and the spec.

What :func:`to_inference_data` (a :class:`~sbi_core.run.loop.RunResult` in memory) and
:func:`inference_data_from_store` (a run of the :class:`~sbi_core.store.runs.RunStore`, read from its
saved samples and events, no network loaded) build, both through one builder:

``posterior`` (ArviZ's standard group)
    one variable per parameter (the prior's names), dims ``(chain, draw) = (1, m)``: the final
    round's ``m`` samples at ``x_o``. They are *independent* draws of the posterior estimate
    (a flow is sampled directly, not by a Markov chain), so one chain is the honest shape: R-hat
    needs several chains and is undefined here, and the effective sample size of iid draws is about
    the draw count (``arviz.summary`` reports ``ess_bulk ~ m``). Units (``attrs["units"]``) where
    the simulator has them.
``observed_data`` (standard)
    one vector variable ``x``, dim ``x_dim`` of length ``K``, whose coordinate labels are the
    observation's component names (the simulator's ``obs_names``, a table's ``x_columns``, else
    ``x1 .. xK``), with a ``units`` coordinate where the simulator has units. One vector rather
    than ``K`` scalars: ``K`` can be a long time series, and component names need not be valid,
    distinct variable names.
``posterior_rounds`` (custom; left out with ``all_rounds=False``)
    every round's samples, one variable per parameter, dims ``(round, chain, draw)``; ``round``
    is the 0-based round index (as in the run's events and ``round_<i>`` folders) and the last
    round equals ``posterior``. One group with a ``round`` dimension rather than a group per
    round: xarray aligns, selects (``.sel(round=0)``) and writes it to NetCDF as one dataset, and
    the group count stays fixed. Rounds share ``num_posterior_samples``, so all rows are full;
    should counts differ, rows past a round's count are NaN and the ``num_draws`` coordinate
    (dim ``round``) says how many are real.
``training`` (custom; left out with ``all_rounds=False`` or when no round trained a network, as in ABC)
    ``train_loss`` and ``val_loss`` (negative log-likelihood per sample, lower is better), dims
    ``(round, epoch)`` with ``epoch`` 1-based, NaN past a round's last epoch (early stopping
    makes rounds unequal) or where no validation loss was measured; ``best_epoch`` (dim
    ``round``): the epoch whose network the round kept (0: none).

Every group carries the same attributes: ``created_at`` (UTC, ISO 8601, when the export was made),
``arviz_version``, ``inference_library="sbi_core"`` and its ``inference_library_version`` where
installed, and, where the run has a spec, ``spec`` (``RunSpec.to_json(indent=None)``;
``RunSpec.from_json`` reads it back), ``method`` and ``seed``; a stored run adds ``run_id``.

:func:`to_netcdf_bytes` writes it as NetCDF-4 (HDF5, via h5netcdf) for a download;
``arviz.from_netcdf`` reads every group back.

ArviZ and xarray are imported inside the functions: importing :mod:`sbi_core` stays fast.

Example:
    >>> idata = to_inference_data(run)                           # doctest: +SKIP
    >>> idata.posterior["theta1"].shape                          # doctest: +SKIP
    (1, 1000)
    >>> open("run.nc", "wb").write(to_netcdf_bytes(idata))       # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import os
import tempfile
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from sbi_core.errors import SBIError
from sbi_core.run.loop import resolve_simulator
from sbi_core.run.spec import RunSpec
from sbi_core.simulators.registry import builtin_of
from sbi_core.store.artifacts import ArtifactMissing

if TYPE_CHECKING:  # pragma: no cover
    import arviz
    import xarray

    from sbi_core.run.loop import RunResult
    from sbi_core.store.runs import RunStore

__all__ = ["InferenceDataError", "to_inference_data", "inference_data_from_store", "to_netcdf_bytes"]

_RESERVED = ("chain", "draw", "round", "epoch", "x_dim", "num_draws")  # dimension and coordinate names


class InferenceDataError(SBIError, ValueError):
    """A run that cannot become an InferenceData as it is (e.g. a parameter name NetCDF cannot hold)."""


@dataclass(frozen=True)
class _RunRecord:
    """What both sources give the builder.

    rounds: one ``(m_r, D)`` array per finished round, in order; x_obs: ``(K,)``;
    histories: per round, its epoch records (``train_loss``, ``val_loss``, ``best_epoch``);
    simulator: where known, the :class:`~sbi_core.simulators.Simulator` (names and units).
    """

    names: list[str]
    rounds: list[np.ndarray]
    x_obs: np.ndarray
    histories: list[list[dict]]
    spec: Optional[RunSpec]
    simulator: Any = None
    extra_attrs: Optional[dict] = None


# ---------------------------------------------------------------------------
# the two sources
# ---------------------------------------------------------------------------
def to_inference_data(run: "RunResult", *, all_rounds: bool = True) -> "arviz.InferenceData":
    """The run as an ``arviz.InferenceData`` (groups and attributes: the module docstring).

    Args:
        run: a finished :class:`~sbi_core.run.loop.RunResult`; ``rounds[i].posterior_samples`` are
            ``(m, D)``, ``x_obs`` is ``(K,)``.
        all_rounds: also the ``posterior_rounds`` and ``training`` groups; ``False`` keeps only
            ArviZ's standard ``posterior`` and ``observed_data``.

    Raises:
        InferenceDataError: the run has no round, or its parameter names cannot be variable names.
    """
    record = _RunRecord(
        names=list(run.prior.names),
        rounds=[_as_array(r.posterior_samples) for r in run.rounds],
        x_obs=_as_array(run.x_obs).reshape(-1),
        histories=[list(r.history) for r in run.rounds],
        spec=run.spec,
        simulator=run.simulator,
    )
    return _build(record, all_rounds)


def inference_data_from_store(store: "RunStore", run_id: str, *, all_rounds: bool = True) -> "arviz.InferenceData":
    """A stored run as :func:`to_inference_data` makes it, from its saved samples and events.

    Reads ``store.round_samples`` (the ``round_<i>/posterior_samples.npy`` files, else the ``round``
    events), the parameter names of the ``round`` events, the losses of the ``epoch`` events and
    the stored spec; no network is loaded. The observation is the spec's, else the built-in
    model's default one (an uploaded model without one is loaded, in its sandbox, to learn it).

    Raises:
        InferenceDataError: there is no run ``run_id`` in the store.
        ArtifactMissing: the run has no finished round yet.
    """
    info = store.get_run(run_id)
    if info is None:
        raise InferenceDataError(f"There is no run {run_id!r} in this run store; pick one from the run list.")
    rounds = [np.asarray(s, dtype=np.float64) for s in store.round_samples(run_id)]
    last = store.last_event(run_id, types=("round",))
    if not rounds or last is None:
        raise ArtifactMissing("This run has no finished round yet: export it once a round has finished.")
    spec = info.spec
    simulator = builtin_of(spec.simulator_ref)
    epochs: dict[int, list[dict]] = {}
    for _, event in store.events(run_id, types=("epoch",)):
        epochs.setdefault(event.get("round"), []).append(event)
    record = _RunRecord(
        names=list(last[1]["param_names"]),
        rounds=rounds,
        x_obs=_stored_observation(spec, simulator),
        histories=[epochs.get(i, []) for i in range(len(rounds))],
        spec=spec,
        simulator=simulator,
        extra_attrs={"run_id": run_id},
    )
    return _build(record, all_rounds)


def _stored_observation(spec: RunSpec, simulator) -> np.ndarray:
    """``(K,)``: the spec's observation, else its model's default observation."""
    if spec.observation is not None:
        return np.asarray(spec.observation, dtype=np.float64).reshape(-1)
    if simulator is None:
        simulator = resolve_simulator(spec)
    return _as_array(simulator.default_observation).reshape(-1)


def _as_array(value: Any) -> np.ndarray:
    """A tensor or array-like as a float64 numpy array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


# ---------------------------------------------------------------------------
# the builder
# ---------------------------------------------------------------------------
def _arviz():
    """ArviZ, imported without its import-time notice of a coming refactor (a FutureWarning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

    return arviz


def _build(record: _RunRecord, all_rounds: bool) -> "arviz.InferenceData":
    az = _arviz()
    _check(record)
    attrs = _attrs(record, az.__version__)
    units = _param_units(record)
    groups = {
        "posterior": _posterior(record.names, record.rounds[-1], units, attrs),
        "observed_data": _observed(record, attrs),
    }
    if all_rounds:
        groups["posterior_rounds"] = _posterior_rounds(record.names, record.rounds, units, attrs)
        if any(record.histories):
            groups["training"] = _training(record.histories, attrs)
    return az.InferenceData(**groups)


def _check(record: _RunRecord) -> None:
    if not record.rounds:
        raise InferenceDataError("This run has no finished round, so there are no posterior samples to export.")
    names = record.names  # distinct: the Prior's rule
    for name in names:
        if "/" in name or name in _RESERVED:
            raise InferenceDataError(
                f"Parameter {name!r} cannot be exported: rename it (no '/', and none of {', '.join(_RESERVED)})."
            )
    if any(a.ndim != 2 or a.shape[1] != len(names) for a in record.rounds):
        raise InferenceDataError(
            f"The run's samples do not have one column per parameter ({len(names)}: {', '.join(names)})."
        )


def _attrs(record: _RunRecord, arviz_version: str) -> dict[str, Any]:
    """The attributes every group carries (NetCDF-safe: text and numbers only)."""
    attrs: dict[str, Any] = {
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "arviz_version": arviz_version,
        "inference_library": "sbi_core",
    }
    version = _sbi_core_version()
    if version is not None:
        attrs["inference_library_version"] = version
    if record.spec is not None:
        attrs.update(spec=record.spec.to_json(indent=None), method=str(record.spec.method), seed=int(record.spec.seed))
    attrs.update(record.extra_attrs or {})
    return attrs


def _sbi_core_version() -> Optional[str]:
    """The version of the distribution that installs ``sbi_core``, if it is installed as one."""
    import importlib.metadata as md

    for dist in md.packages_distributions().get("sbi_core", []):
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            continue
    return None


def _param_units(record: _RunRecord) -> dict[str, str]:
    """Each parameter's unit, where the simulator names the same parameters and gives one."""
    sim = record.simulator
    if list(getattr(sim, "param_names", []) or []) != record.names:
        return {}
    return {n: u for n, u in zip(record.names, getattr(sim, "param_units", []) or []) if u}


def _obs_labels(record: _RunRecord) -> tuple[list[str], Optional[list[str]]]:
    """``K`` component names and, where the simulator has any, their units."""
    k = record.x_obs.shape[0]
    sim = record.simulator
    names = list(getattr(sim, "obs_names", []) or [])
    if len(names) == k:
        units = list(getattr(sim, "obs_units", []) or [])
        return names, units if len(units) == k and any(units) else None
    ref = record.spec.simulator_ref if record.spec is not None else {}
    columns = ref.get("x_columns") if ref.get("kind") == "table" else None
    if columns is not None and len(columns) == k:
        return [str(c) for c in columns], None
    return [f"x{i + 1}" for i in range(k)], None


def _dataset(variables: dict, coords: dict, attrs: dict) -> "xarray.Dataset":
    import xarray as xr

    return xr.Dataset(variables, coords=coords, attrs=dict(attrs))


def _samples_dataset(names: Sequence[str], cube: np.ndarray, dims: tuple[str, ...], coords: dict,
                     units: dict[str, str], attrs: dict) -> "xarray.Dataset":
    """One variable per parameter from ``cube (..., D)``, the last axis split by name."""
    variables = {
        n: (dims, cube[..., j], {"units": units[n]} if n in units else {}) for j, n in enumerate(names)
    }
    return _dataset(variables, coords, attrs)


def _posterior(names: Sequence[str], samples: np.ndarray, units: dict[str, str], attrs: dict) -> "xarray.Dataset":
    """``samples (m, D)`` as dims ``(chain, draw) = (1, m)``."""
    coords = {"chain": [0], "draw": np.arange(samples.shape[0])}
    return _samples_dataset(names, samples[None], ("chain", "draw"), coords, units, attrs)


def _posterior_rounds(names: Sequence[str], rounds: list[np.ndarray], units: dict[str, str],
                      attrs: dict) -> "xarray.Dataset":
    """Rounds ``(m_r, D)`` as dims ``(round, chain, draw)``, NaN past a round's ``m_r``."""
    counts = [a.shape[0] for a in rounds]
    cube = np.full((len(rounds), 1, max(counts), len(names)), np.nan)
    for i, a in enumerate(rounds):
        cube[i, 0, : a.shape[0]] = a
    coords = {"round": np.arange(len(rounds)), "chain": [0], "draw": np.arange(max(counts)),
              "num_draws": ("round", np.asarray(counts, dtype=np.int64))}
    return _samples_dataset(names, cube, ("round", "chain", "draw"), coords, units, attrs)


def _observed(record: _RunRecord, attrs: dict) -> "xarray.Dataset":
    """``x_obs (K,)`` as the variable ``x`` along ``x_dim``, labelled by component name."""
    labels, units = _obs_labels(record)
    coords: dict[str, Any] = {"x_dim": labels}
    if units is not None:
        coords["units"] = ("x_dim", units)
    return _dataset({"x": (("x_dim",), record.x_obs)}, coords, attrs)


def _training(histories: list[list[dict]], attrs: dict) -> "xarray.Dataset":
    """Per-epoch losses ``(round, epoch)`` (NaN-padded) and each round's kept epoch."""
    epochs = max(len(h) for h in histories)
    losses = {key: np.full((len(histories), epochs), np.nan) for key in ("train_loss", "val_loss")}
    best = np.zeros(len(histories), dtype=np.int64)
    for i, history in enumerate(histories):
        for j, rec in enumerate(history):
            for key, table in losses.items():
                table[i, j] = np.nan if rec.get(key) is None else float(rec[key])
        best[i] = int(history[-1].get("best_epoch") or 0) if history else 0
    variables = {key: (("round", "epoch"), table) for key, table in losses.items()}
    variables["best_epoch"] = (("round",), best)
    coords = {"round": np.arange(len(histories)), "epoch": np.arange(1, epochs + 1)}
    return _dataset(variables, coords, attrs)


# ---------------------------------------------------------------------------
# NetCDF
# ---------------------------------------------------------------------------
def to_netcdf_bytes(idata: "arviz.InferenceData") -> bytes:
    """``idata`` as the bytes of a NetCDF-4 file (``arviz.from_netcdf`` reads it back), e.g. for a download."""
    with tempfile.TemporaryDirectory(prefix="sbi_idata_") as folder:
        path = os.path.join(folder, "run.nc")
        idata.to_netcdf(path)
        with open(path, "rb") as f:
            return f.read()

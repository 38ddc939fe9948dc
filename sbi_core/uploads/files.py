"""Uploaded files, kept in the run store's folder so that worker processes can read them.

An upload is stored once per content, under a name derived from its bytes::

    <store root>/uploads/<sha256[:16]>/<sanitised file name>

The same bytes uploaded twice (by any session) land in the same file; a
RunSpec then refers to that path (``{"kind": "upload", "path": ...}`` or
``{"kind": "table", "path": ...}``), and a worker reads it from there. File
names are reduced to letters, digits, ``.``, ``_`` and ``-`` (no folders, no
leading dot), so an upload can never be written outside its folder; and a
path is only ever *read* when :func:`is_upload_path` says it is one of these
files (after resolving ``..`` and symbolic links).

**How a RunSpec with an upload travels.** A path means something on one
machine only, so a spec that leaves the server carries its file instead
(:func:`portable_spec`)::

    {"kind": "upload", "name": "Pendulum", "file_name": "pendulum.py",
     "sha256": "<64 hex digits of the file's bytes>", "source": "<the file's text>"}

(``source_base64`` instead of ``source`` for a binary table, e.g. Parquet).
The file is embedded in the JSON rather than zipped beside it because a
simulator is small text (at most 1 MB of code): the spec stays one readable
file, it still runs with ``python -m sbi_core spec.json``, and every place
that takes a spec (the import page, the CLI, a notebook) reads it as before.

A spec from outside (the import page, the CLI) passes :func:`admit_spec`, the
one check of what it refers to: a built-in model by name, an embedded file
(hash-checked, then stored as an upload of this store, content-addressed as
above), or a path into this store's own uploads. Any other path is refused
without being opened, so a spec cannot make the server read ``/etc/passwd``
and quote it back in an error message.

**Owners, quota, clean-up.** ``save_upload(..., owner=token)`` records which
browser saved a file (a claim beside it), refuses a file that would take that
owner past its quota (``$SBI_UPLOAD_QUOTA_MB``) once its old unused uploads are
released, and now and then removes the uploads no run refers to: see
:mod:`sbi_core.uploads.quota`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable, Optional, Union

from sbi_core.errors import RunSpecError
from sbi_core.run.spec import RunSpec
from sbi_core.simulators import get_simulator, list_simulators
from sbi_core.simulators.uploaded import MAX_UPLOAD_BYTES as MAX_CODE_BYTES
from sbi_core.uploads import quota as uq
from sbi_core.uploads.paths import (
    UPLOADS_DIR,
    UploadError,
    is_upload_folder_name,
    safe_filename,
    uploads_root,
)

__all__ = ["UploadError", "MAX_UPLOAD_BYTES", "MAX_EMBED_BYTES", "UPLOADS_DIR", "FILE_KINDS", "save_upload",
           "safe_filename", "uploads_root", "is_upload_folder_name", "is_upload_path", "portable_spec",
           "admit_spec"]

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_EMBED_BYTES = 8 * 1024 * 1024  # the largest file a portable RunSpec carries inside
FILE_KINDS = ("upload", "table")  # simulator references that name a file
_EMBED_KEYS = ("file_name", "sha256", "source", "source_base64")


def save_upload(store_root: Union[str, os.PathLike], data: bytes, filename: str,
                max_bytes: int = MAX_UPLOAD_BYTES, *, owner: Optional[str] = None,
                quota_bytes: Optional[int] = None) -> Path:
    """Store ``data`` under ``<store_root>/uploads/<sha256[:16]>/<safe filename>``; returns the path.

    Writing is atomic (a temporary file renamed into place), and a file that
    is already there with the same content is left alone (its age renewed).

    ``owner`` (a browser's token) records who saved it and puts it under that
    owner's quota: ``quota_bytes``, default ``$SBI_UPLOAD_QUOTA_MB``
    (:func:`sbi_core.uploads.quota.quota_bytes`). A file that would take the
    owner past it first releases the owner's old uploads that no run uses, and
    is refused if it still does not fit. Without an owner (the CLI, tests, an
    older caller) there is no quota. After saving, uploads no run refers to are
    collected, at most once every few minutes
    (:func:`sbi_core.uploads.quota.maybe_collect_garbage`).

    Raises:
        UploadError: the data is empty, larger than ``max_bytes``, or over the owner's quota.
    """

    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise UploadError("An upload must be the file's bytes.")
    shown = safe_filename(filename)
    if not data:
        raise UploadError(f"The file {shown} is empty.")
    if len(data) > max_bytes:
        raise UploadError(
            f"The file {shown} is {len(data) / 1024 / 1024:.1f} MB; uploads may be at most "
            f"{max_bytes / 1024 / 1024:.0f} MB."
        )
    owner = owner if isinstance(owner, str) and owner else None
    digest = hashlib.sha256(data).hexdigest()[:16]
    with uq.upload_lock(store_root) as uploads:
        folder = uploads / digest
        path = folder / shown
        if owner is not None:
            uq.check_quota(store_root, path, len(data), owner,
                           uq.quota_bytes() if quota_bytes is None else quota_bytes)
        folder.mkdir(exist_ok=True)
        if owner is not None:
            uq.claim_upload(folder, owner)
        if path.is_file() and not path.is_symlink() and path.stat().st_size == len(data):
            with contextlib.suppress(OSError):
                os.utime(path)  # saved again: a fresh start of its grace period
        else:
            _write_atomically(folder, path, data)
    uq.maybe_collect_garbage(store_root)
    return path


def _write_atomically(folder: Path, path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in ``folder`` renamed into place."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def is_upload_path(store_root: Union[str, os.PathLike], path: Union[str, os.PathLike]) -> bool:
    """Whether ``path`` is a file saved by :func:`save_upload` under ``store_root``.

    A RunSpec imported from elsewhere may name any path; the app only runs or
    reads files from its own uploads folder. The path is resolved first (``..``
    and symbolic links followed), then it must be exactly
    ``<uploads>/<16 hex digits>/<a name safe_filename keeps>``: no other folder, no
    file in the middle of being written (``.part-*``), nothing a link points to
    outside.
    """
    try:
        if not isinstance(path, (str, os.PathLike)) or "\0" in os.fspath(path):
            return False
        p = Path(path).expanduser().resolve()
        root = uploads_root(store_root)
        return (p.parent.parent == root and is_upload_folder_name(p.parent.name)
                and safe_filename(p.name) == p.name and p.is_file())
    except (OSError, ValueError, RuntimeError, TypeError):
        return False


# ---------------------------------------------------------------------------
# a RunSpec's uploaded file: embedded to travel, admitted on arrival
# ---------------------------------------------------------------------------
def _what(kind: str) -> str:
    return "simulator file" if kind == "upload" else "table"


def portable_spec(spec: RunSpec) -> RunSpec:
    """``spec`` as it leaves this server: the uploaded file it names carried inside, no path.

    A built-in model, or a reference that already carries its file, is returned
    unchanged (as a copy).

    Raises:
        UploadError: the file is no longer in the store, or larger than
            :data:`MAX_EMBED_BYTES` (then it has to be shared beside the spec).
    """
    data = spec.to_dict()
    ref = spec.simulator_ref
    if ref.get("kind") not in FILE_KINDS or not ref.get("path"):
        return RunSpec.from_dict(data)
    path = Path(str(ref.pop("path")))
    what = _what(ref["kind"])
    try:
        size = path.stat().st_size
        if size > MAX_EMBED_BYTES:
            raise UploadError(
                f"The {what} {path.name} is {size / 1024 / 1024:.1f} MB, too large to travel inside a RunSpec "
                f"(at most {MAX_EMBED_BYTES // 1024 // 1024} MB): share the file beside the spec and upload it "
                "on the other server's Your model & data page.")
        raw = path.read_bytes()
    except OSError:
        raise UploadError(f"The {what} {path.name} of this run is no longer on this server, so its RunSpec "
                          "cannot carry it; upload the file again to run it.") from None
    for key in _EMBED_KEYS:
        ref.pop(key, None)
    ref["file_name"] = path.name
    ref["sha256"] = hashlib.sha256(raw).hexdigest()
    try:
        ref["source"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        ref["source_base64"] = base64.b64encode(raw).decode("ascii")
    data["simulator"] = ref
    return RunSpec.from_dict(data)


def _embedded_bytes(ref: dict) -> bytes:
    """The file a reference carries, checked against its ``sha256`` (when it gives one)."""
    what = _what(ref["kind"])
    name = ref.get("file_name")
    if not isinstance(name, str) or not name.strip():
        raise RunSpecError(f"The RunSpec carries a {what} but no 'file_name' for it (e.g. \"model.py\").")
    shown = safe_filename(name)
    if "source" in ref:
        if not isinstance(ref["source"], str):
            raise RunSpecError(f"'source' of {shown} in the RunSpec must be the file's text.")
        raw = ref["source"].encode("utf-8")
    else:
        try:
            raw = base64.b64decode(str(ref["source_base64"]), validate=True)
        except (binascii.Error, ValueError):
            raise RunSpecError(f"'source_base64' of {shown} in the RunSpec is not valid base64.") from None
    digest = ref.get("sha256")
    if digest is not None:
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
            raise RunSpecError(f"'sha256' of {shown} in the RunSpec must be 64 hexadecimal digits.")
        if hashlib.sha256(raw).hexdigest() != digest.lower():
            raise RunSpecError(
                f"The {what} {shown} inside this RunSpec does not match its sha256: it was changed or cut short "
                "after the download. Download the RunSpec again, or remove 'sha256' if you edited the file "
                "on purpose.")
    return raw


def _check_builtin_sizes(spec: RunSpec, name: str) -> None:
    """A built-in model's prior, observation and true parameter have the model's sizes (else the run
    would be accepted and fail once started)."""

    sim = get_simulator(name)
    if spec.prior is not None and len(spec.prior) != sim.theta_dim:
        raise RunSpecError(f"The prior has {len(spec.prior)} parameters but {sim.title} takes {sim.theta_dim} "
                           f"({', '.join(sim.param_names)}).", field="prior")
    if spec.observation is not None and len(spec.observation) != sim.x_dim:
        raise RunSpecError(f"The observation has {len(spec.observation)} numbers but {sim.title} produces "
                           f"{sim.x_dim} ({', '.join(sim.obs_names)}).", field="observation")
    if spec.true_theta is not None and len(spec.true_theta) != sim.theta_dim:
        raise RunSpecError(f"true_theta has {len(spec.true_theta)} numbers but {sim.title} takes "
                           f"{sim.theta_dim} parameters.", field="true_theta")


def admit_spec(spec: RunSpec, store_root: Union[str, os.PathLike],
               known_roots: Iterable[Union[str, os.PathLike]] = (), *, owner: Optional[str] = None) -> RunSpec:
    """The one check of a RunSpec from outside, before anything of it is run or read.

    - a built-in model must exist;
    - an embedded file (``source`` or ``source_base64``) is hash-checked and
      stored as an upload of ``store_root`` (saved by ``owner``, under its
      quota: :func:`save_upload`); the returned spec names that path (and no
      longer carries the file);
    - a ``path`` is accepted only into the uploads of ``store_root`` or of
      ``known_roots``; any other path is refused without being opened.

    Raises:
        RunSpecError: with what to do instead.
    """

    ref = spec.simulator_ref
    kind = ref.get("kind")
    if kind == "builtin":
        if ref.get("name") not in list_simulators():
            raise RunSpecError(f"There is no built-in model {ref.get('name')!r:.60}; choose one of "
                               f"{', '.join(list_simulators())}.", field="simulator")
        _check_builtin_sizes(spec, ref["name"])
        return RunSpec.from_dict(spec.to_dict())
    if kind not in FILE_KINDS:
        raise RunSpecError(f"Unknown simulator kind {kind!r:.40}; use 'builtin', 'upload' or 'table'.",
                           field="simulator")
    if kind == "table" and spec.is_sequential:
        raise RunSpecError("A run on a table of simulations must use a one-round method such as 'npe'.",
                           field="method")
    try:
        return _admit_file(spec, ref, kind, store_root, known_roots, owner)
    except RunSpecError as err:  # everything wrong with a carried or named file is the simulator setting's
        if err.field is None:
            err.field = "simulator"
        raise


def _admit_file(spec: RunSpec, ref: dict, kind: str, store_root, known_roots, owner: Optional[str]) -> RunSpec:
    """:func:`admit_spec` for a simulator or table file: store a carried file, or accept a known upload path."""
    what = _what(kind)
    if "source" in ref or "source_base64" in ref:
        raw = _embedded_bytes(ref)

        try:
            path = save_upload(store_root, raw, ref["file_name"],
                               max_bytes=MAX_CODE_BYTES if kind == "upload" else MAX_UPLOAD_BYTES, owner=owner)
        except UploadError as err:
            raise RunSpecError(f"The {what} inside this RunSpec cannot be stored: {err}") from None
        for key in _EMBED_KEYS:
            ref.pop(key, None)
        ref["path"] = str(path)
    else:
        path = ref.get("path")
        roots = [store_root, *known_roots]
        if not isinstance(path, str) or not any(is_upload_path(root, path) for root in roots):
            shown = safe_filename(Path(str(path)).name) if isinstance(path, str) else "none"
            raise RunSpecError(
                f"This RunSpec names a file path ({shown}) instead of carrying its {what}, and a RunSpec from "
                "elsewhere may only use built-in models and files it carries. Download the RunSpec again from "
                "the Runs page of the server that ran it (the download carries the file inside), or upload the "
                "file on Your model & data and export the spec from there.")
    data = spec.to_dict()
    data["simulator"] = ref
    return RunSpec.from_dict(data)

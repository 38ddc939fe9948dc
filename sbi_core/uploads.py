"""Uploaded files, kept in the run store's folder so that worker processes can read them.

An upload is stored once per content, under a name derived from its bytes::

    <store root>/uploads/<sha256[:16]>/<sanitised file name>

The same bytes uploaded twice (by any session) land in the same file; a
RunSpec then refers to that path (``{"kind": "upload", "path": ...}`` or
``{"kind": "table", "path": ...}``), and a worker reads it from there. File
names are reduced to letters, digits, ``.``, ``_`` and ``-`` (no folders, no
leading dot), so an upload can never be written outside its folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Union

from .errors import SBIError

__all__ = ["UploadError", "MAX_UPLOAD_BYTES", "UPLOADS_DIR", "save_upload", "safe_filename", "uploads_root",
           "is_upload_path"]

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
UPLOADS_DIR = "uploads"
_MAX_NAME = 80


class UploadError(SBIError, ValueError):
    """An upload that cannot be stored (empty, too large); the message says what to do."""


def safe_filename(filename: str, default: str = "upload") -> str:
    """``filename`` without folders, reduced to ``[A-Za-z0-9._-]``, no leading dot, at most 80 characters."""
    name = str(filename or "").replace("\\", "/").split("/")[-1]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip("._-")
    name = re.sub(r"_+", "_", name)
    if not name or name in (".", ".."):
        name = default
    if len(name) > _MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: _MAX_NAME - len(ext) - 1] + "." + ext
        else:
            name = name[:_MAX_NAME]
    return name


def uploads_root(store_root: Union[str, os.PathLike]) -> Path:
    """``<store root>/uploads`` (not created)."""
    return Path(store_root).expanduser().resolve() / UPLOADS_DIR


def save_upload(store_root: Union[str, os.PathLike], data: bytes, filename: str,
                max_bytes: int = MAX_UPLOAD_BYTES) -> Path:
    """Store ``data`` under ``<store_root>/uploads/<sha256[:16]>/<safe filename>``; returns the path.

    Writing is atomic (a temporary file renamed into place), and a file that
    is already there with the same content is left alone.

    Raises:
        UploadError: the data is empty or larger than ``max_bytes``.
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
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder = uploads_root(store_root) / digest
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / shown
    if path.is_file() and path.stat().st_size == len(data):
        return path
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
    return path


def is_upload_path(store_root: Union[str, os.PathLike], path: Union[str, os.PathLike]) -> bool:
    """Whether ``path`` is a file saved by :func:`save_upload` under ``store_root``.

    A RunSpec imported from elsewhere may name any path; the app only runs or
    reads files from its own uploads folder.
    """
    try:
        p = Path(path).expanduser().resolve()
        root = uploads_root(store_root)
        return p.is_file() and p.parent.parent == root
    except (OSError, ValueError, RuntimeError):
        return False

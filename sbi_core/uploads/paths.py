"""Where uploads live in the run store, and the names they may take: the bottom of :mod:`sbi_core.uploads`.

Both the files (:mod:`.files`) and the quota (:mod:`.quota`) read these, so
neither imports the other for them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Union

from sbi_core.errors import SBIError

__all__ = ["UPLOADS_DIR", "UploadError", "safe_filename", "uploads_root", "is_upload_folder_name"]

UPLOADS_DIR = "uploads"
_MAX_NAME = 80
_DIGEST_DIR = re.compile(r"[0-9a-f]{16}")  # an upload's folder: the first 16 hex digits of its sha256


class UploadError(SBIError, ValueError):
    """An upload that cannot be stored (empty, too large, over its owner's quota); the message says what to do."""


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


def is_upload_folder_name(name: str) -> bool:
    """Whether ``name`` is shaped like an upload's folder: the first 16 hex digits of a sha256."""
    return isinstance(name, str) and _DIGEST_DIR.fullmatch(name) is not None

"""Who owns each upload, how much one owner stores, and removing uploads no run needs.

**The ownership record.** An upload lives in ``<store root>/uploads/<16 hex>/``
(:mod:`sbi_core.uploads.files`). Each owner (a browser's token, :mod:`sbi_ui.owner`)
that saved it leaves a *claim* in that folder: an empty file
``.owner-<sha256(token)[:32]>`` whose modification time is when that owner last
saved it. The same bytes uploaded by two browsers share one folder and carry two
claims. A claim's name starts with a dot, so it is never an upload
(:func:`~sbi_core.uploads.files.is_upload_path` refuses it) and it holds no token, only
its hash. The claim is written together with the file, under the store's upload
lock (below), so no garbage collection sees one without the other. Uploads made
before claims existed (or by the CLI) have none: they count for nobody's quota.

**Usage and quota.** An owner's usage is the bytes of every upload folder
holding its claim (the bytes of the upload files in it; a folder shared by two
owners counts for both). :func:`check_quota` runs before an owner's new upload
is written: if it would pass the quota (``$SBI_UPLOAD_QUOTA_MB``, default
:data:`DEFAULT_QUOTA_MB`; ``0`` turns it off), that owner's collectable uploads
are released first (:func:`release_owner_uploads`, oldest first), and if it
still does not fit the upload is refused with an
:class:`~sbi_core.uploads.paths.UploadError` that says how much is used, the quota,
and what to do.

**Collectable.** An upload is collected when no run of the store refers to it
(any run, any status, any owner: a run's link may be opened by anyone) and it
is older than the grace period (``$SBI_UPLOAD_GRACE_MINUTES``, default
:data:`DEFAULT_GRACE_MINUTES`): a browser that has just uploaded a file and not
yet pressed Start keeps it. The age of an upload folder is that of the newest
file in it (an upload file or a claim); saving the same bytes again renews it.
A run refers to an upload through ``simulator["path"]`` of its RunSpec (kinds
``"upload"`` and ``"table"``); any path whose folder is an upload folder keeps
that folder, whichever name in it the path names. Without a run store
(no ``runs.sqlite3`` in the store root) nothing is known to be unreferenced, so
nothing is collected.

**Safety.** Only real folders (not symbolic links) named like an upload folder,
directly in ``uploads/``, are ever removed; a folder is first renamed to
``uploads/.trash-*`` (atomic, follows no link) and then deleted without
following links inside (:func:`shutil.rmtree`). Saves and collections of one
store take an exclusive lock on ``uploads/.lock`` (``flock``; none on systems
without :mod:`fcntl`), so two collections at once, or a collection during a
save, neither crash nor remove a file being saved. The references are read
again just before anything is removed, which narrows the moment in which a run
created right then could lose its file to milliseconds.

**When.** :func:`collect_garbage` removes every collectable upload of a store;
:func:`maybe_collect_garbage` calls it at most once per
:data:`GC_INTERVAL_S` (a time stamp file ``uploads/.gc-stamp``), and
:func:`sbi_core.uploads.files.save_upload` calls that after each save, so a server
cleans up as it is used and never on a mere page view.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Union

from sbi_core.store.runs import RunStore
from sbi_core.uploads.paths import (
    UPLOADS_DIR,
    UploadError,
    is_upload_folder_name,
    safe_filename,
    uploads_root,
)

__all__ = ["DEFAULT_QUOTA_MB", "DEFAULT_GRACE_MINUTES", "GC_INTERVAL_S", "QUOTA_ENV", "GRACE_ENV",
           "GCReport", "quota_bytes", "grace_seconds", "owner_claim_name", "claim_upload", "owners_of",
           "owner_usage", "upload_lock", "referenced_folders", "release_owner_uploads", "check_quota",
           "collect_garbage", "maybe_collect_garbage"]

QUOTA_ENV = "SBI_UPLOAD_QUOTA_MB"
GRACE_ENV = "SBI_UPLOAD_GRACE_MINUTES"
DEFAULT_QUOTA_MB = 200.0
DEFAULT_GRACE_MINUTES = 60.0
GC_INTERVAL_S = 600.0  # at most one collection per store every 10 minutes, started by a save
_CLAIM_PREFIX = ".owner-"
_TRASH_PREFIX = ".trash-"
_LOCK_NAME = ".lock"
_STAMP_NAME = ".gc-stamp"

PathLike = Union[str, os.PathLike]


# ---------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------
def _env_number(name: str, default: float) -> float:
    """``$name`` as a number of at least 0; ``default`` when unset or not a number."""
    try:
        value = float(os.environ.get(name, "").strip())
    except ValueError:
        return default
    return value if value >= 0 else default


def quota_bytes() -> Optional[int]:
    """Each owner's upload quota in bytes (``$SBI_UPLOAD_QUOTA_MB``, default 200 MB); None when set to 0 (no quota)."""
    mb = _env_number(QUOTA_ENV, DEFAULT_QUOTA_MB)
    return int(mb * 1024 * 1024) if mb > 0 else None


def grace_seconds() -> float:
    """How long a new upload is kept although no run refers to it (``$SBI_UPLOAD_GRACE_MINUTES``, default 60)."""
    return _env_number(GRACE_ENV, DEFAULT_GRACE_MINUTES) * 60.0


def _mb(n: float) -> str:
    """A size in MB with one decimal (in KB below 1 MB, where 0.0 MB would say nothing)."""
    if n < 1024 * 1024:
        return f"{max(1, round(n / 1024))} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


# ---------------------------------------------------------------------------
# the ownership record: one claim file per owner in the upload's folder
# ---------------------------------------------------------------------------
def owner_claim_name(owner: str) -> str:
    """The claim file's name for ``owner`` in an upload folder: ``.owner-`` and 32 hex digits of its sha256."""
    return _CLAIM_PREFIX + hashlib.sha256(str(owner).encode("utf-8")).hexdigest()[:32]


def claim_upload(folder: Path, owner: str) -> None:
    """Record (or renew) that ``owner`` saved the upload in ``folder``: its claim file, written atomically."""
    claim = folder / owner_claim_name(owner)
    try:
        os.utime(claim)  # renewing: the claim's time is when the owner last saved this upload
        return
    except FileNotFoundError:
        pass
    tmp = folder / f".part-{secrets.token_hex(8)}"
    tmp.write_bytes(b"")
    os.replace(tmp, claim)


def owners_of(folder: Path) -> list[str]:
    """The claim file names in ``folder`` (one per owner that saved it)."""
    try:
        return sorted(e.name for e in os.scandir(folder)
                      if e.name.startswith(_CLAIM_PREFIX) and e.is_file(follow_symlinks=False))
    except OSError:
        return []


def _upload_files(folder: Path) -> list[os.DirEntry]:
    """The upload files in ``folder``: regular files (no links) with a name :func:`safe_filename` keeps."""
    try:
        return [e for e in os.scandir(folder)
                if e.is_file(follow_symlinks=False) and safe_filename(e.name) == e.name]
    except OSError:
        return []


def _folder_bytes(folder: Path) -> int:
    """The bytes of the upload files in ``folder``."""
    total = 0
    for e in _upload_files(folder):
        try:
            total += e.stat(follow_symlinks=False).st_size
        except OSError:
            pass
    return total


def _folder_time(folder: Path) -> float:
    """When ``folder`` was last saved to: the newest modification time of a file in it (the folder's own if empty)."""
    newest = None
    try:
        for e in os.scandir(folder):
            try:
                t = e.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            newest = t if newest is None else max(newest, t)
        return newest if newest is not None else folder.lstat().st_mtime
    except OSError:
        return time.time()  # vanished or unreadable: treat as new, so it is left alone


def _upload_folders(uploads: Path) -> list[Path]:
    """The upload folders directly in ``uploads``: real folders (not links) named by 16 hex digits."""
    try:
        return [Path(e.path) for e in os.scandir(uploads)
                if is_upload_folder_name(e.name) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def owner_usage(store_root: PathLike, owner: str) -> int:
    """The bytes of every upload folder of the store that holds ``owner``'s claim."""
    claim = owner_claim_name(owner)
    return sum(_folder_bytes(f) for f in _upload_folders(uploads_root(store_root)) if (f / claim).is_file())


# ---------------------------------------------------------------------------
# the lock shared by saves and collections
# ---------------------------------------------------------------------------
@contextlib.contextmanager
def upload_lock(store_root: PathLike) -> Iterator[Path]:
    """Hold the store's upload lock (``uploads/.lock``, an exclusive ``flock``) while saving or collecting.

    Yields the uploads folder (created). Without :mod:`fcntl` (Windows) it does not lock.
    """
    uploads = uploads_root(store_root)
    uploads.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield uploads
        return
    with open(uploads / _LOCK_NAME, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield uploads
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# ---------------------------------------------------------------------------
# what runs refer to
# ---------------------------------------------------------------------------
def _run_store(store_root: PathLike, store=None):
    """``store``, else the run store at ``store_root`` if it has a database, else None."""
    if store is not None:
        return store
    root = Path(store_root).expanduser().resolve()
    if not (root / "runs.sqlite3").is_file():
        return None
    return RunStore(root)


def referenced_folders(store) -> set[str]:
    """The names of the upload folders that some run of ``store`` refers to (every run, every owner).

    A run's ``simulator["path"]`` keeps the folder it names, both as written and
    with links resolved. Raises whatever reading the store raises: a caller then
    removes nothing.
    """
    names: set[str] = set()
    for info in store.list_runs(limit=None):
        sim = getattr(info.spec, "simulator", None)
        path = sim.get("path") if isinstance(sim, dict) else None
        if not isinstance(path, str) or not path or "\0" in path:
            continue
        p = Path(os.path.normpath(os.path.expanduser(path)))
        names.add(p.parent.name)
        try:
            names.add(p.resolve().parent.name)
        except (OSError, RuntimeError):
            pass
    return {n for n in names if is_upload_folder_name(n)}


# ---------------------------------------------------------------------------
# removing
# ---------------------------------------------------------------------------
@dataclass
class GCReport:
    """What a collection did: the upload folders removed and the bytes that freed."""

    removed: list[Path] = field(default_factory=list)
    bytes_freed: int = 0
    kept_referenced: int = 0  # folders kept because a run refers to them
    kept_young: int = 0  # folders kept because they are younger than the grace period


def _remove_folder(folder: Path) -> bool:
    """Remove one upload folder: renamed out of the way (``.trash-*``), then deleted without following links.

    Only a real folder named like an upload folder, directly in an uploads folder, is touched.
    """
    if not is_upload_folder_name(folder.name) or folder.parent.name != UPLOADS_DIR:
        return False
    try:
        if not folder.is_dir() or folder.is_symlink():
            return False
        trash = folder.parent / f"{_TRASH_PREFIX}{folder.name}-{secrets.token_hex(4)}"
        os.rename(folder, trash)
    except OSError:
        return False  # gone already (another collection), or not ours to remove
    shutil.rmtree(trash, ignore_errors=True)
    return True


def _sweep_trash(uploads: Path) -> None:
    """Delete ``.trash-*`` folders a collection that stopped half-way left behind."""
    try:
        for e in os.scandir(uploads):
            if e.name.startswith(_TRASH_PREFIX) and e.is_dir(follow_symlinks=False):
                shutil.rmtree(e.path, ignore_errors=True)
    except OSError:
        pass


def release_owner_uploads(store_root: PathLike, owner: str, need_bytes: int, store=None,
                          now: Optional[float] = None, grace_s: Optional[float] = None,
                          keep: Optional[str] = None) -> int:
    """Free at least ``need_bytes`` of ``owner``'s quota from its collectable uploads, oldest first.

    An upload of ``owner`` is released when no run refers to it and ``owner``'s
    claim is older than the grace period: the claim is removed, and the folder
    too if no other owner claims it and it is as old. Other owners' uploads are
    never touched. ``keep`` names a folder to leave alone (the one being saved).
    Call with :func:`upload_lock` held. Returns the bytes released from the
    owner's usage: possibly fewer than asked, and 0 when there is no run store
    or it cannot be read (then nothing is known to be unused).
    """
    now = time.time() if now is None else now
    grace_s = grace_seconds() if grace_s is None else grace_s
    uploads = uploads_root(store_root)
    if need_bytes <= 0 or uploads.is_symlink():
        return 0
    claim = owner_claim_name(owner)
    candidates = []
    for folder in _upload_folders(uploads):
        if folder.name == keep:
            continue
        try:
            claimed = (folder / claim).lstat().st_mtime
        except OSError:
            continue
        if claimed <= now - grace_s:
            candidates.append((claimed, folder.name, folder))
    if not candidates:
        return 0
    try:
        store = _run_store(store_root, store)
        referenced = referenced_folders(store) if store is not None else None
    except Exception:  # noqa: BLE001 - an unreadable store frees nothing; the quota then refuses
        referenced = None
    if referenced is None:
        return 0
    freed, emptied = 0, []
    for _, _, folder in sorted(candidates):
        if freed >= need_bytes:
            break
        if folder.name in referenced:
            continue
        size = _folder_bytes(folder)
        try:
            os.unlink(folder / claim)
        except FileNotFoundError:
            continue
        freed += size
        if not owners_of(folder) and _folder_time(folder) <= now - grace_s:
            emptied.append(folder)
    if emptied:
        try:
            referenced = referenced_folders(store)  # read again just before removing
        except Exception:  # noqa: BLE001 - then keep the files; the claims are released all the same
            return freed
        for folder in emptied:
            if folder.name not in referenced:
                _remove_folder(folder)
    return freed


def check_quota(store_root: PathLike, path: Path, size: int, owner: str, quota: Optional[int], store=None,
                now: Optional[float] = None, grace_s: Optional[float] = None) -> None:
    """Refuse ``owner``'s save of ``size`` bytes as ``path`` if its uploads would then pass ``quota`` (bytes).

    ``quota`` None: no quota. Before refusing, ``owner``'s collectable uploads
    are released (:func:`release_owner_uploads`); the folder being saved to is
    never among them. Saving again what the owner already has does not grow its
    usage, so it is never refused. Call with :func:`upload_lock` held.

    Raises:
        UploadError: how much is used, the quota, and what to do.
    """
    if quota is None:
        return
    grace_s = grace_seconds() if grace_s is None else grace_s
    folder = path.parent
    shown = path.name
    try:
        new_bytes = 0 if path.lstat().st_size == size else size
    except OSError:
        new_bytes = size
    claimed = (folder / owner_claim_name(owner)).is_file()
    before_here = _folder_bytes(folder) if claimed else 0  # this folder's share of the usage now
    after_here = _folder_bytes(folder) + new_bytes  # and once saved

    def usage_after(used: int) -> int:
        return used - before_here + after_here

    used = owner_usage(store_root, owner)
    if usage_after(used) <= max(quota, used):
        return
    if after_here > quota:
        raise UploadError(
            f"The file {shown} is {_mb(size)}, more than the upload quota of each browser on this server "
            f"({_mb(quota)}). Use a smaller file, or ask whoever runs the server to raise SBI_UPLOAD_QUOTA_MB.")
    if release_owner_uploads(store_root, owner, usage_after(used) - quota, store=store, now=now,
                             grace_s=grace_s, keep=folder.name):
        used = owner_usage(store_root, owner)
        if usage_after(used) <= quota:
            return
    raise UploadError(
        f"Your uploads on this server already use {_mb(used)} of your {_mb(quota)} upload quota, so {shown} "
        f"({_mb(size)}) does not fit. Delete runs you no longer need on the Runs page: an upload that no run "
        f"uses any more is removed {_duration(grace_s)} after it was last saved, and its space is yours again.")


def collect_garbage(store_root: PathLike, store=None, now: Optional[float] = None,
                    grace_s: Optional[float] = None) -> GCReport:
    """Remove every upload of the store that no run refers to and that is older than the grace period.

    Any run counts (any status, any owner); an upload with or without claims
    follows the same rule. ``store`` is the :class:`~sbi_core.store.runs.RunStore`
    (default: the one at ``store_root``; without one nothing is removed). Safe to
    call from several processes at once (they take turns, :func:`upload_lock`).
    """
    now = time.time() if now is None else now
    grace_s = grace_seconds() if grace_s is None else grace_s
    report = GCReport()
    if not uploads_root(store_root).is_dir() or uploads_root(store_root).is_symlink():
        return report
    store = _run_store(store_root, store)
    if store is None:
        return report
    with upload_lock(store_root) as uploads:
        _sweep_trash(uploads)
        folders = _upload_folders(uploads)
        if not folders:
            return report
        referenced = referenced_folders(store)
        old = []
        for folder in folders:
            if folder.name in referenced:
                report.kept_referenced += 1
            elif _folder_time(folder) > now - grace_s:
                report.kept_young += 1
            else:
                old.append(folder)
        if not old:
            return report
        referenced = referenced_folders(store)  # read again just before removing
        for folder in old:
            if folder.name in referenced:
                report.kept_referenced += 1
                continue
            size = _folder_bytes(folder)
            if _remove_folder(folder):
                report.removed.append(folder)
                report.bytes_freed += size
    return report


def maybe_collect_garbage(store_root: PathLike, store=None, interval_s: float = GC_INTERVAL_S,
                          now: Optional[float] = None) -> Optional[GCReport]:
    """:func:`collect_garbage`, unless one started less than ``interval_s`` ago (``uploads/.gc-stamp``).

    Never raises: a collection that fails leaves everything in place and is tried
    again after the interval. Returns the report, or None when it did not run.
    """
    now = time.time() if now is None else now
    stamp = uploads_root(store_root) / _STAMP_NAME
    try:
        if now - stamp.stat().st_mtime < interval_s:
            return None
    except FileNotFoundError:
        pass
    except OSError:
        return None
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
        os.utime(stamp, (now, now))
        return collect_garbage(store_root, store=store, now=now)
    except Exception:  # noqa: BLE001 - cleaning up must never break the upload that triggered it
        return None

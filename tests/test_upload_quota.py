"""Uploads on a shared server: who owns each, a quota per owner, and garbage collection of the
uploads no run refers to (kept while any run does, and while they are new)."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from sbi_core import RunSpec
from sbi_core.errors import RunSpecError
from sbi_core.store.runs import RunStore
from sbi_core.uploads.files import admit_spec, is_upload_path, portable_spec, save_upload
from sbi_core.uploads.paths import UploadError, uploads_root
from sbi_core.uploads.quota import (
    GC_INTERVAL_S,
    collect_garbage,
    grace_seconds,
    maybe_collect_garbage,
    owner_claim_name,
    owner_usage,
    owners_of,
    quota_bytes,
)

pytestmark = pytest.mark.timeout(120)

HOUR = 3600.0
MB = 1024 * 1024
ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdef"


@pytest.fixture
def store(tmp_path, monkeypatch) -> RunStore:
    monkeypatch.delenv("SBI_UPLOAD_QUOTA_MB", raising=False)
    monkeypatch.delenv("SBI_UPLOAD_GRACE_MINUTES", raising=False)
    return RunStore(tmp_path / "store")


def blob(tag: str, size: int = 1000) -> bytes:
    """``size`` bytes of a content no other tag has."""
    head = f"# {tag}\n".encode()
    return head + b"x" * (size - len(head))


def code(tag: str) -> bytes:
    return (f"# {tag}\nimport numpy as np\nPRIOR = [{{'name': 'a', 'dist': 'uniform', 'low': 0, 'high': 1}}]\n"
            "def simulate(theta):\n    return np.hstack([theta, theta])\n").encode()


def run_on(store: RunStore, path: Path, kind: str = "upload", owner: str | None = None) -> str:
    """A run (queued; never executed) whose RunSpec refers to ``path``, as the app records one."""
    if kind == "upload":
        sim = {"kind": "upload", "path": str(path), "name": "M", "timeout": 30}
        spec = RunSpec(simulator=sim, method="npe", num_rounds=1)
    else:
        sim = {"kind": "table", "path": str(path), "theta_columns": ["theta1"], "x_columns": ["x1"], "name": "t"}
        spec = RunSpec(simulator=sim, method="npe", num_rounds=1,
                       prior=[{"name": "theta1", "dist": "uniform", "low": 0, "high": 1}], observation=[0.5])
    return store.create_run(spec, owner=owner)


def age(path: Path, seconds: float) -> None:
    """Make an upload folder (every file in it) look ``seconds`` old."""
    folder = path if path.is_dir() else path.parent
    t = time.time() - seconds
    for entry in folder.iterdir():
        os.utime(entry, (t, t), follow_symlinks=False)
    os.utime(folder, (t, t))


# ---------------------------------------------------------------------------
# the ownership record
# ---------------------------------------------------------------------------
def test_an_owners_upload_carries_its_claim_and_counts_for_that_owner_only(store):
    path = save_upload(store.root, blob("a", 1500), "model.py", owner=ALICE)
    claims = owners_of(path.parent)
    assert claims == [owner_claim_name(ALICE)]
    assert ALICE not in claims[0], "the claim names the token's hash, not the token"
    assert not is_upload_path(store.root, path.parent / claims[0]), "a claim is never readable as an upload"
    assert owner_usage(store.root, ALICE) == 1500
    assert owner_usage(store.root, BOB) == 0


def test_an_upload_without_owner_counts_for_nobody(store):
    legacy = save_upload(store.root, blob("legacy", 5000), "old.csv")
    path = save_upload(store.root, blob("a"), "a.py", owner=ALICE)
    assert owners_of(legacy.parent) == []
    assert owner_usage(store.root, ALICE) == path.stat().st_size == 1000


def test_saving_again_counts_once_and_two_owners_both_count_a_shared_file(store):
    data = blob("shared", 2000)
    first = save_upload(store.root, data, "m.py", owner=ALICE)
    assert save_upload(store.root, data, "m.py", owner=ALICE) == first
    assert owner_usage(store.root, ALICE) == 2000
    save_upload(store.root, data, "m.py", owner=BOB)
    assert sorted(owners_of(first.parent)) == sorted([owner_claim_name(ALICE), owner_claim_name(BOB)])
    assert owner_usage(store.root, ALICE) == owner_usage(store.root, BOB) == 2000


def test_the_signature_stays_and_owner_is_keyword_only(store):
    path = save_upload(store.root, blob("p"), "p.py", 10_000)
    assert path.read_bytes() == blob("p")
    with pytest.raises(TypeError):
        save_upload(store.root, blob("q"), "q.py", 10_000, ALICE)  # noqa - owner must be named


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.delenv("SBI_UPLOAD_QUOTA_MB", raising=False)
    monkeypatch.delenv("SBI_UPLOAD_GRACE_MINUTES", raising=False)
    assert quota_bytes() == 200 * MB and grace_seconds() == HOUR
    monkeypatch.setenv("SBI_UPLOAD_QUOTA_MB", "1.5")
    monkeypatch.setenv("SBI_UPLOAD_GRACE_MINUTES", "5")
    assert quota_bytes() == int(1.5 * MB) and grace_seconds() == 300
    monkeypatch.setenv("SBI_UPLOAD_QUOTA_MB", "0")
    assert quota_bytes() is None, "0 turns the quota off"
    monkeypatch.setenv("SBI_UPLOAD_QUOTA_MB", "lots")
    monkeypatch.setenv("SBI_UPLOAD_GRACE_MINUTES", "-3")
    assert quota_bytes() == 200 * MB and grace_seconds() == HOUR, "nonsense falls back to the defaults"


# ---------------------------------------------------------------------------
# garbage collection
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["upload", "table"])
def test_an_upload_a_run_refers_to_survives(store, kind):
    path = save_upload(store.root, blob(kind), "sims.csv" if kind == "table" else "m.py", owner=ALICE)
    run_on(store, path, kind, owner=BOB)  # someone else's run keeps it too
    age(path, 10 * HOUR)
    report = collect_garbage(store.root, store)
    assert report.removed == [] and report.kept_referenced == 1
    assert path.read_bytes() == blob(kind)


def test_an_unreferenced_young_upload_survives(store):
    path = save_upload(store.root, blob("young"), "m.py", owner=ALICE)
    age(path, 50 * 60)  # 50 minutes: still inside the hour's grace
    report = collect_garbage(store.root, store)
    assert report.removed == [] and report.kept_young == 1
    assert path.is_file()


def test_an_unreferenced_old_upload_is_removed(store):
    keep = save_upload(store.root, blob("kept"), "k.py", owner=ALICE)
    run_on(store, keep)
    old = save_upload(store.root, blob("old", 3000), "o.py", owner=ALICE)
    legacy = save_upload(store.root, blob("legacy", 500), "l.py")  # no owner record
    for p in (keep, old, legacy):
        age(p, 2 * HOUR)
    report = collect_garbage(store.root, store)
    assert sorted(report.removed) == sorted([old.parent, legacy.parent])
    assert report.bytes_freed == 3500
    assert not old.parent.exists() and not legacy.parent.exists() and keep.is_file()
    assert owner_usage(store.root, ALICE) == 1000


def test_the_grace_period_is_configurable(store, monkeypatch):
    path = save_upload(store.root, blob("g"), "g.py")
    age(path, 10 * 60)
    assert collect_garbage(store.root, store).removed == []
    assert collect_garbage(store.root, store, grace_s=5 * 60).removed == [path.parent]
    path = save_upload(store.root, blob("h"), "h.py")
    age(path, 10 * 60)
    monkeypatch.setenv("SBI_UPLOAD_GRACE_MINUTES", "5")
    assert collect_garbage(store.root, store).removed == [path.parent]


def test_saving_again_renews_an_uploads_age(store):
    path = save_upload(store.root, blob("again"), "m.py", owner=ALICE)
    age(path, 3 * HOUR)
    save_upload(store.root, blob("again"), "m.py", owner=BOB)
    assert collect_garbage(store.root, store).removed == []


def test_deleting_its_run_makes_an_upload_collectable(store):
    path = save_upload(store.root, blob("r"), "m.py", owner=ALICE)
    rid = run_on(store, path, owner=ALICE)
    age(path, 2 * HOUR)
    assert collect_garbage(store.root, store).removed == []
    store.delete_run(rid)
    assert collect_garbage(store.root, store).removed == [path.parent]
    assert not path.exists()


def test_a_run_naming_the_file_through_another_name_keeps_the_folder(store):
    path = save_upload(store.root, blob("n"), "a.py")
    second = save_upload(store.root, blob("n"), "b.py")  # same bytes, second name, same folder
    run_on(store, second)
    age(path, 2 * HOUR)
    assert collect_garbage(store.root, store).removed == []
    assert path.is_file() and second.is_file()


def test_without_a_run_store_nothing_is_collected(tmp_path):
    root = tmp_path / "bare"
    path = save_upload(root, blob("bare"), "m.py")
    age(path, 10 * HOUR)
    assert not (root / "runs.sqlite3").exists()
    assert collect_garbage(root).removed == []
    assert path.is_file()


def test_the_collection_never_follows_a_link_or_leaves_the_upload_layout(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.py").write_bytes(b"keep me")
    uploads = uploads_root(store.root)
    old = save_upload(store.root, blob("with-link"), "m.py")
    os.symlink(outside / "precious.py", old.parent / "link.py")  # a link inside an old upload folder
    os.symlink(outside, old.parent / "dir")
    os.symlink(outside, uploads / "0123456789abcdef")  # a link shaped like an upload folder
    (uploads / "notadigest").mkdir()
    (uploads / "notadigest" / "m.py").write_bytes(b"not an upload")
    (uploads / "loose.py").write_bytes(b"not in a folder")
    age(old, 5 * HOUR)
    for p in (uploads / "notadigest", uploads / "notadigest" / "m.py", uploads / "loose.py"):
        os.utime(p, (0, 0))
    report = collect_garbage(store.root, store)
    assert report.removed == [old.parent]
    assert (outside / "precious.py").read_bytes() == b"keep me"
    assert (uploads / "0123456789abcdef").is_symlink()
    assert (uploads / "notadigest" / "m.py").is_file() and (uploads / "loose.py").is_file()
    assert not any(p.name.startswith(".trash-") for p in uploads.iterdir())


def _gc_in_a_process(root: str, queue) -> None:
    try:
        report = collect_garbage(root)
        queue.put(("ok", len(report.removed)))
    except BaseException as err:  # noqa: BLE001 - reported to the test
        queue.put(("error", repr(err)))


def test_collections_at_once_neither_crash_nor_remove_twice(store):
    paths = [save_upload(store.root, blob(f"c{i}"), "m.py") for i in range(30)]
    for p in paths:
        age(p, 2 * HOUR)
    kept = save_upload(store.root, blob("kept"), "k.py")
    run_on(store, kept)
    age(kept, 2 * HOUR)
    results, errors = [], []

    def collect():
        try:
            results.append(len(collect_garbage(store.root, RunStore(store.root)).removed))
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    def save(i):
        try:
            results.append(save_upload(store.root, blob(f"new{i}"), "n.py", owner=ALICE))
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_gc_in_a_process, args=(str(store.root), queue)) for _ in range(2)]
    threads = [threading.Thread(target=collect) for _ in range(4)] + \
              [threading.Thread(target=save, args=(i,)) for i in range(4)]
    for w in procs + threads:
        w.start()
    for w in threads:
        w.join(60)
    from_procs = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(60)
    assert not errors, errors
    assert all(kind == "ok" for kind, _ in from_procs), from_procs
    removed = sum(r for r in results if isinstance(r, int)) + sum(n for _, n in from_procs)
    assert removed == 30, "each old folder removed exactly once"
    assert kept.is_file()
    assert all(p.is_file() for p in results if isinstance(p, Path)), "a file saved during a collection stays"
    assert not any(p.is_dir() for p in paths)


def test_saves_collect_now_and_then(store):
    old = save_upload(store.root, blob("old"), "o.py")
    age(old, 2 * HOUR)
    stamp = uploads_root(store.root) / ".gc-stamp"
    if stamp.exists():
        stamp.unlink()  # as if no collection ran for a long time
    save_upload(store.root, blob("trigger"), "t.py")
    assert not old.exists(), "a save started a collection"
    again = save_upload(store.root, blob("again"), "o.py")
    age(again, 2 * HOUR)
    assert maybe_collect_garbage(store.root) is None, "not twice within the interval"
    assert again.is_file()
    report = maybe_collect_garbage(store.root, now=time.time() + GC_INTERVAL_S + 1)
    assert report is not None and report.removed == [again.parent]


def test_a_failing_collection_never_breaks_the_save(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    (root / "runs.sqlite3").write_text("not a database")
    path = save_upload(root, blob("fine"), "m.py")
    assert path.read_bytes() == blob("fine")


# ---------------------------------------------------------------------------
# the quota
# ---------------------------------------------------------------------------
def test_over_the_quota_the_upload_is_refused_with_what_to_do(store):
    used = save_upload(store.root, blob("a", int(1.2 * MB)), "a.csv", owner=ALICE, quota_bytes=2 * MB)
    run_on(store, used, "table", owner=ALICE)
    age(used, 5 * HOUR)
    with pytest.raises(UploadError) as info:
        save_upload(store.root, blob("b", int(1.2 * MB)), "b.csv", owner=ALICE, quota_bytes=2 * MB)
    message = str(info.value)
    assert "1.2 MB" in message and "2.0 MB" in message and "quota" in message
    assert "delete runs you no longer need on the runs page" in message.lower()
    assert "b.csv" in message
    assert owner_usage(store.root, ALICE) == int(1.2 * MB), "nothing of the refused file was kept"
    assert len([p for p in uploads_root(store.root).iterdir() if p.is_dir()]) == 1
    # someone else is not held back by Alice's uploads
    save_upload(store.root, blob("b", int(1.2 * MB)), "b.csv", owner=BOB, quota_bytes=2 * MB)


def test_deleting_the_run_as_the_message_says_makes_room(store):
    used = save_upload(store.root, blob("a", 2000), "a.py", owner=ALICE, quota_bytes=3000)
    rid = run_on(store, used, owner=ALICE)
    age(used, 2 * HOUR)
    with pytest.raises(UploadError):
        save_upload(store.root, blob("b", 2000), "b.py", owner=ALICE, quota_bytes=3000)
    store.delete_run(rid)
    new = save_upload(store.root, blob("b", 2000), "b.py", owner=ALICE, quota_bytes=3000)
    assert new.is_file() and not used.parent.exists()
    assert owner_usage(store.root, ALICE) == 2000


def test_a_file_larger_than_the_whole_quota_says_so(store):
    with pytest.raises(UploadError, match="more than the upload quota"):
        save_upload(store.root, blob("big", 3 * MB), "big.csv", owner=ALICE, quota_bytes=2 * MB)


def test_the_quota_frees_the_owners_old_unused_uploads_oldest_first_and_no_one_elses(store):
    q = 3000
    oldest = save_upload(store.root, blob("a-oldest"), "a.py", owner=ALICE, quota_bytes=q)
    older = save_upload(store.root, blob("a-older"), "b.py", owner=ALICE, quota_bytes=q)
    used = save_upload(store.root, blob("a-used"), "c.py", owner=ALICE, quota_bytes=q)
    bobs = save_upload(store.root, blob("b-old"), "d.py", owner=BOB, quota_bytes=q)
    run_on(store, used, owner=ALICE)
    age(oldest, 5 * HOUR)
    age(older, 3 * HOUR)
    age(used, 9 * HOUR)
    age(bobs, 9 * HOUR)
    new = save_upload(store.root, blob("a-new"), "e.py", owner=ALICE, quota_bytes=q)
    assert new.is_file()
    assert not oldest.parent.exists(), "the oldest unused one made room"
    assert older.is_file(), "only as much as needed was freed"
    assert used.is_file(), "an upload a run uses is never freed"
    assert bobs.is_file(), "another owner's upload is not touched"
    assert owner_usage(store.root, ALICE) == 3000


def test_a_young_unused_upload_is_not_freed_for_the_quota(store):
    fresh = save_upload(store.root, blob("fresh"), "a.py", owner=ALICE, quota_bytes=1500)
    with pytest.raises(UploadError, match="already use"):
        save_upload(store.root, blob("next"), "b.py", owner=ALICE, quota_bytes=1500)
    assert fresh.is_file(), "just uploaded, Start not pressed yet: it stays"


def test_freeing_a_shared_upload_drops_only_the_owners_claim(store):
    data = blob("shared")
    shared = save_upload(store.root, data, "s.py", owner=ALICE, quota_bytes=1500)
    age(shared, 5 * HOUR)
    save_upload(store.root, data, "s.py", owner=BOB, quota_bytes=1500)  # Bob has it too, just now
    save_upload(store.root, blob("alice-new"), "n.py", owner=ALICE, quota_bytes=1500)
    assert shared.is_file(), "Bob's copy stays"
    assert owners_of(shared.parent) == [owner_claim_name(BOB)]
    assert owner_usage(store.root, ALICE) == 1000 and owner_usage(store.root, BOB) == 1000


def test_saving_again_what_the_owner_has_is_never_refused(store):
    path = save_upload(store.root, blob("mine", 2000), "m.py", owner=ALICE)
    assert save_upload(store.root, blob("mine", 2000), "m.py", owner=ALICE, quota_bytes=1000) == path


def test_an_imported_spec_stores_its_file_under_the_owners_quota(store, monkeypatch):
    path = save_upload(store.root, code("first"), "first.py")
    carried = portable_spec(RunSpec(simulator={"kind": "upload", "path": str(path), "name": "M"},
                                    method="npe", num_rounds=1))
    other = RunStore(store.root.parent / "other")
    admitted = admit_spec(carried, other.root, owner=ALICE)
    stored = Path(admitted.simulator_ref["path"])
    assert owners_of(stored.parent) == [owner_claim_name(ALICE)]
    second = portable_spec(RunSpec(simulator={"kind": "upload", "path": str(save_upload(store.root, code("two"),
                                                                                         "two.py")), "name": "M"},
                                   method="npe", num_rounds=1))
    monkeypatch.setenv("SBI_UPLOAD_QUOTA_MB", str(stored.stat().st_size * 1.5 / MB))
    with pytest.raises(RunSpecError) as info:
        admit_spec(second, other.root, owner=ALICE)
    assert "cannot be stored" in str(info.value) and "Runs page" in str(info.value)


# ---------------------------------------------------------------------------
# the page
# ---------------------------------------------------------------------------
def test_the_data_page_shows_the_quota_refusal(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from sbi_ui import keys as K

    root_dir = Path(__file__).resolve().parent.parent
    table = (root_dir / "assets" / "examples" / "two_moons_simulations.csv").read_bytes()
    half = b"\n".join(table.split(b"\n")[:1000]) + b"\n"
    monkeypatch.setenv("SBI_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("SBI_UPLOAD_QUOTA_MB", f"{(len(table) + len(half) // 2) / MB:.4f}")
    at = AppTest.from_file(str(root_dir / "app.py"), default_timeout=90)
    at.switch_page("pages/data.py")
    at.run()
    at.file_uploader(key=K.W_DATA_TABLE_FILE).set_value(("sims.csv", table, "text/csv"))
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.file_uploader(key=K.W_DATA_TABLE_FILE).set_value(("half.csv", half, "text/csv"))
    at.run()
    assert not at.exception
    shown = " ".join(e.value for e in at.error).replace("\\", "")  # user text arrives markdown-escaped
    assert "half.csv" in shown and "upload quota" in shown and "Runs page" in shown, shown
    assert any("the previous table, sims.csv, is still in use" in c.value.replace("\\", "") for c in at.caption), \
        [c.value for c in at.caption]

"""The run store's owners (a nullable column, migrated into older stores) and unguessable run ids."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from sbi_core.run.compare import parse_run_ids
from sbi_core.run.ids import RUN_ID_LENGTH, is_run_id, new_run_id
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore

SPEC = RunSpec(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=100)


def test_create_run_records_its_owner_and_lists_filter_by_it(tmp_path):
    store = RunStore(tmp_path)
    a = store.create_run(SPEC, owner="alice_token_0123456789")
    b = store.create_run(SPEC, "b", owner="bob_token_0123456789ab")
    old = store.create_run(SPEC)  # the positional signature of before still works
    assert store.get_run(a).owner == "alice_token_0123456789"
    assert store.get_run(old).owner is None
    assert store.create_run(SPEC, owner="") and store.list_runs(limit=1)[0].owner is None
    assert {r.id for r in store.list_runs(limit=None)} >= {a, b, old}
    alice = {r.id for r in store.list_runs(limit=None, owner="alice_token_0123456789")}
    assert a in alice and old in alice and b not in alice
    assert [r.id for r in store.list_runs(owner="alice_token_0123456789", include_unowned=False)] == [a]
    assert [r.id for r in store.list_runs(owner="bob_token_0123456789ab", status="queued",
                                          include_unowned=False)] == [b]
    assert store.list_runs(owner="bob_token_0123456789ab", status="done") == []


def test_an_older_store_gets_the_owner_column_and_its_runs_stay_everyones(tmp_path):
    db = sqlite3.connect(tmp_path / "runs.sqlite3")
    db.executescript(
        "CREATE TABLE runs (id TEXT PRIMARY KEY, title TEXT NOT NULL DEFAULT '', spec_json TEXT NOT NULL,"
        " status TEXT NOT NULL, created REAL NOT NULL, started REAL, finished REAL, pid INTEGER,"
        " message TEXT, detail TEXT, cancel_requested INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE events (run_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,"
        " json TEXT NOT NULL, time REAL NOT NULL, PRIMARY KEY (run_id, seq));")
    db.execute("INSERT INTO runs (id, title, spec_json, status, created) VALUES (?, 'old', ?, 'done', 1.0)",
               ("0123456789ab", json.dumps(SPEC.to_dict())))
    db.commit()
    db.close()
    store = RunStore(tmp_path)
    cols = {r[1] for r in store._conn().execute("PRAGMA table_info(runs)")}
    assert "owner" in cols
    old = store.get_run("0123456789ab")
    assert old is not None and old.owner is None and old.title == "old"
    assert [r.id for r in store.list_runs(owner="someone_0123456789abc")] == ["0123456789ab"]
    new = store.create_run(SPEC, owner="someone_0123456789abc")
    assert store.get_run(new).owner == "someone_0123456789abc"
    RunStore(tmp_path)  # opening it again migrates nothing twice


def test_run_ids_are_unguessable_and_url_safe(tmp_path):
    store = RunStore(tmp_path)
    ids = {new_run_id() for _ in range(2000)} | {store.create_run(SPEC) for _ in range(5)}
    assert len(ids) == 2005
    assert all(re.fullmatch(r"[a-z0-9]{%d}" % RUN_ID_LENGTH, i) for i in ids)
    assert RUN_ID_LENGTH * 5.16 >= 128  # log2(36) = 5.17 bits a character
    assert all(is_run_id(i) for i in ids)
    assert len({i[0] for i in ids}) > 30, "drawn from the whole alphabet"


@pytest.mark.parametrize("text", ["../etc/passwd", "/etc/passwd", "..", "", "abc", "x" * 40, "a/b" * 6,
                                  "0123456789AB", "01234567890\x00", None, 12345678901234])
def test_is_run_id_refuses_anything_that_is_not_an_id(text):
    assert not is_run_id(text)


def test_old_and_new_ids_both_open_and_compare_links_take_them(tmp_path):
    old, new = "0123456789ab", new_run_id()
    assert is_run_id(old) and is_run_id(new)
    assert parse_run_ids(f"{new},../{old},{old},{new.upper()}") == [new, old]
    store = RunStore(tmp_path)
    assert store.get_run("../../runs.sqlite3") is None

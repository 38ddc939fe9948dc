"""AppTest: what a queued run's pages say while runs take turns on the workers (sbi_core.store.turns).

A new run behind others says its place in line, that the runs ahead get their first round first,
and about how long it waits; a run that handed its worker over after a round keeps its round's
cloud on screen and says which round comes next and after how many runs; a C2ST put off while
others waited says so, and the page keeps redrawing until it comes; taking turns is not a
"Resumed" run. Runs are made in a temporary store and never trained: their events are appended
as a worker would, and the processes "holding" them are this test's own.
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from streamlit.testing.v1 import AppTest

from apptest_support import texts

from sbi_core.events import REFERENCE_DEFERRED, REFERENCE_PENDING, reference_event, resumed_event
from sbi_core.jobs.manager import default_max_running
from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunStore
from sbi_core.store.turns import TURN_REASON
from sbi_ui import keys as K
from sbi_ui.live_view import REFERENCE_WAIT_S, _polls, wait_words
from sbi_ui.tracker import RunTracker

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TRAIN, RUNS = "pages/train.py", "pages/runs.py"
ME = "me_" + "a" * 19
ROUND_S = 600.0  # the seconds of the one round timed in each store: long, so no wait is "a few seconds"

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def store(tmp_path, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setenv("SBI_STORE_DIR", str(root))
    monkeypatch.setenv("SBI_EXECUTOR", "process")
    monkeypatch.delenv("SBI_TEACHER_KEY", raising=False)
    s = RunStore(root)
    timed = s.create_run(spec(99, rounds=1), title="timed", owner="someone")  # sets the store's round time
    s.append_event(timed, {"type": "round", "round": 0, "seconds": {"simulate": ROUND_S / 2, "train": ROUND_S / 2}})
    s.finish_run(timed, "done", event={"type": "done"})
    return s


def spec(seed: int, rounds: int = 3) -> RunSpec:
    return RunSpec(simulator="two_moons", method="snpe", num_rounds=rounds, simulations_per_round=200,
                   max_epochs=4, num_posterior_samples=100, seed=seed)


def queued(store: RunStore, owner: str, title: str = "", rounds: int = 3) -> str:
    """A run in line, held by this process (as the app holds a queued Dask run)."""
    rid = store.create_run(spec(len(store.list_runs(limit=None)), rounds), title=title, owner=owner)
    store.set_pid(rid, os.getpid())
    return rid


def finish_round(store: RunStore, rid: str, r: int, reason: str | None = None) -> None:
    """The events of round ``r`` of a two-parameter run: simulations, two epochs, the round's cloud."""
    if r == 0:
        store.append_event(rid, {"type": "run_started", "num_rounds": 3, "param_names": ["theta_1", "theta_2"]})
    store.append_event(rid, {"type": "simulation", "round": r, "done": 200, "total": 200, "invalid": 0})
    for epoch in (1, 2):
        store.append_event(rid, {"type": "epoch", "round": r, "epoch": epoch, "max_epochs": 4, "train_loss": 1.0 / epoch,
                                 "val_loss": 1.2 / epoch, "best_epoch": epoch, "elapsed": 0.1 * epoch})
    cloud = np.random.default_rng(r).normal(0, 0.2, (100, 2))
    store.append_event(rid, {"type": "round", "round": r, "num_rounds": 3, "epochs": 2, "best_epoch": 2,
                             "posterior_samples": cloud.tolist(), "param_names": ["theta_1", "theta_2"],
                             "seconds": {"simulate": 1.0, "train": 2.0}, "reference_c2st": None,
                             "reference_c2st_reason": reason})


def handed_over(store: RunStore, owner: str = ME) -> str:
    """A run that trained its round 1, then handed its worker over to another owner's run waiting in line."""
    rid = store.create_run(spec(1), title="takes turns", owner=owner)
    assert store.claim_slot(rid, os.getpid(), max_running=1)
    finish_round(store, rid, 0, reason=REFERENCE_PENDING)
    store.append_event(rid, reference_event(0, 0.71, None, 1.5))
    queued(store, "another student")
    assert store.hand_over(rid, 1, claim=store.get_run(rid).started)
    assert store.get_run(rid).status == "queued"
    return rid


def page(path: str, run_id: str, owner: str = ME) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state[K.S_OWNER] = owner
    at.query_params[K.QP_RUN] = run_id
    at.run()
    at.switch_page(path)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def info_text(at: AppTest) -> str:
    return "\n".join(str(i.value) for i in at.info)


def progress_texts(at: AppTest) -> list[str]:
    return [p.proto.text for p in at.get("progress")]


def clouds(at: AppTest) -> dict:
    """``{trace name: points}`` of the posterior cloud chart drawn on the page."""
    for chart in at.get("plotly_chart"):
        figure = json.loads(chart.proto.spec)
        title = str(figure.get("layout", {}).get("title", {}).get("text", ""))
        if "Posterior" in title:
            return {t["name"]: _count(t["x"]) for t in figure["data"] if re.fullmatch(r"round \d+", t.get("name", ""))}
    return {}


def _count(values) -> int:
    """How many numbers a plotly array holds (a list, or a typed array ``{dtype, bdata}``)."""
    if isinstance(values, dict):
        return len(np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]))
    return len(values)


def expected_wait(store: RunStore, rid: str) -> str:
    """The wait the app's job manager (default slots on this machine) reports for ``rid``."""
    return wait_words(store.place_in_line(rid, workers=default_max_running()).wait_s)


# ---- a new run behind others --------------------------------------------------------------------
def test_a_new_run_behind_others_says_its_place_and_the_wait(store: RunStore) -> None:
    first = store.create_run(spec(1), owner="first")
    assert store.claim_slot(first, os.getpid(), max_running=1)
    ahead = [queued(store, f"student {k}") for k in range(3)]
    mine = queued(store, ME, title="mine")
    wait = expected_wait(store, mine)
    assert wait.startswith("about ") and wait != "about 0 s"

    at = page(TRAIN, mine)
    text = info_text(at)
    assert "Queued: **position 4** in line." in text, text
    assert f"{wait[0].upper()}{wait[1:]}: 3 runs ahead of yours get their first round first" in text, text
    assert progress_texts(at) == ["Waiting for a free worker..."]
    assert "Resumed" not in texts(at)

    store.finish_run(first, "done", event={"type": "done"})  # the line moves
    assert store.claim_slot(ahead[0], os.getpid(), max_running=1)
    at.run()
    text = info_text(at)
    assert "Queued: **position 3** in line." in text, text
    assert "2 runs ahead of yours get their first round first" in text, text

    runs = page(RUNS, mine)
    assert f"Position 3 in line, {expected_wait(store, mine)}." in texts(runs)


def test_the_next_run_in_line_says_it_starts_when_a_worker_is_free(store: RunStore) -> None:
    mine = queued(store, ME)
    at = page(TRAIN, mine)
    assert f"Next in line: it starts as soon as a worker is free, in {expected_wait(store, mine)}" in info_text(at)


# ---- a run that handed its worker over ------------------------------------------------------------
def test_a_handed_over_run_keeps_its_round_on_screen_and_says_when_its_next_turn_comes(store: RunStore) -> None:
    rid = handed_over(store)
    place = store.place_in_line(rid, workers=default_max_running())
    assert (place.position, place.ahead_first, place.turn) == (2, 1, 1)

    at = page(TRAIN, rid)
    text = info_text(at)
    assert (f"Waiting for its turn: round 2 of 3 starts after 1 run ahead takes a round, in "
            f"{wait_words(place.wait_s)}. Runs take turns one round at a time so that every student sees a "
            "first cloud soon.") in text, text
    assert progress_texts(at) == ["1 of 3 rounds finished · waiting for a free worker for round 2"]
    assert at.get("progress")[0].proto.value == 33  # a third of the rounds, not an empty bar
    assert clouds(at) == {"round 1": 100}, clouds(at)
    shown = texts(at)
    assert "**1 / 3** rounds finished" in shown
    assert "Match to the exact posterior (C2ST): **0.71** after round 1" in shown
    assert "Resumed from round" not in shown  # taking turns is not a resume

    runs = page(RUNS, rid)
    assert f"Position 2 in line for round 2, {wait_words(place.wait_s)}." in texts(runs)
    assert "Resumed from round" not in texts(runs)


def test_taking_turns_drops_nothing_the_tracker_has_folded(store: RunStore) -> None:
    rid = handed_over(store)
    tr = RunTracker(rid)
    tr.update(store)
    assert tr.rounds_done == 1 and tr.samples[0].shape == (100, 2)
    assert tr.epochs_done == 2 and tr.simulations_done == 200 and tr.terminal is None
    assert tr.rounds[0]["reference_c2st"] == 0.71


def test_a_resume_before_turns_is_still_noted(store: RunStore) -> None:
    rid = handed_over(store)
    store.append_event(rid, resumed_event(1, "resume", "failed", "crashed"))  # as if resumed after a failure ...
    store.append_event(rid, resumed_event(2, TURN_REASON, "running"))  # ... then it took turns again
    at = page(TRAIN, rid)
    notes = " ".join(str(c.value) for c in at.caption)
    assert "Resumed from round 2 (it had failed; round 1 was kept)." in notes, notes


# ---- a C2ST put off while others waited -------------------------------------------------------------
def test_a_deferred_c2st_says_when_it_comes_and_the_view_waits_for_it(store: RunStore) -> None:
    rid = queued(store, ME, rounds=1)
    assert store.claim_slot(rid, os.getpid(), max_running=1)
    finish_round(store, rid, 0, reason=REFERENCE_PENDING)
    store.append_event(rid, reference_event(0, None, REFERENCE_DEFERRED, None))
    store.finish_run(rid, "done", event={"type": "done"})

    at = page(TRAIN, rid)
    note = ("C2ST against the exact posterior for round 1: measured once no other run is waiting for a worker "
            "(other students' runs go first).")
    assert note in texts(at), texts(at)
    assert "No comparison with the exact posterior" not in texts(at)
    tr = RunTracker(rid)
    tr.update(store)
    info = store.get_run(rid)
    assert _polls(info, tr)  # the done run's view keeps redrawing for it ...

    store.append_event(rid, reference_event(0, 0.64, None, 1.2))  # measured once the line was empty
    at.run()
    assert "Match to the exact posterior (C2ST): **0.64** after round 1" in texts(at)
    assert note not in texts(at)
    tr.update(store)
    assert not _polls(info, tr)  # ... until it came


def test_a_lost_deferred_c2st_is_not_awaited_forever(store: RunStore) -> None:
    rid = queued(store, ME, rounds=1)
    assert store.claim_slot(rid, os.getpid(), max_running=1)
    finish_round(store, rid, 0, reason=REFERENCE_DEFERRED)
    store.finish_run(rid, "done", event={"type": "done"})
    tr = RunTracker(rid)
    tr.update(store)
    info = store.get_run(rid)
    assert _polls(info, tr)
    long_ago = info.finished - REFERENCE_WAIT_S - 1
    assert not _polls(type(info)(**{**info.__dict__, "finished": long_ago}), tr)


def test_waits_are_rounded_and_never_zero() -> None:
    assert wait_words(0) == "a few seconds"
    assert wait_words(3.2) == "a few seconds"
    assert wait_words(38) == "about 40 s"
    assert wait_words(130) == "about 2 min"
    assert wait_words(3900) == "about 1 h 5 min"
    assert wait_words(7200) == "about 2 h"


def test_a_queued_run_with_nothing_trained_draws_no_empty_charts_and_the_sidebar_leaves_progress_to_train(
        store: RunStore) -> None:
    """A run in line has nothing to chart: Train says where it stands and that the charts come when it
    starts, without two empty plotly figures on every poll. The sidebar's card does not poll there (the
    live view follows the same run), so it does not show a round count that would go stale; on
    another page it does, and polls."""
    rid = queued(store, ME)
    train = page(TRAIN, rid)
    assert "next in line" in info_text(train).lower()  # nobody ahead: it says so
    assert not [c for c in train.get("plotly_chart") if "train_" in c.proto.id]
    captions = "\n".join(str(c.value) for c in train.sidebar.caption)
    assert "shown live on this page" in captions and "Rounds finished" not in captions
    assert any("appear here as soon as this run starts" in str(c.value) for c in train.caption)
    runs = page(RUNS, rid)
    assert "Rounds finished: 0 of 3" in "\n".join(str(c.value) for c in runs.sidebar.caption)

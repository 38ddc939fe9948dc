"""The class gallery's pieces (sbi_ui/gallery_view.py): one panel per owner, the newest finished run
on the model, students numbered by their first run, the observation in each panel's title."""

from __future__ import annotations

import numpy as np

from sbi_core.run.spec import RunSpec
from sbi_core.store.runs import RunInfo
from sbi_ui.gallery_view import GalleryEntry, gallery_figure, latest_per_owner, observation_text, student_names


def info(rid: str, owner, created: float, status: str = "done", simulator: str = "two_moons") -> RunInfo:
    spec = RunSpec(simulator=simulator, method="npe", num_rounds=1, simulations_per_round=100)
    return RunInfo(id=rid, title=rid, spec=spec, status=status, created=created, started=None, finished=None,
                   pid=None, message=None, detail=None, cancel_requested=False, owner=owner)


RUNS = [
    info("a_old", "A", 1.0), info("b_only", "B", 2.0), info("a_new", "A", 3.0),
    info("a_failed", "A", 4.0, status="failed"), info("c_other_model", "C", 0.5, simulator="sir"),
    info("none_1", None, 5.0),
]


def test_the_newest_finished_run_of_each_owner_on_the_model():
    assert [r.id for r in latest_per_owner(RUNS, "two_moons")] == ["a_new", "b_only", "none_1"]
    assert [r.id for r in latest_per_owner(RUNS, "sir")] == ["c_other_model"]
    assert latest_per_owner(RUNS, "slcp") == []


def test_students_are_numbered_by_their_first_run_and_never_shown_by_token():
    names = student_names(RUNS)
    assert names == {"C": "Student 1", "A": "Student 2", "B": "Student 3", "(no owner)": "Runs without an owner"}


def test_observation_text():
    assert observation_text(np.array([0.123456, -0.3])) == "x = (0.123, -0.3)"
    assert observation_text(np.arange(5.0)) == "x = (0, 1, 2, ...)"
    assert observation_text(None) == "observation unknown"


def test_one_panel_per_entry_with_its_observation_and_true_parameter():
    rng = np.random.default_rng(0)
    entries = [GalleryEntry(f"Student {k}", RUNS[k], rng.normal(size=(40, 2)), np.array([k, -k]),
                            np.array([0.1 * k, 0.2]) if k else None) for k in range(3)]
    entries.append(GalleryEntry("Student 9", RUNS[3], None, None, None))
    fig = gallery_figure(entries, 0, 1, ["theta1", "theta2"], np.array([[-1, 1], [-1, 1]]))
    titles = [a.text for a in fig.layout.annotations]
    assert any("Student 0" in t and "x = (0, 0)" in t for t in titles)
    assert any("Student 2" in t and "x = (2, -2)" in t for t in titles)
    assert sum("no samples" in t for t in titles) == 1
    stars = [t for t in fig.data if t.name == "true parameter"]
    assert len(stars) == 2 and sum(bool(t.showlegend) for t in stars) == 1
    assert [float(stars[1].x[0]), float(stars[1].y[0])] == [0.2, 0.2]

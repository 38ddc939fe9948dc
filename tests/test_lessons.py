"""The Lessons page (AppTest): every step draws; answers stay hidden until revealed; steps are real."""

from __future__ import annotations

import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from sbi_core.methods.abc.by_hand import accepted_within, epsilon_for_fraction, scaled_distances
from sbi_ui import keys as K
from sbi_ui.lessons import LESSONS

from apptest_support import APP

pytestmark = pytest.mark.timeout(180)

STEPS = [(lesson.slug, i) for lesson in LESSONS for i in range(len(lesson.steps))]


@pytest.fixture
def store_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SBI_STORE_DIR", str(tmp_path / "store"))


def _lesson(slug: str, step: int, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params[K.QP_LESSON] = slug
    at.query_params[K.QP_STEP] = str(step + 1)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("pages/lessons.py")
    at.run()
    at.run()  # a first lesson visit reruns once (the truth starts hidden); AppTest keeps that run's sidebar out
    assert not at.exception, [e.value for e in at.exception]
    assert not [e.value for e in at.error if "Something went wrong" in e.value]
    return at


def _text(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown)


def test_there_are_six_lessons_with_short_steps():
    assert [les.slug for les in LESSONS] == ["simulator", "abc", "amortized", "sequential", "calibration", "trust"]
    for lesson in LESSONS:
        for s in lesson.steps:
            sentences = [p for p in re.split(r"(?<=[.!?])\s+", s.text.strip()) if p]
            assert 2 <= len(sentences) <= 4, (lesson.slug, s.title, len(sentences))
            assert s.question.endswith("?") and s.answer


@pytest.mark.parametrize("slug, step", STEPS)
def test_every_step_draws_with_its_answer_hidden(store_env, slug, step):
    at = _lesson(slug, step)
    lesson = next(les for les in LESSONS if les.slug == slug)
    s = lesson.steps[step]
    text = _text(at)
    assert s.question in text and s.answer not in text
    at.toggle(key=f"{K.W_LESSON_REVEAL}_{slug}_{step}").set_value(True).run()
    assert s.answer in _text(at)


def test_lessons_start_with_the_true_parameter_hidden(store_env):
    at = _lesson("abc", 0)
    assert at.toggle(key=K.W_REVEAL_TRUE).value is False
    at.switch_page("pages/home.py").run()  # it stays hidden on the other pages: a setting of the session
    assert at.toggle(key=K.W_REVEAL_TRUE).value is False
    at.toggle(key=K.W_REVEAL_TRUE).set_value(True).run()  # the teacher reveals it
    at.switch_page("pages/lessons.py").run()
    assert at.toggle(key=K.W_REVEAL_TRUE).value is True  # and a later lesson does not hide it again


def test_shrinking_epsilon_keeps_fewer_draws_on_the_page(store_env):
    at = _lesson("abc", 0)
    slider = at.slider(key=f"{K.w_lesson('abc', 0)}_eps")
    counts = []
    for eps in (slider.max, (slider.min + slider.max) / 4, slider.min * 3):
        slider.set_value(eps).run()
        caption = " ".join(c.value for c in at.caption if c.value.startswith("Accepted"))
        counts.append(int(caption.split()[1].replace(",", "")))
    assert counts[0] > counts[1] > counts[2] > 0, counts


def test_next_and_back_move_through_the_steps_and_the_url(store_env):
    at = _lesson("simulator", 0)
    at.button(key=K.W_LESSON_NEXT).click().run()
    assert at.query_params[K.QP_STEP] in ("2", ["2"])
    assert LESSONS[0].steps[1].question in _text(at)
    at.button(key=K.W_LESSON_NEXT).click().run()  # last step: on to the next lesson
    assert at.query_params[K.QP_LESSON] in ("abc", ["abc"])


def test_a_lesson_run_is_a_real_background_run(store_env):
    at = _lesson("amortized", 0)
    at.button(key=f"{K.w_lesson('amortized', 0)}_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    from sbi_ui.resources import jobs

    rid = at.session_state[K.S_LESSON_RUNS]["amortized"]
    info = jobs().status(rid)
    assert info is not None and info.spec.method == "npe" and info.spec.simulations_per_round == 2000
    assert at.session_state[K.S_CURRENT_RUN] == rid
    try:  # a classmate presses the same step's Start: they follow the same run, nothing is computed twice
        other = _lesson("amortized", 0)
        other.button(key=f"{K.w_lesson('amortized', 0)}_start").click().run()
        assert not other.exception, [e.value for e in other.exception]
        assert other.session_state[K.S_LESSON_RUNS]["amortized"] == rid
        assert [r.id for r in jobs().list(limit=None)] == [rid]
    finally:
        jobs().cancel(rid)


def test_projector_mode_comes_from_the_url_and_hides_help(store_env):
    at = _lesson("simulator", 0, **{K.QP_PROJECTOR: K.QP_PROJECTOR_ON})
    assert at.toggle(key=K.W_PROJECTOR).value is True
    at.toggle(key=K.W_PROJECTOR).set_value(False).run()
    assert K.QP_PROJECTOR not in at.query_params


def test_abc_by_hand_accepts_the_closest_draws():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 2)) * np.array([1.0, 100.0])  # second component in other units
    d = scaled_distances(x, np.zeros(2))
    eps = epsilon_for_fraction(d, 0.1)
    kept = accepted_within(d, eps)
    assert kept.sum() == 100
    # scaling: both components count alike, so the kept points are not just those small in x2
    assert abs(np.abs(x[kept, 0]).mean() - np.abs(x[kept, 1] / 100).mean()) < 0.1
    x[0] = np.nan
    assert np.isinf(scaled_distances(x, np.zeros(2))[0])


def test_trust_lesson_flags_the_sensors_that_disagree_not_those_that_agree():
    """Lesson 6, steps 1-2: the presets' readings against the two-sensor model's own simulations."""
    from sbi_ui.lessons.trust import PRESETS, sensor_check

    agree, apart, beyond = (sensor_check(PRESETS[name]) for name in ("Readings agree", "1.0 apart",
                                                                      "One beyond the range"))
    assert not agree["misspecified"] and agree["p_value"] > 0.2
    assert apart["misspecified"] and apart["p_value"] < 0.01
    # 1.0 apart: each reading alone is ordinary; it is the pair that the model never makes
    assert all(f["side"] is None and f["marginal_p_value"] > 0.2 for f in apart["features"])
    assert beyond["misspecified"] and beyond["features"][0]["label"] == "sensor 2"
    assert beyond["features"][0]["side"] == "above"


def test_trust_lesson_local_c2st_rejects_the_overconfident_estimator_only():
    """Lesson 6, step 3: the answer names B as overconfident; L-C2ST rejects B, and not A, at every observation."""
    from sbi_ui.lessons.trust import ESTIMATORS, LESSON, OBSERVATIONS, local_pp

    assert ESTIMATORS == {"A": 1.0, "B": 0.5} and LESSON.steps[2].answer.startswith("Estimator B.")
    for x_obs in OBSERVATIONS:
        exact, over = local_pp("A", x_obs), local_pp("B", x_obs)
        assert not exact["rejected"] and exact["p_value"] > 0.2, (x_obs, exact["p_value"])
        assert over["rejected"] and over["p_value"] < 0.05, (x_obs, over["p_value"])
        at = round(0.4 * (len(over["pp"]["levels"]) - 1))  # overconfident: its curve rises early, above the band
        assert over["pp"]["cdf"][at] > over["pp"]["null_high"][at]


def test_trust_lesson_presets_set_the_observation_the_test_step_checks(store_env):
    at = _lesson("trust", 1)
    key = K.w_lesson("trust", 1)
    assert "rarely produces data like yours" in _text(at)  # the lesson opens on the readings 1.0 apart
    at.button(key=f"{key}_preset0").click().run()  # "Readings agree"
    assert at.slider(key=f"{key}_second").value == pytest.approx(0.6)
    assert "looks like data the model produces" in _text(at)
    at.slider(key=f"{key}_second").set_value(1.5).run()
    assert "rarely produces data like yours" in _text(at)
    at.button(key=K.W_LESSON_PREV).click().run()  # step 1 keeps the reading step 2 left
    assert at.slider(key=f"{K.w_lesson('trust', 0)}_second").value == pytest.approx(1.5)


@pytest.mark.slow
def test_sequential_lesson_states_the_runs_own_region_sizes(store_env):
    """Lesson 4 said "Average spread 0.721 after round 1, 0.721 after round 4" (the sd of a two-mode
    posterior): it now reads the 90 % region's share of the prior, round 1 and last, from the run."""
    import dataclasses

    from sbi_core import RunSpec
    from sbi_core.store.runs import RunStore
    from sbi_core.jobs.worker import carry_out
    from sbi_ui.lessons.sequential import RUN_NAME
    from sbi_ui.resources import store_root
    from sbi_ui.rounds_view import fmt_share

    store = RunStore(store_root())
    small = dataclasses.replace(RunSpec.demo(), num_rounds=2, simulations_per_round=100, max_epochs=15,
                                num_posterior_samples=300, num_threads=1, title="Lesson 4 test")
    rid = store.create_run(small)
    store.set_status(rid, "running")
    assert carry_out(store, rid) == "done"  # the real run, in this process
    sizes = [ev["hdr_size"] for _, ev in store.events(rid) if ev["type"] == "round"]
    assert len(sizes) == 2
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params[K.QP_LESSON] = RUN_NAME
    at.query_params[K.QP_STEP] = "2"
    at.session_state[K.S_LESSON_RUNS] = {RUN_NAME: rid}  # this session started the lesson's run
    at.run()
    at.switch_page("pages/lessons.py")
    at.run()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    captions = " ".join(c.value for c in at.caption)
    expected = (f"The 90 % region covered {fmt_share(sizes[0]['fraction'], sizes[0]['num_prior'])} of the prior "
                f"after round 1 and {fmt_share(sizes[1]['fraction'], sizes[1]['num_prior'])} after round 2")
    assert expected in captions, captions
    assert "100 simulations" in captions and "spread" not in captions.lower()
